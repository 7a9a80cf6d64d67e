"""Rules for what generated derivative code calls, so that it can be differentiated again.

Gradient code calls a few runtime helpers (accumulation into list and array adjoints,
`unbroadcast`, stack-like lists) and the vjp functions of NumPy rules; tangent code calls
jvp functions. Each gets a rule here, through the same `defvjp` door as every primitive:

* runtime helpers, written out: every one of them is *multilinear* (linear in the adjoints
  it moves around, constant or locally constant in the values it reads shapes, indices and
  masks from), which gives forward mode; reverse mode (grad of grad) by vjp functions
  written for their copying variants (`runtime.COPYING`), which derivative code uses when
  it is built to be differentiated in reverse mode again.
* the vjp and jvp functions of primitives: derived, never listed, from the structure each
  rule declares where it is written (`derive`, below): linear, multilinear, piecewise
  linear, or explicit with the tangents of its vjps. What a rule does not declare has no
  second-order rule: a clear error names the primitive, and `supported(modes=True)` says
  which modes each primitive has (`mode_status`).
"""
import functools

import numpy as np

from .registry import defer, defjvp, defvjp, lookup, pending_rule, _RULES
from .numpy_ import _given, _plus, _t
from .. import runtime as R
from ..runtime import _is_zero
from ..namespaces import as_array, known_finite

ENV = {"np": np}


def _helper(fn, *vjps, needs_ans=False, **options):
    """The rule of a runtime helper (named after it; options as for defvjp). Its vjps do
    not read the helper's result unless ``needs_ans=True`` says so."""
    # (every helper is linear in the adjoints it moves: it holds for complex adjoints as for
    # real ones, registry.COMPLEX; a zero one is zero for them too)
    options.setdefault("complex", "explicit" if options.get("zero") else "holomorphic")
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
    G = as_array(G)
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
_DEPTH = 24     # levels of rules for the helpers' reverse rules (derivatives of that order)


def _passed_unless_zero(k):
    """G, or 0.0 where argument k (the zero placeholder of an adjoint) is zero: the reverse
    rule of `add` for one of its arguments, and (k + 2) the reverse rule of that one."""
    fn = _PASSED.get(k)
    if fn is None:
        def fn(G, ans, *args):
            return 0.0 if _is_zero(args[k - 2]) else G
        fn.__name__ = fn.__qualname__ = f"passed_unless_zero_{k}"
        _PASSED[k] = fn
        later = [_passed_unless_zero(k + 2)] if k + 2 < _DEPTH else [None]
        _helper(fn, *later, multilinear=[(0,)],
                params=", ".join(["G", "ans"] + [f"a{i}" for i in range(2, _DEPTH + 2)]),
                **({} if later[0] is not None else {"unavailable": (
                    "derivatives of this order through an adjoint sum are not available")}))
    return fn


_PASSED: dict = {}


def _element_adjoint(G, ans, adj, value, index, g):
    """The adjoint of g in add_at(adj, value, index, g): G's entries at index (a
    NamedTuple's field name is its position in G, a list)."""
    if isinstance(index, str) and isinstance(G, list) and hasattr(type(value), "_fields"):
        index = type(value)._fields.index(index)
    return _unless_zero(g, lambda: R.unbroadcast(R.item(G, index), g))


_helper(_element_adjoint, None, None, None, None, None, multilinear=[(0,)],
        params="G, ans, adj, value, index, g",
        unavailable="derivatives of this order through the adjoint of an element read "
                    "(the reverse rule of the reverse rule of indexing) are not available")
def _passed(G, ans, *args):
    """G: the reverse rule of a function that returns its first argument (reshaped at
    most), and so the reverse rule of itself. A computed 0.0 passes G on too."""
    return G


_helper(_passed, _passed, multilinear=[(0,)],
        params=", ".join(["G", "ans"] + [f"a{i}" for i in range(2, _DEPTH + 2)]))
_helper(R.finished, _passed, None, multilinear=[(0,)], params="g, x")
_helper(R.owned, _passed, multilinear=[(0,)], params="adj")
for _add_at in (R.add_at, R.add_at_copy):
    _helper(_add_at, _passed_unless_zero(2), None, None, _element_adjoint,
            multilinear=[(0, 3)], params="adj, value, index, g")
for _take in (R.take_item, R.take_item_copy):
    _helper(_take, _take_item_vjp, None, multilinear=[(0,)], params="adj, index")
