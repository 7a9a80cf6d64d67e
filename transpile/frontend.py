"""Frontend: from a Python function object to the AST the passes work on.

A `Unit` is one function to transform: its `ast.FunctionDef`, the file and line offset
(so every error and source map points at the user's file), and the environment its free
names resolve in (globals, closure cells, builtins). `Unit.resolve` answers what a name or
dotted attribute (``math.sin``, ``np.linalg.norm``) refers to, statically.
"""
import ast
import builtins
import inspect
import linecache
import os
import textwrap
import types

from . import astutil as A
from .errors import TranspileError

_MISSING = object()
_BUILTINS = builtins.__dict__


class Unit:
    """One function to transform, with everything needed to resolve its names."""

    def __init__(self, node, name, filename, line_offset, globals_, closure, func=None,
                 defaults=None, kwdefaults=None, extra_params=()):
        self.node = node                  # ast.FunctionDef (line numbers already file lines)
        self.name = name
        self.filename = filename
        self.line_offset = line_offset
        self.globals = globals_
        self.closure = closure            # name -> cell of the original function
        self.func = func                  # the original function object, if any
        self.defaults = defaults
        self.kwdefaults = kwdefaults
        self.extra_params = tuple(extra_params)   # lambda-lifted free variables

    @property
    def params(self):
        """Parameter names; `*args` and `**kwargs` last (a tuple and a dict inside)."""
        a = self.node.args
        return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + [
            p.arg for p in (a.vararg, a.kwarg) if p is not None]

    @property
    def is_generated(self):
        """Is this derivative code transpile generated (being differentiated again)?"""
        from .emit import SOURCE_MAPS
        return self.filename in SOURCE_MAPS

    def error(self, message, node=None):
        lineno = getattr(node, "lineno", None) if node is not None else self.node.lineno
        if self.is_generated:                 # generated code: point at the user's line
            from .emit import SOURCE_MAPS
            user_file, lines = SOURCE_MAPS[self.filename]
            if lines.get(lineno) is not None:
                return TranspileError(message, user_file, lines[lineno],
                                      f"the derivative code {self.node.name}")
        return TranspileError(message, self.filename, lineno, self.name)

    def lookup(self, name):
        """The object a free name refers to (closure, then globals, then builtins)."""
        if name in self.closure:
            try:
                return self.closure[name].cell_contents
            except ValueError:
                return _MISSING
        if name in self.globals:
            return self.globals[name]
        found = _BUILTINS.get(name, _MISSING)   # (a failed getattr of a module costs
        if found is _MISSING and name.startswith("__"):     # microseconds: its message)
            return getattr(builtins, name, _MISSING)       # (the module type's own)
        return found

    def resolve(self, node, local_names=()):
        """Statically resolve a Name or dotted Attribute to an object, or return None."""
        if isinstance(node, ast.Name):
            if node.id in local_names:
                return None
            obj = self.lookup(node.id)
            return None if obj is _MISSING else obj
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, local_names)
            if base is None:
                return None
            if not inspect.ismodule(base) and not isinstance(base, type):
                return _ruled_method(base, node.attr)
            return getattr(base, node.attr, None)
        return None


def _ruled_method(obj, attr):
    """``obj.attr`` where it is a bound method with a derivative rule (the methods of a
    library's singleton objects, ``scipy.stats.norm.logpdf``), else None: other attributes
    of objects are not resolved statically."""
    if not isinstance(getattr(type(obj), attr, None), types.FunctionType):
        return None
    method = getattr(obj, attr, None)
    from .rules.registry import lookup
    return method if isinstance(method, types.MethodType) and lookup(method) else None


_LIBRARY = []
_OWN = os.path.dirname(os.path.abspath(__file__)) + os.sep


