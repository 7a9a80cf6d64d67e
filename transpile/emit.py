"""Emit: print generated ASTs as Python (astor), compile them, bind their free names.

Generated code runs with the user's module globals, the user's closure cells and, for the
helpers it calls (rules' ``math``, runtime helpers, derivatives of called functions), extra
closure cells: no name is ever injected into the user's module. The source is registered
with linecache, so ``inspect.getsource``, tracebacks and debuggers show the generated code
and the result can itself be transformed again.
"""
import ast
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
        self.origins = {}           # name -> where the object comes from (for module_text)

    def bind(self, base, obj, cell=False, origin=None):
        for name, bound in self.bindings.items():
            if bound is obj:
                return name
        if (base in self.names.used and base not in self.local_names
                and base not in self.bindings and not cell
                and self.unit.lookup(base) is obj):
            return base                              # the user's own name already means it
        name = self.names.unique(base)
        self.bindings[name] = obj
        if origin is not None:
            self.origins[name] = origin
        return name

    copying = False             # bind the copying variants of in-place helpers

    def helper(self, name):
        if self.copying and name in runtime.COPYING:
            return self.bind(name, runtime.COPYING[name])
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

    def callee_jvp(self, target, active, kinds, stmt):
        """(name of target's jvp function here, {param: tangent keyword})."""
        compiled, base, tangents = self.pipeline.callee_jvp(target, active, kinds,
                                                            self.unit, stmt)
        return self.bind(f"{base}_jvp", compiled.forward_cell, cell=True,
                         origin=("callee", compiled, 0)), tangents

    def callee(self, target, active, kinds, stmt):
        compiled, base = self.pipeline.callee_pair(target, active, kinds, self.unit, stmt)
        return (self.bind(f"{base}_forward", compiled.forward_cell, cell=True,
                          origin=("callee", compiled, 0)),
                self.bind(f"{base}_backward", compiled.backward_cell, cell=True,
                          origin=("callee", compiled, 1)))


def to_source(node):
    try:
        return astor.to_source(node, pretty_source=lambda parts: "".join(parts))
    except Exception:                     # astor lags behind new syntax: fall back
        return ast.unparse(node) + "\n"


def build(name, args, body, namespace, unit, defaults=None, kwdefaults=None, kind=""):
    """Print and compile one generated function; returns (function, source)."""
    fdef = ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None)
    fdef = ast.fix_missing_locations(A.located(fdef, unit.node))
    _fill_line_info(fdef)
    source = to_source(fdef)
    lines = _line_map(fdef, source, offset=1)
    fn = load(name, source, namespace.bindings, unit, defaults, kwdefaults, kind, lines)
    return fn, source


def load(name, source, bindings, unit, defaults=None, kwdefaults=None, kind="", lines=None):
    """Compile generated source as a closure over `bindings` (objects or cells) and the
    user's closure cells, running in the user's module globals."""
    closure_names = [n for n in unit.closure if n not in bindings]
    free = list(bindings) + closure_names
    factory = f"def __transpile_factory__({', '.join(free)}):\n" \
              f"{textwrap.indent(source, '    ')}    return {name}\n"
    filename = f"<transpile {unit.name} {kind} #{next(_COUNTER)}>"
    code = compile(factory, filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in factory_code.co_consts if isinstance(c, types.CodeType)
                 and c.co_name == name)
    cells = []
    for var in inner.co_freevars:
        if var in bindings:
            obj = bindings[var]
            cells.append(obj if isinstance(obj, types.CellType) else types.CellType(obj))
        else:
            cells.append(unit.closure[var])
    fn = types.FunctionType(inner, unit.globals, name, None, tuple(cells))
    if defaults is not None:
        fn.__defaults__ = defaults
    if kwdefaults is not None:
        fn.__kwdefaults__ = kwdefaults
    fn.__transpile_source__ = source
    fn.__transpile_lines__ = lines or {}
    register_source(filename, factory)
    SOURCE_MAPS[filename] = (unit.filename, lines or {})
    return fn