for _pop in (R.pop_adjoint, R.pop_adjoint_copy):
    _helper(_pop, _pop_adjoint_vjp, None, multilinear=[(0,)], params="adj, value",
            needs_ans=True)
_d_adj, _d_g = _push_adjoint_vjps()
for _push in (R.push_adjoint, R.push_adjoint_copy):
    _helper(_push, _d_adj, None, _d_g, multilinear=[(0, 2)], params="adj, value, g")
_helper(R.add, _passed_unless_zero(2), _passed_unless_zero(3),
        multilinear=[(0, 1)], params="a, b")
_helper(R.item,
        lambda G, ans, adj, index: 0.0 if _is_zero(adj) or _is_zero(G) else R.add_at(
            0.0, adj, index, G),
        None, multilinear=[(0,)], params="adj, index", masks=True)
_helper(R.add_to_each,
        _passed_unless_zero(2),
        None,
        lambda G, ans, adj, value, g: _sum_each(G, g),
        multilinear=[(0, 2)], params="adj, value, g")
def _times_p(p, g, t):
    """p * t where mul_masked(p, g) does not hold p back (g != 0 or p finite), else 0:
    mul_masked(p, g) is locally constant in g where it keeps its 0."""
    if _is_zero(t):
        return 0.0
    out = p * t
    if known_finite(p):
        return out
    held = (as_array(g) == 0) & ~np.isfinite(p)
    kept = np.where(held, np.zeros((), np.result_type(out)), out)
    return kept if isinstance(out, np.ndarray) else kept[()]


_helper(R.mul_masked,
        lambda G, ans, p, g: R.unbroadcast(R.mul_masked(G, g), p),
        lambda G, ans, p, g: R.unbroadcast(_times_p(p, g, G), g),
        params="p, g", masks=True)
defjvp(R.mul_masked, lambda tangents, p, g: _plus(
    None if _t(tangents, 0) is None else R.mul_masked(tangents[0], g),
    None if _t(tangents, 1) is None else _times_p(p, g, tangents[1])))
# unbroadcast's reverse rule spreads an adjoint back out (`_spread`); the reverse rule of
# spreading sums back down (`_gather`), and so on: two linear maps, each the other's
# reverse rule, so gradient code can be differentiated any number of times. Each reads the
# shape from its third argument (the adjoint of the level below); the rest only ride along.
_RIDERS = ", ".join(f"r{k}" for k in range(24))


def _spread(G, ans, g, *rest):
    """The adjoint of g in unbroadcast(g, like), from the adjoint G of its result (its
    real part where like is real: unbroadcast's result then is)."""
    if rest and not R._is_complex(rest[0]) and R._is_complex(G):
        G = G.real
    return _broadcast_like(G, g)


def _gather(H, ans, G, *rest):
    """The adjoint of G in _spread(G, ans, g, ...): H summed back to G's shape."""
    return H if _is_zero(H) else R.unbroadcast(H, G)


_helper(R.unbroadcast, _spread, None, multilinear=[(0,)], params="g, like")
_helper(_spread, _gather, multilinear=[(0,)], params="G, ans, g, " + _RIDERS)
_helper(_gather, _spread, multilinear=[(0,)], params="H, ans, G, " + _RIDERS)
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
        rule = lookup(fn, len(args)) or lookup(fn)
        if rule is None or rule.vjps is None:
            raise NotImplementedError(f"no reverse rule for {fn!r} inside unless_zero")
        if k >= len(rule.vjps) or rule.vjps[k] is None:
            return 0.0                  # no derivative through that argument (a shape)
        return rule.vjps[k](G, ans, *args, **kwargs)
    return vjp


_helper(R.unless_zero, None, None, *[_unless_zero_vjp(k) for k in range(8)],
        params="t, fn, " + ", ".join(f"a{k}" for k in range(8)), needs_ans=True)
_helper(R.jvp_from_vjps, None, params="vjps, fn, args, tangents",
        unavailable="forward-mode code that builds J v from a reverse rule (a function with "
                    "vjp rules only) cannot be differentiated again; use forward over reverse "
                    "(transpile.hvp's default mode)")
