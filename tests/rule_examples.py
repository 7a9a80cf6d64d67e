"""One or more example calls for every primitive in `transpile.rules.supported()`.

tests/test_rule_matrix.py turns each example into a small program (the call, each float
output passed through sin and weighted by a fixed random array, summed) and checks every
differentiation mode of that program against central finite differences. A rule that is
declared but has no entry here (in EXAMPLES or NOT_EXERCISED) fails the matrix.

An example is the call as source text in its parameter names plus the values of those
parameters (the float arguments that are differentiated); everything else (axes, index
arrays, shapes) is written into the source. Inputs are safe for the function: positive
where a logarithm or root needs it, |x| < 1 for arcsin, no ties for max/sort, well
conditioned or symmetric positive definite matrices for linear algebra.

`zero=True` marks a primitive whose derivative is zero wherever it exists (floor,
argsort, comparisons): its example checks that every mode returns exactly 0 and that the
function really is locally constant there. Primitives that take no float input (np.zeros,
math.factorial, bit operations) are exercised by an example that combines their result
with a float input, so the call is at least differentiated through.
"""
import math

import numpy as np

try:                       # SciPy's rules are exercised where SciPy is installed
    import scipy
    import scipy.integrate
    import scipy.linalg
    import scipy.signal
    import scipy.special
    import scipy.stats
except ImportError:        # pragma: no cover
    scipy = None

rng = np.random.default_rng(20261202)


def N(*shape):
    """Standard normal numbers (a Python float for no shape)."""
    return float(rng.normal()) if not shape else rng.normal(size=shape)


def U(*shape, lo=-0.9, hi=0.9):
    return float(rng.uniform(lo, hi)) if not shape else rng.uniform(lo, hi, size=shape)


def P(*shape):
    """Positive, away from 0: logarithms, roots, products."""
    return U(*shape, lo=0.5, hi=2.0)


def SPD(n, batch=()):
    b = rng.normal(size=batch + (n, n))
    return b @ np.swapaxes(b, -1, -2) / n + np.eye(n)


def WELL(n, batch=()):
    """A well-conditioned (not symmetric) square matrix."""
    return 2.0 * np.eye(n) + 0.3 * rng.normal(size=batch + (n, n))


def with_nan(x):
    x = np.array(x, float)
    x.flat[1] = np.nan
    return x


class Example:
    """One call of one primitive: `expr` in the names of `args` (the float parameters)."""

    def __init__(self, name, shape, expr, args, zero=False, wrt=None, wrap=None):
        # zero: False, True (exactly 0, and the function is locally constant) or
        # "declared" (exactly 0 by definition, e.g. stop_gradient: no difference check)
        self.name, self.shape, self.expr, self.args = name, shape, expr, dict(args)
        self.zero = zero
        self.wrt = tuple(wrt) if wrt is not None else tuple(args)
        # per output: how it enters the scalar (default "np.sin({})"); None drops it
        self.wrap = wrap
        self.id = f"{name}[{shape}]"

    def __repr__(self):
        return f"Example({self.id}: {self.expr})"


EXAMPLES = []


def _available(expr):
    """Does every `np.X` / `math.X` the expression names exist in this Python and NumPy
    (math.cbrt is 3.11+, np.unstack NumPy 2.1+...)? Examples of absent functions are left
    out: their rules are not registered either."""
    import math
    import re
    for module, path in re.findall(r"\b(np|math|scipy)\.([A-Za-z_][\w.]*)", expr):
        obj = {"np": np, "math": math, "scipy": scipy}[module]
        if obj is None:
            return False
        for part in path.split("."):
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
    return True


def _runs_here(name, expr, args):
    """SciPy's calls change between versions (batches, assume_a='diagonal', inv's
    assume_a= are recent): an example of a SciPy call that this SciPy refuses is left out
    (its rule is for the versions that have it)."""
    if not name.startswith("scipy."):
        return True
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eval(expr, {"np": np, "math": math, "scipy": scipy}, dict(args))
    except Exception:
        return False
    return True


def X(name, shape, expr, wrt=None, wrap=None, **args):
    if _available(expr) and _runs_here(name, expr, args):
        EXAMPLES.append(Example(name, shape, expr, args, wrt=wrt, wrap=wrap))


def Z(name, shape, expr, wrt=None, wrap=None, zero=True, **args):
    """A zero-derivative primitive: every mode must give exactly 0."""
    if _available(expr):
        EXAMPLES.append(Example(name, shape, expr, args, zero=zero, wrt=wrt, wrap=wrap))


# ======================================================================================
# Python operators, builtins, math
# ======================================================================================
for op in ("+", "-", "*", "/"):
    X(op, "scalars", f"x {op} y", x=N(), y=P())
    X(op, "1d", f"x {op} y", x=N(4), y=P(4))
    X(op, "bcast-2d", f"x {op} y", x=N(2, 3), y=P(3))
    X(op, "scalar-1d", f"x {op} y", x=N(), y=P(3))
X("**", "scalars", "x ** y", x=P(), y=N())
X("**", "1d", "x ** y", x=P(4), y=N(4))
X("**", "2d-const", "x ** 3", x=N(2, 3))
X("**", "scalar-const", "x ** 2.5", x=P())
X("%", "scalars", "x % y", x=U(lo=5.2, hi=5.8), y=U(lo=2.0, hi=2.5))
X("%", "1d", "x % y", x=U(4, lo=5.2, hi=5.8), y=U(4, lo=2.0, hi=2.5))
Z("//", "scalars", "x // y", x=U(lo=5.2, hi=5.8), y=U(lo=2.0, hi=2.5))
Z("//", "1d", "x // y", x=U(4, lo=5.2, hi=5.8), y=U(4, lo=2.0, hi=2.5))
X("@", "1d-1d", "x @ y", x=N(3), y=N(3))
X("@", "2d-1d", "x @ y", x=N(2, 3), y=N(3))
X("@", "2d-2d", "x @ y", x=N(2, 3), y=N(3, 2))
X("@", "batched", "x @ y", x=N(2, 2, 3), y=N(3, 2))
for op, name in (("-", "unary -"), ("+", "unary +")):
    X(name, "scalar", f"{op}x", x=N())
    X(name, "1d", f"{op}x", x=N(4))
    X(name, "2d", f"{op}x", x=N(2, 3))

X("abs", "scalar", "abs(x)", x=-P())
X("abs", "1d", "abs(x)", x=N(4) + np.array([2.0, -2.0, 2.0, -2.0]))
X("max", "scalars", "max(x, y)", x=N(), y=N() + 3.0)
X("max", "scalars-first", "max(x, y)", x=N() + 3.0, y=N())
X("min", "scalars", "min(x, y)", x=N(), y=N() + 3.0)
X("min", "scalars-second", "min(x, y)", x=N() + 3.0, y=N())
X("pow", "scalars", "pow(x, y)", x=P(), y=N())
X("float", "scalar", "float(x)", x=N())
X("float", "0d-array", "float(np.sum(x))", x=N(3))
Z("round", "scalar", "round(x)", x=2.3)
Z("round", "digits", "round(x, 1)", x=2.34)
Z("int", "scalar", "int(x)", x=2.3)
Z("bool", "scalar", "bool(x)", x=2.3)
Z("len", "1d", "len(x)", x=N(3))
Z("isinstance", "scalar", "isinstance(x, float)", x=N())
X("range", "scalar", "x * float(range(1, 4)[1])", x=N())
X("slice", "1d", "x[slice(0, 2)]", x=N(4))

MATH_DOMAIN = {"acos": U, "asin": U, "atanh": U, "acosh": lambda: 1.5 + P(),
               "log": P, "log2": P, "log10": P, "log1p": P, "sqrt": P, "gamma": P,
               "lgamma": P, "cbrt": P}
for fname in ("acos", "acosh", "asin", "asinh", "atan", "atanh", "cbrt", "cos", "cosh",
              "degrees", "erf", "erfc", "exp", "exp2", "expm1", "fabs", "gamma", "lgamma",
              "log", "log10", "log1p", "log2", "radians", "sin", "sinh", "sqrt", "tan",
              "tanh"):
    if hasattr(math, fname):
        X(f"math.{fname}", "scalar", f"math.{fname}(x)", x=MATH_DOMAIN.get(fname, N)())
X("math.cbrt", "negative", "math.cbrt(x)", x=-P())
X("math.log", "base", "math.log(x, y)", x=P(), y=U(lo=2.0, hi=3.0))
X("math.atan2", "scalars", "math.atan2(y, x)", y=N(), x=P())
X("math.copysign", "scalars", "math.copysign(x, y)", x=P(), y=-P())
X("math.fmod", "scalars", "math.fmod(x, y)", x=-U(lo=5.2, hi=5.8), y=U(lo=2.0, hi=2.5))
X("math.hypot", "scalars", "math.hypot(x, y)", x=N(), y=N())
X("math.pow", "scalars", "math.pow(x, y)", x=P(), y=N())
for fname in ("ceil", "floor", "trunc"):
    Z(f"math.{fname}", "scalar", f"math.{fname}(x)", x=2.3)
for fname in ("isfinite", "isinf", "isnan"):
    Z(f"math.{fname}", "scalar", f"math.{fname}(x)", x=N())
X("math.factorial", "uses", "x * math.factorial(3)", x=N())
X("math.comb", "uses", "x * math.comb(5, 2)", x=N())
X("math.perm", "uses", "x * math.perm(5, 2)", x=N())
X("math.gcd", "uses", "x * math.gcd(12, 18)", x=N())

# ======================================================================================
# NumPy elementwise
# ======================================================================================
NP_DOMAIN = {"arcsin": U, "arccos": U, "arctanh": U,
             "arccosh": lambda *s: 1.5 + P(*s), "log": P, "log2": P, "log10": P,
             "log1p": P, "sqrt": P, "reciprocal": P, "cbrt": P}
