"""Runs of elementwise array statements as fused loops, for the numba pass (jit.py).

numba compiles each whole-array statement (``t = a[1:] - b ** 2``) to its own loop
writing its own temporary array, and a run of such statements makes as many passes over
memory as it has statements. `fuse` replaces each run of consecutive *candidate*
statements of a body by one call of a generated function (a numba `overload`, one per
run) whose implementation is chosen when numba knows the argument types:

- candidates: ``name = expr``, ``name = v[slices]`` (a view), ``v[slices] op= expr``,
  ``v[slices] = expr`` and ``v op= expr``, where expr is built of names, int and float
  constants, ``+ - * /``, ``** 2``, unary ``-``/``+``, one comparison and ``np.where``;
  slices ``v[a:b:c]`` (one per axis) with constant bounds and steps. Elementwise
  arguments of other calls (``np.sum(a * b)``) are first made statements of their own.
- lowered, for the types numba infers: statements whose arrays are all float64 (bool for
  comparisons and where's condition) of one number of dimensions, numbers broadcast
  (read as they are in the loop). Consecutive such statements become one loop nest over
  the elements (one loop per group of statements of one shape, checked when it runs);
  a value read only inside its loop is a local number (no temporary array), one read
  later is written to an array of its own. ``+ - * /``, ``x * x`` for ``x ** 2``,
  negation and comparisons give the very bits NumPy's loops give (IEEE operations,
  division by zero gives inf or nan as in NumPy).
- in-place writes (``dx[:-1] += g``) are loops of their own: several in a row with the
  same target share one (each element still gets its additions in the statements'
  order); an operand whose memory overlaps the target (NumPy then reads a copy) makes
  that loop run as the statements themselves.
- everything else runs as the statements themselves (numba's own array code, as without
  this pass): other dtypes, arrays of different numbers of dimensions, shapes that differ
  when the loop runs (broadcasting between arrays), transcendental functions and
  reductions (never in a run: NumPy's own code, for NumPy's numbers).

Operations of numbers only (``1 / k`` in ``x * (1 / k)``) are computed once before the
loop, as they are (Python's ZeroDivisionError stays). The generated functions' own names
begin with ``_jf``; a run that uses such names itself is left as it is. `SOURCES` keeps
the source of every implementation made (by generated function name), for inspection.
"""
import ast
import copy
import itertools

import numpy as np

_COUNTER = itertools.count(1)
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!="}


# --- which statements are candidates (syntax only) ------------------------------------------

def _const_index(node):
    if node is None:
        return True
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int)


def _slices(node):
    """The slices of a subscript v[a:b:c, ...] with constant bounds, or None."""
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    if not all(isinstance(s, ast.Slice) and _const_index(s.lower) and _const_index(s.upper)
               and _const_index(s.step) and not (isinstance(s.step, ast.Constant)
                                                  and s.step.value == 0)
               for s in items):
        return None
    return items


def _view(node):
    return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and _slices(node.slice) is not None)


class _Syntax:
    def __init__(self, is_where):
        self.is_where = is_where

    def operand(self, node):
        if isinstance(node, ast.Name):
            return True
        if isinstance(node, ast.Constant):
            return type(node.value) in (int, float)
        if _view(node):
            return True
        return self.compute(node)

    def compute(self, node):
        """An elementwise operation (not a bare name, constant or view)."""
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return (isinstance(node.right, ast.Constant)
                        and type(node.right.value) in (int, float)
                        and node.right.value == 2 and self.operand(node.left))
            return type(node.op) in _ARITH and self.operand(node.left) and self.operand(
                node.right)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, (ast.USub, ast.UAdd)) and self.operand(node.operand)
        if isinstance(node, ast.Compare):
            return (len(node.ops) == 1 and type(node.ops[0]) in _COMPARE
                    and self.operand(node.left) and self.operand(node.comparators[0]))
        if isinstance(node, ast.Call):
            return (self.is_where(node.func) and len(node.args) == 3 and not node.keywords
                    and all(self.operand(a) for a in node.args))
        return False

    def statement(self, stmt):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            t = stmt.targets[0]
            if isinstance(t, ast.Name):
                return self.compute(stmt.value) or _view(stmt.value)
            if _view(t):
                return self.operand(stmt.value)
            return False
        if isinstance(stmt, ast.AugAssign) and type(stmt.op) in _ARITH:
            return ((isinstance(stmt.target, ast.Name) or _view(stmt.target))
                    and self.operand(stmt.value))
        return False


