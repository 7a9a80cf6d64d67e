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

Importing transpile imports none of that: each public name is imported the first time it is
read (`__getattr__` below), the rules register on first lookup (rules/registry.py).
"""
from typing import TYPE_CHECKING

from .errors import TranspileError, TranspileTypeError

__version__ = "0.1.0"
__all__ = ["differentiate", "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "defvjp", "defjvp",
           "TranspileError", "TranspileTypeError", "check_grads",
           "Differentiable", "GradientFunction", "Derivative", "rules", "tree", "grad_hook",
           "stop_gradient"]

if TYPE_CHECKING:
    from .api import differentiate, grad, value_and_grad, vjp, jvp
    from .api import Derivative, Differentiable, GradientFunction
    from .rules import defjvp, defvjp
    from . import rules, tree, cache
    from .hooks import grad_hook, stop_gradient
    from .higher import hessian, hvp, jacobian
    from .check import check_grads

#: public name -> the module that defines it (imported on first use)
_LAZY = {"differentiate": "api", "grad": "api", "value_and_grad": "api", "vjp": "api",
         "jvp": "api", "Derivative": "api", "Differentiable": "api",
         "GradientFunction": "api", "defvjp": "rules", "defjvp": "rules",
         "grad_hook": "hooks", "stop_gradient": "hooks", "check_grads": "check"}
_SUBMODULES = ("rules", "tree", "cache")
#: public entry points: arguments checked, errors trimmed to the user's frames (api.py);
#: each keeps the signature, type and docstring of its maker in higher.py
_ENTRIES = ("hessian", "hvp", "jacobian")


def __getattr__(name):
    import importlib.util
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _ENTRIES:
        from . import higher
        from .api import entry_for
        value = entry_for(getattr(higher, name))
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f".{name}", __name__)   # any other submodule
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
