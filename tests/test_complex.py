"""Complex numbers, in autograd's convention (registry.COMPLEX): for a real-valued f of
z = x + iy the gradient is df/dx - i df/dy (the conjugate of JAX's), a real argument's
gradient is real, and a rule that does not declare how it holds for complex values is one
TranspileError where its arguments may be complex, never a number.

Every gradient is checked against central differences along the real and the imaginary
axis of each element; tangents (transpile.jvp) against the directional difference."""
import numpy as np
import pytest

import transpile
from finite_differences import central_complex_wrt, central_wrt

rng = np.random.default_rng(7)


def C(*shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


fd_grad = central_complex_wrt     # df/dx - i df/dy (df/dx for a real argument)


def close(a, b, tol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


# --- programs (module level: transpile reads their source) ------------------------------
def elementwise(z):
    return np.sum(np.abs(np.sin(z) * np.exp(z) / (1.0 + z * z)) ** 2)


def unary_zoo(z):
    s = np.cos(z) + np.tan(z) + np.sinh(z) + np.cosh(z) + np.tanh(z) + np.log(z + 3.0)
    s = s + np.sqrt(z + 3.0) + np.arcsinh(z) + np.arctan(z) + np.square(z) + z ** 3
    s = s + np.expm1(z) + np.log1p(z + 2.0) + np.log2(z + 3.0) + np.log10(z + 3.0)
    s = s + np.reciprocal(z + 3.0) + np.exp2(z) + 2.0 ** z + np.power(z + 3.0, 1.5)
    return np.real(np.sum(s * (0.3 - 0.7j)))


def parts(z):
    return np.sum(np.real(z) ** 2 * np.imag(z) + np.angle(z) + np.abs(z) * z.real
                  - z.imag ** 3 + np.real(z.conj() * z * (1 + 2j)))


def conj_product(z, w):
    return np.real(np.sum(np.conj(z) * w * np.conjugate(w)))


def mixed_real(x, c):
    return np.real(np.sum(np.exp(x * c) + x * np.abs(c)))


def from_real(x):
    z = x * (1.0 + 2.0j)
    w = z * z + 1j * x
    return np.sum(np.abs(w) + np.imag(w * z))


def real_after_complex_tree(x, z):
    return np.sum(np.abs(z * x) + np.real(np.sin(x) * z) * x)


def linear_algebra(a, b):
    m = a @ b
    return np.real(np.sum(m * np.conj(m))) + np.abs(np.dot(a[0], b[:, 1])) + \
        np.real(np.trace(np.transpose(a) @ a))


def indexing(z):
    s = 0.0
    for i in range(z.shape[0]):
        s = s + np.abs(z[i] * z[-1 - i]) ** 2
    return s + np.real(np.sum(z[1:] * z[:-1])) + np.abs(np.sum(z.reshape(2, 2)))


def scalar_python(z):
    w = z * z + 3 * z - 1j
    return abs(w) + (w * w.conjugate()).real + complex(z.real, -z.imag).imag


def build_complex(a, b):
    z = complex(a, b)
    return abs(z * z + z)


def helper(z, k):
    return np.sin(z) * k


def calls_a_function(z, x):
    return np.sum(np.abs(helper(z, x)) ** 2 + np.real(helper(x, z)))


def loop_with_updates(z):
    acc = z
    for _ in range(3):
        acc = acc * z + 0.5j
    return np.sum(np.abs(acc))


def reductions(z):
    return np.abs(np.sum(z)) + np.abs(np.mean(z * z)) + np.abs(np.prod(z)) + \
        np.real(np.sum(np.cumsum(z)))


def close_to_real(z):
    return np.sum(np.real_if_close(z * np.conj(z)) ** 2) + np.real(np.sum(np.real_if_close(z)))


def stacking(z, w):
    s = np.concatenate([z, w]) * np.stack([w, z]).ravel()
    return np.sum(np.abs(s) ** 2)


CASES = [
    (elementwise, lambda: [C(4) * 0.5]),
    (unary_zoo, lambda: [C(3) * 0.3]),
    (parts, lambda: [C(5)]),
    (conj_product, lambda: [C(3), C(3)]),
    (mixed_real, lambda: [rng.normal(size=3), 0.2 + 1.1j]),
    (from_real, lambda: [rng.normal(size=4)]),
    (real_after_complex_tree, lambda: [rng.normal(size=3), C(3)]),
    (linear_algebra, lambda: [C(3, 3), C(3, 2)]),
    (indexing, lambda: [C(4)]),
    (scalar_python, lambda: [0.4 - 0.8j]),
    (build_complex, lambda: [0.7, -0.3]),
    (calls_a_function, lambda: [C(3), rng.normal(size=3)]),
    (loop_with_updates, lambda: [C(3) * 0.5]),
    (reductions, lambda: [C(4)]),
    (stacking, lambda: [C(3), C(3)]),
    (close_to_real, lambda: [C(3)]),
]


@pytest.mark.parametrize("f, make", CASES, ids=[f.__name__ for f, _ in CASES])
def test_gradient(f, make):
    args = make()
    for i in range(len(args)):
        g = transpile.grad(f, wrt=i)(*args)
        ref = fd_grad(f, args, i)
        close(g, ref)
        # a real argument's gradient is real
        assert np.iscomplexobj(g) == np.iscomplexobj(args[i]) or not np.iscomplexobj(g)


@pytest.mark.parametrize("f, make", CASES, ids=[f.__name__ for f, _ in CASES])
def test_tangent(f, make):
    args = make()
    for i in range(len(args)):
        x = args[i]
        t = (rng.normal(size=np.shape(x)) + (1j * rng.normal(size=np.shape(x))
                                             if np.iscomplexobj(x) else 0))
        if not np.ndim(x):
            t = complex(t) if np.iscomplexobj(x) else float(t)
        tangents = [None] * len(args)
        tangents[i] = t
        value, tangent = transpile.jvp(f, args, tangents)
        eps = 1e-6

        def at(s):
            a = list(args)
            a[i] = x + s * t
            return f(*a)
        close(value, f(*args))
        close(tangent, (at(eps) - at(-eps)) / (2 * eps))


def test_convention_is_autograds():
    """|z|^2 has gradient 2 conj(z)... in autograd's convention: df/dx - i df/dy = 2x - 2iy."""
    def f(z):
        return np.abs(z) ** 2
    z = 0.3 + 0.4j
    assert transpile.grad(f)(z) == pytest.approx(2 * np.conj(z))


def holomorphic_square(z):
    return z * z


def test_vjp_of_a_holomorphic_function():
    """A holomorphic f's vjp of the cotangent 1 is f'(z) (autograd's convention)."""
    z = 0.3 + 0.4j
    value, pullback = transpile.vjp(holomorphic_square, z)
    assert value == pytest.approx(z * z)
    assert pullback(1.0) == pytest.approx(2 * z)


def maximum_of_complex(z):
    return np.real(np.sum(np.maximum(z, 0.5)))


def cross_of_complex(z):
    return np.real(np.sum(np.cross(z, z * z)))


def sign_of_complex(z):
    return np.real(np.sum(np.sign(z)))


@pytest.mark.parametrize("f", [maximum_of_complex, cross_of_complex, sign_of_complex])
def test_rules_without_complex_declaration_are_refused(f):
    z = C(3)
    with pytest.raises(transpile.TranspileError, match="complex values"):
        transpile.grad(f)(z)
    with pytest.raises(transpile.TranspileError, match="complex values"):
        transpile.jvp(f, [z], [C(3)])


def complex_spectrum_sum(x):
    return np.sum(np.sin(np.linalg.eigvals(x).astype(complex)))


def test_complex_result_of_grad_is_refused():
    with pytest.raises(transpile.TranspileError, match="returned a complex one"):
        transpile.grad(holomorphic_square)(0.3 + 0.4j)
    # every route refuses: hvp's two, grad of grad (real arguments, complex result)
    x, v = np.diag([1.0, 2.0, 3.0]) + 0.1, rng.normal(size=(3, 3))
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        with pytest.raises(transpile.TranspileError, match="returned a complex one"):
            transpile.hvp(complex_spectrum_sum, mode=mode)(x, v=v)
        with pytest.raises(transpile.TranspileError, match="returned a complex one"):
            transpile.hvp(holomorphic_square, mode=mode)(0.3 + 0.4j, v=1.0 + 0.0j)
    with pytest.raises(transpile.TranspileError, match="returned a complex one"):
        transpile.grad(transpile.grad(holomorphic_square))(0.3 + 0.4j)


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
@pytest.mark.parametrize("f, make", CASES, ids=[f.__name__ for f, _ in CASES])
def test_hessian_vector_product(f, make, mode):
    """hvp over complex and real arguments: the derivative of the gradient (checked above)
    along v, in both routes."""
    args = make()
    for i in range(len(args)):
        x = args[i]
        v = rng.normal(size=np.shape(x)) + (1j * rng.normal(size=np.shape(x))
                                             if np.iscomplexobj(x) else 0)
        if not np.ndim(x):
            v = complex(v) if np.iscomplexobj(x) else float(v)
        hv = transpile.hvp(f, wrt=i, mode=mode)(*args, v=v)
        grad, eps = transpile.grad(f, wrt=i), 1e-5

        def at(s):
            a = list(args)
            a[i] = x + s * v
            return grad(*a)
        close(hv, (at(eps) - at(-eps)) / (2 * eps), 1e-5)


def test_gradient_of_a_complex_argument_is_complex():
    """Also where f only reads its real part (autograd's test_real_type)."""
    def f(x):
        return np.sum(np.real(x))
    assert np.iscomplexobj(transpile.grad(f)(1.0j))
    assert np.isrealobj(transpile.grad(f)(2.0))


def test_real_programs_keep_real_gradients_and_code():
    """A real program is compiled as before: no real parts in its code."""
    def f(x):
        return np.sum(np.abs(np.sin(x)) * np.real(x))
    src = transpile.grad(f).source
    assert "real_part" not in src


def _as_float(x):
    return x.astype(np.float64) * 2.0


def calls_a_casting_helper(x):
    return np.sum(np.maximum(_as_float(x), 0.1))


def _spectrum(x):
    return np.fft.fft(x)


def calls_a_complex_helper(x):
    return np.sum(np.maximum(np.abs(_spectrum(x)), 0.1))


def test_helpers_are_read_for_complex_values():
    """A helper is taken to make complex values only where its code does (a complex
    literal, a rule with a complex result, a complex dtype): `astype(np.float64)` does
    not, so np.maximum after it stays available; np.fft.fft does, and np.abs of it is
    real again."""
    x = np.array([0.3, -0.2, 0.5])
    close(transpile.grad(calls_a_casting_helper)(x), fd_grad(calls_a_casting_helper, [x], 0))
    close(transpile.grad(calls_a_complex_helper)(x), fd_grad(calls_a_complex_helper, [x], 0))


class _Entry:
    """A callable object handing out transpile.grad (as a wrapper library would): code that
    calls it reaches the gradient through a variable (calls.py) at run time."""

    def __call__(self, f):
        return transpile.grad(f)


_grad_entry = _Entry()


def _abs_of(z):
    return np.abs(z) + np.angle(z) * np.real(z)


def _gradient_through_entry(z):
    return np.real(np.conj(0.3 - 0.2j) * _grad_entry(_abs_of)(z))


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_third_derivative_through_a_gradient_called_through_a_variable(mode):
    """hvp of a function of a gradient reached through a variable (a third derivative of
    abs and angle at a complex point): the run-time call helpers hold complex values."""
    z, v = 1.1 + 1.3j, 0.5 + 0.1j
    hv = transpile.hvp(_gradient_through_entry, mode=mode)(z, v=v)
    grad, eps = transpile.grad(_gradient_through_entry), 1e-5
    close(hv, (grad(z + eps * v) - grad(z - eps * v)) / (2 * eps), 1e-5)


# --- complex values made by a function called through a variable (calls.py) ------------
def _symmetrized(fun):
    def symmetrized_fun(*args):
        args = list(args)
        args[0] = 0.5 * (args[0] + args[0].T)
        return fun(*args)
    return symmetrized_fun


_ROOT = _symmetrized(__import__("scipy.linalg", fromlist=["sqrtm"]).sqrtm)
_U = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))