# --- pulling elementwise arguments out of other calls -----------------------------------------

def _extract_arguments(body, syntax, fresh):
    """``r = f(a * b, c)`` -> ``_jit_e = a * b; r = f(_jit_e, c)`` where every argument is a
    name, constant or elementwise operation (so evaluating the operation first computes
    the same), f a name or an attribute of one."""
    out = []
    for stmt in body:
        value = getattr(stmt, "value", None)
        call = value if isinstance(value, ast.Call) else None
        if (call is not None and isinstance(stmt, (ast.Assign, ast.Return, ast.Expr))
                and not syntax.statement(stmt) and not call.keywords
                and not syntax.is_where(call.func)
                and (isinstance(call.func, ast.Name) or isinstance(call.func, ast.Attribute)
                     and isinstance(call.func.value, ast.Name))
                and all(isinstance(a, (ast.Name, ast.Constant)) or syntax.compute(a)
                        for a in call.args)):
            for k, a in enumerate(call.args):
                if syntax.compute(a):
                    name = fresh()
                    out.append(ast.copy_location(ast.Assign(
                        targets=[ast.Name(id=name, ctx=ast.Store())], value=a), stmt))
                    call.args[k] = ast.Name(id=name, ctx=ast.Load())
        out.append(stmt)
    body[:] = out


# --- the pass -----------------------------------------------------------------------------------

def fuse(fdef, is_where):
    """Rewrite fdef's runs of candidate statements into calls of generated functions;
    returns {name: function} to bind in the jitted module."""
    syntax = _Syntax(is_where)
    taken = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)}
    counter = itertools.count(1)

    def fresh():
        while True:
            name = f"_jit_e{next(counter)}"
            if name not in taken:
                taken.add(name)
                return name

    bodies = [b for b in _bodies(fdef)]
    for body in bodies:
        _extract_arguments(body, syntax, fresh)
    loads = {}
    for n in ast.walk(fdef):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            loads[n.id] = loads.get(n.id, 0) + 1
    groups = {}
    for body in bodies:
        k = 0
        while k < len(body):
            if not syntax.statement(body[k]):
                k += 1
                continue
            j = k
            while j < len(body) and syntax.statement(body[j]):
                j += 1
            run = body[k:j]
            if not any(not (isinstance(s, ast.Assign) and _view(s.value)) for s in run) or any(
                    isinstance(n, ast.Name) and n.id.startswith("_jf")
                    for s in run for n in ast.walk(s)):
                k = j            # views only (nothing to fuse), or names of the generated
                continue         # function's own (_jf...): left as they are
            name = f"_jit_fused{next(_COUNTER)}"
            call, stub = _group(name, run, loads, is_where)
            groups[name] = stub
            body[k:j] = [ast.copy_location(call, run[0])]
            k += 1
    return groups


