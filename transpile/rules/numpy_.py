"""Derivative rules for NumPy.

Elementwise ufuncs get partial-derivative *templates* (strings in the parameter names; the
compiler multiplies them by the adjoint and sums the product back to each argument's shape
after broadcasting). Everything else (reductions, linear algebra, shape and indexing
functions, creation functions) gets *vjp callables* ``vjp(g, ans, *args, **kwargs)`` that
return a contribution of the argument's own shape, of the argument's floating dtype (a
Python float for a Python scalar, a nested list for a list argument, None for an integer or
boolean array, which never receives a gradient).

Conventions at non-differentiable points and other choices:
  * abs'(0) = fabs'(0) = 0 (np.sign); sign, floor, ceil, trunc, rint, round, fix,
    comparisons, arg-functions, shape queries and integer-valued creation functions carry no
    derivative (``zero=True``). np.arange(start, stop, step) = start + k step: derivative 1
    in start, k in step, 0 in stop (the count is piecewise constant); np.arange(stop) is 0.
  * np.maximum/np.minimum/np.fmax/np.fmin ties: the whole gradient goes to the FIRST argument.
  * Reductions max/min/amax/amin/nanmax/nanmin/ptp and the vector inf-norms: ties inside one
    reduced group SPLIT the gradient evenly among all the elements attaining the extremum.
  * np.prod / np.nanprod handle zeros exactly (products of the *other* elements via prefix
    and suffix cumulative products); np.cumprod too (an O(n^2) path is used only when the
    input contains zeros).
  * np.clip: inside [lo, hi] (boundaries included) the gradient goes to ``a``; where ``a``
    was clipped it goes to the bound (when the bound is an array or a number argument).
  * np.sort / np.partition scatter the gradient back through a permutation; tied values may
    be matched in any order (the result does not depend on it).
  * median: gradient to the middle element (odd count) or half to each of the two middle
    elements (even count).
  * std at a constant group has gradient 0 (instead of nan).
  * numpy.linalg's solvers, factorizations and norms are in rules/linalg.py (matmul,
    tensordot, outer, trace, diagonal, cross, vecdot stay here beside their NumPy twins).
  * Not covered: quantile/percentile, cov, logspace, gradient, unique; pad modes that are
    not copies (linear_ramp, mean...).
Each rule declares its structure where it is written (`_def(..., linear=(0,))`,
``multilinear=``, ``piecewise_linear=True``, ``jvp=`` and ``vjp_tangents=``, see
registry.defvjp); forward mode, reverse mode and the second-order routes are derived from
it (rules/derivative_code.py). Rules with vjp functions only get forward mode by J v from
the vjps and no second-order rule.
Gather-like functions (take, take_along_axis, pad, roll, flip, tile, repeat, broadcast_to,
diag, diagonal, tril, triu, delete, insert, compress, extract, choose, select...) share one
trick: the function is applied to an array of element *indices*, and the adjoint is scattered
back with ``np.bincount``.
"""
import ast
import itertools
import math

import numpy as np

from .registry import defvjp, template
from .forward_runtime import dense, jvp_by_vjps, number as _number
from .. import runtime
from ..errors import TranspileError
from ..namespaces import as_array, is_foreign, known_nonzero, like, same_shape, standard_only
from ..runtime import unbroadcast

ENV = {"np": np, "math": math, "pow_deriv": runtime.pow_deriv}
_ANY = (1, 2, 3, 4)    # templates (registry.Template): for arrays of 1 to 4 dimensions
_MAXARGS = 32          # variadic functions: rules for up to this many positional arguments


# ======================================================================================
# helpers
# ======================================================================================
def _name(fn):
    mod = getattr(fn, "__module__", None) or "numpy"
    qn = getattr(fn, "__qualname__", None) or getattr(fn, "__name__")
    if qn.startswith("ndarray."):
        return "numpy." + qn
    if not mod.startswith("numpy"):
        mod = "numpy"
    if mod.startswith("numpy.") and mod.count(".") > 1:   # numpy._core.xxx, numpy.lib._xxx
        mod = "numpy" if not mod.startswith("numpy.linalg") else "numpy.linalg"
    if mod == "numpy.linalg._linalg":
        mod = "numpy.linalg"
    return f"{mod}.{qn}"


def _def(fn, *derivs, params=None, nargs=None, zero=False, name=None, ans=False,
         masks=False, **structure):
    """Register a NumPy rule. ``ans=True`` declares that its vjp functions read the
    result ``ans`` (the others get None there, and the result is not kept for them);
    ``masks=True`` that it selects; the other keywords (``linear=``, ``multilinear=``,
    ``piecewise_linear=``, ``jvp=``, ``vjp_tangents=``, ``constant_keywords=``...) declare
    its structure, from which every mode is derived (see registry.defvjp)."""
    if params is None:
        params = ", ".join(f"x{i}" for i in range(max(len(derivs), 1)))
    if "complex" not in structure and (zero or "linear" in structure
                                       or "multilinear" in structure):
        # a linear map with real coefficients is complex-linear: its vjp moves the adjoint
        # as for real values; a zero derivative is zero for complex values too
        structure["complex"] = "explicit" if zero else "holomorphic"
    rule = defvjp(fn, *derivs, params=params, nargs=nargs, zero=zero,
                  name=name or _name(fn), env=ENV, needs_ans=ans, masks=masks, **structure)
    if rule.multilinear is not None:
        rule.zero_tangent_ok = False       # NumPy functions do not take 0.0 for an array
    return rule


def _t(tangents, k):
    """Entry k of a jvp's tangents, None where no tangent flows (or the zero 0.0)."""
    return tangents[k] if k < len(tangents) and not _is_zero(tangents[k]) else None


def _plus(*terms):
    """The sum of the terms that are not None (0.0 when none is)."""
    out = 0.0
    for term in terms:
        if term is not None:
            out = out + term
    return out


def _given(t):
    return t is not None and not _is_zero(t)


def _is_zero(g):
    return g is None or (type(g) in (float, int) and g == 0)


def _fit(c, x):
    """Turn a computed adjoint ``c`` into the contribution for argument ``x``."""
    if c is None:
        return None
    if isinstance(x, (list, tuple)):
        c = as_array(c)
        if c.shape[:1] != (len(x),):
            c = np.broadcast_to(c, np.shape(x))
        return [_fit(c[i], xi) for i, xi in enumerate(x)]
    if isinstance(x, (bool, np.bool_)):
        return None
    if np.iscomplexobj(c) and not np.iscomplexobj(x):
        c = np.real(c)              # the adjoint of a real value is real (registry.COMPLEX)
    if isinstance(x, (int, float, complex)) and not isinstance(x, np.generic):
        c = as_array(c)
        total = c.sum() if c.ndim else c[()]
        return _number(total) if not isinstance(x, complex) else complex(total)
    dt = getattr(x, "dtype", None)
    if dt is None:                                   # something else: leave as is
        return c
    if dt.kind in "biu":
        return None
    c = as_array(c)
    shape = np.shape(x)
    if not same_shape(c.shape, shape):
        c = unbroadcast(c, x) if c.ndim >= len(shape) else c
        c = as_array(c)
        if not same_shape(c.shape, shape):
            c = np.broadcast_to(c, shape)
    if dt.kind == "f" and c.dtype != dt:
        c = c.astype(dt)
    if isinstance(x, np.generic):
        return dt.type(c)
    if c.__class__ is not np.ndarray or x.__class__ is np.ndarray:
        return c    # may be a view of g: generated code never updates it in place
    return like(c, x)    # the adjoint of a Dask array is one (namespaces.py)


def _arr(x):
    """The float array a function would have seen for argument ``x``."""
    a = as_array(x)
    if a.dtype.kind not in "fc":
        a = a.astype(float)
    return a


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim for a in axis)) if ndim else ()


def _expand(g, ndim, axis, keepdims):
    """Reinsert the reduced axes into a reduction's adjoint (so it broadcasts)."""
    g = as_array(g)
    if keepdims or ndim == 0:
        return g
    axes = _axes(axis, ndim)
    if g.ndim < ndim - len(axes):         # a scalar seed for a small result: broadcast
        g = g.reshape((1,) * (ndim - len(axes) - g.ndim) + g.shape)
    return np.expand_dims(g, axes)


def _kd(keepdims):
    return bool(keepdims) if keepdims is not np._NoValue else False


def _group_last(x, axes):
    """Move ``axes`` to the end and flatten them into one; returns (y, undo)."""
    nd = x.ndim
    keep = [i for i in range(nd) if i not in axes]
    perm = keep + list(axes)
    xt = np.transpose(x, perm)
    shp = xt.shape
    y = xt.reshape(shp[:len(keep)] + (-1,))
    inv = np.argsort(perm)

    def undo(z):
        return np.transpose(z.reshape(shp), inv)
    return y, undo


def _gather(fn, x, g, *args, **kw):
    """Adjoint of a function that only copies elements of x: scatter g back by index."""
    xa = as_array(x)
    idx = np.arange(1, xa.size + 1).reshape(xa.shape)
    pos = as_array(fn(idx, *args, **kw))
    g = as_array(g)
    if g.dtype.kind == "c" or xa.dtype.kind == "c":      # bincount weights are real
        return _fit(_gather(fn, xa.real, g.real, *args, **kw)
                    + 1j * _gather(fn, xa.real, g.imag, *args, **kw), x)
    g = np.broadcast_to(as_array(g, dtype=float if xa.dtype.kind != "f" else xa.dtype),
                        pos.shape)
    pos = like(pos, g)          # (a Dask g: positions chunked like it, namespaces.py)
    out = np.bincount(pos.ravel(), weights=g.ravel(), minlength=xa.size + 1)[1:]
    return _fit(out.reshape(xa.shape), x)


def _gather_rule(fn, nargs=None, params=None):
    """Rule for fn(x, *rest): first argument gathered (linear), the rest get nothing."""
    def vjp(g, ans, x, *rest, **kw):
        return _gather(fn, x, g, *rest, **kw)
    _def(fn, vjp, *([None] * 8), nargs=nargs, masks=True, linear=(0,))


def _parts(g, n):
    """The n adjoints of a multi-output result (the whole adjoint may be a plain 0.0)."""
    if _is_zero(g):
        return [0.0] * n
    return list(g)


def _zeros_for(g, like):
    return np.zeros(np.shape(like), dtype=np.result_type(like, float)) if _is_zero(g) else g


# ======================================================================================
# elementwise: templates
# ======================================================================================
UNARY = {
    np.sin: "np.cos(x)",
    np.cos: "-np.sin(x)",
    np.tan: "1 + np.tan(x) ** 2",
    np.arcsin: "1 / np.sqrt(1 - x * x)",
    np.arccos: "-1 / np.sqrt(1 - x * x)",
    np.arctan: "1 / (1 + x * x)",
    np.sinh: "np.cosh(x)",
    np.cosh: "np.sinh(x)",
    np.tanh: "1 - np.tanh(x) ** 2",
    np.arcsinh: "1 / np.sqrt(x * x + 1)",
    np.arccosh: "1 / np.sqrt(x * x - 1)",
    np.arctanh: "1 / (1 - x * x)",
    np.exp: "np.exp(x)",
    np.exp2: "np.exp2(x) * math.log(2)",
    np.expm1: "np.exp(x)",
    np.log: "1 / x",
    np.log2: "1 / (x * math.log(2))",
    np.log10: "1 / (x * math.log(10))",
    np.log1p: "1 / (1 + x)",
    np.sqrt: "0.5 / np.sqrt(x)",
    np.cbrt: "1 / (3 * np.cbrt(x) ** 2)",
    np.square: "2 * x",
    np.reciprocal: "-1 / (x * x)",
    np.fabs: "np.sign(x)",
    np.negative: "-1",
    np.positive: "1",
    # sinc'(x) = (cos(pi x) - sinc(x)) / x, by its Taylor series near 0 (the quotient
    # cancels there), which also makes the template's own derivative right at 0
    np.sinc: "np.where(np.abs(x) < 1e-3, x * ((math.pi ** 4 / 30) * x * x - math.pi ** 2 / 3), "
             "(np.cos(math.pi * x) - np.sinc(x)) / np.where(np.abs(x) < 1e-3, 1, x))",
    np.deg2rad: "math.pi / 180",
    np.radians: "math.pi / 180",
    np.rad2deg: "180 / math.pi",
    np.degrees: "180 / math.pi",
}
#: the UNARY functions analytic where they are defined: their derivative templates hold for
#: complex arguments as written (registry.COMPLEX)
HOLOMORPHIC = {np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.sinh, np.cosh,
               np.tanh, np.arcsinh, np.arccosh, np.arctanh, np.exp, np.exp2, np.expm1,
               np.log, np.log2, np.log10, np.log1p, np.sqrt, np.square, np.reciprocal,
               np.negative, np.positive}