def _root_pairing(x):               # sqrtm of a matrix with negative eigenvalues: complex
    return np.real(np.sum(np.conj(_U) * _ROOT(x)))


def _spectrum_energy(x, h):         # h held by a parameter: read for the variant
    y = h(x)
    return np.sum(np.abs(y) ** 2 * np.arange(1.0, 4.0))


def _through_a_list(x):
    s = 0.0
    for h in [np.fft.fft, np.sin]:
        y = h(*[x])                 # known only when it runs
        s = s + np.sum(np.abs(y) ** 2)
    return s


def test_complex_results_of_functions_called_through_a_variable():
    """A closure over scipy.linalg.sqrtm called with *args, and np.fft.fft held by a
    parameter: their complex results are known to be complex when the code is generated
    (before, the caller's code took them for real: a gradient of 0, no error)."""
    x = rng.normal(size=(3, 3))
    assert np.iscomplexobj(_ROOT(x))
    g = transpile.grad(_root_pairing)
    close(g(x), central_wrt(_root_pairing, [x], 0), 1e-6)
    v = rng.normal(size=(3, 3))
    close(transpile.jvp(_root_pairing, (x,), (v,))[1], np.sum(g(x) * v), 1e-6)
    eps = 1e-5
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        close(transpile.hvp(_root_pairing, mode=mode)(x, v=v),
              (g(x + eps * v) - g(x - eps * v)) / (2 * eps), 1e-5)
    x = rng.normal(size=3)
    close(transpile.grad(_spectrum_energy)(x, np.fft.fft),
          central_wrt(_spectrum_energy, [x, np.fft.fft], 0), 1e-6)