def _linear_last_level(helpers):
    """The reverse rules of these helpers that have no rule of their own yet: each is
    linear in the adjoint it is given (its first argument; the rest give shapes, indices
    and structure only), which gives forward mode over it; its own reverse rule is not
    written, so reverse mode over it is a clear error (and grad of derivative code of
    numbers falls back to forward mode there)."""
    import inspect
    for helper in helpers:
        for vjp in lookup(helper).vjps or ():
            if vjp is None or lookup(vjp) is not None:
                continue
            params = [p.name for p in inspect.signature(vjp).parameters.values()]
            _helper(vjp, None, multilinear=[(0,)], params=", ".join(params),
                    unavailable=f"derivatives of this order through the reverse rule of "
                                f"{helper.__name__} are not available")


# mul_masked and unless_zero are left out: their reverse rules are not linear in the adjoint
# alone (they multiply it by an argument that may carry a derivative)
_linear_last_level([R.add_at, R.add_at_copy, R.take_item, R.take_item_copy, R.pop_adjoint,
                    R.pop_adjoint_copy, R.push_adjoint, R.push_adjoint_copy, R.item,
                    R.add_to_each, R.snapshot, R.copy_tangent, R.sum_tangent])


_helper(R.field,
        lambda G, ans, t, value, name: 0.0 if _is_zero(t) or _is_zero(G) else R.add_at(
            0.0, t, type(value)._fields.index(name) if isinstance(t, list) else name, G),
        None, None, multilinear=[(0,)], params="t, value, name", masks=True)
# saving and restoring a dict entry or an attribute around a store: derivative code reads
# a restored dict or object for its keys and the shapes of its adjoint only (add_at,
# zeros_like), never for the numbers in it
for _fn in (R.zeros_like, R.is_zero, R.sign, R.argmax, R.argmin, R.argbest, R.final_state,
            R.write_back, R.entry, R.put_entry, R.attribute, R.put_attribute,
            R.imag_partial):
    _helper(_fn, zero=True)
from ..seed import result_seed  # noqa: E402
_helper(result_seed, zero=True)       # the seed of gradient code: ones, of the result's shape


# --- calls through a variable (calls.py): differentiated again at run time --------------
# (complex values: the code generated at run time for the function called holds them under
# the convention, so these declare complex="explicit")
from .. import calls as C  # noqa: E402

_CALL_ARGS = ", ".join(f"a{k}" for k in range(_DEPTH))
_NOT_REVERSE = ("reverse mode over gradient code that calls a function through a variable "
                "(a parameter, a list element, an object's method) is not supported; use "
                "transpile.hvp or transpile.hessian (either mode), or call the function by "
                "its name")
for _fn, _jvp, _params in ((C.call_forward, C.call_forward_jvp, "f, active, " + _CALL_ARGS),
                           (C.call_backward, C.call_backward_jvp, "tape, g")):
    defvjp(_fn, None, name=f"transpile.runtime.{_fn.__name__}", env=ENV, params=_params,
           unavailable=_NOT_REVERSE, several=True, complex="explicit")
    defjvp(_fn, _jvp)
defvjp(C.call_jvp, None, None, *[C.call_jvp_vjp(k) for k in range(2, _DEPTH + 3)],
       name="transpile.runtime.call_jvp", env=ENV, several=True, complex="explicit",
       params="f, active, tangents, " + _CALL_ARGS,
       no_derivative={0: "second derivatives in the values a function called through a "
                         "variable is made of (the object of a method, what a closure or "
                         "partial holds) are not supported"})


# abs_partial(z) = conj(z) / |z| and angle_partial(z) = -i conj(z) / |z|^2 (the derivatives
# of abs and angle): zero for real z (piecewise constant), and for complex z maps of the
# form dz -> A dz + B conj(dz), whose adjoint in autograd's convention is
# G -> A G + conj(B G) (registry.COMPLEX)
def _ab(fn, z):
    """(A, B) of fn's derivative at complex z (see above)."""
    r2 = np.abs(z) ** 2
    safe = np.where(r2 == 0, 1.0, r2)
    cz = np.conj(z)
    if fn is R.abs_partial:
        r = np.sqrt(safe)
        return -cz * cz / (2 * r * safe) * (r2 != 0), 1 / (2 * r) * (r2 != 0)
    return 1j * cz * cz / (safe * safe) * (r2 != 0), 0 * cz          # angle: -i conj(z)/r2


def _partial_vjp(fn):
    def vjp(G, ans, z, *rest):
        if _is_zero(G) or not R._is_complex(z):
            return 0.0 * np.real(z)
        A, B = _ab(fn, z)
        scale = 180.0 / np.pi if rest and rest[0] else 1.0
        return scale * (A * G + np.conj(B * G))
    return vjp