for _fn, _d in UNARY.items():
    _def(_fn, _d, params="x", complex="holomorphic" if _fn in HOLOMORPHIC else None)

# --- complex parts: real-valued results take the real part of the adjoint they get (and of
# their tangent); see registry.COMPLEX and RESULTS
ENV.update(abs_partial=runtime.abs_partial, angle_partial=runtime.angle_partial,
           imag_partial=runtime.imag_partial, pow_log=runtime.pow_log)
_def(np.absolute, "abs_partial(x)", params="x", complex="explicit", result="real")
_def(np.real, "1", params="x", complex="explicit", result="real")
_def(np.imag, "imag_partial(x)", params="x", complex="explicit", result="real")
_def(np.angle, "angle_partial(x, deg)", None, params="x, deg=False", complex="explicit",
     result="real")
_def(np.conjugate, lambda g, ans, x: _fit(np.conjugate(g), x), params="x", linear=(0,),
     complex="explicit")


def _real_if_close_vjp(g, ans, a, tol=100):
    """np.real_if_close: the identity where the result stays complex, np.real where it
    drops the (small) imaginary parts (locally constant: piecewise linear)."""
    return _fit(g if np.iscomplexobj(ans) else np.real(g), a)


def _real_if_close_jvp(tangents, a, tol=100):
    t = _t(tangents, 0)
    if t is None:
        return 0.0
    return t if np.iscomplexobj(np.real_if_close(a, tol)) else np.real(t)


_def(np.real_if_close, _real_if_close_vjp, None, params="a, tol", ans=True,
     piecewise_linear=True, jvp=_real_if_close_jvp, complex="explicit")

# ties of maximum/minimum/fmax/fmin: the gradient goes to the FIRST argument
BINARY = {
    np.add: ("1", "1"),
    np.subtract: ("1", "-1"),
    np.multiply: ("y", "x"),
    np.divide: ("1 / y", "-x / (y * y)"),
    np.power: ("pow_deriv(x, y - 1, y)", "pow_log(x, y, 1)"),
    np.float_power: ("y * np.float_power(x, y - 1)",
                     "np.where(x > 0, np.float_power(x, y) * np.log(np.where(x > 0, x, 1)), 0.0)"),
    np.maximum: ("(x >= y)", "(x < y)"),
    np.minimum: ("(x <= y)", "(x > y)"),
    np.fmax: ("((x >= y) | np.isnan(y))", "((x < y) | np.isnan(x) & ~np.isnan(y))"),
    np.fmin: ("((x <= y) | np.isnan(y))", "((x > y) | np.isnan(x) & ~np.isnan(y))"),
    np.hypot: ("x / np.hypot(x, y)", "y / np.hypot(x, y)"),
    np.logaddexp: ("np.exp(x - np.logaddexp(x, y))", "np.exp(y - np.logaddexp(x, y))"),
    np.logaddexp2: ("np.exp2(x - np.logaddexp2(x, y))", "np.exp2(y - np.logaddexp2(x, y))"),
    np.copysign: ("np.sign(x) * np.copysign(1.0, y)", None),
    np.remainder: ("1", "-np.floor_divide(x, y)"),
    np.fmod: ("1", "-np.trunc(x / y)"),
    np.ldexp: ("np.ldexp(np.ones_like(x), y)", None),
}
for _fn, _ds in BINARY.items():
    _def(_fn, *_ds, params="x, y",
         masks=_fn in (np.maximum, np.minimum, np.fmax, np.fmin),
         complex="holomorphic" if _fn in (np.add, np.subtract, np.multiply, np.divide,
                                          np.power) else None)
_def(np.arctan2, "x / (x * x + y * y)", "-y / (x * x + y * y)", params="y, x")

# where(cond, x, y) is elementwise too; one-argument where is nonzero
_def(np.where, None, "(condition != 0)", "(condition == 0)", params="condition, x, y",
     masks=True, linear=(1, 2))
_def(np.where, nargs=1, zero=True)

# --- no derivative ---------------------------------------------------------------------
_ZERO = [
    "sign", "floor", "ceil", "trunc", "rint", "round", "around", "fix", "signbit",
    "isnan", "isinf", "isfinite", "isneginf", "isposinf", "isreal", "iscomplex",
    "isrealobj", "iscomplexobj", "isscalar",
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not",
    "argmax", "argmin", "nanargmax", "nanargmin", "argsort", "argpartition", "argwhere",
    "nonzero", "flatnonzero", "count_nonzero", "searchsorted", "digitize", "lexsort",
    "shape", "ndim", "size", "zeros", "ones", "empty", "zeros_like", "ones_like",
    "empty_like", "eye", "identity", "tri", "indices",
    "tril_indices", "triu_indices", "diag_indices", "tril_indices_from", "triu_indices_from",
    "ravel_multi_index", "unravel_index", "isclose", "allclose", "array_equal",
    "array_equiv", "floor_divide", "heaviside", "any", "all", "isin",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift",
    "gcd", "lcm", "spacing", "may_share_memory", "shares_memory", "broadcast_shapes",
    "result_type", "can_cast",
]
for _n in _ZERO:
    if hasattr(np, _n):      # (sign(z) = z / |z| of a complex z is not constant)
        _def(getattr(np, _n), zero=True, complex=None if _n == "sign" else "explicit")
_def(np.linalg.matrix_rank, zero=True)
# NumPy's scalar types called as casts: to an integer or bool, no derivative (an index,
# a count); np.float64(x), the value itself (linear). The narrower float types are left
# without a rule: their rounding is no derivative the tests can check
_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "intc", "uintc", "intp", "uintp", "bool_")
for _n in _INT_TYPES:
    if hasattr(np, _n):
        _def(getattr(np, _n), zero=True)
_def(np.float64, lambda g, ans, x: _fit(as_array(g), x), params="x", linear=(0,))


def _arange_vjp(i):
    """arange(start, stop, step)[k] = start + k step: d/dstart = 1, d/dstep = k."""
    def vjp(g, ans, start, stop=None, step=1, **kw):
        if _is_zero(g):
            return _fit(0.0, (start, stop, step)[i])
        g = as_array(g, dtype=float)
        if i == 0:
            return _fit(np.sum(g), start)
        return _fit(np.sum(g * np.arange(g.size)), step)
    return vjp


def _arange_jvp(tangents, start, stop=None, step=1, **kw):
    n = np.arange(start, stop, step, **kw).size
    out = 0.0
    if len(tangents) > 0 and not _is_zero(tangents[0]):
        out = out + np.full(n, float(tangents[0]))
    if len(tangents) > 2 and not _is_zero(tangents[2]):
        out = out + float(tangents[2]) * np.arange(n, dtype=float)
    return np.full(n, 0.0) + out


_def(np.arange, zero=True, nargs=1)                   # arange(stop): 0, 1, 2, ...
for _n in (2, 3):
    # start + k step: linear in (start, step) while the count k stays what it is
    _def(np.arange, _arange_vjp(0), None, *([_arange_vjp(2)] if _n == 3 else []),
         params="start, stop, step"[:len("start, stop") if _n == 2 else None], nargs=_n,
         piecewise_linear=True, jvp=_arange_jvp)
_def(np.bincount, None, lambda g, ans, x, weights=None, minlength=0: _fit(
    as_array(g)[as_array(x)], weights), params="x, weights", linear=(1,))


def _matT(x):
    return np.swapaxes(as_array(x), -1, -2)


# --- jvps built from the vjps ---------------------------------------------------------
def _vjps_if_more(fn, vjps, jvp):
    """jvp(da, *args) for the first argument; the tangents of the others by J v from the
    vjps (exact, one vjp per output element)."""
    def wrapped(tangents, *args, **kw):
        if any(_given(t) for t in tangents[1:]):
            return jvp_by_vjps(vjps, fn, args, tangents, **kw)
        if not _given(tangents[0]):
            return 0.0
        return jvp(tangents[0], *args, **kw)
    return wrapped


def _axis_keepdims(nd, axis=None, *rest, keepdims=np._NoValue, **kw):
    return _axes(axis, nd), _kd(keepdims)


def _by_weights(fn, vjps, axes_of=_axis_keepdims):
    """J v of a reduction: each input element reaches one output element, so J v is the
    sum over the reduced axes of (vjp of ones) * v."""
    vjp = vjps[0]

    def jvp(da, a, *args, **kw):
        ans = fn(a, *args, **kw)
        if isinstance(ans, tuple):
            return jvp_by_vjps(vjps, fn, (a,) + args, [da], **kw)
        ones = np.ones(np.shape(ans)) if np.ndim(ans) else 1.0
        w = as_array(vjp(ones, ans, a, *args, **kw))
        axes, keep = axes_of(np.ndim(a), *args, **kw)
        t = np.sum(w * as_array(dense(da, a)), axis=axes, keepdims=keep)
        return t if isinstance(ans, np.ndarray) else _number(t)
    return _vjps_if_more(fn, vjps, jvp)


# ======================================================================================
# reductions
# ======================================================================================
def _where_mask(where, shape):
    if where is np._NoValue or where is None or where is True:
        return None
    return np.broadcast_to(where, shape)


def _fill(g, a):
    """The common case of a full reduction's adjoint: every element of a gets g (None
    when it does not apply)."""
    if type(a) is np.ndarray and a.dtype.kind == "f" and (type(g) is float or np.ndim(g) == 0):
        return np.full(a.shape, g, dtype=a.dtype)
    return None


def sum_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
            initial=np._NoValue, where=np._NoValue):
    if axis is None and where is np._NoValue:
        r = _fill(g, a)
        if r is not None:
            return r
    x = _arr(a)
    r = _spread(_expand(g, x.ndim, axis, _kd(keepdims)), x)
    m = _where_mask(where, x.shape)
    if m is not None:
        r = r * m
    return _fit(r, a)


def _spread(g, x):
    """g broadcast to x's shape; for an array of another library, made in that library
    (a Dask array's chunks, of sizes not known before it is computed, too)."""
    if is_foreign(x) and not is_foreign(g):
        return np.zeros_like(x) + g
    return np.broadcast_to(g, x.shape)


def mean_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
             where=np._NoValue):
    if axis is None and where is np._NoValue and type(a) is np.ndarray and a.size:
        r = _fill(g / a.size if type(g) is float else as_array(g) / a.size, a)
        if r is not None:
            return r
    x = _arr(a)
    m = _where_mask(where, x.shape)
    ax = _axes(axis, x.ndim)
    if m is None and is_foreign(x) and any(math.isnan(n) for n in x.shape):
        m = np.ones_like(x)          # (sizes Dask knows only once computed: counted lazily)
    if m is None:
        n = math.prod(x.shape[i] for i in ax)
    else:
        n = np.sum(m, axis=ax, keepdims=True)
    if m is None:         # (divided before it spreads: a view, never a whole array)
        r = _spread(_expand(g, x.ndim, axis, _kd(keepdims)) / n, x)
    else:
        r = _spread(_expand(g, x.ndim, axis, _kd(keepdims)), x) / n
    if m is not None:
        r = r * m
    return _fit(r, a)


def _prod_others(x, axes):
    """For each element, the product of the other elements of its reduction group."""
    if not axes:
        return np.ones_like(x)
    y, undo = _group_last(x, axes)
    n = y.shape[-1]
    if n == 0:
        return np.zeros_like(x)
    ones = np.ones(y.shape[:-1] + (1,), y.dtype)
    left = np.concatenate([ones, np.cumprod(y[..., :-1], -1)], -1)
    right = np.concatenate([ones, np.cumprod(y[..., :0:-1], -1)], -1)[..., ::-1]
    return undo(left * right)


def prod_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
             initial=np._NoValue, where=np._NoValue):
    x = _arr(a)
    ax = _axes(axis, x.ndim)
    m = _where_mask(where, x.shape)
    xx = x if m is None else np.where(m, x, 1)
    r = _prod_others(xx, ax)
    if initial is not np._NoValue:
        r = r * initial
    r = r * _expand(g, x.ndim, axis, _kd(keepdims))
    if m is not None:
        r = r * m
    return _fit(r, a)


def _extremum_vjp(nan=False):
    # ties: split evenly among all elements equal to the extremum
    def vjp(g, ans, a, axis=None, out=None, keepdims=np._NoValue, initial=np._NoValue,
            where=np._NoValue):
        x = _arr(a)
        ex = _expand(ans, x.ndim, axis, _kd(keepdims))
        mask = (x == ex)
        m = _where_mask(where, x.shape)
        if m is not None:
            mask = mask & m
        cnt = np.sum(mask, axis=_axes(axis, x.ndim), keepdims=True)
        r = mask * (_expand(g, x.ndim, axis, _kd(keepdims)) / np.maximum(cnt, 1))
        return _fit(r, a)
    return vjp