for fname in ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
              "arcsinh", "arccosh", "arctanh", "exp", "exp2", "expm1", "log", "log2",
              "log10", "log1p", "sqrt", "cbrt", "square", "reciprocal", "absolute", "fabs",
              "negative", "positive", "sinc", "deg2rad", "radians", "rad2deg", "degrees",
              "conjugate", "real"):
    dom = NP_DOMAIN.get(fname, N)
    X(f"numpy.{fname}", "scalar", f"np.{fname}(x)", x=dom())
    X(f"numpy.{fname}", "1d", f"np.{fname}(x)", x=dom(4))
    X(f"numpy.{fname}", "2d", f"np.{fname}(x)", x=dom(2, 3))
X("numpy.sinc", "at-zero", "np.sinc(x)", x=np.array([0.0, 0.3, -1.2]))
X("numpy.cbrt", "negative", "np.cbrt(x)", x=-P(3))

BIN_DOMAIN = {"power": (P, N), "float_power": (P, N), "divide": (N, P),
              "remainder": (lambda *s: U(*s, lo=5.2, hi=5.8), lambda *s: U(*s, lo=2.0, hi=2.5)),
              "fmod": (lambda *s: -U(*s, lo=5.2, hi=5.8), lambda *s: U(*s, lo=2.0, hi=2.5)),
              "copysign": (P, N)}
for fname in ("add", "subtract", "multiply", "divide", "power", "float_power", "maximum",
              "minimum", "fmax", "fmin", "hypot", "logaddexp", "logaddexp2", "copysign",
              "remainder", "fmod", "arctan2"):
    dx, dy = BIN_DOMAIN.get(fname, (N, N))
    X(f"numpy.{fname}", "scalars", f"np.{fname}(x, y)", x=dx(), y=dy())
    X(f"numpy.{fname}", "1d", f"np.{fname}(x, y)", x=dx(4), y=dy(4))
    X(f"numpy.{fname}", "bcast-2d", f"np.{fname}(x, y)", x=dx(2, 3), y=dy(3))
X("numpy.ldexp", "1d", "np.ldexp(x, np.array([1, -2, 3]))", x=N(3))
X("numpy.where", "1d", "np.where(np.array([True, False, True]), x, y)", x=N(3), y=N(3))
X("numpy.where", "2d-scalar", "np.where(np.array([True, False, True]), x, 2.5)", x=N(2, 3))
X("numpy.where", "bcast", "np.where(np.array([[True], [False]]), x, y)", x=N(2, 3), y=N(3))

# ======================================================================================
# NumPy reductions and scans
# ======================================================================================
for fname in ("sum", "mean", "prod", "max", "min", "amax", "amin", "ptp", "var", "std"):
    dom = P if fname == "prod" else N
    X(f"numpy.{fname}", "1d", f"np.{fname}(x)", x=dom(5))
    X(f"numpy.{fname}", "2d", f"np.{fname}(x)", x=dom(2, 3))
    X(f"numpy.{fname}", "2d-axis", f"np.{fname}(x, axis=1)", x=dom(2, 3))
    X(f"numpy.{fname}", "3d-axes", f"np.{fname}(x, axis=(0, 2), keepdims=True)",
      x=dom(2, 3, 2))
X("numpy.var", "ddof", "np.var(x, axis=0, ddof=1)", x=N(3, 2))
X("numpy.std", "ddof", "np.std(x, axis=0, ddof=1)", x=N(3, 2))
X("numpy.median", "1d", "np.median(x)", x=N(5))
X("numpy.median", "2d-axis-even", "np.median(x, axis=1)", x=N(2, 4))
for fname in ("nansum", "nanmean", "nanprod", "nanmax", "nanmin", "nanvar", "nanstd"):
    dom = P if fname == "nanprod" else N
    X(f"numpy.{fname}", "1d", f"np.{fname}(x)", x=dom(5))
    X(f"numpy.{fname}", "2d-nan-axis", f"np.{fname}(x, axis=1)", x=with_nan(dom(2, 3)))
for fname in ("cumsum", "cumprod", "nancumsum", "nancumprod"):
    dom = P if "prod" in fname else N
    X(f"numpy.{fname}", "1d", f"np.{fname}(x)", x=dom(4))
    X(f"numpy.{fname}", "2d-axis", f"np.{fname}(x, axis=1)",
      x=with_nan(dom(2, 3)) if fname.startswith("nan") else dom(2, 3))
for fname in ("cumulative_sum", "cumulative_prod"):
    X(f"numpy.{fname}", "1d", f"np.{fname}(x, include_initial=True)", x=P(4))
    X(f"numpy.{fname}", "2d-axis", f"np.{fname}(x, axis=1)", x=P(2, 3))
X("numpy.average", "2d-axis", "np.average(x, axis=1)", x=N(2, 3))
X("numpy.average", "weights", "np.average(x, 1, y)", x=N(2, 3), y=P(2, 3))
X("numpy.average", "returned", "np.average(x, 0, y, True)", x=N(3, 2), y=P(3))
X("numpy.trapezoid", "1d", "np.trapezoid(x, dx=0.5)", x=N(5))
X("numpy.trapezoid", "2d-coords", "np.trapezoid(y, x)", y=N(2, 4),
  x=np.array([0.0, 0.4, 1.1, 1.5]) + U(4, lo=-0.1, hi=0.1))

# ======================================================================================
# NumPy linear algebra
# ======================================================================================
X("numpy.dot", "1d-1d", "np.dot(x, y)", x=N(3), y=N(3))
X("numpy.dot", "2d-1d", "np.dot(x, y)", x=N(2, 3), y=N(3))
X("numpy.dot", "2d-2d", "np.dot(x, y)", x=N(2, 3), y=N(3, 2))
X("numpy.dot", "scalar-1d", "np.dot(x, y)", x=N(), y=N(3))
for fname in ("numpy.matmul", "numpy.linalg.matmul"):
    call = fname.replace("numpy", "np")
    X(fname, "2d-2d", f"{call}(x, y)", x=N(2, 3), y=N(3, 2))
    X(fname, "1d-2d", f"{call}(x, y)", x=N(3), y=N(3, 2))
    X(fname, "batched", f"{call}(x, y)", x=N(2, 2, 3), y=N(2, 3, 2))
X("numpy.einsum", "matmul", "np.einsum('ij,jk->ik', x, y)", x=N(2, 3), y=N(3, 2))
X("numpy.einsum", "diag", "np.einsum('ii->i', x)", x=N(3, 3))
X("numpy.einsum", "batched", "np.einsum('bij,bjk->bik', x, y)", x=N(2, 2, 3), y=N(2, 3, 2))
X("numpy.tensordot", "axes1", "np.tensordot(x, y, axes=1)", x=N(3, 2), y=N(2, 3))
X("numpy.tensordot", "axes2", "np.tensordot(x, y, axes=([1, 0], [0, 1]))", x=N(2, 3, 2),
  y=N(3, 2))
X("numpy.linalg.tensordot", "axes1", "np.linalg.tensordot(x, y, axes=1)", x=N(3, 2),
  y=N(2, 3))
X("numpy.inner", "1d", "np.inner(x, y)", x=N(3), y=N(3))
X("numpy.inner", "2d", "np.inner(x, y)", x=N(2, 3), y=N(2, 3))
X("numpy.outer", "1d", "np.outer(x, y)", x=N(3), y=N(2))
X("numpy.linalg.outer", "1d", "np.linalg.outer(x, y)", x=N(3), y=N(2))
X("numpy.vdot", "2d", "np.vdot(x, y)", x=N(2, 3), y=N(2, 3))
X("numpy.trace", "2d", "np.trace(x)", x=N(3, 3))
X("numpy.trace", "batched", "np.trace(x, axis1=1, axis2=2)", x=N(2, 3, 3))
X("numpy.linalg.trace", "batched", "np.linalg.trace(x)", x=N(2, 3, 3))
X("numpy.diag", "1d", "np.diag(x)", x=N(3))
X("numpy.diag", "2d", "np.diag(x, 1)", x=N(3, 4))
X("numpy.diagflat", "2d", "np.diagflat(x)", x=N(2, 2))
X("numpy.diagonal", "2d", "np.diagonal(x)", x=N(3, 4))
X("numpy.diagonal", "batched", "np.diagonal(x, 0, 1, 2)", x=N(2, 3, 3))
X("numpy.linalg.diagonal", "batched", "np.linalg.diagonal(x)", x=N(2, 3, 3))
X("numpy.tril", "2d", "np.tril(x, -1)", x=N(3, 4))
X("numpy.triu", "batched", "np.triu(x)", x=N(2, 3, 3))
X("numpy.kron", "2d", "np.kron(x, y)", x=N(2, 2), y=N(2, 1))
X("numpy.cross", "1d", "np.cross(x, y)", x=N(3), y=N(3))
X("numpy.cross", "batched", "np.cross(x, y)", x=N(2, 3), y=N(3))
X("numpy.linalg.cross", "batched", "np.linalg.cross(x, y)", x=N(2, 3), y=N(2, 3))
X("numpy.linalg.solve", "2d-1d", "np.linalg.solve(x, y)", x=WELL(3), y=N(3))
X("numpy.linalg.solve", "2d-2d", "np.linalg.solve(x, y)", x=WELL(3), y=N(3, 2))
X("numpy.linalg.solve", "batched", "np.linalg.solve(x, y)", x=WELL(3, (2,)), y=N(2, 3, 2))
X("numpy.linalg.inv", "2d", "np.linalg.inv(x)", x=WELL(3))
X("numpy.linalg.inv", "batched", "np.linalg.inv(x)", x=WELL(3, (2,)))
X("numpy.linalg.det", "2d", "np.linalg.det(x)", x=WELL(3))
X("numpy.linalg.det", "batched", "np.linalg.det(x)", x=WELL(3, (2,)))
X("numpy.linalg.slogdet", "2d", "np.linalg.slogdet(x)", x=WELL(3))
X("numpy.linalg.slogdet", "negative-det", "np.linalg.slogdet(x)", x=-SPD(3))
SYM = "(x + np.swapaxes(x, -1, -2)) / 2"          # symmetric input from any square x
X("numpy.linalg.cholesky", "2d", f"np.linalg.cholesky({SYM})", x=SPD(3))
X("numpy.linalg.cholesky", "batched", f"np.linalg.cholesky({SYM})", x=SPD(3, (2,)))
X("numpy.linalg.cholesky", "upper", f"np.linalg.cholesky({SYM}, upper=True)", x=SPD(3))
X("numpy.linalg.eigh", "2d", f"np.linalg.eigh({SYM})", x=SPD(3),
  wrap=("np.sin({})", "np.sin({0} * {0})"))     # eigenvectors: sign-free products
