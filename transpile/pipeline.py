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
import gc
import sys
import types
import weakref

from . import astutil as A
from .analysis import Analysis
from .dependencies import Dependencies, _check_source
from .emit import Namespace, build
from .errors import TranspileError
from .seed import result_seed
from .frontend import Unit, unit_from_function
from .names import Names
from .normalize import normalize
from .array_statements import split_array_trees
from . import cache, checkpoint, in_place, optimize
from . import templates as T
from . import shapes
from .reverse import ReverseTransform
from .tapes import Resolver, STACK, PUSH, POP, drop_unread_saves, loop_tapes, split_at_first_pop


class Compiled:
    """One generated function (or forward/backward pair) with its source.

    It stays valid while everything it was built from is unchanged (see `Dependencies`):
    reading `.function`, `.forward`, `.backward` or `.source` checks that (a few identity
    comparisons) and, when something changed, transforms again in place, so every holder
    of this object (grad objects, higher-order variants, callers' code through the cells)
    sees the new derivative. `generation` counts those rebuilds."""

    def __init__(self, unit, kind, active, target=None, kinds=None, options=None):
        self.unit = unit
        self.kind = kind
        self.active = active
        self.target = target if target is not None else unit
        self.options = options
        self._function = None
        self._forward = None
        self._backward = None
        self._source = None
        self.tape_has_stack = False
        self.forward_cell = types.CellType()
        self.backward_cell = types.CellType()
        self.param_names = None
        self.kinds = dict(kinds or {})
        self.sources = []
        self.namespace = None
        self.from_cache = False         # read back from the on-disk cache
        self.generation = 0             # rebuilds in place after a dependency changed
        self.deps = None                # Dependencies (None while being built)
        self.callees = []               # Compiled objects the generated code calls

    def _fresh(self):
        """After check() failed (or to make sure): rebuild unless still current."""
        deps = self.deps
        if deps is not None and not deps.check():
            if deps.recheck():
                self._check = deps.check          # recompiled with the new identities
            else:
                _rebuild_in_place(self)
        return self

    # the fast path of each read: one call of the generated check
    @property
    def function(self):
        if self._check():
            return self._function
        return self._fresh()._function

    @function.setter
    def function(self, value):
        self._function = value

    @property
    def forward(self):
        if self._check():
            return self._forward
        return self._fresh()._forward

    @forward.setter
    def forward(self, value):
        self._forward = value

    @property
    def backward(self):
        if self._check():
            return self._backward
        return self._fresh()._backward

    @backward.setter
    def backward(self, value):
        self._backward = value

    @property
    def source(self):
        if self._check():
            return self._source
        return self._fresh()._source

    @source.setter
    def source(self, value):
        self._source = value

    @property
    def deps(self):
        return self._deps

    @deps.setter
    def deps(self, value):
        self._deps = value
        self._check = _being_built if value is None else value.check

    def is_current(self):
        """Is this derivative still built from what the function reads now?"""
        return self.deps is not None and (self.deps.check() or self.deps.recheck())


def _being_built():
    return True


_UNITS = weakref.WeakKeyDictionary()      # function -> Unit
_CACHE = weakref.WeakKeyDictionary()      # function (or Unit) -> {key: Compiled}


def unit_of(target):
    if isinstance(target, Unit):
        return target
    if hasattr(target, "nested_code"):     # a derivative called inside (higher.py): the
        return target.unit                 # function it is the derivative of
    unit = _UNITS.get(target)
    if unit is not None and not _unit_current(unit, target):
        unit = None                          # __code__ or defaults replaced: read again
    if unit is None:
        unit = _rule_call_unit(target)
        if unit is None:                     # (a rule's call is written, not read: a
            _refuse_library_function(target)     # wrapper's source need not match)
            unit = unit_from_function(target)
            _check_source(unit, target)
        unit.func_state = _func_state(target)
        _UNITS[target] = unit
    return unit