# inlined for a float array, axis None or a literal int with keepdims=True: ties split
# the adjoint evenly (as _extremum_vjp); a group without a match (nan) gets 0
@template(ndim={"a": _ANY}, values={"axis": None}, exact=False)
def _extremum_all(g, ans, a, axis=None, keepdims=False):
    return (a == ans) * (g / (np.count_nonzero(a == ans) or 1))


@template(ndim={"a": _ANY}, ints=("axis",), values={"keepdims": True})
def _extremum_axis_kept(g, ans, a, axis, keepdims):
    return (a == ans) * (g / np.maximum(np.sum(a == ans, axis=axis, keepdims=True), 1))


def _extremum_jvp(fn, vjp):
    """Forward mode of a max/min reduction: the tangent averaged over the elements that
    attain the extremum (the vjp of ones gives those weights)."""
    def jvp(tangents, a, axis=None, out=None, keepdims=np._NoValue, **kw):
        da = tangents[0]
        if _is_zero(da):
            return 0.0
        ans = fn(a, axis=axis, keepdims=keepdims, **kw)
        weights = vjp(np.ones(np.shape(ans)), ans, a, axis, keepdims=keepdims, **kw)
        t = np.sum(as_array(weights) * as_array(da), axis=axis, keepdims=_kd(keepdims))
        return _number(t) if not isinstance(ans, np.ndarray) else t
    return jvp


for _fn, _nan in ((np.max, False), (np.min, False), (np.amax, False), (np.amin, False),
                  (np.nanmax, True), (np.nanmin, True)):
    _vjp = _extremum_vjp(_nan)
    # (complex values: NumPy orders them lexicographically; the selection moves the adjoint
    # with real weights, so it holds as written)
    _def(_fn, _vjp, None, params="a, axis", ans=True, masks=True, piecewise_linear=True,
         jvp=_extremum_jvp(_fn, _vjp), complex="holomorphic",
         template=None if _nan else [(_extremum_all, _extremum_axis_kept)])


def ptp_vjp(g, ans, a, axis=None, out=None, keepdims=np._NoValue):
    kd = _kd(keepdims)
    hi = _extremum_vjp()(g, np.max(a, axis=axis, keepdims=kd), a, axis, keepdims=kd)
    lo = _extremum_vjp()(g, np.min(a, axis=axis, keepdims=kd), a, axis, keepdims=kd)
    return _fit(as_array(hi) - as_array(lo), a)


def _prod_vjp_jvp(vjp):
    """prod's vjp g * (product of the other elements): with no zero in a, its tangent in
    a is vjp * (sum(da / a) over the group - da / a)."""
    def jvp(tangents, g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
            initial=np._NoValue, where=np._NoValue):
        dg, da = _t(tangents, 0), _t(tangents, 2)
        kw = {} if keepdims is np._NoValue else {"keepdims": keepdims}
        terms = [None if dg is None else vjp(dg, ans, a, axis, **kw)]
        if da is not None and not _is_zero(g):
            x = _arr(a)
            if initial is not np._NoValue or where is not np._NoValue or not known_nonzero(x):
                raise TranspileError("second derivatives through numpy.prod are available "
                                     "for nonzero inputs without initial=/where= only")
            ratio = as_array(da) / x
            group = np.sum(ratio, axis=axis, keepdims=True)
            terms.append(as_array(vjp(g, ans, a, axis, **kw)) * (group - ratio))
        return _plus(*terms)
    return jvp


# inlined for a float array, axis absent / None / a literal int, keepdims a literal; the
# adjoint is a new array (np.full), which the adjoint sweep may update in place


@template(ndim={"a": _ANY}, values={"axis": None}, exact=False)
def _sum_all(g, ans, a, axis=None, keepdims=False):
    return np.full(a.shape, g)


@template(ndim={"a": _ANY}, ints=("axis",), values={"keepdims": False})
def _sum_axis(g, ans, a, axis, keepdims=False):
    return np.full(a.shape, np.expand_dims(g, axis))


@template(ndim={"a": _ANY}, ints=("axis",), values={"keepdims": True})
def _sum_axis_kept(g, ans, a, axis, keepdims):
    return np.full(a.shape, g)


@template(ndim={"a": _ANY}, values={"axis": None}, exact=False)
def _mean_all(g, ans, a, axis=None, keepdims=False):
    return np.full(a.shape, g / a.size)


@template(ndim={"a": _ANY}, ints=("axis",), values={"keepdims": False})
def _mean_axis(g, ans, a, axis, keepdims=False):
    return np.full(a.shape, np.expand_dims(g, axis) / a.shape[axis])


@template(ndim={"a": _ANY}, ints=("axis",), values={"keepdims": True})
def _mean_axis_kept(g, ans, a, axis, keepdims):
    return np.full(a.shape, g / a.shape[axis])


_def(np.sum, sum_vjp, None, params="a, axis", linear=(0,), constant_keywords=("initial",),
     template=[(_sum_all, _sum_axis, _sum_axis_kept)])
_def(np.mean, mean_vjp, None, params="a, axis", linear=(0,),
     template=[(_mean_all, _mean_axis, _mean_axis_kept)])
_def(np.prod, prod_vjp, None, params="a, axis", jvp=_by_weights(np.prod, [prod_vjp]),
     complex="holomorphic",
     vjp_tangents=[_prod_vjp_jvp(prod_vjp)])
_def(np.ptp, ptp_vjp, None, params="a, axis", masks=True, piecewise_linear=True,
     jvp=_by_weights(np.ptp, [ptp_vjp]))


def _var_parts(a, axis, ddof, keepdims, nan=False, correction=np._NoValue):
    if correction is not np._NoValue and correction is not None:
        ddof = correction
    x = _arr(a)
    ax = _axes(axis, x.ndim)
    if nan:
        ok = ~np.isnan(x)
        n = np.sum(ok, axis=ax, keepdims=True)
        mu = np.nanmean(x, axis=ax, keepdims=True)
        d = np.where(ok, x - mu, 0)
    else:
        n = math.prod(x.shape[i] for i in ax)
        mu = np.mean(x, axis=ax, keepdims=True)
        d = x - mu
    return x, d, n - ddof


def _var_vjp(nan):
    def vjp(g, ans, a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue,
            where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
        x, d, den = _var_parts(a, axis, ddof, keepdims, nan, correction)
        r = 2 * np.conj(d) / den * _expand(np.real(g), x.ndim, axis, _kd(keepdims))
        return _fit(r, a)
    return vjp


def _std_vjp(nan):
    def vjp(g, ans, a, axis=None, dtype=None, out=None, ddof=0, keepdims=np._NoValue,
            where=np._NoValue, mean=np._NoValue, correction=np._NoValue):
        x, d, den = _var_parts(a, axis, ddof, keepdims, nan, correction)
        s = _expand(ans, x.ndim, axis, _kd(keepdims))
        safe = np.where(s == 0, 1, s)
        r = np.where(s == 0, 0, np.conj(d) / (den * safe)) * _expand(
            np.real(g), x.ndim, axis, _kd(keepdims))
        return _fit(r, a)
    return vjp


def _like_nans(da, a):
    """The tangent da where a holds numbers, nan where a does: the nan-skipping vjps,
    given it in a's place, then skip the same elements as for a (their bilinear form)."""
    if da is None:
        return None
    return np.where(np.isnan(_arr(a)), np.nan, da)


def _var_vjp_jvp(vjp, nan=False):
    """var's vjp 2 (a - mean a) / den * g is bilinear in (g, a) (nanvar: with a's nans)."""
    def jvp(tangents, g, ans, a, *args, **kw):
        dg, da = _t(tangents, 0), _t(tangents, 2)
        if nan:
            da = _like_nans(da, a)
        return _plus(None if dg is None else vjp(dg, ans, a, *args, **kw),
                     None if da is None else vjp(g, ans, da, *args, **kw))
    return jvp


def _real_tangent(jvp):
    """The jvp of a real-valued function of values that may be complex (var, std, norms):
    the real part of the tangent, Re(sum conj(d) dz) for var's weights 2 conj(d) / den."""
    def wrapped(tangents, *args, **kw):
        t = jvp(tangents, *args, **kw)
        return np.real(t) if np.iscomplexobj(t) else t
    return wrapped


def _scaled_bilinear_jvp(vjp, nan=False):
    """A vjp B(g, a) / s with B bilinear and s = ans (std: (a - mean a) g / (den s);
    2-norm: a g / s): d = B(dg, a)/s + B(g, da)/s - B(g ds/s, a)/s (nanstd: with a's
    nans)."""
    def jvp(tangents, g, ans, a, *args, **kw):
        dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
        if nan:
            da = _like_nans(da, a)
        terms = [None if dg is None else vjp(dg, ans, a, *args, **kw),
                 None if da is None else vjp(g, ans, da, *args, **kw)]
        if dans is not None and not _is_zero(g):
            s = as_array(ans)
            ratio = np.where(s == 0, 0.0, as_array(dans) / np.where(s == 0, 1.0, s))
            terms.append(-vjp(as_array(g) * ratio, ans, a, *args, **kw))
        return _plus(*terms)
    return jvp


for _fn, _make, _nan, _tangent in ((np.var, _var_vjp, False, _var_vjp_jvp),
                                   (np.nanvar, _var_vjp, True, _var_vjp_jvp),
                                   (np.std, _std_vjp, False, _scaled_bilinear_jvp),
                                   (np.nanstd, _std_vjp, True, _scaled_bilinear_jvp)):
    _vjp = _make(_nan)
    _def(_fn, _vjp, None, params="a, axis", ans=_make is _std_vjp, masks=_nan,
         jvp=_real_tangent(_by_weights(_fn, [_vjp])), vjp_tangents=[_tangent(_vjp, _nan)],
         complex="explicit", result="real")


def nansum_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
               initial=np._NoValue, where=np._NoValue):
    x = _arr(a)
    r = np.where(np.isnan(x), 0, _expand(g, x.ndim, axis, _kd(keepdims)))
    m = _where_mask(where, x.shape)
    return _fit(r if m is None else r * m, a)


def nanmean_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
                where=np._NoValue):
    x = _arr(a)
    ok = ~np.isnan(x)
    m = _where_mask(where, x.shape)
    if m is not None:
        ok = ok & m
    n = np.sum(ok, axis=_axes(axis, x.ndim), keepdims=True)
    r = ok * (_expand(g, x.ndim, axis, _kd(keepdims)) / np.maximum(n, 1))
    return _fit(r, a)


def nanprod_vjp(g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
                initial=np._NoValue, where=np._NoValue):
    x = _arr(a)
    nanm = np.isnan(x)
    r = _prod_others(np.where(nanm, 1, x), _axes(axis, x.ndim))
    r = np.where(nanm, 0, r * _expand(g, x.ndim, axis, _kd(keepdims)))
    return _fit(r, a)


# linear but for the elements they skip (a mask that is locally constant)
_def(np.nansum, nansum_vjp, None, params="a, axis", masks=True, piecewise_linear=True,
     jvp=_by_weights(np.nansum, [nansum_vjp]))
_def(np.nanmean, nanmean_vjp, None, params="a, axis", masks=True, piecewise_linear=True,
     jvp=_by_weights(np.nanmean, [nanmean_vjp]))
def _nan_skipped(tangent_of, vjp):
    """The tangent of a nan-skipping vjp: that of `vjp` at a with its nans replaced by 1
    (and no tangent there), 0 where a is nan."""
    def tangent(tangents, g, ans, a, *args, **kw):
        nans = np.isnan(_arr(a))
        ts = list(tangents)
        if _t(ts, 2) is not None:
            ts[2] = np.where(nans, 0.0, as_array(ts[2], dtype=float))
        r = tangent_of(vjp)(ts, g, ans, np.where(nans, 1.0, _arr(a)), *args, **kw)
        return r if _is_zero(r) else _fit(np.where(nans, 0.0, r), a)
    return tangent


_def(np.nanprod, nanprod_vjp, None, params="a, axis", masks=True,
     jvp=_by_weights(np.nanprod, [nanprod_vjp]),
     vjp_tangents=[_nan_skipped(_prod_vjp_jvp, prod_vjp)])


def _revcumsum(g, axis):
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


def _cum_setup(a, axis):
    x = _arr(a)
    if axis is None:
        return x.ravel(), 0, x.shape
    return x, int(axis) % max(x.ndim, 1), x.shape


def cumsum_vjp(g, ans, a, axis=None, dtype=None, out=None, include_initial=False):
    x, ax, shape = _cum_setup(a, axis)
    g = as_array(g)
    if include_initial:
        g = np.take(g, np.arange(1, g.shape[ax]), axis=ax)
    return _fit(_revcumsum(g, ax).reshape(shape), a)


