"""Rules for Python's arithmetic operators, the `math` module and numeric builtins.

Elementwise functions with a sympy twin get their partial derivatives from sympy: the table
`SYMPY_TWINS` pairs each function with its sympy name, `sympy.diff` does the calculus and
sympy's Python printer writes the template, once: scripts/derive_scalar_rules.py ships them
in rules/scalar_derived.py (a test re-derives them), so that no run imports sympy. The
rest are written by hand, one line each.

Conventions at non-differentiable points: abs'(0) = 0 (sign), max/min ties send the whole
gradient to the first argument that attains the extremum (the one Python returns),
floor/ceil/trunc/round/int/`//` have derivative 0, d/dx x ** 0 = 0 (also at x = 0).
"""
import ast
import builtins
import math

from .registry import defvjp
from .. import runtime
from .scalar_derived import PARTIALS

ENV = {"math": math, "sign": runtime.sign, "digamma": runtime.digamma,
       "abs_partial": runtime.abs_partial,
       "pow_log": runtime.pow_log, "pow_deriv": runtime.pow_deriv}

# --- operators (keys are ast operator classes) -----------------------------------------
# (complex="holomorphic": analytic, the templates hold for complex values: registry.COMPLEX)
defvjp(ast.Add, "1", "1", params="a, b", name="+", env=ENV, complex="holomorphic")
defvjp(ast.Sub, "1", "-1", params="a, b", name="-", env=ENV, complex="holomorphic")
defvjp(ast.Mult, "b", "a", params="a, b", name="*", env=ENV, complex="holomorphic")
defvjp(ast.Div, "1 / b", "-a / (b * b)", params="a, b", name="/", env=ENV,
       complex="holomorphic")
defvjp(ast.Pow, "pow_deriv(a, b - 1, b)", "pow_log(a, b, 1)",
       params="a, b", name="**", env=ENV, complex="holomorphic")
# pow_log(a, b, k) = a ** b * log(a) ** k (0 where a <= 0): numbers and arrays alike
defvjp(runtime.pow_log, "b * pow_log(a, b - 1, k) + k * pow_log(a, b - 1, k - 1)",
       "pow_log(a, b, k + 1)", None, params="a, b, k", env=ENV, complex="holomorphic")
# pow_deriv(a, b, c) = c * a ** b (0 where c == 0): d/dx x ** 0 is 0, also at x = 0
defvjp(runtime.pow_deriv, "pow_deriv(a, b - 1, c * b)", "c * pow_log(a, b, 1)",
       "pow_deriv(a, b, 1)", params="a, b, c", env=ENV, complex="holomorphic")
defvjp(ast.Mod, "1", "-(a // b)", params="a, b", name="%", env=ENV)
defvjp(ast.FloorDiv, params="a, b", name="//", zero=True, env=ENV)
# bitwise operators: integers and booleans only (masks in templates: `(x >= y) | isnan(y)`)
for _op, _sym in ((ast.BitOr, "|"), (ast.BitAnd, "&"), (ast.BitXor, "^"), (ast.LShift, "<<"),
                  (ast.RShift, ">>")):
    defvjp(_op, params="a, b", name=_sym, zero=True, env=ENV)
defvjp(ast.Invert, params="a", name="~", zero=True, env=ENV)
defvjp(ast.USub, "-1", params="a", name="unary -", env=ENV, complex="holomorphic")
defvjp(ast.UAdd, "1", params="a", name="unary +", env=ENV, complex="holomorphic")

# --- math: derived by sympy from name pairs ----------------------------------------------
SYMPY_TWINS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos",
    "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh",
    "acosh": "acosh", "atanh": "atanh", "exp": "exp", "log": "log", "log2": None,
    "log10": None, "sqrt": "sqrt", "erf": "erf", "erfc": "erfc", "atan2": "atan2",
    "hypot": None,
}


def sympy_partials(sympy_name, params):
    """Partial derivatives of sympy.<sympy_name>(*params), printed as Python (math.*): what
    scripts/derive_scalar_rules.py ships in rules/scalar_derived.py."""
    import sympy
    from sympy.printing.pycode import pycode
    symbols = sympy.symbols(" ".join(params) + ("," if len(params) == 1 else ""))
    expr = getattr(sympy, sympy_name)(*symbols)
    return [pycode(sympy.simplify(sympy.diff(expr, s))) for s in symbols]


def twin_params(name):
    return "y, x" if name == "atan2" else "x"