def _partial_jvp(fn):
    def jvp(tangents, z, *rest):
        t = _t(tangents, 0)
        if t is None or not R._is_complex(z):
            return 0.0
        A, B = _ab(fn, z)
        scale = 180.0 / np.pi if rest and rest[0] else 1.0
        return scale * (A * t + B * np.conj(t))
    return jvp


_helper(R.abs_partial, _partial_vjp(R.abs_partial), params="x", jvp=_partial_jvp(
    R.abs_partial), complex="explicit")
_helper(R.angle_partial, _partial_vjp(R.angle_partial), None, params="x, deg",
        jvp=_partial_jvp(R.angle_partial), complex="explicit")
# the real part of a real value's adjoint contribution (reverse.py)
# (its result is real: what is differentiated after it is real code, second order too)
_helper(R.real_part, lambda G, ans, g: R.real_part(G), multilinear=[(0,)], params="g",
        complex="explicit", result="real")


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
        if hasattr(t, "shape"):
            return R.unbroadcast(as_array(G), t)
        return F.number(np.sum(G))   # (complex where G is: a 0.0 t may stand for any zero)
    return G


def _forward_helper(fn, vjp, params):
    defvjp(fn, vjp, None, name=f"transpile.rules.forward_runtime.{fn.__name__}", env=ENV,
           multilinear=[(0,)], params=params, needs_ans=False, complex="holomorphic")


for _fn in (F.dense, F.broadcast_tangent, F.result_tangent):
    _forward_helper(_fn, lambda G, ans, t, like: _tangent_back(G, t), "t, like")
defvjp(F.jvp_by_vjps, None, name="transpile.rules.forward_runtime.jvp_by_vjps", env=ENV,
       params="vjps, fn, args, tangents",
       unavailable="forward-mode code that builds J v from a reverse rule (a function with "
                   "vjp rules only) cannot be differentiated again; use forward over reverse "
                   "(transpile.hvp's default mode)")


# --- every mode of a primitive, read off the structure its rule declares -----------------
# Generated code calls, besides the primitive itself, its vjp functions (gradient code) and
# its jvp function (tangent code). Their own rules follow from the declaration:
#
# * the tangent map T(x)[v] (J v): for "linear" and "multilinear" fn applied to the
#   tangents (one group at a time, zeros for the rest of a group); else the rule's jvp.
# * the second-order term S_k(g, x, w) = d/de vjp_k(g, f(x + e w), x + e w), the Hessian of
#   <g, f> times w (its share for argument k): 0 for "linear" and "piecewise_linear"
#   (a.e.); for "multilinear" vjp_k with the other groups replaced by w; for "explicit"
#   the declared tangent of vjp_k (``vjp_tangents``) at the tangents (0, T(x)[w], w).
#
# By the symmetry of second derivatives (g fixed):
#   forward rule of vjp_k (forward over reverse): vjp_k(dg, ans, x) + S_k(g, x, dx);
#   reverse rule of vjp_i (reverse over reverse): to g, T(x)[H at i]; to x_k,
#       S_k(g, x, H at i); to ans, nothing (ans = f(x) is folded into x);
#   reverse rule of the jvp (reverse over forward): to tangent i, vjp_i(G, ans, x); to
#       x_k, S_k(G, x, tangents).
# Derived rules are registered through defvjp like every other; what derivative code calls
# when differentiated a third time is refused with a clear error.
from .registry import DERIVERS, INTERNAL_PREFIXES  # noqa: E402


def _callable(rule):
    """The function a rule is for (operator rules: ast.MatMult -> numpy.matmul)."""
    from ..forward import rule_function
    return rule_function(rule)


def _padded(ts, n):
    ts = list(ts)
    return ts + [None] * (n - len(ts))


def _group_replaced(args, group, ts):
    """args with the positions of `group` replaced by their tangents (zeros where none)."""
    new = list(args)
    for i in group:
        if i < len(args):
            new[i] = F.dense(ts[i] if _given(ts[i]) else 0.0, args[i])
    return new


