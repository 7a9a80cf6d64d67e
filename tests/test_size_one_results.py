"""Functions returning an array of one element (shape (1,), (1, 1)...): grad and the other
makers of derivatives of a number take it for the number it holds, as autograd does
(seed.py: the adjoint sweep starts from ones of the result's shape). Any other result that
is not a number is one TranspileError naming the user's file, also for second derivatives
and for grad called inside a differentiated function (before, hvp, hessian, grad(grad(f))
and a nested grad silently differentiated the sum of the elements). Every derivative is
checked against central differences."""
import numpy as np
import pytest
import scipy.special

import transpile
from transpile import TranspileError

from finite_differences import central, check

A = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.3], [0.1, -0.3, 1.5]])


def quadratic(x):                       # a column vector: the result has shape (1, 1)
    return x.T @ A @ x


def keepdims_sum(x):
    return np.sum(np.sin(x) * x, keepdims=True)


def axis_sum(x):                        # x of shape (3, 1): the result has shape (1,)
    return np.sum(np.sin(x) ** 2, axis=0)


def log_sum_exp(x):                     # x of shape (1, 3): (1, 1)
    return scipy.special.logsumexp(x, axis=1, keepdims=True)


COLUMN = np.array([[0.3], [-0.2], [0.7]])
CASES = [(quadratic, COLUMN), (keepdims_sum, np.array([[0.4, -0.1], [0.9, 0.2]])),
         (axis_sum, COLUMN), (log_sum_exp, COLUMN.T)]
IDS = ["matmul-1x1", "keepdims", "axis", "logsumexp"]


def _number(f):
    return lambda v: float(np.ravel(f(v))[0])


@pytest.mark.parametrize("f, x", CASES, ids=IDS)
def test_gradient_of_an_array_of_one_element(f, x):
    expected = central(_number(f), x)
    check(transpile.grad(f)(x), expected)
    value, g = transpile.value_and_grad(f)(x)
    assert isinstance(value, np.ndarray) and value.shape == f(x).shape
    check(value, f(x))
    check(g, expected)
    value, pullback = transpile.vjp(f, x)
    check(pullback(np.ones_like(value)), expected)


@pytest.mark.parametrize("f, x", CASES, ids=IDS)
def test_second_derivatives_of_an_array_of_one_element(f, x):
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    grad = transpile.grad(f)
    expected = central(lambda t: float(np.sum(grad(x + t * v) * v)), 0.0)
    hv = transpile.hvp(f)(x, v=v)
    check(float(np.sum(hv * v)), expected)
    H = transpile.hessian(f)(x)
    check(np.tensordot(H, v, axes=v.ndim), hv)


def dot_quadratic(x):
    return np.dot(x.T, np.dot(A, x))


@pytest.mark.parametrize("f, x", CASES + [(dot_quadratic, COLUMN)], ids=IDS + ["dot"])
def test_reverse_over_forward_of_an_array_of_one_element(f, x):
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    check(transpile.hvp(f, mode="reverse-over-forward")(x, v=v), transpile.hvp(f)(x, v=v))


def one_element_of_scalar(t):
    return np.sin(t) * np.ones((1, 1)) * t


def test_grad_of_grad_of_an_array_of_one_element():
    d2 = transpile.grad(transpile.grad(one_element_of_scalar))(0.4)
    check(d2, central(lambda t: transpile.grad(one_element_of_scalar)(t), 0.4))


def uses_gradient_of_one_element(x):
    return np.sum(transpile.grad(keepdims_sum)(x) ** 2)


def test_gradient_of_one_element_inside_a_differentiated_function():
    x = np.array([[0.4, -0.1], [0.9, 0.2]])
    check(transpile.grad(uses_gradient_of_one_element)(x),
          central(uses_gradient_of_one_element, x))


def with_aux(x):
    return keepdims_sum(x), "aux"


def test_has_aux_with_an_array_of_one_element():
    x = np.array([[0.4, -0.1], [0.9, 0.2]])
    g, aux = transpile.grad(with_aux, has_aux=True)(x)
    assert aux == "aux"
    check(g, central(_number(keepdims_sum), x))


# --- anything else is refused, at every order --------------------------------------------

def vector(x):
    return np.sin(x) * 2.0


def vector_of_scalar(t):
    return np.sin(t) * np.ones(2)


def uses_gradient_of_vector(x):
    return np.sum(transpile.grad(vector)(x))


X = np.array([0.1, 0.2])


@pytest.mark.parametrize("make", [
    lambda: transpile.grad(vector)(X),
    lambda: transpile.value_and_grad(vector)(X),
    lambda: transpile.hvp(vector)(X, v=X),
    lambda: transpile.hvp(vector, mode="reverse-over-forward")(X, v=X),
    lambda: transpile.hessian(vector)(X),
    lambda: transpile.grad(transpile.grad(vector_of_scalar))(0.3),
    lambda: uses_gradient_of_vector(X),
    lambda: transpile.grad(uses_gradient_of_vector)(X),
    lambda: transpile.hessian(uses_gradient_of_vector)(X),
], ids=["grad", "value_and_grad", "hvp", "hvp-reverse-over-forward", "hessian",
        "grad-of-grad", "nested", "grad-of-nested", "hessian-of-nested"])
def test_a_result_of_several_elements_is_refused(make):
    with pytest.raises(TranspileError, match="returning a number") as info:
        make()
    assert "test_size_one_results.py" in str(info.value)
    assert "of shape (2,)" in str(info.value)


def same_values(x):
    return np.allclose(x, (x * 3.0) / 3.0)


def positive(x):
    return x > 0.0


def any_positive(x):
    return np.array([np.sum(x) > 0.0])


def step(x):                            # an integer result: locally constant, derivative 0
    if x > 0.0:
        return x * x
    return 0


@pytest.mark.parametrize("make", [
    lambda: transpile.grad(same_values)(X),
    lambda: transpile.grad(positive)(0.3),
    lambda: transpile.value_and_grad(any_positive)(X),
    lambda: transpile.hvp(same_values)(X, v=X),
    lambda: transpile.hvp(positive, mode="reverse-over-forward")(0.3, v=1.0),
    lambda: transpile.grad(transpile.grad(positive))(0.3),
], ids=["allclose", "comparison", "bool-array", "hvp", "hvp-reverse-over-forward",
        "grad-of-grad"])
def test_a_truth_value_is_refused(make):
    """A predicate has no derivative: never a silent 0.0. The refusal is also a TypeError,
    as autograd and JAX raise for it."""
    with pytest.raises(transpile.TranspileTypeError, match="truth value") as info:
        make()
    assert isinstance(info.value, TypeError)
    assert "test_size_one_results.py" in str(info.value)


def test_an_integer_result_is_a_number():
    assert transpile.grad(step)(-0.5) == 0.0
    assert transpile.grad(step)(0.5) == pytest.approx(central(step, 0.5))
