"""Rules for the functions of Array API namespaces (array_api_compat's namespaces of
PyTorch, CuPy and Dask, JAX's `jax.numpy`, array-api-strict): `xp.sum(x)` in a program
written as `xp = array_namespace(x)`, whatever library xp is.

One rule per function of the standard, registered for a namespace when transpile first
meets it (`register(ns)`: api.py, from the arguments' kinds). Elementwise functions take
NumPy's partial-derivative templates, `np.cos(x)` written `xp.cos(x)` with xp bound to
that namespace (one rule per primitive: NumPy's rule is the source). The other functions'
vjps are written once against the standard, with the namespace of the arrays they are
given (`namespaces.namespace`). A namespace function that already has a rule (most of
array_api_compat's NumPy namespace is NumPy itself) keeps it.
"""
import ast
import copy
import math
import re

from .. import runtime
from ..namespaces import STANDARD_NAMES, namespace
from .registry import defvjp, lookup

#: standard functions whose NumPy function has another name -> NumPy's name
_NUMPY_NAMES = {v: k for k, v in STANDARD_NAMES.items()}
_UNARY = ("abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "exp",
          "expm1", "log", "log1p", "log2", "log10", "negative", "positive", "reciprocal",
          "sin", "sinh", "sqrt", "square", "tan", "tanh")
_BINARY = ("add", "atan2", "divide", "hypot", "logaddexp", "maximum", "minimum", "multiply",
           "pow", "subtract", "copysign")
#: functions whose derivative is zero wherever it exists (or that give booleans, ints)
_ZERO = ("ceil", "floor", "round", "sign", "trunc", "equal", "not_equal", "greater",
         "greater_equal", "less", "less_equal", "isfinite", "isinf", "isnan", "signbit",
         "argmax", "argmin", "zeros_like", "ones_like", "empty_like", "full_like", "nonzero",
         "floor_divide", "logical_and", "logical_or", "logical_not", "logical_xor", "any",
         "all", "count_nonzero", "argsort", "searchsorted")

_DONE = set()


def register(ns):
    """Rules for the functions of namespace ns that have none yet (once per namespace)."""
    if id(ns) in _DONE:
        return
    _DONE.add(id(ns))
    for name in _UNARY + _BINARY:
        fn = getattr(ns, name, None)
        if fn is not None and lookup(fn) is None:
            _elementwise(ns, fn, name, 1 if name in _UNARY else 2)
    for name in _ZERO:
        fn = getattr(ns, name, None)
        if fn is not None and lookup(fn) is None:
            defvjp(fn, *([None] * 4), name=_qualified(ns, name), zero=True,
                   params="x0, x1, x2, x3")
    for name, (vjps, params, structure) in _VJPS.items():
        fn = ns
        for part in name.split("."):             # linalg.vector_norm: the extension's
            fn = getattr(fn, part, None)
        if fn is not None and lookup(fn) is None:
            defvjp(fn, *vjps, name=_qualified(ns, name), params=params, **structure)


def _qualified(ns, name):
    return f"{getattr(ns, '__name__', 'xp')}.{name}"


def _elementwise(ns, fn, name, nargs):
    """The rule of ns.name from NumPy's: its templates with np.<f> as xp.<standard f>."""
    import numpy as np
    from . import numpy_
    ref = lookup(getattr(np, _NUMPY_NAMES.get(name, name)), nargs)
    if ref is None or ref.structure != "elementwise" or ref.partials is None:
        return
    templates = []
    for p in ref.partials:
        if p is None:
            templates.append(None)
            continue
        text = ast.unparse(_Indicators().visit(copy.deepcopy(p)))
        missing = [m for m in re.findall(r"\bnp\.(\w+)", text)
                   if getattr(ns, STANDARD_NAMES.get(m, m), None) is None]
        if missing:
            return          # a NumPy function the namespace lacks: no rule (refused)
        templates.append(re.sub(r"\bnp\.(\w+)",
                                lambda m: "xp." + STANDARD_NAMES.get(m[1], m[1]), text))
    defvjp(fn, *templates, name=_qualified(ns, name), params=ref.params,
           env={**numpy_.ENV, "xp": ns, "indicator": runtime.indicator}, masks=ref.masks)


