"""Derivatives of derivatives, to any order, and transpile.grad inside a differentiated
function.

* any order: every derivative maker (grad, value_and_grad, vjp, jvp, hvp, hessian,
  jacobian) takes a gradient, or the gradient of a gradient..., and differentiates its
  generated code; third and fourth derivatives are checked against sympy, the rest
  against central differences of the derivative one order lower.
* nested: transpile.grad / value_and_grad called inside a function being differentiated
  (a lambda or def closing over the outer variables, a global function given them as
  arguments, a gradient made outside, in a loop, three deep), checked against central
  differences of the plain call (which runs transpile.grad inside, as the user wrote it).
"""
import math

import numpy as np
import pytest
import sympy as sp

import transpile

X = sp.Symbol("x")
POINTS = (-1.3, 0.4, 2.0)


def central(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


# --- scalar functions and their sympy twins -------------------------------------------------

def wave(x):
    return np.sin(x) * x ** 3


def ratio(x):
    return np.tanh(x) * x ** 2 + np.exp(-x) / (1.0 + x * x)


def logistic(x):
    return 1.0 / (1.0 + np.exp(-2.0 * x)) + math.cos(x) * x


def branchy(x):
    y = x * x
    for k in range(3):
        if y > 1.0:
            y = np.sqrt(y) + x * k
        else:
            y = y * x + 0.5
    return y * np.sin(x)


SYMBOLIC = {
    wave: sp.sin(X) * X ** 3,
    ratio: sp.tanh(X) * X ** 2 + sp.exp(-X) / (1 + X * X),
    logistic: 1 / (1 + sp.exp(-2 * X)) + sp.cos(X) * X,
}


def exact(fn, n, x):
    return float(sp.diff(SYMBOLIC[fn], X, n).subs(X, x))


def grad_n(fn, n):
    for _ in range(n):
        fn = transpile.grad(fn)
    return fn


@pytest.mark.parametrize("fn", list(SYMBOLIC), ids=lambda f: f.__name__)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_grad_to_any_order_against_sympy(fn, order):
    d = grad_n(fn, order)
    for x in POINTS:
        assert d(x) == pytest.approx(exact(fn, order, x), rel=1e-9, abs=1e-9)


def test_fifth_derivative_against_sympy():
    """Past the fourth order some reverse rules of the helpers have no rule of their own:
    for a function of numbers the gradient falls back to forward mode there."""
    assert grad_n(wave, 5)(0.7) == pytest.approx(exact(wave, 5, 0.7), rel=1e-9)


def test_third_derivative_is_reverse_mode_code_of_the_generated_second():
    third = grad_n(wave, 3)
    assert third(0.7) == pytest.approx(exact(wave, 3, 0.7), rel=1e-10)
    src = third.source
    assert "def grad_grad_grad_wave(x)" in src


def test_third_derivative_through_loops_and_branches_against_differences():
    second, third = grad_n(branchy, 2), grad_n(branchy, 3)
    for x in (0.3, 0.8, 1.7):
        assert third(x) == pytest.approx(central(second, x), rel=1e-6)


@pytest.mark.parametrize("x", POINTS)
def test_value_and_grad_of_grad_of_grad(x):
    value, d3 = transpile.value_and_grad(grad_n(ratio, 2))(x)
    assert value == pytest.approx(exact(ratio, 2, x), rel=1e-10)
    assert d3 == pytest.approx(exact(ratio, 3, x), rel=1e-9)


@pytest.mark.parametrize("x", POINTS)
def test_jvp_and_vjp_of_grad_of_grad(x):
    value, tangent = transpile.jvp(grad_n(wave, 2), (x,), (2.0,))
    assert value == pytest.approx(exact(wave, 2, x), rel=1e-10)
    assert tangent == pytest.approx(2.0 * exact(wave, 3, x), rel=1e-9)
    value, pullback = transpile.vjp(grad_n(wave, 2), x)
    assert value == pytest.approx(exact(wave, 2, x), rel=1e-10)
    assert pullback(-1.5) == pytest.approx(-1.5 * exact(wave, 3, x), rel=1e-9)


@pytest.mark.parametrize("x", POINTS)
def test_hvp_and_hessian_of_a_gradient(x):
    assert transpile.hessian(transpile.grad(logistic))(x) == pytest.approx(
        exact(logistic, 3, x), rel=1e-9)
    assert transpile.hvp(grad_n(logistic, 2))(x, v=0.5) == pytest.approx(
        0.5 * exact(logistic, 4, x), rel=1e-9)


def field(x, w):
    return np.sin(x * w) * x + w ** 3 * x ** 2


def test_hessian_of_a_gradient_of_two_parameters_against_differences():
    """grad(field) (in x) is a function of (x, w): its Hessian holds third derivatives."""
    gx = transpile.grad(field)
    H = transpile.hessian(gx, wrt=(0, 1))(0.7, -0.4)
    h = 1e-5
    for i, p in enumerate(("x", "w")):
        partial = transpile.grad(gx, wrt=p)          # d gx / d p, by name: literal
        for j in range(2):
            up, down = [0.7, -0.4], [0.7, -0.4]
            up[j] += h
            down[j] -= h
            fd = (partial(*up) - partial(*down)) / (2 * h)
            assert H[i][j] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_mixed_partials_of_a_gradient():
    """The outer wrt is taken literally when it is given by name: d2 f / dw dx."""
    gx = transpile.grad(field)
    mixed = transpile.grad(gx, wrt="w")
    fd = central(lambda w: gx(0.7, w), -0.4)
    assert mixed(0.7, -0.4) == pytest.approx(fd, rel=1e-7)
    # grad(grad(f, wrt=p)) with no wrt of its own: the second derivative in p
    gw = transpile.grad(field, wrt=1)
    assert transpile.grad(gw)(0.7, -0.4) == pytest.approx(
        central(lambda w: gw(0.7, w), -0.4), rel=1e-7)


def tanh_sum(x):
    return np.sum(np.tanh(x))


def elementwise_grad(f):
    """autograd's elementwise_grad for elementwise f: the gradient of the sum of f."""
    def summed(x):
        return np.sum(f(x))
    return transpile.grad(summed)


def test_elementwise_derivatives_of_tanh_against_sympy():
    """autograd's examples/tanh.py: derivatives of tanh by elementwise_grad, each the
    gradient of a function that sums the one before."""
    x = np.linspace(-2.0, 2.0, 5)
    d = transpile.grad(tanh_sum)
    for order in range(1, 5):
        expr = sp.diff(sp.tanh(X), X, order)
        np.testing.assert_allclose(d(x), [float(expr.subs(X, v)) for v in x],
                                   rtol=1e-9, atol=1e-12)
        d = elementwise_grad(d)


def test_jacobian_of_a_gradient():
    def bowl(x):
        return np.sum(np.sin(x) * x ** 2)
    x = np.array([0.3, -1.1, 0.8])
    J = transpile.jacobian(transpile.grad(bowl))(x)
    g = transpile.grad(bowl)
    h = 1e-6
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        np.testing.assert_allclose(J[:, k], (g(x + e) - g(x - e)) / (2 * h), rtol=1e-6,
                                   atol=1e-8)


# --- transpile.grad inside a differentiated function -----------------------------------------

def closure_lambda(x):
    g = transpile.grad(lambda y: x * y ** 2)
    return g(1.0) * x


def closure_def(x):
    def inner(y):
        return np.sin(x * y) * y
    return transpile.grad(inner)(0.5) * x


def at_a_moving_point(x):
    def inner(y):
        return np.cos(x + y) * y * y
    return transpile.grad(inner)(x * x)


def with_value_inside(x):
    v, d = transpile.value_and_grad(lambda y: x * y ** 3)(2.0)
    return v * d + x


def energy(y, x):
    return np.exp(x * y) + y ** 3 * x


def explicit_argument(x):
    return transpile.grad(energy)(0.3, x) * x


def explicit_argument_wrt(x):
    return transpile.grad(energy, wrt=1)(x, 0.4) + transpile.grad(energy, 1)(0.2, x)


def newton(x):
    """A few Newton steps for the root of y^2 = x inside the loss: y(x) = sqrt(x)."""
    gp = transpile.grad(lambda y: y ** 3 / 3.0 - x * y)
    gpp = transpile.grad(gp)
    y = 1.0 + x
    for _ in range(3):
        y = y - gp(y) / gpp(y)
    return y * np.sin(x)


def built_in_a_loop(x):
    total = 0.0
    for k in range(3):
        g = transpile.grad(lambda y: np.sin(k * x * y) + y * x)
        total = total + g(0.5 + k) * x
    return total


def confusion(x):
    """The classic perturbation-confusion test: d/dx [x * d/dy (x + y)] = 1, not 2."""
    return x * transpile.grad(lambda y: x + y)(3.0)


def depth_three(x):
    def g(y):
        def k(z):
            return x * y * z ** 3 + np.sin(x * z)
        return transpile.grad(k)(y) * y
    return transpile.grad(g)(x) * x


cube_gradient = transpile.grad(lambda y: np.sin(y) * y ** 3)


def gradient_made_outside(x):
    return cube_gradient(x) * x + transpile.grad(cube_gradient)(x)


NESTED = [closure_lambda, closure_def, at_a_moving_point, with_value_inside,
          explicit_argument, explicit_argument_wrt, newton, built_in_a_loop, confusion,
          depth_three, gradient_made_outside]


@pytest.mark.parametrize("fn", NESTED, ids=lambda f: f.__name__)
def test_nested_grad_against_differences_of_the_plain_call(fn):
    for x in (0.6, 1.3, 2.1):
        value, d = transpile.value_and_grad(fn)(x)
        assert value == pytest.approx(fn(x), rel=1e-12)        # the user's primal
        assert d == pytest.approx(central(fn, x), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("fn", NESTED, ids=lambda f: f.__name__)
def test_nested_grad_in_forward_mode_and_second_order(fn):
    x, h = 1.3, 1e-4
    value, tangent = transpile.jvp(fn, (x,), (1.0,))
    assert value == pytest.approx(fn(x), rel=1e-12)
    assert tangent == pytest.approx(central(fn, x), rel=1e-6, abs=1e-8)
    second = (fn(x + h) - 2 * fn(x) + fn(x - h)) / h ** 2
    assert transpile.grad(transpile.grad(fn))(x) == pytest.approx(second, rel=1e-4,
                                                                  abs=1e-6)
    assert transpile.hessian(fn)(x) == pytest.approx(second, rel=1e-4, abs=1e-6)


def test_no_perturbation_confusion():
    for x in (0.5, 2.0):
        assert transpile.grad(confusion)(x) == 1.0


def test_newton_inside_the_loss_converges_to_the_root_and_its_derivative():
    x = 2.0
    y = newton(x) / np.sin(x)
    assert y == pytest.approx(np.sqrt(x), rel=1e-3)
    assert transpile.grad(newton)(x) == pytest.approx(central(newton, x), rel=1e-7)


def layer(w):
    """grad of an array function inside: every element of w moves the inner gradient."""
    g = transpile.grad(lambda v: np.sum(np.tanh(w * v) * v), wrt=0)
    return np.sum(g(np.array([0.5, -1.0, 2.0])) ** 2)


def test_nested_grad_of_arrays_against_differences_over_every_element():
    w = np.array([0.3, -0.7, 1.1])
    got = transpile.grad(layer)(w)
    h = 1e-6
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        assert got[k] == pytest.approx((layer(w + e) - layer(w - e)) / (2 * h), rel=1e-6)


def test_the_inner_gradient_code_is_an_ordinary_callee():
    src = transpile.grad(closure_lambda).source
    assert "def grad_closure_lambda(x)" in src
    assert "_lambda" in src           # the lifted lambda's generated gradient is called


# --- what stays refused ------------------------------------------------------------------------

def passes_the_gradient(x):
    g = transpile.grad(lambda y: x * y)
    return sum(map(g, [1.0, 2.0]))                 # refused: g passed as a value


def hessian_inside(x):
    return transpile.hessian(lambda y: x * y ** 3)(1.0)      # refused: hessian inside


def jvp_inside(x):
    return transpile.jvp(lambda y: x * y ** 3, (1.0,), (1.0,))[1]   # refused: jvp inside


def wrt_not_literal(x, k):
    return transpile.grad(energy, wrt=k)(x, x)     # refused: wrt computed


def grad_of_a_parameter(f, x):
    return transpile.grad(f)(x)                    # refused: grad of a parameter


@pytest.mark.parametrize("fn, args, marker, words", [
    (passes_the_gradient, (1.0,), "# refused: g passed as a value", "nested differentiation"),
    (hessian_inside, (1.0,), "# refused: hessian inside", "nested differentiation"),
    (jvp_inside, (1.0,), "# refused: jvp inside", "nested differentiation"),
    (wrt_not_literal, (1.0, 0), "# refused: wrt computed", "wrt must be a literal"),
    (grad_of_a_parameter, (np.sin, 1.0), "# refused: grad of a parameter",
     "give it a function defined"),
], ids=lambda v: getattr(v, "__name__", None))
def test_what_stays_refused_is_one_error_at_the_users_line(fn, args, marker, words):
    import inspect
    lines, first = inspect.getsourcelines(fn)
    line = first + next(i for i, text in enumerate(lines) if marker in text)
    wrt = 1 if fn is grad_of_a_parameter else 0
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(fn, wrt=wrt)(*args)
    assert words in str(info.value)
    assert info.value.lineno == line



def zero_inner_gradient(x):
    """The inner gradient is zero: transpile.grad returns zeros of the argument's shape,
    and the derivative code computes with the same zeros (not a 0.0 that sums to 0)."""
    g = transpile.grad(lambda v: x * 2.0)
    r = g(np.ones(3))
    return x * np.sum(r + 1.0) + r.shape[0]


def test_a_zero_inner_gradient_of_an_array_is_zeros_of_its_shape():
    for x in (0.5, 1.5):
        value, d = transpile.value_and_grad(zero_inner_gradient)(x)
        assert value == pytest.approx(zero_inner_gradient(x), rel=1e-12)
        assert d == pytest.approx(central(zero_inner_gradient, x), rel=1e-7)
        assert transpile.jvp(zero_inner_gradient, (x,), (1.0,))[1] == pytest.approx(
            central(zero_inner_gradient, x), rel=1e-7)


# --- third derivatives of array code: the forward rule of the reverse rule of a reverse rule

def _array_inner(d):
    x = d["x"]
    return (np.sum(np.sin(x) * x) + np.dot(x, x) ** 2 + np.sum(np.max(x * x) * x)
            + np.sum(np.outer(x, x * x) ** 2) + np.sum(np.where(x > 0, x, 2 * x) ** 3)
            + np.sum(np.einsum("i,j,i->j", x, x * x, np.cos(x)) ** 2))


def _array_outer(x):
    g = transpile.grad(_array_inner)({"x": x})["x"]
    return np.sum(np.sin(g)) + np.dot(g, g)


def test_hessian_of_a_function_calling_a_gradient_of_array_code():
    """The Hessian of a function of grad(inner) holds third derivatives of inner: forward
    mode over the reverse rules of the reverse rules of sum and where (linear), dot, outer
    and einsum (multilinear) and max (piecewise linear), which the gradient code of a
    dict's entries calls."""
    x = np.array([0.3, -0.5, 0.9])
    H = transpile.hessian(_array_outer)(x)
    g = transpile.grad(_array_outer)
    h = 1e-6
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        assert np.allclose(H[:, j], (g(x + e) - g(x - e)) / (2 * h), rtol=1e-6, atol=1e-6)
