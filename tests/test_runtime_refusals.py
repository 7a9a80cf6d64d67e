"""A rule that refuses the values it is given while the derivative code runs (eigenvectors
at a repeated eigenvalue, a user rule's own refusal) raises one TranspileError that starts
with the user's file:line, from every maker of derivatives: grad, value_and_grad, vjp's
pullback, jvp, both hvp routes, hessian, jacobian, grad of grad (emit.locate). Before, the
message had no place at all."""
import numpy as np
import pytest

import transpile
from transpile import TranspileError

HERE = "test_runtime_refusals.py"


def eigenvectors(x):
    s = x + x.T
    return np.sum(np.linalg.eigh(s)[1] ** 3)              # line 17


def checked_sqrt(x):
    if np.any(x < 0):
        raise TranspileError("checked_sqrt: no derivative at negative values")
    return np.sqrt(x)


def checked_sqrt_vjp(g, ans, x):
    if np.any(x <= 0):
        raise TranspileError("checked_sqrt: no derivative at 0")
    return g / (2 * ans)


transpile.defvjp(checked_sqrt, checked_sqrt_vjp)


def uses_rule(x):
    y = np.sin(x)
    return np.sum(checked_sqrt(y * y - 0.0 * x))          # line 37


REPEATED = np.eye(3)
ZERO = np.zeros(3)


@pytest.mark.parametrize("f, x, line", [(eigenvectors, REPEATED, 17), (uses_rule, ZERO, 37)],
                         ids=["eigh-repeated", "user-rule"])
@pytest.mark.parametrize("make", [
    lambda f, x: transpile.grad(f)(x),
    lambda f, x: transpile.value_and_grad(f)(x),
    lambda f, x: transpile.vjp(f, x)[1](1.0),
    lambda f, x: transpile.hvp(f)(x, v=np.ones_like(x)),
    lambda f, x: transpile.hvp(f, mode="reverse-over-forward")(x, v=np.ones_like(x)),
    lambda f, x: transpile.hessian(f)(x),
    lambda f, x: transpile.jacobian(transpile.grad(f))(x),
], ids=["grad", "value_and_grad", "vjp", "hvp", "hvp-reverse-over-forward", "hessian",
        "jacobian-of-grad"])
def test_a_refusal_at_run_time_names_the_users_line(make, f, x, line):
    with pytest.raises(TranspileError) as info:
        make(f, x)
    assert str(info.value).split(": ")[0].endswith(f"{HERE}:{line}"), str(info.value)
    assert info.value.filename.endswith(HERE) and info.value.lineno == line


def test_jvp_refusal_names_the_users_line():
    with pytest.raises(TranspileError) as info:
        transpile.jvp(eigenvectors, (REPEATED,), (np.ones((3, 3)),))
    assert info.value.filename.endswith(HERE) and info.value.lineno == 17
