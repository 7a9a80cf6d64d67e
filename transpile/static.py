"""Static loading of a source file, for the command line: no line of the user's code runs.

The file is parsed, never executed. What is carried out, and what is not:

* Top-level constants with literal values are evaluated with `ast.literal_eval`.
* Each top-level function definition is compiled on its own (decorators dropped) into a
  namespace holding just those. Its default values and annotations are *not* evaluated:
  literal defaults are kept as values, any other default becomes a `StaticDefault` that
  holds the default's source text, and annotations are dropped from the compiled copy (the
  printed definitions keep them as text).
* Imports of modules of the user's own project (a module or package found next to the file
  or under the current directory, relative imports too) are *parsed* the same way, never
  imported: their functions are compiled statically and bound under the imported names.
* Imports of installed libraries (the standard library, NumPy, SciPy, ...) are carried out,
  so that transpile can look their derivative rules up. An installed import that fails is
  dropped with the names it would bind.

The resulting function objects carry their file's name and line numbers, so the compiler
reads them like any other.
"""
import ast
import copy
import importlib
import os
import tokenize
import types

from .errors import TranspileError


class StaticDefault:
    """A default value that was not evaluated: it holds the default's source text."""

    def __init__(self, source):
        self.source = source

    def __repr__(self):
        return self.source


def read_source(filename):
    """The text of a Python source file, or a TranspileError saying why it is no source."""
    if os.path.isdir(filename):
        raise TranspileError("is a directory, not a Python file", filename)
    if not os.path.isfile(filename):
        raise TranspileError("no such file", filename)
    try:
        with tokenize.open(filename) as fh:      # honours a PEP 263 coding line
            source = fh.read()
    except (UnicodeDecodeError, SyntaxError) as exc:
        raise TranspileError(f"not a text file in its declared encoding ({exc})",
                             filename) from None
    except OSError as exc:
        raise TranspileError(f"cannot read: {exc.strerror}", filename) from None
    if "\0" in source:
        raise TranspileError("a binary file (it holds NUL bytes), not Python source",
                             filename)
    return source


def parse_source(source, filename):
    try:
        return ast.parse(source, filename)
    except SyntaxError as exc:
        raise TranspileError(f"syntax error: {exc.msg}", filename, exc.lineno) from None
    except (RecursionError, MemoryError):
        raise TranspileError("nested too deeply to parse", filename) from None