def tangent_map(rule, tangents, args, kwargs):
    """J v: the tangent of fn(*args, **kwargs) for `tangents` (one per positional
    argument, None where none flows), read off the rule's structure."""
    ts = _padded(tangents, len(args))
    if rule.multilinear is not None:
        kw = {k: (R.zeros_like(v) if k in rule.constant_keywords else v)
              for k, v in kwargs.items()}
        total = 0.0
        for group in rule.multilinear:
            if any(_given(ts[i]) for i in group if i < len(args)):
                total = R.add(total, _callable(rule)(*_group_replaced(args, group, ts), **kw))
        return total
    if rule.jvp is not None:
        return rule.jvp(ts, *args, **kwargs)
    return F.jvp_by_vjps(rule.vjps, rule.fn, args, ts, **kwargs)


def second_order(rule, k, g, args, kwargs, w):
    """S_k(g, x, w) = d/de vjp_k(g, f(x + e w), x + e w) (see above)."""
    ws = _padded(w, len(args))
    if _is_zero(g) or not any(_given(t) for t in ws) or rule.structure in (
            "linear", "piecewise_linear"):
        return 0.0
    if rule.structure == "multilinear":
        total = 0.0
        for group in rule.multilinear:
            if k in group or not any(_given(ws[i]) for i in group if i < len(args)):
                continue
            new = _group_replaced(args, group, ws)
            ans = _callable(rule)(*new, **kwargs) if rule.needs_ans else None
            total = R.add(total, rule.vjps[k](g, ans, *new, **kwargs))
        return total
    ans = _callable(rule)(*args, **kwargs)
    dans = tangent_map(rule, ws, args, kwargs)
    return rule.vjp_tangents[k]([None, dans] + ws, g, ans, *args, **kwargs)


def _second_order_reason(rule):
    """Why rule has no second-order term (None when it has one)."""
    s = rule.structure
    if s in ("linear", "multilinear", "piecewise_linear"):
        return None
    missing = [i for i, v in enumerate(rule.vjps or ()) if v is not None and (
        rule.vjp_tangents is None or i >= len(rule.vjp_tangents)
        or rule.vjp_tangents[i] is None)]
    if s == "explicit" and not missing:
        return None
    return (f"second derivatives through {rule.name} are not available yet (its rule "
            "declares no second-order term: no tangent of its reverse rule)")


def _builtin(rule):
    """Rules transpile ships (NumPy): what they do not declare is refused, never guessed.
    For a user rule the compiler reads the user's vjp and jvp functions instead."""
    return rule.name.startswith(("numpy", "@"))


def _third(rule, what):
    return (f"third derivatives through {rule.name} are not available (the {what} "
            "has no rule of its own)")


def _refused(fn, name, reason, rule=None):
    r = defvjp(fn, None, name=name, params=None, env=ENV, unavailable=reason)
    r.structure, r.source_rule = "derived", rule
    return r


def _vjp_rule(rule, i, vjp):
    """The rule of vjp function i of `rule` (called by gradient code)."""
    s = rule.structure
    name = f"the reverse rule of {rule.name}"
    reason = _second_order_reason(rule)
    if reason is not None:
        _refused(vjp, name, reason, rule)
        return

    def d_g(H, _ans, g, ans, *args, **kw):
        if _is_zero(H):
            return 0.0
        ts = [None] * len(args)
        ts[i] = H
        return tangent_map(rule, ts, args, kw)

    def d_arg(k):
        def d(H, _ans, g, ans, *args, **kw):
            if _is_zero(H):
                return 0.0
            w = [None] * len(args)
            w[i] = H
            return second_order(rule, k, g, args, kw, w)
        return d
    nonlinear = s in ("multilinear", "explicit")
    vjps = [d_g, None] + [d_arg(k) if nonlinear and v is not None else None
                          for k, v in enumerate(rule.vjps)]
    if s in ("linear", "piecewise_linear"):
        forward = {"multilinear": [(0,)]}
    elif s == "multilinear":
        forward = {"multilinear": [(0,)] + [tuple(p + 2 for p in group)
                                            for group in rule.multilinear if i not in group]}
    else:
        forward = {"jvp": rule.vjp_tangents[i]}
        if lookup(rule.vjp_tangents[i]) is None:
            _refused(rule.vjp_tangents[i], f"the forward rule of {name}",
                     _third(rule, "tangent of its reverse rule"), rule)
    # keywords of its calls stay as in the primitive's call (the derived rules call fn)
    params = ("g", "ans") + tuple(rule.params or ())
    r = defvjp(vjp, *vjps, name=name, params=params, env=ENV, needs_ans=False, **forward)
    r.zero_tangent_ok = False
    r.structure, r.source_rule = "derived", rule
    r.complex = rule.complex        # a derivative of a rule holds where the rule does
    for d in vjps:
        if d is not None:
            _refused(d, name, _third(rule, "reverse rule of its reverse rule"))
    for j, d in enumerate(vjps):
        groups = _reverse_reverse_groups(rule, i, j - 2) if d is not None else None
        if groups is not None:
            r = defvjp(d, None, name=name, params=("H", "_ans") + params, env=ENV,
                       multilinear=groups, needs_ans=False,
                       unavailable=_third(rule, "reverse rule of its reverse rule"))
            r.structure, r.source_rule = "derived", rule


