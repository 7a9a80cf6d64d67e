"""transpile: source-to-source automatic differentiation for Python.

    @transpile.differentiate
    def f(x, w): ...
    f.grad(0.3, 0.7); f.value_and_grad(...); f.vjp(...); print(f.source)

The pipeline, one module per pass: frontend -> normalize -> analysis -> reverse -> emit
(orchestrated and cached by pipeline); rules/ holds the derivative rules; jit.py is the
optional numba backend (jit=True).
"""
from .errors import TranspileError
from .api import differentiate, grad, value_and_grad, vjp, jvp, Differentiable
from .rules import defjvp, defvjp
from . import rules
from .hooks import grad_hook, stop_gradient
from . import cache
from .higher import hessian, hvp, jacobian

__version__ = "0.1.0"
__all__ = ["differentiate", "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "defvjp", "defjvp",
           "TranspileError",
           "Differentiable", "rules", "grad_hook", "stop_gradient"]
