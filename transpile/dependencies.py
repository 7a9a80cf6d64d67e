"""What generated code was built from, and whether it still is: the freshness checks.

A derivative is reused only while everything it was built from is unchanged: the globals
and closure cells it reads (and the builtins it falls back on), the attributes it reads of
modules and classes among them, the function's code and defaults, its callees, and the
rule registry's version. `Dependencies` records those identities when code is built and
checks them on every call (a generated boolean expression); `reads` finds what a code
object reads from its bytecode; `_check_source` makes sure the text on disk is the code
that runs.
"""
import ast
import types

from .errors import TranspileError
from .astutil import nodes


class Dependencies:
    """What generated code was built from, as (container, key, object) identities: the
    globals and closure cells the function reads (and the builtins it falls back on), the
    attributes it reads of the modules and classes among them, the function's __code__ and
    defaults, each callee's generation, the maker of derivative code, and the version of
    the rule registry. `check()` compares them all (a generated boolean expression, a few
    tens of nanoseconds per entry). `recheck()`, the slow path after a mismatch, accepts a
    data global (a number, an array, a list...) rebound to a value of the same kind: the
    generated code reads such values at run time and was specialized on their kind only."""

    def __init__(self, entries=None, rules=None):
        self.entries = entries if entries is not None else {}
        self.rules = rules
        self.check = self._compile() if rules is not None else (lambda: True)

    @classmethod
    def stale(cls):
        d = cls({}, None)
        d.check = lambda: False
        d.recheck = lambda: False
        return d

    # --- collecting -----------------------------------------------------------------
    @classmethod
    def of_unit(cls, unit):
        d = cls()
        fn = unit.func
        code = getattr(fn, "__code__", None)
        if code is not None:           # (defaults matter only where there are parameters)
            for attr, used in (("__code__", True), ("__defaults__", code.co_argcount),
                               ("__kwdefaults__", code.co_kwonlyargcount)):
                if used:
                    d.add(("attr", fn, attr), getattr(fn, attr))
        for _, where, value in reads(unit.globals, unit.closure, getattr(fn, "__code__", None)
                                     or unit.node):
            d.add(where, value)
        return d

    def add(self, where, value):
        k = (where[0],) + tuple(id(w) for w in where[1:])
        self.entries[k] = where + (value,)

    def producer(self, ref, slot, generation):
        maker = ref()
        if maker is not None:
            self.entries[("producer", id(maker))] = ("producer", maker, generation)

    # --- checking -------------------------------------------------------------------
    def _compile(self):
        """check() as one generated boolean expression over the recorded identities."""
        from .rules.registry import VERSION
        args, values, terms = ["_R", "_M"], [VERSION, _MISSING], [f"_R[0] == {self.rules}"]
        for k, (kind, *rest) in enumerate(self.entries.values()):
            o, e = f"_o{k}", f"_e{k}"
            if kind == "dict":
                space, key, value = rest
                args += [o, e]
                values += [space, value]
                terms.append(f"{key!r} not in {o}" if value is _MISSING
                             else f"{o}[{key!r}] is {e}")
            elif kind == "cell":
                cell, value = rest
                args += [o, e]
                values += [cell, value]
                terms.append(f"{o}.cell_contents is {e}")
            elif kind == "attr":
                obj, attr, value = rest
                args += [o, e]
                values += [obj, value]
                terms.append(f"{o}.{attr} is {e}")
            elif kind == "generation":
                callee, generation = rest
                args.append(o)
                values.append(callee)
                terms.append(f"{o}.generation == {generation}")
            elif kind == "producer":
                maker, generation = rest
                args.append(o)
                values.append(maker)
                terms.append(f"{o}.generation == {generation} and {o}.is_current()")
        source = (f"def _make({', '.join(args)}):\n"
                  f"    def check():\n"
                  f"        try:\n"
                  f"            return {' and '.join(terms)}\n"
                  f"        except (KeyError, ValueError, AttributeError):\n"
                  f"            return False\n"
                  f"    return check\n")
        space = {}
        exec(compile(source, "<transpile dependency check>", "exec"), space)
        return space["_make"](*values)

    def recheck(self):
        """After check() failed: still current if only data globals changed, to values of
        the same kind (then the expected identities are updated)."""
        from .rules.registry import VERSION
        if self.rules != VERSION[0]:
            return False
        updates = {}
        for k, entry in self.entries.items():
            kind = entry[0]
            if kind == "dict":
                now = entry[1].get(entry[2], _MISSING)
            elif kind == "cell":
                try:
                    now = entry[1].cell_contents
                except ValueError:
                    return False
            elif kind == "attr":
                now = getattr(entry[1], entry[2], _MISSING)
            elif kind == "generation":
                if entry[1].generation != entry[2]:
                    return False
                continue
            else:
                if entry[1].generation != entry[2] or not entry[1].is_current():
                    return False
                continue
            then = entry[-1]
            if now is then:
                continue
            if kind == "attr" or not (_is_data(now) and _is_data(then)
                                      and _data_kind(now) == _data_kind(then)):
                return False
            updates[k] = entry[:-1] + (now,)
        self.entries.update(updates)
        self.check = self._compile()
        return True