def _reverse_reverse_groups(rule, i, k):
    """The groups of arguments (H, _ans, g, ans, *args) the reverse rule of vjp_i of rule
    is multilinear in: to g (k = -2) T(x)[H at i], linear in H and, for a multilinear fn,
    in each group without i, constant in the rest (a linear fn reads their shapes, a
    piecewise linear one a locally constant mask); to x_k, vjp_k(g, ans, x with i's group
    replaced by H), linear in H, in g and in each group without i or k (where vjp_k does
    not read ans). That gives forward mode over it (third derivatives, forward over
    reverse over reverse); None where it is not so (explicit rules)."""
    s = rule.structure
    if k == -2 and s in ("linear", "piecewise_linear"):
        return [(0,)]
    if s != "multilinear" or k >= 0 and rule.needs_ans:
        return None
    others = [tuple(p + 4 for p in group) for group in rule.multilinear
              if i not in group and k not in group]
    return [(0,)] + ([(2,)] if k >= 0 else []) + others


def _jvp_rule(rule):
    """The rule of rule.jvp (called by tangent code)."""
    name = f"the forward rule of {rule.name}"
    reason = _second_order_reason(rule)
    if reason is not None:
        _refused(rule.jvp, name, reason, rule)
        return

    def d_tangents(G, _ans, tangents, *args, **kw):
        if _is_zero(G):
            return 0.0
        ans = _callable(rule)(*args, **kw) if rule.needs_ans else None
        out = []
        for t, v in zip(_padded(tangents, len(rule.vjps)), rule.vjps):
            out.append(0.0 if t is None or v is None else v(G, ans, *args, **kw))
        return out[:len(tangents)]

    def d_arg(k):
        def d(G, _ans, tangents, *args, **kw):
            return second_order(rule, k, G, args, kw, tangents)
        return d
    vjps = [d_tangents] + [d_arg(k) if rule.structure == "explicit" and v is not None
                           else None for k, v in enumerate(rule.vjps)]
    params = ("tangents",) + tuple(rule.params or ())
    r = defvjp(rule.jvp, *vjps, name=name, params=params, env=ENV, needs_ans=False)
    r.structure, r.source_rule = "derived", rule
    r.complex = rule.complex
    r.result = rule.result          # a tangent has its value's type (eig's: complex)
    for d in vjps:
        if d is not None:
            _refused(d, name, _third(rule, "reverse rule of its forward rule"))


def _jvp_by_vjps(rule):
    def jvp(tangents, *args, **kw):
        return F.jvp_by_vjps(rule.vjps, rule.fn, args, tangents, **kw)
    return jvp


def derive(rule):
    """Give the functions derivative code calls for `rule` their rules (see above)."""
    if rule.name.startswith(INTERNAL_PREFIXES) or rule.vjps is None or rule.structure in (
            "zero", "elementwise", "derived"):
        return
    if not _builtin(rule) and rule.structure == "reverse_only":
        return                  # user vjp functions: the compiler reads their code
    if rule.structure in ("piecewise_linear", "explicit") and rule.jvp is None:
        rule.jvp = _jvp_by_vjps(rule)
    # (the rules themselves are registered when derivative code calling the function is
    # differentiated, registry.defer: a first gradient does not wait for all of them)
    for i, vjp in enumerate(rule.vjps):
        if vjp is None:
            continue
        source = _source_rule(vjp)
        if source is not _NONE and source is not rule:
            vjp = rule.vjps[i] = _own(vjp)    # shared with another primitive: its own copy
        if _builtin(rule) or _second_order_reason(rule) is None:
            defer(vjp, rule, functools.partial(_vjp_rule, rule, i, vjp))
    source = _source_rule(rule.jvp) if rule.jvp is not None else _NONE
    if rule.jvp is not None and (source is _NONE or source is rule) \
            and (_builtin(rule) or _second_order_reason(rule) is None):
        defer(rule.jvp, rule, functools.partial(_jvp_rule, rule))