X("numpy.linalg.eigh", "batched", f"np.linalg.eigh({SYM})", x=SPD(3, (2,)),
  wrap=("np.sin({})", "np.sin({0} * {0})"))
X("numpy.linalg.eigvalsh", "2d", f"np.linalg.eigvalsh({SYM})", x=SPD(3))
X("numpy.linalg.svdvals", "2d", "np.linalg.svdvals(x)", x=N(3, 2))
X("numpy.linalg.svdvals", "batched", "np.linalg.svdvals(x)", x=N(2, 2, 3))
X("numpy.linalg.pinv", "wide", "np.linalg.pinv(x)", x=N(2, 3))
X("numpy.linalg.pinv", "square", "np.linalg.pinv(x)", x=WELL(3))
X("numpy.linalg.matrix_power", "2d-3", "np.linalg.matrix_power(x, 3)", x=0.6 * N(3, 3))
X("numpy.linalg.matrix_power", "2d-neg", "np.linalg.matrix_power(x, -2)", x=WELL(3))
X("numpy.linalg.multi_dot", "2d", "np.linalg.multi_dot([x, y, z])", x=N(2, 3), y=N(3, 3),
  z=N(3, 2))
X("numpy.linalg.multi_dot", "vectors", "np.linalg.multi_dot([x, y, z])", x=N(3),
  y=N(3, 2), z=N(2))
X("numpy.linalg.norm", "1d", "np.linalg.norm(x)", x=N(4))
X("numpy.linalg.norm", "1d-ord1", "np.linalg.norm(x, 1)", x=N(4))
X("numpy.linalg.norm", "1d-inf", "np.linalg.norm(x, np.inf)", x=N(4))
X("numpy.linalg.norm", "2d-fro", "np.linalg.norm(x)", x=N(2, 3))
X("numpy.linalg.norm", "2d-ord2", "np.linalg.norm(x, 2)", x=N(2, 3))
X("numpy.linalg.norm", "2d-nuc", "np.linalg.norm(x, 'nuc')", x=N(2, 3))
X("numpy.linalg.norm", "2d-axis", "np.linalg.norm(x, axis=1)", x=N(2, 3))
X("numpy.linalg.norm", "batched", "np.linalg.norm(x, axis=(1, 2))", x=N(2, 2, 3))
X("numpy.linalg.vector_norm", "2d-axis", "np.linalg.vector_norm(x, axis=1)", x=N(2, 3))
X("numpy.linalg.vector_norm", "1d-ord1", "np.linalg.vector_norm(x, ord=1)", x=N(4))
X("numpy.linalg.matrix_norm", "batched", "np.linalg.matrix_norm(x)", x=N(2, 2, 3))
X("numpy.linalg.matrix_norm", "2d-nuc", "np.linalg.matrix_norm(x, ord='nuc')", x=N(2, 3))
X("numpy.vecdot", "bcast", "np.vecdot(x, y)", x=N(2, 3), y=N(3))
X("numpy.linalg.vecdot", "bcast", "np.linalg.vecdot(x, y)", x=N(2, 3), y=N(3))
X("numpy.matvec", "batched", "np.matvec(x, y)", x=N(2, 2, 3), y=N(3))
X("numpy.vecmat", "batched", "np.vecmat(x, y)", x=N(2), y=N(2, 2, 3))
X("numpy.matrix_transpose", "batched", "np.matrix_transpose(x)", x=N(2, 2, 3))
X("numpy.linalg.matrix_transpose", "2d", "np.linalg.matrix_transpose(x)", x=N(2, 3))
X("numpy.polyval", "1d", "np.polyval(x, y)", x=N(3), y=N(4))
X("numpy.polyval", "scalar", "np.polyval(x, y)", x=N(3), y=N())
for fname in ("convolve", "correlate"):
    for mode in ("full", "same", "valid"):
        X(f"numpy.{fname}", f"1d-{mode}", f"np.{fname}(x, y, '{mode}')", x=N(4), y=N(3))
X("numpy.interp", "1d", "np.interp(x, y, z)", x=np.array([-0.5, 0.3, 1.1, 2.6, 3.5]),
  y=np.array([0.0, 1.0, 2.0, 3.0]), z=N(4))

# ======================================================================================
# NumPy shapes, copies, joins and splits
# ======================================================================================
X("numpy.reshape", "2d", "np.reshape(x, (3, 2))", x=N(2, 3))
X("numpy.reshape", "order-F", "np.reshape(x, (-1,), order='F')", x=N(2, 3))
X("numpy.expand_dims", "2d", "np.expand_dims(x, 1)", x=N(2, 3))
X("numpy.squeeze", "3d", "np.squeeze(x)", x=N(1, 3, 1))
X("numpy.ravel", "2d", "np.ravel(x)", x=N(2, 3))
X("numpy.transpose", "3d", "np.transpose(x, (2, 0, 1))", x=N(2, 3, 2))
X("numpy.swapaxes", "3d", "np.swapaxes(x, 0, 2)", x=N(2, 3, 2))
X("numpy.moveaxis", "3d", "np.moveaxis(x, 0, 2)", x=N(2, 3, 2))
X("numpy.rollaxis", "3d", "np.rollaxis(x, 2)", x=N(2, 3, 2))
for fname in ("atleast_1d", "atleast_2d", "atleast_3d"):
    X(f"numpy.{fname}", "scalar", f"np.{fname}(x)", x=N())
    X(f"numpy.{fname}", "1d", f"np.{fname}(x)", x=N(3))
X("numpy.concatenate", "2d", "np.concatenate([x, y])", x=N(2, 3), y=N(1, 3))
X("numpy.concatenate", "axis1", "np.concatenate((x, y), axis=1)", x=N(2, 3), y=N(2, 1))
X("numpy.stack", "2d", "np.stack([x, y], axis=-1)", x=N(2, 3), y=N(2, 3))
X("numpy.hstack", "1d", "np.hstack([x, y])", x=N(3), y=N(2))
X("numpy.vstack", "mixed", "np.vstack([x, y])", x=N(3), y=N(2, 3))
if hasattr(np, "row_stack"):
    X("numpy.row_stack", "mixed", "np.row_stack([x, y])", x=N(3), y=N(2, 3))
X("numpy.dstack", "1d", "np.dstack([x, y])", x=N(3), y=N(3))
X("numpy.column_stack", "1d-2d", "np.column_stack([x, y])", x=N(3), y=N(3, 2))
X("numpy.block", "2d", "np.block([[x, y], [y, x]])", x=N(2, 2), y=N(2, 2))
X("numpy.split", "2d", "np.split(x, 2)", x=N(4, 2))
X("numpy.array_split", "1d", "np.array_split(x, 2)", x=N(5))
X("numpy.hsplit", "2d", "np.hsplit(x, 2)", x=N(2, 4))
X("numpy.vsplit", "2d", "np.vsplit(x, 2)", x=N(4, 2))
X("numpy.dsplit", "3d", "np.dsplit(x, 2)", x=N(2, 1, 4))
X("numpy.unstack", "2d", "np.unstack(x, axis=1)", x=N(2, 3))
X("numpy.tile", "1d", "np.tile(x, 2)", x=N(3))
X("numpy.tile", "2d", "np.tile(x, (2, 1, 2))", x=N(2, 3))
X("numpy.repeat", "2d-axis", "np.repeat(x, 2, axis=1)", x=N(2, 3))
X("numpy.repeat", "counts", "np.repeat(x, np.array([1, 0, 2]))", x=N(3))
X("numpy.flip", "2d", "np.flip(x, 1)", x=N(2, 3))
X("numpy.fliplr", "2d", "np.fliplr(x)", x=N(2, 3))
X("numpy.flipud", "2d", "np.flipud(x)", x=N(2, 3))
X("numpy.rot90", "2d", "np.rot90(x)", x=N(2, 3))
X("numpy.roll", "1d", "np.roll(x, 2)", x=N(5))
X("numpy.roll", "2d-axes", "np.roll(x, (1, -1), (0, 1))", x=N(2, 3))
X("numpy.pad", "2d", "np.pad(x, ((1, 0), (0, 2)))", x=N(2, 3))
X("numpy.pad", "reflect", "np.pad(x, 2, 'reflect')", x=N(4))
X("numpy.pad", "constant-value", "np.pad(x, 1, constant_values=y)", x=N(3), y=N())
X("numpy.broadcast_to", "1d", "np.broadcast_to(x, (2, 3))", x=N(3))
X("numpy.broadcast_arrays", "2", "np.broadcast_arrays(x, y)", x=N(2, 1), y=N(3))
X("numpy.resize", "2d", "np.resize(x, (3, 3))", x=N(2, 3))
for fname in ("copy", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray",
              "array", "require"):
    X(f"numpy.{fname}", "2d", f"np.{fname}(x)", x=N(2, 3))
