"""On-disk cache of generated code, so a new process reuses earlier transforms (opt-in).

Turn it on with the environment variable TRANSPILE_CACHE_DIR=<folder> or
`transpile.cache.enable()` (default folder: $XDG_CACHE_HOME/transpile or
~/.cache/transpile). An entry is a JSON file named by the SHA-256 of everything the
generated code depends on: transpile's version and a digest of its source, the versions of
Python, NumPy, SymPy and astor, the function's source text and first line, the derivative
asked for (wrt, argument kinds, options), every rule registered from outside transpile (user
rules: their templates and the code of their functions; the built-in ones are transpile's
source), and what the function reads: which module or
object each global, closure variable and module attribute it reads is, the kind of the
data values among them, and for each user function it calls that function's code and,
recursively, what it reads.
It holds the generated source, the line map for error notes, and a description of each
free name the code needs (a runtime helper, a rule's vjp function, a module, the
derivative of a called function plus a hash of that function's source). The file's own
HMAC-SHA256, made with a per-user secret key (`<folder>/key`, mode 0600), is stored inside
and checked before use, with the entry's shape, its sources and an allow-list of what it
may bind; a folder or key file other users can write (or read, for the key) turns the cache
off with one warning. Nothing is unpickled or executed except the generated source itself,
compiled exactly as on a fresh transform. Entries that cannot be
described this way (a nested function called with derivatives, a user rule defined in a
local scope) are simply not cached.
"""
import hashlib
import hmac
import inspect
import json
import os
import re
import stat
import time
import types

from .frontend import is_user_code
import warnings

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
        found = {package: _package_version(package) for package in ("numpy", "sympy", "astor")}
        _VERSIONS.append([__version__, digest.hexdigest(), sys.version,
                          sys.implementation.cache_tag, sorted(found.items())])
    import numpy
    return _VERSIONS[0] + [numpy.__version__]     # (read again: cheap, and patchable)


def _package_version(package):
    """The installed version of `package`, without importing it (its generated code may
    never need it: sympy) nor importlib.metadata (slow to import): read off the name of the
    ``<package>-<version>.dist-info`` folder beside it; importlib.metadata where there is
    none."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    try:
        found = [n[len(package) + 1:-len(".dist-info")] for n in os.listdir(site)
                 if n.startswith(package + "-") and n.endswith(".dist-info")]
    except OSError:
        found = []
    if len(found) == 1:
        return found[0]
    from importlib import metadata
    try:
        return metadata.version(package)
    except Exception:               # pragma: no cover - core dependencies
        return None


_RULES_DIGEST = {}


def rules_digest():
    """A digest of the rules registered from outside transpile (user rules): what each rule
    is for, its templates, and the code of its vjp / jvp functions. The built-in rules are
    transpile's source, which `versions` digests (which of them are loaded yet, rules are
    registered lazily, changes no generated code). Computed once per registry version
    (every defvjp / defjvp changes it)."""
    from .rules import registry
    version = registry.VERSION[0]
    if version not in _RULES_DIGEST:
        _RULES_DIGEST.clear()
        digest = hashlib.sha256()
        user = [kv for kv in registry._RULES.items() if not getattr(kv[1], "builtin", False)]
        for (fn, nargs), rule in sorted(user, key=lambda kv: (kv[1].name, str(kv[0][1]))):
            part = [rule.name, nargs, _callable_text(fn), rule.params,
                    rule._partials if rule._derive is None else None,
                    _callable_text(rule._derive),
                    [_callable_text(v) for v in rule.vjps or ()], rule.zero,
                    rule.multilinear, rule.unavailable, _callable_text(rule.jvp),
                    rule.structure, [_callable_text(t) for t in rule.vjp_tangents or ()],
                    rule.constant_keywords, rule.several, rule.needs_ans, rule.masks,
                    [[_callable_text(t.fn) for t in ts] for ts in rule.templates]]
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
    from .dependencies import _fingerprint
    return _sha(repr(_fingerprint(code)))


def environment(unit):
    """What the function reads from its environment, described process-independently:
    each global, closure cell and builtin it reads, and the attributes of the modules and
    classes among them (which module `np` is, which function `helpers.helper` is); for a
    user function it calls, its code and, recursively, what it reads."""
    return _reads_text(unit.globals, unit.closure,
                       getattr(unit.func, "__code__", None) or unit.node, set())


def _reads_text(globals_, closure, code, visiting):
    from .dependencies import reads
    return [[list(_flat(label)), _value_text(value, visiting)]
            for label, _, value in reads(globals_, closure, code)]


def _flat(label):
    for part in label:
        if isinstance(part, tuple):
            yield from _flat(part)
        else:
            yield part


def _value_text(value, visiting):
    from .dependencies import _MISSING, _data_kind, _is_data
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
        if is_user_code(value.__code__) and id(value) not in visiting:
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


# --- reading and writing entries, safely ------------------------------------------------

class CacheWarning(UserWarning):
    """The on-disk cache was turned off for this process (an unsafe folder or key)."""


_WARNED = set()
_KEYS = {}
_MAX_ENTRY = 64 * 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_POSIX = hasattr(os, "geteuid")


def _warn_once(topic, message):
    if topic not in _WARNED:
        _WARNED.add(topic)
        warnings.warn(message, CacheWarning, stacklevel=4)


def _unsafe(st, private=False):
    """Why a folder's or file's stat makes it untrustworthy, or None."""
    if not _POSIX:
        return None
    if st.st_uid != os.geteuid():
        return "is not owned by you"
    if st.st_mode & (0o077 if private else 0o022):
        return ("is readable or writable by other users" if private
                else "is writable by other users")
    return None


def _safe_folder(path, top):
    """Create `path` (mode 0o700) if missing; True if it is a folder only you can write."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path) if top else os.lstat(path)
    except OSError as exc:
        _warn_once(("folder", path), f"transpile: cache folder {path} is unusable ({exc}); "
                   "the on-disk cache is off")
        return False
    problem = (None if stat.S_ISDIR(st.st_mode) else "is not a folder") or _unsafe(st)
    if problem:
        _warn_once(("folder", path), f"transpile: cache folder {path} {problem}; the "
                   "on-disk cache is off (nothing is read from or written to it)")
        return False
    return True