_NONE = object()


def _source_rule(fn):
    """The rule whose derivation gives fn (a vjp or jvp function) its rules, deferred or
    done; None for a rule of fn's own (a primitive, a user's rule), _NONE without any. It
    derives nothing."""
    pending = pending_rule(fn)
    if pending is not None:
        return pending
    known = _RULES.get((fn, None))
    return _NONE if known is None else getattr(known, "source_rule", None)


def _own(vjp):
    def own(*args, **kwargs):
        return vjp(*args, **kwargs)
    own.__name__ = getattr(vjp, "__name__", "vjp")
    own.__wrapped__ = vjp          # what it calls (a printed module imports that)
    return own


for _rule in list(_RULES.values()):
    derive(_rule)
DERIVERS.append(derive)


# --- which modes each rule gives (transpile.rules.supported(modes=True)) -----------------
def _reverse_reason(rule):
    if rule.zero:
        return None
    if rule.unavailable is not None:
        return rule.unavailable
    if rule.vjps is None and rule.partials is None:
        return f"{rule.name} has no reverse rule"
    return None


def _forward_reason(rule):
    if rule.zero or rule.multilinear is not None or rule.jvp is not None:
        return None
    return rule.unavailable


def _through(fn, reason_of):
    """Why what derivative code calls (fn) cannot be differentiated (None: it can)."""
    import inspect
    rule = lookup(fn)
    if rule is None:
        return None if inspect.isfunction(fn) else f"{fn!r} has no rule"
    return reason_of(rule)


def _template_reason(rule):
    """Why the partial-derivative templates of rule cannot be differentiated again: a
    function they call that has no rule and no Python source the compiler reads (None:
    they can)."""
    import ast
    for template in rule.partials or ():
        for node in ast.walk(template) if template is not None else ():
            if isinstance(node, (ast.BinOp, ast.UnaryOp)) and lookup(type(node.op)) is None:
                return (f"second derivatives through {rule.name} are not available: its "
                        f"derivative uses the operator {type(node.op).__name__}, which has "
                        "no rule")
            if not isinstance(node, ast.Call):
                continue
            obj = _resolve(node.func, rule.env)
            if obj is not None and _through(obj, lambda r: None) is not None and \
                    not isinstance(obj, type):
                return (f"second derivatives through {rule.name} are not available: its "
                        f"derivative calls {ast.unparse(node.func)}, which has no rule")
    return None


def _resolve(node, env):
    import ast
    import builtins
    if isinstance(node, ast.Name):
        return env.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, env)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def _first(reasons):
    return next((r for r in reasons if r is not None), None)


def mode_status(rule):
    """{mode: None | reason} for one rule, read off the registry: the rule itself for
    "reverse" and "forward", the rules of what its derivative code calls (its templates,
    vjp functions, jvp function) for the second-order routes."""
    out = {"reverse": _reverse_reason(rule), "forward": _forward_reason(rule)}
    if rule.zero:
        out.update({m: None for m in SECOND_ORDER})
        return out
    if rule.vjps is None:
        templates = _template_reason(rule) if rule.partials is not None else out["reverse"]
        out.update({m: templates for m in SECOND_ORDER})
        if rule.multilinear is not None:           # its tangent calls fn itself
            out["reverse-over-forward"] = _first([out["reverse"], templates])
        return out
    vjps = [v for v in rule.vjps if v is not None]
    out["forward-over-reverse"] = _first([out["reverse"]] + [
        _through(v, _forward_reason) for v in vjps])
    out["reverse-over-reverse"] = _first([out["reverse"]] + [
        _through(v, _reverse_reason) for v in vjps])
    if rule.multilinear is not None:
        tangent_code = out["reverse"]
    elif rule.jvp is not None:
        tangent_code = _through(rule.jvp, _reverse_reason)
    else:
        tangent_code = _through(F.jvp_by_vjps, _reverse_reason)
    out["reverse-over-forward"] = _first([out["forward"], tangent_code])
    return out


SECOND_ORDER = ("forward-over-reverse", "reverse-over-forward", "reverse-over-reverse")
