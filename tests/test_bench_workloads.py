"""The benchmark workloads (scripts/workloads.py) differentiate correctly: transpile's
gradients against central finite differences. Correctness only; speed is measured by the
scripts, never here."""
import math
import os
import sys

import numpy as np
import pytest

import transpile
from test_numpy_programs import central

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "scripts"))
from workloads import array_workloads, recurrence_steps_program, scalar_workloads  # noqa: E402

WORKLOADS = {name: (f, args, wrt) for name, f, args, wrt in
             scalar_workloads(math) + array_workloads(np)}


def _check(f, args, wrt, rtol=1e-5, atol=1e-7):
    grads = transpile.grad(f, wrt=wrt)(*args)
    for g, i in zip(grads, wrt):
        expected = central(f, args, i)
        assert np.shape(g) == np.shape(args[i])
        np.testing.assert_allclose(g, expected, rtol=rtol, atol=atol,
                                   err_msg=f"{f.__name__} d/d{i}")


def test_logistic_regression_matches_finite_differences():
    f, args, wrt = WORKLOADS["logistic-1000x20"]
    _check(f, args, wrt)


def test_logistic_regression_is_stable_for_large_margins():
    """Huge |X w| must not overflow (the log sigmoid is written stably): the loss and the
    gradient stay finite and the gradient matches finite differences."""
    f, (w, b, X, y), wrt = WORKLOADS["logistic-1000x20"]
    args = (w * 200.0, b, X, y)
    assert np.isfinite(f(*args))
    _check(f, args, wrt, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["recurrence-200", "euler-500"])
def test_scalar_workloads_match_finite_differences(name):
    f, args, wrt = WORKLOADS[name]
    _check(f, args, wrt)


def test_recurrence_with_steps_as_parameter():
    f = recurrence_steps_program(math)
    g = transpile.grad(f, wrt=(0, 1))(0.3, 0.7, 200)
    expected = transpile.grad(WORKLOADS["recurrence-200"][0], wrt=(0, 1))(0.3, 0.7)
    assert g == expected
