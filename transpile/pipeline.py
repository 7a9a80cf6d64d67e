"""The pass pipeline: frontend -> normalize -> analysis -> reverse -> emit, with the cache.

`gradient_function(fn, wrt)` builds one function computing value and gradient in a single
body (forward sweep then adjoint sweep, all locals). `callee_pair(fn, active)` builds the
split form used for calls between transformed functions and for `vjp`:
``f_forward(*args) -> (value, tape)`` and ``f_backward(tape, d_result) -> adjoints``.
Everything is cached per function object and set of active parameters, so the second
request does no transformation work; recursion finds its own entry (through cells) while
it is being built.
"""
import ast
import copy
import sys
import types
import weakref

from . import astutil as A
from .analysis import Analysis
from .emit import Namespace, build
from .errors import TranspileError
from .frontend import Unit, unit_from_function
from .names import Names
from .normalize import normalize, split_array_trees
from . import cache, checkpoint, optimize
from .reverse import Resolver, ReverseTransform, STACK, PUSH, POP, loop_tapes


class Compiled:
    """One generated function (or forward/backward pair) with its source."""

    def __init__(self, unit, kind, active):
        self.unit = unit
        self.kind = kind
        self.active = active
        self.function = None
        self.forward = None
        self.backward = None
        self.source = None
        self.tape_has_stack = False
        self.forward_cell = types.CellType()
        self.backward_cell = types.CellType()
        self.param_names = None
        self.kinds = {}
        self.sources = []
        self.namespace = None
        self.from_cache = False         # read back from the on-disk cache


_UNITS = weakref.WeakKeyDictionary()      # function -> Unit
_CACHE = weakref.WeakKeyDictionary()      # function (or Unit) -> {key: Compiled}


def unit_of(target):
    if isinstance(target, Unit):
        return target
    unit = _UNITS.get(target)
    if unit is None:
        unit = unit_from_function(target)
        _UNITS[target] = unit
    return unit


def _entries(target):
    try:
        return _CACHE.setdefault(target, {})
    except TypeError:
        raise TranspileError(f"cannot cache derivatives of {target!r}") from None


def _kinds_key(kinds):
    return tuple(sorted((kinds or {}).items()))


# optimize: the passes of optimize.py; simplify: sympy on scalar code; copy_adjoints:
# helpers never update adjoints in place (for code that reverse mode differentiates again);
# checkpoint: None, "sqrt" or k (checkpointed loops, checkpoint.py)
DEFAULT_OPTIONS = {"optimize": True, "simplify": True, "copy_adjoints": False,
                   "checkpoint": None}


def gradient_function(fn, wrt, kinds=None, options=None, gradient_only=False):
    """Compiled function f(*args) -> (value, grads) (grads a tuple aligned with wrt),
    specialized on the kinds of the arguments (scalar / array / list).

    With gradient_only, f(*args) -> grads alone: the form that is differentiated again
    (Hessians, grad of grad). options: optimize (the passes of optimize.py), simplify
    (sympy on scalar code), checkpoint (None, "sqrt" or k: checkpointed loops,
    checkpoint.py), copy_adjoints."""
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    kind = "gradient" if gradient_only else "value_and_grad"
    key = (kind, tuple(wrt), _kinds_key(kinds), tuple(sorted(options.items())))
    entries = _entries(fn)
    if key not in entries:
        unit = unit_of(fn)
        entries[key] = _cached_transform(unit, tuple(wrt), kind, kinds=kinds,
                                         options=options)
    return entries[key]


def vjp_pair(fn, wrt, kinds=None, checkpoint=None):
    return _pair(fn, tuple(wrt), kinds, checkpoint)


def _pair(target, active, kinds=None, checkpoint=None):
    key = ("pair", tuple(active), _kinds_key(kinds)) + ((checkpoint,) if checkpoint else ())
    entries = _entries(target)
    if key not in entries:
        unit = unit_of(target)
        compiled = Compiled(unit, "pair", active)
        compiled.kinds = dict(kinds or {})
        entries[key] = compiled               # visible to recursive calls while building
        try:
            _cached_transform(unit, active, "pair", compiled, kinds=kinds,
                              options={"checkpoint": checkpoint})
        except BaseException:
            del entries[key]
            raise
    return entries[key]


def jvp_function(fn, wrt, kinds=None, options=None, tangent_only=False):
    """Compiled forward-mode function f_jvp(*args, **tangents) -> (value, tangent), or with
    tangent_only just the tangent (a scalar function of args and tangents that reverse
    mode can differentiate again: Hessian-vector products, forward-over... reverse)."""
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    kind = "jvp_tangent" if tangent_only else "jvp"
    key = (kind, tuple(wrt), _kinds_key(kinds), tuple(sorted(options.items())))
    entries = _entries(fn)
    if key not in entries:
        unit = unit_of(fn)
        compiled = Compiled(unit, kind, tuple(wrt))
        compiled.kinds = dict(kinds or {})
        entries[key] = compiled                 # recursion finds it while it is built
        try:
            _transform(unit, tuple(wrt), kind, compiled, kinds=kinds, options=options)
        except BaseException:
            del entries[key]
            raise
    return entries[key]


