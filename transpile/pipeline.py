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
from . import shapes


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
    unit = _UNITS.get(target)
    if unit is not None and not _unit_current(unit, target):
        unit = None                          # __code__ or defaults replaced: read again
    if unit is None:
        unit = unit_from_function(target)
        _check_source(unit, target)
        unit.func_state = _func_state(target)
        _UNITS[target] = unit
    return unit


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
    return _get(fn, key, kind, tuple(wrt), kinds, options)


def vjp_pair(fn, wrt, kinds=None, checkpoint=None):
    return _pair(fn, tuple(wrt), kinds, checkpoint)


def _pair(target, active, kinds=None, checkpoint=None):
    key = ("pair", tuple(active), _kinds_key(kinds)) + ((checkpoint,) if checkpoint else ())
    return _get(target, key, "pair", tuple(active), kinds, {"checkpoint": checkpoint})


def jvp_function(fn, wrt, kinds=None, options=None, tangent_only=False):
    """Compiled forward-mode function f_jvp(*args, **tangents) -> (value, tangent), or with
    tangent_only just the tangent (a scalar function of args and tangents that reverse
    mode can differentiate again: Hessian-vector products, forward-over... reverse)."""
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
    """(Re)transform compiled's target into compiled, recording its dependencies."""
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


class Dependencies:
    """What generated code was built from, as (container, key, object) identities: the
    globals and closure cells the function reads (and the builtins it falls back on), the
    attributes it reads of the modules and classes among them, the function's __code__ and
    defaults, each callee's generation, the maker of derivative code, and the version of
    the rule registry. `check()` compares them all (a generated boolean expression, a few
    tens of nanoseconds per entry). `recheck()`, the slow path after a mismatch, accepts a
    data global (a number, an array, a list...) rebound to a value of the same kind: the
    generated code reads such values at run time and was specialized on their kind only."""

    def __init__(self, entries=None, rules=None):
        self.entries = entries if entries is not None else {}
        self.rules = rules
        self.check = self._compile() if rules is not None else (lambda: True)

    @classmethod
    def stale(cls):
        d = cls({}, None)
        d.check = lambda: False
        d.recheck = lambda: False
        return d

    # --- collecting -----------------------------------------------------------------
    @classmethod
    def of_unit(cls, unit):
        d = cls()
        fn = unit.func
        code = getattr(fn, "__code__", None)
        if code is not None:           # (defaults matter only where there are parameters)
            for attr, used in (("__code__", True), ("__defaults__", code.co_argcount),
                               ("__kwdefaults__", code.co_kwonlyargcount)):
                if used:
                    d.add(("attr", fn, attr), getattr(fn, attr))
        for _, where, value in reads(unit.globals, unit.closure, getattr(fn, "__code__", None)
                                     or unit.node):
            d.add(where, value)
        return d

    def add(self, where, value):
        k = (where[0],) + tuple(id(w) for w in where[1:])
        self.entries[k] = where + (value,)

    def producer(self, ref, slot, generation):
        maker = ref()
        if maker is not None:
            self.entries[("producer", id(maker))] = ("producer", maker, generation)

    # --- checking -------------------------------------------------------------------
    def _compile(self):
        """check() as one generated boolean expression over the recorded identities."""
        from .rules.registry import VERSION
        args, values, terms = ["_R", "_M"], [VERSION, _MISSING], [f"_R[0] == {self.rules}"]
        for k, (kind, *rest) in enumerate(self.entries.values()):
            o, e = f"_o{k}", f"_e{k}"
            if kind == "dict":
                space, key, value = rest
                args += [o, e]
                values += [space, value]
                terms.append(f"{key!r} not in {o}" if value is _MISSING
                             else f"{o}[{key!r}] is {e}")
            elif kind == "cell":
                cell, value = rest
                args += [o, e]
                values += [cell, value]
                terms.append(f"{o}.cell_contents is {e}")
            elif kind == "attr":
                obj, attr, value = rest
                args += [o, e]
                values += [obj, value]
                terms.append(f"{o}.{attr} is {e}")
            elif kind == "generation":
                callee, generation = rest
                args.append(o)
                values.append(callee)
                terms.append(f"{o}.generation == {generation}")
            elif kind == "producer":
                maker, generation = rest
                args.append(o)
                values.append(maker)
                terms.append(f"{o}.generation == {generation} and {o}.is_current()")
        source = (f"def _make({', '.join(args)}):\n"
                  f"    def check():\n"
                  f"        try:\n"
                  f"            return {' and '.join(terms)}\n"
                  f"        except (KeyError, ValueError, AttributeError):\n"
                  f"            return False\n"
                  f"    return check\n")
        space = {}
        exec(compile(source, "<transpile dependency check>", "exec"), space)
        return space["_make"](*values)

    def recheck(self):
        """After check() failed: still current if only data globals changed, to values of
        the same kind (then the expected identities are updated)."""
        from .rules.registry import VERSION
        if self.rules != VERSION[0]:
            return False
        updates = {}
        for k, entry in self.entries.items():
            kind = entry[0]
            if kind == "dict":
                now = entry[1].get(entry[2], _MISSING)
            elif kind == "cell":
                try:
                    now = entry[1].cell_contents
                except ValueError:
                    return False
            elif kind == "attr":
                now = getattr(entry[1], entry[2], _MISSING)
            elif kind == "generation":
                if entry[1].generation != entry[2]:
                    return False
                continue
            else:
                if entry[1].generation != entry[2] or not entry[1].is_current():
                    return False
                continue
            then = entry[-1]
            if now is then:
                continue
            if kind == "attr" or not (_is_data(now) and _is_data(then)
                                      and _data_kind(now) == _data_kind(then)):
                return False
            updates[k] = entry[:-1] + (now,)
        self.entries.update(updates)
        self.check = self._compile()
        return True