def _refuse_library_function(target):
    """A library's function without a rule is never read for its source (frontend.
    is_user_code): one TranspileError naming it."""
    import inspect
    from .frontend import LibraryFunction, is_user_code
    if inspect.isfunction(target) and not is_user_code(target.__code__, False) and not getattr(
            target, "__transpile_function__", None):
        code = target.__code__
        raise TranspileError(LibraryFunction(target).message(), code.co_filename,
                             code.co_firstlineno, target.__qualname__)


def _rule_call_unit(target):
    """A Python function with a derivative rule (scipy.special.logsumexp, a function the
    user registered with defvjp) differentiated itself: the unit of a function calling it
    with its own parameters, so that its rule applies (as at a call inside user code)
    instead of its source being read. None for other functions."""
    import inspect
    from .rules import has_rule
    if not inspect.isfunction(target) or not has_rule(target):
        return None
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    kinds = inspect.Parameter
    params = list(sig.parameters.values())
    if any(p.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD, kinds.POSITIONAL_ONLY)
           for p in params) or not all(p.name.isidentifier() for p in params):
        return None
    positional = [p.name for p in params if p.kind is kinds.POSITIONAL_OR_KEYWORD]
    keyword = [p.name for p in params if p.kind is kinds.KEYWORD_ONLY]
    name = target.__name__ if target.__name__.isidentifier() else "primitive"
    args = ", ".join(positional + [f"{k}={k}" for k in keyword])
    source = (f"def {name}({', '.join(positional + (['*'] + keyword if keyword else []))}):"
              f"\n    return primitive({args})\n")
    node = ast.parse(source).body[0]
    qualname = f"{getattr(target, '__module__', '')}.{target.__qualname__}".lstrip(".")
    return Unit(node, qualname, f"<the rule of {qualname}>", 0, {"primitive": target}, {},
                func=target, defaults=target.__defaults__, kwdefaults=target.__kwdefaults__)


def _func_state(fn):
    return (getattr(fn, "__code__", None), getattr(fn, "__defaults__", None),
            getattr(fn, "__kwdefaults__", None))


def _unit_current(unit, fn):
    state = getattr(unit, "func_state", None)
    return state is None or all(a is b for a, b in zip(state, _func_state(fn)))


def _entries(target):
    try:
        return _CACHE.setdefault(target, {})
    except TypeError:
        raise TranspileError(f"cannot cache derivatives of {target!r}") from None


def _kinds_key(kinds):
    return tuple(sorted((kinds or {}).items()))


# optimize: the passes of optimize.py; simplify: sympy on scalar code; copy_adjoints:
# helpers never update adjoints in place (for code that reverse mode differentiates again);
# checkpoint: None, "sqrt" or k (checkpointed loops, checkpoint.py); and, not by default,
# finished: zero gradients of arrays and lists made zeros of their shape (runtime.finished)
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
    return _get(fn, key, kind, tuple(wrt), kinds, options)


def vjp_pair(fn, wrt, kinds=None, checkpoint=None):
    return _pair(fn, tuple(wrt), kinds, checkpoint)


def _pair(target, active, kinds=None, checkpoint=None):
    key = ("pair", tuple(active), _kinds_key(kinds)) + ((checkpoint,) if checkpoint else ())
    return _get(target, key, "pair", tuple(active), kinds, {"checkpoint": checkpoint})


def jvp_function(fn, wrt, kinds=None, options=None, tangent_only=False):
    """Compiled forward-mode function f_jvp(*args, **tangents) -> (value, tangent), or with
    tangent_only just the tangent (a scalar function of args and tangents that reverse
    mode can differentiate again: Hessian-vector products, forward-over... reverse).
    options: as for gradient_function, ``seed``: the default of the tangent keywords
    (1.0 makes the function of one number its derivative, for grad of derivative code),
    and ``number_result``: f must return a number (hvp: a truth value is refused, as
    result_seed refuses it in gradient code)."""
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    kind = "jvp_tangent" if tangent_only else "jvp"
    key = (kind, tuple(wrt), _kinds_key(kinds), tuple(sorted(options.items())))
    return _get(fn, key, kind, tuple(wrt), kinds, options)