def _secret(top):
    """The per-user key authenticating entries in `top` (created on first use), or None."""
    if top in _KEYS:
        return _KEYS[top]
    path = os.path.join(top, "key")
    key = None
    try:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        else:
            try:
                import secrets
                os.write(fd, secrets.token_bytes(32))
                os.fsync(fd)
            finally:
                os.close(fd)
        for _ in range(200):            # a concurrent first use may still be writing it
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise ValueError("is a symbolic link")
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
            try:
                st = os.fstat(fd)
                problem = (None if stat.S_ISREG(st.st_mode) else "is not a regular file") \
                    or _unsafe(st, private=True)
                if problem:
                    raise ValueError(problem)
                data = os.read(fd, 64)
            finally:
                os.close(fd)
            if len(data) == 32:
                key = data
                break
            if len(data) > 32:
                raise ValueError("is not a transpile key")
            time.sleep(0.01)
        else:
            raise ValueError("is not a transpile key")
    except (OSError, ValueError) as exc:
        _warn_once(("key", path), f"transpile: cache key file {path} {exc}; the on-disk "
                   "cache is off (nothing is read from or written to it)")
    _KEYS[top] = key
    return key


def _mac(key, digest, payload):
    text = json.dumps([FORMAT, digest, payload], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _open_folder(digest):
    """(entry path, key) when the cache is on, its folders are safe and the key usable."""
    top = _DIR[0]
    if top is None or not isinstance(digest, str) or not _HEX.fullmatch(digest):
        return None, None
    top = os.path.abspath(top)
    if not _safe_folder(top, True):
        return None, None
    key = _secret(top)
    if key is None:
        return None, None
    sub = os.path.join(top, digest[:2])
    if not _safe_folder(sub, False):
        return None, None
    return os.path.join(sub, digest + ".json"), key


def load(digest):
    """The payload stored under `digest`, or None: missing, unreadable, not a regular file
    (a symbolic link is never followed), not yours, not authenticated by your key, of
    another format, or malformed in any way (all ignored; the caller rewrites it)."""
    path, key = _open_folder(digest)
    if path is None:
        return None
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or _unsafe(st) or st.st_size > _MAX_ENTRY:
                return None
            record = json.loads(fh.read(_MAX_ENTRY + 1).decode("utf-8"))
        if (not isinstance(record, dict) or record.get("format") != FORMAT
                or not isinstance(record.get("mac"), str)):
            return None
        payload = record.get("payload")
        if not hmac.compare_digest(record["mac"], _mac(key, digest, payload)):
            return None                             # written by someone else, or edited
        return payload if _valid_payload(payload) else None
    except Exception:                               # any bad entry: ignored, never raised
        return None


def store(digest, payload):
    """Write an entry atomically: a fresh unique file in the entry's folder, then
    os.replace (which replaces a symbolic link itself, never what it points at)."""
    path, key = _open_folder(digest)
    if path is None:
        return
    record = {"format": FORMAT, "mac": _mac(key, digest, payload), "payload": payload}
    data = json.dumps(record).encode("utf-8")
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_HEX = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _valid_payload(payload):
    """The shape pipeline's _rebuild reads, each source one function definition that
    compiles, and each binding one transpile itself writes (see _allowed)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("kind"), str):
        return False
    functions = payload.get("functions")
    if (not isinstance(functions, list)
            or len(functions) != (2 if payload["kind"] == "pair" else 1)):
        return False
    for f in functions:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) \
                or not _NAME.fullmatch(f["name"]) or not isinstance(f.get("source"), str):
            return False
        lines = f.get("lines")
        if not isinstance(lines, list) or not all(
                isinstance(p, list) and len(p) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
                for p in lines):
            return False
        import ast
        tree = ast.parse(f["source"])
        if (len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef)
                or tree.body[0].name != f["name"]):
            return False
        compile(tree, "<transpile cache>", "exec")
    if not isinstance(payload.get("tape_has_stack"), bool) \
            or not _is_str_list(payload.get("params")):
        return False
    bindings = payload.get("bindings")
    if not isinstance(bindings, list):
        return False
    for item in bindings:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str)
                or not _NAME.fullmatch(item[0]) or not _allowed(item[1])):
            return False
    return True


# What generated code may be bound to: transpile's own runtime helpers and rules, math,
# cmath, NumPy, and AST operator classes (the keys of operator rules). A rule's vjp is
# named by the function the rule is for, looked up only among modules already imported.
_MODULES = ("transpile.runtime", "transpile.checkpoint", "math", "cmath", "numpy")
_PREFIXES = ("transpile.rules.", "numpy.")


def _module_allowed(name):
    return isinstance(name, str) and (name in _MODULES or name.startswith(_PREFIXES))


def _path_allowed(path, imported_only=False):
    if not (isinstance(path, list) and len(path) == 2 and _is_str_list(path)):
        return False
    module, qualname = path
    parts = qualname.split(".")
    if not all(_NAME.fullmatch(p) and not p.startswith("__") for p in parts):
        return False
    if module == "ast":
        import ast
        obj = getattr(ast, qualname, None)
        return len(parts) == 1 and isinstance(obj, type) and issubclass(obj, ast.AST)
    if _module_allowed(module):
        return True
    import sys
    return imported_only and module in sys.modules


def _allowed(desc):
    """Whether a binding description is one transpile writes (checked on read and write)."""
    if not isinstance(desc, list) or not desc or not isinstance(desc[0], str):
        return False
    kind = desc[0]
    if kind == "module":
        return len(desc) == 2 and _module_allowed(desc[1])
    if kind == "object":
        return len(desc) == 2 and _path_allowed(desc[1])
    if kind in ("vjp", "vjps"):
        return (len(desc) == 4 and _path_allowed(desc[1], imported_only=True)
                and isinstance(desc[2], (int, type(None))) and isinstance(desc[3], int)
                and not isinstance(desc[3], bool) and desc[3] >= 0)
    if kind == "callee":
        return (len(desc) == 6 and isinstance(desc[1], str) and _NAME.fullmatch(desc[1])
                and _is_str_list(desc[2]) and isinstance(desc[3], list)
                and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                        for p in desc[3])
                and desc[4] in (0, 1) and not isinstance(desc[4], bool)
                and isinstance(desc[5], str) and bool(_HEX.fullmatch(desc[5])))
    return False


# --- free names of generated code, as data ----------------------------------------------

def describe(name, obj, origin, unit):
    """A JSON description of one binding of generated code (raises NotCacheable, also
    for a binding outside the allow-list: such an entry could never be read back)."""
    desc = json.loads(json.dumps(_describe(name, obj, origin, unit)))   # as read back
    if not _allowed(desc):
        raise NotCacheable(f"{name} is bound to something the cache does not name")
    return desc


def _describe(name, obj, origin, unit):
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
    """The object (or cell) a binding description stands for, or raise NotCacheable (for
    any failure, and for a description outside the allow-list)."""
    if not _allowed(desc):
        raise NotCacheable("binding not allowed")
    try:
        return _resolve(desc, unit, pipeline)
    except NotCacheable:
        raise
    except Exception as exc:
        raise NotCacheable(f"binding unavailable: {exc!r}") from None


def _resolve(desc, unit, pipeline):
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
