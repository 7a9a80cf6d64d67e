"""On-disk cache of generated code, so a new process reuses earlier transforms (opt-in).

Turn it on with the environment variable TRANSPILE_CACHE_DIR=<folder> or
`transpile.cache.enable()` (default folder: $XDG_CACHE_HOME/transpile or
~/.cache/transpile). An entry is a JSON file named by the SHA-256 of everything the
generated code depends on: transpile's version, the function's source text and first line,
the derivative asked for (wrt, argument kinds, options) and the set of registered rules.
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
    import ast
    from . import __version__
    from .rules import supported
    parts = [FORMAT, __version__, unit.filename, unit.name, unit.node.lineno,
             ast.dump(unit.node), list(active), kind, sorted((kinds or {}).items()),
             sorted((options or {}).items()), _sha("\n".join(supported()))]
    return _sha(json.dumps(parts, default=str))


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
    if _from_path([module, qualname]) is not obj:
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
