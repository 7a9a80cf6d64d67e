"""Rules for what generated derivative code calls, so that it can be differentiated again.

Gradient code calls a few runtime helpers (accumulation into list and array adjoints,
`unbroadcast`, stack-like lists) and the vjp functions of NumPy rules. Each gets a rule here,
through the same `defvjp` door as every primitive:

* forward mode (Hessian-vector products as forward over reverse): every one of them is
  *multilinear*: linear in the adjoints it moves around, constant (or locally constant) in
  the values it reads shapes, indices and masks from. `multilinear=[groups]` says which
  argument positions; the tangent is the function applied to the tangents.
* reverse mode (grad of grad): vjp functions for the helpers, written for their copying
  variants (`runtime.COPYING`), which derivative code uses when it is built to be
  differentiated in reverse mode again.

NumPy vjp functions ``vjp(g, ans, *args)`` are linear in g. For a linear primitive (sum,
reshape, concatenate, take...) they do not depend on the values of args; for a piecewise
linear one (max, sort, clip, median) only through a mask that is locally constant; for a
multilinear one (dot, matmul, outer, einsum...) vjp_i is linear in g and in each operand other
than i. var, std, norm, prod (nonzero inputs), inv, det, slogdet, solve and cholesky have
forward rules written out (`defjvp`); other primitives (eigh, cumprod, pinv...) have no
second-order rule yet: a clear error names them.
"""
import numpy as np

from .registry import defjvp, defvjp, lookup, _RULES
from .. import runtime as R
from ..runtime import _is_zero

ENV = {"np": np}


def _helper(fn, *vjps, needs_ans=False, **options):
    """The rule of a runtime helper (named after it; options as for defvjp). Its vjps do
    not read the helper's result unless ``needs_ans=True`` says so."""
    defvjp(fn, *vjps, name=f"transpile.runtime.{fn.__name__}", env=ENV, needs_ans=needs_ans,
           **options)


def _part(g, k):
    """Entry k of the adjoint of a tuple result (the whole adjoint may be a plain 0.0)."""
    if _is_zero(g):
        return 0.0
    return g[k]


def _unless_zero(x, value):
    """No adjoint (0.0) for a zero adjoint (a constant placeholder), else value()."""
    return 0.0 if _is_zero(x) else value()


def _broadcast_like(G, g):
    """The adjoint of g from the adjoint G of unbroadcast(g, like): G spread back out."""
    shape = getattr(g, "shape", None)
    if shape is None or _is_zero(G):
        return G
    G = np.asarray(G)
    return G if G.shape == shape else np.array(np.broadcast_to(G, shape))


def _sum_each(G, g):
    """The adjoint of g in add_to_each(adj, value, g) from the adjoint G of the result:
    each element's share spread back to g's shape, summed (an array's rows likewise)."""
    if _is_zero(G):
        return 0.0
    total = 0.0
    for v in G:
        total = R.add(total, _broadcast_like(v, g))
    return total


def _take_item_vjp(G, ans, adj, index):
    g0, g1 = _part(G, 0), _part(G, 1)
    if _is_zero(adj) or (_is_zero(g0) and _is_zero(g1)):
        return 0.0
    out = R.zeros_like(adj) if _is_zero(g1) else R._own_copy(g1)
    if isinstance(out, list) and _is_zero(g0):
        g0 = R.zeros_like(out[index])
    out[index] = g0
    return out


def _pop_adjoint_vjp(G, ans, adj, value):
    g0, g1 = _part(G, 0), _part(G, 1)
    rest = R.zeros_like(ans[1]) if _is_zero(g1) else list(g1)
    return rest + [g0 if not _is_zero(g0) else R.zeros_like(ans[0])]


def _push_adjoint_vjps():
    def d_adj(G, ans, adj, value, g):
        return _unless_zero(adj, lambda: 0.0 if _is_zero(G) else list(G[:-1]))

    def d_g(G, ans, adj, value, g):
        return _part(G, -1)
    return d_adj, d_g


# --- runtime helpers -------------------------------------------------------------------
for _add_at in (R.add_at, R.add_at_copy):
    _helper(_add_at,
            lambda G, ans, adj, value, index, g: _unless_zero(adj, lambda: G),
            None, None,
            lambda G, ans, adj, value, index, g: _unless_zero(
                g, lambda: R.unbroadcast(R.item(G, index), g)),
            multilinear=[(0, 3)], params="adj, value, index, g")
