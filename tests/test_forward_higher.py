"""Forward mode (jvp), Jacobians, Hessians, Hessian-vector products and grad(grad(f)):
checked against sympy on the scalar programs and against finite differences of gradients
on the NumPy programs."""
import math

import numpy as np
import pytest
import sympy

import transpile
from oracle import sympy_grad
from test_numpy_programs import CASES as NUMPY_CASES
from test_programs_sympy import PROGRAMS

RNG = np.random.default_rng(7)


def _wrt_tuple(wrt, n):
    return tuple(wrt) if isinstance(wrt, tuple) else (wrt,)


@pytest.mark.parametrize("fn,wrt,points", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
def test_jvp_matches_sympy_directional_derivative(fn, wrt, points):
    """Every scalar program of the sympy suite, in forward mode: J v = <grad, v>."""
    args = points[0]
    names = _wrt_tuple(wrt, len(args))
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    idx = [w if isinstance(w, int) else params.index(w) for w in names]
    if any(isinstance(args[i], (list, tuple)) for i in idx):
        pytest.skip("list inputs: covered by test_jvp_list_inputs")
    expected_grad = sympy_grad(fn, args, tuple(idx))
    v = [0.5 + 0.25 * k for k in range(len(idx))]
    tangents = [None] * len(args)
    for k, i in enumerate(idx):
        tangents[i] = v[k]
    value, t = transpile.jvp(fn, args, tangents)
    assert value == fn(*args)
    expected = sum(float(g) * vk for g, vk in zip(expected_grad, v))
    assert t == pytest.approx(expected, rel=1e-9, abs=1e-12)


def series(x, n):
    total, term = 0.0, 1.0
    for k in range(1, n):
        term = term * x / k
        total = total + term
    return total


def loop_branch(x, w):
    y = x
    for i in range(5):
        y = math.sin(y) * w + 0.5 * y
        if y > 0.4:
            y = y * y
    k = 0
    while y < 3.0 and k < 20:
        y = y * 1.3 + w
        k += 1
    return y


def test_jvp_list_inputs():
    def listy(xs, w):
        acc = []
        for v in xs:
            acc.append(v * v * w)
        return sum(acc) + max(xs) * w
    f = _in_file(listy)
    xs = [0.5, 1.5, -2.0]
    value, t = transpile.jvp(f, (xs, 0.7), ([1.0, 0.0, 2.0], 0.5))
    gx, gw = transpile.grad(f, wrt=(0, 1))(xs, 0.7)
    assert t == pytest.approx(gx[0] * 1.0 + gx[2] * 2.0 + gw * 0.5, rel=1e-12)


def _in_file(fn):
    return LISTY


def LISTY(xs, w):
    acc = []
    for v in xs:
        acc.append(v * v * w)
    return sum(acc) + max(xs) * w


def test_hessian_matches_sympy_on_loops_and_branches():
    X, W = sympy.symbols("x w")
    point = {X: 0.3, W: 0.7}

    def symbolic(x, w):
        y = x
        for i in range(5):
            y = sympy.sin(y) * w + sympy.Rational(1, 2) * y
            if float(y.subs(point)) > 0.4:
                y = y * y
        k = 0
        while float(y.subs(point)) < 3.0 and k < 20:
            y = y * sympy.Rational(13, 10) + w
            k += 1
        return y

    expected = np.array(sympy.hessian(symbolic(X, W), (X, W)).subs(point), dtype=float)
    H = np.array(transpile.hessian(loop_branch, wrt=(0, 1))(0.3, 0.7))
    np.testing.assert_allclose(H, expected, rtol=1e-9)
    # Hessian-vector product and grad(grad(f)) agree with it
    hv = transpile.hvp(loop_branch, wrt=(0, 1))(0.3, 0.7, v=(1.0, -2.0))
    np.testing.assert_allclose(hv, expected @ np.array([1.0, -2.0]), rtol=1e-9)
    assert transpile.grad(transpile.grad(loop_branch))(0.3, 0.7) == pytest.approx(
        expected[0, 0], rel=1e-9)


def test_second_derivative_of_a_series_against_sympy():
    x = sympy.Symbol("x")
    exact = float(sympy.diff(sum(x ** k / sympy.factorial(k) for k in range(1, 8)), x, 2)
                  .subs(x, 0.9))
    assert transpile.grad(transpile.grad(series))(0.9, 8) == pytest.approx(exact, rel=1e-12)


def test_jacobian_against_sympy_both_modes():
    X, Y = sympy.symbols("x y")
    exprs = [X * Y, sympy.sin(X) + Y ** 3, sympy.exp(X * Y) / (1 + Y ** 2)]
    expected = np.array(sympy.Matrix(exprs).jacobian([X, Y]).subs({X: 0.3, Y: -0.7}),
                        dtype=float)
    for mode in ("forward", "reverse", "auto"):
        J = transpile.jacobian(vector_valued, mode=mode)(np.array([0.3, -0.7]))
        np.testing.assert_allclose(J, expected, rtol=1e-12)


def vector_valued(v):
    x = v[0]
    y = v[1]
    return np.array([x * y, np.sin(x) + y ** 3, np.exp(x * y) / (1 + y ** 2)])


def tuple_valued(x, y):
    return x * y, math.sin(x) + y ** 3


def test_jacobian_of_tuple_output_and_scalar_input():
    J = transpile.jacobian(tuple_valued, wrt=0)(0.3, -0.7)
    np.testing.assert_allclose(J, [-0.7, math.cos(0.3)], rtol=1e-12)


@pytest.mark.parametrize("f, make, wrt", NUMPY_CASES, ids=[c[0].__name__ for c in NUMPY_CASES])
def test_numpy_jvp_equals_gradient_dot_tangent(f, make, wrt):
    """Forward mode on every NumPy program of the reverse-mode suite: J v == <grad f, v>."""
    args = list(make())
    i = wrt[0]
    x = args[i]
    v = RNG.normal(size=np.shape(x)) if hasattr(x, "shape") else 0.7
    tangents = [None] * len(args)
    tangents[i] = v
    value, t = transpile.jvp(f, args, tangents)
    g = transpile.grad(f, wrt=i)(*args)
    assert t == pytest.approx(float(np.sum(np.asarray(g) * v)), rel=1e-8, abs=1e-10)


def mlp_loss(W1, W2, X, Y):
    h = np.tanh(X @ W1)
    out = h @ W2
    return 0.5 * np.sum((out - Y) ** 2) / X.shape[0]


def test_numpy_hessian_against_finite_differences_of_gradients():
    W1 = RNG.normal(size=(3, 2)) * 0.5
    W2 = RNG.normal(size=(2, 1))
    X, Y = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 1))
    H = transpile.hessian(mlp_loss, wrt=0)(W1, W2, X, Y)
    assert H.shape == (3, 2, 3, 2)
    g = transpile.grad(mlp_loss, wrt=0)
    eps = 1e-6
    for idx in np.ndindex(3, 2):
        e = np.zeros((3, 2))
        e[idx] = eps
        column = (g(W1 + e, W2, X, Y) - g(W1 - e, W2, X, Y)) / (2 * eps)
        np.testing.assert_allclose(H[(Ellipsis,) + idx], column, rtol=1e-5, atol=1e-8)


