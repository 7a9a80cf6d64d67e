"""transpile.check_grads: passes on functions transpile differentiates right, and fails
(AssertionError showing both numbers) when a derivative is wrong: here a user rule
registered with transpile.defvjp that is deliberately wrong."""
import math

import numpy as np
import pytest

import transpile


def scalar_fn(x, w):
    y = x
    for i in range(5):
        y = math.sin(y) * w + 0.5 * y
    return y


def array_fn(x, W):
    return np.sum(np.tanh(W @ x) ** 2) + np.sum(x ** 3)


def vector_out(x, c):
    return np.exp(x) * c + x[::-1]


def tuple_out(x, y):
    return x * y, np.sin(x) + y


def list_arg(xs, k):
    return np.sum(xs[0] * xs[1]) * k + np.sum(xs[1] ** 2)


def good_square(x):
    return x * x


def bad_square(x):
    return x * x


def bad_cube(x):
    return x * x * x


transpile.defvjp(good_square, "2 * x")
transpile.defvjp(bad_square, "3 * x")                  # deliberately wrong: d/dx x^2 = 2x
transpile.defvjp(bad_cube, lambda g, ans, x: g * 3.0 * x * x + g * 0.5)   # wrong by 0.5


def uses_good(x):
    return good_square(x) * 2.0 + math.sin(x)


def uses_bad(x):
    return bad_square(x) * 2.0 + math.sin(x)


def uses_bad_array(x):
    return np.sum(np.sin(x)) + bad_cube(x[0])


def test_passes_on_correct_functions():
    transpile.check_grads(scalar_fn, 0.3, 0.7)
    transpile.check_grads(scalar_fn, 0.3, 0.7, wrt=(0, 1))
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal(3), rng.standard_normal((2, 3))
    transpile.check_grads(array_fn, x, W)
    transpile.check_grads(array_fn, x, W, wrt=("x", "W"), modes=("rev",))
    transpile.check_grads(uses_good, 0.4)


def test_passes_on_array_and_tuple_outputs():
    x = np.array([0.1, -0.3, 0.8])
    transpile.check_grads(vector_out, x, 2.0)
    transpile.check_grads(vector_out, x, 2.0, order=1)
    transpile.check_grads(tuple_out, 0.5, 1.5, modes=("rev",), wrt=(0, 1))


def test_passes_on_a_list_of_arrays():
    xs = [np.array([1.0, 2.0]), np.array([0.5, -1.0])]
    transpile.check_grads(list_arg, xs, 3.0, modes=("rev",), order=1)


def test_fails_on_a_wrong_user_rule():
    with pytest.raises(AssertionError) as info:
        transpile.check_grads(uses_bad, 0.4, modes=("rev",), order=1)
    message = str(info.value)
    assert "reverse mode" in message and "uses_bad" in message
    # both numbers shown: the gradient along a unit-free random direction is wrong by
    # 2 * (3x - 2x) = 0.8 per unit of the direction; the right one is 4x + cos(x)
    assert "transpile:" in message and "finite differences:" in message
    with pytest.raises(AssertionError, match="forward mode"):
        transpile.check_grads(uses_bad, 0.4, modes=("fwd",), order=1)
    with pytest.raises(AssertionError):
        transpile.check_grads(uses_bad_array, np.array([0.2, 0.3]), modes=("rev",))


def test_the_wrong_rule_is_really_wrong():
    """The failing check above is right to fail: transpile's number differs from a
    central difference by the rule's error."""
    g = transpile.grad(uses_bad)(0.4)
    eps = 1e-6
    fd = (uses_bad(0.4 + eps) - uses_bad(0.4 - eps)) / (2 * eps)
    assert fd == pytest.approx(4 * 0.4 + math.cos(0.4), rel=1e-7)
    assert g == pytest.approx(6 * 0.4 + math.cos(0.4), rel=1e-12)


def test_bad_options():
    with pytest.raises(ValueError):
        transpile.check_grads(uses_good, 0.4, modes=("sideways",))
    with pytest.raises(ValueError):
        transpile.check_grads(uses_good, 0.4, order=3)


def summed_square(x):
    return x * x


transpile.defvjp(summed_square, lambda g, ans, x: np.sum(g * 2.0 * x))   # wrong: a number


def uses_summed(x):
    return np.sum(summed_square(x))


def test_fails_on_a_gradient_of_the_wrong_shape():
    """The gradient of an array has the array's shape: a rule that sums it away fails the
    check even where the numbers along the direction might agree."""
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(AssertionError, match="shape"):
        transpile.check_grads(uses_summed, x, modes=("rev",), order=1)