def _bodies(node):
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.Lambda)) and n is not node:
            continue
        for field in ("body", "orelse"):
            body = getattr(n, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield body


def _group(name, run, loads, is_where):
    """The call replacing `run`, and the overloaded stub it calls."""
    inputs, assigned = [], []
    inner = {}
    for stmt in run:
        functions = {id(m) for n in ast.walk(stmt) if isinstance(n, ast.Call)
                     for m in ast.walk(n.func)}          # np of np.where: not a value
        reads = [n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)
                 and isinstance(n.ctx, ast.Load) and id(n) not in functions]
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            reads.append(stmt.target.id)
        for r in reads:
            inner[r] = inner.get(r, 0) + 1
            if r not in assigned and r not in inputs:
                inputs.append(r)
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and (
                    n.id not in assigned):
                assigned.append(n.id)
    outputs = [v for v in assigned if v in inputs or loads.get(v, 0) > inner.get(v, 0)]
    args = [ast.Name(id=v, ctx=ast.Load()) for v in inputs]
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])
    if not outputs:
        new = ast.Expr(value=call)
    elif len(outputs) == 1:
        new = ast.Assign(targets=[ast.Name(id=outputs[0], ctx=ast.Store())], value=call)
    else:
        new = ast.Assign(targets=[ast.Tuple(elts=[ast.Name(id=v, ctx=ast.Store())
                                                  for v in outputs], ctx=ast.Store())],
                         value=call)
    stub = _stub(name, [ast.fix_missing_locations(s) for s in run], inputs, outputs,
                 is_where)
    return new, stub


def _stub(name, run, inputs, outputs, is_where):
    from numba.extending import overload

    params = ", ".join(inputs)
    source = f"def {name}({params}):\n    raise NotImplementedError\n"
    space = {}
    exec(source, space)
    stub = space[name]
    cache = {}

    def typed(*types):
        key = tuple(str(t) for t in types)
        impl = cache.get(key)
        if impl is None:
            impl = cache[key] = _implementation(name, run, inputs, outputs, types, is_where)
        return impl

    space = {"_typed": typed}          # numba wants the stub's own parameters
    exec(f"def typer({params}):\n    return _typed({params})\n", space)
    typer = space["typer"]
    overload(stub, prefer_literal=False)(typer)
    return stub


# --- the implementation for argument types -------------------------------------------------------

F, B, S = "F", "B", "S"          # float64 elements, bool elements, a number


def _kind_of_type(t):
    from numba.core import types as nt
    if isinstance(t, nt.Array):
        if t.ndim == 0:
            return None
        if t.dtype == nt.float64:
            return (F, t.ndim)
        if t.dtype == nt.boolean:
            return (B, t.ndim)
        return None
    if isinstance(t, (nt.Float, nt.Integer)) and not isinstance(t, nt.Boolean):
        return (S, "float" if isinstance(t, nt.Float) else "int")
    return None


