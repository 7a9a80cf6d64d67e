"""Programs written against the Array API (`xp = array_namespace(x)`), differentiated on
NumPy, array-api-strict, PyTorch, JAX and Dask arrays, and on CuPy and PyTorch-CUDA where
a GPU exists. Every gradient comes back as an array of the argument's own library and
matches central differences of the same program on NumPy arrays. What a backend cannot do
is one TranspileError at the user's line."""
import inspect

import numpy as np
import pytest

import transpile
from finite_differences import central_wrt

array_api_compat = pytest.importorskip("array_api_compat")
array_namespace = array_api_compat.array_namespace
try:
    import array_api_strict as strict
except ImportError:                 # (its tests skip)
    strict = None


# --- programs ------------------------------------------------------------------------------

def logistic(w, X, y):
    xp = array_namespace(w, X, y)
    z = X @ w
    p = 1 / (1 + xp.exp(-z))
    return -xp.mean(y * xp.log(p) + (1 - y) * xp.log(1 - p))


def mlp(W1, b1, W2, X, y):
    xp = array_namespace(X)
    h = xp.tanh(X @ W1 + b1)
    out = h @ W2
    return xp.sum((out - y) ** 2) / X.shape[0]


def softmax_xent(W, X, Y):
    xp = array_namespace(W, X)
    z = X @ W
    z = z - xp.max(z, axis=1, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
    return -xp.mean(xp.sum(Y * (z - lse), axis=1))


def rosenbrock(x):
    xp = array_namespace(x)
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def selections(x):
    xp = array_namespace(x)
    y = xp.where(x > 0, x ** 2, -x)
    return xp.sum(xp.clip(y, -1.0, 0.5) * x) + xp.sum(xp.maximum(x, 0.1) - xp.minimum(x, 0.3))


def reshaped(A):
    xp = array_namespace(A)
    B = xp.reshape(A, (A.shape[0] // 2, -1))
    C = xp.permute_dims(B, (1, 0))
    return (xp.sum(C @ B) + xp.mean(xp.matrix_transpose(A) * 2.0)
            + xp.sum(xp.expand_dims(A, axis=0) ** 2) + xp.sum(xp.flip(A, axis=1) * A))


def joined(a, b):
    xp = array_namespace(a, b)
    c = xp.concat([a, b * 2.0])
    return xp.sum(c * c) + xp.sum(xp.stack([a, b], axis=1) ** 3)


def moments(x):
    xp = array_namespace(x)
    return (xp.var(x) + xp.sum(xp.std(x, axis=0, correction=1.0)) + xp.sum(xp.mean(x, axis=0))
            + xp.max(x) - xp.min(x, axis=0)[0, ...])


def elementwise(x):
    xp = array_namespace(x)
    return xp.sum(xp.sin(x) * xp.cos(x) + xp.sqrt(xp.abs(x) + 1.0) + xp.atan(x)
                  + xp.logaddexp(x, 0.5 * x) + xp.expm1(x) + xp.log1p(x * x) + xp.square(x)
                  + xp.pow(xp.abs(x) + 1.0, 1.5) + xp.tanh(x) / (1.0 + xp.exp(x))
                  + xp.asinh(x) + xp.sinh(x) * xp.cosh(x))


def products(x, y):
    xp = array_namespace(x, y)
    return (xp.sum(xp.vecdot(x, y)) + xp.prod(x[0, ...]) + xp.sum(xp.prod(y, axis=1))
            + xp.sum(xp.cumulative_sum(x, axis=1) ** 2))


def layers(x, Ws):
    xp = array_namespace(x)
    h = x
    for W in Ws:
        h = xp.sin(h @ W)
    return xp.sum(h)


def in_place(x):
    xp = array_namespace(x)
    out = xp.zeros_like(x)
    out[1:] = x[:-1] * 2.0
    out[0] = x[-1]
    return xp.sum(out * x)


def _layer(h, W):
    xp = array_namespace(h, W)
    return xp.tanh(h @ W)


def calls_a_layer(x, W):
    xp = array_namespace(x)
    return xp.sum(_layer(x, W) ** 2)


def namespace_argument(x, xp):
    return xp.sum(xp.exp(x) * x)


def norms_and_contractions(x, y):
    xp = array_namespace(x, y)
    return (xp.linalg.vector_norm(x) + xp.sum(xp.linalg.vector_norm(y, axis=1))
            + xp.linalg.vector_norm(x, ord=1) + xp.linalg.vector_norm(y, ord=3.0)
            + xp.sum(xp.tensordot(x, y, axes=2)) + xp.sum(xp.tensordot(x, y.T, axes=1) ** 2))


rng = np.random.default_rng(11)
X = rng.normal(size=(12, 5))
CASES = {
    "logistic": (logistic, (rng.normal(size=5), X, (rng.random(12) > .5) * 1.0), (0,)),
    "mlp": (mlp, (rng.normal(size=(5, 4)), rng.normal(size=4), rng.normal(size=(4, 2)), X,
                  rng.normal(size=(12, 2))), (0, 1, 2)),
    "softmax": (softmax_xent, (rng.normal(size=(5, 3)), X,
                               np.eye(3)[rng.integers(0, 3, 12)]), (0,)),
    "rosenbrock": (rosenbrock, (rng.normal(size=10),), (0,)),
    "selections": (selections, (rng.normal(size=11),), (0,)),
    "reshaped": (reshaped, (rng.normal(size=(4, 6)),), (0,)),
    "joined": (joined, (rng.normal(size=5), rng.normal(size=5)), (0, 1)),
    "moments": (moments, (rng.normal(size=(6, 3)),), (0,)),
    "elementwise": (elementwise, (rng.normal(size=7) * 0.5,), (0,)),
    "products": (products, (rng.normal(size=(3, 4)), np.array(
        [[0.5, 0.0, 2.0, -1.5], [0.7, 1.2, -0.3, 0.9], [1.1, -0.4, 0.0, 0.0]])), (0, 1)),
    "layers": (layers, (rng.normal(size=(3, 4)), [rng.normal(size=(4, 4)) for _ in range(2)]),
               (0,)),
    "in_place": (in_place, (rng.normal(size=6),), (0,)),
    "calls_a_layer": (calls_a_layer, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2))),
                      (0, 1)),
    "norms_and_contractions": (norms_and_contractions, (rng.normal(size=(3, 4)),
                                                        rng.normal(size=(3, 4))), (0, 1)),
}