X("numpy.asarray", "list", "np.asarray([x, y])", x=N(), y=N())
X("numpy.array", "list-of-arrays", "np.array([x, y])", x=N(3), y=N(3))
X("numpy.ndarray.astype", "2d", "x.astype(np.float64)", x=N(2, 3))
X("numpy.float64", "2d", "np.float64(x)", x=N(2, 3))
X("numpy.float64", "scalar", "np.float64(x) * x", x=N())
X("numpy.nan_to_num", "1d", "np.nan_to_num(x * np.array([1.0, np.nan, np.inf, -np.inf]))",
  x=P(4))
X("numpy.nan_to_num", "keywords", "np.nan_to_num(x * np.array([[1.0, np.inf], "
  "[np.nan, -np.inf]]), nan=1.5, posinf=3.0, neginf=-2.0)", x=P(2, 2))
X("numpy.gradient", "1d", "np.gradient(x)", x=N(5))
X("numpy.gradient", "2d", "np.gradient(x)", x=N(4, 3))
X("numpy.gradient", "axis", "np.gradient(x, axis=1)", x=N(3, 4))
X("numpy.gradient", "spacing", "np.gradient(x, 0.5, axis=0)", x=N(4, 3))
X("numpy.gradient", "coordinates", "np.gradient(x, np.array([0.0, 0.5, 1.5, 3.0]))",
  x=N(4))
X("numpy.gradient", "edge-order-2", "np.gradient(x, edge_order=2)", x=N(5))
X("numpy.gradient", "axes", "np.gradient(x, 2.0, 0.5, axis=(0, -1))", x=N(3, 2, 4))
X("numpy.ndarray.flatten", "2d", "x.flatten()", x=N(2, 3))
X("numpy.ndarray.ravel", "2d", "x.ravel()", x=N(2, 3))
X("numpy.ndarray.copy", "2d", "x.copy()", x=N(2, 3))
X("numpy.ndarray.view", "2d", "x.view()", x=N(2, 3))
X("numpy.ndarray.transpose", "3d", "x.transpose(2, 0, 1)", x=N(2, 3, 2))
X("numpy.ndarray.item", "2d", "x.item(4)", x=N(2, 3))
X("numpy.ndarray.tolist", "1d", "x.tolist()", x=N(3), wrap=("np.sin(np.array({}))",))
X("numpy.meshgrid", "1d", "np.meshgrid(x, y)", x=N(3), y=N(2))
X("numpy.real", "complex-free", "np.real(x) * y", x=N(3), y=N(3))

# ======================================================================================
# NumPy indexing-like, sorting, piecewise linear
# ======================================================================================
X("numpy.take", "2d-axis", "np.take(x, np.array([0, 2, 2]), axis=1)", x=N(2, 3))
X("numpy.take", "flat", "np.take(x, np.array([[0, 5], [4, 4]]))", x=N(2, 3))
X("numpy.take_along_axis", "2d", "np.take_along_axis(x, np.array([[0, 1], [2, 2]]), axis=1)",
  x=N(2, 3))
X("numpy.compress", "2d", "np.compress(np.array([True, False, True]), x, axis=1)", x=N(2, 3))
X("numpy.extract", "2d", "np.extract(np.array([[True, False, True], [False, True, True]]), x)",
  x=N(2, 3))
X("numpy.delete", "2d", "np.delete(x, [1], axis=1)", x=N(2, 3))
X("numpy.insert", "2d", "np.insert(x, 1, y, axis=1)", x=N(2, 3), y=N(2))
X("numpy.append", "2d", "np.append(x, y, axis=0)", x=N(2, 3), y=N(1, 3))
X("numpy.choose", "2d", "np.choose(np.array([[0, 1, 2], [2, 0, 1]]), [x, y, z])",
  x=N(2, 3), y=N(3), z=N(2, 3))
X("numpy.select", "2d",
  "np.select([np.array([True, False, False]), np.array([False, True, False])], [x, y], z)",
  x=N(2, 3), y=N(3), z=N(2, 3))
X("numpy.sort", "1d", "np.sort(x)", x=N(5))
X("numpy.sort", "2d-axis0", "np.sort(x, 0)", x=N(3, 2))
X("numpy.partition", "1d", "np.partition(x, 2)", x=N(5))
X("numpy.clip", "2d", "np.clip(x, -0.5, 0.5)", x=np.array([[-0.9, -0.2, 0.3], [0.7, 0.1, -1.3]]))
X("numpy.clip", "array-bounds", "np.clip(x, y, z)", x=np.array([-0.9, -0.2, 0.3, 0.9]),
  y=np.array([-0.5, -0.4, -0.6, -0.5]), z=np.array([0.5, 0.4, 0.1, 0.6]))
X("numpy.diff", "1d", "np.diff(x)", x=N(4))
X("numpy.diff", "2d-n2", "np.diff(x, 2, 0)", x=N(4, 2))
X("numpy.ediff1d", "2d", "np.ediff1d(x)", x=N(2, 3))
X("numpy.bincount", "weights", "np.bincount(np.array([0, 2, 2, 3]), x)", x=N(4))

# ======================================================================================
# NumPy creation with a differentiable value
# ======================================================================================
X("numpy.full", "scalar", "np.full((2, 3), x)", x=N())
X("numpy.full", "1d", "np.full((2, 3), x)", x=N(3))
X("numpy.full_like", "2d", "np.full_like(y, x)", x=N(), y=N(2, 3))
X("numpy.linspace", "scalars", "np.linspace(x, y, 5)", x=N(), y=N() + 3.0)
X("numpy.linspace", "arrays", "np.linspace(x, y, 4, axis=1)", x=N(2), y=N(2))
X("numpy.linspace", "retstep", "np.linspace(x, y, 5, retstep=True)", x=N(), y=N() + 3.0)

# ======================================================================================
# NumPy zero-derivative functions of float input: every mode exactly 0
# ======================================================================================
XF = N(2, 3)                       # away from integers and ties
for fname in ("sign", "floor", "ceil", "trunc", "rint", "round", "around", "fix", "signbit",
              "isnan", "isinf", "isfinite", "isneginf", "isposinf", "isreal", "iscomplex",
              "logical_not", "argsort", "argwhere", "nonzero", "flatnonzero",
              "count_nonzero", "spacing", "argmax", "argmin", "nanargmax", "nanargmin"):
    Z(f"numpy.{fname}", "2d", f"np.{fname}(x)", x=N(2, 3))
Z("numpy.round", "decimals", "np.round(x, 1)", x=N(2, 3))
for fname in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "bool_"):                  # (intc, intp... are these types under other names)
    Z(f"numpy.{getattr(np, fname).__name__}", "2d", f"np.{fname}(x)",
      x=U(2, 3, lo=1.2, hi=1.8))
Z("numpy.int64", "scalar", "np.int64(x)", x=U(lo=2.2, hi=2.8))
Z("numpy.argmax", "axis", "np.argmax(x, axis=1)", x=N(2, 3))
Z("numpy.argpartition", "1d", "np.argpartition(x, 2)", x=N(5))
for fname in ("isrealobj", "iscomplexobj", "isscalar", "shape", "ndim", "size"):
    Z(f"numpy.{fname}", "2d", f"np.{fname}(x)", x=N(2, 3))
for fname in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
              "logical_and", "logical_or", "logical_xor", "isclose", "allclose",
              "array_equal", "array_equiv", "isin", "heaviside"):
    Z(f"numpy.{fname}", "2d", f"np.{fname}(x, y)", x=N(2, 3), y=N(2, 3))
Z("numpy.floor_divide", "2d", "np.floor_divide(x, y)", x=N(2, 3), y=P(2, 3))
Z("numpy.any", "2d", "np.any(x > 0)", x=N(2, 3))
Z("numpy.all", "2d", "np.all(x > 0)", x=N(2, 3))
Z("numpy.where", "one-argument", "np.where(x > 0)", x=N(2, 3))
Z("numpy.searchsorted", "1d", "np.searchsorted(np.array([-1.0, 0.0, 1.0]), x)", x=N(4))
Z("numpy.digitize", "1d", "np.digitize(x, np.array([-1.0, 0.0, 1.0]))", x=N(4))
Z("numpy.lexsort", "2d", "np.lexsort((x[0], x[1]))", x=N(2, 3))
Z("numpy.zeros_like", "2d", "np.zeros_like(x)", x=N(2, 3))
Z("numpy.ones_like", "2d", "np.ones_like(x)", x=N(2, 3))
Z("numpy.tril_indices_from", "2d", "np.tril_indices_from(x)", x=N(3, 3))
Z("numpy.triu_indices_from", "2d", "np.triu_indices_from(x)", x=N(3, 3))
Z("numpy.may_share_memory", "2d", "np.may_share_memory(x, y)", x=N(2, 3), y=N(2, 3))
Z("numpy.shares_memory", "2d", "np.shares_memory(x, y)", x=N(2, 3), y=N(2, 3))
Z("numpy.linalg.matrix_rank", "2d", "np.linalg.matrix_rank(x)", x=N(3, 3))
Z("numpy.result_type", "2d", "np.result_type(x, y)", x=N(2, 3), y=N(3),
  wrap=("np.sin(np.zeros(2, dtype={}))",))
X("numpy.arange", "float-start", "np.arange(x, 3.0)", x=0.25)
X("numpy.arange", "float-step", "np.arange(0.5, 3.0, x)", x=0.45)
Z("transpile.stop_gradient", "2d", "transpile.stop_gradient(x)", zero="declared", x=N(2, 3))
Z("transpile.stop_gradient", "scalar", "transpile.stop_gradient(x)", zero="declared", x=N())
X("transpile.grad_hook", "identity", "transpile.grad_hook(x, lambda g: g)", x=N(2, 3))