def test_a_complex_result_known_only_at_run_time_is_refused():
    x = rng.normal(size=3)
    with pytest.raises(transpile.TranspileError, match="returned a complex value") as info:
        transpile.grad(_through_a_list)(x)
    assert "test_complex.py" in str(info.value)
    with pytest.raises(transpile.TranspileError, match="returned a complex value"):
        transpile.jvp(_through_a_list, (x,), (x,))


class _Rotation:
    def __init__(self, w):
        self.w = w

    def __call__(self, z):
        return np.tanh(self.w * z)


def _through_an_object(x):
    layer = _Rotation(0.5 + 0.2j)      # a complex weight held by the object called
    z = layer(x) + layer(x * 1j)
    return np.sum(np.real(z * np.conj(z)))


@pytest.mark.parametrize("mode", ["reverse", "forward", "forward-over-reverse",
                                  "reverse-over-forward"])
def test_an_object_holding_complex_values_called_through_a_variable(mode):
    x, v = rng.normal(size=3), rng.normal(size=3)
    g = transpile.grad(_through_an_object)
    if mode == "reverse":
        close(g(x), central_wrt(_through_an_object, [x], 0), 1e-6)
    elif mode == "forward":
        close(transpile.jvp(_through_an_object, (x,), (v,))[1],
              np.sum(central_wrt(_through_an_object, [x], 0) * v), 1e-6)
    else:
        close(transpile.hvp(_through_an_object, mode=mode)(x, v=v),
              (g(x + 1e-5 * v) - g(x - 1e-5 * v)) / 2e-5, 1e-5)