class _Indicators(ast.NodeTransformer):
    """`x >= y` in a template as `indicator(x >= y)`: the standard multiplies no booleans
    by numbers (array-api-strict refuses it), so a comparison is made a 0/1 array."""

    def visit_Compare(self, node):
        return ast.Call(func=ast.Name(id="indicator", ctx=ast.Load()),
                        args=[self.generic_visit(node)], keywords=[])


# --- the vjps of the other functions, written against the standard -----------------------

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def _spread(g, x, axis, keepdims):
    """A reduction's adjoint g brought back to x's shape (the reduced axes reinserted)."""
    xp = namespace(g, x)
    g = xp.asarray(g, dtype=x.dtype, device=_device(x)) if not hasattr(g, "shape") else g
    if not keepdims and x.ndim:
        shape = list(x.shape)
        for a in _axes(axis, x.ndim):
            shape[a] = 1
        g = xp.reshape(g, tuple(shape))
    return xp.broadcast_to(g, x.shape)


def _device(x):
    import array_api_compat
    return array_api_compat.device(x)


def _count(x, axis):
    return math.prod(x.shape[a] for a in _axes(axis, x.ndim))


def sum_vjp(g, ans, x, axis=None, dtype=None, keepdims=False):
    return _spread(g, x, axis, keepdims)


def mean_vjp(g, ans, x, axis=None, keepdims=False):
    return _spread(g, x, axis, keepdims) / _count(x, axis)


def _extremum_vjp(g, ans, x, axis=None, keepdims=False):
    """max / min: g split evenly among the elements equal to the extremum."""
    xp = namespace(g, x)
    hit = xp.astype(x == _spread(ans, x, axis, keepdims), x.dtype)
    ties = xp.sum(hit, axis=axis, keepdims=True) if x.ndim else hit
    return _spread(g, x, axis, keepdims) * hit / ties


def prod_vjp(g, ans, x, axis=None, dtype=None, keepdims=False):
    """Each element gets g times the product of the others in its group, from exclusive
    cumulative products from both sides (no division: right where elements are 0)."""
    xp = namespace(g, x)
    axes = _axes(axis, x.ndim)
    if not axes:
        return _spread(g, x, axis, keepdims)
    keep = [a for a in range(x.ndim) if a not in axes]
    moved = xp.permute_dims(x, tuple(keep + list(axes))) if x.ndim else x
    grouped = xp.reshape(moved, tuple(moved.shape[:len(keep)]) + (-1,))
    left = xp.cumulative_prod(grouped, axis=-1, include_initial=True)[..., :-1]
    right = xp.flip(xp.cumulative_prod(xp.flip(grouped, axis=-1), axis=-1,
                                       include_initial=True)[..., :-1], axis=-1)
    others = xp.reshape(left * right, moved.shape)
    back = sorted(range(x.ndim), key=lambda k: (keep + list(axes))[k])
    return _spread(g, x, axis, keepdims) * xp.permute_dims(others, tuple(back))


def tensordot_vjp(i):
    """tensordot(x1, x2, axes=N): each operand's adjoint is g contracted with the other
    over the other's free axes (axes given as two sequences: refused)."""
    def vjp(g, ans, x1, x2, axes=2):
        if not isinstance(axes, int):
            from ..errors import TranspileError
            raise TranspileError("the derivative of tensordot with axes given as two "
                                 "sequences is available for NumPy arrays only (axes=N "
                                 "here)")
        xp = namespace(g, x1, x2)
        free1, free2 = x1.ndim - axes, x2.ndim - axes
        if i == 0:
            return xp.tensordot(g, x2, axes=(tuple(range(free1, free1 + free2)),
                                             tuple(range(axes, x2.ndim))))
        return xp.tensordot(x1, g, axes=(tuple(range(free1)), tuple(range(free1))))
    return vjp