def reads(globals_, closure, code):
    """What code (a code object, or the AST of a lifted function) reads from its
    environment: [(label, where, value)], label a JSON-able path (("global", name),
    ("cell", name), ("builtin", name), ("attr", owner label, attr)), where the container
    and key a check compares, value the object found (_MISSING where none)."""
    import builtins
    if isinstance(code, types.CodeType):
        global_names, attr_names = _names_read(code)
    else:
        global_names, attr_names = _names_in_ast(code)
    out, values = [], []
    for name in sorted(global_names):
        if name in closure:
            cell = closure[name]
            try:
                value = cell.cell_contents
            except ValueError:
                value = _MISSING
            out.append((("cell", name), ("cell", cell), value))
        elif name in globals_:
            value = globals_[name]
            out.append((("global", name), ("dict", globals_, name), value))
        else:
            out.append((("global", name), ("dict", globals_, name), _MISSING))
            value = builtins.__dict__.get(name, _MISSING)
            out.append((("builtin", name), ("dict", builtins.__dict__, name), value))
        values.append((out[-1][0], value))
    seen = set()
    while values:                          # module.attr, package.module.attr, Class.attr
        label, value = values.pop()
        if id(value) in seen or not isinstance(value, (types.ModuleType, type)):
            continue
        if isinstance(value, type) and not value.__flags__ & _HEAPTYPE:
            continue                       # a built-in class: its attributes are fixed
        seen.add(id(value))
        for attr in sorted(attr_names):
            if isinstance(value, types.ModuleType):
                space = value.__dict__
            else:
                space = next((k.__dict__ for k in value.__mro__ if attr in k.__dict__),
                             None)
            if space is None or attr not in space:
                continue
            here = ("attr", label, attr)
            out.append((here, ("dict", space, attr), space[attr]))
            values.append((here, space[attr]))
    return out


def _is_data(value):
    return not (value is _MISSING or callable(value)
                or isinstance(value, (types.ModuleType, type)))


def _data_kind(value):
    from .analysis import value_kind
    return type(value), value_kind(value)


_MISSING = object()
_HEAPTYPE = 1 << 9

_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_DEREF",
               "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_GLOBALS", "LOAD_FROM_DICT_OR_DEREF"}
_ATTR_OPS = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR", "LOAD_SUPER_ATTR"}


def _names_read(code):
    """(global and free names, attribute names) a code object and its nested code read."""
    import dis
    names, attrs = set(code.co_freevars), set()
    stack = [code]
    while stack:
        c = stack.pop()
        try:
            for ins in dis.get_instructions(c):
                if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str):
                    names.add(ins.argval)
                elif ins.opname in _ATTR_OPS and isinstance(ins.argval, str):
                    attrs.add(ins.argval)
        except Exception:                      # an unknown bytecode: every name counts
            names.update(c.co_names)
            attrs.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names, attrs


def _names_in_ast(node):
    names, attrs = set(), set()
    for n in nodes(node):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            attrs.add(n.attr)
    return names, attrs


# --- the source on disk must be the code that runs ---------------------------------------