def _get(target, key, kind, active, kinds, options):
    """The cached Compiled for (target, key), checked current (rebuilt in place when not),
    or a new one; while it is built it is visible to recursive calls."""
    entries = _entries(target)
    compiled = entries.get(key)
    if compiled is not None:
        if compiled.deps is not None:
            compiled._fresh()
    else:
        unit = unit_of(target)
        compiled = Compiled(unit, kind, active, target, kinds, options)
        entries[key] = compiled               # visible to recursive calls while building
        try:
            _build(compiled)
        except BaseException:
            if entries.get(key) is compiled:
                del entries[key]
            raise
    if _BUILDING:
        _BUILDING[-1].callees.append(compiled)
    return compiled


# --- what a derivative is built from, and the check that it still is --------------------

_BUILDING = []          # Compiled objects being built (innermost last)
_SESSION = []           # every Compiled built since the outermost build started


def _build(compiled):
    """(Re)transform compiled's target into compiled, recording its dependencies.

    The cyclic garbage collector is paused while an outermost build runs, and comes back
    as it was when the build ends, however it ends: a transform makes and drops hundreds
    of thousands of AST nodes (next to none of them in reference cycles, which reference
    counting cannot free), and the collections their allocations set off took a sixth
    to a third of the time."""
    paused = not _BUILDING and gc.isenabled()
    if paused:
        gc.disable()
    try:
        _build_collecting_later(compiled)
    finally:
        if paused:
            gc.enable()


def _build_collecting_later(compiled):
    from .rules.registry import VERSION
    target = compiled.target
    producer = getattr(target, "__transpile_producer__", None)
    if producer is not None and producer[0]() is not None:
        fresh = getattr(producer[0](), producer[1])     # the maker, itself made current
        if fresh is not target:                         # rebuilt since: follow it
            target = compiled.target = fresh
            producer = getattr(fresh, "__transpile_producer__", producer)
    unit = compiled.unit = unit_of(target)
    compiled.callees = []
    compiled.deps = None
    own = Dependencies.of_unit(unit)
    if producer is not None:              # derivative code: current only with its maker
        own.producer(*producer)
    compiled.own_deps = own
    rules = VERSION[0]
    _BUILDING.append(compiled)
    _SESSION.append(compiled)
    ok = False
    try:
        try:
            if compiled.kind.startswith("jvp"):
                _transform(unit, compiled.active, compiled.kind, compiled, compiled.kinds,
                           compiled.options)
            else:
                _cached_transform(unit, compiled.active, compiled.kind, compiled,
                                  compiled.kinds, compiled.options)
        except TranspileError:
            raise
        except RecursionError:
            raise unit.error("the function is nested too deeply for transpile's passes "
                             "(split its longest expression into several statements)"
                             ) from None
        except Exception as exc:              # a bug of ours: one clear error, no number
            raise unit.error(f"internal error while transforming this function "
                             f"({type(exc).__name__}: {exc}); no derivative was made. "
                             "This is a bug in transpile: please report it with the "
                             "function") from exc
        ok = True
    finally:
        _BUILDING.pop()
        if not _BUILDING:
            session = list(_SESSION)
            del _SESSION[:]
            _finish_session(session, rules, ok)
    for slot in ("_function", "_forward", "_backward"):
        fn = getattr(compiled, slot)
        if fn is not None:
            try:
                fn.__transpile_producer__ = (weakref.ref(compiled), slot[1:],
                                             compiled.generation)
            except AttributeError:
                pass


def _finish_session(session, rules, ok):
    """Each Compiled of a finished build depends on its own reads, on everything its
    callees depend on (to a fixpoint: recursion) and on their generations."""
    from .rules.registry import VERSION
    if not ok or VERSION[0] != rules:
        for c in session:
            if c.deps is None:
                c.deps = Dependencies.stale()
        return
    merged = {id(c): dict(c.own_deps.entries) for c in session}
    done = {id(c) for c in session}
    changed = True
    while changed:
        changed = False
        for c in session:
            mine = merged[id(c)]
            for callee in c.callees:
                if callee is c:
                    continue
                theirs = (merged[id(callee)] if id(callee) in done
                          else callee.deps.entries if callee.deps is not None else {})
                gen = ("generation", id(callee))
                if gen not in mine:
                    mine[gen] = ("generation", callee, callee.generation)
                    changed = True
                for k, v in theirs.items():
                    if k not in mine:
                        mine[k] = v
                        changed = True
    for c in session:
        if c.deps is None:
            c.deps = Dependencies(merged[id(c)], rules)


