"""Derivative rules: one registry, one short entry per primitive.

`registry.py` holds the door (`defvjp`, `defjvp`, `lookup`); `scalar.py` registers Python's
operators, `math` and the numeric builtins (most partial derivatives derived by sympy from a
table of name pairs); `numpy_.py` NumPy, `linalg.py` numpy.linalg, `fft.py` numpy.fft; `scipy_/` SciPy
(loaded when the user's code has imported scipy); `derivative_code.py` what generated derivative code
calls (runtime helpers, NumPy vjp functions), so that it can be differentiated again.
"""
from .registry import defvjp, defjvp, lookup, has_rule, supported, Rule  # noqa: F401
from . import scalar  # noqa: F401  (registers the built-in rules)
try:
    from . import numpy_  # noqa: F401  (NumPy rules)
    from . import linalg, fft  # noqa: F401  (numpy.linalg, numpy.fft)
    from . import derivative_code  # noqa: F401  (rules for what derivative code calls)
    from . import registry as _registry
    _registry.READY[0] = True        # optional libraries' rules may load from now on
except ImportError as exc:           # pragma: no cover - numpy is a core dependency
    if "numpy" in str(exc) and "transpile" not in str(exc):
        raise