for _take in (R.take_item, R.take_item_copy):
    _helper(_take, _take_item_vjp, None, multilinear=[(0,)], params="adj, index")
for _pop in (R.pop_adjoint, R.pop_adjoint_copy):
    _helper(_pop, _pop_adjoint_vjp, None, multilinear=[(0,)], params="adj, value",
            needs_ans=True)
_d_adj, _d_g = _push_adjoint_vjps()
for _push in (R.push_adjoint, R.push_adjoint_copy):
    _helper(_push, _d_adj, None, _d_g, multilinear=[(0, 2)], params="adj, value, g")
_helper(R.add,
        lambda G, ans, a, b: _unless_zero(a, lambda: G),
        lambda G, ans, a, b: _unless_zero(b, lambda: G),
        multilinear=[(0, 1)], params="a, b")
_helper(R.item,
        lambda G, ans, adj, index: 0.0 if _is_zero(adj) or _is_zero(G) else R.add_at(
            0.0, adj, index, G),
        None, multilinear=[(0,)], params="adj, index", masks=True)
_helper(R.add_to_each,
        lambda G, ans, adj, value, g: _unless_zero(adj, lambda: G),
        None,
        lambda G, ans, adj, value, g: _sum_each(G, g),
        multilinear=[(0, 2)], params="adj, value, g")
def _times_p(p, g, t):
    """p * t where mul_masked(p, g) does not hold p back (g != 0 or p finite), else 0:
    mul_masked(p, g) is locally constant in g where it keeps its 0."""
    if _is_zero(t):
        return 0.0
    out = p * t
    if np.all(np.isfinite(p)):
        return out
    held = (np.asarray(g) == 0) & ~np.isfinite(p)
    kept = np.where(held, np.zeros((), np.result_type(out)), out)
    return kept if isinstance(out, np.ndarray) else kept[()]


_helper(R.mul_masked,
        lambda G, ans, p, g: R.unbroadcast(R.mul_masked(G, g), p),
        lambda G, ans, p, g: R.unbroadcast(_times_p(p, g, G), g),
        params="p, g", masks=True)
defjvp(R.mul_masked, lambda tangents, p, g: _plus(
    None if _t(tangents, 0) is None else R.mul_masked(tangents[0], g),
    None if _t(tangents, 1) is None else _times_p(p, g, tangents[1])))
_helper(R.unbroadcast, lambda G, ans, g, like: _broadcast_like(G, g), None,
        multilinear=[(0,)], params="g, like")
_helper(R.snapshot, lambda G, ans, value: G, multilinear=[(0,)], params="value")
# forward-mode list helpers (tangent code differentiated forward again)
_helper(R.copy_tangent, lambda G, ans, t: G, multilinear=[(0,)], params="t")
_helper(R.sum_tangent, lambda G, ans, t, value: 0.0 if _is_zero(t) else [G for _ in t],
        None, multilinear=[(0,)], params="t, value")
_helper(R.pop_tangent, None, multilinear=[(0,)], params="t",
        unavailable="reverse mode over forward-mode code that pops from a list")


def _unless_zero_vjp(k):
    """Adjoint of argument k of fn in unless_zero(t, fn, *args): fn's own reverse rule."""
    def vjp(G, ans, t, fn, *args, **kwargs):
        # fn is linear in t: with t = 0 its other arguments have no derivative; the
        # adjoint of t itself flows even where t is a computed 0.0
        if _is_zero(G) or _is_zero(t) and (k >= len(args) or args[k] is not t):
            return 0.0
        rule = lookup(fn, len(args))
        if rule is None or rule.vjps is None or rule.vjps[k] is None:
            raise NotImplementedError(f"no reverse rule for {fn!r} inside unless_zero")
        return rule.vjps[k](G, ans, *args, **kwargs)
    return vjp


_helper(R.unless_zero, None, None, *[_unless_zero_vjp(k) for k in range(8)],
        params="t, fn, " + ", ".join(f"a{k}" for k in range(8)), needs_ans=True)