def _rebuild_in_place(compiled):
    compiled.generation += 1
    compiled.from_cache = False
    _build(compiled)




def _concrete(target, kinds):
    """The function a call runs: for a derivative called inside a differentiated function
    (higher.NestedDerivative) its generated code for arguments of these kinds."""
    code = getattr(target, "nested_code", None)
    return target if code is None else code(kinds)


def callee_jvp(target, active, kinds, caller, stmt):
    target = _concrete(target, kinds)
    return jvp_function(target, active, kinds), unit_of(target).node.name, tangent_names(
        target, active)


def callee_pair(target, active, kinds, caller, stmt):
    target = _concrete(target, kinds)
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
    if cache.folder() is None or unit.func is None or any(
            k.endswith((CALLABLE, CLASS)) for k in kinds or {}):   # objects: not
        return _transform(unit, active, kind, compiled, kinds, options)   # on disk
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


def element_of(name):
    """`("xs", 1)` for the active name "xs[1]" (argument 1 of a `*xs` parameter),
    `("kw", "scale")` for "kw[scale]" (the keyword argument scale= in `**kw`), else
    None."""
    if name.endswith("]") and "[" in name:
        base, index = name[:-1].split("[", 1)
        if index.isdigit():
            return base, int(index)
        if index.isidentifier() and base.isidentifier():
            return base, index          # "kw[scale]": the keyword scale= in **kw
    return None


def _whole(active):
    """The parameters differentiated: an element `xs[1]` of `*xs` differentiates xs."""
    out = []
    for p in active:
        p = element_of(p)[0] if element_of(p) else p
        if p not in out:
            out.append(p)
    return tuple(out)


def _selected(active, names):
    """(statements, adjoint names aligned with active): `xs[1]` is item(dxs, 1)."""
    body, out = [], []
    for p in active:
        e = element_of(p)
        if e is None:
            out.append(names.adjoint(p))
            continue
        d = names.fresh(f"{names.adjoint(e[0])}_{e[1]}")
        body.append(A.assign(d, ast.Call(func=A.load("__item__"), args=[
            A.load(names.adjoint(e[0])), A.const(e[1])], keywords=[])))
        out.append(d)
    return body, out


CALLABLE = ".callable"       # kinds entry: the function a parameter holds (api._kinds)
CLASS = ".class"             # kinds entry: the user class of a parameter's object
NAMESPACE = ".namespace"     # kinds entry: the Array API namespace a parameter holds
XP = ".xp"                   # kinds entry: the Array API namespace of a parameter's arrays


def static_values(kinds):
    """{parameter: ("callable", function), ("class", cls), ("namespace", ns) or ("xp", ns)
    (the namespace of its arrays, in the kinds by its module's name)} from a variant's
    kinds."""
    out = {}
    for k, v in (kinds or {}).items():
        for suffix in (CALLABLE, CLASS, NAMESPACE, XP):
            if k.endswith(suffix):
                if suffix in (NAMESPACE, XP):     # kept by name (kinds stay JSON data)
                    import importlib
                    v = importlib.import_module(v)
                out[k[:-len(suffix)]] = (suffix[1:], v)
    return out


def static_kinds(statics, bound):
    """The kinds entries a callee's parameters get from the caller's statics (an argument
    that is a parameter holding a known function, an object of a known class or a
    namespace; one computed from arrays of a namespace, `f(x * 2)`, has their namespace)."""
    out = {}
    for p, arg in bound.items():
        if isinstance(arg, ast.Name) and arg.id in statics:
            what, value = statics[arg.id]
            out[p + "." + what] = value.__name__ if what in ("namespace", "xp") else value
            continue
        spaces = [statics[n][1] for n in sorted(A.names_loaded(arg))
                  if statics.get(n, ("",))[0] == "xp"]
        if spaces:
            out[p + XP] = spaces[0].__name__
    return out


