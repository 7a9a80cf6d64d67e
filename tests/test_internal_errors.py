"""A bug inside transpile's passes is one TranspileError at the user's line, never a
number and never a bare internal exception (SyntaxError, KeyError, ...)."""
import math

import pytest

import transpile
from transpile import optimize


def poly(x):
    return math.sin(x) * x + x ** 3


def test_an_internal_failure_is_a_transpile_error_at_the_users_line(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a pass lost a name")

    monkeypatch.setattr(optimize, "run", broken)
    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(poly)(0.5)
    message = str(info.value)
    assert "test_internal_errors.py:11: in poly:" in message
    assert "internal error" in message and "KeyError" in message
    monkeypatch.undo()
    x, h = 0.5, 1e-6                      # the failure is not cached: it works afterwards
    assert transpile.grad(poly)(x) == pytest.approx((poly(x + h) - poly(x - h)) / (2 * h),
                                                    rel=1e-7)