def vector_norm_vjp(g, ans, x, axis=None, keepdims=False, ord=2):
    """The p-norm's adjoint: g sign(x) |x|^(p-1) / norm^(p-1) (ord 2: g x / norm), 0 at
    a zero norm; ord inf and -inf: g at the extreme elements, split among ties."""
    xp = namespace(g, x)
    norm = _spread(ans, x, axis, keepdims)
    gs = _spread(g, x, axis, keepdims)
    zero = xp.zeros((), dtype=x.dtype, device=_device(x))
    if ord in (math.inf, -math.inf):
        hit = xp.astype(xp.abs(x) == norm, x.dtype)
        ties = xp.sum(hit, axis=axis, keepdims=True) if x.ndim else hit
        return gs * xp.sign(x) * hit / ties
    if ord == 1:
        return gs * xp.sign(x)
    safe = xp.where(norm == 0, xp.ones((), dtype=x.dtype, device=_device(x)), norm)
    if ord == 2:
        return xp.where(norm == 0, zero, gs * x / safe)
    return xp.where(norm == 0, zero,
                    gs * xp.sign(x) * xp.abs(x) ** (ord - 1) / safe ** (ord - 1))


def var_vjp(g, ans, x, axis=None, correction=0.0, keepdims=False):
    xp = namespace(g, x)
    centred = x - xp.mean(x, axis=axis, keepdims=True)
    return _spread(g, x, axis, keepdims) * 2.0 * centred / (_count(x, axis) - correction)


def std_vjp(g, ans, x, axis=None, correction=0.0, keepdims=False):
    return var_vjp(_spread(g, ans, None, True) / (2.0 * ans) if hasattr(ans, "shape")
                   else g / (2.0 * ans), None, x, axis, correction, keepdims)


def cumulative_sum_vjp(g, ans, x, axis=None, dtype=None, include_initial=False):
    xp = namespace(g, x)
    if include_initial:
        from ..errors import TranspileError
        raise TranspileError("the derivative of cumulative_sum(..., include_initial=True) "
                             "is not available yet")
    ax = 0 if axis is None else axis
    return xp.flip(xp.cumulative_sum(xp.flip(g, axis=ax), axis=ax), axis=ax)


def _summed_to(g, shape):
    """g summed over the leading and size-1 axes it was broadcast along, to `shape`."""
    xp = namespace(g)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = xp.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return g


def matmul_vjp_a(g, ans, a, b):
    xp = namespace(g, a, b)
    if b.ndim == 1:
        return _summed_to(xp.expand_dims(g, axis=-1) * b, a.shape) if a.ndim > 1 else g * b
    if a.ndim == 1:
        return xp.matmul(b, g) if b.ndim == 2 else _summed_to(
            xp.matmul(b, xp.expand_dims(g, axis=-1))[..., 0], a.shape)
    return _summed_to(xp.matmul(g, xp.matrix_transpose(b)), a.shape)


def matmul_vjp_b(g, ans, a, b):
    xp = namespace(g, a, b)
    if a.ndim == 1:
        if b.ndim == 1:
            return g * a
        return _summed_to(xp.expand_dims(a, axis=-1) * xp.expand_dims(g, axis=-2), b.shape)
    if b.ndim == 1:
        return _summed_to(xp.matmul(xp.matrix_transpose(a), xp.expand_dims(g, axis=-1))[
            ..., 0], b.shape)
    return _summed_to(xp.matmul(xp.matrix_transpose(a), g), b.shape)


def vecdot_vjp(i):
    def vjp(g, ans, x1, x2, axis=-1):
        xp = namespace(g, x1, x2)
        other, own = (x2, x1) if i == 0 else (x1, x2)
        return _summed_to(xp.expand_dims(g, axis=axis) * other, own.shape)
    return vjp


def reshape_vjp(g, ans, x, shape, copy=None):
    return namespace(g, x).reshape(g, x.shape)


def permute_dims_vjp(g, ans, x, axes):
    back = sorted(range(len(axes)), key=lambda k: axes[k])
    return namespace(g, x).permute_dims(g, tuple(back))


def matrix_transpose_vjp(g, ans, x):
    return namespace(g, x).matrix_transpose(g)


def broadcast_to_vjp(g, ans, x, shape):
    return _summed_to(g, x.shape)


def flip_vjp(g, ans, x, axis=None):
    return namespace(g, x).flip(g, axis=axis)