def reads(globals_, closure, code):
    """What code (a code object, or the AST of a lifted function) reads from its
    environment: [(label, where, value)], label a JSON-able path (("global", name),
    ("cell", name), ("builtin", name), ("attr", owner label, attr)), where the container
    and key a check compares, value the object found (_MISSING where none)."""
    import builtins
    if isinstance(code, types.CodeType):
        global_names, attr_names = _names_read(code)
    else:
        global_names, attr_names = _names_in_ast(code)
    out, values = [], []
    for name in sorted(global_names):
        if name in closure:
            cell = closure[name]
            try:
                value = cell.cell_contents
            except ValueError:
                value = _MISSING
            out.append((("cell", name), ("cell", cell), value))
        elif name in globals_:
            value = globals_[name]
            out.append((("global", name), ("dict", globals_, name), value))
        else:
            out.append((("global", name), ("dict", globals_, name), _MISSING))
            value = builtins.__dict__.get(name, _MISSING)
            out.append((("builtin", name), ("dict", builtins.__dict__, name), value))
        values.append((out[-1][0], value))
    seen = set()
    while values:                          # module.attr, package.module.attr, Class.attr
        label, value = values.pop()
        if id(value) in seen or not isinstance(value, (types.ModuleType, type)):
            continue
        if isinstance(value, type) and not value.__flags__ & _HEAPTYPE:
            continue                       # a built-in class: its attributes are fixed
        seen.add(id(value))
        for attr in sorted(attr_names):
            if isinstance(value, types.ModuleType):
                space = value.__dict__
            else:
                space = next((k.__dict__ for k in value.__mro__ if attr in k.__dict__),
                             None)
            if space is None or attr not in space:
                continue
            here = ("attr", label, attr)
            out.append((here, ("dict", space, attr), space[attr]))
            values.append((here, space[attr]))
    return out


def _is_data(value):
    return not (value is _MISSING or callable(value)
                or isinstance(value, (types.ModuleType, type)))


def _data_kind(value):
    from .analysis import value_kind
    return type(value), value_kind(value)


_MISSING = object()
_HEAPTYPE = 1 << 9

_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_DEREF",
               "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_GLOBALS", "LOAD_FROM_DICT_OR_DEREF"}
_ATTR_OPS = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR", "LOAD_SUPER_ATTR"}


def _names_read(code):
    """(global and free names, attribute names) a code object and its nested code read."""
    import dis
    names, attrs = set(code.co_freevars), set()
    stack = [code]
    while stack:
        c = stack.pop()
        try:
            for ins in dis.get_instructions(c):
                if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str):
                    names.add(ins.argval)
                elif ins.opname in _ATTR_OPS and isinstance(ins.argval, str):
                    attrs.add(ins.argval)
        except Exception:                      # an unknown bytecode: every name counts
            names.update(c.co_names)
            attrs.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names, attrs


def _names_in_ast(node):
    names, attrs = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            attrs.add(n.attr)
    return names, attrs


# --- the source on disk must be the code that runs ---------------------------------------

