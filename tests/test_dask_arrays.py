"""Gradients of NumPy programs on Dask arrays: lazy, never computed by transpile.

The programs are written with `np.` calls; NumPy dispatches them to Dask
(`__array_function__` / `__array_ufunc__`), and so does the derivative code
(transpile/namespaces.py). Every gradient is built under a scheduler that fails when
anything is computed, comes back as Dask arrays for Dask inputs, and once computed
matches central differences of the same program on NumPy arrays. Control flow on lazy
values is one TranspileError at its line.
"""
import math

import numpy as np
import pytest

import transpile
from finite_differences import central_wrt

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


# --- programs, as people write them with NumPy -------------------------------------------

def logistic(w, X, y):
    z = X @ w
    p = 1 / (1 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def mlp(W1, b1, W2, X, y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2
    return np.sum((out - y) ** 2) / X.shape[0]


def softmax_xent(W, X, Y):
    z = X @ W
    z = z - np.max(z, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * (z - lse), axis=1))


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def relu_net(W, X):
    h = np.maximum(X @ W, 0.0)
    return np.sum(np.sqrt(h * h + 1.0))


def where_clip(x):
    y = np.where(x > 0, x ** 2, -x)
    return np.sum(np.clip(y, -1.0, 0.5) * x)


def layers(x, Ws):
    h = x
    for W in Ws:
        h = np.sin(h @ W)
    return np.sum(h)


def branch_on_shape(x):
    if x.shape[0] > 3 and len(x) > 1:
        return np.sum(x ** 3)
    return np.sum(x)


def joined(a, b):
    c = np.concatenate([a, b * 2.0])
    return np.sum(c * c) + np.sum(np.stack([a, b]) ** 3)


def norms(x):
    return np.linalg.norm(x) + np.sum(np.abs(x)) + np.prod(x[:3])


def moments(x):
    return np.var(x) + np.std(x, axis=0).sum() + np.mean(x, axis=(0,)).sum()


def with_number(x, s):
    return s * np.sum(np.exp(x * s)) + math.sin(s)


def in_place(x):
    out = np.zeros_like(x)
    out[1:] = x[:-1] * 2.0
    out[0] = x[-1]
    return np.sum(out * x)


def gathered(x, idx):
    return np.sum(x[idx] ** 2) + np.sum(np.take(x, idx) * 3.0)


def products(A, v):
    return np.sum(np.dot(A, v) ** 2) + np.sum(np.sum(A, axis=0) * v) + np.sum(np.outer(v, v))


def recurrence(x, n):
    t = x
    for _ in range(n):
        t = np.cos(t) * x
    return np.sum(t)


def while_over_shape(x):
    k = 0
    s = 0.0
    while k < x.shape[0]:
        s = s + x[k] ** 2
        k += 1
    return s


def log_sum_exp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def attention(Q, K, V):
    S = Q @ K.T / np.sqrt(Q.shape[1])
    S = S - np.max(S, axis=1, keepdims=True)
    P = np.exp(S)
    P = P / np.sum(P, axis=1, keepdims=True)
    return np.sum((P @ V) ** 2)


def constant_gradient(x):
    return np.sum(x) + 2.0 * np.mean(x)


def contractions(A, B):
    return np.sum(np.einsum("ij,jk->ik", A, B) ** 2) + np.sum(np.tensordot(A, B, axes=1))


def running(x):
    return np.sum(np.cumsum(x) ** 2) + np.sum(np.cumprod(x[:4]))


def methods(A):
    return (A.T @ A).sum() + A.reshape(-1).mean() + A.max(axis=0).sum() + A.std()


def solved(A, b):
    return np.sum(np.linalg.solve(A @ A.T + 3 * np.eye(A.shape[0]), b) ** 2)


def standardised(x):
    return np.sum((x - np.mean(x, axis=1, keepdims=True)) ** 2
                  / np.var(x, axis=1, keepdims=True))


def strided(x):
    return np.sum(x[::2] ** 2) + np.sum(x[x.shape[0] // 2:]) + x[3] * x[-1]


rng = np.random.default_rng(7)
X = rng.normal(size=(40, 6))
CASES = {
    "logistic": (logistic, (rng.normal(size=6), X, (rng.random(40) > .5) * 1.0), (0,)),
    "mlp": (mlp, (rng.normal(size=(6, 5)), rng.normal(size=5), rng.normal(size=(5, 2)), X,
                  rng.normal(size=(40, 2))), (0, 1, 2)),
    "softmax": (softmax_xent, (rng.normal(size=(6, 3)), X,
                               np.eye(3)[rng.integers(0, 3, 40)]), (0,)),
    "rosenbrock": (rosenbrock, (rng.normal(size=20),), (0,)),
    "relu": (relu_net, (rng.normal(size=(6, 4)), X), (0,)),
    "where_clip": (where_clip, (rng.normal(size=30),), (0,)),
    "layers": (layers, (rng.normal(size=(5, 4)), [rng.normal(size=(4, 4)) for _ in range(3)]),
               (0, 1)),
    "branch_on_shape": (branch_on_shape, (rng.normal(size=6),), (0,)),
    "joined": (joined, (rng.normal(size=6), rng.normal(size=6)), (0, 1)),
    "norms": (norms, (rng.normal(size=8),), (0,)),
    "moments": (moments, (rng.normal(size=(10, 4)),), (0,)),
    "with_number": (with_number, (rng.normal(size=8), 0.7), (0, 1)),
    "in_place": (in_place, (rng.normal(size=8),), (0,)),
    "gathered": (gathered, (rng.normal(size=8), np.array([0, 2, 2, 5])), (0,)),
    "products": (products, (rng.normal(size=(5, 4)), rng.normal(size=4)), (0, 1)),
    "recurrence": (recurrence, (rng.normal(size=6), 3), (0,)),
    "while_over_shape": (while_over_shape, (rng.normal(size=5),), (0,)),
    "log_sum_exp": (log_sum_exp, (rng.normal(size=9),), (0,)),
    "attention": (attention, (rng.normal(size=(6, 4)), rng.normal(size=(5, 4)),
                              rng.normal(size=(5, 3))), (0, 1, 2)),
    "constant_gradient": (constant_gradient, (rng.normal(size=(6, 2)),), (0,)),
    "contractions": (contractions, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2))),
                     (0, 1)),
    "running": (running, (rng.normal(size=6),), (0,)),
    "methods": (methods, (rng.normal(size=(4, 3)),), (0,)),
    "solved": (solved, (rng.normal(size=(3, 3)), rng.normal(size=3)), (0, 1)),
    "standardised": (standardised, (rng.normal(size=(3, 5)),), (0,)),
    "strided": (strided, (rng.normal(size=8),), (0,)),
}