def concat_vjp(g, ans, arrays, axis=0):
    if axis is None:
        flat = [math.prod(a.shape) for a in arrays]
        ends = [sum(flat[:k + 1]) for k in range(len(flat))]
        xp = namespace(g)
        return [xp.reshape(g[end - n:end], a.shape) for n, end, a in zip(flat, ends, arrays)]
    before = (slice(None),) * (axis % g.ndim)
    sizes = [a.shape[axis] for a in arrays]
    ends = [sum(sizes[:k + 1]) for k in range(len(sizes))]
    return [g[before + (slice(end - n, end), Ellipsis)] for n, end in zip(sizes, ends)]


def stack_vjp(g, ans, arrays, axis=0):
    before = (slice(None),) * (axis % g.ndim)
    return [g[before + (k, Ellipsis)] for k in range(len(arrays))]


def where_vjp(i):
    def vjp(g, ans, condition, x1, x2):
        xp = namespace(g, x1, x2)
        zero = xp.zeros((), dtype=g.dtype, device=_device(g))
        kept = xp.where(condition, g, zero) if i == 1 else xp.where(condition, zero, g)
        own = (x1, x2)[i - 1]
        return _summed_to(kept, own.shape) if hasattr(own, "shape") else float(xp.sum(kept))
    return vjp


def clip_vjp(g, ans, x, min=None, max=None):
    xp = namespace(g, x)
    inside = xp.ones(x.shape, dtype=xp.bool, device=_device(x))
    if min is not None:
        inside = inside & (x >= min)
    if max is not None:
        inside = inside & (x <= max)
    return xp.where(inside, g, xp.zeros((), dtype=g.dtype, device=_device(g)))


def expand_dims_vjp(g, ans, x, axis=0):
    return namespace(g, x).reshape(g, x.shape)


def squeeze_vjp(g, ans, x, axis):
    return namespace(g, x).reshape(g, x.shape)


_LINEAR = {"linear": (0,)}
#: standard name -> (vjps, the parameters that may be passed by position, structure);
#: keyword-only parameters of the standard (axis=, keepdims=...) reach the vjps by name
_VJPS = {
    "sum": ((sum_vjp,), "x", _LINEAR),
    "mean": ((mean_vjp,), "x", _LINEAR),
    "max": ((_extremum_vjp,), "x", {"masks": True}),
    "min": ((_extremum_vjp,), "x", {"masks": True}),
    "prod": ((prod_vjp,), "x", {}),
    "var": ((var_vjp,), "x", {}),
    "std": ((std_vjp,), "x", {}),
    "cumulative_sum": ((cumulative_sum_vjp,), "x", _LINEAR),
    "matmul": ((matmul_vjp_a, matmul_vjp_b), "x1, x2", {"multilinear": [(0,), (1,)]}),
    "vecdot": ((vecdot_vjp(0), vecdot_vjp(1)), "x1, x2", {"multilinear": [(0,), (1,)]}),
    "tensordot": ((tensordot_vjp(0), tensordot_vjp(1)), "x1, x2",
                  {"multilinear": [(0,), (1,)]}),
    "linalg.vector_norm": ((vector_norm_vjp,), "x", {}),
    "reshape": ((reshape_vjp, None), "x, shape", _LINEAR),
    "permute_dims": ((permute_dims_vjp, None), "x, axes", _LINEAR),
    "matrix_transpose": ((matrix_transpose_vjp,), "x", _LINEAR),
    "broadcast_to": ((broadcast_to_vjp, None), "x, shape", _LINEAR),
    "flip": ((flip_vjp,), "x", _LINEAR),
    "concat": ((concat_vjp,), "arrays", _LINEAR),
    "stack": ((stack_vjp,), "arrays", _LINEAR),
    "where": ((None, where_vjp(1), where_vjp(2)), "condition, x1, x2",
              {"multilinear": [(1, 2)], "masks": True}),
    "clip": ((clip_vjp, None, None), "x, min, max", {"masks": True}),
    "expand_dims": ((expand_dims_vjp,), "x", _LINEAR),
    "squeeze": ((squeeze_vjp, None), "x, axis", _LINEAR),
}
