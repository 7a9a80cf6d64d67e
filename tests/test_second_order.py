"""Second derivatives by differentiating generated derivative code again.

* forward over reverse (`transpile.hvp`, `transpile.hessian`): the forward-mode derivative
  of the generated gradient code, checked against exact sympy Hessians on every scalar
  program of the sympy suite and against central differences of gradients on every NumPy
  program;
* reverse over reverse (`grad(grad(f))`): the gradient of the generated gradient code,
  checked against the same sympy Hessians;
* the runtime helpers generated code calls (stacks, accumulation, unbroadcast, vjp
  functions) are what makes this work: each has rules of its own.
"""
import math

import numpy as np
import pytest

import transpile
from oracle import sympy_hessian
from test_numpy_programs import CASES as NUMPY_CASES
from test_programs_sympy import PROGRAMS

RNG = np.random.default_rng(11)


def _wrt(fn, wrt, args):
    """Indices of the differentiable parameters among wrt (floats and lists of floats)."""
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    items = wrt if isinstance(wrt, tuple) else (wrt,)
    idx = [w if isinstance(w, int) else params.index(w) for w in items]
    return [i for i in idx if isinstance(args[i], float) or (
        isinstance(args[i], (list, tuple)) and all(isinstance(t, float) for t in args[i]))]


def _direction(x, k):
    if isinstance(x, (list, tuple)):
        return [0.5 - 0.3 * j + 0.1 * k for j in range(len(x))]
    return 0.75 - 0.5 * k


def _flat(values):
    out = []
    for v in values:
        out += list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]
    return np.array(out, dtype=float)