def _never_compute(*args, **kwargs):
    raise AssertionError("the derivative code computed a Dask array")


def to_dask(value):
    """Float arrays as Dask arrays of two chunks per axis (lists of them likewise)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return da.from_array(value, chunks=tuple(max(1, n // 2) for n in value.shape))
    if isinstance(value, list):
        return [to_dask(v) for v in value]
    return value


def leaves(value):
    return [leaf for v in value for leaf in leaves(v)] if isinstance(
        value, (list, tuple)) else [value]


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_on_dask_arrays_is_lazy_and_right(name):
    f, args, wrt = CASES[name]
    dargs = [to_dask(a) for a in args]
    with dask.config.set(scheduler=_never_compute):
        value, grads = transpile.value_and_grad(f, wrt=wrt)(*dargs)
    for i, g in zip(wrt, grads):
        for x, gx in zip(leaves(dargs[i]), leaves(g)):
            assert isinstance(gx, da.Array), (name, i, type(gx))   # a number's: 0-d
            assert gx.shape == np.shape(x) and gx.dtype == getattr(x, "dtype", gx.dtype)
    assert value.__class__ is not float           # the value is lazy too
    computed = dask.compute(value, grads)
    assert np.isclose(float(computed[0]), f(*args), rtol=1e-12)
    for i, g in zip(wrt, computed[1]):
        if isinstance(args[i], list):             # a list of arrays: each element
            for k, gk in enumerate(g):
                expected = central_wrt(lambda v: f(*args[:i], args[i][:k] + [v]
                                                   + args[i][k + 1:], *args[i + 1:]),
                                       [args[i][k]])
                np.testing.assert_allclose(gk, expected, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_allclose(np.asarray(g), central_wrt(f, args, i),
                                       rtol=1e-5, atol=1e-6)


def test_dask_gradient_matches_numpy_gradient_exactly_in_value():
    """The same derivative code on NumPy and on Dask arrays (chunked sums may differ in
    the last bits)."""
    f, args, wrt = CASES["mlp"]
    ref = transpile.grad(f, wrt=wrt)(*args)
    got = dask.compute(transpile.grad(f, wrt=wrt)(*[to_dask(a) for a in args]))[0]
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_numpy_and_dask_arguments_get_their_own_derivative_code():
    g = transpile.grad(logistic)
    _, args, _ = CASES["logistic"]
    assert isinstance(g(*args), np.ndarray)
    assert isinstance(g(*[to_dask(a) for a in args]), da.Array)
    assert isinstance(g(*args), np.ndarray)


# --- control flow on lazy values: one TranspileError at its line ---------------------------

def branch_on_values(x):
    s = np.sum(x)
    if s > 0:
        return s * 2
    return np.sum(x ** 2)


def number_of_values(x):
    v = float(np.sum(x))
    return v * 2.0


def steps_from_values(x, n):
    t = 0.0
    for _ in range(int(np.sum(n))):
        t = t + np.sum(x)
    return t


def picks(y):
    return np.sum(y) if np.max(y) > 1 else np.sum(y * y)


def calls_picks(x):
    return picks(x * 2.0)


def _line(fn, text):
    import inspect
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("fn, args, where, text", [
    (branch_on_values, (da.ones(4, chunks=2),), branch_on_values, "if s > 0"),
    (number_of_values, (da.ones(4, chunks=2),), number_of_values, "float("),
    (steps_from_values, (da.ones(4, chunks=2), da.ones(2)), steps_from_values, "range("),
    (calls_picks, (da.ones(4, chunks=2),), picks, "if np.max"),
])
def test_control_flow_on_lazy_values_is_refused_at_its_line(fn, args, where, text):
    with dask.config.set(scheduler=_never_compute):
        with pytest.raises(transpile.TranspileError) as info:
            transpile.grad(fn)(*args)
    message = str(info.value)
    assert f":{_line(where, text)}:" in message and "Dask" in message, message
    assert "lazy" in message


def test_the_same_functions_on_numpy_arrays_still_branch():
    x = np.array([0.5, -0.2, 0.3])
    np.testing.assert_allclose(transpile.grad(branch_on_values)(x), 2.0 * np.ones(3))
    np.testing.assert_allclose(transpile.grad(calls_picks)(x), 8.0 * x)


@pytest.mark.parametrize("name", ["constant_gradient", "moments", "logistic", "softmax"])
def test_the_gradient_graph_of_a_big_array_carries_no_data(name):
    """An adjoint that does not depend on the data (a mean's) is built lazily in Dask,
    never as a NumPy array of the input's shape sent along with the graph."""
    cloudpickle = pytest.importorskip("cloudpickle")
    f, args, wrt = CASES[name]
    rows = 4_000_000
    big = {"constant_gradient": (da.random.random((rows, 2), chunks=(rows // 4, 2)),),
           "moments": (da.random.random((rows, 4), chunks=(rows // 4, 4)),)}.get(name)
    if big is None:
        X = da.random.random((rows, 6), chunks=(rows // 4, 6))
        y = da.ones(rows, chunks=rows // 4) if name == "logistic" else \
            da.ones((rows, 3), chunks=(rows // 4, 3))
        big = (args[0], X, y)
    with dask.config.set(scheduler=_never_compute):
        grads = transpile.grad(f, wrt=wrt)(*big)
    graph = dict(dask.array.Array.__dask_graph__(leaves(grads)[0]))
    assert len(cloudpickle.dumps(graph)) < 200_000      # the data is 32-192 MB


def test_forward_mode_on_dask_arrays_is_lazy_and_right():
    f, args, _ = CASES["softmax"]
    W = args[0]
    V = np.random.default_rng(3).normal(size=W.shape)
    dargs = [to_dask(a) for a in args]
    with dask.config.set(scheduler=_never_compute):
        value, tangent = transpile.jvp(f, dargs, [to_dask(V)] + [None] * (len(args) - 1))
    assert isinstance(tangent, da.Array)
    expected = (f(W + 1e-6 * V, *args[1:]) - f(W - 1e-6 * V, *args[1:])) / 2e-6
    np.testing.assert_allclose(float(tangent.compute()), expected, rtol=1e-6)


def hidden_layer(params, X):
    return np.sum(np.tanh(X @ params["W"] + params["b"]) ** 2)


class Layer:
    def __init__(self, W):
        self.W = W

    def __call__(self, x):
        return np.tanh(x @ self.W)


def model_loss(model, x):
    return np.sum(model(x))


def test_dicts_and_objects_of_dask_arrays():
    W, b, X = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(6, 3))
    with dask.config.set(scheduler=_never_compute):
        g = transpile.grad(hidden_layer)({"W": to_dask(W), "b": to_dask(b)}, to_dask(X))
        m = transpile.grad(model_loss)(Layer(to_dask(W)), to_dask(X))
    assert isinstance(g["W"], da.Array) and isinstance(g["b"], da.Array)
    assert isinstance(m, Layer) and isinstance(m.W, da.Array)
    np.testing.assert_allclose(g["W"].compute(), central_wrt(
        lambda W_: hidden_layer({"W": W_, "b": b}, X), [W]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.W.compute(), central_wrt(
        lambda W_: model_loss(Layer(W_), X), [W]), rtol=1e-5, atol=1e-6)


def selects_by_values(x):
    return np.sum(x[x > 0] ** 2)


def test_indexing_a_dask_array_by_its_values_is_refused_at_its_line():
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(selects_by_values)(da.ones(4, chunks=2))
    message = str(info.value)
    assert f":{_line(selects_by_values, 'x[x > 0]')}:" in message and "Dask" in message
    x = np.array([0.5, -1.0, 2.0])                    # NumPy arrays: the same code works
    np.testing.assert_allclose(transpile.grad(selects_by_values)(x), [1.0, 0.0, 4.0])