def nancumsum_vjp(g, ans, a, axis=None, dtype=None, out=None):
    x, ax, shape = _cum_setup(a, axis)
    r = np.where(np.isnan(x), 0, _revcumsum(as_array(g), ax))
    return _fit(r.reshape(shape), a)


def _cumprod_grad(x, g, ax):
    y = np.cumprod(x, ax)
    if known_nonzero(x):
        return _revcumsum(g * y, ax) / x
    xm = np.moveaxis(x, ax, -1)
    gm = np.moveaxis(g, ax, -1)
    out = np.empty_like(xm)
    for k in range(xm.shape[-1]):
        t = xm.copy()
        t[..., k] = 1
        c = np.cumprod(t, -1)
        out[..., k] = np.sum(gm[..., k:] * c[..., k:], -1)
    return np.moveaxis(out, -1, ax)


def cumprod_vjp(g, ans, a, axis=None, dtype=None, out=None, include_initial=False):
    x, ax, shape = _cum_setup(a, axis)
    g = as_array(g)
    if include_initial:
        g = np.take(g, np.arange(1, g.shape[ax]), axis=ax)
    return _fit(_cumprod_grad(x, g, ax).reshape(shape), a)


def nancumprod_vjp(g, ans, a, axis=None, dtype=None, out=None):
    x, ax, shape = _cum_setup(a, axis)
    nanm = np.isnan(x)
    r = np.where(nanm, 0, _cumprod_grad(np.where(nanm, 1, x), as_array(g), ax))
    return _fit(r.reshape(shape), a)


def _cum_args(args, kw):
    """(a, axis, include_initial) of a cumulative function's arguments."""
    axis = args[1] if len(args) > 1 else kw.get("axis")
    return args[0], axis, bool(kw.get("include_initial", False))


def _cumprod_jvp(fn, vjps):
    """cumprod's tangent y * cumsum(da / a) for a without zeros (else J v from the vjp)."""
    def jvp(tangents, *args, **kw):
        a, axis, initial = _cum_args(args, kw)
        x, ax, shape = _cum_setup(a, axis)
        if initial or not known_nonzero(x) or any(_given(t) for t in tangents[1:]):
            return jvp_by_vjps(vjps, fn, args, tangents, **kw)
        if not _given(tangents[0]):
            return 0.0
        dx = np.broadcast_to(as_array(tangents[0]), np.shape(a)).reshape(x.shape)
        return np.cumprod(x, ax) * np.cumsum(dx / x, ax)
    return jvp


def _cumprod_grad_tangent(x, dx, G, ax):
    """The tangent along dx of cumprod's vjp (G of the result's shape, no initial entry),
    zeros allowed: entry k of the vjp is the sum over j >= k of G_j c_j with c the
    cumulative product of x with x_k replaced by 1; c and its tangent dc (dx_k replaced by
    0) are carried along the axis together, c_j = c_(j-1) t_j, dc_j = dc_(j-1) t_j +
    c_(j-1) dt_j."""
    xm, dxm, gm = (np.moveaxis(z, ax, -1) for z in (x, dx, G))
    n = xm.shape[-1]
    out = np.zeros(np.broadcast_shapes(xm.shape, dxm.shape, gm.shape),
                   dtype=np.result_type(xm, dxm, gm, float))
    for k in range(n):
        c, dc = np.ones(xm.shape[:-1]), np.zeros(xm.shape[:-1])
        total = 0.0
        for j in range(n):
            t, dt = (1.0, 0.0) if j == k else (xm[..., j], dxm[..., j])
            c, dc = c * t, dc * t + c * dt
            if j >= k:
                total = total + gm[..., j] * dc
        out[..., k] = total
    return np.moveaxis(out, -1, ax)


