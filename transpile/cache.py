"""On-disk cache of generated code, so a new process reuses earlier transforms (opt-in).

Turn it on with the environment variable TRANSPILE_CACHE_DIR=<folder> or
`transpile.cache.enable()` (default folder: $XDG_CACHE_HOME/transpile or
~/.cache/transpile). An entry is a JSON file named by the SHA-256 of everything the
generated code depends on: transpile's version and a digest of its source, the versions of
Python, NumPy, SymPy and astor, the function's source text and first line, the derivative
asked for (wrt, argument kinds, options), every registered rule (user rules included: their
templates and the code of their functions), and what the function reads: which module or
object each global, closure variable and module attribute it reads is, the kind of the
data values among them, and for each user function it calls that function's code and,
recursively, what it reads.
It holds the generated source, the line map for error notes, and a description of each
free name the code needs (a runtime helper, a rule's vjp function, a module, the
derivative of a called function plus a hash of that function's source). The file's own
hash is stored inside and checked before use; nothing is unpickled or executed except the
generated source itself, compiled exactly as on a fresh transform. Entries that cannot be
described this way (a nested function called with derivatives, a user rule defined in a
local scope) are simply not cached.
"""
import hashlib
import inspect
import json
import os
import types

_DIR = [os.environ.get("TRANSPILE_CACHE_DIR") or None]
FORMAT = 1


class NotCacheable(Exception):
    pass


def default_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "transpile")


def enable(path=None):
    """Cache generated code on disk in `path` (default: the per-user cache folder)."""
    _DIR[0] = path or default_dir()
    return _DIR[0]


def disable():
    _DIR[0] = None


def folder():
    return _DIR[0]


def _sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def source_hash(fn):
    try:
        return _sha(inspect.getsource(fn))
    except (OSError, TypeError):
        raise NotCacheable("no source") from None


def key(unit, active, kind, kinds, options):
    """The SHA-256 naming an entry: everything the generated code is built from."""
    import ast
    parts = [FORMAT, versions(), unit.filename, unit.name, unit.node.lineno,
             ast.dump(unit.node), list(active), kind, sorted((kinds or {}).items()),
             sorted((options or {}).items()), rules_digest(), environment(unit)]
    return _sha(json.dumps(parts, default=str))


_VERSIONS = []