# --- backends: how to make their arrays, how to read them back ------------------------------

def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax.numpy


def _torch_on(device):
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    return lambda a: torch.asarray(a, device=device), lambda t: t.detach().cpu().numpy()


def _cupy():
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("no CUDA GPU on this machine")
    return cupy.asarray, cupy.asnumpy


def backend(name):
    """(make, read): a NumPy array to the backend's array, and back."""
    if name == "numpy":
        return (lambda a: a), np.asarray
    if name == "array_api_strict":
        strict = pytest.importorskip("array_api_strict")
        return strict.asarray, lambda a: np.asarray(strict.asarray(a, copy=True)._array)
    if name == "torch":
        return _torch_on("cpu")
    if name == "torch-cuda":
        return _torch_on("cuda")
    if name == "jax":
        jnp = _jax()
        return jnp.asarray, np.asarray
    if name == "dask":
        da = pytest.importorskip("dask.array")
        return (lambda a: da.from_array(a, chunks=tuple(max(1, n // 2) for n in a.shape))), \
            (lambda a: np.asarray(a.compute()))
    if name == "cupy":
        return _cupy()
    raise ValueError(name)


BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "dask", "cupy", "torch-cuda"]


def convert(value, make):
    if isinstance(value, list):
        return [convert(v, make) for v in value]
    return make(value) if isinstance(value, np.ndarray) else value


def _library(array):
    return type(array).__module__.partition(".")[0]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("library", BACKENDS)
def test_gradient_on_each_backend(library, name):
    make, read = backend(library)
    f, args, wrt = CASES[name]
    if library == "jax" and name == "in_place":
        pytest.skip("JAX arrays are immutable: see test_jax_refuses_in_place_writes")
    if library == "dask" and name == "reshaped":
        pytest.skip("Dask's reshape refuses these chunks: the program itself fails on Dask")
    given = [convert(a, make) for a in args]
    grads = transpile.grad(f, wrt=wrt)(*given)
    for i, g in zip(wrt, grads):
        if isinstance(args[i], list):
            continue
        assert _library(g) == _library(given[i]), (type(g), type(given[i]))
        assert tuple(g.shape) == args[i].shape
        np.testing.assert_allclose(read(g), central_wrt(f, args, i), rtol=1e-5, atol=1e-6)
    value = f(*given)
    np.testing.assert_allclose(float(read(value)), f(*args), rtol=1e-12)


@pytest.mark.parametrize("library", ["numpy", "array_api_strict", "torch", "jax"])
def test_a_namespace_passed_as_an_argument(library):
    make, read = backend(library)
    x = np.array([0.3, -0.2, 0.5])
    xp = array_namespace(make(x))
    g = transpile.grad(namespace_argument)(make(x), xp)
    np.testing.assert_allclose(read(g), np.exp(x) * (1 + x), rtol=1e-12)


def _strict_program(x):
    return strict.sum(strict.sin(x) * x)      # the module itself, as a global


def test_array_api_strict_module_used_directly():
    if strict is None:
        pytest.skip("array-api-strict is not installed")
    x = np.array([0.1, 0.7, -0.4])
    g = transpile.grad(_strict_program)(strict.asarray(x))
    _, read = backend("array_api_strict")
    np.testing.assert_allclose(read(g), np.cos(x) * x + np.sin(x), rtol=1e-12)


def test_numpy_and_torch_arguments_get_their_own_derivative_code():
    torch = pytest.importorskip("torch")
    f, args, wrt = CASES["mlp"]
    g = transpile.grad(f, wrt=wrt)
    a = g(*args)
    b = g(*[convert(v, torch.asarray) for v in args])
    c = g(*args)
    assert all(isinstance(x, np.ndarray) for x in a + c)
    assert all(isinstance(x, torch.Tensor) for x in b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.numpy(), x, rtol=1e-12)


def test_float32_arguments_get_float32_gradients():
    torch = pytest.importorskip("torch")
    f, args, wrt = CASES["logistic"]
    g = transpile.grad(f)(*[torch.asarray(a, dtype=torch.float32) for a in args])
    assert g.dtype == torch.float32


# --- what a backend cannot do: one TranspileError at the user's line -----------------------

def _writes_in_a_callee(x):
    xp = array_namespace(x)
    return xp.sum(_filled(x) * x)


def _filled(x):
    xp = array_namespace(x)
    out = xp.zeros_like(x)
    out[0] = x[1]
    return out


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("fn, where", [(in_place, in_place), (_writes_in_a_callee, _filled)])
def test_jax_refuses_in_place_writes(fn, where):
    jnp = _jax()
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(fn)(jnp.asarray(np.arange(4.0)))
    message = str(info.value)
    assert "JAX" in message and f":{_line_of(where, '] = ')}:" in message, message


def _unsupported(x):
    xp = array_namespace(x)
    return xp.sum(xp.linalg.inv(x))


@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
def test_a_function_without_a_rule_is_refused_at_its_line(library):
    make, _ = backend(library)
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(_unsupported)(make(np.eye(3)))
    assert f":{_line_of(_unsupported, 'linalg.inv')}:" in str(info.value)


def _namespace_in_a_variable(x):
    import numpy
    xp = numpy if x.ndim > 5 else array_namespace(x)
    return xp.sum(x * x)


def test_a_namespace_not_assigned_by_array_namespace_is_refused_not_guessed():
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(_namespace_in_a_variable)(np.ones(3))
    assert "array_namespace" in str(info.value)


@pytest.mark.parametrize("library", ["torch", "jax", "array_api_strict"])
def test_forward_mode_on_each_backend(library):
    make, read = backend(library)
    f, args, _ = CASES["mlp"]
    V = np.random.default_rng(5).normal(size=args[0].shape)
    given = [convert(a, make) for a in args]
    _, tangent = transpile.jvp(f, given, [make(V)] + [None] * (len(args) - 1))
    assert _library(tangent) == _library(given[0])
    expected = (f(args[0] + 1e-6 * V, *args[1:]) - f(args[0] - 1e-6 * V, *args[1:])) / 2e-6
    np.testing.assert_allclose(float(read(tangent)), expected, rtol=1e-6)


@pytest.mark.parametrize("library", ["torch", "dask"])
def test_jit_refuses_arrays_of_other_libraries(library):
    pytest.importorskip("numba")
    make, _ = backend(library)
    f, args, _ = CASES["rosenbrock"]
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(f, jit=True)(make(args[0]))
    assert "jit=False" in str(info.value)


def _numpy_program(x):
    return np.sum(np.sin(x) * x)


@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
def test_numpy_functions_on_tensors_are_refused_at_their_line(library):
    make, _ = backend(library)
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(_numpy_program)(make(np.array([0.1, 0.2])))
    message = str(info.value)
    assert f":{_line_of(_numpy_program, 'np.sum')}:" in message and "xp." in message