def _cumprod_vjp_jvp(tangents, g, ans, *args, **kw):
    """The tangent of cumprod's vjp revcumsum(g y) / a (y = cumprod(a)) along g and a:
    revcumsum(dg y + g dy) / a - revcumsum(g y) da / a^2 with dy = y cumsum(da / a) where a
    has no zero, else by the cumulative products that leave each element out."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    a, axis, initial = _cum_args(args, kw)
    terms = [None if dg is None else cumprod_vjp(dg, ans, *args, **kw)]
    if da is not None and not _is_zero(g):
        x, ax, shape = _cum_setup(a, axis)
        dx = np.broadcast_to(as_array(da), shape).reshape(x.shape)
        y = np.cumprod(x, ax)
        G = as_array(g)
        if initial:
            G = np.take(G, np.arange(1, G.shape[ax]), axis=ax)
        G = G.reshape(y.shape)
        if known_nonzero(x):
            dy = y * np.cumsum(dx / x, ax)
            r = _revcumsum(G * dy, ax) / x - _revcumsum(G * y, ax) * dx / (x * x)
        else:
            r = _cumprod_grad_tangent(x, dx, G, ax)
        terms.append(_fit(r.reshape(shape), a))
    return _plus(*terms)


_def(np.cumsum, cumsum_vjp, None, params="a, axis", linear=(0,))
_def(np.cumprod, cumprod_vjp, None, params="a, axis",
     jvp=_cumprod_jvp(np.cumprod, [cumprod_vjp, None]), vjp_tangents=[_cumprod_vjp_jvp],
     complex="holomorphic")
_def(np.nancumsum, nancumsum_vjp, None, params="a, axis", masks=True, piecewise_linear=True)
_def(np.nancumprod, nancumprod_vjp, None, params="a, axis", masks=True,
     vjp_tangents=[_nan_skipped(lambda vjp: _cumprod_vjp_jvp, cumprod_vjp)])
if hasattr(np, "cumulative_sum"):
    _def(np.cumulative_sum, cumsum_vjp, params="x", linear=(0,))
    _def(np.cumulative_prod, cumprod_vjp, params="x",
         jvp=_cumprod_jvp(np.cumulative_prod, [cumprod_vjp]),
         vjp_tangents=[_cumprod_vjp_jvp], complex="holomorphic")


def average_vjp_a(g, ans, a, axis=None, weights=None, returned=False, keepdims=np._NoValue):
    x = _arr(a)
    if returned:
        g = _parts(g, 2)[0]
    if _is_zero(g):
        return _fit(np.zeros_like(x), a)
    if weights is None:
        return mean_vjp(g, None, a, axis, keepdims=keepdims)
    w = _weights_full(x, weights, axis)
    ax = _axes(axis, x.ndim)
    r = w / np.sum(w, axis=ax, keepdims=True) * _expand(g, x.ndim, axis, _kd(keepdims))
    return _fit(r, a)


def _weights_full(x, weights, axis):
    w = as_array(weights, dtype=float)
    if w.shape != x.shape:                       # 1-D weights along one axis
        shape = [1] * x.ndim
        shape[int(axis) % x.ndim] = -1
        w = w.reshape(shape)
    return np.broadcast_to(w, x.shape)


def average_vjp_w(g, ans, a, axis=None, weights=None, returned=False,
                  keepdims=np._NoValue):
    x = _arr(a)
    gs = 0.0
    if returned:
        g, gs = _parts(g, 2)
    ax = _axes(axis, x.ndim)
    kd = _kd(keepdims)
    w = _weights_full(x, weights, axis)
    sw = np.sum(w, axis=ax, keepdims=True)
    r = np.zeros_like(x)
    if not _is_zero(g):
        avg = np.sum(w * x, axis=ax, keepdims=True) / sw
        r = r + (x - avg) / sw * _expand(g, x.ndim, axis, kd)
    if not _is_zero(gs):
        r = r + _expand(gs, x.ndim, axis, kd)
    return _fit(_reduce_to_weights(r, weights, axis), weights)


def _reduce_to_weights(r, weights, axis):
    wshape = np.shape(weights)
    if wshape == r.shape:
        return r
    ax = int(axis) % r.ndim
    return np.sum(r, axis=tuple(i for i in range(r.ndim) if i != ax)).reshape(wshape)


def _average_parts(a, axis, weights, keepdims, g):
    x = _arr(a)
    ax = _axes(axis, x.ndim)
    w = _weights_full(x, weights, axis)
    return x, ax, w, np.sum(w, axis=ax, keepdims=True), _expand(g, x.ndim, axis,
                                                                  _kd(keepdims))


def _average_vjp_a_jvp(tangents, g, ans, a, axis=None, weights=None, returned=False,
                       keepdims=np._NoValue):
    """The tangent of w / sum(w) g along g and the weights (it does not depend on a)."""
    dg, dw = _t(tangents, 0), _t(tangents, 4)
    terms = [None if dg is None else average_vjp_a(dg, ans, a, axis, weights, returned,
                                                   keepdims)]
    g = _parts(g, 2)[0] if returned else g
    if dw is not None and weights is not None and not _is_zero(g):
        x, ax, w, sw, G = _average_parts(a, axis, weights, keepdims, g)
        dW = _weights_full(x, dw, axis)
        dsw = np.sum(dW, axis=ax, keepdims=True)
        terms.append(_fit((dW / sw - w * dsw / (sw * sw)) * G, a))
    return _plus(*terms)


def _average_vjp_w_jvp(tangents, g, ans, a, axis=None, weights=None, returned=False,
                       keepdims=np._NoValue):
    """The tangent of (a - avg) / sum(w) g along g, a and the weights."""
    dg, da, dw = _t(tangents, 0), _t(tangents, 2), _t(tangents, 4)
    terms = [None if dg is None else average_vjp_w(dg, ans, a, axis, weights, returned,
                                                   keepdims)]
    g = _parts(g, 2)[0] if returned else g
    if not _is_zero(g) and (da is not None or dw is not None):
        x, ax, w, sw, G = _average_parts(a, axis, weights, keepdims, g)
        avg = np.sum(w * x, axis=ax, keepdims=True) / sw
        d = 0.0
        if da is not None:
            dX = np.broadcast_to(as_array(da, dtype=float), x.shape)
            d = d + (dX - np.sum(w * dX, axis=ax, keepdims=True) / sw) / sw * G
        if dw is not None:
            dW = _weights_full(x, dw, axis)
            dsw = np.sum(dW, axis=ax, keepdims=True)
            davg = np.sum(dW * (x - avg), axis=ax, keepdims=True) / sw
            d = d - davg / sw * G - (x - avg) * dsw / (sw * sw) * G
        terms.append(_fit(_reduce_to_weights(d, weights, axis), weights))
    return _plus(*terms)


_def(np.average, average_vjp_a, None, average_vjp_w, params="a, axis, weights",
     several=True,
     jvp=_by_weights(np.average, [average_vjp_a, None, average_vjp_w]),
     vjp_tangents=[_average_vjp_a_jvp, None, _average_vjp_w_jvp])


def median_vjp(g, ans, a, axis=None, out=None, overwrite_input=False, keepdims=False):
    x = _arr(a)
    ax = _axes(axis, x.ndim)
    y, undo = _group_last(x, ax)
    n = y.shape[-1]
    order = np.argsort(y, axis=-1, kind="stable")
    gg = as_array(_expand(g, x.ndim, axis, keepdims))
    gy, _ = _group_last(np.broadcast_to(gg, x.shape), ax)
    gy = gy[..., :1]
    r = np.zeros_like(y)
    if n % 2:
        np.put_along_axis(r, order[..., n // 2:n // 2 + 1], gy, -1)
    else:
        np.put_along_axis(r, order[..., n // 2 - 1:n // 2 + 1],
                          np.concatenate([gy / 2, gy / 2], -1), -1)
    return _fit(undo(r), a)


_def(np.median, median_vjp, None, params="a, axis", masks=True, piecewise_linear=True,
     jvp=_by_weights(np.median, [median_vjp, None]))


def trapezoid_vjp_y(g, ans, y, x=None, dx=1.0, axis=-1):
    ya = _arr(y)
    ax = int(axis) % ya.ndim
    n = ya.shape[ax]
    if x is None:
        d = np.full(n - 1, float(dx))
        shape = [1] * ya.ndim
        shape[ax] = n - 1
        d = d.reshape(shape)
    else:
        xa = as_array(x, dtype=float)
        d = np.diff(xa, axis=-1 if xa.ndim == 1 else ax)
        if xa.ndim == 1:
            shape = [1] * ya.ndim
            shape[ax] = n - 1
            d = d.reshape(shape)
    gg = np.expand_dims(as_array(g), ax) * d / 2.0
    pad0 = [(0, 0)] * ya.ndim
    pad1 = [(0, 0)] * ya.ndim
    pad0[ax] = (0, 1)
    pad1[ax] = (1, 0)
    r = np.pad(gg, pad0) + np.pad(gg, pad1)
    return _fit(np.broadcast_to(r, ya.shape) if r.shape != ya.shape else r, y)


def trapezoid_vjp_x(g, ans, y, x=None, dx=1.0, axis=-1):
    ya = _arr(y)
    ax = int(axis) % ya.ndim
    n = ya.shape[ax]
    lo = np.take(ya, np.arange(n - 1), axis=ax)
    hi = np.take(ya, np.arange(1, n), axis=ax)
    s = (lo + hi) / 2 * np.expand_dims(as_array(g), ax)
    p0 = [(0, 0)] * ya.ndim
    p1 = [(0, 0)] * ya.ndim
    p0[ax] = (1, 0)
    p1[ax] = (0, 1)
    r = np.pad(s, p0) - np.pad(s, p1)
    if np.ndim(x) == 1 and ya.ndim > 1:
        r = np.sum(np.moveaxis(r, ax, -1).reshape(-1, n), axis=0)
    return _fit(r, x)


if hasattr(np, "trapezoid"):
    # sum of (x[i+1] - x[i]) (y[i] + y[i+1]) / 2: linear in y and in x
    _def(np.trapezoid, trapezoid_vjp_y, trapezoid_vjp_x, None, None,
         params="y, x, dx, axis", multilinear=[(0,), (1,)], complex=None)


# ======================================================================================
# linear algebra
# ======================================================================================
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(subscripts, operands):
    """Explicit letter subscripts for each operand and the output (ellipses expanded)."""
    s = subscripts.replace(" ", "")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins, out = s, None
    ins = ins.split(",")
    used = set(c for c in s if c.isalpha())
    free = [c for c in _LETTERS if c not in used]
    nell = 0
    for sub, op in zip(ins, operands):
        if "..." in sub:
            nell = max(nell, np.ndim(op) - (len(sub) - 3))
    ell = "".join(free[:nell])
    new_ins = []
    for sub, op in zip(ins, operands):
        if "..." in sub:
            k = np.ndim(op) - (len(sub) - 3)
            sub = sub.replace("...", ell[nell - k:] if k else "")
        new_ins.append(sub)
    if out is None:
        letters = "".join(new_ins)
        out = ell + "".join(sorted(c for c in set(letters)
                                   if letters.count(c) == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return new_ins, out


def _einsum_grad(i, g, subscripts, operands):
    """Adjoint of operand i of einsum(subscripts, *operands)."""
    ins, out = _parse_einsum(subscripts, operands)
    x = as_array(operands[i])
    sub = ins[i]
    uniq = "".join(dict.fromkeys(sub))
    others = [(ins[j], as_array(operands[j])) for j in range(len(ins)) if j != i]
    avail = set(out).union(*[set(s) for s, _ in others]) if others else set(out)
    present = "".join(c for c in uniq if c in avail)
    spec = ",".join([out] + [s for s, _ in others]) + "->" + present
    r = np.einsum(spec, as_array(g), *[o for _, o in others])
    # size-1 dims of x that were broadcast against bigger ones: sum them
    sizes = {c: x.shape[sub.index(c)] for c in uniq}
    red = tuple(k for k, c in enumerate(present) if sizes[c] == 1 and r.shape[k] != 1)
    if red:
        r = np.sum(r, axis=red, keepdims=True)
    # letters absent from everything else: gradient constant along them
    for k, c in enumerate(uniq):
        if c not in avail:
            r = np.expand_dims(r, k)
    dt = np.result_type(x, float)
    if is_foreign(r):             # (another library's arrays: no writes into a view)
        if sub != uniq:
            raise TranspileError("the derivative of einsum with a repeated index in an "
                                 f"operand ('{sub}') is available for NumPy arrays only")
        return _fit(np.broadcast_to(r, x.shape), operands[i])
    z = np.zeros(x.shape, dtype=dt)
    view = np.einsum(f"{sub}->{uniq}", z) if sub != uniq else z
    view[...] = r
    return _fit(z, operands[i])


def _sublists_to_subscripts(args):
    """einsum(op0, sub0, op1, sub1, ..., [out]) -> (subscripts string, operands, position
    of each operand among args)."""
    n = len(args) // 2
    ops = [args[2 * k] for k in range(n)]
    subs = [args[2 * k + 1] for k in range(n)]
    out = args[2 * n] if len(args) % 2 else None
    letters = {}

    def word(sub):
        w = ""
        for s in sub:
            if s is Ellipsis:
                w += "..."
            else:
                w += letters.setdefault(int(s), _LETTERS[len(letters)])
        return w
    spec = ",".join(word(s) for s in subs)
    if out is not None:
        spec += "->" + word(out)
    return spec, ops, [2 * k for k in range(n)]


def _einsum_vjp(i):
    """vjp for positional argument i of einsum: an operand of the subscripts-string form
    (einsum(subscripts, *operands)) or of the sublist form (op, sublist, op, ...)."""
    def vjp(g, ans, *args, **kw):
        if isinstance(args[0], str):
            return None if i == 0 else _einsum_grad(i - 1, g, args[0], args[1:])
        spec, ops, positions = _sublists_to_subscripts(args)
        if i not in positions:
            return None                      # a sublist (integers): no gradient
        return _einsum_grad(positions.index(i), g, spec, ops)
    return vjp


_def(np.einsum, *[_einsum_vjp(i) for i in range(_MAXARGS)],
     multilinear=[(k,) for k in range(_MAXARGS)])


def _dot_subs(na, nb):
    if na == 0 or nb == 0:
        return None
    la = _LETTERS[:na - 1]
    if nb == 1:
        lb_free, lb = "", "z"
    else:
        lb_free = _LETTERS[26:26 + nb - 1]
        lb = lb_free[:-1] + "z" + lb_free[-1]
    return f"{la}z,{lb}->{la}{lb_free}"


def _bilinear(subs_fn, fallback_mul=True):
    def make(i):
        def vjp(g, ans, a, b, *rest, **kw):
            na, nb = np.ndim(a), np.ndim(b)
            subs = subs_fn(na, nb, *rest, **kw)
            if subs is None:                          # a scalar operand: multiply
                other = b if i == 0 else a
                return _fit(as_array(g) * as_array(other), (a, b)[i])
            return _einsum_grad(i, g, subs, (a, b))
        return vjp
    return make(0), make(1)


_DOT_GENERAL = _bilinear(lambda na, nb, *r, **k: _dot_subs(na, nb))


def _dot_vjp(i):
    def vjp(g, ans, a, b):
        if 1 <= np.ndim(a) <= 2 and 1 <= np.ndim(b) <= 2:     # dot == matmul: BLAS
            return (matmul_vjp_a, matmul_vjp_b)[i](g, ans, a, b)
        return _DOT_GENERAL[i](g, ans, a, b)
    vjp.__name__ = f"dot_vjp_{'ab'[i]}"
    return vjp


def _inner_subs(na, nb):
    if na == 0 or nb == 0:
        return None
    la, lb = _LETTERS[:na - 1], _LETTERS[26:26 + nb - 1]
    return f"{la}z,{lb}z->{la}{lb}"


_def(np.inner, *_bilinear(lambda na, nb, *r, **k: _inner_subs(na, nb)), params="a, b",
     multilinear=[(0,), (1,)])


def _tensordot_subs(na, nb, axes=2):
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(na - axes, na))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
        ax_a = [k % na for k in ax_a]
        ax_b = [k % nb for k in ax_b]
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[26:26 + nb])
    for p, q in zip(ax_a, ax_b):
        lb[q] = la[p]
    out = [c for k, c in enumerate(la) if k not in ax_a] + \
          [c for k, c in enumerate(lb) if k not in ax_b]
    return "".join(la) + "," + "".join(lb) + "->" + "".join(out)


_def(np.tensordot, *_bilinear(lambda na, nb, axes=2, **k: _tensordot_subs(na, nb, axes)),
     params="a, b", multilinear=[(0,), (1,)])
_def(np.linalg.tensordot,
     *_bilinear(lambda na, nb, axes=2, **k: _tensordot_subs(na, nb, axes)), params="a, b",
     multilinear=[(0,), (1,)])


def _matmul_parts(a, b, g):
    a2 = as_array(a)
    b2 = as_array(b)
    g2 = as_array(g)
    if a2.ndim == 1 and b2.ndim == 1:
        return a2[None, :], b2[:, None], g2.reshape(1, 1)
    if a2.ndim == 1:
        a2 = a2[None, :]
        g2 = np.expand_dims(g2, -2)
    if b2.ndim == 1:
        b2 = b2[:, None]
        g2 = np.expand_dims(g2, -1)
    return a2, b2, g2


def matmul_vjp_a(g, ans, a, b, **kw):
    if standard_only(a, b):     # `a @ b` of PyTorch, JAX... arrays: the standard's rule
        from .array_api import matmul_vjp_a as standard
        return standard(g, ans, a, b)
    a2, b2, g2 = _matmul_parts(a, b, g)
    r = np.matmul(g2, np.swapaxes(b2, -1, -2))
    r = unbroadcast(r, a2)
    return _fit(np.reshape(r, np.shape(a)), a)


def matmul_vjp_b(g, ans, a, b, **kw):
    if standard_only(a, b):
        from .array_api import matmul_vjp_b as standard
        return standard(g, ans, a, b)
    a2, b2, g2 = _matmul_parts(a, b, g)
    r = np.matmul(np.swapaxes(a2, -1, -2), g2)
    r = unbroadcast(r, b2)
    return _fit(np.reshape(r, np.shape(b)), b)


# inlined where the operands are known 1-D or 2-D float arrays (what matmul_vjp_* do then)
@template(ndim={"a": 2, "b": 2})
def _mm_a_22(g, ans, a, b):
    return g @ b.T


@template(ndim={"a": 2, "b": 2})
def _mm_b_22(g, ans, a, b):
    return a.T @ g


@template(ndim={"a": 1, "b": 2})
def _mm_a_12(g, ans, a, b):
    return b @ g


@template(ndim={"a": 1, "b": 2})
def _mm_b_12(g, ans, a, b):
    return np.outer(a, g)


@template(ndim={"a": 2, "b": 1})
def _mm_a_21(g, ans, a, b):
    return np.outer(g, b)


@template(ndim={"a": 2, "b": 1})
def _mm_b_21(g, ans, a, b):
    return a.T @ g


@template(ndim={"a": 1, "b": 1})
def _mm_a_11(g, ans, a, b):
    return g * b


@template(ndim={"a": 1, "b": 1})
def _mm_b_11(g, ans, a, b):
    return g * a


_MATMUL_TEMPLATES = [(_mm_a_22, _mm_a_12, _mm_a_21, _mm_a_11),
                     (_mm_b_22, _mm_b_12, _mm_b_21, _mm_b_11)]
_def(np.dot, _dot_vjp(0), _dot_vjp(1), params="a, b", multilinear=[(0,), (1,)],
     template=_MATMUL_TEMPLATES)


_def(np.matmul, matmul_vjp_a, matmul_vjp_b, params="a, b", multilinear=[(0,), (1,)],
     template=_MATMUL_TEMPLATES)
_def(np.linalg.matmul, matmul_vjp_a, matmul_vjp_b, params="a, b", multilinear=[(0,), (1,)],
     template=_MATMUL_TEMPLATES)
_def(ast.MatMult, matmul_vjp_a, matmul_vjp_b, params="a, b", name="@",
     multilinear=[(0,), (1,)], template=_MATMUL_TEMPLATES)
if hasattr(np, "matvec"):
    _def(np.matvec, lambda g, ans, A, v, **kw: _fit(
        as_array(g)[..., :, None] * as_array(v)[..., None, :], A),
        lambda g, ans, A, v, **kw: _fit(
        np.matmul(as_array(g)[..., None, :], as_array(A))[..., 0, :], v), params="A, v",
        multilinear=[(0,), (1,)])
    # vecmat(v, A) = conj(v) @ A: v's adjoint conj(A g), A's conj(v) g^T
    _def(np.vecmat, lambda g, ans, v, A, **kw: _fit(
        np.conj(np.matmul(as_array(A), as_array(g)[..., :, None])[..., 0]), v),
        lambda g, ans, v, A, **kw: _fit(
        np.conj(as_array(v))[..., :, None] * as_array(g)[..., None, :], A),
        params="v, A", multilinear=[(0,), (1,)], complex="explicit")


def _vecdot_vjp(i):
    """vecdot(x1, x2) = sum(conj(x1) x2): the adjoint of x2 is g conj(x1), that of x1
    (entering conjugated) conj(g x2)."""
    def vjp(g, ans, x1, x2, axis=-1, **kw):
        other = as_array((x2, x1)[i])
        nd = max(np.ndim(x1), np.ndim(x2))
        ax = int(axis) % nd
        ge = np.expand_dims(as_array(g), ax)
        return _fit(np.conj(ge * other) if i == 0 else ge * np.conj(other), (x1, x2)[i])
    return vjp


for _fn in (np.vecdot, np.linalg.vecdot):
    # (real-bilinear: the tangent is vecdot of the tangents, each vjp real-linear in the
    # other operand, for complex values too)
    _def(_fn, _vecdot_vjp(0), _vecdot_vjp(1), params="x1, x2", multilinear=[(0,), (1,)],
         complex="explicit")


def outer_vjp_a(g, ans, a, b, **kw):
    return _fit((as_array(g) @ np.ravel(b)).reshape(np.shape(a)), a)


def outer_vjp_b(g, ans, a, b, **kw):
    return _fit((np.ravel(a) @ as_array(g)).reshape(np.shape(b)), b)


_def(np.outer, outer_vjp_a, outer_vjp_b, params="a, b", multilinear=[(0,), (1,)])
_def(np.linalg.outer, outer_vjp_a, outer_vjp_b, params="a, b", multilinear=[(0,), (1,)])
_def(np.vdot,       # sum(conj(a) b): as vecdot
     lambda g, ans, a, b: _fit(np.conj(g * np.reshape(b, np.shape(a))), a),
     lambda g, ans, a, b: _fit(g * np.conj(np.reshape(a, np.shape(b))), b), params="a, b",
     multilinear=[(0,), (1,)], complex="explicit")


def _trace_grad(g, shape, offset, axis1, axis2):
    n1, n2 = shape[axis1], shape[axis2]
    eye = np.eye(n1, n2, k=offset)
    r = as_array(g)[..., None, None] * eye
    return np.moveaxis(r, (-2, -1), (axis1, axis2))


def trace_vjp(g, ans, a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    x = as_array(a)
    return _fit(_trace_grad(g, x.shape, offset, axis1 % x.ndim, axis2 % x.ndim), a)


_def(np.trace, trace_vjp, None, None, None, params="a, offset, axis1, axis2", linear=(0,))
_def(np.linalg.trace, lambda g, ans, x, offset=0, dtype=None: _fit(
    _trace_grad(g, np.shape(x), offset, np.ndim(x) - 2, np.ndim(x) - 1), x), params="x",
     linear=(0,))


def diagonal_vjp(g, ans, a, offset=0, axis1=0, axis2=1):
    return _gather(np.diagonal, a, g, offset, axis1, axis2)


_def(np.diagonal, diagonal_vjp, None, None, None, params="a, offset, axis1, axis2",
     linear=(0,))
_def(np.linalg.diagonal, lambda g, ans, x, offset=0: _gather(
    lambda v: np.linalg.diagonal(v, offset=offset), x, g), params="x", linear=(0,))
for _fn in (np.diag, np.diagflat, np.tril, np.triu, np.fliplr, np.flipud, np.rot90):
    _gather_rule(_fn)
_def(np.linalg.matrix_transpose, lambda g, ans, x: _fit(np.swapaxes(g, -1, -2), x),
     params="x", linear=(0,))
_def(np.matrix_transpose, lambda g, ans, x: _fit(np.swapaxes(g, -1, -2), x), params="x",
     linear=(0,))


def kron_vjp(i):
    def vjp(g, ans, a, b):
        A, B = as_array(a), as_array(b)
        nd = max(A.ndim, B.ndim)
        A_ = A.reshape((1,) * (nd - A.ndim) + A.shape)
        B_ = B.reshape((1,) * (nd - B.ndim) + B.shape)
        inter = []
        for p, q in zip(A_.shape, B_.shape):
            inter += [p, q]
        G = as_array(g).reshape(inter)
        la, lb = _LETTERS[:nd], _LETTERS[26:26 + nd]
        gs = "".join(x + y for x, y in zip(la, lb))
        if i == 0:
            r = np.einsum(f"{gs},{lb}->{la}", G, B_)
            return _fit(r.reshape(A.shape), a)
        r = np.einsum(f"{gs},{la}->{lb}", G, A_)
        return _fit(r.reshape(B.shape), b)
    return vjp


_def(np.kron, kron_vjp(0), kron_vjp(1), params="a, b", multilinear=[(0,), (1,)])


def _cross_vjp(i, linalg=False):
    def vjp(g, ans, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
        if linalg:
            axisa = axisb = axisc = axisa if axis is None else axis
        elif axis is not None:
            axisa = axisb = axisc = axis
        A = np.moveaxis(as_array(a, dtype=float), axisa, -1)
        B = np.moveaxis(as_array(b, dtype=float), axisb, -1)
        G = np.moveaxis(as_array(g), axisc, -1)
        if A.shape[-1] != 3 or B.shape[-1] != 3:
            raise NotImplementedError("np.cross gradient: only 3-vectors")
        if i == 0:
            r = np.cross(B, G)                       # <g, a x b> = <a, b x g>
            return _fit(np.moveaxis(unbroadcast(r, A), -1, axisa), a)
        r = np.cross(G, A)
        return _fit(np.moveaxis(unbroadcast(r, B), -1, axisb), b)
    return vjp


_def(np.cross, _cross_vjp(0), _cross_vjp(1), params="a, b", multilinear=[(0,), (1,)],
     complex=None)
_def(np.linalg.cross, _cross_vjp(0, True), _cross_vjp(1, True), params="x1, x2",
     multilinear=[(0,), (1,)], complex=None)


def _T(x):
    return np.swapaxes(x, -1, -2)


# --- polynomials and 1-d signal functions ---------------------------------------------
def polyval_vjp_p(g, ans, p, x):
    P = as_array(p)
    X = as_array(x, dtype=float)
    n = P.shape[0]
    powers = X[None, ...] ** np.arange(n - 1, -1, -1).reshape((-1,) + (1,) * X.ndim)
    r = np.sum(powers * as_array(g)[None, ...], axis=tuple(range(1, X.ndim + 1)))
    return _fit(r, p)


def polyval_vjp_x(g, ans, p, x):
    dp = np.polyder(as_array(p, dtype=float)) if len(p) > 1 else np.zeros(1)
    return _fit(as_array(g) * np.polyval(dp, as_array(x, dtype=float)), x)


def _polyval_vjp_p_jvp(tangents, g, ans, p, x):
    """The tangent of sum(x^k g) (k = n-1, ..., 0) along g and x."""
    dg, dx = _t(tangents, 0), _t(tangents, 3)
    terms = [None if dg is None else polyval_vjp_p(dg, ans, p, x)]
    if dx is not None and not _is_zero(g):
        X = as_array(x, dtype=float)
        k = np.arange(len(p) - 1, -1, -1).reshape((-1,) + (1,) * X.ndim)
        dpow = k * X[None, ...] ** np.maximum(k - 1, 0)
        gdx = np.broadcast_to(as_array(g) * as_array(dx), X.shape)
        terms.append(_fit(np.sum(dpow * gdx[None, ...], axis=tuple(range(1, X.ndim + 1))),
                          p))
    return _plus(*terms)


def _polyval_vjp_x_jvp(tangents, g, ans, p, x):
    """The tangent of g p'(x) along g, p and x."""
    dg, dp, dx = _t(tangents, 0), _t(tangents, 2), _t(tangents, 3)
    terms = [None if dg is None else polyval_vjp_x(dg, ans, p, x)]
    if not _is_zero(g):
        X, P = as_array(x, dtype=float), as_array(p, dtype=float)
        if dp is not None:
            d1 = np.polyder(as_array(dp, dtype=float)) if len(p) > 1 else np.zeros(1)
            terms.append(_fit(as_array(g) * np.polyval(d1, X), x))
        if dx is not None:
            d2 = np.polyder(P, 2) if len(p) > 2 else np.zeros(1)
            terms.append(_fit(as_array(g) * np.polyval(d2, X) * as_array(dx), x))
    return _plus(*terms)