class _Emitter:
    """Source of the implementation: SSA names for the run's variables, loops."""

    def __init__(self, run, inputs, outputs, types, is_where):
        self.run = run
        self.outputs = outputs
        self.is_where = is_where
        self.lines = []
        self.version = {v: v for v in inputs}      # variable -> current local name
        self.kind = {v: _kind_of_type(t) for v, t in zip(inputs, types)}
        self.fresh_arrays = set()                  # local names of arrays made here
        self.count = itertools.count(1)
        self.loop = None

    def new(self, base):
        return f"_jf{next(self.count)}{base.lstrip('_') and '_' + base.lstrip('_')}"

    # kinds of expressions: (F|B, ndim), (S, 'float'|'int'), or None (not lowered)
    def kind_of(self, node):
        if isinstance(node, ast.Name):
            return self.kind.get(self.version.get(node.id, node.id))
        if isinstance(node, ast.Constant):
            return (S, "float" if isinstance(node.value, float) else "int")
        if _view(node):
            k = self.kind.get(self.version.get(node.value.id, node.value.id))
            if k is None or k[0] == S:
                return None
            return k if len(_slices(node.slice)) <= k[1] else None
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                k = self.kind_of(node.left)
                return k if k is not None and k[0] != B else None
            return self._arith(self.kind_of(node.left), self.kind_of(node.right))
        if isinstance(node, ast.UnaryOp):
            k = self.kind_of(node.operand)
            return k if k is not None and k[0] != B else None
        if isinstance(node, ast.Compare):
            a, b = self.kind_of(node.left), self.kind_of(node.comparators[0])
            k = self._arith(a, b)
            if k is None or k[0] == S:
                return None
            return (B, k[1])
        if isinstance(node, ast.Call):
            c, a, b = (self.kind_of(x) for x in node.args)
            if c is None or c[0] != B:
                return None
            k = self._arith(a, b)
            if k is None:
                if a is not None and b is not None and a[0] == b[0] == S and (
                        a[1] == b[1] == "float"):
                    return (F, c[1])
                return None
            if k[0] == S or k[1] != c[1]:
                return None
            return k
        return None

    @staticmethod
    def _arith(a, b):
        if a is None or b is None or a[0] == B or b[0] == B:
            return None
        if a[0] == S and b[0] == S:
            return (S, "float" if "float" in (a[1], b[1]) else "int")
        arrays = [k for k in (a, b) if k[0] == F]
        if len({k[1] for k in arrays}) != 1:
            return None
        return arrays[0]

    # --- renderings of an expression ---------------------------------------------------------
    def local(self, name):
        return self.version.get(name, name)

    def whole(self, node):
        """The expression as it is (numba's own array code), on the local names."""
        node = _copy(node)
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and self.is_where(n.func):
                n.func = ast.Attribute(value=ast.Name(id="_jf_np", ctx=ast.Load()),
                                       attr="where", ctx=ast.Load())
                n.func.value._jit_module = True
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and not getattr(n, "_jit_module", False):
                if isinstance(n.ctx, ast.Load):
                    self.use(self.local(n.id))
                n.id = self.local(n.id)
        return ast.unparse(node)

    def use(self, local):
        """A read of `local` outside the loop that made it: it needs its array."""
        owner = self.owner.get(local)
        if owner is not None and owner is not self.loop:
            owner.arrays.add(local)

    def elem(self, node, loop):
        """The expression for one element (index `_jf_ix`) inside `loop`; operations of
        numbers only are computed once before the loop, as they are (Python's errors)."""
        k = self.kind_of(node)
        if k is not None and k[0] == S and not isinstance(node, (ast.Name, ast.Constant)):
            hoisted = self.new("h")
            loop.prologue.append(f"{hoisted} = {self.whole(node)}")
            return hoisted
        if isinstance(node, ast.Name):
            local = self.local(node.id)
            if self.owner.get(local) is loop:
                return f"_jfs_{local}"
            if self.kind.get(local)[0] == S:
                return local
            self.use(local)
            loop.operand(local, self.base_of(local))
            return f"{local}[_jf_ix]"
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, float) and not np.isfinite(v):
                return "_jf_np.nan" if v != v else ("_jf_np.inf" if v > 0 else "(-_jf_np.inf)")
            return repr(v)
        if _view(node):
            base = self.local(node.value.id)
            self.use(base)
            view = self.new("v")
            loop.prologue.append(f"{view} = {_subscript(base, node.slice)}")
            loop.operand(view, self.base_of(base))
            return f"{view}[_jf_ix]"
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return f"_jf_square({self.elem(node.left, loop)})"
            a, b = self.elem(node.left, loop), self.elem(node.right, loop)
            if isinstance(node.op, ast.Div):
                return f"_jf_fdiv({a}, {b})"
            return f"({a} {_ARITH[type(node.op)]} {b})"
        if isinstance(node, ast.UnaryOp):
            return f"({'-' if isinstance(node.op, ast.USub) else '+'}"\
                   f"{self.elem(node.operand, loop)})"
        if isinstance(node, ast.Compare):
            a, b = self.elem(node.left, loop), self.elem(node.comparators[0], loop)
            return f"({a} {_COMPARE[type(node.ops[0])]} {b})"
        c, a, b = (self.elem(x, loop) for x in node.args)
        return f"({a} if {c} else {b})"

    def base_of(self, local):
        """The array a local is a view of (itself for arrays made here or inputs)."""
        return self.bases.get(local, local)

    def reads_loop(self, node, loop):
        """Does node read (through a slice) a value `loop` makes?"""
        for n in ast.walk(node):
            if _view(n) and self.owner.get(self.local(n.value.id)) is loop:
                return True
        return False

    # --- the statements ----------------------------------------------------------------------
    def build(self):
        self.owner = {}            # local made by a loop's statement -> that loop
        self.bases = {}            # view local -> local of the array it views
        self.segments = []
        for stmt in self.run:
            self.statement(stmt)
        self.loop = None
        for v in self.outputs:
            self.use(self.local(v))
        lines = []
        for seg in self.segments:
            lines.extend(seg if isinstance(seg, list) else seg.render())
        lines.append("return (" + "".join(f"{self.local(v)}, " for v in self.outputs) + ")"
                     if len(self.outputs) > 1 else
                     f"return {self.local(self.outputs[0])}" if self.outputs else "return")
        return lines

    def close(self):
        self.loop = None

    def statement(self, stmt):
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            name, value = stmt.targets[0].id, stmt.value
            k = self.kind_of(value)
            if _view(value):
                loop = self.loop
                if loop is not None and loop.kind == "pure" and not self.reads_loop(
                        value, loop):
                    text = self.whole(value)
                    local = self.new(name)
                    loop.prologue.append(f"{local} = {text}")
                else:
                    self.close()
                    text = self.whole(value)
                    local = self.new(name)
                    self.segments.append([f"{local} = {text}"])
                self.kind[local] = k
                if k is not None:
                    self.bases[local] = self.base_of(self.local(value.value.id))
                self.version[name] = local
                return
            if k is not None and k[0] == S:
                text = self.whole(value)
                local = self.new(name)
                if self.loop is not None:
                    self.loop.prologue.append(f"{local} = {text}")
                else:
                    self.segments.append([f"{local} = {text}"])
                self.kind[local] = k
                self.version[name] = local
                return
            if k is None:
                self.close()
                text = self.whole(value)
                local = self.new(name)
                self.segments.append([f"{local} = {text}"])
                self.kind[local] = None
                self.version[name] = local
                return
            loop = self.loop
            if (loop is None or loop.kind != "pure" or loop.ndim != k[1]
                    or self.reads_loop(value, loop)):
                loop = self.open("pure", k[1])
            self.loop = loop
            fallback = self.whole(value)
            code = self.elem(value, loop)
            local = self.new(name)
            loop.body.append(f"_jfs_{local} = {code}")
            loop.fallback.append(f"{local} = {fallback}")
            loop.made.append((local, k[0]))
            self.owner[local] = loop
            self.kind[local] = k
            self.version[name] = local
            return
        # writes into an array: v[slices] = e, v[slices] op= e, v op= e
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        op = None if isinstance(stmt, ast.Assign) else _ARITH[type(stmt.op)]
        base_name = target.id if isinstance(target, ast.Name) else target.value.id
        base = self.local(base_name)
        tk = self.kind.get(base)
        if isinstance(target, ast.Name):
            tk = tk if tk is not None and tk[0] == F else None
        elif tk is not None:
            tk = tk if tk[0] == F and len(_slices(target.slice)) <= tk[1] else None
        vk = self.kind_of(stmt.value)
        key = (base, None if isinstance(target, ast.Name) else ast.dump(target.slice))
        if tk is None or vk is None or vk[0] == B or (vk[0] == F and vk[1] != tk[1]):
            self.close()
            self.segments.append([f"{self.whole(target)} {op or ''}= "
                                  f"{self.whole(stmt.value)}"])
            return
        loop = self.loop
        if loop is None or loop.kind != "write" or loop.key != key:
            self.close()
            loop = self.open("write", tk[1])
            loop.key = key
            self.use(base)
            if isinstance(target, ast.Name):
                loop.target = base
            else:
                loop.target = self.new("t")
                loop.prologue.append(f"{loop.target} = {_subscript(base, target.slice)}")
            loop.target_base = self.base_of(base)
            loop.shape_of = loop.target
        self.loop = loop
        text = f"{self.whole(target)} {op or ''}= {self.whole(stmt.value)}"
        code = self.elem(stmt.value, loop)
        loop.body.append(f"{loop.target}[_jf_ix] {op or ''}= {code}")
        loop.fallback.append(text)

    def open(self, kind, ndim):
        loop = _Loop(self, kind, ndim)
        self.segments.append(loop)
        self.loop = loop
        return loop