_helper(R.jvp_from_vjps, None, params="vjps, fn, args, tangents",
        unavailable="forward-mode code that builds J v from a reverse rule (a function with "
                    "vjp rules only) cannot be differentiated again; use forward over reverse "
                    "(transpile.hvp's default mode)")
for _fn in (R.zeros_like, R.sign, R.argmax, R.argmin, R.argbest, R.final_state,
            R.write_back):
    _helper(_fn, zero=True)


# --- NumPy vjp functions -----------------------------------------------------------------
LINEAR = [
    np.sum, np.mean, np.nansum, np.nanmean, np.cumsum, np.nancumsum, np.trace, np.diagonal,
    np.diag, np.diagflat, np.tril, np.triu, np.fliplr, np.flipud, np.rot90, np.reshape,
    np.expand_dims, np.squeeze, np.ravel, np.copy, np.asarray, np.asanyarray,
    np.ascontiguousarray, np.asfortranarray, np.array, np.ndarray.flatten, np.ndarray.ravel,
    np.ndarray.copy, np.ndarray.astype, np.ndarray.view, np.ndarray.item,
    np.ndarray.tolist, np.transpose, np.ndarray.transpose, np.swapaxes, np.moveaxis,
    np.rollaxis, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.concatenate, np.hstack,
    np.vstack, np.dstack, np.column_stack, np.stack, np.split, np.array_split, np.hsplit,
    np.vsplit, np.dsplit, np.tile, np.repeat, np.flip, np.roll, np.broadcast_to, np.take,
    np.take_along_axis, np.delete, np.resize, np.compress, np.extract, np.pad, np.insert,
    np.append, np.choose, np.select, np.broadcast_arrays, np.meshgrid, np.block,
    np.real, np.negative, np.positive, np.where,
]
PIECEWISE_LINEAR = [np.max, np.min, np.amax, np.amin, np.nanmax, np.nanmin, np.ptp,
                    np.median, np.sort, np.partition, np.clip]
MULTILINEAR = [np.dot, np.matmul, np.outer, np.inner, np.tensordot, np.vdot, np.kron,
               np.cross, np.convolve, np.correlate, np.einsum]
for _name in ("permute_dims", "matrix_transpose", "unstack", "row_stack", "matvec", "vecmat",
              "vecdot", "cumulative_sum"):
    if hasattr(np, _name):
        (MULTILINEAR if _name in ("matvec", "vecmat", "vecdot") else LINEAR).append(
            getattr(np, _name))
for _name in ("matmul", "outer", "tensordot", "cross", "vecdot", "diagonal", "trace",
              "matrix_transpose"):
    if hasattr(np.linalg, _name):
        (LINEAR if _name in ("diagonal", "trace", "matrix_transpose") else MULTILINEAR).append(
            getattr(np.linalg, _name))


def _operand_positions(fn, rule, nargs):
    """vjp argument positions (g, ans, *args) of the operands of a multilinear fn."""
    if fn is np.einsum:      # einsum(subscripts, *operands) or einsum(op, sublist, ...):
        count = nargs if nargs is not None else len(rule.vjps)     # any argument may be
        return list(range(2, 2 + count))                           # an operand
    return [2, 3]


def _register_vjp_rules():
    """Forward-mode rules for the vjp functions of linear and multilinear primitives."""
    kinds = {}
    for fn in LINEAR + PIECEWISE_LINEAR:
        kinds[fn] = "linear"
    for fn in MULTILINEAR:
        kinds[fn] = "multilinear"
    for (fn, nargs), rule in list(_RULES.items()):
        try:
            kind = kinds.get(fn)
        except TypeError:
            continue
        if not rule.vjps:
            continue
        for i, vjp in enumerate(rule.vjps):
            if vjp is None or lookup(vjp) is not None:
                continue
            if kind is None:
                defvjp(vjp, None, name=f"the reverse rule of {rule.name}", params=None,
                       env=ENV, unavailable=(
                           f"second derivatives through {rule.name} are not available yet "
                           "(its reverse rule has no derivative rule of its own)"))
                continue
            if kind == "linear":
                groups = [(0,)]
            else:
                own = i + 2                     # vjp i is for argument i, at i + 2
                groups = [(0,)] + [(p,) for p in _operand_positions(fn, rule, nargs)
                                   if p != own]
            r = defvjp(vjp, None, multilinear=groups,
                       name=f"the reverse rule of {rule.name}", params=None, env=ENV,
                       unavailable=(f"reverse mode over the reverse rule of {rule.name} "
                                    "is not available (grad of grad through it); "
                                    "transpile.hvp and transpile.hessian (forward over "
                                    "reverse) handle it"))
            r.zero_tangent_ok = False