def _front(unit, active, kind, kinds):
    """The passes before differentiation: (names, normalized code, its analysis)."""
    active = _whole(active)
    names = Names(unit.node, prefix="t" if kind.startswith("jvp") else "d")
    for p in unit.params:
        names.reserve(p)
    if kind.startswith("jvp"):         # tangent parameters get names callers can predict
        for p, t in tangent_names(unit, active).items():
            names.reserve(t)
            names.adjoints[p] = t
    norm = normalize(unit, names, static_values(kinds))
    _free_stack_names(norm, names)
    unknown = [p for p in active if p not in unit.params]
    if unknown:
        raise unit.error(f"no parameter named {unknown[0]!r}")
    an = Analysis(norm, active, kinds)
    if any(k != "scalar" for k in an.kind.values()):
        split_array_trees(norm, an.kind_of)
        an = Analysis(norm, active, kinds)
    return names, norm, an


def _may_be_truth_value(norm):
    """Is the result assigned a comparison, `not`, `and`/`or` or a bool literal anywhere?"""
    for s in A.nodes(ast.Module(body=norm.body, type_ignores=[])):
        if isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == norm.result
                                             for t in s.targets):
            v = s.value
            if isinstance(v, (ast.Compare, ast.BoolOp)) or (
                    isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not)) or (
                    isinstance(v, ast.Constant) and isinstance(v.value, bool)):
                return True
    return False