# --- no float input: the result combined with a float input -----------------------------
X("numpy.zeros", "uses", "np.zeros((2, 3)) + x", x=N(3))
X("numpy.ones", "uses", "np.ones(3) * x", x=N(3))
X("numpy.eye", "uses", "np.eye(3) @ x", x=N(3))
X("numpy.identity", "uses", "np.identity(3) @ x", x=N(3))
X("numpy.tri", "uses", "np.tri(3) @ x", x=N(3))
X("numpy.arange", "uses", "np.arange(3) * x", x=N(3))
X("numpy.indices", "uses", "np.indices((2, 3))[1] * x", x=N(2, 3))
X("numpy.tril_indices", "uses", "x[np.tril_indices(3)]", x=N(3, 3))
X("numpy.triu_indices", "uses", "x[np.triu_indices(3)]", x=N(3, 3))
X("numpy.diag_indices", "uses", "x[np.diag_indices(3)]", x=N(3, 3))
X("numpy.ravel_multi_index", "uses",
  "np.take(x, np.ravel_multi_index((np.array([0, 1]), np.array([1, 2])), (2, 3)))", x=N(2, 3))
X("numpy.unravel_index", "uses", "x[np.unravel_index(np.array([3, 5]), (2, 3))]", x=N(2, 3))
X("numpy.broadcast_shapes", "uses", "np.zeros(np.broadcast_shapes((2, 1), (3,))) + x", x=N(3))
X("numpy.can_cast", "uses", "x * float(np.can_cast(np.float32, np.float64))", x=N(3))
I1, I2 = "np.array([12, 6, 9])", "np.array([4, 10, 3])"
for fname in ("bitwise_and", "bitwise_or", "bitwise_xor", "gcd", "lcm", "left_shift",
              "right_shift"):
    X(f"numpy.{fname}", "uses", f"x * np.{fname}({I1}, {I2 if 'shift' not in fname else 1})",
      x=N(3))
X("numpy.invert", "uses", f"x * np.invert({I1})", x=N(3))
# the bitwise operators (derivative zero: the masks of templates such as fmax's combine
# comparisons with them)
for op in ("&", "|", "^"):
    X(op, "mask", f"x * ((x > 0.2) {op} (x < 0.5))", x=N(4))
    X(op, "ints", f"x * ({I1} {op} {I2})", x=N(3))
for op in ("<<", ">>"):
    X(op, "ints", f"x * ({I1} {op} 1)", x=N(3))
X("~", "mask", "x * ~(x > 0.2)", x=N(4))
X("~", "ints", f"x * ~{I1}", x=N(3))

# ======================================================================================
# scipy.special
# ======================================================================================
if scipy is not None:
    SP_UNARY = {   # name -> domain
        "expit": N, "logit": lambda *s: U(*s, lo=0.2, hi=0.8), "log_expit": N,
        "softplus": N, "erf": N, "erfc": N, "erfcx": P, "erfinv": U,
        "erfcinv": lambda *s: U(*s, lo=0.3, hi=1.7), "dawsn": N, "ndtr": N, "log_ndtr": N,
        "ndtri": lambda *s: U(*s, lo=0.2, hi=0.8), "gamma": P, "gammaln": P,
        "loggamma": P, "rgamma": P, "digamma": P, "psi": P, "entr": P, "j0": N, "j1": N,
        "y0": P, "y1": P, "i0": N, "i1": N, "i0e": N,
        "i1e": N, "k0": P, "k1": P, "k0e": P, "k1e": P,
        "spence": P, "erfi": N, "exp2": N, "exp10": N, "expm1": N, "log1p": P, "cbrt": P,
    }
    for fname, dom in SP_UNARY.items():
        rule = "digamma" if fname == "psi" else fname      # psi is digamma's alias
        X(f"scipy.special.{rule}", f"{fname}-scalar", f"scipy.special.{fname}(x)", x=dom())
        X(f"scipy.special.{rule}", f"{fname}-1d", f"scipy.special.{fname}(x)", x=dom(3))
    for fname in ("jv", "yv", "iv", "ive", "kv", "kve"):
        X(f"scipy.special.{fname}", "order-1.5", f"scipy.special.{fname}(1.5, x)", x=P(3))
    X("scipy.special.jv", "jn-int", "scipy.special.jn(2, x)", x=N(3))
    X("scipy.special.ive", "negative", "scipy.special.ive(1.0, x)", x=-P(3))
    X("scipy.special.yn", "int", "scipy.special.yn(2, x)", x=P(3))
    X("scipy.special.polygamma", "n1", "scipy.special.polygamma(1, x)", x=P(3))
    X("scipy.special.polygamma", "n0-scalar", "scipy.special.polygamma(0, x)", x=P())
    X("scipy.special.multigammaln", "d3", "scipy.special.multigammaln(x, 3)", x=2.0 + P())
    for fname in ("beta", "betaln"):
        X(f"scipy.special.{fname}", "scalars", f"scipy.special.{fname}(x, y)", x=P(), y=P())
        X(f"scipy.special.{fname}", "bcast", f"scipy.special.{fname}(x, y)", x=P(2, 3),
          y=P(3))
    X("scipy.special.binom", "real", "scipy.special.binom(x, y)", x=4.0 + P(3), y=P(3))
    X("scipy.special.poch", "real", "scipy.special.poch(x, y)", x=P(3), y=P(3))
    for fname in ("xlogy", "xlog1py", "rel_entr", "kl_div"):
        X(f"scipy.special.{fname}", "1d", f"scipy.special.{fname}(x, y)", x=P(3), y=P(3))
    X("scipy.special.gammainc", "in-x", "scipy.special.gammainc(2.5, x)", x=P(3))
    X("scipy.special.gammaincc", "in-x", "scipy.special.gammaincc(2.5, x)", x=P(3))
    X("scipy.special.betainc", "in-x", "scipy.special.betainc(2.0, 3.0, x)",
      x=U(3, lo=0.2, hi=0.8))
    X("scipy.special.zeta", "hurwitz-q", "scipy.special.zeta(3.0, x)", x=P(3))
    Z("scipy.special.gammasgn", "1d", "scipy.special.gammasgn(x)", x=U(3, lo=-0.8, hi=-0.2))
    X("scipy.special.logsumexp", "1d", "scipy.special.logsumexp(x)", x=N(4))
    X("scipy.special.logsumexp", "2d-axis", "scipy.special.logsumexp(x, axis=1)", x=N(2, 3))
    X("scipy.special.logsumexp", "keepdims", "scipy.special.logsumexp(x, 0, keepdims=True)",
      x=N(2, 3))
    X("scipy.special.logsumexp", "b", "scipy.special.logsumexp(x, axis=0, b=y)", x=N(2, 3),
      y=P(2, 3))
    X("scipy.special.logsumexp", "return-sign",
      "scipy.special.logsumexp(x, None, y, return_sign=True)", x=N(3), y=P(3))
    X("scipy.special.logsumexp", "b-keyword", "scipy.special.logsumexp(x, b=y)", x=N(3),
      y=P(3))
    X("scipy.special.softmax", "1d", "scipy.special.softmax(x)", x=N(4))
    X("scipy.special.softmax", "2d-axis", "scipy.special.softmax(x, axis=1)", x=N(2, 3))
    X("scipy.special.log_softmax", "1d", "scipy.special.log_softmax(x)", x=N(4))
    X("scipy.special.log_softmax", "2d-axis", "scipy.special.log_softmax(x, axis=0)",
      x=N(2, 3))

