"""Static loading of a source file, for the command line: no line of the file runs.

The file is parsed; its import statements are carried out (they bring in other modules,
not the file's own code), top-level constants with literal values are evaluated with
`ast.literal_eval`, and each top-level function definition is compiled on its own
(decorators dropped) into a namespace holding just those. The resulting function objects
carry the file's name and line numbers, so the compiler reads them like any other.
"""
import ast
import types

from .errors import TranspileError


class StaticModule:
    """Functions of a file, compiled without running the file."""

    def __init__(self, filename):
        self.filename = filename
        with open(filename, encoding="utf-8") as fh:
            self.source = fh.read()
        try:
            self.tree = ast.parse(self.source, filename)
        except SyntaxError as exc:
            raise TranspileError(f"cannot parse: {exc.msg}", filename, exc.lineno) from None
        self.namespace = {"__name__": "__transpile_static__", "__file__": filename}
        self.imports = []          # import statements, as source text, in file order
        self.constants = []        # `NAME = literal` statements, as source text
        self.functions = {}        # name -> function object
        self.definitions = {}      # name -> source text of the def (decorators removed)
        self.problems = {}         # name -> TranspileError for defs that cannot compile
        self._load()

    def _load(self):
        for node in self.tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.ImportFrom) and node.level:
                    continue                               # relative: nothing to import
                try:
                    exec(compile(ast.Module(body=[node], type_ignores=[]), self.filename,
                                 "exec"), self.namespace)
                    self.imports.append(ast.unparse(node))
                except Exception:                           # noqa: BLE001 - optional import
                    pass
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name)):
                try:
                    value = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError):
                    continue
                self.namespace[node.targets[0].id] = value
                self.constants.append(ast.unparse(node))
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                node.decorator_list = []
                self.definitions[node.name] = ast.unparse(node)
                try:
                    code = compile(ast.Module(body=[node], type_ignores=[]), self.filename,
                                   "exec")
                    exec(code, self.namespace)
                except Exception as exc:                    # noqa: BLE001 - e.g. defaults
                    self.problems[node.name] = TranspileError(
                        f"cannot prepare the function statically ({exc})", self.filename,
                        node.lineno, node.name)
                    continue
                fn = self.namespace[node.name]
                if isinstance(fn, types.FunctionType):
                    self.functions[node.name] = fn

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
