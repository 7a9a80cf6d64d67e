"""Emit: print generated ASTs as Python (astor), compile them, bind their free names.

Generated code runs with the user's module globals, the user's closure cells and, for the
helpers it calls (rules' ``math``, runtime helpers, derivatives of called functions), extra
closure cells: no name is ever injected into the user's module. The source is registered
with linecache, so ``inspect.getsource``, tracebacks and debuggers show the generated code
and the result can itself be transformed again.
"""
import ast
import warnings
import itertools
import textwrap
import types

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
        # the template's own free names are bound, before the arguments go in: a user's
        # variable passed as an argument (`sign`) is not the template's helper `sign`
        renames = {n.id: None for n in A.walk(template)
                   if isinstance(n, ast.Name) and n.id not in mapping and n.id in env}
        for name in renames:
            renames[name] = self.bind(name, env[name])
        return A.substitute(template, mapping, renames)

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
    return _printed(node)[0]


def _printed(node):
    """(the source of node, {id(statement): [(first line, last line) of each time it is
    printed]}, or None for the second where the printer cannot tell: astor's fallback)."""
    try:
        with warnings.catch_warnings():   # astor's own import reads ast.Num (3.12+)
            warnings.simplefilter("ignore", DeprecationWarning)
            import astor                  # (printing only: cached code is not)
        generator = _spans_printer(astor)(" " * 4)
        generator.visit(node)
    except Exception:                     # astor lags behind new syntax: fall back
        return ast.unparse(node) + "\n", None
    return _astor_printed(generator)


def _astor_printed(generator):
    """What astor.to_source(node) returns (its parts joined as they are) from the printer
    that visited node, and where each statement landed: the parts of the output each
    statement's visit wrote, by their line."""
    result = generator.result
    result.append("\n")                  # (what astor.to_source does after its visit)
    if set(result[0]) == set("\n"):
        result[0] = ""
    # newlines in the parts before each part
    before = list(itertools.accumulate(map(str.count, result, itertools.repeat("\n")),
                                       initial=0))
    spans = {}
    for stmt, a, b in generator.spans:
        first, last = a, b - 1          # its first and last parts that are not blank
        while first < b and not result[first].strip():
            first += 1
        while last > first and not result[last].strip():
            last -= 1
        if first == b:                  # (a statement printed as nothing: parse again)
            return "".join(result), None
        head = result[first]
        start = before[first] + head[:len(head) - len(head.lstrip())].count("\n")
        end = before[last] + result[last].rstrip().count("\n")
        spans.setdefault(id(stmt), []).append((start + 1, end + 1))
    return "".join(result), spans


_PRINTER = []


def _spans_printer(astor):
    """astor's SourceGenerator noting, for each statement it visits, the range of its
    result list the statement's text went to (made once; only the visits of statements
    are wrapped)."""
    if not _PRINTER:
        base = astor.code_gen.SourceGenerator

        def noting(visit):
            def visit_noting(self, node, *args):
                a = len(self.result)
                out = visit(self, node, *args)
                self.spans.append((node, a, len(self.result)))
                return out
            return visit_noting

        def __init__(self, indent_with):
            base.__init__(self, indent_with)
            self.spans = []             # (statement, first part, end part) as visited
        methods = {"__init__": __init__}
        for cls in _subclasses(ast.stmt):
            visit = getattr(base, "visit_" + cls.__name__, None)
            if visit is not None:
                methods["visit_" + cls.__name__] = noting(visit)
        _PRINTER.append(type("SpansPrinter", (base,), methods))
    return _PRINTER[0]


def _subclasses(cls):
    out = []
    for sub in cls.__subclasses__():
        out += [sub] + _subclasses(sub)
    return out


def build(name, args, body, namespace, unit, defaults=None, kwdefaults=None, kind=""):
    """Print and compile one generated function; returns (function, source)."""
    from .control_flow import rebuild_with
    body = rebuild_with(body)
    fdef = ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None)
    fdef = A.placed(fdef, unit.node)                # (every node placed)
    source, spans = _printed(fdef)
    lines = _line_map(fdef, source, offset=1, spans=spans)
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
    _dump(factory, unit, kind, lines)
    register_source(filename, factory)
    SOURCE_MAPS[filename] = (unit.filename, lines or {})
    return fn


def _dump(factory, unit, kind, lines):
    """With TRANSPILE_DUMP_SOURCES=<folder>: each generated source (with the names it
    closes over and its line map) written to a file named by its hash, so that the code
    two versions of transpile generate for the same programs can be compared."""
    import os
    folder = os.environ.get("TRANSPILE_DUMP_SOURCES")
    if not folder:
        return
    import hashlib
    text = (f"# {os.path.basename(str(unit.filename))} {unit.name} {kind}\n{factory}"
            f"# lines {sorted((lines or {}).items())}\n")
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, digest + ".py"), "w") as fh:
        fh.write(text)


SOURCE_MAPS = {}      # generated file name -> (user file, {generated line: user line})