# ======================================================================================
# scipy.linalg (one triangle read: every triangle entry is an independent input)
# ======================================================================================
if scipy is not None:
    L = "scipy.linalg"
    X(f"{L}.solve", "2d-1d", "scipy.linalg.solve(x, y)", x=WELL(3), y=N(3))
    X(f"{L}.solve", "2d-2d", "scipy.linalg.solve(x, y)", x=WELL(3), y=N(3, 2))
    X(f"{L}.solve", "batched", "scipy.linalg.solve(x, y)", x=WELL(3, (2,)), y=N(2, 3, 2))
    X(f"{L}.solve", "transposed", "scipy.linalg.solve(x, y, transposed=True)", x=WELL(3),
      y=N(3, 2))
    X(f"{L}.solve", "pos-lower", "scipy.linalg.solve(x, y, lower=True, assume_a='pos')",
      x=SPD(3), y=N(3))
    X(f"{L}.solve", "sym-upper", "scipy.linalg.solve(x, y, assume_a='sym')", x=SPD(3),
      y=N(3))
    X(f"{L}.solve", "diagonal", "scipy.linalg.solve(x, y, assume_a='diagonal')", x=WELL(3),
      y=N(3))
    X(f"{L}.solve", "tridiagonal", "scipy.linalg.solve(x, y, assume_a='tridiagonal')",
      x=WELL(4), y=N(4))
    X(f"{L}.solve", "lower-triangular",
      "scipy.linalg.solve(x, y, assume_a='lower triangular')", x=WELL(3), y=N(3))
    X(f"{L}.inv", "2d", "scipy.linalg.inv(x)", x=WELL(3))
    X(f"{L}.inv", "pos", "scipy.linalg.inv(x, assume_a='pos')", x=SPD(3))
    X(f"{L}.inv", "batched", "scipy.linalg.inv(x)", x=WELL(3, (2,)))
    X(f"{L}.det", "2d", "scipy.linalg.det(x)", x=WELL(3))
    X(f"{L}.cholesky", "upper", "scipy.linalg.cholesky(x)", x=SPD(3))
    X(f"{L}.cholesky", "lower", "scipy.linalg.cholesky(x, lower=True)", x=SPD(3))
    X(f"{L}.solve_triangular", "upper", "scipy.linalg.solve_triangular(x, y)", x=WELL(3),
      y=N(3))
    X(f"{L}.solve_triangular", "lower-trans",
      "scipy.linalg.solve_triangular(x, y, trans='T', lower=True)", x=WELL(3), y=N(3, 2))
    X(f"{L}.solve_triangular", "unit-diagonal",
      "scipy.linalg.solve_triangular(x, y, 1, True, True)", x=WELL(3), y=N(3))
    X(f"{L}.solve_banded", "1-1", "scipy.linalg.solve_banded((1, 1), x, y)",
      x=np.array([[0.0, 0.3, -0.2, 0.4], [2.1, 1.8, 2.4, 1.9], [0.2, -0.3, 0.5, 0.0]]),
      y=N(4))
    X(f"{L}.solve_banded", "0-2-matrix", "scipy.linalg.solve_banded((0, 2), x, y)",
      x=np.array([[0.0, 0.0, 0.3, -0.2], [0.0, 0.2, -0.3, 0.5], [2.1, 1.8, 2.4, 1.9]]),
      y=N(4, 2))
    X(f"{L}.solve_sylvester", "3x3", "scipy.linalg.solve_sylvester(x, y, z)", x=WELL(3),
      y=WELL(3), z=N(3, 3))
    X(f"{L}.solve_sylvester", "3x2", "scipy.linalg.solve_sylvester(x, y, z)", x=WELL(3),
      y=WELL(2), z=N(3, 2))
    X(f"{L}.sqrtm", "spd", "scipy.linalg.sqrtm(x)", x=SPD(3))
    # (real eigenvalues: SciPy 1.15 returns a complex root where they are not)
    X(f"{L}.sqrtm", "nonsymmetric", "scipy.linalg.sqrtm(x)", x=np.triu(WELL(3)))
    X(f"{L}.expm", "2d", "scipy.linalg.expm(x)", x=0.5 * N(3, 3))
    X(f"{L}.expm", "batched", "scipy.linalg.expm(x)", x=0.5 * N(2, 3, 3))
    X(f"{L}.cho_factor", "upper", "scipy.linalg.cho_factor(x)", x=SPD(3), wrap=(
        "np.sin(np.triu({}))", "0.0 * {}"))
    X(f"{L}.cho_factor", "lower-whole", "scipy.linalg.cho_factor(x, lower=True)", x=SPD(3),
      wrap=("np.sin({})", "0.0 * {}"))
    X(f"{L}.cho_solve", "lower", "scipy.linalg.cho_solve((x, True), y)",
      x=np.linalg.cholesky(SPD(3)), y=N(3))
    X(f"{L}.cho_solve", "upper-2d", "scipy.linalg.cho_solve((x, False), y)",
      x=np.linalg.cholesky(SPD(3)).T + np.tril(N(3, 3), -1), y=N(3, 2))
    X(f"{L}.cho_solve", "of-cho_factor", "scipy.linalg.cho_solve(scipy.linalg.cho_factor("
      "x), y)", x=SPD(3), y=N(3))
    X(f"{L}.lu_solve", "of-lu_factor", "scipy.linalg.lu_solve(scipy.linalg.lu_factor(x), y)",
      x=N(3, 3), y=N(3))
    X(f"{L}.lu_solve", "trans", "scipy.linalg.lu_solve((x, np.array([1, 2, 2])), y, 1)",
      x=WELL(3), y=N(3, 2))
    X(f"{L}.lu_solve", "factors", "scipy.linalg.lu_solve((x, np.array([2, 2, 2])), y)",
      x=WELL(3), y=N(3))
    X(f"{L}.lu_factor", "3x3", "scipy.linalg.lu_factor(x)", x=N(3, 3),
      wrap=("np.sin({})", "0.0 * {}"))
    X(f"{L}.lu", "3x3", "scipy.linalg.lu(x)", x=N(3, 3),
      wrap=("0.0 * {}", "np.sin({})", "np.sin({})"))
    X(f"{L}.lu", "permute-l", "scipy.linalg.lu(x, permute_l=True)", x=N(3, 3))
    X(f"{L}.lu", "p-indices", "scipy.linalg.lu(x, p_indices=True)", x=N(3, 3),
      wrap=("0.0 * {}", "np.sin({})", "np.sin({})"))

# ======================================================================================
# scipy.signal
# ======================================================================================
if scipy is not None:
    for fname in ("convolve", "correlate"):
        for mode in ("full", "same", "valid"):
            X(f"scipy.signal.{fname}", f"1d-{mode}",
              f"scipy.signal.{fname}(x, y, '{mode}')", x=N(5), y=N(3))
            X(f"scipy.signal.{fname}", f"2d-{mode}",
              f"scipy.signal.{fname}(x, y, mode='{mode}')", x=N(4, 3), y=N(2, 3))
        X(f"scipy.signal.{fname}", "valid-swapped", f"scipy.signal.{fname}(x, y, 'valid')",
          x=N(2, 2), y=N(3, 4))
        X(f"scipy.signal.{fname}", "same-small-first",
          f"scipy.signal.{fname}(x, y, 'same', method='fft')", x=N(3), y=N(6))
        X(f"scipy.signal.{fname}", "3d-direct",
          f"scipy.signal.{fname}(x, y, method='direct')", x=N(2, 3, 2), y=N(2, 2, 2))
        for mode in ("full", "same", "valid"):
            X(f"scipy.signal.{fname}2d", mode, f"scipy.signal.{fname}2d(x, y, '{mode}')",
              x=N(4, 5), y=N(2, 3))
        X(f"scipy.signal.{fname}2d", "same-small-first",
          f"scipy.signal.{fname}2d(x, y, mode='same')", x=N(2, 3), y=N(3, 4))

# ======================================================================================
# keyword and edge variants (orders, where=, ends, zeros in products, zero bases)
# ======================================================================================
X("**", "zero-base", "x ** 2", x=0.0)
X("**", "negative-base", "x ** 3", x=-P())
X("%", "negative", "x % y", x=-U(lo=5.2, hi=5.8), y=U(lo=2.0, hi=2.5))
X("@", "1d-2d", "x @ y", x=N(3), y=N(3, 2))
X("numpy.power", "negative-base", "np.power(x, 3.0)", x=-P(3))
X("numpy.float_power", "negative-base", "np.float_power(x, 2.0)", x=-P(3))
X("numpy.dot", "scalars", "np.dot(x, y)", x=N(), y=N())
X("numpy.prod", "1d-one-zero", "np.prod(x)", x=np.array([0.0, 1.3, -0.7, 2.0]))
X("numpy.prod", "2d-zeros-axis", "np.prod(x, axis=1)",
  x=np.array([[0.0, 1.3, 0.0], [0.5, 0.0, 1.2]]))
X("numpy.cumprod", "1d-one-zero", "np.cumprod(x)", x=np.array([1.3, 0.0, -0.7, 2.0]))
X("numpy.sum", "where", "np.sum(x, where=np.array([True, False, True]))", x=N(2, 3))
X("numpy.mean", "where", "np.mean(x, axis=1, where=np.array([[True, False, True], "
  "[True, True, False]]))", x=N(2, 3))
X("numpy.cumsum", "2d-flat", "np.cumsum(x)", x=N(2, 3))
X("numpy.median", "2d-even", "np.median(x)", x=N(2, 3))
X("numpy.ravel", "order-F", "np.ravel(x, 'F')", x=N(2, 3))
X("numpy.ndarray.flatten", "order-F", "x.flatten('F')", x=N(2, 3))
X("numpy.reshape", "3d-order-F", "np.reshape(x, (3, 2, 1), order='F')", x=N(2, 3))
X("numpy.transpose", "2d-default", "np.transpose(x)", x=N(2, 3))
X("numpy.squeeze", "axis", "np.squeeze(x, 2)", x=N(1, 3, 1))
X("numpy.expand_dims", "tuple", "np.expand_dims(x, (0, 2))", x=N(3))
X("numpy.concatenate", "axis-None", "np.concatenate([x, y], axis=None)", x=N(2, 3), y=N(2))
X("numpy.repeat", "flat", "np.repeat(x, 2)", x=N(2, 3))
X("numpy.roll", "2d-flat", "np.roll(x, 1)", x=N(2, 3))
for mode in ("edge", "wrap", "symmetric"):
    X("numpy.pad", mode, f"np.pad(x, ((2, 1), (1, 2)), '{mode}')", x=N(2, 3))
X("numpy.meshgrid", "ij", "np.meshgrid(x, y, indexing='ij')", x=N(3), y=N(2))
X("numpy.meshgrid", "sparse", "np.meshgrid(x, y, sparse=True)", x=N(3), y=N(2))
X("numpy.take_along_axis", "axis0", "np.take_along_axis(x, np.array([[1, 0, 1]]), axis=0)",
  x=N(2, 3))
X("numpy.tensordot", "outer", "np.tensordot(x, y, axes=0)", x=N(2), y=N(3))
X("numpy.einsum", "total", "np.einsum('ij->', x)", x=N(2, 3))
X("numpy.einsum", "implicit", "np.einsum('ij,jk', x, y)", x=N(2, 3), y=N(3, 2))
X("numpy.einsum", "three", "np.einsum('i,ij,j->', x, y, z)", x=N(2), y=N(2, 3), z=N(3))
X("numpy.linalg.matrix_power", "2d-0", "np.linalg.matrix_power(x, 0)", x=N(3, 3))
X("numpy.linalg.norm", "1d-p3", "np.linalg.norm(x, 3)", x=N(4))
X("numpy.linalg.norm", "1d-neg-inf", "np.linalg.norm(x, -np.inf)", x=N(4))
X("numpy.linalg.norm", "2d-keepdims", "np.linalg.norm(x, axis=0, keepdims=True)", x=N(2, 3))
X("numpy.linalg.norm", "2d-ord1", "np.linalg.norm(x, 1)", x=N(2, 3))
X("numpy.linalg.eigh", "upper", f"np.linalg.eigh({SYM}, UPLO='U')", x=SPD(3),
  wrap=("np.sin({})", "np.sin({0} * {0})"))