def versions():
    """transpile's version and a digest of its own source files, Python's version, and
    the versions of the packages generated code depends on."""
    if not _VERSIONS:
        import sys
        from . import __version__
        here = os.path.dirname(os.path.abspath(__file__))
        digest = hashlib.sha256()
        for folder, dirs, files in sorted(os.walk(here)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    with open(os.path.join(folder, name), "rb") as fh:
                        digest.update(name.encode() + b"\0" + fh.read())
        from importlib import metadata
        found = {}
        for package in ("numpy", "sympy", "astor"):
            try:
                found[package] = metadata.version(package)
            except Exception:               # pragma: no cover - core dependencies
                found[package] = None
        _VERSIONS.append([__version__, digest.hexdigest(), sys.version,
                          sys.implementation.cache_tag, sorted(found.items())])
    import numpy
    return _VERSIONS[0] + [numpy.__version__]     # (read again: cheap, and patchable)


_RULES_DIGEST = {}


def rules_digest():
    """A digest of the whole rule registry (built-in and user rules): what each rule is
    for, its templates, and the code of its vjp / jvp functions. Computed once per
    registry version (every defvjp / defjvp changes it)."""
    from .rules import registry
    version = registry.VERSION[0]
    if version not in _RULES_DIGEST:
        _RULES_DIGEST.clear()
        digest = hashlib.sha256()
        for (fn, nargs), rule in sorted(registry._RULES.items(),
                                        key=lambda kv: (kv[1].name, str(kv[0][1]))):
            part = [rule.name, nargs, _callable_text(fn), rule.params,
                    rule._partials if rule._derive is None else None,
                    _callable_text(rule._derive),
                    [_callable_text(v) for v in rule.vjps or ()], rule.zero,
                    rule.multilinear, rule.unavailable, _callable_text(rule.jvp)]
            digest.update(json.dumps(part, default=repr).encode())
        _RULES_DIGEST[version] = digest.hexdigest()
    return _RULES_DIGEST[version]


def _callable_text(fn, depth=0):
    """A process-independent description of a callable: its importable name, and for
    Python functions the digest of their code and of what their closure holds."""
    if fn is None:
        return None
    code = getattr(fn, "__code__", None)
    if code is None:
        try:
            return _object_path(fn)
        except NotCacheable:
            return [type(fn).__qualname__, getattr(fn, "__qualname__", None)]
    cells = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            value = None
        if callable(value) and depth < 3:
            cells.append(_callable_text(value, depth + 1))
        elif isinstance(value, (int, float, str, bool, type(None))):
            cells.append(repr(value))
        else:
            cells.append(type(value).__qualname__)
    return [getattr(fn, "__module__", None), getattr(fn, "__qualname__", None),
            code_digest(code), cells]


def code_digest(code):
    from .pipeline import _fingerprint
    return _sha(repr(_fingerprint(code)))


def environment(unit):
    """What the function reads from its environment, described process-independently:
    each global, closure cell and builtin it reads, and the attributes of the modules and
    classes among them (which module `np` is, which function `helpers.helper` is); for a
    user function it calls, its code and, recursively, what it reads."""
    return _reads_text(unit.globals, unit.closure,
                       getattr(unit.func, "__code__", None) or unit.node, set())


def _reads_text(globals_, closure, code, visiting):
    from .pipeline import reads
    return [[list(_flat(label)), _value_text(value, visiting)]
            for label, _, value in reads(globals_, closure, code)]


def _flat(label):
    for part in label:
        if isinstance(part, tuple):
            yield from _flat(part)
        else:
            yield part


def _value_text(value, visiting):
    from .pipeline import _MISSING, _data_kind, _is_data
    if value is _MISSING:
        return ["missing"]
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if _is_data(value):
        kind = _data_kind(value)
        return ["data", kind[0].__module__, kind[0].__qualname__, kind[1]]
    if isinstance(value, types.FunctionType):
        text = ["function", value.__module__, value.__qualname__,
                code_digest(value.__code__), repr(value.__defaults__),
                repr(value.__kwdefaults__)]
        if _is_user_code(value.__code__) and id(value) not in visiting:
            visiting.add(id(value))           # a function transpile may differentiate
            closure = dict(zip(value.__code__.co_freevars, value.__closure__ or ()))
            text.append(_reads_text(value.__globals__, closure, value.__code__, visiting))
        return text
    if isinstance(value, type):
        return ["class"] + _object_path(value) + [
            code_digest(f.__code__) for f in vars(value).values()
            if isinstance(f, types.FunctionType)]
    wrapped = getattr(value, "__transpile_function__", None)
    if wrapped is not None:
        return ["differentiable", _value_text(wrapped, visiting)]
    return ["object"] + _object_path(value)   # a builtin, a ufunc... (or NotCacheable)


_LIBRARY = []


def _is_user_code(code):
    """Not the standard library, an installed package or transpile itself."""
    if not _LIBRARY:
        import sysconfig
        paths = sysconfig.get_paths()
        _LIBRARY.extend(os.path.realpath(paths[k]) + os.sep
                        for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
        _LIBRARY.append(os.path.dirname(os.path.abspath(__file__)) + os.sep)
    filename = code.co_filename
    if filename.startswith("<"):
        return True
    filename = os.path.realpath(filename)
    return not filename.startswith(tuple(_LIBRARY))


def load(digest):
    path = _path(digest)
    if path is None or not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    payload = record.get("payload")
    if not isinstance(payload, dict) or record.get("sha256") != _sha(
            json.dumps(payload, sort_keys=True)):
        return None                                 # corrupted or edited: ignore it
    return payload


def store(digest, payload):
    path = _path(digest)
    if path is None:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    record = {"sha256": _sha(json.dumps(payload, sort_keys=True)), "payload": payload}
    tmp = path + f".{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)


def _path(digest):
    if _DIR[0] is None:
        return None
    return os.path.join(_DIR[0], digest[:2], digest + ".json")


# --- free names of generated code, as data ----------------------------------------------

def describe(name, obj, origin, unit):
    """A JSON description of one binding of generated code (raises NotCacheable)."""
    if origin is not None and origin[0] in ("vjp", "vjps"):
        from .rules.registry import key_of
        fn, nargs = key_of(origin[1])
        return [origin[0], _object_path(fn), nargs, origin[2] if origin[0] == "vjp" else 0]
    if origin is not None and origin[0] == "callee":
        compiled, which = origin[1], origin[2]
        target = compiled.unit.func
        if target is None:
            raise NotCacheable("a nested function's derivative")
        global_name = next((k for k, v in unit.globals.items()
                            if getattr(v, "__transpile_function__", v) is target), None)
        if global_name is None:
            raise NotCacheable("callee not reachable by name")
        return ["callee", global_name, list(compiled.active), sorted(compiled.kinds.items()),
                which, source_hash(target)]
    if isinstance(obj, types.ModuleType):
        return ["module", obj.__name__]
    return ["object", _object_path(obj)]


def resolve(desc, unit, pipeline):
    """The object (or cell) a binding description stands for, or raise NotCacheable."""
    kind = desc[0]
    if kind == "module":
        import importlib
        return importlib.import_module(desc[1])
    if kind == "object":
        return _from_path(desc[1])
    if kind in ("vjp", "vjps"):
        from .rules import lookup
        rule = lookup(_from_path(desc[1]), desc[2])
        if rule is None or rule.vjps is None:
            raise NotCacheable("rule gone")
        return rule.vjps[desc[3]] if kind == "vjp" else tuple(rule.vjps)
    if kind == "callee":
        _, global_name, active, kinds, which, digest = desc
        target = unit.lookup(global_name)
        target = getattr(target, "__transpile_function__", target)
        if not callable(target) or source_hash(target) != digest:
            raise NotCacheable("the called function changed")
        compiled = pipeline._pair(target, tuple(active), dict(kinds))
        return (compiled.forward_cell, compiled.backward_cell)[which], compiled
    raise NotCacheable(kind)


def _object_path(obj):
    import ast
    if isinstance(obj, type) and issubclass(obj, ast.AST):
        return ["ast", obj.__name__]
    module = getattr(obj, "__module__", None) or "builtins"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if qualname is None or "<" in qualname:
        raise NotCacheable(f"{obj!r} has no importable name")
    try:
        found = _from_path([module, qualname])
    except (ImportError, AttributeError):
        found = None
    if found is not obj:
        raise NotCacheable(f"{obj!r} is not what its name says")
    return [module, qualname]


def _from_path(path):
    import importlib
    module, qualname = path
    if module == "ast":
        import ast
        return getattr(ast, qualname)
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