class StaticModule:
    """Functions of a file, compiled without running the file."""

    def __init__(self, filename, name="__transpile_static__", roots=None, loaded=None):
        self.filename = filename
        self.source = read_source(filename)
        self.tree = parse_source(self.source, filename)
        # where modules of the user's project are looked for
        self.roots = roots or _project_roots(filename)
        self.loaded = {} if loaded is None else loaded   # dotted name -> module (shared)
        self.namespace = {"__name__": name, "__file__": filename, _DEFAULT: StaticDefault}
        self.imports = []          # import statements, as source text, in file order
        self.constants = []        # `NAME = literal` statements, as source text
        self.functions = {}        # name -> function object
        self.definitions = {}      # name -> source text of the def (decorators removed)
        self.problems = {}         # name -> TranspileError for defs that cannot compile
        self._load()

    def _load(self):
        for node in self.tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if self._import(node):
                    self.imports.append(ast.unparse(node))
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name)):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                    continue
                self.namespace[node.targets[0].id] = value
                self.constants.append(ast.unparse(node))
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                node.decorator_list = []
                try:
                    self.definitions[node.name] = ast.unparse(node)
                    code = compile(ast.Module(body=[_inert(node)], type_ignores=[]),
                                   self.filename, "exec")
                    exec(code, self.namespace)       # binds the def: runs none of its code
                except (RecursionError, MemoryError):
                    self.definitions.setdefault(node.name, f"# {node.name}: too deep")
                    self.problems[node.name] = TranspileError(
                        "nested too deeply to compile", self.filename, node.lineno,
                        node.name)
                    continue
                except Exception as exc:                    # noqa: BLE001 - reported
                    self.problems[node.name] = TranspileError(
                        f"cannot prepare the function statically ({exc})", self.filename,
                        node.lineno, node.name)
                    continue
                fn = self.namespace[node.name]
                if isinstance(fn, types.FunctionType):
                    self.functions[node.name] = fn

    # -- imports ----------------------------------------------------------------------
    def _import(self, node):
        """Bind what an import statement binds; True if it could be bound."""
        if isinstance(node, ast.Import):
            ok = True
            for alias in node.names:
                module = self._module(alias.name)
                if module is None:
                    ok = False
                    continue
                if alias.asname:
                    self.namespace[alias.asname] = module
                else:                           # `import a.b` binds `a`
                    self.namespace[alias.name.split(".")[0]] = self._module(
                        alias.name.split(".")[0])
            return ok
        base = self._from_base(node)
        if base is None:
            return False
        module = self._module(base)
        if module is None:
            return False
        for alias in node.names:
            if alias.name == "*":
                names = getattr(module, "__all__", None) or [
                    n for n in vars(module) if not n.startswith("_")]
                for n in names:
                    if hasattr(module, n):
                        self.namespace[n] = getattr(module, n)
                continue
            if hasattr(module, alias.name):
                value = getattr(module, alias.name)
            else:                                   # a submodule: `from pkg import mod`
                value = self._module(f"{base}.{alias.name}")
                if value is None:
                    continue
            self.namespace[alias.asname or alias.name] = value
        return True

    def _from_base(self, node):
        """The absolute dotted name a `from ... import` reads from (None: outside)."""
        if not node.level:
            return node.module
        package = self.namespace["__name__"]
        if not os.path.basename(self.filename) == "__init__.py":
            package = package.rpartition(".")[0]
        parts = package.split(".") if package and package != "__transpile_static__" else []
        if node.level - 1 > len(parts):
            return None
        parts = parts[:len(parts) - (node.level - 1)]
        if not parts:                  # the file itself is not in a package: its folder
            parts = []
        base = ".".join(parts + ([node.module] if node.module else []))
        return base or None

    def _module(self, dotted):
        """A module for a dotted name: the user's own parsed statically, others imported."""
        if dotted in self.loaded:
            return self.loaded[dotted]
        path = _project_file(dotted, self.roots)
        if path is not None:
            self.loaded[dotted] = None                 # a cycle sees an empty module
            static = StaticModule(path, dotted, self.roots, self.loaded)
            module = types.ModuleType(dotted)
            module.__file__ = path
            module.__dict__.update(static.namespace)
            module.__dict__["__name__"] = dotted
            self.loaded[dotted] = module
            parent, _, child = dotted.rpartition(".")
            if parent:
                owner = self._module(parent)
                if owner is not None:
                    setattr(owner, child, module)
            return module
        if _inside_project(dotted.split(".")[0], self.roots):
            return None              # a project module this file cannot read: never import
        try:
            module = importlib.import_module(dotted)
        except Exception:                             # noqa: BLE001 - an optional import
            module = None
        self.loaded[dotted] = module
        return module

    def uses_module(self, fn, module_name):
        """Does fn's body refer to a global bound to the module `module_name`?"""
        names = {n for n in fn.__code__.co_names}
        for n in names:
            obj = self.namespace.get(n)
            if isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] == module_name:
                return True
            if getattr(obj, "__module__", "") and str(getattr(obj, "__module__", "")).startswith(
                    module_name):
                return True
        return False


_DEFAULT = "__transpile_static_default__"   # the name StaticDefault is bound to


def _inert(node):
    """A copy of a def whose defaults and annotations evaluate nothing of the user's."""
    node = copy.deepcopy(node)
    args = node.args

    def literal(expr):
        if expr is None:
            return None
        try:
            ast.literal_eval(expr)
            return expr
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            call = ast.Call(func=ast.Name(_DEFAULT, ast.Load()),
                            args=[ast.Constant(ast.unparse(expr))], keywords=[])
            return ast.copy_location(call, expr)

    args.defaults = [literal(d) for d in args.defaults]
    args.kw_defaults = [literal(d) for d in args.kw_defaults]
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            a.annotation = None
    node.returns = None
    ast.fix_missing_locations(node)
    return node


def _project_roots(filename):
    roots = [os.path.dirname(os.path.abspath(filename)), os.getcwd()]
    return list(dict.fromkeys(os.path.realpath(r) for r in roots))


def _project_file(dotted, roots):
    """The file of a module of the user's project (a .py or a package's __init__.py)."""
    parts = dotted.split(".")
    for root in roots:
        base = os.path.join(root, *parts)
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def _inside_project(top, roots):
    """Is a top-level name a file or folder of the project (a namespace package, say)?"""
    return any(os.path.isdir(os.path.join(root, top))
               or os.path.exists(os.path.join(root, top + ".py")) for root in roots)
