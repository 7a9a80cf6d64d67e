"""transpile: source-to-source automatic differentiation for Python.

    @transpile.differentiate
    def f(x, w): ...
    f.grad(0.3, 0.7); f.value_and_grad(...); f.vjp(...); print(f.source)

Reverse mode: `grad`, `value_and_grad`, `vjp`; forward mode: `jvp`; second order and
matrices of derivatives: `hvp`, `hessian`, `jacobian`, ``grad(grad(f))``; your own rules:
`defvjp`, `defjvp`; inside a function: `grad_hook`, `stop_gradient`; testing:
`check_grads`. Every function takes a Python function defined in a file (its source is
read) and refuses what it cannot differentiate with one `TranspileError` at your line.

The pipeline, one module per pass: frontend -> normalize -> analysis -> reverse -> emit
(orchestrated and cached by pipeline); rules/ holds the derivative rules; jit.py is the
optional numba backend (jit=True).
"""
from .errors import TranspileError, TranspileTypeError
from .api import differentiate, grad, value_and_grad, vjp, jvp
from .api import Derivative, Differentiable, GradientFunction
from .rules import defjvp, defvjp
from . import rules
from . import tree
from .hooks import grad_hook, stop_gradient
from . import cache
from . import higher as _higher
from .api import entry_for as _entry_for

# public entry points: arguments checked, errors trimmed to the user's frames (api.py);
# each keeps the signature, type and docstring of its maker in higher.py
hessian = _entry_for(_higher.hessian)
hvp = _entry_for(_higher.hvp)
jacobian = _entry_for(_higher.jacobian)
from .check import check_grads  # noqa: E402

__version__ = "0.1.0"
__all__ = ["differentiate", "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "defvjp", "defjvp",
           "TranspileError", "TranspileTypeError", "check_grads",
           "Differentiable", "GradientFunction", "Derivative", "rules", "tree", "grad_hook",
           "stop_gradient"]