def _transform(unit, active, kind, compiled=None, kinds=None, options=None):
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    names, norm, an = _front(unit, active, kind, kinds)
    wanted, active = active, _whole(active)
    params = list(unit.params)
    local_names = set(an.params) | set(an.sites)
    env = Namespace(unit, names, local_names, _Pipeline)
    env.copying = options["copy_adjoints"]
    if kind.startswith("jvp"):
        return _assemble_jvp(unit, norm, an, env, names, active, compiled, options,
                             local_names)
    rt = ReverseTransform(norm, an, env, top_level=kind in ("value_and_grad", "gradient"))
    fwd_m, rev_m = rt.run()
    plan = rt.plan(params)
    if options["checkpoint"] is not None:
        fwd_m, rev_m, plan = checkpoint.restructure(fwd_m, rev_m, plan, options["checkpoint"])
    resolver = Resolver(plan)
    fwd, rev = resolver.run(fwd_m, rev_m)
    held = set()                    # what checkpoints hold: bound (None) before any use
    if options["checkpoint"] is not None:
        fwd, rev, held = checkpoint.finish(fwd, rev, plan, options["optimize"])
    result = norm.result
    fwd, rev, tapes = loop_tapes(fwd, rev, names) if options["optimize"] else (fwd, rev, [])
    # the seed of gradient code: 1.0 where the result is a number; else result_seed's (ones
    # of an array of one element, a TranspileError for anything else: seed.py)
    number_seed = kind not in ("value_and_grad", "gradient") or \
        an.kind.get(norm.result) == "scalar" or \
        all(k in ("scalar", "unknown", "module") for k in an.kind.values()) or \
        rt.primal_shapes().get(norm.result) in ((), shapes.PY)
    if kind in ("value_and_grad", "gradient") and (
            an.may_be_complex(A.load(norm.result)) or _may_be_truth_value(norm)):
        number_seed = False      # result_seed refuses these on every route (seed.py)
    fwd, rev = shapes.specialise(fwd, rev, rt, kind, compiled, resolver, number_seed)
    all_scalar = all(k == "scalar" for k in an.kind.values())
    in_rev = _names_in(rev)                  # every name the adjoint sweep uses
    uses_stack = bool(in_rev & {PUSH, POP}) or bool(_names_in(fwd) & {PUSH, POP})
    nones = sorted(v for v in resolver.saved | held if v not in params)
    d_result = names.adjoint(result)
    adjoints = (in_rev & set(names.adjoints.values())) - {d_result}
    name = unit.node.name
    if compiled is None:
        compiled = Compiled(unit, kind, active)
    compiled.param_names = params
    if kind in ("value_and_grad", "gradient"):
        value = names.unique("_value")
        body = []
        if uses_stack:
            body += T.expand(T.stack_with_pop, STACK=STACK, PUSH=PUSH, POP=POP)
        body += [A.assign(v, A.const(None)) for v in nones]
        body += fwd
        if result in resolver.saved | held:   # the sweep will restore (or re-run) result
            body.append(A.assign(value, A.load(result)))
        else:
            value = result
        grads = [names.adjoint(p) for p in active]
        for dv in sorted(adjoints | set(grads)):
            body.append(A.assign(dv, _zero_adjoint(dv, rt, env)))
        seed = A.const(1.0)
        if not number_seed:
            seed = ast.Call(func=A.load(env.bind("result_seed", result_seed)),
                            args=[A.load(result)], keywords=[])
        body.append(A.assign(d_result, seed))
        body += rev
        picked, grads = _selected(wanted, names)
        body += _bound_item(picked, env)
        if options.get("finished"):       # zero gradients shaped as transpile.grad's
            finished = env.helper("finished")
            body += [A.assign(g, ast.Call(func=A.load(finished), args=[A.load(g), A.load(p)],
                                          keywords=[])) for g, p in zip(grads, wanted)
                     if element_of(p) is None]
        out = grads[0] if len(grads) == 1 else T.names_tuple(grads)
        body += (T.expand(T.return_value_and, VALUE=value, OUT=out) if kind == "value_and_grad"
                 else T.expand(T.return_only, OUT=out))
        body = _optimized(body, env, local_names, options, names, all_scalar, rt)
        if options["optimize"] and options["checkpoint"] is None:
            body = sum(drop_unread_saves(*split_at_first_pop(body)), [])
        if options["optimize"] and kind == "value_and_grad" and not env.copying and \
                not all_scalar and not an.complex:
            # (code not differentiated again, with no complex value: a shape means real)
            body = in_place.lower(body, rt, env)
        args = A.copy_tree(unit.node.args)
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
        fbody += T.expand(T.stack, STACK=STACK, PUSH=PUSH)
    fbody += [A.assign(v, A.const(None)) for v in sorted(set(nones) | (
        set(needed) - set(params) - set(unit.extra_params)))]
    fbody += fwd
    fbody += T.expand(T.return_value_and, VALUE=result, OUT=T.names_tuple(tape_vars))
    tape_name = names.unique("_tape")
    bbody = []
    if tape_vars:
        bbody += T.expand(T.unpack_tape, TAPE=tape_vars, TAPE_ARG=tape_name)
    if uses_stack:
        bbody += T.expand(T.bind_method, NAME=POP, STACK=STACK, METHOD="pop")
    if PUSH in in_rev:                      # checkpointed loops save again while going back
        bbody += T.expand(T.bind_method, NAME=PUSH, STACK=STACK, METHOD="append")
    grads = [names.adjoint(p) for p in active]
    for dv in sorted((adjoints | set(grads)) - {d_result}):   # d_result: the argument
        bbody.append(A.assign(dv, _zero_adjoint(dv, rt, env)))
    bbody += rev
    picked, grads = _selected(wanted, names)
    bbody += _bound_item(picked, env)
    bbody += T.expand(T.return_only, OUT=T.names_tuple(grads))
    bbody = _optimized(bbody, env, local_names, options, names, all_scalar, rt)
    if d_result in optimize.changed_in_place(bbody):
        # the caller's array, which this function would write into: a copy
        k = next((i for i, s in enumerate(bbody) if d_result in A.names_loaded(s)), 0)
        bbody.insert(k, A.assign(d_result, ast.Call(func=A.load(env.helper("owned")),
                                                     args=[A.load(d_result)], keywords=[])))
    if options["optimize"] and options["checkpoint"] is None:
        fbody, bbody = drop_unread_saves(fbody, bbody)
    if options["optimize"]:
        fbody = optimize.hoist_module_functions(fbody, env, local_names)
        fbody = optimize.drop_unneeded_inits(fbody)
    fargs = A.copy_tree(unit.node.args)
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