def is_user_code(code, own_is_library=True):
    """Is this code object the user's: not the standard library's, an installed package's
    (site-packages) or (with `own_is_library`) transpile's own? Library functions are never
    read for their source: without a rule they are one TranspileError where a derivative
    flows through them (transpile's own rule functions are read, for second order)."""
    if not _LIBRARY:
        import sysconfig
        paths = sysconfig.get_paths()
        _LIBRARY.extend(os.path.realpath(paths[k]) + os.sep
                        for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    filename = code.co_filename
    if filename.startswith("<"):
        return True
    filename = os.path.realpath(filename)
    if filename.startswith(_OWN):
        return not own_is_library
    return not filename.startswith(tuple(_LIBRARY))


class LibraryFunction:
    """A Python function of an installed library (scipy, sklearn...) that has no rule: a
    call of it stays as it is (`special=opaque`); differentiating through it is one error
    naming it (transpile does not read a library's own source)."""

    def __init__(self, fn):
        self.fn = fn
        module = getattr(fn, "__module__", None) or ""
        self.name = f"{module}.{fn.__qualname__}".lstrip(".")

    def message(self):
        return (f"no derivative rule for {self.name}: it is a library function, whose "
                "source transpile does not differentiate; register a rule with "
                "transpile.defvjp (or pass values that carry no derivative)")


def unit_from_function(func):
    """Build a Unit from a live function: source, AST with file line numbers, environment."""
    func = inspect.unwrap(func, stop=lambda f: _is_derivative_object(f))
    name = getattr(func, "__qualname__", getattr(func, "__name__", "?"))
    if _is_derivative_object(func):
        name = getattr(func, "__name__", name)
        raise TranspileError(
            f"{name} is a derivative made by transpile; its derivative comes from "
            "transpile.hessian, transpile.hvp or transpile.grad(transpile.grad(f)), not "
            "from differentiating it again with vjp, jvp or value_and_grad", function=name)
    if not inspect.isfunction(func):
        raise TranspileError(f"{func!r} is not a Python function with source", function=name)
    code = func.__code__
    filename = code.co_filename
    lines = None
    if code.co_name == "<lambda>":
        node, first = _lambda_node(func)
    else:
        node, first, lines = _def_node(func)
    node.decorator_list = []
    if not node.name.isidentifier():
        node.name = "_lambda"
    if node.name == "_lambda" and func.__name__.isidentifier():
        node.name = func.__name__             # a lambda renamed by its owner
    closure = dict(zip(code.co_freevars, func.__closure__ or ()))
    unit = Unit(node, name, filename, first - 1, func.__globals__, closure, func=func,
                defaults=func.__defaults__, kwdefaults=func.__kwdefaults__)
    if lines is not None:        # (what inspect.getsourcelines gave, for _check_source)
        unit.source_lines = (lines, first)
    _refuse_nested_differentiation(unit)
    return unit


def _no_source(func):
    code = func.__code__
    return TranspileError(
        "no source available (functions typed at an interactive prompt or created by "
        "exec cannot be transformed; put the function in a file)",
        code.co_filename, code.co_firstlineno, func.__qualname__)


def _def_node(func):
    """(The FunctionDef of a function defined with `def`, lines numbered as in its file;
    its first line; its lines as inspect.getsourcelines read them.)"""
    code = func.__code__
    name = func.__qualname__
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError):
        raise _no_source(func) from None
    source = textwrap.dedent("".join(lines))
    try:                # (blank lines first: numbered as in the file, as parsed)
        tree = ast.parse("\n" * (first - 1) + source)
    except SyntaxError as exc:
        raise TranspileError(f"cannot parse source: {exc.msg}", code.co_filename,
                             exc.lineno or first, name) from None
    node = tree.body[0] if tree.body else None
    if isinstance(node, ast.AsyncFunctionDef):
        raise TranspileError("unsupported construct 'async def'", code.co_filename, first,
                             name)
    if not isinstance(node, ast.FunctionDef):
        node = next((n for n in A.walk(tree) if isinstance(n, ast.FunctionDef)
                     and n.name == code.co_name), None)
        if node is None:
            raise TranspileError("could not find the function definition in its source",
                                 code.co_filename, first, name)
    return node, first, lines


# --- lambdas: which `lambda` of the line is this function? --------------------------------
#
# A lambda's code object knows its line, not its column (before Python 3.11). The file is
# parsed whole and every `lambda` starting on that line is a candidate; the one that
# compiled to this code object is picked by, in turn: its parameters; on Python 3.11+ the
# source positions of the code's instructions (the innermost lambda whose body holds all
# of them); the names, constants and nested functions its code uses; its bytecode with
# how each free name is looked up (global or closure cell) left out. Candidates that are
# the same text are interchangeable: the derivative is built from the text, and every
# name in it is resolved through the function object's own globals and closure cells,
# never through the candidate's surroundings. Different texts that still cannot be told
# apart are refused (give the lambda a line of its own, or use def).