_def(np.polyval, polyval_vjp_p, polyval_vjp_x, params="p, x",
     vjp_tangents=[_polyval_vjp_p_jvp, _polyval_vjp_x_jvp])


def _conv_offset(n, m, mode):
    L = {"full": n + m - 1, "same": max(n, m), "valid": max(n, m) - min(n, m) + 1}[mode]
    if mode == "full":
        return 0, L
    if mode == "valid":
        return min(n, m) - 1, L
    return (min(n, m) - 1) // 2, L


def _conv_vjp(i):
    def vjp(g, ans, a, v, mode="full"):
        A, V = _arr(a), _arr(v)
        n, m = A.size, V.size
        s, L = _conv_offset(n, m, mode)
        G = np.zeros(n + m - 1, dtype=np.result_type(A, V, as_array(g), float))
        G[s:s + L] = g
        # (np.correlate conjugates its second argument: conj undoes it)
        if i == 0:
            return _fit(np.correlate(G, np.conj(V), "valid"), a)
        return _fit(np.correlate(G, np.conj(A), "valid"), v)
    return vjp


def _corr_vjp(i):
    """correlate(a, v) = convolve(a, conj(v)[::-1]): convolve's vjps, conjugated back
    for v."""
    def vjp(g, ans, a, v, mode="valid"):
        V = np.conj(as_array(v))[::-1]
        if i == 0:
            return _conv_vjp(0)(g, ans, a, V, mode)
        r = _conv_vjp(1)(g, ans, a, V, mode)
        return _fit(np.conj(as_array(r))[::-1], v)
    return vjp


_def(np.convolve, _conv_vjp(0), _conv_vjp(1), params="a, v", multilinear=[(0,), (1,)])
_def(np.correlate, _corr_vjp(0), _corr_vjp(1), params="a, v", multilinear=[(0,), (1,)],
     complex="explicit")