SOURCE_MAPS = {}      # generated file name -> (user file, {generated line: user line})


def _line_map(fdef, source, offset):
    """Generated line -> the user's line each generated statement came from."""
    printed = ast.parse(source).body[0]
    out = {}
    for mine, theirs in zip(A.statements(fdef.body, into_defs=True),
                            A.statements(printed.body, into_defs=True)):
        line = getattr(mine, "lineno", None)
        if line is not None and line > 1:
            for k in range(theirs.lineno, (theirs.end_lineno or theirs.lineno) + 1):
                out.setdefault(k + offset, line)
    return out


def annotate(exc):
    """Add a note naming the user's file:line for each generated frame in exc's traceback."""
    import linecache
    tb = exc.__traceback__
    notes = []
    while tb is not None:
        code = tb.tb_frame.f_code
        entry = SOURCE_MAPS.get(code.co_filename)
        if entry is not None:
            user_file, lines = entry
            line = lines.get(tb.tb_lineno)
            if line is not None:
                text = linecache.getline(user_file, line).strip()
                notes.append(f"  in the derivative code of {code.co_name}, from "
                             f'File "{user_file}", line {line}: {text}')
        tb = tb.tb_next
    if notes and hasattr(exc, "add_note") and not getattr(exc, "_transpile_annotated", False):
        for note in notes:
            exc.add_note(note)
        try:
            exc._transpile_annotated = True
        except AttributeError:
            pass
    return exc


def _fill_line_info(node):
    """Generated statements keep the user's line numbers (for the line map); nodes that
    have none get line 1 so the AST compiles."""
    for n in ast.walk(node):
        if isinstance(n, (ast.stmt, ast.expr)) and not hasattr(n, "lineno"):
            n.lineno = 1
            n.col_offset = 0



# --- a standalone module: what `transpile-ad` prints --------------------------------------