def _bound_item(stmts, env):
    """The `__item__` of `_selected` bound to runtime.item."""
    if stmts:
        name = env.helper("item")
        for s in stmts:
            s.value.func.id = name
    return stmts


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
    """Keyword names of the tangent parameters of target's jvp function: t<param>."""
    unit = unit_of(target)
    used = {n.id for n in A.nodes(unit.node) if isinstance(n, ast.Name)} | set(unit.params)
    out = {}
    for p in active:
        name = "t" + p
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
    if options.get("number_result") and _may_be_truth_value(norm):
        body.append(ast.Expr(ast.Call(func=A.load(env.bind("result_seed", result_seed)),
                                      args=[A.load(result)], keywords=[])))
    if compiled.kind == "jvp_tangent":
        body += T.expand(T.return_only, OUT=out)
    else:
        body += T.expand(T.return_value_and, VALUE=result, OUT=out)
    body = _optimized(body, env, local_names, options, names, all_scalar=False)
    args = A.copy_tree(unit.node.args)
    seed = options.get("seed", 0.0)         # 1.0: called without tangents, a derivative
    for t in tangents:                       # keyword-only, default 0.0 (no tangent)
        args.kwonlyargs.append(ast.arg(arg=t))
        args.kw_defaults.append(A.const(seed))
    name = unit.node.name
    kwdefaults = dict(unit.kwdefaults or {}, **{t: seed for t in tangents})
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


def _zero_adjoint(dv, rt, env):
    """The first value of adjoint dv: 0.0 (the zero placeholder), or zeros shaped like its
    parameter where the sweep adds into it in place (shapes.specialise's zero_buffers)."""
    p = rt.zero_buffers.get(dv)
    if p is None:
        return A.const(0.0)
    shape = ast.Attribute(value=A.load(p), attr="shape", ctx=ast.Load())
    return ast.Call(func=shapes.np_function(env, "zeros"), args=[shape], keywords=[])


def _optimized(body, env, local_names, options, names, all_scalar, rt=None):
    """One generated body through the optimiser: the passes of optimize.py (with
    `optimize`) and, for an adjoint sweep (`rt`, its ReverseTransform), the broadcasts
    its operations do anyway left to them (shapes.implicit_fills), then sympy on
    all-scalar code (with `simplify`)."""
    if options["optimize"]:
        facts = optimize.Facts()
        pure = optimize.pure_calls(body, env, local_names, facts)
        body = optimize.run(body, pure, facts)
        if rt is not None:
            body, changed = shapes.implicit_fills(body, rt)
            if changed:
                body = optimize.run(body, pure)
        body = _zero_vjp_calls(body, env)
        body = optimize.hoist_module_functions(body, env, local_names)
    if options["simplify"] and all_scalar:
        body = optimize.simplify_scalar(body, set(names.adjoints.values()))
    return body


