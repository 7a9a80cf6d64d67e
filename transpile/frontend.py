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
import textwrap

from . import astutil as A
from .errors import TranspileError

_MISSING = object()


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
        a = self.node.args
        return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]

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
        return getattr(builtins, name, _MISSING)

    def resolve(self, node, local_names=()):
        """Statically resolve a Name or dotted Attribute to an object, or return None."""
        if isinstance(node, ast.Name):
            if node.id in local_names:
                return None
            obj = self.lookup(node.id)
            return None if obj is _MISSING else obj
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, local_names)
            if base is None or not inspect.ismodule(base) and not isinstance(base, type):
                return None
            return getattr(base, node.attr, None)
        return None


def unit_from_function(func):
    """Build a Unit from a live function: source, AST with file line numbers, environment."""
    func = inspect.unwrap(func)
    name = getattr(func, "__qualname__", getattr(func, "__name__", "?"))
    if not inspect.isfunction(func):
        raise TranspileError(f"{func!r} is not a Python function with source", function=name)
    code = func.__code__
    filename = code.co_filename
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError):
        raise TranspileError(
            "no source available (functions typed at an interactive prompt or created by "
            "exec cannot be transformed; put the function in a file)",
            filename, code.co_firstlineno, name) from None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TranspileError(f"cannot parse source: {exc.msg}", filename,
                             first + (exc.lineno or 1) - 1, name) from None
    node = tree.body[0] if tree.body else None
    if isinstance(node, ast.AsyncFunctionDef):
        raise TranspileError("unsupported construct 'async def'", filename, first, name)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Lambda) or (
            isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda)):
        lam = node.value
        node = A.lambda_def(_target_name(node, func), lam)
    if not isinstance(node, ast.FunctionDef):
        node = _find_lambda_or_def(tree, func)
        if node is None:
            raise TranspileError("could not find the function definition in its source",
                                 filename, first, name)
    ast.increment_lineno(node, first - 1)
    node.decorator_list = []
    if not node.name.isidentifier():
        node.name = "_lambda"
    if func.__name__.isidentifier() and func.__name__ != node.name and \
            node.name == "_lambda":
        node.name = func.__name__
    closure = dict(zip(code.co_freevars, func.__closure__ or ()))
    return Unit(node, name, filename, first - 1, func.__globals__, closure, func=func,
                defaults=func.__defaults__, kwdefaults=func.__kwdefaults__)


def _target_name(stmt, func):
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return "_lambda" if not func.__name__.isidentifier() else func.__name__


def _find_lambda_or_def(tree, func):
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef) and n.name == func.__name__:
            return n
        if isinstance(n, ast.Lambda) and func.__name__ == "<lambda>":
            return A.lambda_def("_lambda", n)
    return None


def register_source(filename, source):
    """Make generated source visible to inspect.getsource, tracebacks and pdb."""
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