_register_vjp_rules()


# --- forward rules for the reverse rules of a few nonlinear NumPy functions ---------------
# tangents[k] is the tangent of the k-th argument of vjp(g, ans, a, ...), None if constant.
def _t(tangents, k):
    return tangents[k] if k < len(tangents) and not _is_zero(tangents[k]) else None


def _plus(*terms):
    out = 0.0
    for term in terms:
        if term is not None:
            out = out + term
    return out


def _matT(x):
    return np.swapaxes(np.asarray(x), -1, -2)


def _var_vjp_jvp(vjp):
    """var's vjp 2 (a - mean a) / den * g is bilinear in (g, a)."""
    def jvp(tangents, g, ans, a, *args, **kw):
        dg, da = _t(tangents, 0), _t(tangents, 2)
        return _plus(None if dg is None else vjp(dg, ans, a, *args, **kw),
                     None if da is None else vjp(g, ans, da, *args, **kw))
    return jvp


def _scaled_bilinear_jvp(vjp):
    """A vjp B(g, a) / s with B bilinear and s = ans (std: (a - mean a) g / (den s);
    2-norm: a g / s): d = B(dg, a)/s + B(g, da)/s - B(g ds/s, a)/s."""
    def jvp(tangents, g, ans, a, *args, **kw):
        dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
        terms = [None if dg is None else vjp(dg, ans, a, *args, **kw),
                 None if da is None else vjp(g, ans, da, *args, **kw)]
        if dans is not None and not _is_zero(g):
            s = np.asarray(ans)
            ratio = np.where(s == 0, 0.0, np.asarray(dans) / np.where(s == 0, 1.0, s))
            terms.append(-vjp(np.asarray(g) * ratio, ans, a, *args, **kw))
        return _plus(*terms)
    return jvp


def _inv_vjp_jvp(tangents, g, ans, a):
    """-A^-T g A^-T with A^-1 = ans."""
    dg, dans = _t(tangents, 0), _t(tangents, 1)
    Ai = _matT(ans)
    terms = [None if dg is None else -(Ai @ np.asarray(dg) @ Ai)]
    if dans is not None:
        dAi, G = _matT(dans), np.asarray(g)
        terms.append(-(dAi @ G @ Ai + Ai @ G @ dAi))
    return _plus(*terms)


def _dinv(a, da):
    """Tangent of inv(a)."""
    ai = np.linalg.inv(np.asarray(a))
    return -(ai @ np.asarray(da) @ ai)


def _det_vjp_jvp(tangents, g, ans, a):
    """(g det a) inv(a)^T."""
    dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    A = np.asarray(a)
    scale = np.asarray(g) * np.asarray(ans)
    dscale = _plus(None if dg is None else np.asarray(dg) * np.asarray(ans),
                   None if dans is None else np.asarray(g) * np.asarray(dans))
    inv_T = _matT(np.linalg.inv(A))
    out = np.asarray(dscale)[..., None, None] * inv_T
    if da is not None:
        out = out + scale[..., None, None] * _matT(_dinv(A, da))
    return out


def _slogdet_vjp_jvp(tangents, g, ans, a):
    """g_logdet inv(a)^T (the sign carries no derivative)."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    gl = 0.0 if _is_zero(g) else g[1]
    dgl = None if dg is None else dg[1]
    A = np.asarray(a)
    out = 0.0
    if dgl is not None and not _is_zero(dgl):
        out = np.asarray(dgl)[..., None, None] * _matT(np.linalg.inv(A))
    if da is not None and not _is_zero(gl):
        out = out + np.asarray(gl)[..., None, None] * _matT(_dinv(A, da))
    return out


def _solve_gb_jvp(tangents, g, a, b):
    """(gb, tangent of gb) for gb = solve(a^T, g) (vectors as columns)."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    A = np.asarray(a)
    vec = np.ndim(b) == 1
    G = np.asarray(g)[..., None] if vec else np.asarray(g)
    gb = np.linalg.solve(_matT(A), G)
    dgb = 0.0
    if dg is not None:
        dgb = dgb + np.linalg.solve(_matT(A), np.asarray(dg)[..., None] if vec else dg)
    if da is not None:
        dgb = dgb - np.linalg.solve(_matT(A), _matT(da) @ gb)
    return gb, dgb, vec