_FILE_TREES = {}          # filename -> (the lines parsed, ast.Module)


def _file_tree(func):
    filename = func.__code__.co_filename
    lines = linecache.getlines(filename, func.__globals__)
    if not lines:
        raise _no_source(func)
    cached = _FILE_TREES.get(filename)
    if cached is not None and cached[0] == lines:
        return cached[1]
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError as exc:
        raise TranspileError(f"cannot parse source: {exc.msg}", filename, exc.lineno,
                             func.__qualname__) from None
    _FILE_TREES[filename] = (list(lines), tree)
    return tree


def _lambda_node(func):
    """(FunctionDef equivalent of the lambda func was made from, its first line)."""
    code = func.__code__
    tree = _file_tree(func)
    parents = {}
    candidates = []
    for n in A.walk(tree):
        for child in ast.iter_child_nodes(n):
            parents[child] = n
        if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno:
            candidates.append(n)
    candidates = [c for c in candidates if _params_of(c.args) == _params_of_code(code)]
    if not candidates:
        raise TranspileError("could not find the lambda in its source", code.co_filename,
                             code.co_firstlineno, func.__qualname__)
    for narrow in (_by_positions, _by_code_summary, _by_bytecode):
        if len(candidates) > 1:
            candidates = narrow(candidates, code) or candidates
    first = candidates[0]
    same = ast.dump(first)
    if any(ast.dump(c) != same for c in candidates[1:]):
        raise TranspileError(
            f"{len(candidates)} different lambdas on this line could be this function "
            "and transpile cannot tell which one it is; put the lambda on a line of its "
            "own or define it with def", code.co_filename, code.co_firstlineno,
            func.__qualname__)
    lam = first
    parent = parents.get(lam)
    name = "_lambda"
    if (isinstance(parent, ast.Assign) and len(parent.targets) == 1
            and isinstance(parent.targets[0], ast.Name) and parent.value is lam):
        name = parent.targets[0].id
    return A.lambda_def(name, A.copy_tree(lam)), lam.lineno


def _params_of(args):
    return ([a.arg for a in args.posonlyargs], [a.arg for a in args.args],
            args.vararg.arg if args.vararg else None,
            [a.arg for a in args.kwonlyargs], args.kwarg.arg if args.kwarg else None)


def _params_of_code(code):
    names = code.co_varnames
    npos, nonly, nkw = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    i = npos + nkw
    vararg = kwarg = None
    if code.co_flags & inspect.CO_VARARGS:
        vararg, i = names[i], i + 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        kwarg = names[i]
    return (list(names[:nonly]), list(names[nonly:npos]), vararg,
            list(names[npos:npos + nkw]), kwarg)


def _by_positions(candidates, code):
    """Python 3.11+: the innermost candidate whose body holds every instruction."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return None
    spans = {(p[0], p[2], p[1], p[3]) for p in positions()
             if None not in p and (p[2], p[3]) != (0, 0)}
    if not spans:
        return None

    def holds(lam):
        b = lam.body
        start, end = (b.lineno, b.col_offset), (b.end_lineno, b.end_col_offset)
        return all(start <= (l0, c0) and (l1, c1) <= end for l0, c0, l1, c1 in spans)

    inside = [c for c in candidates if holds(c)]
    innermost = [c for c in inside if not any(
        o is not c and any(n is o for n in A.walk(c)) for o in inside)]
    return innermost


def _isolated_code(lam, filename):
    """The code object of the lambda compiled on its own (free names become globals)."""
    expr = ast.Expression(body=A.copy_tree(lam))
    try:
        module = compile(ast.fix_missing_locations(expr), filename, "eval")
    except (SyntaxError, ValueError):
        return None
    return next((c for c in module.co_consts if isinstance(c, types.CodeType)), None)


def _summary(code):
    """What a lambda's code uses, however its free names are looked up."""
    names, consts, shapes = set(), [], []

    def walk(c):
        names.update(c.co_names)
        names.update(c.co_freevars)
        shapes.append(_params_of_code(c))
        for k in c.co_consts:
            if isinstance(k, types.CodeType):
                walk(k)
            else:
                consts.append(repr(k))

    walk(code)
    return frozenset(names), sorted(consts), shapes