def callee_jvp(target, active, kinds, caller, stmt):
    return jvp_function(target, active, kinds), unit_of(target).node.name, tangent_names(
        target, active)


def callee_pair(target, active, kinds, caller, stmt):
    compiled = _pair(target, active, kinds)
    base = unit_of(target).node.name
    return compiled, base


def bind_call(target, call, caller, stmt):
    """Map a call's arguments to the callee's parameters: (params, {param: atom})."""
    unit = unit_of(target)
    a = unit.node.args
    positional = [p.arg for p in a.posonlyargs + a.args]
    params = positional + [p.arg for p in a.kwonlyargs]
    bound = {}
    if len(call.args) > len(positional):
        raise caller.error(f"too many arguments in the call to {unit.name}", stmt)
    for p, arg in zip(positional, call.args):
        bound[p] = arg
    for kw in call.keywords:
        if kw.arg not in params:
            raise caller.error(f"{unit.name} has no parameter '{kw.arg}'", stmt)
        bound[kw.arg] = kw.value
    return params, bound


class _Pipeline:
    """What the namespace asks of the pipeline (kept as a tiny interface)."""
    bind_call = staticmethod(bind_call)
    callee_pair = staticmethod(callee_pair)
    callee_jvp = staticmethod(callee_jvp)


def _cached_transform(unit, active, kind, compiled=None, kinds=None, options=None):
    """_transform, or its result read back from the on-disk cache when that is on."""
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    if cache.folder() is None or unit.func is None:
        return _transform(unit, active, kind, compiled, kinds, options)
    try:
        digest = cache.key(unit, active, kind, kinds, options)
    except cache.NotCacheable:
        return _transform(unit, active, kind, compiled, kinds, options)
    payload = cache.load(digest)
    if payload is not None:
        try:
            return _rebuild(unit, active, kind, compiled, kinds, payload)
        except cache.NotCacheable:
            pass
    result = _transform(unit, active, kind, compiled, kinds, options)
    try:
        cache.store(digest, _describe(result, unit))
    except (cache.NotCacheable, OSError, KeyError):
        pass
    return result


def _describe(compiled, unit):
    ns = compiled.namespace
    functions = ([compiled.function] if compiled.function is not None
                 else [compiled.forward, compiled.backward])
    return {
        "kind": compiled.kind,
        "functions": [{"name": fn.__name__, "source": src,
                       "lines": sorted(fn.__transpile_lines__.items())}
                      for fn, src in zip(functions, compiled.sources)],
        "bindings": [[name, cache.describe(name, obj, ns.origins.get(name), unit)]
                     for name, obj in ns.bindings.items()],
        "tape_has_stack": compiled.tape_has_stack,
        "params": compiled.param_names,
    }


class _LoadedNamespace:
    def __init__(self, bindings, origins):
        self.bindings, self.origins = bindings, origins


def _rebuild(unit, active, kind, compiled, kinds, payload):
    """Compile cached generated source with freshly resolved free names."""
    from .emit import load
    if compiled is None:
        compiled = Compiled(unit, kind, active)
    bindings, origins = {}, {}
    for name, desc in payload["bindings"]:
        value = cache.resolve(desc, unit, sys.modules[__name__])
        if desc[0] == "callee":
            cell, callee = value
            bindings[name] = cell
            origins[name] = ("callee", callee, desc[4])
        else:
            bindings[name] = value
            if desc[0] in ("vjp", "vjps"):
                from .rules import lookup
                origins[name] = (desc[0], lookup(cache._from_path(desc[1]), desc[2]),
                                 desc[3])
    built = []
    for k, f in enumerate(payload["functions"]):
        backward = payload["kind"] == "pair" and k == 1
        fn = load(f["name"], f["source"], bindings, unit,
                  None if backward else unit.defaults, None if backward else unit.kwdefaults,
                  kind="backward" if backward else payload["kind"],
                  lines={int(a): int(b) for a, b in f["lines"]})
        built.append(fn)
    compiled.sources = [f["source"] for f in payload["functions"]]
    compiled.namespace = _LoadedNamespace(bindings, origins)
    compiled.param_names = payload["params"]
    compiled.tape_has_stack = payload["tape_has_stack"]
    if payload["kind"] == "pair":
        compiled.forward, compiled.backward = built
        compiled.forward_cell.cell_contents, compiled.backward_cell.cell_contents = built
        compiled.source = compiled.sources[0] + "\n\n" + compiled.sources[1]
    else:
        compiled.function = built[0]
        compiled.source = compiled.sources[0]
    compiled.from_cache = True
    return compiled