def user_line(filename, line):
    """(file, line) of the user's code a generated line came from, through derivative code
    of derivative code (each maps to the file it was generated from); a file that is not
    generated is returned as it is."""
    for _ in range(100):
        entry = SOURCE_MAPS.get(filename)
        if entry is None or line is None:
            break
        filename, line = entry[0], entry[1].get(line)
    return filename, line


def locate(exc):
    """A TranspileError raised while generated code ran (a rule refusing the values it
    was given) without a place of its own: placed at the user's line of the innermost
    generated frame of its traceback."""
    if getattr(exc, "filename", True) is not None:
        return exc
    tb, found = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in SOURCE_MAPS and \
                SOURCE_MAPS[code.co_filename][1].get(tb.tb_lineno) is not None:
            found = code.co_filename, tb.tb_lineno, code.co_name
        tb = tb.tb_next
    if found is not None:
        filename, line = user_line(found[0], found[1])
        exc.place(filename, line, f"the derivative code {found[2]}")
    return exc


def _line_map(fdef, source, offset, spans=None):
    """Generated line -> the user's line each generated statement came from. The lines
    each statement was printed on are those the printer noted (`spans`, see _printed),
    else those of the source parsed again."""
    mine = list(A.statements(fdef.body, into_defs=True))
    printed = _printed_lines(mine, spans)
    if printed is None:
        printed = [(theirs.lineno, theirs.end_lineno or theirs.lineno) for theirs in
                   A.statements(ast.parse(source).body[0].body, into_defs=True)]
    out = {}
    for stmt, (first, last) in zip(mine, printed):
        line = getattr(stmt, "lineno", None)
        if line is not None and line > 1:
            for k in range(first, last + 1):
                out.setdefault(k + offset, line)
    return out


def _printed_lines(stmts, spans):
    """(first line, last line) of each of stmts (every statement of a def, in order) as
    printed, the k-th time a statement occurs taking its k-th printing; None where that
    pairing could be wrong (a statement printed more or fewer times than it occurs
    here: a shared one in an except handler, which `statements` does not go into)."""
    if spans is None:
        return None
    times = {}
    for s in stmts:
        times[id(s)] = times.get(id(s), 0) + 1
    if any(len(spans.get(k, ())) != n for k, n in times.items()):
        return None
    taken = dict.fromkeys(times, 0)
    out = []
    for s in stmts:
        k = taken[id(s)]
        taken[id(s)] = k + 1
        out.append(spans[id(s)][k])
    return out


def annotate(exc):
    """Add a note naming the user's file:line for each generated frame in exc's traceback
    (and place a TranspileError that has no place: `locate`)."""
    import linecache
    locate(exc)
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



# --- a standalone module: what `transpile-ad` prints --------------------------------------

def module_text(entries, preamble=(), imports=(), split=False):
    """Python source defining the generated functions of `entries` (Compiled objects) and
    everything they refer to, importable on its own: helpers and rule functions are
    imported from transpile (rule functions that have no importable name are looked up in
    its registry), called functions' derivatives included.

    `imports`: the user's import lines, printed first, with the generated code's imports
    right after them (one import block); `preamble`: lines to put after the imports (the
    user's constants and plain functions). No name the user's code defines is rebound: a
    helper or generated function whose name the user's code already uses for something
    else gets another name (`sign` becomes `sign_helper` in the derivative code that calls
    it), so the user's functions keep meaning what they meant. With `split`, the pair
    (everything before the generated defs, the generated defs)."""
    import inspect as _inspect
    user = list(imports) + list(preamble)
    taken = _top_level_names(user)
    user_lines = {line.strip() for line in "\n".join(user).splitlines()}
    bodies, seen, names = [], set(), {}
    chosen = {}            # (name, what it binds) -> the name it gets in the module
    needed = _Imports(taken, imports)

    def bind_line(name, obj, origin):
        """The line binding `name` at module level: an import where one names the object,
        else an assignment (imports it needs are recorded)."""
        if origin is not None and origin[0] in ("vjp", "vjps", "jvp"):
            from .rules.registry import key_of
            if origin[0] == "vjp":
                line = needed.from_import(origin[1].vjps[origin[2]], name)
                if line is not None:
                    return line
            fn, nargs = key_of(origin[1])
            lookup = needed.lookup()
            if origin[0] == "jvp":
                return f"{name} = {lookup}({needed.expr(fn)}, {nargs!r}).jvp"
            if origin[0] == "vjps":
                return f"{name} = tuple({lookup}({needed.expr(fn)}, {nargs!r}).vjps)"
            return f"{name} = {lookup}({needed.expr(fn)}, {nargs!r}).vjps[{origin[2]}]"
        if _inspect.ismodule(obj):
            base = obj.__name__
            return f"import {base}" if name == base else f"import {base} as {name}"
        line = needed.from_import(obj, name)
        if line is not None:
            return line
        return f"{name} = {needed.expr(obj)}"

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
        used = {n.id for source in compiled.sources for n in A.walk(ast.parse(source))
                if isinstance(n, ast.Name)}
        for name, obj in ns.bindings.items():
            if name not in used:            # bound while writing, not called in the end
                continue
            origin = ns.origins.get(name)
            if origin is not None and origin[0] == "callee":
                callee = origin[1]
                add(callee)
                # the caller calls the callee's def by the name it has in the module
                target = defined[id((callee.forward, callee.backward)[origin[2]])]
                if target != name:
                    renames[name] = target
                continue
            line = bind_line(name, obj, origin)
            if name in taken and line not in user_lines:
                what = line.split("=", 1)[-1].strip() if " = " in line else line
                new = chosen.get((name, what))
                if new is None:
                    new = chosen[(name, what)] = unused(name, "helper")
                renames[name] = new
                line = bind_line(new, obj, origin)
                name = new
            key = names.setdefault(name, line)
            if key != line:
                raise ValueError(f"two generated functions need different objects named "
                                 f"{name!r}")
        if renames:
            for i in places:
                bodies[i] = _renamed_source(bodies[i], renames)

    for compiled in entries:
        add(compiled)
    binds = [line for line in set(names.values()) if line not in user_lines]
    lines = list(imports) + needed.lines(b for b in binds if b.startswith(("import ", "from ")))
    if preamble and preamble[0].strip():
        lines.append("")
    lines += list(preamble)
    lines += sorted(b for b in binds if not b.startswith(("import ", "from ")))
    head = "\n".join(lines) + "\n"
    generated = "".join("\n\n" + body.rstrip() + "\n" for body in bodies)
    return (head, generated) if split else head + generated


