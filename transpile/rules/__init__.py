"""Derivative rules: one registry, one short entry per primitive.

`registry.py` holds the door (`defvjp`, `defjvp`, `lookup`); `scalar.py` registers Python's
operators, `math` and the numeric builtins (most partial derivatives derived by sympy from a
table of name pairs); `numpy_.py` NumPy, `linalg.py` numpy.linalg, `fft.py` numpy.fft; `array_api.py` the functions of
Array API namespaces (PyTorch, JAX, array-api-strict: registered when one is met); `scipy_/` SciPy
(loaded when the user's code has imported scipy); `derivative_code.py` what generated derivative code
calls (runtime helpers, NumPy vjp functions), so that it can be differentiated again.
The modules are imported on first need, in tiers (`registry.TIERS`): the first lookup
registers Python's operators and `math`, the first lookup of a NumPy (or SciPy, or
transpile) callable the NumPy rules, `supported()` and a user's `defvjp` all of them.
"""
from .registry import defvjp, defjvp, lookup, has_rule, supported, Rule  # noqa: F401
# the rule modules register on first need (registry.TIERS): importing transpile registers none