def _zero_vjp_calls(body, env):
    """A rule's vjp function called with the zero adjoint 0.0 (a value carrying a
    derivative that nothing reads back: only its shape is taken, or it is not used), as a
    literal or a top-level name that surely holds it, gives the zero adjoint of its
    argument: `zeros_like(arg)`, without calling the vjp (which may need an adjoint shaped
    like its result: matmul, concatenate)."""
    if not any(isinstance(origin, tuple) and origin[0] == "vjp"
               for origin in env.origins.values()):
        return list(body)               # (no vjp function is called: nothing to replace)
    zeros = set()

    def is_zero(node):
        if isinstance(node, ast.Constant):
            return type(node.value) in (int, float) and node.value == 0
        return isinstance(node, ast.Name) and node.id in zeros

    def zero_vjp(node):
        """Is node such a call (its replacement leaves its parts as they are)?"""
        origin = env.origins.get(node.func.id) if isinstance(node.func, ast.Name) else None
        return (isinstance(origin, tuple) and origin[0] == "vjp" and node.args
                and is_zero(node.args[0]) and len(node.args) > 2 + origin[2])

    class Zeros(A.Transformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            if not zero_vjp(node):
                return node
            origin = env.origins[node.func.id]
            return ast.copy_location(ast.Call(
                func=A.load(env.helper("zeros_like")),
                args=[A.copy_tree(node.args[2 + origin[2]])], keywords=[]), node)
    out = []
    for stmt in body:
        simple = isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
            stmt.targets[0], ast.Name)
        if not simple:                  # a block: what it writes may not be zero inside
            zeros -= A.names_stored(stmt)
        if any(isinstance(n, ast.Call) and zero_vjp(n) for n in A.nodes(stmt)):
            stmt = Zeros().visit(stmt)
        out.append(stmt)
        if simple:
            target = stmt.targets[0].id
            if is_zero(stmt.value):
                zeros.add(target)
            else:
                zeros.discard(target)
        else:
            zeros -= A.names_stored(stmt)
    return out


def _names_in(stmts):
    """The names of every Name node in stmts (read, written or deleted)."""
    out = set()
    for s in stmts:
        loaded, stored = A.name_sets(s)
        out |= loaded
        out |= stored
    return out


def stages(fn, wrt, kinds=None, options=None):
    """The output of each pass for fn differentiated with respect to wrt (parameter
    names), as text: for golden tests and for reading what a pass did.

    {"normalize": the normalized function (ast.unparse), "analysis": its active and
    overwritten variables and the kind of each variable (sorted; both as the gradient
    sees them), "reverse": the gradient source with optimize and simplify off,
    "optimize": the gradient source as `gradient_function` makes it, "forward": the jvp
    source}; each generated source is followed by those of the derivatives of user
    functions it calls (built as for any call: optimized). The function's own passes run
    afresh (its cache entries are neither read nor written)."""
    options = dict(DEFAULT_OPTIONS, **(options or {}))
    unit = unit_of(fn)
    active = tuple(wrt)
    _, norm, an = _front(unit, active, "value_and_grad", kinds)
    fdef = copy.copy(unit.node)
    fdef.body, fdef.decorator_list = norm.body + [ast.Return(ast.Name(norm.result))], []
    names = sorted(set(an.kind) | set(an.sites) | set(an.active))
    analysis = [f"params: {', '.join(an.params)}",
                f"active: {', '.join(sorted(an.active))}",
                f"overwritten: {', '.join(n for n in names if an.overwritten(n))}",
                "kinds:"] + [f"  {n}: {an.kind.get(n, '-')}" for n in names]
    if an.elem:
        analysis += ["elements:"] + [f"  {n}: {k}" for n, k in sorted(an.elem.items())]
    plain = dict(options, optimize=False, simplify=False)
    return {
        "normalize": ast.unparse(fdef) + "\n",
        "analysis": "\n".join(analysis) + "\n",
        "reverse": _with_callees(_transform(unit, active, "value_and_grad", None, kinds,
                                            plain)),
        "optimize": _with_callees(_transform(unit, active, "value_and_grad", None, kinds,
                                             options)),
        "forward": _with_callees(_transform(unit, active, "jvp",
                                            Compiled(unit, "jvp", active), kinds, options)),
    }


def _with_callees(compiled):
    """compiled's source, then its callees' (each once, in the order they are bound,
    under a comment naming what the caller calls them)."""
    order, labels, todo = [compiled], [""], [compiled]
    while todo:
        here = {}
        for name, origin in todo.pop(0).namespace.origins.items():
            if origin[0] == "callee":
                here.setdefault(id(origin[1]), (origin[1], []))[1].append(name)
        for callee, bound in here.values():
            if not any(callee is c for c in order):
                order.append(callee)
                labels.append(f"# called as {', '.join(bound)}\n")
                todo.append(callee)
    return "\n\n".join(label + c.source for c, label in zip(order, labels))