def _transform(unit, active, kind, compiled=None, kinds=None, options=None):
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    names = Names(unit.node)
    for p in unit.params:
        names.reserve(p)
    if kind.startswith("jvp"):         # tangent parameters get names callers can predict
        for p, t in tangent_names(unit, active).items():
            names.reserve(t)
            names.adjoints[p] = t
    norm = normalize(unit, names)
    _free_stack_names(norm, names)
    params = list(unit.params)
    unknown = [p for p in active if p not in params]
    if unknown:
        raise unit.error(f"no parameter named {unknown[0]!r}")
    an = Analysis(norm, active, kinds)
    if any(k != "scalar" for k in an.kind.values()):
        split_array_trees(norm, an.kind_of)
        an = Analysis(norm, active, kinds)
    local_names = set(an.params) | set(an.sites)
    env = Namespace(unit, names, local_names, _Pipeline)
    env.copying = options["copy_adjoints"]
    if kind.startswith("jvp"):
        return _assemble_jvp(unit, norm, an, env, names, active, compiled, options,
                             local_names)
    rt = ReverseTransform(norm, an, env, top_level=kind == "value_and_grad")
    fwd_m, rev_m = rt.run()
    if options["checkpoint"] is not None:
        fwd_m, rev_m = checkpoint.restructure(fwd_m, rev_m, rt, params, options["checkpoint"])
    resolver = Resolver(rt, params)
    fwd, rev = resolver.run(fwd_m, rev_m)
    held = set()                    # what checkpoints hold: bound (None) before any use
    if options["checkpoint"] is not None:
        fwd, rev, held = checkpoint.finish(fwd, rev, rt, names, options["optimize"])
    result = norm.result
    fwd, rev, tapes = loop_tapes(fwd, rev, names) if options["optimize"] else (fwd, rev, [])
    all_scalar = all(k == "scalar" for k in an.kind.values())
    uses_stack = any(isinstance(n, ast.Name) and n.id in (PUSH, POP)
                     for s in fwd + rev for n in ast.walk(s))
    nones = sorted(v for v in resolver.saved | held if v not in params)
    d_result = names.adjoint(result)
    adjoints = _adjoints_read(rev, names) - {d_result}
    name = unit.node.name
    if compiled is None:
        compiled = Compiled(unit, kind, active)
    compiled.param_names = params
    if kind in ("value_and_grad", "gradient"):
        value = names.unique("_value")
        body = []
        if uses_stack:
            body += A.parse_stmts(f"{STACK} = []\n{PUSH} = {STACK}.append\n"
                                  f"{POP} = {STACK}.pop")
        body += [A.assign(v, A.const(None)) for v in nones]
        body += fwd
        if result in resolver.saved | held:   # the sweep will restore (or re-run) result
            body.append(A.assign(value, A.load(result)))
        else:
            value = result
        grads = [names.adjoint(p) for p in active]
        for dv in sorted(adjoints | set(grads)):
            body.append(A.assign(dv, A.const(0.0)))
        body.append(A.assign(d_result, A.const(1.0)))
        body += rev
        out = grads[0] if len(grads) == 1 else "(" + ", ".join(grads) + ",)"
        body += A.parse_stmts(f"return {value}, {out}" if kind == "value_and_grad"
                              else f"return {out}")
        if options["optimize"]:
            body = optimize.run(body, optimize.pure_calls(body, env, local_names))
            body = optimize.hoist_module_functions(body, env, local_names)
        if options["simplify"] and all_scalar:
            body = optimize.simplify_scalar(body, set(names.adjoints.values()))
        args = copy.deepcopy(unit.node.args)
        fn, source = build(f"grad_{name}", args, body, env, unit, unit.defaults,
                           unit.kwdefaults, kind="grad")
        compiled.function, compiled.source = fn, source
        compiled.sources = [source]
        compiled.namespace = env
        return compiled
    # forward / backward pair
    needed = sorted(resolver.needed) + tapes
    tape_vars = ([STACK] if uses_stack else []) + needed
    fbody = []
    if uses_stack:
        fbody += A.parse_stmts(f"{STACK} = []\n{PUSH} = {STACK}.append")
    fbody += [A.assign(v, A.const(None)) for v in sorted(set(nones) | (
        set(needed) - set(params) - set(unit.extra_params)))]
    fbody += fwd
    tape = ", ".join(tape_vars) + ("," if len(tape_vars) == 1 else "")
    fbody += A.parse_stmts(f"return {result}, ({tape})")
    tape_name = names.unique("_tape")
    bbody = []
    if tape_vars:
        bbody += A.parse_stmts(f"{tape} = {tape_name}")
    if uses_stack:
        bbody += A.parse_stmts(f"{POP} = {STACK}.pop")
    if _uses_name(rev, PUSH):               # checkpointed loops save again while going back
        bbody += A.parse_stmts(f"{PUSH} = {STACK}.append")
    grads = [names.adjoint(p) for p in active]
    for dv in sorted((adjoints | set(grads)) - {d_result}):   # d_result: the argument
        bbody.append(A.assign(dv, A.const(0.0)))
    bbody += rev
    bbody += A.parse_stmts("return (" + ", ".join(grads) + ",)")
    if options["optimize"]:
        bbody = optimize.run(bbody, optimize.pure_calls(bbody, env, local_names))
        bbody = optimize.hoist_module_functions(bbody, env, local_names)
        fbody = optimize.hoist_module_functions(fbody, env, local_names)
    if options["simplify"] and all_scalar:
        bbody = optimize.simplify_scalar(bbody, set(names.adjoints.values()))
    fargs = copy.deepcopy(unit.node.args)
    fwd_fn, fsrc = build(f"{name}_forward", fargs, fbody, env, unit, unit.defaults,
                         unit.kwdefaults, kind="forward")
    bargs = ast.arguments(posonlyargs=[], args=[ast.arg(arg=tape_name),
                                                ast.arg(arg=d_result)],
                          vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                          defaults=[])
    bwd_fn, bsrc = build(f"{name}_backward", bargs, bbody, env, unit, kind="backward")
    compiled.forward, compiled.backward = fwd_fn, bwd_fn
    compiled.forward_cell.cell_contents = fwd_fn
    compiled.backward_cell.cell_contents = bwd_fn
    compiled.source = fsrc + "\n\n" + bsrc
    compiled.sources = [fsrc, bsrc]
    compiled.namespace = env
    compiled.tape_has_stack = uses_stack
    return compiled