_LOOKUPS = {"LOAD_GLOBAL": "LOAD", "LOAD_DEREF": "LOAD", "LOAD_NAME": "LOAD",
            "LOAD_CLASSDEREF": "LOAD", "LOAD_FAST": "LOAD"}


def _ops(code):
    import dis
    out = []
    for ins in dis.get_instructions(code):
        if ins.opname in ("PUSH_NULL", "CACHE", "COPY_FREE_VARS", "RESUME", "NOP",
                          "MAKE_CELL", "LOAD_CLOSURE", "BUILD_TUPLE"):
            continue
        arg = ins.argval if ins.opcode not in dis.hasjrel + dis.hasjabs else None
        if isinstance(arg, types.CodeType):
            arg = tuple(_ops(arg))
        out.append((_LOOKUPS.get(ins.opname, ins.opname), repr(arg)))
    return out


def _by_code_summary(candidates, code):
    want = _summary(code)
    return [c for c in candidates
            if (_isolated_code(c, code.co_filename) is not None
                and _summary(_isolated_code(c, code.co_filename)) == want)]


def _by_bytecode(candidates, code):
    want = _ops(code)
    return [c for c in candidates
            if (_isolated_code(c, code.co_filename) is not None
                and _ops(_isolated_code(c, code.co_filename)) == want)]


# --- nested differentiation --------------------------------------------------------------

NESTED_MESSAGE = ("nested differentiation: inside a differentiated function transpile.grad "
                  "and transpile.value_and_grad may be called (transpile.grad(f)(x), or "
                  "g = transpile.grad(f) then g(x)), and gradients made outside called; "
                  "other uses (an alias, passing them as values, vjp, jvp, hvp, hessian, "
                  "jacobian) are not supported: call them directly, or compute the inner "
                  "derivative by hand")


def _is_derivative_object(obj):
    """Is obj a derivative transpile made (or a function that makes one)?"""
    return getattr(obj, "__transpile_derivative__", False) is True


def _callable_inside(obj):
    """May a differentiated function call obj? transpile.grad and value_and_grad, and the
    derivatives that have generated code of their own (closure conversion: higher.py)."""
    from .api import _code_of
    from .higher import is_maker
    return is_maker(obj) or _code_of(obj) is not None


def _refuse_nested_differentiation(unit):
    """A function being differentiated may call transpile.grad (or value_and_grad) and
    the derivatives it makes (see higher.NestedDerivative); any other use of transpile's
    derivative makers or of the functions they return is refused: the inner derivative's
    dependence on the outer parameters (closures included) would be lost or confused."""
    every = list(A.walk(unit.node))        # (one walk for all the loops below)
    local = set(unit.params) | A.names_stored(unit.node)
    for n in every:
        if isinstance(n, ast.arg):
            local.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(n.name)
    called = {id(n.func) for n in every if isinstance(n, ast.Call)}
    for n in every:                        # transpile.grad(g): g is differentiated
        if isinstance(n, ast.Call) and n.args and id(n.func) in called:
            try:
                maker = unit.resolve(n.func)
            except Exception:                  # noqa: BLE001 - an odd attribute: not ours
                continue
            from .higher import is_maker
            if is_maker(maker):
                called.add(id(n.args[0]))
    for n in every:
        if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(n.ctx, ast.Load):
            if isinstance(n, ast.Name) and n.id in local:
                continue
            try:
                obj = unit.resolve(n)
            except Exception:                  # noqa: BLE001 - an odd attribute: not ours
                continue
            if obj is not None and _is_derivative_object(obj):
                if id(n) in called and _callable_inside(obj):
                    continue
                raise unit.error(NESTED_MESSAGE, n)


def register_source(filename, source):
    """Make generated source visible to inspect.getsource, tracebacks and pdb."""
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