class _Loop:
    def __init__(self, emitter, kind, ndim):
        self.emitter = emitter
        self.kind = kind
        self.ndim = ndim
        self.prologue, self.body, self.fallback = [], [], []
        self.made = []            # (local, F|B) in order
        self.arrays = set()       # made locals read after the loop
        self.operands = []        # (local read by element, the array it views)
        self.shape_of = None
        self.target = self.target_base = self.key = None

    def operand(self, local, base):
        if all(local != o for o, _ in self.operands):
            self.operands.append((local, base))
        if self.shape_of is None:
            self.shape_of = local

    def render(self):
        e = self.emitter
        lines = list(self.prologue)
        checks = [f"{o}.shape == _jf_shape" for o, _ in self.operands if o != self.shape_of]
        if self.kind == "write":
            made_here = set(e.owner)
            for o, base in self.operands:
                if base in made_here and base != self.target_base:
                    continue                 # a new array of this run: not the target's
                checks.append(f"not _jf_overlap({self.target}, {o})")
        lines.append(f"_jf_shape = {self.shape_of}.shape")
        lines.append("if " + (" and ".join(checks) if checks else "True") + ":")
        for local, k in self.made:
            if local in self.arrays:
                dt = "_jf_np.float64" if k == F else "_jf_np.bool_"
                lines.append(f"    {local} = _jf_np.empty(_jf_shape, {dt})")
        indent = "    "
        for d in range(self.ndim):
            lines.append(f"{indent}for _jf_i{d} in range(_jf_shape[{d}]):")
            indent += "    "
        ix = ", ".join(f"_jf_i{d}" for d in range(self.ndim))
        for line in self.body:
            lines.append(indent + line.replace("[_jf_ix]", f"[{ix}]"))
            if line.startswith("_jfs_"):
                local = line.split(" = ", 1)[0][5:]
                if local in self.arrays:
                    lines.append(f"{indent}{local}[{ix}] = _jfs_{local}")
        lines.append("else:")
        lines.extend("    " + line for line in self.fallback)
        return lines