def _solve_vjp_b_jvp(tangents, g, ans, a, b):
    gb, dgb, vec = _solve_gb_jvp(tangents, g, a, b)
    return dgb[..., 0] if vec and not _is_zero(dgb) else dgb


def _solve_vjp_a_jvp(tangents, g, ans, a, b):
    """-gb x^T with x = ans."""
    gb, dgb, vec = _solve_gb_jvp(tangents, g, a, b)
    dx = _t(tangents, 1)
    X = np.asarray(ans)[..., None] if vec else np.asarray(ans)
    out = 0.0 if _is_zero(dgb) else -(dgb @ _matT(X))
    if dx is not None:
        dX = np.asarray(dx)[..., None] if vec else np.asarray(dx)
        out = out - gb @ _matT(dX)
    return out


def _norm_vjp_jvp(vjp):
    """norm: 2-norms and the Frobenius norm are scaled bilinear; 1- and inf-norms of
    vectors locally linear in g (sign and mask constant); other orders not available."""
    scaled = _scaled_bilinear_jvp(vjp)

    def jvp(tangents, g, ans, x, ord=None, axis=None, keepdims=False):
        vector = isinstance(axis, (int, np.integer)) or (axis is None and np.ndim(x) == 1)
        if ord is None or ord == "fro" or (ord == 2 and vector):
            return scaled(tangents, g, ans, x, ord, axis, keepdims)
        if vector and ord in (1, np.inf, -np.inf):
            dg = _t(tangents, 0)
            return 0.0 if dg is None else vjp(dg, ans, x, ord, axis, keepdims)
        from ..errors import TranspileError
        raise TranspileError(f"second derivatives through numpy.linalg.norm with "
                             f"ord={ord!r} are not available yet")
    return jvp


defjvp(lookup(np.linalg.norm).vjps[0], _norm_vjp_jvp(lookup(np.linalg.norm).vjps[0]))
def _prod_vjp_jvp(vjp):
    """prod's vjp g * (product of the other elements): with no zero in a, its tangent in
    a is vjp * (sum(da / a) over the group - da / a)."""
    def jvp(tangents, g, ans, a, axis=None, dtype=None, out=None, keepdims=np._NoValue,
            initial=np._NoValue, where=np._NoValue):
        dg, da = _t(tangents, 0), _t(tangents, 2)
        kw = {} if keepdims is np._NoValue else {"keepdims": keepdims}
        terms = [None if dg is None else vjp(dg, ans, a, axis, **kw)]
        if da is not None and not _is_zero(g):
            x = np.asarray(a, dtype=float)
            if initial is not np._NoValue or where is not np._NoValue or not np.all(x != 0):
                from ..errors import TranspileError
                raise TranspileError("second derivatives through numpy.prod are available "
                                     "for nonzero inputs without initial=/where= only")
            ratio = np.asarray(da) / x
            group = np.sum(ratio, axis=axis, keepdims=True)
            terms.append(np.asarray(vjp(g, ans, a, axis, **kw)) * (group - ratio))
        return _plus(*terms)
    return jvp


defjvp(lookup(np.prod).vjps[0], _prod_vjp_jvp(lookup(np.prod).vjps[0]))


