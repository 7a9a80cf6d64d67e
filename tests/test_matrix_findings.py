"""Wrong numbers and crashes the rule matrix (tests/test_rule_matrix.py) found, fixed.

Each case is checked in reverse and forward mode against central finite differences
(second-order ones against differences of gradients).
"""
import numpy as np
import pytest

import transpile as T
from finite_differences import central, check

RNG = np.random.default_rng(7)
X = RNG.normal(size=(2, 3))
W = RNG.normal(size=6)


def flatten_f(x):
    return np.sum(np.sin(x.flatten("F")) * W)


def flatten_f_keyword(x):
    return np.sum(np.sin(x.flatten(order="F")) * W)


def flatten_c(x):
    return np.sum(np.sin(x.flatten()) * W)


def builtin_abs_of_array(x):
    return np.sum(abs(x) * W.reshape(2, 3))


@pytest.mark.parametrize("f", [flatten_f, flatten_f_keyword, flatten_c,
                               builtin_abs_of_array])
def test_first_order(f):
    check(T.grad(f)(X), central(f, X))
    v = RNG.normal(size=X.shape)
    value, tangent = T.jvp(f, (X,), (v,))
    check(tangent, np.sum(central(f, X) * v))


def square(x):
    return x ** 2


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
@pytest.mark.parametrize("x", [0.0, 0.5, -1.5])
def test_square_second_derivative_at_zero(mode, x):
    # at x = 0 the tangent 2 x dx is a computed 0.0: its adjoint must still flow
    assert T.hvp(square, mode=mode)(x, v=1.0) == pytest.approx(2.0)


M = RNG.normal(size=(3, 4))


def square_then_dot(x):
    return np.sum(np.dot(x ** 2, M)) + np.sum(np.tanh(x) * x)


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_computed_zero_tangent_through_a_multilinear_rule(mode):
    # at x = 0 the tangent of x ** 2 is an array of zeros, of 2 x dx a float 0.0 for
    # scalars: the product rule's term must still pass its adjoint on
    x, v = np.zeros(3), RNG.normal(size=3)
    eps = 1e-6
    g = T.grad(square_then_dot)
    expected = (g(x + eps * v) - g(x - eps * v)) / (2 * eps)
    check(T.hvp(square_then_dot, mode=mode)(x, v=v), expected)


def scalar_square_times(x, w):
    return (x * x) * w + w * x


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_scalar_computed_zero_tangent(mode):
    eps = 1e-6
    g = T.grad(scalar_square_times)
    expected = (g(eps, 1.5) - g(-eps, 1.5)) / (2 * eps)
    assert T.hvp(scalar_square_times, mode=mode)(0.0, 1.5, v=1.0) == pytest.approx(expected)


def sinc_sum(x):
    return np.sum(np.sinc(x) * np.array([1.0, 2.0, 0.5]))


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_sinc_second_derivative_at_zero(mode):
    x, v = np.array([0.0, 0.3, -1.2]), np.array([1.0, -0.5, 2.0])
    eps = 1e-5
    g = T.grad(sinc_sum)
    expected = (g(x + eps * v) - g(x - eps * v)) / (2 * eps)
    assert expected[0] == pytest.approx(-np.pi ** 2 / 3, rel=1e-6)
    check(T.hvp(sinc_sum, mode=mode)(x, v=v), expected, atol=1e-6)


def arange_start(x):
    return np.sum(np.sin(np.arange(x, 3.0)) * W[:3])


def arange_step(x, s):
    return np.sum(np.sin(np.arange(x, 3.0, s)) * W)


def arange_stop(x):
    return np.sum(np.arange(x) * 1.0)


def test_arange_moves_with_start_and_step():
    x = 0.3
    check(T.grad(arange_start)(x), central(arange_start, x))
    check(T.jvp(arange_start, (x,), (1.0,))[1], central(arange_start, x))
    for wrt in (0, 1):
        fd = central(lambda v: arange_step(*[(x, 0.5)[k] if k != wrt else v
                                             for k in range(2)]), (x, 0.5)[wrt])
        check(T.grad(arange_step, wrt=wrt)(x, 0.5), fd)
        tangents = (1.0, 0.0) if wrt == 0 else (0.0, 1.0)
        check(T.jvp(arange_step, (x, 0.5), tangents)[1], fd)
    assert T.grad(arange_stop)(4.5) == 0.0