def _subscript(base, index):
    return ast.unparse(ast.Subscript(value=ast.Name(id=base, ctx=ast.Load()),
                                     slice=_copy(index), ctx=ast.Load()))


def _copy(node):
    return copy.deepcopy(node)


_HELPERS = {}


def _helpers():
    if not _HELPERS:
        import numba
        from numba.extending import register_jitable

        @numba.njit(error_model="numpy")   # (not inlined in numba IR: the caller's model)
        def fdiv(a, b):
            return a / b                # IEEE division: inf or nan for 0, as NumPy's

        @register_jitable(inline="always")
        def square(a):
            return a * a                # NumPy's x ** 2 (its square loop)

        @register_jitable
        def overlap(a, b):
            """Can the memory of arrays a and b overlap (their address ranges meet)?"""
            if a.size == 0 or b.size == 0:
                return False
            alo = ahi = a.ctypes.data
            for d in range(a.ndim):
                s = a.strides[d] * (a.shape[d] - 1)
                if s > 0:
                    ahi += s
                else:
                    alo += s
            blo = bhi = b.ctypes.data
            for d in range(b.ndim):
                s = b.strides[d] * (b.shape[d] - 1)
                if s > 0:
                    bhi += s
                else:
                    blo += s
            return alo < bhi + b.itemsize and blo < ahi + a.itemsize

        _HELPERS.update(_jf_np=np, _jf_fdiv=fdiv, _jf_square=square, _jf_overlap=overlap)
    return _HELPERS


SOURCES = {}        # generated function name -> [source of each implementation]


def _implementation(name, run, inputs, outputs, types, is_where):
    lines = _Emitter(run, inputs, outputs, types, is_where).build()
    source = f"def {name}_impl({', '.join(inputs)}):\n" + "".join(
        f"    {line}\n" for line in lines)
    space = dict(_helpers())
    exec(compile(source, f"<transpile jit {name}>", "exec"), space)
    SOURCES.setdefault(name, []).append(source)
    return space[f"{name}_impl"]