class _Imports:
    """The imports a printed module needs, and importable expressions for objects."""

    def __init__(self, taken, imports=()):
        self.taken = taken
        self.aliases = {}           # module -> the name the user's `import m as a` binds
        try:
            tree = ast.parse("\n".join(imports))
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname or "." not in alias.name:
                        self.aliases[alias.name] = alias.asname or alias.name
        self.modules = set()        # `import m` lines needed
        self.wanted = set()         # other import lines

    def module(self, name):
        """How the module `name` is reached in the printed module (an import recorded)."""
        if name in self.aliases:
            return self.aliases[name]
        top = name.split(".")[0]
        if top in self.taken:
            return None
        self.modules.add(name)
        return name

    def lookup(self):
        self.wanted.add(f"from transpile.rules import lookup as {_LOOKUP}")
        return _LOOKUP

    def from_import(self, obj, name):
        """`from module import qualname [as name]` when that imports obj (or the function
        obj only forwards to, its `__wrapped__`), else None."""
        obj = getattr(obj, "__wrapped__", obj)
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if not module or not qualname or "." in qualname or "<" in qualname or \
                module == "builtins" or isinstance(obj, type) and issubclass(obj, ast.AST):
            return None
        import importlib
        try:
            if getattr(importlib.import_module(module), qualname, None) is not obj:
                return None
        except ImportError:
            return None
        if module.startswith("numpy") and module.count(".") > 0:
            return None          # numpy's private modules: named through numpy itself
        return (f"from {module} import {qualname}" if name == qualname else
                f"from {module} import {qualname} as {name}")

    def expr(self, obj):
        """An importable expression for obj (module-level function, class, ufunc,
        builtin)."""
        if isinstance(obj, type) and issubclass(obj, ast.AST):
            self.wanted.add(f"import ast as {_AST}")
            return f"{_AST}.{obj.__name__}"
        module = getattr(obj, "__module__", None) or "builtins"
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if qualname is None or "<" in qualname:
            raise ValueError(f"cannot name {obj!r} in generated module code")
        if module == "builtins":
            self.wanted.add(f"import builtins as {_BUILTINS}")
            return f"{_BUILTINS}.{qualname}"
        import importlib
        importlib.import_module(module)
        if module.startswith("numpy.") and getattr(importlib.import_module("numpy"),
                                                    qualname, None) is obj:
            module = "numpy"
        where = self.module(module)
        if where is None:
            return f"__import__({module!r}, fromlist=['_']).{qualname}"
        return f"{where}.{qualname}"

    def lines(self, binds):
        """The import block: `import m` lines, then `from m import a, b` (one per module),
        then the private plumbing."""
        plain = {f"import {m}" for m in self.modules}
        froms, other = {}, set()
        for line in binds:
            if line.startswith("from "):
                module, name = line[len("from "):].split(" import ")
                froms.setdefault(module, []).append(name)
            else:
                plain.add(line)
        out = sorted(plain)
        for m, ns in sorted(froms.items()):
            line = f"from {m} import {', '.join(sorted(set(ns)))}"
            if len(line) > 88:
                line = f"from {m} import (\n" + "".join(
                    f"    {n},\n" for n in sorted(set(ns))) + ")"
            out.append(line)
        out += sorted(self.wanted)
        return out


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
    for n in A.walk(fdef):
        if isinstance(n, ast.Name) and n.id in renames:
            n.id = renames[n.id]
    return to_source(fdef)
