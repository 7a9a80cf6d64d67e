"""Derivative code specialised on array shapes (shapes.py): rule templates inlined where
their conditions are proven, no-op unbroadcasts dropped, the needed ones kept.

Every gradient here is checked against central differences, on shapes where broadcasting
happens (bias vectors, size-1 axes, scalars times arrays, keepdims reductions) and where it
does not; the generated source is checked for what it should (and should not) call.
"""
import numpy as np
import pytest

import transpile
from finite_differences import central_wrt, check_gradient as check_all

RNG = np.random.default_rng(7)


def arr(*shape):
    return RNG.normal(size=shape)


def mlp(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    return np.mean((z - y) ** 2)


def test_mlp_gradient_reads_like_backprop():
    args = (arr(4, 3), arr(3), arr(3, 2), arr(2), arr(5, 4), arr(5, 2))
    g = check_all(mlp, args, (0, 1, 2, 3))
    src = g.source
    for line in ("dh = dz @ W2.T", "dW2 = h.T @ dz", "dW1 = X.T @ d_t2",
                 # (1 - h ** 2) * dh, its temporaries in one array (in_place.py)
                 "d_t2 = h ** 2", "d_t2 = np.subtract(1, d_t2, out=d_t2)", "d_t2 *= dh",
                 "db1 = np.add.reduce(d_t2, axis=0)", "db2 = np.add.reduce(dz, axis=0)"):
        assert line in src, src
    # the adjoints of X @ W1 and h @ W2 have their shapes: nothing is summed for them
    assert "matmul_vjp" not in src and "mean_vjp" not in src and "unbroadcast" not in src


@pytest.mark.parametrize("shapes", [
    ((4, 1), (3,), (5, 4)),        # X @ W has one column; the bias broadcasts it to 3
    ((4, 3), (1, 3), (5, 4)),      # a (1, k) bias
    ((4, 3), (5, 1), (5, 4)),      # a per-row bias
    ((4, 3), (3,), (1, 4)),        # one sample
    ((1, 3), (3,), (5, 1)),        # a size-1 inner dimension
])
def test_bias_broadcasting_keeps_the_needed_sums(shapes):
    def f(W, b, X):
        return np.sum(np.tanh(X @ W + b) ** 2)
    W, b, X = (arr(*s) for s in shapes)
    check_all(f, (W, b, X), (0, 1, 2))


def test_variants_by_shape_are_separate():
    """One gradient called with (n, k) then (n, 1) then 1-D arrays: each gets code
    specialised on its own shapes, none reuses another's."""
    def f(x, w):
        return np.sum(np.sin(x * w + x))
    g = transpile.grad(f, wrt=(0, 1))
    for xs, ws in [((3, 4), (3, 4)), ((3, 4), (3, 1)), ((3, 1), (3, 4)), ((4,), (4,)),
                   ((3, 4), (4,)), ((3, 4), ())]:
        x, w = arr(*xs), (arr(*ws) if ws else 0.7)
        got = g(x, w)
        for i in (0, 1):
            expected = central_wrt(f, (x, w), i)
            assert np.shape(got[i]) == np.shape(expected)
            assert np.allclose(got[i], expected, atol=1e-6)


def test_scalars_times_arrays():
    def f(s, x, t):
        return np.sum(s * x * t + np.exp(s) * x) + t * np.mean(x)
    args = (0.3, arr(3, 2), 1.7)
    check_all(f, args, (0, 1, 2))
    args = (np.float64(0.3), arr(3, 2), 1.7)
    check_all(f, args, (0, 1, 2))


def test_keepdims_and_axis_reductions():
    def log_softmax_loss(z, w):
        z = z - np.max(z, axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return np.sum(logp * w) + np.sum(np.mean(z, axis=0) ** 2) \
            + np.sum(np.sum(z * z, axis=-1))
    g = check_all(log_softmax_loss, (arr(4, 3), arr(4, 3)), (0, 1))
    assert "sum_vjp" not in g.source and "mean_vjp" not in g.source, g.source
    assert "max_vjp" not in g.source, g.source


def test_max_ties_split_as_the_rule_does():
    def f(x):
        return np.sum(np.max(x, axis=0, keepdims=True) * 2.0) + np.max(x)
    x = np.array([[1.0, 2.0, 2.0], [1.0, 0.5, 2.0]])
    g = transpile.grad(f)
    # column maxima: ties in columns 0 and 2 split 2.0 evenly; the overall maximum 2.0
    # is attained three times: 1/3 each
    expected = np.array([[1.0, 2.0 + 1 / 3, 1.0 + 1 / 3], [1.0, 0.0, 1.0 + 1 / 3]])
    assert np.allclose(g(x), expected), g(x)
    assert "max_vjp" not in g.source, g.source
    # the comparison that finds the maxima is made once for the selection and its count
    assert g.source.count(" == ") == 2, g.source
    # away from ties: central differences
    check_all(f, (arr(3, 4),), 0)


def test_one_dimensional_matmul_and_dot():
    def f(a, B, c):
        return np.sum(np.tanh(a @ B) * c) + np.dot(a, a) + np.dot(B, c) @ a
    args = (arr(3), arr(3, 4), arr(4))
    g = check_all(f, args, (0, 1, 2))
    assert "matmul_vjp" not in g.source and "dot_vjp" not in g.source, g.source


def test_transpose_and_reshape():
    def f(A, x):
        y = A.T @ x
        return np.sum(y.reshape(2, -1) ** 2) + np.sum(np.transpose(A) * A.T)
    check_all(f, (arr(3, 4), arr(3)), (0, 1))


def test_array_methods_and_literal_reshapes():
    def f(A, x):
        y = A.T @ x
        z = y.reshape(2, 2)
        return np.sum(z.sum(axis=0) ** 2) + np.sum(A.reshape(2, 6) * 2.0) \
            + np.sum(A.sum(axis=1, keepdims=True) * A)
    g = check_all(f, (arr(3, 4), arr(3)), (0, 1))
    assert "transpose_vjp" not in g.source and "sum_vjp" not in g.source, g.source
    assert "d_t1.T" in g.source, g.source


def test_second_order_through_inlined_templates():
    """Forward over reverse differentiates the inlined NumPy code."""
    def f(x, W):
        return np.mean(np.tanh(W @ x) ** 2) + np.sum(x * x) * np.sum(W)
    x, W = arr(3), arr(2, 3)
    H = transpile.hessian(f)(x, W)
    grad0 = transpile.grad(f)

    def gi(x, i):
        return grad0(x, W)[i]
    eps = 1e-6
    expected = np.array([[(gi(x + eps * np.eye(3)[j], i) - gi(x - eps * np.eye(3)[j], i))
                          / (2 * eps) for j in range(3)] for i in range(3)])
    assert np.allclose(H, expected, atol=1e-6), (H, expected)
    v = arr(3)
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        hv = transpile.hvp(f, mode=mode)
        assert np.allclose(hv(x, W, v=v), expected @ v, atol=1e-6), mode
    HW = transpile.hessian(f, wrt=1)(x, W)
    gW = transpile.grad(f, wrt=1)
    E = np.zeros((2, 3))
    E[1, 2] = eps
    column = (gW(x, W + E) - gW(x, W - E)) / (2 * eps)
    assert np.allclose(HW[:, :, 1, 2], column, atol=1e-6)


def test_float32_and_integer_arrays_stay_general():
    def f(W, X):
        return np.sum(np.tanh(X @ W))
    W, X = arr(3, 2).astype(np.float32), arr(4, 3).astype(np.float32)
    g = transpile.grad(f)
    got = g(W, X)
    assert got.dtype == np.float32
    expected = central_wrt(lambda W, X: f(W.astype(np.float64), X.astype(np.float64)),
                           (W.astype(np.float64), X.astype(np.float64)), 0)
    assert np.allclose(got, expected, atol=1e-4)
    assert "matmul_vjp" in g.source         # not a float64 array: the general rule


def g_writes_its_result(x):
    r = x * 2.0
    r[0] = 0.0
    return r


def test_inlined_reduction_adjoints_can_be_updated_in_place():
    """The adjoint a sum or mean template makes is a new array: a callee whose result is
    written to (its adjoint updated in place) receives it."""
    def total(x):
        return np.sum(g_writes_its_result(x))

    def rows(x):
        return np.sum(np.sum(g_writes_its_result(x), axis=1))

    def average(x):
        return np.mean(g_writes_its_result(x))
    x = arr(2, 3)
    for f in (total, rows, average):
        check_all(f, (x,), 0)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_slices_that_leave_out_as_many_elements_have_one_shape():
    """x[1:] and x[:-1] have the same length (which may be 1): the gradient needs no
    unbroadcast, no sum vjp, no np.full and no seed of unknown shape; the code made for
    a 2-vector (slices of length 1) serves a 7-vector too."""
    g = transpile.grad(rosenbrock)
    for n in (2, 3, 7):
        x = arr(n)
        assert np.allclose(g(x), central_wrt(rosenbrock, (x,), 0), atol=1e-5, rtol=1e-6)
    src = g.source
    for absent in ("unbroadcast", "sum_vjp", "np.full", "result_seed"):
        assert absent not in src, src


def test_a_slice_of_length_one_still_broadcasts():
    """A slice's length may be 1: against another array it proves nothing about that
    array, and the sums back to the slice's shape stay (the same code serves a slice of
    length 1, broadcast, and of length 5, matching)."""
    def f(x, y):
        return np.sum(x[1:] * y) + np.sum(x[:-1] ** 2 * y) + np.sum(x[1:] - x[:-1])
    g = transpile.grad(f, wrt=(0, 1))
    for n in (2, 6):
        args = (arr(n), arr(5))
        got = g(*args)
        for i in (0, 1):
            expected = central_wrt(f, args, i)
            assert np.shape(got[i]) == np.shape(expected)
            assert np.allclose(got[i], expected, atol=1e-6), (n, i)


def test_slices_and_indices_of_matrices():
    def f(X, w):
        d = X[:, 1:] - X[:, :-1]
        return np.sum(d ** 2 * w) + np.sum(X[0] * X[-1]) + np.sum(X[1:, 0] ** 3) \
            + np.sum(X[1:-1, 2:] * X[:-2, :-2])
    for shape in ((4, 5), (3, 3), (4, 2)):
        w = arr(shape[1] - 1)
        check_all(f, (arr(*shape), w), (0, 1))
    check_all(f, (arr(4, 5), 0.5), (0, 1))


def test_a_mean_adjoint_is_left_to_the_operation_only_where_shapes_agree():
    """np.mean's adjoint, np.full(a.shape, g / a.size), is left to the product reading
    it where the other factor has a's shape, and kept where it does not (p * q with p
    smaller than q: p's adjoint sums the full array)."""
    def same(p, q):
        return np.mean(p * q)

    def smaller(p, q):
        return np.mean(p * q) + np.sum(q)
    g = check_all(same, (arr(3, 4), arr(3, 4)), (0, 1))
    assert "np.full" not in g.source, g.source
    for p, q in ((arr(4), arr(3, 4)), (arr(3, 1), arr(3, 4)), (arr(1, 4), arr(3, 4)),
                 (0.7, arr(3, 4))):
        check_all(same, (p, q), (0, 1))
        check_all(smaller, (p, q), (0, 1))


def test_numbers_read_off_shapes_seed_with_a_number():
    """X.shape[0], x.size and x.ndim are Python ints: a mean written by hand is a number,
    and its gradient seeds with 1.0."""
    def loss(W, X):
        return np.sum(np.tanh(X @ W) ** 2) / X.shape[0] + np.sum(W ** 2) / W.size / W.ndim
    g = check_all(loss, (arr(3, 2), arr(5, 3)), (0, 1))
    assert "result_seed" not in g.source and "np.full" not in g.source, g.source


def test_abs_of_real_arrays_differentiates_with_sign():
    def f(x, w):
        return np.sum(np.abs(x) * w) + np.sum(np.abs(x[0] * w))
    g = check_all(f, (arr(4) + 0.1, arr(4)), (0, 1))
    assert "np.sign(x)" in g.source and "abs_partial" not in g.source, g.source


def test_a_max_shift_masks_nothing_the_softmax_reads():
    """logits - max(logits): the maximum selects, but the softmax reads every logit, so no
    adjoint upstream is exactly 0 by selection: plain products (no mul_masked) in the
    layers below. What a selection alone reads keeps its exact zeros."""
    def net(W1, W2, X, Y):
        h = np.tanh(X @ W1)
        z = h @ W2
        z = z - np.max(z, axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.sum(logp * Y)
    g = check_all(net, (arr(4, 3), arr(3, 2), arr(5, 4), arr(5, 2)), (0, 1))
    assert "mul_masked" not in g.source, g.source

    def selected(x, w):
        s = np.sqrt(x)                      # nan where x < 0, which np.where drops
        t = np.where(x > 0, s, 0.0)
        return np.sum(w * t) + np.sum(w * x)
    x = np.array([0.5, -1.0, 2.0, -0.3])
    with np.errstate(invalid="ignore"):
        got = transpile.grad(selected, wrt=0)(x, arr(4))
    assert np.all(np.isfinite(got)), got


def test_a_python_number_broadcast_over_an_array_gets_the_sum():
    """`X @ w + b` with b a Python float: b's adjoint is the sum of z's, a Python float,
    written out (`float(np.sum(dz))`, as unbroadcast computes it) instead of the call."""
    def f(w, b, X):
        z = X @ w + b
        return np.mean(np.log1p(np.exp(-np.abs(z))) + z * z)
    w, X = arr(3), arr(6, 3)
    g = check_all(f, (w, 0.3, X), (0, 1))
    assert "unbroadcast" not in g.source and "float(" in g.source, g.source
    assert type(g(w, 0.3, X)[1]) is float