def test_forward_mode_decorator_shows_tangent_code():
    f = transpile.differentiate(loop_branch, wrt="x", mode="forward")
    value, t = f.jvp((0.3, 0.7), (1.0, None))
    assert t == pytest.approx(transpile.grad(loop_branch)(0.3, 0.7), rel=1e-12)
    src = f.source
    assert "def loop_branch_jvp(x, w, *, tx=0.0)" in src and "_push" not in src


def reduce_max(x, w):
    return np.sum(np.max(x * w, axis=1) ** 2) + np.min(x, axis=0, keepdims=True).sum() \
        + np.amax(x) * 2.0


def test_forward_mode_of_max_min_reductions():
    """max/min have a forward rule (averaging the tangent over the maximal elements)."""
    x = RNG.normal(size=(4, 3))
    x[2, 1] = x[2, 0]                                  # a tie inside one reduced row
    w = RNG.normal(size=3)
    v = RNG.normal(size=x.shape)
    value, t = transpile.jvp(reduce_max, (x, w), (v, None))
    g = transpile.grad(reduce_max)(x, w)
    assert t == pytest.approx(float(np.sum(g * v)), rel=1e-10)
    from transpile.api import jvp_source
    assert "max_jvp(" in jvp_source(reduce_max, (x, w), (v, None))