def _check_source(unit, fn):
    """Refuse a function whose source file was edited after it was imported: the text read
    now would not be the code that runs. The file's current text is compiled (once per
    text) and the code object defined on the lines the frontend read is compared with
    fn.__code__: bytecode, names, constants, nested code."""
    code = getattr(fn, "__code__", None)
    if code is None or unit.is_generated:
        return
    import inspect
    import linecache
    read = unit.__dict__.pop("source_lines", None)     # (the frontend's, just read)
    if read is not None:
        lines, first = read
    else:
        try:
            lines, first = inspect.getsourcelines(fn)   # (refreshes linecache's copy)
        except (OSError, TypeError):
            return
    text = "".join(linecache.getlines(code.co_filename, fn.__globals__))
    first = max(first, 1)
    last = first + len(lines)
    loader = fn.__globals__.get("__loader__")
    rewritten = type(loader).__name__ == "AssertionRewritingHook"   # a pytest test file
    table = _file_codes(code.co_filename, text, rewritten)
    if table is None:
        return
    here = [c for line, c in table.get(code.co_name, ())
            if line == code.co_firstlineno and first <= line < last]
    if any(c == code for c in here):
        return      # an equal code object (instructions, names, constants, lines): the same
    mine = _fingerprint(code) if here else None
    if any(_fingerprint(c) == mine for c in here):
        return                    # (the same code, at the same place in the file)
    raise TranspileError(
        f"the source of {unit.name} in {code.co_filename} changed after the module was "
        f"imported: the text on disk is not the code that runs (reload the module, e.g. "
        f"importlib.reload, or restart Python)", code.co_filename, code.co_firstlineno,
        unit.name)


_FILE_CODES = {}        # file name -> (its text, {code name: [(first line, code)]})


def _file_codes(filename, text, rewritten=False):
    """{code name: [(first line, code object)]} of the file's text compiled as its module
    was (a pytest test module with its asserts rewritten the way pytest does; None when
    that cannot be reproduced: then there is nothing to compare)."""
    known = _FILE_CODES.get(filename)
    if known is not None and known[0] == (text, rewritten):
        return known[1]
    table = {}
    try:
        tree = ast.parse(text, filename)
        if rewritten:
            try:
                from _pytest.assertion.rewrite import rewrite_asserts
                rewrite_asserts(tree, text.encode("utf-8"), filename, None)
            except Exception:                  # noqa: BLE001 - pytest internals moved
                _FILE_CODES[filename] = ((text, rewritten), None)
                return None
        stack = [compile(tree, filename, "exec", dont_inherit=True)]
    except (SyntaxError, ValueError):
        stack = []                             # not Python now: nothing matches
    while stack:
        c = stack.pop()
        table.setdefault(c.co_name, []).append((c.co_firstlineno, c))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    _FILE_CODES[filename] = ((text, rewritten), table)
    return table


def _fingerprint(code):
    """What a code object does, independent of where it sits: its instructions (names,
    constants, jump targets as instruction indices, nested code likewise) and variables.
    A call through a module attribute compiles as a method call or not depending on the
    surrounding file (Python 3.11+), so those two forms count as one."""
    import dis
    ins = [i for i in dis.get_instructions(code) if i.opname not in _IGNORED_OPS]
    index = {i.offset: k for k, i in enumerate(ins)}
    out = []
    for i in ins:
        arg = i.argval
        if i.opcode in _JUMPS:
            arg = index.get(arg, arg)
        elif isinstance(arg, types.CodeType):
            arg = _fingerprint(arg)
        elif isinstance(arg, frozenset):
            arg = ("frozenset", tuple(sorted(repr(x) for x in arg)))
        else:
            arg = (type(arg).__name__, repr(arg))
        out.append((_SAME_OPS.get(i.opname, i.opname), arg))
    return (tuple(out), code.co_varnames, code.co_freevars, code.co_cellvars,
            code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)


def _jump_opcodes():
    import dis
    out = set(getattr(dis, "hasjrel", ())) | set(getattr(dis, "hasjabs", ()))
    return out | set(getattr(dis, "hasjump", ()))


_JUMPS = _jump_opcodes()
_IGNORED_OPS = {"CACHE", "EXTENDED_ARG", "NOP", "RESUME", "PRECALL", "PUSH_NULL"}
_SAME_OPS = {"LOAD_METHOD": "LOAD_ATTR", "CALL_METHOD": "CALL_FUNCTION"}