def module_text(entries, preamble=()):
    """Python source defining the generated functions of `entries` (Compiled objects) and
    everything they refer to, importable on its own: helpers are imported from transpile,
    rule functions looked up in its registry, called functions' derivatives included.

    `preamble`: lines to put first (the user's imports, constants and plain functions).
    No name the preamble defines is rebound: a helper or generated function whose name
    the user's code already uses for something else gets another name (`sign` becomes
    `sign_helper` in the derivative code that calls it), so the user's functions keep
    meaning what they meant."""
    import inspect as _inspect
    lines = list(preamble)
    taken = _top_level_names(preamble)
    user_lines = {line.strip() for line in "\n".join(preamble).splitlines()}
    bodies, seen, names = [], set(), {}
    chosen = {}            # (name, what it binds) -> the name it gets in the module

    def bind_line(name, obj, origin):
        if origin is not None and origin[0] in ("vjp", "vjps", "jvp"):
            from .rules.registry import key_of
            fn, nargs = key_of(origin[1])
            if origin[0] == "jvp":
                return f"{name} = {_LOOKUP}({_expr_of(fn)}, {nargs!r}).jvp"
            if origin[0] == "vjps":
                return f"{name} = tuple({_LOOKUP}({_expr_of(fn)}, {nargs!r}).vjps)"
            return f"{name} = {_LOOKUP}({_expr_of(fn)}, {nargs!r}).vjps[{origin[2]}]"
        if _inspect.ismodule(obj):
            base = obj.__name__
            return f"import {base}" if name == base else f"import {base} as {name}"
        return f"{name} = {_expr_of(obj)}"

    def unused(base, suffix):
        used = taken | set(names) | set(defined.values()) | set(chosen.values())
        name, k = f"{base}_{suffix}", 1
        while name in used:
            k += 1
            name = f"{base}_{suffix}{k}"
        return name

    defined = {}           # id(function object) -> the name its def gets in the module

    def define(fn, source):
        """Print a generated def under a name no other def (and no user name) has."""
        name = fn.__name__
        if name in defined.values() or name in taken:
            name = unused(fn.__name__, "v")
        defined[id(fn)] = name
        if name != fn.__name__:
            source = source.replace(f"def {fn.__name__}(", f"def {name}(", 1)
        bodies.append(source)
        return len(bodies) - 1

    def add(compiled):
        if id(compiled) in seen:
            return
        seen.add(id(compiled))
        functions = ([compiled.function] if compiled.function is not None
                     else [compiled.forward, compiled.backward])
        places = [define(fn, source)       # first: recursive calls refer to these names
                  for fn, source in zip(functions, compiled.sources)]
        ns = compiled.namespace
        renames = {}
        for name, obj in ns.bindings.items():
            origin = ns.origins.get(name)
            if origin is not None and origin[0] == "callee":
                callee = origin[1]
                add(callee)
                target = defined[id((callee.forward, callee.backward)[origin[2]])]

                def line_for(n, target=target):
                    return None if target == n else f"{n} = {target}"
            else:
                def line_for(n, obj=obj, origin=origin):
                    return bind_line(n, obj, origin)
            line = line_for(name)
            if line is not None and name in taken and line not in user_lines:
                what = line.split("=", 1)[-1].strip()
                new = chosen.get((name, what))
                if new is None:
                    new = chosen[(name, what)] = unused(name, "helper")
                renames[name] = new
                line = line_for(new)
                name = new
            if line is not None:
                key = names.setdefault(name, line)
                if key != line:
                    raise ValueError(f"two generated functions need different objects named "
                                     f"{name!r}")
        if renames:
            for i in places:
                bodies[i] = _renamed_source(bodies[i], renames)

    for compiled in entries:
        add(compiled)
    binds = sorted(set(names.values()), key=lambda l: (not l.startswith("import"), l))
    plumbing = [f"import ast as {_AST}", f"import builtins as {_BUILTINS}"]
    plumbing += [f"import {m}" for m in ("numpy", "math") if m not in taken]
    plumbing += ["import transpile.runtime as _transpile_runtime",
                 "import transpile.rules.numpy_ as _transpile_numpy_rules",
                 f"from transpile.rules import lookup as {_LOOKUP}", ""]
    lines += plumbing
    lines += binds
    lines.append("")
    for body in bodies:
        lines += ["", body.rstrip(), ""]
    return "\n".join(lines) + "\n"


# names the printed module's own plumbing uses (private, so no user name is shadowed)
_AST, _BUILTINS, _LOOKUP = "_transpile_ast", "_transpile_builtins", "_transpile_lookup"


def _top_level_names(preamble):
    """Names the user's code in the preamble binds at module level."""
    try:
        tree = ast.parse("\n".join(preamble))
    except SyntaxError:
        return set()
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out.add((alias.asname or alias.name).split(".")[0])
        else:
            out |= A.names_stored(node)
    return out


def _renamed_source(source, renames):
    """A generated def with the free names in `renames` renamed (loads only: in a
    generated function those names are never assigned)."""
    fdef = ast.parse(source).body[0]
    for n in ast.walk(fdef):
        if isinstance(n, ast.Name) and n.id in renames:
            n.id = renames[n.id]
    return to_source(fdef)


def _expr_of(obj):
    """An importable expression for obj (module-level function, class, ufunc, builtin)."""
    if isinstance(obj, type) and issubclass(obj, ast.AST):
        return f"{_AST}.{obj.__name__}"
    module = getattr(obj, "__module__", None) or "builtins"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if qualname is None or "<" in qualname:
        raise ValueError(f"cannot name {obj!r} in generated module code")
    if module == "builtins":
        return f"{_BUILTINS}.{qualname}"
    import importlib
    importlib.import_module(module)
    return f"__import__({module!r}, fromlist=['_']).{qualname}"