def clip_min_keyword(x):
    return np.sum(np.sin(np.clip(x, min=-0.2)) * W.reshape(2, 3))


def test_clip_with_numpy2_keywords():
    v = RNG.normal(size=X.shape)
    check(T.jvp(clip_min_keyword, (X,), (v,))[1], np.sum(central(clip_min_keyword, X) * v))
    eps = 1e-6
    g = T.grad(clip_min_keyword)
    check(T.hvp(clip_min_keyword)(X, v=v), (g(X + eps * v) - g(X - eps * v)) / (2 * eps),
          atol=1e-5)


def nan_spread(x):
    return np.sum(np.sin(np.nanvar(x, axis=1)) * W[:2]) + np.sum(np.nanstd(x, axis=0) * W[:3])


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_nan_skipping_spread_second_order(mode):
    x = X.copy()
    x[0, 1] = np.nan
    v = RNG.normal(size=x.shape)
    eps = 1e-5
    g = T.grad(nan_spread)
    expected = (g(x + eps * v) - g(x - eps * v)) / (2 * eps)
    got = T.hvp(nan_spread, mode=mode)(x, v=v)
    assert got[0, 1] == 0.0
    check(got, expected, atol=1e-6)


def test_sinc_gradient_near_zero_is_accurate():
    # the quotient (cos(pi x) - sinc(x)) / x cancels near 0: the Taylor branch keeps
    # sinc' accurate to rounding there
    import sympy
    t = sympy.Symbol("t")
    dsinc = sympy.diff(sympy.sin(sympy.pi * t) / (sympy.pi * t), t)
    x = np.array([1e-6, -3e-4, 2e-3, 0.4])
    expected = [float(dsinc.subs(t, sympy.Rational(repr(float(v)))).evalf(30)) for v in x]
    got = T.grad(lambda_free_sinc)(x)
    assert np.allclose(got, expected, rtol=1e-12, atol=0), (got, expected)


def lambda_free_sinc(x):
    return np.sum(np.sinc(x))


def matmul_call_of_a_sum(x, w, y):
    z = x + w
    return np.sum(np.sin(np.matmul(z, y)))


def test_matmul_called_by_name_has_matmul_shapes():
    # np.matmul is a ufunc with core dimensions: its result is not the broadcast of its
    # operands (the shape facts took it for one, and summed the adjoint of x away)
    x, w, y = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=(3, 4))
    check(T.grad(matmul_call_of_a_sum)(x, w, y),
          central(lambda v: matmul_call_of_a_sum(v, w, y), x))


CONDS = [X > 0.5, X < -0.5]


def select_with_default(x):
    return np.sum(np.sin(np.select(CONDS, [x, 2 * x], default=1.1)) * W.reshape(2, 3))


def moveaxis_by_keywords(x):
    return np.sum(np.sin(np.moveaxis(x, source=0, destination=1)) * W.reshape(3, 2))


def swapaxes_by_keywords(x):
    return np.sum(np.sin(np.swapaxes(x, axis1=0, axis2=1)) * W.reshape(3, 2))


@pytest.mark.parametrize("f", [select_with_default, moveaxis_by_keywords,
                               swapaxes_by_keywords])
def test_keyword_arguments_reach_the_rules(f):
    # a constant keyword stays a keyword only where the rule's functions take it by that
    # name and it has no derivative (select's default is linear: its tangent is 0)
    v = RNG.normal(size=X.shape)
    check(T.grad(f)(X), central(f, X))
    check(T.jvp(f, (X,), (v,))[1], np.sum(central(f, X) * v))


def isinstance_of_ndarray(x):
    if isinstance(x, np.ndarray):
        return np.sum(x ** 2)
    return x ** 2


def test_a_class_as_a_value_is_no_array():
    check(T.grad(isinstance_of_ndarray)(X), 2 * X)