def _check_source(unit, fn):
    """Refuse a function whose source file was edited after it was imported: the text read
    now would not be the code that runs. The file's current text is compiled (once per
    text) and the code object defined on the lines the frontend read is compared with
    fn.__code__: bytecode, names, constants, nested code."""
    code = getattr(fn, "__code__", None)
    if code is None or unit.is_generated:
        return
    import inspect
    import linecache
    try:
        lines, first = inspect.getsourcelines(fn)       # (refreshes linecache's copy)
    except (OSError, TypeError):
        return
    text = "".join(linecache.getlines(code.co_filename, fn.__globals__))
    first = max(first, 1)
    last = first + len(lines)
    mine = _fingerprint(code)
    loader = fn.__globals__.get("__loader__")
    rewritten = type(loader).__name__ == "AssertionRewritingHook"   # a pytest test file
    table = _file_codes(code.co_filename, text, rewritten)
    if table is None or any(line == code.co_firstlineno and first <= line < last
                            and _fingerprint(c) == mine
                            for line, c in table.get(code.co_name, ())):
        return                    # (the same code, at the same place in the file)
    raise TranspileError(
        f"the source of {unit.name} in {code.co_filename} changed after the module was "
        f"imported: the text on disk is not the code that runs (reload the module, e.g. "
        f"importlib.reload, or restart Python)", code.co_filename, code.co_firstlineno,
        unit.name)


_FILE_CODES = {}        # file name -> (its text, {code name: [(first line, code)]})


def _file_codes(filename, text, rewritten=False):
    """{code name: [(first line, code object)]} of the file's text compiled as its module
    was (a pytest test module with its asserts rewritten the way pytest does; None when
    that cannot be reproduced: then there is nothing to compare)."""
    known = _FILE_CODES.get(filename)
    if known is not None and known[0] == (text, rewritten):
        return known[1]
    table = {}
    try:
        tree = ast.parse(text, filename)
        if rewritten:
            try:
                from _pytest.assertion.rewrite import rewrite_asserts
                rewrite_asserts(tree, text.encode("utf-8"), filename, None)
            except Exception:                  # noqa: BLE001 - pytest internals moved
                _FILE_CODES[filename] = ((text, rewritten), None)
                return None
        stack = [compile(tree, filename, "exec", dont_inherit=True)]
    except (SyntaxError, ValueError):
        stack = []                             # not Python now: nothing matches
    while stack:
        c = stack.pop()
        table.setdefault(c.co_name, []).append((c.co_firstlineno, c))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    _FILE_CODES[filename] = ((text, rewritten), table)
    return table


def _fingerprint(code):
    """What a code object does, independent of where it sits: its instructions (names,
    constants, jump targets as instruction indices, nested code likewise) and variables.
    A call through a module attribute compiles as a method call or not depending on the
    surrounding file (Python 3.11+), so those two forms count as one."""
    import dis
    ins = [i for i in dis.get_instructions(code) if i.opname not in _IGNORED_OPS]
    index = {i.offset: k for k, i in enumerate(ins)}
    out = []
    for i in ins:
        arg = i.argval
        if i.opcode in _JUMPS:
            arg = index.get(arg, arg)
        elif isinstance(arg, types.CodeType):
            arg = _fingerprint(arg)
        elif isinstance(arg, frozenset):
            arg = ("frozenset", tuple(sorted(repr(x) for x in arg)))
        else:
            arg = (type(arg).__name__, repr(arg))
        out.append((_SAME_OPS.get(i.opname, i.opname), arg))
    return (tuple(out), code.co_varnames, code.co_freevars, code.co_cellvars,
            code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)


def _jump_opcodes():
    import dis
    out = set(getattr(dis, "hasjrel", ())) | set(getattr(dis, "hasjabs", ()))
    return out | set(getattr(dis, "hasjump", ()))


_JUMPS = _jump_opcodes()
_IGNORED_OPS = {"CACHE", "EXTENDED_ARG", "NOP", "RESUME", "PRECALL", "PUSH_NULL"}
_SAME_OPS = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL_FUNCTION"}


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
    names = Names(unit.node, prefix="t" if kind.startswith("jvp") else "d")
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
    fwd, rev = shapes.specialise(fwd, rev, rt, kind, compiled, resolver)
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
        fbody = optimize.drop_unneeded_inits(fbody)
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
    """Keyword names of the tangent parameters of target's jvp function: t<param>."""
    unit = unit_of(target)
    used = {n.id for n in ast.walk(unit.node) if isinstance(n, ast.Name)} | set(unit.params)
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