X("numpy.interp", "left-right", "np.interp(x, np.array([0.0, 1.0, 2.0]), y, -1.0, 2.0)",
  x=np.array([-0.5, 0.4, 1.7, 2.5]), y=N(3))
X("numpy.trapezoid", "axis0", "np.trapezoid(y, x, axis=0)", y=N(4, 2),
  x=np.array([0.0, 0.4, 1.1, 1.5]))
X("numpy.diff", "prepend-append", "np.diff(x, prepend=0.5, append=y)", x=N(4), y=N(2))
X("numpy.ediff1d", "ends", "np.ediff1d(x, to_begin=[1.0, 2.0], to_end=3.0)", x=N(4))
X("numpy.clip", "keyword", "np.clip(x, min=-0.2)", x=np.array([-0.9, -0.1, 0.3, 0.9]))
X("numpy.clip", "upper-only", "np.clip(x, None, 0.5)", x=np.array([-0.9, -0.1, 0.3, 0.9]))
X("numpy.sort", "flat", "np.sort(x, None)", x=N(2, 3))
X("numpy.partition", "2d-axis", "np.partition(x, 1, axis=1)", x=N(2, 4))
X("numpy.average", "1d-weights-axis", "np.average(x, 0, y)", x=N(3, 2), y=P(3))
X("numpy.linspace", "no-endpoint", "np.linspace(x, y, 4, False)", x=N(), y=N() + 3.0)
X("numpy.kron", "1d", "np.kron(x, y)", x=N(2), y=N(3))
X("numpy.cross", "axis", "np.cross(x, y, axis=0)", x=N(3, 2), y=N(3, 2))
X("numpy.outer", "2d-flattened", "np.outer(x, y)", x=N(2, 2), y=N(2))
X("numpy.var", "2d-keepdims", "np.var(x, axis=1, keepdims=True)", x=N(2, 3))
X("numpy.std", "2d-flat", "np.std(x)", x=N(2, 3))
X("numpy.max", "keepdims", "np.max(x, axis=0, keepdims=True)", x=N(2, 3))
X("numpy.where", "scalars", "np.where(True, x, y)", x=N(), y=N())

# ======================================================================================
# scipy.stats: distribution methods (loc and scale positional, by keyword and left out)
# ======================================================================================
_UNIVARIATE = {                         # name: (x, shape parameters, constant shapes)
    "norm": (N, {}, ""),
    "t": (N, {"df": lambda *s: U(*s, lo=2.5, hi=5.0)}, "3.5, "),
    "gamma": (P, {"a": lambda *s: U(*s, lo=1.3, hi=3.0)}, "2.5, "),
    "beta": (lambda *s: U(*s, lo=0.2, hi=0.8), {"a": lambda *s: U(*s, lo=1.3, hi=3.0),
                                              "b": lambda *s: U(*s, lo=1.3, hi=3.0)},
             "2.0, 3.0, "),
    "chi2": (P, {"df": lambda *s: U(*s, lo=2.5, hi=5.0)}, "3.0, "),
    "expon": (P, {}, ""),
    "logistic": (N, {}, ""),
    "cauchy": (N, {}, ""),
    "laplace": (lambda *s: U(*s, lo=0.3, hi=2.0) * (-1.0) ** np.arange(
        int(np.prod(s))).reshape(s), {}, ""),        # away from the kink at loc = 0
}
for _dist, (_x, _shapes, _fixed) in _UNIVARIATE.items():
    for _method in ("logpdf", "pdf"):
        _args = ", ".join(_shapes)
        _loc = "0.0" if _dist in ("gamma", "beta", "chi2", "expon", "laplace") else "m"
        X(f"scipy.stats.{_dist}.{_method}", "1d",
          f"scipy.stats.{_dist}.{_method}(x, {_args + ', ' if _args else ''}{_loc}, sig)",
          x=_x(3), sig=U(3, lo=0.9, hi=1.1), **{k: f(3) for k, f in _shapes.items()},
          **({"m": N(3)} if _loc == "m" else {}))
        X(f"scipy.stats.{_dist}.{_method}", "keyword-scale",
          f"scipy.stats.{_dist}.{_method}(x, {_args + ', ' if _args else ''}scale=sig)",
          x=_x(2, 2), sig=U(lo=0.9, hi=1.1), **{k: f() for k, f in _shapes.items()})
    for _method in ("cdf", "logcdf", "sf", "logsf"):
        _loc = "0.0" if _dist in ("gamma", "beta", "chi2", "expon", "laplace") else "m"
        X(f"scipy.stats.{_dist}.{_method}", "1d",
          f"scipy.stats.{_dist}.{_method}(x, {_fixed}{_loc}, sig)", x=_x(3),
          sig=U(3, lo=0.9, hi=1.1), **({"m": N(3)} if _loc == "m" else {}))
        X(f"scipy.stats.{_dist}.{_method}", "x-only",
          f"scipy.stats.{_dist}.{_method}(x, {_fixed.rstrip(', ')})"
          if _fixed else f"scipy.stats.{_dist}.{_method}(x)", x=_x(2, 2))
    for _method in ("ppf", "isf"):
        X(f"scipy.stats.{_dist}.{_method}", "1d",
          f"scipy.stats.{_dist}.{_method}(q, {_fixed}{'0.0' if _fixed else 'm'}, sig)",
          q=U(3, lo=0.2, hi=0.8), sig=U(3, lo=0.9, hi=1.1), **({} if _fixed else {"m": N(3)}))
X("scipy.stats.norm.logpdf", "bcast", "scipy.stats.norm.logpdf(x, m, sig)", x=N(2, 3),
  m=N(3), sig=U(2, 1, lo=0.9, hi=1.5))
for _method in ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"):
    X(f"scipy.stats.poisson.{_method}", "1d",
      f"scipy.stats.poisson.{_method}(np.array([0.0, 2.0, 3.0]), mu)", mu=P(3))
    X(f"scipy.stats.poisson.{_method}", "bcast",
      f"scipy.stats.poisson.{_method}(np.array([[1.0, 4.0], [2.0, 0.0]]), mu)", mu=P(2, 1))
_SYM_C = "(c + np.swapaxes(c, -1, -2)) / 2"
for _method in ("logpdf", "pdf"):
    X(f"scipy.stats.multivariate_normal.{_method}", "1d",
      f"scipy.stats.multivariate_normal.{_method}(x, m, {_SYM_C})",
      x=N(3), m=N(3), c=SPD(3))
    X(f"scipy.stats.multivariate_normal.{_method}", "points",
      f"scipy.stats.multivariate_normal.{_method}(x, mean=m, cov={_SYM_C})",
      x=N(4, 3), m=N(3), c=SPD(3))
    X(f"scipy.stats.multivariate_normal.{_method}", "diagonal",
      f"scipy.stats.multivariate_normal.{_method}(x, m, c)", x=N(3), m=N(3), c=P(3))
X("scipy.stats.multivariate_normal.entropy", "2d",
  f"scipy.stats.multivariate_normal.entropy(m, {_SYM_C})", m=N(3), c=SPD(3),
  wrt=("c",))
for _method in ("logpdf", "pdf"):
    X(f"scipy.stats.dirichlet.{_method}", "x", f"scipy.stats.dirichlet.{_method}("
      "x / np.sum(x), np.array([1.5, 2.0, 2.5]))", x=np.array([0.2, 0.3, 0.5]))
    X(f"scipy.stats.dirichlet.{_method}", "alpha", f"scipy.stats.dirichlet.{_method}("
      "np.array([0.2, 0.3, 0.5]), a)", a=U(3, lo=1.3, hi=3.0))

# ======================================================================================
# complex parts of real values (complex inputs: tests/test_complex_matrix.py)
# ======================================================================================
X("complex", "scalars", "complex(x, y)", x=N(), y=N(),
  wrap=("np.sin(np.real({0})) + np.imag({0}) ** 2",))
X("numpy.angle", "1d", "np.angle(x) + x", x=N(4))
X("numpy.angle", "deg", "np.angle(x, deg=True) + x", x=N(4))
X("numpy.imag", "1d", "np.imag(x) + x", x=N(4))
X("numpy.real_if_close", "1d", "np.real_if_close(x)", x=N(4))

# ======================================================================================
# numpy.fft (complex outputs enter the sum by their real and imaginary parts)
# ======================================================================================
_PARTS = ("np.sin(np.real({0})) + np.imag({0}) ** 2",)
X("numpy.fft.fft", "1d", "np.fft.fft(x)", x=N(5), wrap=_PARTS)
X("numpy.fft.fft", "n-axis-ortho", "np.fft.fft(x, 4, 0, 'ortho')", x=N(3, 2), wrap=_PARTS)
X("numpy.fft.ifft", "n-bigger", "np.fft.ifft(x, n=7)", x=N(5), wrap=_PARTS)
X("numpy.fft.fftn", "s-axes", "np.fft.fftn(x, s=(3, 2), axes=(0, 1))", x=N(2, 3),
  wrap=_PARTS)