@pytest.mark.parametrize("fn,wrt,points", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
def test_hvp_forward_over_reverse_matches_sympy_hessian(fn, wrt, points):
    args = points[0]
    idx = _wrt(fn, wrt, args)
    if not idx:
        pytest.skip("no float parameter to differentiate")
    H = np.array(sympy_hessian(fn, args, tuple(idx)))
    vs = tuple(_direction(args[i], k) for k, i in enumerate(idx))
    got = transpile.hvp(fn, wrt=tuple(idx))(*args, v=vs)
    np.testing.assert_allclose(_flat(got), H @ _flat(vs), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("fn,wrt,points", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
def test_grad_of_grad_reverse_over_reverse_matches_sympy(fn, wrt, points):
    args = points[0]
    idx = [i for i in _wrt(fn, wrt, args) if isinstance(args[i], float)]
    if not idx:
        pytest.skip("no float parameter")
    i = idx[0]
    H = sympy_hessian(fn, args, (i,))
    second = transpile.grad(transpile.grad(fn, wrt=i))
    assert second(*args) == pytest.approx(H[0][0], rel=1e-8, abs=1e-10)


def _central_hvp(f, args, i, v, h=1e-5):
    hi, lo = list(args), list(args)
    hi[i], lo[i] = args[i] + h * v, args[i] - h * v
    g = transpile.grad(f, wrt=i)
    return (np.asarray(g(*hi)) - np.asarray(g(*lo))) / (2 * h)


@pytest.mark.parametrize("f, make, wrt", NUMPY_CASES, ids=[c[0].__name__ for c in NUMPY_CASES])
def test_numpy_hvp_against_differences_of_gradients(f, make, wrt):
    args = list(make())
    i = wrt[0]
    x = args[i]
    v = RNG.normal(size=np.shape(x)) if hasattr(x, "shape") else 0.7
    got = transpile.hvp(f, wrt=i)(*args, v=v)
    expected = _central_hvp(f, args, i, v)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * (1 + np.abs(
        expected).max()))


def stacked(x, w):
    """Branches inside a loop: the gradient code pushes and pops a stack."""
    y = x
    for i in range(6):
        if y > 0.5:
            y = math.sin(y) * w
        else:
            y = y * y + w
    return y * x


def test_hvp_modes_agree_and_show_generated_code():
    a = transpile.hvp(stacked, wrt=(0, 1))(0.9, 1.3, v=(1.0, -0.5))
    b = transpile.hvp(stacked, wrt=(0, 1), mode="reverse-over-forward")(0.9, 1.3,
                                                                         v=(1.0, -0.5))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    H = np.array(sympy_hessian(stacked, (0.9, 1.3), (0, 1)))
    np.testing.assert_allclose(a, H @ [1.0, -0.5], rtol=1e-10)
    product = transpile.hvp(stacked, wrt=0)
    product(0.9, 1.3, v=1.0)
    src = product.source
    assert "def grad_stacked(x, w)" in src and "def grad_stacked_tangent(" in src
    assert "t_stack1.pop()" in src and "_stack1.pop()" in src


def test_grad_of_grad_is_reverse_over_reverse_code():
    second = transpile.grad(transpile.grad(stacked))
    assert second(0.9, 1.3) == pytest.approx(sympy_hessian(stacked, (0.9, 1.3), 0)[0][0],
                                             rel=1e-10)
    src = second.source
    assert "def grad_grad_stacked(x, w)" in src and "push_adjoint(" in src


def tanh_layer(W, x):
    return np.sum(np.tanh(W @ x) ** 2)


def test_numpy_hessian_forward_over_reverse_is_symmetric_and_exact():
    W, x = RNG.normal(size=(3, 2)), RNG.normal(size=2)
    H = transpile.hessian(tanh_layer, wrt=0)(W, x)
    assert H.shape == (3, 2, 3, 2)
    np.testing.assert_allclose(H, H.transpose(2, 3, 0, 1), atol=1e-12)
    for idx in np.ndindex(3, 2):
        e = np.zeros((3, 2))
        e[idx] = 1.0
        np.testing.assert_allclose(H[(Ellipsis,) + idx], _central_hvp(tanh_layer, [W, x],
                                                                      0, e),
                                   rtol=1e-5, atol=1e-7)


def spread(x, a):
    return np.var(a * x) + x * x


def factor(x, a):
    return np.sum(np.interp(a * x, [0.0, 1.0, 5.0], [0.0, 2.0, 3.0]) ** 2) + x * x


def test_grad_of_grad_falls_back_to_forward_over_reverse():
    """var's reverse rule has a forward rule but no reverse rule: grad(grad) still works."""
    a = np.array([1.0, 2.0, 4.0])
    assert transpile.grad(transpile.grad(spread))(0.5, a) == pytest.approx(
        2 * np.var(a) + 2, rel=1e-12)


def test_second_derivative_without_a_rule_is_a_clear_error():
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(transpile.grad(factor))(0.5, np.array([1.0, 2.0, 4.0]))
    msg = str(info.value)
    assert "numpy.interp" in msg and "test_second_order.py:" in msg \
        and "grad_factor" in msg


def array_sum_loop(x, a):
    """An array built in a loop from a scalar: list and array helpers in the gradient."""
    acc = []
    for k in range(4):
        acc.append(np.sum(np.sin(a * x * k)))
    return sum(acc) * x


def test_grad_of_grad_through_numpy_and_lists():
    a = np.array([0.3, -1.2, 2.0])
    second = transpile.grad(transpile.grad(array_sum_loop))(0.7, a)
    hv = transpile.hvp(array_sum_loop, wrt=0)(0.7, a, v=1.0)
    g = transpile.grad(array_sum_loop)
    h = 1e-5
    fd = (g(0.7 + h, a) - g(0.7 - h, a)) / (2 * h)
    assert second == pytest.approx(fd, rel=1e-6)
    assert hv == pytest.approx(second, rel=1e-10)


def stats(x, w):
    return (np.var(x * w) + np.std(x, axis=0).sum() * np.var(x, axis=1, ddof=1).sum()
            + np.linalg.norm(x * w) + np.sum(np.linalg.norm(x, axis=1) ** 3)
            + np.linalg.norm(w, 1) * np.linalg.norm(x[0], np.inf)
            + np.prod(x + 3.0, axis=0).sum() + np.prod(w * w + 1.0))


def factored(A, W):
    M = A @ A.T + np.eye(3)
    return np.sum(np.linalg.cholesky(M) * W) + np.sum(np.linalg.cholesky(M, upper=True) * W)


def matrices(A, b):
    x = np.linalg.solve(A, b)
    B = np.linalg.solve(A, np.outer(b, b))
    sign, logdet = np.linalg.slogdet(A)
    return (np.sum(x * x) + np.sum(np.linalg.inv(A) * B) + np.linalg.det(A) ** 2
            + logdet)


@pytest.mark.parametrize("f, make, i", [
    (stats, lambda: (RNG.normal(size=(3, 4)), RNG.normal(size=4)), 0),
    (stats, lambda: (RNG.normal(size=(3, 4)), RNG.normal(size=4)), 1),
    (matrices, lambda: (RNG.normal(size=(3, 3)) + 3 * np.eye(3), RNG.normal(size=3)), 0),
    (matrices, lambda: (RNG.normal(size=(3, 3)) + 3 * np.eye(3), RNG.normal(size=3)), 1),
    (factored, lambda: (RNG.normal(size=(3, 3)), RNG.normal(size=(3, 3))), 0),
], ids=["var-std-norm-x", "var-std-norm-w", "solve-inv-det-A", "solve-inv-det-b",
        "cholesky"])
def test_hvp_through_nonlinear_reverse_rules(f, make, i):
    """var, std, norm, prod, inv, det, slogdet, solve, cholesky: their reverse rules have
    forward rules."""
    args = list(make())
    v = RNG.normal(size=np.shape(args[i]))
    got = transpile.hvp(f, wrt=i)(*args, v=v)
    np.testing.assert_allclose(got, _central_hvp(f, args, i, v), rtol=1e-5, atol=1e-6)


def softplus(x):
    return math.log1p(math.exp(x))


def clip01(x):
    return min(max(x, 0.0), 1.0)


def doubled(x):
    return 2.0 * x


def doubled_vjp(g, ans, x):
    return 2.0 * g


transpile.defvjp(softplus, "1 / (1 + math.exp(-x))")
transpile.defvjp(clip01, lambda g, ans, x: g if 0 < x < 1 else 0.0)
transpile.defvjp(doubled, doubled_vjp)


def with_user_rules(x, w):
    return softplus(x * w) * clip01(x) + doubled(x) * x


def test_second_derivatives_through_user_rules():
    """User rules (a template, a lambda vjp, a vjp function): forward over reverse and
    grad(grad) differentiate the user's vjp code itself."""
    x, w, h = 0.4, 1.3, 1e-6
    g = transpile.grad(with_user_rules)
    fd = (g(x + h, w) - g(x - h, w)) / (2 * h)
    assert transpile.hvp(with_user_rules, wrt=0)(x, w, v=1.0) == pytest.approx(fd, rel=1e-7)
    assert transpile.grad(transpile.grad(with_user_rules))(x, w) == pytest.approx(fd,
                                                                                rel=1e-7)
    with pytest.raises(transpile.TranspileError, match="forward over reverse"):
        transpile.hvp(with_user_rules, wrt=0, mode="reverse-over-forward")(x, w, v=1.0)


def prod_with_zero(x):
    return np.prod(x) * 2.0


def test_prod_with_a_zero_is_a_clear_error_in_second_order():
    x = np.array([1.5, 0.0, -2.0])
    assert np.allclose(transpile.grad(prod_with_zero)(x), [0.0, -6.0, 0.0])
    with pytest.raises(transpile.TranspileError, match="numpy.prod"):
        transpile.hvp(prod_with_zero)(x, v=np.ones(3))


def _line_module(tmp_path):
    """For each NumPy program f(..., x, ...), line_f(t, x0, v, ...) = f(..., x0 + t v, ...):
    a scalar function whose second derivative at 0 is v^T H v (written to a file, as
    transpile reads source)."""
    import importlib.util
    lines = ["import numpy as np", "from test_numpy_programs import *", ""]
    for f, _, wrt in NUMPY_CASES:
        params = list(f.__code__.co_varnames[:f.__code__.co_argcount])
        i = wrt[0]
        call = ", ".join("x0 + t * v_" if k == i else p for k, p in enumerate(params))
        rest = "".join(f", {p}" for k, p in enumerate(params) if k != i)
        lines += [f"def line_{f.__name__}(t, x0, v_{rest}):",
                  f"    return {f.__name__}({call})", ""]
    path = tmp_path / "numpy_lines.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("numpy_lines", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("f, make, wrt", NUMPY_CASES, ids=[c[0].__name__ for c in NUMPY_CASES])
def test_grad_of_grad_along_a_line_equals_hvp(tmp_path, f, make, wrt):
    """grad(grad) of t -> f(x + t v) (a call of the NumPy program: reverse over reverse
    through the callee's forward/backward pair) equals v . H v from forward over reverse."""
    args = list(make())
    i = wrt[0]
    if not hasattr(args[i], "shape"):
        pytest.skip("a scalar parameter")
    v = RNG.normal(size=args[i].shape)
    rest = [a for k, a in enumerate(args) if k != i]
    line = getattr(_line_module(tmp_path), "line_" + f.__name__)
    expected = float(np.sum(np.asarray(transpile.hvp(f, wrt=i)(*args, v=v)) * v))
    got = transpile.grad(transpile.grad(line))(0.0, args[i], v, *rest)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)


def mixed(x, w):
    return np.sum(np.sin(x) * w) + w ** 3 + np.sum(x) ** 2


def test_hessian_with_respect_to_an_array_and_a_number_has_blocks():
    """Several parameters, one an array: H[i][j] has shape s_i + s_j (was: a vector of
    ones used as the tangent of the array, silently wrong)."""
    x, w = np.array([0.3, 0.5, -1.1]), 0.7
    H = transpile.hessian(mixed, wrt=(0, 1))(x, w)
    assert H[0][0].shape == (3, 3) and H[0][1].shape == (3,) and H[1][0].shape == (3,)
    np.testing.assert_allclose(H[0][0], np.diag(-np.sin(x) * w) + 2.0, rtol=1e-12)
    np.testing.assert_allclose(H[0][1], np.cos(x), rtol=1e-12)
    np.testing.assert_allclose(H[1][0], np.cos(x), rtol=1e-12)
    assert H[1][1] == pytest.approx(6 * w, rel=1e-12)
