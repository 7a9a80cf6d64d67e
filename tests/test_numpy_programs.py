"""NumPy programs as people write them, differentiated end to end, checked against central
finite differences (every element of every gradient)."""
import numpy as np
import pytest

import transpile

RNG = np.random.default_rng(1234)


def central(f, args, i, h=1e-6):
    """Central finite-difference gradient of scalar f w.r.t. argument i (float or array)."""
    x = args[i]
    if not isinstance(x, np.ndarray):
        lo, hi = list(args), list(args)
        lo[i], hi[i] = x - h, x + h
        return (f(*hi) - f(*lo)) / (2 * h)
    g = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        lo, hi = list(args), list(args)
        xl, xh = x.astype(float).copy(), x.astype(float).copy()
        xl[idx] -= h
        xh[idx] += h
        lo[i], hi[i] = xl, xh
        g[idx] = (f(*hi) - f(*lo)) / (2 * h)
    return g


def check(f, args, wrt, rtol=1e-5, atol=1e-6):
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    value, grads = transpile.value_and_grad(f, wrt=wrt)(*[a.copy() if isinstance(a, np.ndarray)
                                                         else a for a in args])
    assert np.allclose(value, f(*args))
    for k, i in enumerate(wrt):
        expected = central(f, args, i)
        got = grads[k]
        assert np.shape(got) == np.shape(args[i]), (f.__name__, i)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                   err_msg=f"{f.__name__} d/d{i}")
    return grads


# --- programs ----------------------------------------------------------------------------

def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def mlp_softmax_xent(W1, b1, W2, b2, X, labels):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    logits = logits - np.max(logits, axis=1, keepdims=True)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(X.shape[0]), labels])


def rnn(inputs, W, U, h0):
    T = inputs.shape[0]
    h = np.zeros((T + 1, h0.shape[0]))
    h[0] = h0
    for t in range(T):
        h[t + 1] = np.tanh(np.dot(inputs[t], W) + np.dot(h[t], U))
    return np.sum(h[-1] ** 2) + 0.1 * np.sum(h)


def broadcasting(a, b, c):
    # (3, 1) with (4,) and a scalar: every gradient must come back in its own shape
    return np.sum(np.sin(a * b + c) * (a - b) / (1.0 + c * c))


def reductions(x):
    return (np.sum(x, axis=0) @ np.mean(x, axis=1)[:3] + np.prod(x[0] + 2.0)
            + np.max(x, axis=1).sum() + x.min() + np.var(x) + np.std(x, axis=0).sum()
            + np.cumsum(x, axis=1)[:, -1].sum())


def methods_and_shapes(x):
    y = x.reshape(2, -1).T
    z = np.concatenate([y, y * 2.0], axis=1)
    w = np.stack([z[:, 0], z[:, 1]], axis=0)
    return (w.sum() + np.transpose(z).dot(z).trace() + np.expand_dims(x, 0).squeeze().mean()
            + np.flip(x)[0] * np.roll(x, 1)[0])


def indexing(x, idx):
    mask = x > 0.1
    return (np.sum(x[mask] ** 2) + np.sum(x[idx] * 3.0) + x[-1] * x[1:4:2].sum()
            + np.sum(np.where(x > 0, x, 0.5 * x)) + np.sum(np.clip(x, -0.5, 0.5)))


def inplace_updates(x, w):
    y = x.copy()
    for i in range(1, y.shape[0]):
        y[i] = y[i - 1] * w + y[i]
    y[1:] += w * y[:-1]
    y[0] *= 3.0
    return np.sum(y * y)


def linear_algebra(A, b):
    M = A @ A.T + 3.0 * np.eye(A.shape[0])
    x = np.linalg.solve(M, b)
    return (x @ x + np.linalg.det(M) * 0.01 + np.trace(np.linalg.inv(M))
            + np.linalg.norm(b) + np.linalg.slogdet(M)[1])


def array_of_scalars(a, b):
    v = np.array([a, b, a * b])
    return np.sum(v * v) + np.dot(v, np.array([1.0, 2.0, 3.0]))


def float32_stays(x):
    return np.sum(np.tanh(x) * x)


def list_of_arrays(xs, w):
    acc = np.zeros(3)
    for v in xs:
        acc = acc + np.tanh(v * w)
    return np.sum(acc ** 2)


def gradient_descent(w, X, y):
    for step in range(5):
        pred = X @ w
        grad = X.T @ (pred - y) / X.shape[0]
        w = w - 0.1 * grad
    return np.mean((X @ w - y) ** 2)


def einsum_tensordot(A, B, v):
    C = np.einsum("ij,jk->ik", A, B)
    D = np.tensordot(A, B, axes=1)
    return np.sum(C * D) + np.einsum("i,ij,j->", v, A @ B, v) + np.outer(v, v).trace()


def cholesky_logdet(A):
    M = A @ A.T + np.eye(A.shape[0])
    L = np.linalg.cholesky(M)
    return 2.0 * np.sum(np.log(np.diag(L)))


def fancy_indexing(x, rows):
    # repeated integer indices accumulate, Ellipsis and None keep their meaning
    y = x[rows] * 2.0
    z = x[..., 1] + x[:, None, 0][:, 0]
    return np.sum(y ** 2) + np.sum(z * z) + x[::-2, ::2].sum()