X("numpy.fft.ifftn", "3d", "np.fft.ifftn(x)", x=N(2, 3, 2), wrap=_PARTS)
X("numpy.fft.fft2", "3d", "np.fft.fft2(x)", x=N(2, 3, 2), wrap=_PARTS)
X("numpy.fft.ifft2", "2d", "np.fft.ifft2(x, norm='forward')", x=N(3, 3), wrap=_PARTS)
X("numpy.fft.rfft", "odd-n", "np.fft.rfft(x, n=7)", x=N(6), wrap=_PARTS)
X("numpy.fft.rfftn", "2d", "np.fft.rfftn(x)", x=N(3, 4), wrap=_PARTS)
X("numpy.fft.rfft2", "s", "np.fft.rfft2(x, s=(2, 5))", x=N(3, 4), wrap=_PARTS)
X("numpy.fft.irfft", "even-n", "np.fft.irfft(x)", x=N(5))
X("numpy.fft.irfft", "odd-n", "np.fft.irfft(x, n=5, norm='ortho')", x=N(4))
X("numpy.fft.irfftn", "2d", "np.fft.irfftn(x)", x=N(3, 3))
X("numpy.fft.irfft2", "s", "np.fft.irfft2(x, s=(2, 4))", x=N(3, 3))
X("numpy.fft.hfft", "n-ortho", "np.fft.hfft(x, n=6, norm='ortho')", x=N(4))
X("numpy.fft.ihfft", "1d", "np.fft.ihfft(x)", x=N(5), wrap=_PARTS)
X("numpy.fft.fftshift", "axes", "np.fft.fftshift(x, axes=1)", x=N(2, 5))
X("numpy.fft.ifftshift", "all", "np.fft.ifftshift(x)", x=N(3, 4))

# ======================================================================================
# numpy.linalg: svd, qr, lstsq, eig (inputs from their own generator, so that examples
# added elsewhere do not move them)
# ======================================================================================
_la_rng = np.random.default_rng(20261203)


def _LN(*shape):
    return _la_rng.normal(size=shape)


X("numpy.linalg.svd", "wide", "np.linalg.svd(x, full_matrices=False)", x=_LN(2, 3))
X("numpy.linalg.svd", "tall", "np.linalg.svd(x, False)", x=_LN(3, 2))
X("numpy.linalg.svd", "square-full", "np.linalg.svd(x)", x=_LN(3, 3))
X("numpy.linalg.svd", "batched", "np.linalg.svd(x, full_matrices=False)", x=_LN(2, 3, 2))
X("numpy.linalg.svd", "only-s", "np.linalg.svd(x, compute_uv=False)", x=_LN(3, 2))
X("numpy.linalg.svd", "only-s-batched", "np.linalg.svd(x, False, False)", x=_LN(2, 2, 3))
X("numpy.linalg.qr", "tall", "np.linalg.qr(x)", x=_LN(3, 2))
X("numpy.linalg.qr", "wide", "np.linalg.qr(x)", x=_LN(2, 3))
X("numpy.linalg.qr", "batched", "np.linalg.qr(x, mode='reduced')", x=_LN(2, 3, 3))
X("numpy.linalg.qr", "r", "np.linalg.qr(x, mode='r')", x=_LN(3, 2))
X("numpy.linalg.qr", "complete-wide", "np.linalg.qr(x, 'complete')", x=_LN(2, 3))
X("numpy.linalg.lstsq", "tall-1d", "np.linalg.lstsq(x, y)", x=_LN(4, 2), y=_LN(4))
X("numpy.linalg.lstsq", "tall-2d", "np.linalg.lstsq(x, y, rcond=None)", x=_LN(4, 2),
  y=_LN(4, 2))
X("numpy.linalg.lstsq", "wide", "np.linalg.lstsq(x, y)", x=_LN(2, 3), y=_LN(2))
X("numpy.linalg.norm", "2d-ord-2", "np.linalg.norm(x, -2)", x=_LN(3, 2))
X("numpy.linalg.norm", "batched-nuc", "np.linalg.norm(x, 'nuc', (2, 0), True)", x=_LN(3, 2, 2))
X("numpy.linalg.norm", "1d-p1.5", "np.linalg.norm(x, 1.5)", x=_LN(4))
X("numpy.linalg.norm", "2d-p-1-axis", "np.linalg.norm(x, -1, 1)", x=_LN(2, 3))
X("numpy.linalg.norm", "1d-ord0", "np.linalg.norm(x, 0)", x=_LN(4))
X("numpy.linalg.vector_norm", "p3-keepdims", "np.linalg.vector_norm(x, axis=0, keepdims=True, "
  "ord=3)", x=_LN(2, 3))
X("numpy.linalg.matrix_norm", "ord2-batched", "np.linalg.matrix_norm(x, ord=2)", x=_LN(2, 3, 2))
X("numpy.linalg.matrix_norm", "ord-2", "np.linalg.matrix_norm(x, ord=-2)", x=_LN(3, 3))


def _REAL_SPECTRUM(n, batch=()):
    """A non-symmetric matrix with real distinct eigenvalues s diag(d) s^-1 (eig of a real
    matrix is refused where its eigenvalues are complex)."""
    s = np.eye(n) + 0.3 * _la_rng.normal(size=batch + (n, n))
    d = np.arange(1.0, n + 1) + 0.2 * _la_rng.normal(size=batch + (n,))
    return s * d[..., None, :] @ np.linalg.inv(s)


# (NumPy 2.5 returns a complex spectrum for every real matrix: its real part is what a
# function of a real spectrum reads)
X("numpy.linalg.eig", "2d", "np.linalg.eig(x)", x=_REAL_SPECTRUM(3),
  wrap=("np.sin(np.real({}))", "np.sin(np.real({}))"))
X("numpy.linalg.eig", "batched", "np.linalg.eig(x)", x=_REAL_SPECTRUM(3, (2,)),
  wrap=("np.sin(np.real({}))", "np.sin(np.real({0} * {0}))"))
X("numpy.linalg.eigvals", "2d", "np.real(np.linalg.eigvals(x))", x=_REAL_SPECTRUM(3))
X("numpy.linalg.tensorinv", "ind1", "np.linalg.tensorinv(x, ind=1)",
  x=(2.0 * np.eye(4) + 0.3 * _LN(4, 4)).reshape(4, 2, 2))
X("numpy.linalg.tensorsolve", "2d-b", "np.linalg.tensorsolve(x, y)",
  x=(2.0 * np.eye(4) + 0.3 * _LN(4, 4)).reshape(2, 2, 4), y=_LN(2, 2))
X("numpy.linalg.tensorsolve", "axes", "np.linalg.tensorsolve(x, y, axes=(0,))",
  x=(2.0 * np.eye(3) + 0.3 * _LN(3, 3)), y=_LN(3))
X("numpy.linalg.cond", "2d", "np.linalg.cond(x)", x=2.0 * np.eye(3) + 0.4 * _LN(3, 3))
X("numpy.linalg.cond", "batched-fro", "np.linalg.cond(x, 'fro')",
  x=2.0 * np.eye(3) + 0.4 * _LN(2, 3, 3))
X("numpy.linalg.cond", "inf", "np.linalg.cond(x, np.inf)", x=2.0 * np.eye(3) + 0.4 * _LN(3, 3))
X("numpy.linalg.pinv", "hermitian", "np.linalg.pinv(x, hermitian=True)",
  x=np.eye(3) + (lambda b: b @ b.T / 3)(_LN(3, 3)))

X("numpy.real_if_close", "times-x", "np.real_if_close(x) * x", x=_LN(4))

# single outputs of the factorizations that return several, which tests/test_complex_matrix.py
# (which leaves tuple results out) runs on complex inputs too: Hermitian inputs, and
# functions of the vectors that do not depend on their signs (phases, for complex ones)
HERM = "(x + np.conj(np.swapaxes(x, -1, -2))) / 2"      # Hermitian input from any square x
X("numpy.linalg.eigh", "abs-vectors", f"np.abs(np.linalg.eigh({HERM})[1])",
  x=np.eye(3) * np.arange(1.0, 4.0) + 0.3 * _LN(3, 3))
X("numpy.linalg.eigh", "values", f"np.linalg.eigh({HERM})[0]", x=SPD(3))
X("numpy.linalg.cholesky", "hermitian", f"np.linalg.cholesky({HERM})", x=SPD(3))
X("numpy.linalg.svd", "abs-u", "np.abs(np.linalg.svd(x, full_matrices=False)[0])", x=_LN(3, 2))
X("numpy.linalg.svd", "u-s-vh", "np.linalg.svd(x, full_matrices=False)[0] * "
  "np.linalg.svd(x, full_matrices=False)[1][None, :] @ np.linalg.svd(x, full_matrices=False)[2]",
  x=_LN(2, 3))
X("numpy.linalg.eig", "abs-vectors", "np.abs(np.linalg.eig(x)[1])", x=_REAL_SPECTRUM(3))
X("numpy.linalg.slogdet", "logabsdet", "np.linalg.slogdet(x)[1]", x=WELL(3))
X("numpy.linalg.slogdet", "sign", "np.linalg.slogdet(x)[0] * x", x=WELL(3))

# ======================================================================================
# names in supported() no example exercises directly, and why
# ======================================================================================
NOT_EXERCISED = {
    "scipy.integrate.odeint": "needs a user function for func= and tolerances the "
                              "matrix's differences cannot resolve: "
                              "tests/test_scipy_integrate.py checks every mode",
    "scipy.integrate.solve_ivp": "needs a user function for fun= and an object result: "
                                 "tests/test_scipy_integrate.py checks every mode",
    "numpy.empty": "values are uninitialized memory: no value to check (its rule is zero "
                   "and it takes no float input)",
    "numpy.empty_like": "values are uninitialized memory: no value to check (its rule is "
                        "zero)",
}
FORWARD_RULE_PREFIX = "the forward rule of "
# "the forward rule of numpy.X" names the rule for the generated tangent code of numpy.X;
# those are exercised by the reverse-over-forward cells of numpy.X's examples (the matrix
# checks that numpy.X has examples)