def _cholesky_vjp_jvp(tangents, g, ans, a, upper=False):
    """cholesky's vjp: with P = phi(L^T G), S = L^-T P L^-1, the result is the lower-triangle
    gradient of sym(S). It depends on g (linearly) and on L = ans: with dL the tangent of
    ans, dS = -L^-T dL^T S + L^-T phi(dL^T G) L^-1 - S dL L^-1 (plus the dG part)."""
    from .numpy_ import _lower_partial
    vjp = lookup(np.linalg.cholesky).vjps[0]
    dg, dans = _t(tangents, 0), _t(tangents, 1)
    terms = [None if dg is None else vjp(dg, ans, a, upper)]
    if dans is not None and not _is_zero(g):
        L, G, dL = np.asarray(ans), np.asarray(g), np.asarray(dans)
        if upper:
            L, G, dL = _matT(L), _matT(G), _matT(dL)
        n = L.shape[-1]

        def phi(X):
            return np.tril(X) / (1.0 + np.eye(n))

        def left(X):                       # L^-T X
            return np.linalg.solve(_matT(L), X)

        def right(X):                      # X L^-1
            return _matT(np.linalg.solve(_matT(L), _matT(X)))

        S = right(left(phi(_matT(L) @ G)))
        dS = -left(_matT(dL) @ S) + right(left(phi(_matT(dL) @ G))) - right(S @ dL)
        terms.append(_lower_partial((dS + _matT(dS)) / 2, "U" if upper else "L"))
    return _plus(*terms)


defjvp(lookup(np.linalg.cholesky).vjps[0], _cholesky_vjp_jvp)
for _fn, _make in ((np.var, _var_vjp_jvp), (np.std, _scaled_bilinear_jvp)):
    _vjp = lookup(_fn).vjps[0]
    defjvp(_vjp, _make(_vjp))
defjvp(lookup(np.linalg.inv).vjps[0], _inv_vjp_jvp)
defjvp(lookup(np.linalg.det).vjps[0], _det_vjp_jvp)
defjvp(lookup(np.linalg.slogdet).vjps[0], _slogdet_vjp_jvp)
defjvp(lookup(np.linalg.solve).vjps[0], _solve_vjp_a_jvp)
defjvp(lookup(np.linalg.solve).vjps[1], _solve_vjp_b_jvp)


# --- what forward-mode code calls besides runtime helpers (rules/forward_runtime.py) ----
from . import forward_runtime as F  # noqa: E402


def _tangent_back(G, t):
    """The adjoint of t from the adjoint G of a tangent shaped from t (dense, broadcast,
    result_tangent): G summed back to t's structure and shape. A float t of 0.0 may be a
    computed tangent (2 x dx at x = 0), not only the zero placeholder: G flows either way."""
    if _is_zero(G):
        return 0.0
    if isinstance(t, (list, tuple)):
        return [_tangent_back(Gk, tk) for Gk, tk in zip(G, t)]
    if hasattr(t, "shape") or hasattr(G, "shape"):
        return R.unbroadcast(np.asarray(G), t) if hasattr(t, "shape") else float(np.sum(G))
    return G


def _forward_helper(fn, vjp, params):
    defvjp(fn, vjp, None, name=f"transpile.rules.forward_runtime.{fn.__name__}", env=ENV,
           multilinear=[(0,)], params=params, needs_ans=False)


for _fn in (F.dense, F.broadcast_tangent, F.result_tangent):
    _forward_helper(_fn, lambda G, ans, t, like: _tangent_back(G, t), "t, like")
defvjp(F.jvp_by_vjps, None, name="transpile.rules.forward_runtime.jvp_by_vjps", env=ENV,
       params="vjps, fn, args, tangents",
       unavailable="forward-mode code that builds J v from a reverse rule (a function with "
                   "vjp rules only) cannot be differentiated again; use forward over reverse "
                   "(transpile.hvp's default mode)")


def _register_jvp_rules():
    """The forward rules (jvps) of NumPy primitives, called by tangent code: reverse mode
    over them is refused with a clear error (forward over reverse handles them)."""
    for (fn, nargs), rule in list(_RULES.items()):
        jvp = rule.jvp
        if jvp is None or not rule.name.startswith("numpy"):
            continue
        try:
            if lookup(jvp) is not None:
                continue
        except TypeError:
            continue
        defvjp(jvp, None, name=f"the forward rule of {rule.name}", params=None, env=ENV,
               unavailable=(f"reverse mode over the forward rule of {rule.name} is not "
                            "available (transpile.hvp mode='reverse-over-forward'); "
                            "use forward over reverse (transpile.hvp's default mode)"))


_register_jvp_rules()