def _free_stack_names(norm, names):
    """Code that is itself derivative code has a `_stack` of its own: rename it, so the
    names the reverse transform gives its stack stay free."""
    clash = {n: names.fresh(n) for n in (STACK, PUSH, POP)
             if n in names.used and n not in norm.params}
    if clash:
        for s in norm.body:
            A.rename(s, clash)
        norm.result = clash.get(norm.result, norm.result)


def tangent_names(target, active):
    """Keyword names of the tangent parameters of target's jvp function: d<param>."""
    unit = unit_of(target)
    used = {n.id for n in ast.walk(unit.node) if isinstance(n, ast.Name)} | set(unit.params)
    out = {}
    for p in active:
        name = "d" + p
        while name in used or name in out.values():
            name += "_"
        out[p] = name
    return out


def _assemble_jvp(unit, norm, an, env, names, active, compiled, options, local_names):
    """f_jvp(*params, *tangents of the active params) -> (value, tangent of the value)."""
    from .forward import ForwardTransform
    body = ForwardTransform(norm, an, env).run()
    tangents = [names.adjoint(p) for p in active]
    result = norm.result
    out = names.adjoint(result)         # set by ForwardTransform.run, shaped like result
    if compiled.kind == "jvp_tangent":
        body += A.parse_stmts(f"return {out}")
    else:
        body += A.parse_stmts(f"return {result}, {out}")
    if options["optimize"]:
        body = optimize.run(body, optimize.pure_calls(body, env, local_names))
        body = optimize.hoist_module_functions(body, env, local_names)
    args = copy.deepcopy(unit.node.args)
    for t in tangents:                       # keyword-only, default 0.0 (no tangent)
        args.kwonlyargs.append(ast.arg(arg=t))
        args.kw_defaults.append(A.const(0.0))
    name = unit.node.name
    kwdefaults = dict(unit.kwdefaults or {}, **{t: 0.0 for t in tangents})
    suffix = "_tangent" if compiled.kind == "jvp_tangent" else "_jvp"
    fn, source = build(f"{name}{suffix}", args, body, env, unit, unit.defaults, kwdefaults,
                       kind=compiled.kind)
    compiled.function = compiled.forward = fn
    compiled.forward_cell.cell_contents = fn
    compiled.source = source
    compiled.sources = [source]
    compiled.namespace = env
    compiled.param_names = list(unit.params)
    return compiled


def _uses_name(stmts, name):
    return any(isinstance(n, ast.Name) and n.id == name for s in stmts for n in ast.walk(s))


def _adjoints_read(stmts, names):
    adj = set(names.adjoints.values())
    out = set()
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and n.id in adj:
                out.add(n.id)
    return out
