"""A library's own Python functions (SciPy, the standard library, installed packages) are
never differentiated by reading their source: without a rule, a derivative flowing through
one is a single TranspileError naming it, at the user's line; called on values that carry
no derivative it simply runs."""
import numpy as np
import pytest

import transpile

scipy_optimize = pytest.importorskip("scipy.optimize")


def through_rosen(x):
    return scipy_optimize.rosen(x) + np.sum(x)


def rosen_of_a_constant(x):
    c = scipy_optimize.rosen(np.array([1.0, 2.0]))
    return c * np.sum(x)


def test_a_derivative_through_a_library_function_is_refused():
    x = np.array([0.5, 0.2, 0.1])
    for call in (lambda: transpile.grad(through_rosen)(x),
                 lambda: transpile.jvp(through_rosen, [x], [x])):
        with pytest.raises(transpile.TranspileError) as info:
            call()
        assert "scipy.optimize" in str(info.value) and "library function" in str(info.value)
        assert info.value.lineno == through_rosen.__code__.co_firstlineno + 1


def test_a_library_function_on_constants_runs():
    x = np.array([0.5, 0.2, 0.1])
    c = scipy_optimize.rosen(np.array([1.0, 2.0]))
    np.testing.assert_allclose(transpile.grad(rosen_of_a_constant)(x), c * np.ones(3))


def test_a_library_function_differentiated_itself_is_refused():
    with pytest.raises(transpile.TranspileError, match="library function"):
        transpile.grad(scipy_optimize.rosen)(np.array([0.5, 0.2]))
