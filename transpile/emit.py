"""Emit: print generated ASTs as Python (astor), compile them, bind their free names.

Generated code runs with the user's module globals, the user's closure cells and, for the
helpers it calls (rules' ``math``, runtime helpers, derivatives of called functions), extra
closure cells: no name is ever injected into the user's module. The source is registered
with linecache, so ``inspect.getsource``, tracebacks and debuggers show the generated code
and the result can itself be transformed again.
"""
import ast
import copy
import itertools
import textwrap
import types

import astor

from . import astutil as A
from . import runtime
from .frontend import register_source

_COUNTER = itertools.count(1)


class Namespace:
    """Free names of one generated function and what they are bound to."""

    def __init__(self, unit, names, local_names, pipeline):
        self.unit = unit
        self.names = names
        self.local_names = set(local_names)
        self.pipeline = pipeline
        self.bindings = {}          # name -> object or cell

    def bind(self, base, obj, cell=False):
        for name, bound in self.bindings.items():
            if bound is obj:
                return name
        if (base in self.names.used and base not in self.local_names
                and base not in self.bindings and not cell
                and self.unit.lookup(base) is obj):
            return base                              # the user's own name already means it
        name = self.names.unique(base)
        self.bindings[name] = obj
        return name

    def helper(self, name):
        return self.bind(name, getattr(runtime, name))

    def instantiate(self, template, mapping, env):
        """A rule template with parameters replaced and free names bound."""
        expr = A.substitute(template, mapping)
        renames = {}
        for n in ast.walk(expr):
            if isinstance(n, ast.Name) and n.id not in mapping and n.id in env:
                renames[n.id] = self.bind(n.id, env[n.id])
        for n in ast.walk(expr):
            if isinstance(n, ast.Name) and n.id in renames:
                n.id = renames[n.id]
        return expr

    def bind_call(self, target, call, caller, stmt):
        return self.pipeline.bind_call(target, call, caller, stmt)

    def callee(self, target, active, kinds, stmt):
        fwd_cell, bwd_cell, base = self.pipeline.callee_pair(target, active, kinds,
                                                             self.unit, stmt)
        return (self.bind(f"{base}_forward", fwd_cell, cell=True),
                self.bind(f"{base}_backward", bwd_cell, cell=True))


def to_source(node):
    try:
        return astor.to_source(node, pretty_source=lambda parts: "".join(parts))
    except Exception:                     # astor lags behind new syntax: fall back
        return ast.unparse(node) + "\n"


def build(name, args, body, namespace, unit, defaults=None, kwdefaults=None, kind=""):
    """Compile one generated function; returns (function, source)."""
    fdef = ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None)
    fdef = ast.fix_missing_locations(A.located(fdef, unit.node))
    _strip_line_info(fdef)
    source = to_source(fdef)
    closure_names = [n for n in unit.closure if n not in namespace.bindings]
    free = list(namespace.bindings) + closure_names
    factory = f"def __transpile_factory__({', '.join(free)}):\n" \
              f"{textwrap.indent(source, '    ')}    return {name}\n"
    filename = f"<transpile {unit.name} {kind} #{next(_COUNTER)}>"
    code = compile(factory, filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in factory_code.co_consts if isinstance(c, types.CodeType)
                 and c.co_name == name)
    cells = []
    for var in inner.co_freevars:
        if var in namespace.bindings:
            obj = namespace.bindings[var]
            cells.append(obj if isinstance(obj, types.CellType) else types.CellType(obj))
        else:
            cells.append(unit.closure[var])
    fn = types.FunctionType(inner, unit.globals, name, None, tuple(cells))
    if defaults is not None:
        fn.__defaults__ = defaults
    if kwdefaults is not None:
        fn.__kwdefaults__ = kwdefaults
    fn.__transpile_source__ = source
    register_source(filename, factory)
    return fn, source


def _strip_line_info(node):
    """Generated statements keep user line numbers for error messages; printing ignores
    them, so nothing to do beyond making sure every node has one."""
    for n in ast.walk(node):
        if isinstance(n, (ast.stmt, ast.expr)) and not hasattr(n, "lineno"):
            n.lineno = 1
            n.col_offset = 0


def clone(node):
    return copy.deepcopy(node)