def interp_vjp_x(g, ans, x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError("np.interp gradient with period")
    X = as_array(x, dtype=float)
    XP, FP = as_array(xp, dtype=float), as_array(fp, dtype=float)
    i = np.clip(np.searchsorted(XP, X, side="right") - 1, 0, len(XP) - 2)
    slope = (FP[i + 1] - FP[i]) / (XP[i + 1] - XP[i])
    inside = (X >= XP[0]) & (X <= XP[-1])
    return _fit(np.where(inside, slope, 0) * as_array(g), x)


def interp_vjp_fp(g, ans, x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError("np.interp gradient with period")
    X = as_array(x, dtype=float).ravel()
    G = np.broadcast_to(as_array(g, dtype=float), np.shape(x)).ravel()
    XP = as_array(xp, dtype=float)
    n = len(XP)
    i = np.clip(np.searchsorted(XP, X, side="right") - 1, 0, n - 2)
    t = np.clip((X - XP[i]) / (XP[i + 1] - XP[i]), 0, 1)
    wl = np.where(X < XP[0], left is None, np.where(X > XP[-1], 0, 1 - t))
    wr = np.where(X > XP[-1], right is None, np.where(X < XP[0], 0, t))
    r = np.bincount(i, wl * G, minlength=n) + np.bincount(i + 1, wr * G, minlength=n)
    return _fit(r, fp)


def interp_vjp_xp(g, ans, x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError("np.interp gradient with period")
    X = as_array(x, dtype=float).ravel()
    G = np.broadcast_to(as_array(g, dtype=float), np.shape(x)).ravel()
    XP, FP = as_array(xp, dtype=float), as_array(fp, dtype=float)
    n = len(XP)
    i = np.clip(np.searchsorted(XP, X, side="right") - 1, 0, n - 2)
    d = XP[i + 1] - XP[i]
    s = (FP[i + 1] - FP[i]) / d
    t = (X - XP[i]) / d
    inside = (X >= XP[0]) & (X <= XP[-1])
    wl = np.where(inside, s * (t - 1), 0)
    wr = np.where(inside, -s * t, 0)
    r = np.bincount(i, wl * G, minlength=n) + np.bincount(i + 1, wr * G, minlength=n)
    return _fit(r, xp)


_def(np.interp, interp_vjp_x, interp_vjp_xp, interp_vjp_fp, params="x, xp, fp")


# ======================================================================================
# shapes
# ======================================================================================
def _reshape_back(g, ans, a, *rest, order="C", **kw):
    if order not in ("C", "F"):
        order = "C"
    if order == "C":               # (said only where it is not the default: Dask takes none)
        return _fit(np.reshape(as_array(g), np.shape(a)), a)
    return _fit(np.reshape(as_array(g), np.shape(a), order=order), a)


def _ravel_back(g, ans, a, order="C"):
    return _reshape_back(g, ans, a, order=order)


@template(ndim={"a": _ANY})
def _reshape_template(g, ans, a, *rest):
    return g.reshape(a.shape)


for _fn in (np.reshape, np.expand_dims, np.squeeze, np.ravel):
    _def(_fn, _reshape_back if _fn is not np.ravel else _ravel_back, None, None,
         params="a, x1, x2", linear=(0,), template=[(_reshape_template,)])
for _fn in (np.copy, np.asarray, np.asanyarray, np.ascontiguousarray, np.asfortranarray,
            np.array, np.require):
    _def(_fn, lambda g, ans, a, *rest, **kw: _fit(np.array(g, copy=True), a) if not
         isinstance(a, (list, tuple)) else _fit(as_array(g), a), params="a", linear=(0,))
_def(np.ndarray.flatten, _ravel_back, params="self", linear=(0,))
_def(np.ndarray.ravel, _ravel_back, params="self", linear=(0,))
_def(np.ndarray.copy, lambda g, ans, a, *r, **k: _fit(np.array(g, copy=True), a),
     params="self", linear=(0,))
_def(np.ndarray.astype, lambda g, ans, a, *r, **k: _fit(as_array(g), a), params="self",
     linear=(0,))
_def(np.ndarray.view, lambda g, ans, a, *r, **k: _fit(as_array(g), a), params="self",
     linear=(0,))
_def(np.ndarray.item, lambda g, ans, a, *args: _gather(
    lambda z: z.item(*args), a, g), params="self", linear=(0,))
def _densify(g, like):
    """A list adjoint with 0.0 placeholders, made dense like ``like``."""
    if _is_zero(g):
        return np.zeros(np.shape(like))
    if isinstance(g, (list, tuple)):
        return np.array([_densify(gi, li) for gi, li in zip(g, like)], dtype=float)
    return as_array(g, dtype=float)


_def(np.ndarray.tolist, lambda g, ans, a: _fit(_densify(g, ans), a), params="self",
     several=True,
     ans=True, linear=(0,))


def _transpose_vjp(g, ans, a, axes=None, *more):
    if standard_only(a):            # `x.T` of PyTorch, JAX... arrays: their namespace's
        from ..namespaces import numpy_for
        back = tuple(range(a.ndim))[::-1] if axes is None else tuple(
            sorted(range(a.ndim), key=lambda k: ((axes,) + more if more else axes)[k]))
        return numpy_for(a).permute_dims(g, back)
    nd = np.ndim(a)
    if more:
        axes = (axes,) + more
    if axes is None:
        return _fit(np.transpose(g), a)
    axes = [int(k) % nd for k in axes]
    return _fit(np.transpose(g, np.argsort(axes)), a)


@template(ndim={"a": _ANY}, values={"axes": None})
def _transpose_template(g, ans, a, axes=None):
    return g.T


_def(np.transpose, _transpose_vjp, None, params="a, axes", linear=(0,),
     template=[(_transpose_template,)])
_def(np.permute_dims, _transpose_vjp, None, params="a, axes", linear=(0,),   # (np.transpose
     template=[(_transpose_template,)])                     # itself in some NumPy versions)
_def(np.ndarray.transpose, _transpose_vjp, params="self", linear=(0,))
_def(np.swapaxes, lambda g, ans, a, a1, a2: _fit(np.swapaxes(g, a1, a2), a), None, None,
     params="a, axis1, axis2", linear=(0,))
_def(np.moveaxis, lambda g, ans, a, src, dst: _fit(np.moveaxis(g, dst, src), a), None,
     None, params="a, source, destination", linear=(0,))


def rollaxis_vjp(g, ans, a, axis, start=0):
    n = np.ndim(a)
    axis = axis % n
    start = start + n if start < 0 else start
    perm = list(range(n))
    if axis < start:
        start -= 1
    if axis != start:
        perm.remove(axis)
        perm.insert(start, axis)
    return _fit(np.transpose(g, np.argsort(perm)), a)


_def(np.rollaxis, rollaxis_vjp, None, None, params="a, axis, start", linear=(0,))


def _atleast_vjp(i):
    def vjp(g, ans, *arys):
        gi = g if len(arys) == 1 else _parts(g, len(arys))[i]
        if _is_zero(gi):
            return _fit(np.zeros(np.shape(arys[i])), arys[i])
        return _fit(np.reshape(gi, np.shape(arys[i])), arys[i])
    return vjp


for _fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    _def(_fn, *[_atleast_vjp(i) for i in range(_MAXARGS)], linear=range(_MAXARGS))


def _concat_grad(g, arrays, axis, transform=lambda x: as_array(x)):
    shapes = [np.shape(transform(x)) for x in arrays]
    G = as_array(g)
    if axis is None:
        sizes, before = [math.prod(s) for s in shapes], ()
    else:
        sizes, before = [s[axis] for s in shapes], (slice(None),) * (axis % G.ndim)
    # slices, not np.split: they are lazy views of a Dask array too (namespaces.py)
    ends = list(itertools.accumulate(sizes))
    parts = [G[before + (slice(end - n, end),)] for n, end in zip(sizes, ends)]
    return [_fit(np.reshape(p, np.shape(x)), x) for p, x in zip(parts, arrays)]


def _pieces(vjp):
    """A joining function given one array instead of a sequence joins its rows: the
    adjoint of the array is the rows' adjoints stacked back (an array, not a list)."""
    def wrapped(g, ans, arrays, *args, **kw):
        if isinstance(arrays, np.ndarray):
            rows = vjp(g, ans, list(arrays), *args, **kw)
            return _fit(np.stack([as_array(r) for r in rows]) if len(rows) else
                        np.zeros(arrays.shape), arrays)
        return vjp(g, ans, arrays, *args, **kw)
    return wrapped


@_pieces
def concatenate_vjp(g, ans, arrays, axis=0, out=None, dtype=None, casting=None):
    return _concat_grad(g, arrays, axis)


_def(np.concatenate, concatenate_vjp, None, params="arrays, axis", linear=(0,))
_def(np.hstack, _pieces(lambda g, ans, tup, **kw: _concat_grad(
    g, tup, 0 if np.ndim(np.atleast_1d(tup[0])) == 1 else 1, np.atleast_1d)),
    params="tup", linear=(0,))
_def(np.vstack, _pieces(lambda g, ans, tup, **kw: _concat_grad(g, tup, 0, np.atleast_2d)),
     params="tup", linear=(0,))
if hasattr(np, "row_stack"):
    _def(np.row_stack, _pieces(lambda g, ans, tup, **kw: _concat_grad(
        g, tup, 0, np.atleast_2d)), params="tup", linear=(0,))
_def(np.dstack, _pieces(lambda g, ans, tup, **kw: _concat_grad(g, tup, 2, np.atleast_3d)),
     params="tup", linear=(0,))
_def(np.column_stack, _pieces(lambda g, ans, tup: _concat_grad(
    g, tup, 1, lambda x: np.array(x, ndmin=2).T if np.ndim(x) < 2 else as_array(x))),
    params="tup", linear=(0,))


@_pieces
def stack_vjp(g, ans, arrays, axis=0, out=None, **kw):
    G = as_array(g)
    ax = int(axis) % G.ndim
    return [_fit(np.take(G, i, axis=ax), x) for i, x in enumerate(arrays)]


_def(np.stack, stack_vjp, None, params="arrays, axis", linear=(0,))


def unstack_vjp(g, ans, x, axis=0):
    parts = [_zeros_for(gi, a) for gi, a in zip(_parts(g, len(ans)), ans)]
    return _fit(np.stack(parts, axis=axis), x)


if hasattr(np, "unstack"):
    _def(np.unstack, unstack_vjp, params="x", ans=True, linear=(0,), several=True)


def _split_vjp(axis_fn):
    def vjp(g, ans, ary, indices_or_sections=None, axis=0):
        ax = axis_fn(np.ndim(ary), axis)
        parts = [_zeros_for(gi, a) for gi, a in zip(_parts(g, len(ans)), ans)]
        return _fit(np.concatenate(parts, axis=ax), ary)
    return vjp


_def(np.split, _split_vjp(lambda nd, ax: ax), None, None, params="ary, ios, axis", ans=True,
     linear=(0,), several=True)
_def(np.array_split, _split_vjp(lambda nd, ax: ax), None, None, params="ary, ios, axis",
     ans=True, linear=(0,), several=True)
_def(np.hsplit, _split_vjp(lambda nd, ax: 1 if nd > 1 else 0), None, params="ary, ios",
     ans=True, linear=(0,), several=True)
_def(np.vsplit, _split_vjp(lambda nd, ax: 0), None, params="ary, ios", ans=True,
     linear=(0,), several=True)
_def(np.dsplit, _split_vjp(lambda nd, ax: 2), None, params="ary, ios", ans=True,
     linear=(0,), several=True)


def tile_vjp(g, ans, A, reps):
    x = as_array(A)
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    d = max(x.ndim, len(reps))
    shape = (1,) * (d - x.ndim) + x.shape
    reps = (1,) * (d - len(reps)) + reps
    inter = []
    for r, s in zip(reps, shape):
        inter += [r, s]
    G = as_array(g).reshape(inter)
    return _fit(G.sum(axis=tuple(range(0, 2 * d, 2))).reshape(x.shape), A)


_def(np.tile, tile_vjp, None, params="A, reps", linear=(0,))
_gather_rule(np.repeat)
_gather_rule(np.flip)
_gather_rule(np.roll)
_gather_rule(np.broadcast_to)
_gather_rule(np.take)
_gather_rule(np.take_along_axis)
_gather_rule(np.delete)
_gather_rule(np.resize)
_def(np.compress, None, lambda g, ans, c, a, *r, **k: _gather(
    lambda z: np.compress(c, z, *r, **k), a, g), params="condition, a", masks=True,
    linear=(1,))
_def(np.extract, None, lambda g, ans, c, a: _gather(lambda z: np.extract(c, z), a, g),
     params="condition, arr", masks=True, linear=(1,))


def pad_vjp(g, ans, array, pad_width, mode="constant", **kw):
    if callable(mode) or mode not in ("constant", "edge", "wrap", "reflect", "symmetric") \
            or kw.get("reflect_type", "even") != "even":
        raise NotImplementedError(f"np.pad gradient for mode={mode!r}")
    kw = {k: v for k, v in kw.items() if k != "constant_values"}
    return _gather(lambda z: np.pad(z, pad_width, mode, **kw), array, g)


_def(np.pad, pad_vjp, None, params="array, pad_width", linear=(0,),
     constant_keywords=("constant_values",), complex=None)


def insert_vjp_arr(g, ans, arr, obj, values, axis=None):
    vals = np.zeros(np.shape(values), dtype=np.int64)
    return _gather(lambda z: np.insert(z, obj, vals, axis), arr, g)


def insert_vjp_values(g, ans, arr, obj, values, axis=None):
    base = np.zeros(np.shape(arr), dtype=np.int64)
    return _gather(lambda z: np.insert(base, obj, z, axis), values, g)


_def(np.insert, insert_vjp_arr, None, insert_vjp_values, params="arr, obj, values",
     linear=(0, 2), complex=None)
_def(np.append, lambda g, ans, arr, values, axis=None: _append_vjp(0, g, arr, values, axis),
     lambda g, ans, arr, values, axis=None: _append_vjp(1, g, arr, values, axis),
     params="arr, values", linear=(0, 1))


def _append_vjp(i, g, arr, values, axis):
    z = np.zeros((), dtype=np.int64)
    if i == 0:
        vz = np.broadcast_to(z, np.shape(values))
        return _gather(lambda q: np.append(q, vz, axis), arr, g)
    az = np.broadcast_to(z, np.shape(arr))
    return _gather(lambda q: np.append(az, q, axis), values, g)


def _positions(arrays):
    """Number every element of every array 1, 2, ... (0 is left for "none of them")."""
    offs, idxs = 0, []
    for c in arrays:
        n = np.size(c)
        idxs.append(np.arange(offs + 1, offs + n + 1).reshape(np.shape(c)))
        offs += n
    return idxs, offs


def _scatter_back(g, pos, arrays, total):
    """Send each element of g back to the array element whose number `pos` holds."""
    G = np.broadcast_to(as_array(g, dtype=float), pos.shape)
    flat = np.bincount(pos.ravel(), weights=G.ravel(), minlength=total + 1)[1:]
    out, offs = [], 0
    for c in arrays:
        n = np.size(c)
        out.append(_fit(flat[offs:offs + n].reshape(np.shape(c)), c))
        offs += n
    return out


def choose_vjp_choices(g, ans, a, choices, out=None, mode="raise"):
    idxs, total = _positions(choices)
    return _scatter_back(g, np.choose(a, idxs, mode=mode), choices, total)


_def(np.choose, None, choose_vjp_choices, params="a, choices", masks=True, linear=(1,),
     complex=None)


def select_vjp(g, ans, condlist, choicelist, default=0):
    idxs, total = _positions(choicelist)
    return _scatter_back(g, np.select(condlist, idxs, 0), choicelist, total)


def select_vjp_default(g, ans, condlist, choicelist, default=0):
    chosen = np.zeros(np.shape(ans), dtype=bool)
    for c in condlist:
        chosen |= np.broadcast_to(c, chosen.shape)
    return _fit(np.where(chosen, 0, g), default)


_def(np.select, None, select_vjp, select_vjp_default, params="condlist, choicelist, default",
     ans=True, masks=True, linear=(1, 2), complex=None)


def broadcast_arrays_vjp(i):
    def vjp(g, ans, *args, **kw):
        gi = _parts(g, len(ans))[i]
        if _is_zero(gi):
            return _fit(np.zeros(np.shape(args[i])), args[i])
        return _fit(unbroadcast(as_array(gi), as_array(args[i])), args[i])
    return vjp


_def(np.broadcast_arrays, *[broadcast_arrays_vjp(i) for i in range(_MAXARGS)], ans=True,
     several=True,
     linear=range(_MAXARGS))


def meshgrid_vjp(i):
    def vjp(g, ans, *xi, indexing="xy", sparse=False, copy=True):
        gi = _parts(g, len(ans))[i]
        if _is_zero(gi):
            return _fit(np.zeros(np.shape(xi[i])), xi[i])
        gi = as_array(gi)
        ax = i
        if indexing == "xy" and len(xi) > 1 and i < 2:
            ax = 1 - i
        r = np.sum(gi, axis=tuple(k for k in range(gi.ndim) if k != ax))
        return _fit(r.reshape(np.shape(xi[i])), xi[i])
    return vjp


_def(np.meshgrid, *[meshgrid_vjp(i) for i in range(_MAXARGS)], ans=True,
     several=True,
     linear=range(_MAXARGS))


def block_vjp(g, ans, arrays):
    """np.block: innermost lists concatenate along the last axis, the next along -2..."""
    G = as_array(g)

    def depth(x):
        return 1 + depth(x[0]) if isinstance(x, list) else 0
    d = depth(arrays)
    nd = G.ndim

    def promoted_shape(e):
        s = np.shape(np.block(e))
        return (1,) * (nd - len(s)) + s

    def rec(x, gpart, level):
        if not isinstance(x, list):
            return _fit(gpart.reshape(np.shape(x)), x)
        ax = nd - (d - level)
        sizes = [promoted_shape(e)[ax] for e in x]
        parts = np.split(gpart, np.cumsum(sizes)[:-1], axis=ax)
        return [rec(e, q, level + 1) for e, q in zip(x, parts)]
    return rec(arrays, G, 0)


_def(np.block, block_vjp, params="arrays", linear=(0,))


def sort_vjp(g, ans, a, axis=-1, kind=None, order=None, **kw):
    x = _arr(a)
    if axis is None:
        x1, out1 = x.ravel(), as_array(ans).ravel()
        ax = 0
    else:
        x1, out1, ax = x, as_array(ans), int(axis) % x.ndim
    # permutation p with ans = take_along_axis(x, p): match sorted positions
    sx = np.argsort(x1, axis=ax, kind="stable")
    so = np.argsort(np.argsort(out1, axis=ax, kind="stable"), axis=ax, kind="stable")
    p = np.take_along_axis(sx, so, axis=ax)
    r = np.zeros_like(x1)
    np.put_along_axis(r, p, as_array(g).reshape(out1.shape), axis=ax)
    return _fit(r.reshape(x.shape), a)


def _sort_perm(x, ans, axis):
    """p with ans == take_along_axis(x, p, axis) (x, ans flattened when axis is None)."""
    sx = np.argsort(x, axis=axis, kind="stable")
    so = np.argsort(np.argsort(ans, axis=axis, kind="stable"), axis=axis, kind="stable")
    return np.take_along_axis(sx, so, axis=axis)


def _sort_jvp(da, a, axis=-1, kind=None, order=None, **kw):
    x, ans = as_array(a), np.sort(a, axis=axis, **kw)
    t = as_array(dense(da, a))
    if axis is None:
        x, t, ans, axis = x.ravel(), np.broadcast_to(t, x.shape).ravel(), ans.ravel(), 0
    return np.take_along_axis(np.broadcast_to(t, x.shape), _sort_perm(x, ans, axis), axis)


def _partition_jvp(da, a, kth, axis=-1, kind=None, order=None):
    x, ans = as_array(a), np.partition(a, kth, axis=axis)
    t = as_array(dense(da, a))
    if axis is None:
        x, t, ans, axis = x.ravel(), np.broadcast_to(t, x.shape).ravel(), ans.ravel(), 0
    return np.take_along_axis(np.broadcast_to(t, x.shape), _sort_perm(x, ans, axis), axis)


def _partition_vjp(g, ans, a, kth, axis=-1, kind=None, order=None):
    return sort_vjp(g, ans, a, axis)


_def(np.sort, sort_vjp, None, params="a, axis", ans=True, piecewise_linear=True,
     jvp=_vjps_if_more(np.sort, [sort_vjp, None], _sort_jvp))
_def(np.partition, _partition_vjp, None, None, params="a, kth, axis", ans=True,
     piecewise_linear=True,
     jvp=_vjps_if_more(np.partition, [_partition_vjp, None, None], _partition_jvp))


def _clip_bounds(a_min, a_max, min, max):
    """(lo, hi) of a clip call (NumPy 2's min=/max= names too), None where absent."""
    lo = a_min if a_min is not np._NoValue else min
    hi = a_max if a_max is not np._NoValue else max
    return (None if lo is np._NoValue else lo), (None if hi is np._NoValue else hi)


def clip_vjp(i):
    def vjp(g, ans, a, a_min=np._NoValue, a_max=np._NoValue, out=None, *,
            min=np._NoValue, max=np._NoValue, **kw):
        lo, hi = _clip_bounds(a_min, a_max, min, max)
        if i and (lo, hi)[i - 1] is None:
            return None
        G = np.broadcast_to(as_array(g), np.shape(ans))
        mask = _clip_mask(i, ans, a, a_min, a_max, min, max)
        return _fit(np.where(mask, G, 0), (a, lo, hi)[i])
    return vjp


def _clip_jvp(tangents, a, a_min=np._NoValue, a_max=np._NoValue, out=None, *,
              min=np._NoValue, max=np._NoValue, **kw):
    """Tangent of a inside [lo, hi], of the bound where a was clipped (as clip_vjp)."""
    ans = np.clip(a, *_clip_bounds(a_min, a_max, min, max))
    out_t = 0.0
    for i, t in enumerate(tangents[:3]):
        if _given(t):
            out_t = out_t + _clip_mask(i, ans, a, a_min, a_max, min, max) * as_array(t)
    return out_t


def _clip_mask(i, ans, a, a_min, a_max, min, max):
    """Where the adjoint goes: to a inside [lo, hi] (i = 0), to lo below it (1), to hi
    above it (2); NumPy gives hi where lo > hi."""
    lo, hi = _clip_bounds(a_min, a_max, min, max)
    x = _arr(a)
    shape = np.shape(ans)
    below = np.zeros(shape, bool) if lo is None else np.broadcast_to(x < lo, shape)
    above = np.zeros(shape, bool) if hi is None else np.broadcast_to(x > hi, shape)
    if lo is not None and hi is not None:
        inverted = np.broadcast_to(as_array(lo) > as_array(hi), shape)
        above = above | inverted
        below = below & ~inverted
    return (~(below | above), below, above)[i]


_def(np.clip, clip_vjp(0), clip_vjp(1), clip_vjp(2), params="a, a_min, a_max", ans=True,
     masks=True, piecewise_linear=True, jvp=_clip_jvp)


def nan_to_num_vjp(g, ans, x, *args, **kw):
    """The adjoint goes to x where it is finite; nan and infinities are replaced by
    constants (no derivative)."""
    G = np.broadcast_to(as_array(g), np.shape(x))
    return _fit(np.where(np.isfinite(x), G, 0.0), x)


def _nan_to_num_jvp(tangents, x, *args, **kw):
    t = _t(tangents, 0)
    if t is None:
        return 0.0
    return np.where(np.isfinite(x), np.broadcast_to(as_array(t), np.shape(x)), 0.0)


_CONSTANT_VALUE = "transpile does not differentiate the value put in place of nan or an infinity"
_def(np.nan_to_num, nan_to_num_vjp, None, None, None, None,
     params="x, copy, nan, posinf, neginf", masks=True, piecewise_linear=True,
     jvp=_nan_to_num_jvp, no_derivative={2: _CONSTANT_VALUE, 3: _CONSTANT_VALUE,
                                         4: _CONSTANT_VALUE})


def _gradient_layout(f, varargs, axis):
    """(axes, spacing arguments of each) of np.gradient(f, *varargs, axis=axis)."""
    nd = np.ndim(f)
    if axis is None:
        axes = tuple(range(nd))
    elif isinstance(axis, (tuple, list)):
        axes = tuple(int(a) % nd for a in axis)
    else:
        axes = (int(axis) % nd,)
    if not varargs:
        return axes, [()] * len(axes)
    if len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        return axes, [tuple(varargs)] * len(axes)
    return axes, [(v,) for v in varargs]


def gradient_vjp(g, ans, f, *varargs, axis=None, edge_order=1):
    """np.gradient is linear in f, along each axis a matrix M (n, n) (central differences
    inside, one-sided at the ends, for the spacing given): the adjoint is M^T g per axis,
    M read off np.gradient of the identity."""
    F = as_array(f)
    axes, spacings = _gradient_layout(F, varargs, axis)
    parts = [g] if len(axes) == 1 else _parts(g, len(axes))
    out = np.zeros(F.shape, dtype=np.result_type(F, float))
    for ax, spacing, gi in zip(axes, spacings, parts):
        if _is_zero(gi):
            continue
        M = np.gradient(np.eye(F.shape[ax]), *spacing, axis=0, edge_order=edge_order)
        G = np.moveaxis(np.broadcast_to(as_array(gi), F.shape), ax, 0)
        out = out + np.moveaxis(np.tensordot(M.T, G, axes=1), 0, ax)
    return _fit(out, f)


_SPACING = "transpile does not differentiate the spacing of the samples"
_def(np.gradient, gradient_vjp, None, None, None, params="f, h0, h1, h2", linear=(0,),
     several=True, no_derivative={1: _SPACING, 2: _SPACING, 3: _SPACING})


def diff_vjp(g, ans, a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    x = _arr(a)
    ax = int(axis) % x.ndim
    G = as_array(g)
    for _ in range(n):
        p0 = [(0, 0)] * G.ndim
        p1 = [(0, 0)] * G.ndim
        p0[ax] = (1, 0)
        p1[ax] = (0, 1)
        G = np.pad(G, p0) - np.pad(G, p1)
    start = 0
    if prepend is not np._NoValue:
        start = 1 if np.ndim(prepend) == 0 else np.shape(prepend)[ax]
    G = np.take(G, np.arange(start, start + x.shape[ax]), axis=ax)
    return _fit(G, a)


_def(np.diff, diff_vjp, None, None, params="a, n, axis", linear=(0,),
     constant_keywords=("prepend", "append"), complex=None)


def ediff1d_vjp(g, ans, ary, to_end=None, to_begin=None):
    G = as_array(g)
    start = 0 if to_begin is None else np.size(to_begin)
    n = np.size(ary)
    G = G[start:start + max(n - 1, 0)]
    r = np.zeros(n)
    r[1:] += G
    r[:-1] -= G
    return _fit(r.reshape(np.shape(ary)), ary)


def _ediff1d_jvp(da, ary, to_end=None, to_begin=None):
    return np.ediff1d(dense(da, ary),
                      None if to_end is None else np.zeros(np.size(to_end)),
                      None if to_begin is None else np.zeros(np.size(to_begin)))


# affine in ary (to_end and to_begin are placed in the result): linear in its tangent
_def(np.ediff1d, ediff1d_vjp, params="ary", piecewise_linear=True,
     jvp=_vjps_if_more(np.ediff1d, [ediff1d_vjp], _ediff1d_jvp))


# ======================================================================================
# creation
# ======================================================================================
_def(np.full, None, lambda g, ans, shape, fill_value, *r, **k: _fit(g, fill_value),
     params="shape, fill_value", linear=(1,))
_def(np.full_like, None, lambda g, ans, a, fill_value, *r, **k: _fit(g, fill_value),
     params="a, fill_value", linear=(1,))


def _linspace_vjp(i):
    def vjp(g, ans, start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0,
            **kw):
        gstep = 0.0
        if retstep:
            g, gstep = _parts(g, 2)
            ans = ans[0]
        div = (num - 1) if endpoint else num
        t = np.arange(num, dtype=float) / div if div > 0 else np.zeros(num)
        G = np.zeros(np.shape(ans)) if _is_zero(g) else as_array(g, dtype=float)
        G = np.moveaxis(G, axis, 0)
        w = t if i == 1 else 1 - t
        r = np.tensordot(w, G, axes=(0, 0))
        if not _is_zero(gstep) and div > 0:
            r = r + as_array(gstep) * ((1.0 if i == 1 else -1.0) / div)
        return _fit(r, (start, stop)[i])
    return vjp


_def(np.linspace, _linspace_vjp(0), _linspace_vjp(1), None, params="start, stop, num",
     several=True,
     ans=True, linear=(0, 1), complex=None)