def shapes_more(x):
    parts = np.split(x, 2)
    t = np.tile(parts[0], 2) + np.repeat(parts[1], 2)
    p = np.pad(x, (1, 2))
    s = np.sort(x)
    return np.sum(t * t) + np.sum(p * np.arange(p.shape[0])) + s[0] * s[-1] + np.vstack(
        [x, x]).mean() + np.hstack([x, 2.0 * x]).std()


def astype_and_back(x):
    y = x.astype(np.float32)
    return float(np.sum(y.astype(np.float64) ** 2))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def helper_in_loop(x, W):
    # a user function on arrays called in a loop: its tape and the overwritten h are saved
    h = x
    for i in range(3):
        h = _sigmoid(h @ W)
    return np.sum(h * h)


CASES = [
    (rosenbrock, lambda: (RNG.normal(size=8),), (0,)),
    (mlp_softmax_xent, lambda: (RNG.normal(size=(4, 5)) * 0.5, RNG.normal(size=5) * 0.1,
                                RNG.normal(size=(5, 3)) * 0.5, RNG.normal(size=3) * 0.1,
                                RNG.normal(size=(6, 4)), RNG.integers(0, 3, size=6)),
     (0, 1, 2, 3)),
    (rnn, lambda: (RNG.normal(size=(5, 2)), RNG.normal(size=(2, 3)) * 0.5,
                   RNG.normal(size=(3, 3)) * 0.5, RNG.normal(size=3)), (0, 1, 2, 3)),
    (broadcasting, lambda: (RNG.normal(size=(3, 1)), RNG.normal(size=4), 0.3), (0, 1, 2)),
    (reductions, lambda: (RNG.normal(size=(4, 3)),), (0,)),
    (methods_and_shapes, lambda: (RNG.normal(size=6),), (0,)),
    (indexing, lambda: (RNG.normal(size=7), np.array([0, 2, 2, 5])), (0,)),
    (inplace_updates, lambda: (RNG.normal(size=5), 0.7), (0, 1)),
    (linear_algebra, lambda: (RNG.normal(size=(3, 3)), RNG.normal(size=3)), (0, 1)),
    (array_of_scalars, lambda: (0.4, -1.3), (0, 1)),
    (gradient_descent, lambda: (RNG.normal(size=3), RNG.normal(size=(8, 3)),
                                RNG.normal(size=8)), (0, 1, 2)),
    (einsum_tensordot, lambda: (RNG.normal(size=(3, 4)), RNG.normal(size=(4, 3)),
                                RNG.normal(size=3)), (0, 1, 2)),
    (cholesky_logdet, lambda: (RNG.normal(size=(3, 3)),), (0,)),
    (fancy_indexing, lambda: (RNG.normal(size=(4, 3)), np.array([0, 2, 2, 3])), (0,)),
    (shapes_more, lambda: (RNG.normal(size=6),), (0,)),
    (helper_in_loop, lambda: (RNG.normal(size=(2, 3)), RNG.normal(size=(3, 3))), (0, 1)),
]


@pytest.mark.parametrize("f, make, wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_numpy_program_matches_finite_differences(f, make, wrt):
    check(f, make(), wrt)


def test_float32_gradient_stays_float32():
    x = RNG.normal(size=5).astype(np.float32)
    g = transpile.grad(float32_stays)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, central(float32_stays, [x.astype(np.float64)], 0), rtol=1e-3)


def test_astype_round_trip():
    x = RNG.normal(size=4)
    g = transpile.grad(astype_and_back)(x)
    np.testing.assert_allclose(g, 2 * x.astype(np.float32).astype(np.float64), rtol=1e-6)


def test_list_of_arrays_input():
    xs = [RNG.normal(size=3) for _ in range(4)]
    gxs, gw = transpile.grad(list_of_arrays, wrt=(0, 1))(xs, 0.8)
    assert isinstance(gxs, list) and len(gxs) == 4 and gxs[0].shape == (3,)
    h = 1e-6
    for k in range(4):
        for j in range(3):
            hi = [v.copy() for v in xs]
            lo = [v.copy() for v in xs]
            hi[k][j] += h
            lo[k][j] -= h
            fd = (list_of_arrays(hi, 0.8) - list_of_arrays(lo, 0.8)) / (2 * h)
            assert gxs[k][j] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    assert gw == pytest.approx(central(list_of_arrays, [xs, 0.8], 1), rel=1e-5)


def test_input_array_is_not_changed_by_gradient():
    x = RNG.normal(size=5)
    before = x.copy()
    transpile.grad(inplace_updates, wrt=(0, 1))(x, 0.5)
    np.testing.assert_array_equal(x, before)


def test_scalar_and_array_calls_get_their_own_code():
    def f(x):
        return x * x
    # same function, scalar then array argument: two specializations, both right
    g = transpile.grad(lambda_free_square)
    assert g(3.0) == pytest.approx(6.0)
    np.testing.assert_allclose(g(np.array(3.0)), 6.0)


def lambda_free_square(x):
    return np.sum(x * x)