def _derived(fn, sympy_name, params):
    if fn.__name__ in PARTIALS:                 # shipped
        defvjp(fn, *PARTIALS[fn.__name__], params=params, env=ENV)
    else:                                       # not yet shipped: sympy, on first use
        defvjp(fn, params=params, env=ENV,
               derive=lambda: sympy_partials(sympy_name, params.split(", ")))


for _name, _twin in SYMPY_TWINS.items():
    if _twin is not None:
        _derived(getattr(math, _name), _twin, twin_params(_name))

defvjp(math.expm1, "math.exp(x)", params="x", env=ENV)
defvjp(math.log1p, "1 / (1 + x)", params="x", env=ENV)
defvjp(math.log2, "1 / (x * math.log(2))", params="x", env=ENV)
defvjp(math.log10, "1 / (x * math.log(10))", params="x", env=ENV)
defvjp(math.log, "1 / (x * math.log(b))", "-math.log(x) / (b * math.log(b) ** 2)",
       params="x, b", nargs=2, env=ENV)
defvjp(math.hypot, "x / math.hypot(x, y)", "y / math.hypot(x, y)", params="x, y", env=ENV)
defvjp(math.pow, "pow_deriv(a, b - 1, b)", "pow_log(a, b, 1)",
       params="a, b", env=ENV)
defvjp(builtins.pow, "pow_deriv(a, b - 1, b)", "pow_log(a, b, 1)",
       params="a, b", nargs=2, env=ENV)
defvjp(math.fabs, "sign(x)", params="x", env=ENV)
defvjp(builtins.abs, "abs_partial(x)", params="x", env=ENV, complex="explicit",
       result="real")
# complex(a, b) = a + ib of real a, b
defvjp(builtins.complex, "1", "1j", params="real, imag", nargs=2, env=ENV,
       complex="explicit", result="complex")
defvjp(math.copysign, "sign(x) * sign(y) if x != 0 else 0.0", None, params="x, y", env=ENV)
defvjp(math.degrees, "180.0 / math.pi", params="x", env=ENV)
defvjp(math.radians, "math.pi / 180.0", params="x", env=ENV)
defvjp(math.gamma, "math.gamma(x) * digamma(x)", params="x", env=ENV)
defvjp(math.lgamma, "digamma(x)", params="x", env=ENV)
defvjp(math.fmod, "1", "-float(int(x / y))", params="x, y", env=ENV)
if hasattr(math, "cbrt"):
    defvjp(math.cbrt, "1 / (3 * math.cbrt(x) ** 2)", params="x", env=ENV)
if hasattr(math, "exp2"):
    defvjp(math.exp2, "math.exp2(x) * math.log(2)", params="x", env=ENV)
defvjp(builtins.float, "1", params="x", env=ENV)
# ties: the first argument that attains the extremum gets the gradient (Python's choice)
defvjp(builtins.max, "(1.0 if a >= b else 0.0)", "(0.0 if a >= b else 1.0)",
       params="a, b", nargs=2, env=ENV, masks=True)
defvjp(builtins.min, "(1.0 if a <= b else 0.0)", "(0.0 if a <= b else 1.0)",
       params="a, b", nargs=2, env=ENV, masks=True)

# --- piecewise-constant or integer-valued: derivative zero ------------------------------
for _fn in (math.floor, math.ceil, math.trunc, builtins.round, builtins.int, builtins.bool,
            builtins.len, builtins.range, math.isfinite, math.isnan, math.isinf,
            builtins.isinstance, math.factorial, math.comb, math.perm, math.gcd,
            builtins.slice):
    defvjp(_fn, zero=True, env=ENV, complex="explicit")     # zero for complex values too


def specialize(template, mapping):
    """The template of one partial derivative, for these arguments: `pow_deriv(a, e, c)`
    with c a nonzero number and e a number >= 0 is written out as ``c * a ** e`` (``2 * x``
    for ``x ** 2``); otherwise the helper gives exact zeros where c is 0 and an infinity,
    not a ZeroDivisionError, for ``0.0 ** -1``."""
    if not (isinstance(template, ast.Call) and isinstance(template.func, ast.Name)
            and template.func.id == "pow_deriv" and len(template.args) == 3):
        return template
    from .. import algebra
    from .. import astutil as A
    c = algebra._num(algebra.fold(A.substitute(template.args[2], mapping), fresh=True))
    e = algebra._num(algebra.fold(A.substitute(template.args[1], mapping), fresh=True))
    if c is None or c == 0 or e is None or e < 0:
        return template         # the helper: exact zeros, and no ZeroDivisionError at 0
    a, e, k = template.args
    return ast.BinOp(left=k, op=ast.Mult(), right=ast.BinOp(left=a, op=ast.Pow(), right=e))
