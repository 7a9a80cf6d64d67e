"""Direct tests of the NumPy derivative rules (transpile/rules/numpy_.py), no compiler.

Every rule is checked against central finite differences: for a random cotangent g of the
result and a random direction dx of one argument, <contribution, dx> must match
d/dh <g, fn(..., x + h dx, ...)> (h = 1e-6, float64). Zero rules are checked to be locally
constant. A coverage test makes sure every registered numpy rule has at least one case.
"""
import ast
import math
import operator

import numpy as np
import pytest

from transpile.rules import lookup, supported
from transpile.rules import numpy_ as NR
from transpile.runtime import unbroadcast

la = np.linalg
rng = np.random.default_rng(1234)
H = 1e-6


def N(*shape):
    return rng.normal(size=shape)


def U(*shape, lo=-0.9, hi=0.9):
    return rng.uniform(lo, hi, size=shape)


def P(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


def SPD(n, batch=()):
    b = rng.normal(size=batch + (n, n))
    return b @ np.swapaxes(b, -1, -2) + n * np.eye(n)


# ----------------------------------------------------------------------------------------
# generic machinery
# ----------------------------------------------------------------------------------------
def is_float_leaf(x):
    if isinstance(x, bool):
        return False
    if isinstance(x, float):
        return True
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f"


def differentiable(x):
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(differentiable(e) for e in x)
    return is_float_leaf(x)


def rand_like(x):
    if isinstance(x, (list, tuple)):
        return [rand_like(e) for e in x]
    if isinstance(x, float):
        return float(rng.normal())
    return rng.normal(size=np.shape(x))


def perturb(x, dx, h):
    if isinstance(x, (list, tuple)):
        return type(x)(perturb(e, d, h) for e, d in zip(x, dx))
    if isinstance(x, float):
        return x + h * dx
    return np.asarray(x + h * dx, dtype=x.dtype)


def make_g(ans, zero_outputs=()):
    if isinstance(ans, (list, tuple)):
        return [0.0 if k in zero_outputs else make_g(a) for k, a in enumerate(ans)]
    a = np.asarray(ans)
    if a.dtype.kind != "f":
        return 0.0
    if a.ndim == 0:
        return float(rng.normal())
    return rng.normal(size=a.shape)


def dot(g, y):
    """<g, y> for (nested) cotangents; 0.0 entries and non-float values contribute 0."""
    if g is None or (type(g) is float and g == 0.0 and isinstance(y, (list, tuple))):
        return 0.0
    if isinstance(y, (list, tuple)):
        return sum(dot(gk, yk) for gk, yk in zip(g, y))
    ya = np.asarray(y)
    if ya.dtype.kind != "f":
        return 0.0
    return float(np.sum(np.asarray(g) * ya))


def absdot(g, y):
    if isinstance(y, (list, tuple)):
        if not isinstance(g, (list, tuple)):
            return 0.0
        return sum(absdot(gk, yk) for gk, yk in zip(g, y))
    ya = np.asarray(y)
    if ya.dtype.kind != "f" or g is None:
        return 0.0
    return float(np.sum(np.abs(np.asarray(g) * ya)))


def check_structure(c, x):
    """A contribution has the structure, shape and dtype of its argument."""
    if isinstance(x, (list, tuple)):
        assert isinstance(c, list) and len(c) == len(x), (type(c), x)
        for ck, xk in zip(c, x):
            check_structure(ck, xk)
    elif isinstance(x, float) and not isinstance(x, np.generic):
        assert type(c) is float, type(c)
    else:
        assert np.shape(c) == np.shape(x), (np.shape(c), np.shape(x))
        assert np.asarray(c).dtype == np.asarray(x).dtype, (np.asarray(c).dtype, x.dtype)


def same(a, b):
    """Identical (nested) contributions, nan equal to nan."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def contribution(rule, i, g, ans, args, kw):
    if rule.vjps is not None:
        fn = rule.vjps[i] if i < len(rule.vjps) else None
        return None if fn is None else fn(g, ans, *args, **kw)
    srcs = rule.partial_sources()
    if i >= len(srcs) or srcs[i] is None:
        return None
    env = dict(rule.env)
    env.update(rule.defaults)        # parameters left out: their declared defaults
    env.update(zip(rule.params, args))
    env.update((k, v) for k, v in kw.items() if k in rule.params)
    p = eval(srcs[i], env)
    return unbroadcast(p * g, args[i])


def run_case(case):
    fn, args, kw = case["fn"], list(case["args"]), case.get("kw", {})
    rule = lookup(fn, len(args))
    assert rule is not None and not rule.zero
    call = case.get("call", fn)
    ans = call(*args, **kw)
    g = case["g"](ans) if "g" in case else make_g(ans, case.get("zero_outputs", ()))
    wrt = case.get("wrt")
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if differentiable(a)]
    checked = 0
    for i in wrt:
        c = contribution(rule, i, g, ans, args, kw)
        if c is None:
            continue
        check_structure(c, args[i])
        if rule.vjps is not None and not rule.needs_ans:
            # the rule declares that it does not read `ans`: it gets None there
            c_none = contribution(rule, i, g, None, args, kw)
            assert same(c_none, c), "the rule reads `ans` but does not declare it (needs_ans)"
        dx = rand_like(args[i])

        def F(h):
            a2 = list(args)
            a2[i] = perturb(args[i], dx, h)
            return dot(g, call(*a2, **kw))
        fd = (F(H) - F(-H)) / (2 * H)
        lhs = dot(c, dx)
        scale = absdot(g, ans)
        tol = 1e-6 * (abs(fd) + abs(lhs)) + 1e-8 * (1 + scale)
        assert abs(lhs - fd) <= tol, (f"arg {i}: vjp {lhs!r} vs finite difference {fd!r}")
        checked += 1
    assert checked, "no argument was checked"


# ----------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------
CASES = []


def case(fn, *args, _id=None, **kw):
    opts = kw.pop("_opts", {})
    c = dict(fn=fn, args=args, kw=kw, **opts)
    c["id"] = _id or getattr(fn, "__name__", str(fn))
    CASES.append(c)


# --- elementwise unary --------------------------------------------------------------------
DOMAIN = {np.arcsin: U, np.arccos: U, np.arctanh: U,
          np.arccosh: lambda *s: 1.5 + P(*s), np.log: P, np.log2: P, np.log10: P,
          np.log1p: P, np.sqrt: P, np.reciprocal: P, np.cbrt: P}
for fn in NR.UNARY:
    dom = DOMAIN.get(fn, N)
    case(fn, dom(3, 4))
    case(fn, float(dom(1)[0]), _id=fn.__name__ + "-scalar")
for fn in (np.absolute, np.real, np.imag, np.angle, np.conjugate,   # (complex parts)
           np.real_if_close):
    case(fn, N(3, 4))
    case(fn, float(N(1)[0]), _id=fn.__name__ + "-scalar")
case(np.sinc, np.array([0.0, 0.3, -1.2, 2.5]), _id="sinc-zero")
case(np.cbrt, -P(5), _id="cbrt-neg")

# --- elementwise binary -------------------------------------------------------------------
BDOM = {np.power: (P, N), np.float_power: (P, N), np.divide: (N, P),
        np.remainder: (lambda *s: rng.uniform(5.2, 5.8, s), lambda *s: rng.uniform(2.0, 2.5, s)),
        np.fmod: (lambda *s: -rng.uniform(5.2, 5.8, s), lambda *s: rng.uniform(2.0, 2.5, s))}
for fn in list(NR.BINARY) + [np.arctan2]:
    if fn is np.ldexp:
        continue
    dx_, dy_ = BDOM.get(fn, (N, N))
    case(fn, dx_(3, 4), dy_(3, 4))
    case(fn, dx_(3, 4), dy_(4), _id=fn.__name__ + "-bcast")
    case(fn, dx_(2, 1, 3), dy_(4, 1), _id=fn.__name__ + "-bcast2")
    case(fn, float(dx_(1)[0]), dy_(3), _id=fn.__name__ + "-scalar")
    case(fn, float(dx_(1)[0]), float(dy_(1)[0]), _id=fn.__name__ + "-scalars")
case(np.remainder, -rng.uniform(5.2, 5.8, 4), rng.uniform(2.0, 2.5, 4), _id="remainder-neg")
case(np.ldexp, N(3, 4), np.array([1, -2, 3, 0]))
case(np.where, N(3, 4) > 0, N(3, 4), N(4))
case(np.where, N(3, 4) > 0, 2.5, N(3, 4), _id="where-scalar")

# --- reductions ---------------------------------------------------------------------------
AXES = [{}, {"axis": 1}, {"axis": -1, "keepdims": True}, {"axis": (0, 2)},
        {"axis": (0, 2), "keepdims": True}, {"axis": None, "keepdims": True}]
X345 = N(3, 4, 5)
XNAN = N(3, 4, 5)
XNAN[0, 1, 2] = XNAN[2, 3, 0] = XNAN[1, 0, 4] = np.nan
for fn in (np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.ptp, np.var,
           np.std, np.median, np.nansum, np.nanmean, np.nanprod, np.nanmax, np.nanmin,
           np.nanvar, np.nanstd):
    x = XNAN if fn.__name__.startswith("nan") else X345
    for kw in AXES:
        case(fn, x, _id=f"{fn.__name__}-{kw}", **kw)
case(np.sum, N(3, 4), 0, _id="sum-positional-axis")
case(np.sum, [1.5, -2.0, 0.5], _id="sum-list")
case(np.mean, N(4, 3), axis=0, where=N(4, 3) > -0.5, _id="mean-where")
case(np.var, X345, axis=1, ddof=1, _id="var-ddof")
case(np.std, X345, axis=(0, 2), ddof=1, keepdims=True, _id="std-ddof")
XZ = N(3, 4)
XZ[0, 1] = 0.0
XZ[1, 0] = XZ[1, 2] = 0.0
for kw in ({}, {"axis": 1}, {"axis": 0, "keepdims": True}):
    case(np.prod, XZ, _id=f"prod-zeros-{kw}", **kw)
    case(np.cumprod, XZ, _id=f"cumprod-zeros-{kw}", **({"axis": kw.get("axis", None)}))
for fn in (np.cumsum, np.cumprod, np.nancumsum, np.nancumprod):
    x = XNAN[:, :, :3] if fn.__name__.startswith("nan") else X345[:, :, :3]
    for kw in ({}, {"axis": 1}, {"axis": -1}):
        case(fn, x, _id=f"{fn.__name__}-{kw}", **kw)
for fn in (np.cumulative_sum, np.cumulative_prod):
    case(fn, N(3, 4), axis=1)
    case(fn, N(5), include_initial=True, _id=fn.__name__ + "-initial")
case(np.median, N(4, 6), axis=1, _id="median-even")
case(np.average, X345, axis=1)
case(np.average, N(3, 4), 1, N(3, 4) ** 2 + 0.5, _id="average-weights")
case(np.average, N(3, 4), 0, P(3), _id="average-weights-1d")
case(np.average, N(3, 4), 0, P(3), True, _id="average-returned")
case(np.trapezoid, N(3, 5), dx=0.5)
case(np.trapezoid, N(3, 5), np.sort(N(5)), _id="trapezoid-x")
case(np.trapezoid, N(5, 3), np.sort(N(5)), axis=0, _id="trapezoid-x-axis0")

# --- linear algebra -----------------------------------------------------------------------
for a, b in [(N(3), N(3)), (N(2, 3), N(3)), (N(3), N(3, 4)), (N(2, 3), N(3, 4)),
             (N(2, 3, 4), N(4, 5)), (N(2, 3, 4), N(5, 4, 2)), (1.5, N(3)), (N(2, 2), 0.5)]:
    case(np.dot, a, b, _id=f"dot-{np.shape(a)}-{np.shape(b)}")
for a, b in [(N(2, 3), N(3, 4)), (N(3), N(3, 4)), (N(2, 3), N(3)), (N(3), N(3)),
             (N(5, 2, 3), N(3, 4)), (N(5, 1, 2, 3), N(4, 3, 2)), (N(3), N(5, 3, 2))]:
    case(np.matmul, a, b, _id=f"matmul-{np.shape(a)}-{np.shape(b)}")
    case(ast.MatMult, a, b, _id=f"@-{np.shape(a)}-{np.shape(b)}",
         _opts={"call": operator.matmul})
case(la.matmul, N(2, 3), N(3, 4))
for subs, shapes in [("ij,jk->ik", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ii->", [(3, 3)]),
                     ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]), ("ij,j->i", [(2, 3), (3,)]),
                     ("...ij,...jk->...ik", [(5, 2, 3), (5, 3, 4)]),
                     ("ij,jk", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
                     ("ij,kl->ijkl", [(2, 3), (2, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
                     ("...i,...i->...", [(3, 4), (4,)]), ("ij->ji", [(2, 3)]),
                     ("iij->ji", [(3, 3, 2)]), ("ij,i->ij", [(2, 3), (2,)])]:
    case(np.einsum, subs, *[N(*s) for s in shapes], _id=f"einsum-{subs}")
for axes, sb in ((1, (2, 3)), (2, (4, 2, 3)), (([1, 0], [0, 1]), (4, 3, 5)), (0, (2,)),
                 (([2], [-1]), (3, 2))):
    case(np.tensordot, N(3, 4, 2), N(*sb), _id=f"tensordot-{axes}", axes=axes)
case(la.tensordot, N(3, 4), N(4, 2), axes=1)
for a, b in [(N(3), N(3)), (N(2, 3), N(4, 3)), (N(2, 3), N(3)), (2.0, N(3))]:
    case(np.inner, a, b, _id=f"inner-{np.shape(a)}-{np.shape(b)}")
case(np.outer, N(3), N(4))
case(np.outer, N(2, 2), N(3), _id="outer-flat")
case(la.outer, N(3), N(4))
case(np.vdot, N(2, 3), N(2, 3))
case(np.trace, N(4, 4))
case(np.trace, N(3, 4), 1, _id="trace-offset")
case(np.trace, N(2, 3, 3), axis1=1, axis2=2, _id="trace-axes")
case(la.trace, N(2, 3, 3))
case(la.trace, N(3, 4), offset=-1, _id="linalg.trace-offset")
case(np.diag, N(4))
case(np.diag, N(4), -1, _id="diag-k")
case(np.diag, N(3, 4), 1, _id="diag-2d")
case(np.diagflat, N(2, 2), 1)
case(np.diagonal, N(3, 4, 5), 1, 2, 0)
case(la.diagonal, N(2, 3, 3))
case(np.tril, N(4, 5), -1)
case(np.triu, N(4, 5), 1)
case(np.triu, N(2, 4, 4), _id="triu-batch")
for a, b in [(N(2, 3), N(3, 2)), (N(2), N(3)), (N(2, 2), N(3))]:
    case(np.kron, a, b, _id=f"kron-{np.shape(a)}-{np.shape(b)}")
case(np.cross, N(3), N(3))
case(np.cross, N(4, 3), N(3), _id="cross-bcast")
case(np.cross, N(3, 4), N(3, 4), axis=0, _id="cross-axis")
case(la.cross, N(4, 3), N(4, 3))
case(la.solve, SPD(3) + N(3, 3), N(3))
case(la.solve, SPD(3) + N(3, 3), N(3, 2), _id="solve-matrix")
case(la.solve, SPD(3, (2,)), N(2, 3, 2), _id="solve-batch")
case(la.inv, SPD(3) + N(3, 3))
case(la.inv, SPD(3, (2,)), _id="inv-batch")
case(la.det, N(3, 3))
case(la.det, N(2, 3, 3), _id="det-batch")
case(la.slogdet, N(3, 3), _opts={"zero_outputs": (0,)})
case(la.slogdet, -SPD(3), _id="slogdet-neg", _opts={"zero_outputs": (0,)})
case(la.cholesky, SPD(3))
case(la.cholesky, SPD(3, (2,)), _id="cholesky-batch")
case(la.cholesky, SPD(3), upper=True, _id="cholesky-upper")
case(la.eigh, SPD(4))
case(la.eigh, SPD(3), _id="eigh-w-only", _opts={"zero_outputs": (1,)})
case(la.eigh, SPD(3), _id="eigh-v-only", _opts={"zero_outputs": (0,)})
case(la.eigh, SPD(3), UPLO="U", _id="eigh-upper")
case(la.eigvalsh, SPD(4))
case(la.svdvals, N(3, 4))
case(la.pinv, N(3, 4))
case(la.pinv, N(4, 3), _id="pinv-tall")
case(la.pinv, SPD(3), _id="pinv-square")
case(la.matrix_power, N(3, 3), 3)
case(la.matrix_power, N(3, 3), 0, _id="matrix_power-0")
case(la.matrix_power, SPD(3), -2, _id="matrix_power-neg")
case(la.multi_dot, [N(2, 3), N(3, 4), N(4, 2)])
case(la.multi_dot, [N(3), N(3, 4), N(4)], _id="multi_dot-vectors")
case(la.multi_dot, [N(3), N(3, 4), N(4, 2)], _id="multi_dot-first-vector")
for x, kw in [(N(5), {}), (N(5), {"ord": 1}), (N(5), {"ord": np.inf}), (N(5), {"ord": -np.inf}),
              (N(5), {"ord": 3}), (N(3, 4), {}), (N(3, 4), {"ord": "fro"}),
              (N(3, 4), {"ord": "nuc"}), (N(3, 4), {"ord": 2}), (N(3, 4), {"ord": -2}),
              (N(3, 4), {"ord": 1}), (N(3, 4), {"ord": np.inf}), (N(3, 4), {"ord": -1}),
              (N(3, 4), {"axis": 1}), (N(3, 4), {"axis": 0, "keepdims": True}),
              (N(3, 4), {"axis": (0, 1), "keepdims": True}), (N(3, 4), {"keepdims": True}),
              (N(2, 3, 4), {"axis": (1, 2), "ord": "fro"}), (N(2, 3, 4), {"axis": (2, 0), "ord": 2})]:
    case(la.norm, x, _id=f"norm-{x.shape}-{kw}", **kw)
for kw in ({}, {"axis": 1}, {"axis": (0, 2), "keepdims": True}, {"ord": 1}, {"ord": np.inf, "axis": -1},
           {"keepdims": True}):
    case(la.vector_norm, N(2, 3, 4), _id=f"vector_norm-{kw}", **kw)
for kw in ({}, {"ord": "nuc"}, {"ord": 2, "keepdims": True}, {"ord": 1}):
    case(la.matrix_norm, N(2, 3, 4), _id=f"matrix_norm-{kw}", **kw)
case(np.vecdot, N(3, 4), N(4))
case(np.vecdot, N(3, 4), N(3, 4), axis=0, _id="vecdot-axis")
case(la.vecdot, N(3, 4), N(4))
case(np.matvec, N(2, 3, 4), N(4))
case(np.vecmat, N(3), N(2, 3, 4))
case(np.matrix_transpose, N(2, 3, 4))
case(la.matrix_transpose, N(3, 4))
case(np.polyval, N(4), N(5))
case(np.polyval, [1.5, -2.0, 0.5], 0.7, _id="polyval-scalar")
for a, v in [(N(5), N(3)), (N(3), N(5)), (N(4), N(4)), (N(6), N(3))]:
    for mode in ("full", "same", "valid"):
        case(np.convolve, a, v, mode, _id=f"convolve-{a.size}-{v.size}-{mode}")
        case(np.correlate, a, v, mode, _id=f"correlate-{a.size}-{v.size}-{mode}")
case(np.interp, np.array([-0.5, 0.3, 1.1, 2.5, 3.7, 5.0]), np.array([0.0, 1.0, 2.0, 3.5, 4.0]),
     N(5))
case(np.interp, rng.uniform(0, 4, 6), np.array([0.0, 1.0, 2.0, 3.5, 4.0]), N(5), -1.0, 2.0,
     _id="interp-left-right")

# --- shapes ---------------------------------------------------------------------------------
case(np.reshape, N(3, 4), (2, 6))
case(np.reshape, N(3, 4), (-1,), _id="reshape-1")
case(np.reshape, N(3, 4), (2, 6), order="F", _id="reshape-F")
case(np.expand_dims, N(3, 4), 1)
case(np.expand_dims, N(3), (0, 2), _id="expand_dims-tuple")
case(np.squeeze, N(1, 3, 1, 4))
case(np.squeeze, N(1, 3, 1, 4), 2, _id="squeeze-axis")
case(np.ravel, N(3, 4))
case(np.ravel, N(3, 4), "F", _id="ravel-F")
case(np.transpose, N(2, 3, 4))
case(np.transpose, N(2, 3, 4), (2, 0, 1), _id="transpose-axes")
case(np.permute_dims, N(2, 3, 4), (1, 2, 0))
case(np.swapaxes, N(2, 3, 4), 0, 2)
case(np.moveaxis, N(2, 3, 4), (0, 1), (2, 0))
case(np.rollaxis, N(2, 3, 4), 2)
case(np.rollaxis, N(2, 3, 4), 0, 3, _id="rollaxis-start")
for fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    case(fn, N(3))
    case(fn, 1.5, _id=fn.__name__ + "-scalar")
    case(fn, N(2, 3), N(4), _id=fn.__name__ + "-two")
case(np.concatenate, [N(2, 3), N(4, 3)])
case(np.concatenate, [N(2, 3), N(2, 1)], axis=1, _id="concatenate-axis1")
case(np.concatenate, [N(2, 3), N(4)], axis=None, _id="concatenate-None")
case(np.concatenate, (N(2, 3), N(2, 2)), -1, _id="concatenate-tuple")
case(np.stack, [N(2, 3), N(2, 3), N(2, 3)])
case(np.stack, [N(2, 3), N(2, 3)], axis=-1, _id="stack-last")
case(np.hstack, [N(3), N(2)])
case(np.hstack, [N(2, 3), N(2, 1)], _id="hstack-2d")
case(np.vstack, [N(3), N(2, 3)])
if hasattr(np, "row_stack"):           # removed in NumPy 2.5
    case(np.row_stack, [N(3), N(2, 3)])
case(np.dstack, [N(3), N(3)])
case(np.dstack, [N(2, 3), N(2, 3, 2)], _id="dstack-mixed")
case(np.column_stack, [N(3), N(3, 2)])
case(np.block, [[N(2, 2), N(2, 3)], [N(1, 2), N(1, 3)]])
case(np.block, [N(2), N(3)], _id="block-1d")
case(np.split, N(6, 4), 3)
case(np.split, N(6, 4), [1, 4], _id="split-indices", _opts={"zero_outputs": (1,)})
case(np.split, N(6, 4), 2, axis=1, _id="split-axis")
case(np.array_split, N(7, 2), 3)
case(np.hsplit, N(2, 4), 2)
case(np.hsplit, N(6), 3, _id="hsplit-1d")
case(np.vsplit, N(4, 2), 2)
case(np.dsplit, N(2, 2, 4), [1], _opts={"zero_outputs": (0,)})
case(np.unstack, N(3, 4), axis=1, _opts={"zero_outputs": (2,)})
case(np.tile, N(2, 3), (2, 1, 2))
case(np.tile, N(3), 2, _id="tile-int")
case(np.repeat, N(2, 3), 2, axis=1)
case(np.repeat, N(2, 3), np.array([1, 0, 2]), axis=1, _id="repeat-array")
case(np.repeat, N(2, 3), 2, _id="repeat-flat")
case(np.flip, N(2, 3))
case(np.flip, N(2, 3), 1, _id="flip-axis")
case(np.fliplr, N(2, 3))
case(np.flipud, N(2, 3))
case(np.rot90, N(2, 3))
case(np.rot90, N(2, 3, 4), 3, (1, 2), _id="rot90-axes")
case(np.roll, N(5), 2)
case(np.roll, N(3, 4), (1, -1), (0, 1), _id="roll-axes")
case(np.pad, N(3, 4), ((1, 2), (0, 1)))
case(np.pad, N(3, 4), 1, _id="pad-int")
case(np.pad, N(3, 4), 2, constant_values=3.0, _id="pad-constant-value")
for mode in ("edge", "reflect", "wrap", "symmetric"):
    case(np.pad, N(3, 4), ((2, 1), (3, 2)), mode, _id=f"pad-{mode}")
case(np.broadcast_to, N(3), (2, 3))
case(np.broadcast_to, N(3, 1), (2, 3, 4), _id="broadcast_to-2")
case(np.broadcast_arrays, N(3, 1), N(4))
case(np.broadcast_arrays, N(3, 1), N(4), N(2, 1, 1), _id="broadcast_arrays-3",
     _opts={"zero_outputs": (1,)})
case(np.resize, N(2, 3), (4, 4))
for fn in (np.copy, np.asarray, np.asanyarray, np.ascontiguousarray, np.asfortranarray,
           np.array, np.require):
    case(fn, N(3, 4))
case(np.asarray, [1.5, -0.5, 2.0], _id="asarray-list")
case(np.array, [N(3), N(3)], _id="array-list-of-arrays")
case(np.array, [[1.0, 2.0], [3.0, -1.0]], _id="array-nested")
case(np.array, (0.5, N(2)[0]), _id="array-tuple")
case(np.ndarray.astype, N(3, 4), np.float64)
case(np.ndarray.flatten, N(3, 4))
case(np.ndarray.flatten, N(3, 4), "F", _id="flatten-F")
case(np.ndarray.ravel, N(3, 4))
case(np.ndarray.copy, N(3, 4))
case(np.ndarray.view, N(3, 4))
case(np.ndarray.transpose, N(2, 3, 4), 2, 0, 1)
case(np.ndarray.transpose, N(2, 3))
case(np.ndarray.item, N(3, 4), 5)
case(np.ndarray.item, N(3, 4), (1, 2), _id="item-tuple")
case(np.ndarray.item, N(1), _id="item-single")
case(np.ndarray.tolist, N(2, 3))
case(np.meshgrid, N(3), N(4))
case(np.meshgrid, N(3), N(4), N(2), indexing="ij", _id="meshgrid-ij",
     _opts={"zero_outputs": (1,)})
case(np.meshgrid, N(3), N(4), sparse=True, _id="meshgrid-sparse")

# --- indexing helpers -----------------------------------------------------------------------
case(np.take, N(3, 4), np.array([0, 2, 2]), axis=1)
case(np.take, N(3, 4), np.array([[0, 11], [5, 5]]), _id="take-flat")
case(np.take_along_axis, N(3, 4), np.array([[0, 1], [3, 3], [2, 0]]), axis=1)
case(np.compress, np.array([True, False, True]), N(3, 4), axis=0)
case(np.extract, N(3, 4) > 0, N(3, 4))
case(np.delete, N(3, 4), [1], axis=1)
case(np.insert, N(3, 4), 1, N(3), axis=1)
case(np.insert, N(5), [1, 3], N(2), _id="insert-flat")
case(np.append, N(2, 3), N(1, 3), axis=0)
case(np.append, N(2, 3), N(4), _id="append-flat")
case(np.choose, np.array([[0, 1, 2], [2, 0, 1]]), [N(2, 3), N(3), N(2, 3)])
case(np.select, [N(3, 4) > 0.5, N(3, 4) < -0.5], [N(3, 4), N(4)], N(3, 4))
case(np.sort, N(3, 4))
case(np.sort, N(3, 4), 0, _id="sort-axis0")
case(np.sort, N(3, 4), None, _id="sort-None")
case(np.partition, N(8), 3)
case(np.partition, N(3, 6), 2, axis=1, _id="partition-axis")
case(np.clip, N(3, 4), -0.5, 0.5)
case(np.clip, N(3, 4), U(4, lo=-1, hi=-0.2), 0.6, _id="clip-array-lo")
case(np.clip, N(3, 4), None, U(3, 1, lo=0.2, hi=1), _id="clip-None")
case(np.clip, N(3, 4), min=-0.2, _id="clip-kw")
case(np.nan_to_num, P(4) * np.array([1.0, np.nan, 1.0, np.nan]), _id="nan_to_num")
case(np.nan_to_num, P(2, 2) * np.array([[1.0, np.inf], [np.nan, -np.inf]]), nan=1.5,
     posinf=3.0, neginf=-2.0, _id="nan_to_num-keywords")
case(np.gradient, N(5))
case(np.gradient, N(4, 3), 0.5, axis=1, edge_order=2, _id="gradient-spacing-edge2")
case(np.gradient, N(4), np.array([0.0, 0.5, 1.5, 3.0]), _id="gradient-coordinates")
case(np.float64, N(3, 2))
case(np.diff, N(3, 5))
case(np.diff, N(4, 3), 2, 0, _id="diff-n2")
case(np.diff, N(3, 5), prepend=0.5, append=N(3, 2), _id="diff-prepend")
case(np.ediff1d, N(2, 3))
case(np.ediff1d, N(5), to_begin=[1.0, 2.0], to_end=3.0, _id="ediff1d-ends")
case(np.bincount, np.array([0, 2, 2, 4]), N(4))
case(np.real, N(3))
case(np.conjugate, N(3))

# --- creation ---------------------------------------------------------------------------------
case(np.full, (2, 3), 2.5)
case(np.full, (2, 3), N(3), _id="full-array")
case(np.full_like, N(2, 3), 3.5)
case(np.linspace, 0.5, 2.0, 5)
case(np.linspace, 0.5, 2.0, 5, False, _id="linspace-noend")
case(np.linspace, N(3), N(3), 4, axis=1, _id="linspace-arrays")
case(np.linspace, 0.5, 2.0, 5, retstep=True, _id="linspace-retstep")
case(np.linspace, 1.5, N(2), 1, _id="linspace-one")

# --- numpy.linalg: svd, qr, lstsq, eig, tensorinv, tensorsolve, cond (their own generator,
# so that the cases above and below keep their numbers)
_lrng = np.random.default_rng(4321)


def _LN(*shape):
    return _lrng.normal(size=shape)


def _real_spectrum(n, batch=()):
    s = np.eye(n) + 0.3 * _lrng.normal(size=batch + (n, n))
    d = np.arange(1.0, n + 1) + 0.2 * _lrng.normal(size=batch + (n,))
    return s * d[..., None, :] @ np.linalg.inv(s)


for _shape in ((3, 4), (4, 3), (3, 3), (2, 4, 3)):
    case(la.svd, _LN(*_shape), full_matrices=False, _id=f"svd-{_shape}")
    case(la.qr, _LN(*_shape), _id=f"qr-{_shape}")
case(la.svd, _LN(3, 3), _id="svd-full-square")
case(la.svd, _LN(4, 3), _id="svd-full-s-only", _opts={"zero_outputs": (0, 2)})
case(la.svd, _LN(2, 3, 4), compute_uv=False, _id="svd-only-s")
case(la.qr, _LN(4, 3), mode="r", _id="qr-r")
case(la.qr, _LN(3, 4), mode="complete", _id="qr-complete-wide")
case(la.qr, _LN(4, 3), mode="complete", _id="qr-complete-tall-r",
     _opts={"zero_outputs": (0,)})
case(la.lstsq, _LN(5, 3), _LN(5), _id="lstsq-tall")
case(la.lstsq, _LN(5, 3), _LN(5, 2), _id="lstsq-tall-2d")
case(la.lstsq, _LN(2, 4), _LN(2), rcond=None, _id="lstsq-wide")
case(la.eig, _real_spectrum(3))
case(la.eig, _real_spectrum(3, (2,)), _id="eig-batch")
case(la.eigvals, _real_spectrum(4))
case(la.tensorinv, (2 * np.eye(6) + 0.3 * _LN(6, 6)).reshape(2, 3, 6), ind=2)
case(la.tensorsolve, (2 * np.eye(6) + 0.3 * _LN(6, 6)).reshape(2, 3, 2, 3), _LN(2, 3))
case(la.tensorsolve, np.transpose((2 * np.eye(6) + 0.3 * _LN(6, 6)).reshape(2, 3, 3, 2),
                                  (2, 0, 3, 1)), _LN(2, 3), axes=(0, 2), _id="tensorsolve-axes")
for _p in (None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf):
    case(la.cond, 2 * np.eye(3) + 0.4 * _LN(2, 3, 3), _p, _id=f"cond-{_p}")
case(la.cond, _LN(3, 5), _id="cond-wide")
case(np.real_if_close, _LN(4))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("c", CASES, ids=[c["id"] for c in CASES])
def test_rule_matches_finite_differences(c):
    run_case(c)


# ----------------------------------------------------------------------------------------
# zero rules: registered as zero and locally constant
# ----------------------------------------------------------------------------------------
XA, YA = N(3, 4), N(3, 4)
IA, IB = np.array([3, 5, 12]), np.array([4, 6, 9])
M33 = N(3, 3)
ZERO_CASES = [
    (np.sign, XA), (np.floor, XA), (np.ceil, XA), (np.trunc, XA), (np.rint, XA),
    (np.round, XA), (np.around, XA, 1), (np.fix, XA), (np.signbit, XA), (np.isnan, XA),
    (np.isinf, XA), (np.isfinite, XA), (np.isneginf, XA), (np.isposinf, XA), (np.isreal, XA),
    (np.iscomplex, XA), (np.isrealobj, XA), (np.iscomplexobj, XA), (np.isscalar, 1.0),
    (np.greater, XA, YA), (np.greater_equal, XA, YA), (np.less, XA, YA),
    (np.less_equal, XA, YA), (np.equal, XA, YA), (np.not_equal, XA, YA),
    (np.logical_and, XA, YA), (np.logical_or, XA, YA), (np.logical_xor, XA, YA),
    (np.logical_not, XA), (np.argmax, XA), (np.argmin, XA, 1), (np.nanargmax, XA),
    (np.nanargmin, XA), (np.argsort, XA), (np.argpartition, XA, 2), (np.argwhere, XA),
    (np.nonzero, XA), (np.where, XA > 0), (np.flatnonzero, XA), (np.count_nonzero, XA),
    (np.searchsorted, np.sort(XA.ravel()), 0.1), (np.digitize, XA, np.array([-1.0, 0.0, 1.0])),
    (np.lexsort, (XA[0], XA[1])), (np.shape, XA), (np.ndim, XA), (np.size, XA),
    (np.zeros, (2, 3)), (np.ones, 3), (np.empty, 2), (np.zeros_like, XA), (np.ones_like, XA),
    (np.empty_like, XA), (np.eye, 3), (np.identity, 3), (np.tri, 3), (np.arange, 3),
    (np.indices, (2, 3)), (np.tril_indices, 3), (np.triu_indices, 3), (np.diag_indices, 3),
    (np.tril_indices_from, M33), (np.triu_indices_from, M33),
    (np.ravel_multi_index, (np.array([0, 1]), np.array([1, 2])), (3, 4)),
    (np.unravel_index, np.array([3, 5]), (3, 4)), (np.isclose, XA, YA), (np.allclose, XA, YA),
    (np.array_equal, XA, YA), (np.array_equiv, XA, YA), (np.floor_divide, XA, P(3, 4)),
    (np.heaviside, XA, 0.5), (np.any, XA > 0), (np.all, XA > 0), (np.isin, XA, YA),
    (np.bitwise_and, IA, IB), (np.bitwise_or, IA, IB), (np.bitwise_xor, IA, IB),
    (np.invert, IA), (np.left_shift, IA, 1), (np.right_shift, IA, 1), (np.gcd, IA, IB),
    (np.lcm, IA, IB), (np.spacing, XA), (np.may_share_memory, XA, YA),
    (np.shares_memory, XA, YA), (np.broadcast_shapes, (2, 1), (3,)), (np.result_type, XA, IA),
    (np.can_cast, XA.dtype, np.float32), (la.matrix_rank, M33),
] + [(getattr(np, t), XA) for t in NR._INT_TYPES if hasattr(np, t)]


@pytest.mark.parametrize("zc", ZERO_CASES, ids=[z[0].__name__ for z in ZERO_CASES])
def test_zero_rules(zc):
    fn, args = zc[0], list(zc[1:])
    rule = lookup(fn, len(args))
    assert rule is not None and rule.zero, rule
    ans = fn(*args)
    for i, a in enumerate(args):
        if not (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
            continue
        dx = rng.normal(size=a.shape)
        for h in (H, -H):
            a2 = list(args)
            a2[i] = a + h * dx
            out = fn(*a2)
            if isinstance(ans, np.ndarray) and ans.dtype.kind == "f" and \
                    fn not in (np.empty, np.empty_like):
                np.testing.assert_array_equal(out, ans)


# ----------------------------------------------------------------------------------------
# every registered numpy rule has a test
# ----------------------------------------------------------------------------------------
def test_every_numpy_rule_is_tested():
    covered = set()
    for c in CASES:
        covered.add(lookup(c["fn"], len(c["args"])).name)
    for z in ZERO_CASES:
        covered.add(lookup(z[0], len(z) - 1).name)
    names = [n for n in supported() if n.startswith("numpy") and not n.startswith(
        "numpy.fft")]                   # (numpy.fft: tests/test_fft.py)
    assert len(names) >= 200
    missing = sorted(set(names) - covered)
    assert not missing, missing


def test_matmul_operator_rule():
    assert lookup(ast.MatMult).name == "@"


# ----------------------------------------------------------------------------------------
# conventions
# ----------------------------------------------------------------------------------------
def test_max_ties_split_evenly():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    r = lookup(np.max).vjps[0](np.array([1.0, 6.0]), np.max(x, axis=1), x, axis=1)
    np.testing.assert_allclose(r, [[0, 0.5, 0.5], [3.0, 0, 3.0]])
    r = lookup(np.amin).vjps[0](1.0, np.amin(x), x)
    np.testing.assert_allclose(r, [[0, 0, 0], [0, 1.0, 0]])


def test_maximum_ties_go_to_first_argument():
    rule = lookup(np.maximum)
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 3.0, 2.0])
    g = np.ones(3)
    env = dict(rule.env, x=x, y=y)
    gx = eval(rule.partial_sources()[0], env) * g
    gy = eval(rule.partial_sources()[1], env) * g
    np.testing.assert_array_equal(gx, [1, 0, 1])
    np.testing.assert_array_equal(gy, [0, 1, 0])


def test_abs_at_zero():
    rule = lookup(np.abs)
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(eval(rule.partial_sources()[0], dict(rule.env, x=x)),
                                  [-1, 0, 1])


def test_prod_with_zeros_exact():
    x = np.array([2.0, 0.0, 3.0, 0.0])
    r = lookup(np.prod).vjps[0](1.0, 0.0, x)
    np.testing.assert_array_equal(r, [0, 0, 0, 0])
    x = np.array([2.0, 0.0, 3.0])
    np.testing.assert_array_equal(lookup(np.prod).vjps[0](1.0, 0.0, x), [0, 6, 0])


def test_float32_stays_float32():
    x = N(3, 4).astype(np.float32)
    y = N(4).astype(np.float32)
    for fn, args, kw in [(np.sum, (x,), {"axis": 1}), (np.mean, (x,), {}),
                         (np.max, (x,), {"axis": 0}), (np.matmul, (x, y), {}),
                         (np.reshape, (x, (12,)), {}), (np.concatenate, ([x, x],), {}),
                         (np.sort, (x,), {}), (np.take, (x, [1, 2]), {"axis": 1}),
                         (la.norm, (x,), {}), (np.var, (x,), {"axis": 0}),
                         (np.ndarray.astype, (x, np.float64), {})]:
        rule = lookup(fn, len(args))
        ans = fn(*args, **kw)
        g = np.ones(np.shape(ans), dtype=np.asarray(ans).dtype)
        for i, a in enumerate(args):
            c = contribution(rule, i, g, ans, args, kw)
            if c is None:
                continue
            leaves = c if isinstance(c, list) else [c]
            for leaf in leaves:
                assert leaf.dtype == np.float32, (fn, i, leaf.dtype)
    # templates keep float32 too
    for fn in (np.sin, np.exp2, np.log2, np.sqrt, np.absolute, np.sinc):
        rule = lookup(fn)
        p = eval(rule.partial_sources()[0], dict(rule.env, x=np.abs(x) + 0.5))
        assert (p * np.ones(x.shape, np.float32)).dtype == np.float32, fn


def test_integer_arrays_get_no_gradient():
    x = np.arange(6).reshape(2, 3)
    assert lookup(np.sum).vjps[0](np.ones(2), None, x, axis=1) is None
    assert lookup(np.reshape).vjps[0](np.ones(6), None, x, (6,)) is None


def test_views_of_the_cotangent_are_safe_end_to_end():
    # contributions may be views of g (no copy); the generated code only updates in place
    # adjoints it made itself, so mixing views with indexed writes stays correct
    import transpile
    from test_numpy_programs import central
    x = N(6)
    g = transpile.grad(_aliasing_program)(x)
    np.testing.assert_allclose(g, central(_aliasing_program, [x], 0), rtol=1e-6, atol=1e-8)


def _aliasing_program(x):
    y = x.reshape(2, 3)
    z = y.T
    a = z[0] * 3.0 + y[1, 2]
    b = x[1] * 5.0
    return np.sum(a * a) + b * b + np.sum(z * y.T)


# ----------------------------------------------------------------------------------------
# linear algebra against sympy
# ----------------------------------------------------------------------------------------
sympy = pytest.importorskip("sympy")


def _sym_matrix(name, n, m):
    return sympy.Matrix(n, m, lambda i, j: sympy.Symbol(f"{name}{i}{j}"))


def _subs(M, A, values):
    return {A[i, j]: values[i, j] for i in range(A.rows) for j in range(A.cols)}


def test_det_against_sympy():
    A = _sym_matrix("a", 3, 3)
    val = N(3, 3)
    det = A.det()
    expected = np.array([[float(sympy.diff(det, A[i, j]).subs(_subs(None, A, val)))
                          for j in range(3)] for i in range(3)])
    got = lookup(la.det).vjps[0](1.0, la.det(val), val)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_trace_of_product_against_sympy():
    A, B = _sym_matrix("a", 2, 3), _sym_matrix("b", 3, 2)
    va, vb = N(2, 3), N(3, 2)
    tr = (A * B).trace()
    env = {**_subs(None, A, va), **_subs(None, B, vb)}
    expected = np.array([[float(sympy.diff(tr, A[i, j]).subs(env)) for j in range(3)]
                         for i in range(2)])
    # y = A @ B ; t = trace(y): chain the two rules
    y = va @ vb
    gy = lookup(np.trace).vjps[0](1.0, np.trace(y), y)
    got = lookup(ast.MatMult).vjps[0](gy, y, va, vb)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, vb.T, rtol=1e-12)


def test_quadratic_form_against_sympy():
    A = _sym_matrix("a", 3, 3)
    xs = sympy.Matrix(3, 1, lambda i, j: sympy.Symbol(f"x{i}"))
    va, vx = N(3, 3), N(3)
    q = (xs.T * A * xs)[0, 0]
    env = {**_subs(None, A, va), **{xs[i, 0]: vx[i] for i in range(3)}}
    expected = np.array([float(sympy.diff(q, xs[i, 0]).subs(env)) for i in range(3)])
    mm = lookup(ast.MatMult).vjps
    y = va @ vx                                     # q = x @ (A @ x)
    q_val = vx @ y
    gx = mm[0](1.0, q_val, vx, y)
    gy = mm[1](1.0, q_val, vx, y)
    gx = gx + mm[1](gy, y, va, vx)
    np.testing.assert_allclose(gx, expected, rtol=1e-10, atol=1e-12)
    gA = mm[0](gy, y, va, vx)
    expected_A = np.array([[float(sympy.diff(q, A[i, j]).subs(env)) for j in range(3)]
                           for i in range(3)])
    np.testing.assert_allclose(gA, expected_A, rtol=1e-10, atol=1e-12)


def test_inverse_against_sympy():
    A = _sym_matrix("a", 2, 2)
    val = SPD(2) + N(2, 2) * 0.1
    s = sum(A.inv())
    env = _subs(None, A, val)
    expected = np.array([[float(sympy.diff(s, A[i, j]).subs(env)) for j in range(2)]
                         for i in range(2)])
    got = lookup(la.inv).vjps[0](np.ones((2, 2)), la.inv(val), val)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_multi_output_with_no_adjoint_at_all():
    A = SPD(3)
    for fn, args in [(la.slogdet, (A,)), (la.eigh, (A,)), (np.split, (N(4, 2), 2)),
                     (np.meshgrid, (N(2), N(3))), (np.unstack, (N(2, 3),))]:
        ans = fn(*args)
        c = lookup(fn, len(args)).vjps[0](0.0, ans, *args)
        np.testing.assert_array_equal(c, np.zeros(np.shape(args[0])))
