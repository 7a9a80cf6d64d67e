"""Normalize: rewrite a function into the small language the transforms understand.

After this pass a function body holds only these statements:

* ``name = TREE`` where TREE is a pure expression of operators and rule-backed calls
  (``math.sin``, ``abs``...) over names and constants, or an *inactive* expression kept
  verbatim (comparisons, ``len(xs)``, ``int(x)``: no derivative flows through them);
* ``name = SPECIAL`` where SPECIAL is one call of a user function, a container operation
  (``sum(xs)``, ``[a, b]``, ``xs[i]``, ``list(xs)``), a method call or an opaque call;
* ``xs[index] = atom`` and ``xs.append(atom)``;
* ``if c:`` / ``for i in range(...)`` / ``while c:`` with ``c`` a name, loops ending (if they
  can exit early) in ``if <flags>: break``; forward-only statements (nested ``def``,
  ``assert``, ``raise``, inactive calls such as ``print``).

On the way it desugars augmented and chained assignment, tuple unpacking and swaps,
conditional expressions and ``and``/``or``, comprehensions (into loops), iteration over
lists, ``enumerate``, ``zip`` and ``reversed`` (into index loops), lowers ``break``,
``continue`` and ``return`` inside loops into flags, and lambda-lifts nested functions
(their free variables become keyword-only parameters) so calls to them can be
differentiated like any other call. Everything it cannot handle raises TranspileError at
the user's line.
"""
import ast
import builtins
import copy
import inspect
import math

from . import astutil as A
from .analysis import MUTATING_METHODS, LENGTH_METHODS
from .rules import lookup
from .frontend import Unit

UNSUPPORTED = {
    ast.Try: "try", ast.With: "with", ast.AsyncWith: "async with",
    ast.AsyncFor: "async for", ast.AsyncFunctionDef: "async def", ast.Yield: "yield",
    ast.YieldFrom: "yield from", ast.Await: "await", ast.Global: "global",
    ast.Nonlocal: "nonlocal", ast.ClassDef: "class definition", ast.Import: "import",
    ast.ImportFrom: "import", ast.Delete: "del", ast.NamedExpr: "walrus operator :=",
}
if hasattr(ast, "TryStar"):
    UNSUPPORTED[ast.TryStar] = "try"
if hasattr(ast, "Match"):
    UNSUPPORTED[ast.Match] = "match"

CONTAINER_FUNCS = {builtins.sum, builtins.list, builtins.tuple}
SHAPE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}
VARIADIC = {builtins.max, builtins.min, math.hypot}


class Normalized:
    """The result of normalization: the new body plus what later passes need to know."""

    def __init__(self, unit, body, result, names, local_functions, params):
        self.unit = unit
        self.body = body
        self.result = result                # name holding the return value
        self.names = names
        self.local_functions = local_functions
        self.params = params


def normalize(unit, names):
    node = unit.node
    _check_supported(unit, node)
    a = node.args
    if a.vararg or a.kwarg:
        raise unit.error("unsupported construct '*args/**kwargs' in the signature", node)
    params = unit.params
    body = copy.deepcopy(node.body)
    local_functions = getattr(unit, "local_functions", None)
    if local_functions is None:
        local_functions = {}
    outer_locals = set(params) | _stored_outside_defs(body)
    body = _inline_method_aliases(body, set(params))
    body = _lift_nested(unit, body, outer_locals, local_functions)
    body, result = JumpLowering(names).run(body)
    flat = Flattener(unit, names, local_functions, outer_locals | {result}).run(body)
    return Normalized(unit, flat, result, names, local_functions, params)


# --- checks ---------------------------------------------------------------------------

def _check_supported(unit, node):
    for n in _walk_outside_defs(node.body):
        kind = UNSUPPORTED.get(type(n))
        if kind is not None:
            raise unit.error(f"unsupported construct '{kind}'", n)
        if isinstance(n, (ast.For, ast.While)) and n.orelse:
            raise unit.error("unsupported construct 'else' on a loop", n)
        if isinstance(n, ast.Starred):
            raise unit.error("unsupported construct '*' unpacking", n)


def _walk_outside_defs(stmts):
    """ast.walk over statements, not descending into nested function bodies."""
    todo = list(stmts)
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, (ast.FunctionDef, ast.Lambda)):
            if isinstance(n, ast.FunctionDef):
                for sub in n.body:          # still check nested bodies for unsupported
                    todo.append(sub)
            continue
        todo.extend(ast.iter_child_nodes(n))


def _stored_outside_defs(stmts):
    out = set()
    todo = list(stmts)
    while todo:
        n = todo.pop()
        if isinstance(n, ast.FunctionDef):
            out.add(n.name)
            continue
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        todo.extend(ast.iter_child_nodes(n))
    return out


# --- bound-method aliases ---------------------------------------------------------------

ALIASABLE_METHODS = {"append", "pop"}


def _inline_method_aliases(body, params):
    """`push = xs.append; push(v)` -> `xs.append(v)` (and the same for `pop`).

    Generated derivative code binds its stack's methods to locals for speed; turning the
    calls back into method calls lets the transforms see list operations they have rules
    for, so derivative code can be differentiated again. Only top-level aliases of a local
    list not rebound afterwards, whose alias is assigned once and only ever called, are
    inlined."""
    stores, loads, called = {}, {}, {}
    for n in _walk_outside_defs(body):
        if isinstance(n, ast.Name):
            table = stores if isinstance(n.ctx, ast.Store) else loads
            table[n.id] = table.get(n.id, 0) + 1
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            called[n.func.id] = called.get(n.func.id, 0) + 1
    aliases = {}
    for i, s in enumerate(body):
        if (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Attribute)
                and isinstance(s.value.value, ast.Name)
                and s.value.attr in ALIASABLE_METHODS):
            alias, base = s.targets[0].id, s.value.value.id
            later = set()                      # the list is never rebound after the alias
            for n in _walk_outside_defs(body[i + 1:]):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    later.add(n.id)
            if (stores.get(alias) == 1 and base not in later and base not in params
                    and loads.get(alias, 0) == called.get(alias, 0)):
                aliases[alias] = s.value
    if not aliases:
        return body

    class Inline(ast.NodeTransformer):
        def visit_Call(self, n):
            self.generic_visit(n)
            if isinstance(n.func, ast.Name) and n.func.id in aliases:
                n.func = ast.copy_location(copy.deepcopy(aliases[n.func.id]), n.func)
            return n

    kept = [s for s in body if not (isinstance(s, ast.Assign) and isinstance(
        s.targets[0], ast.Name) and s.targets[0].id in aliases and s.value is aliases[
        s.targets[0].id])]
    return [Inline().visit(s) for s in kept]


# --- nested functions: lambda lifting ---------------------------------------------------

def _lift_nested(unit, body, outer_locals, local_functions):
    """Register nested defs (and `name = lambda`) as Units with free locals as kw params."""

    class Lift(ast.NodeTransformer):
        def visit_FunctionDef(self, n):
            return n                         # do not look inside

        def visit_Lambda(self, n):
            return n

        def visit_Assign(self, n):
            if (len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                    and isinstance(n.value, ast.Lambda)):
                lam = n.value
                return A.lambda_def(n.targets[0].id, lam, n)
            return n

    body = [Lift().visit(s) for s in body]
    body = _name_called_lambdas(body, unit)
    defs = [n for n in _walk_stmts(body) if isinstance(n, ast.FunctionDef)]
    fnames = {d.name for d in defs} | set(local_functions)
    own = {}                  # def name -> (outer locals it reads, local functions it calls)
    for d in defs:
        inner = d.args
        inner_params = {p.arg for p in inner.posonlyargs + inner.args + inner.kwonlyargs}
        inner_locals = inner_params | _stored_outside_defs(d.body)
        free = set()
        for s in d.body:
            free |= A.names_loaded(s)
        own[d.name] = ((free - inner_locals) & outer_locals - fnames,
                       (free - inner_locals) & fnames)
    reads = {k: set(v[0]) for k, v in own.items()}
    changed = True
    while changed:             # a def calling another reads what that one reads: `g` calling
        changed = False        # `f`, which closes over x, passes x on to f
        for k, (_, calls) in own.items():
            for c in calls:
                extra = reads.get(c, set(getattr(local_functions.get(c), "extra_params",
                                                 ()))) & outer_locals - reads[k]
                if extra:
                    reads[k] |= extra
                    changed = True
    for d in defs:
        inner = d.args
        extras = sorted(reads[d.name])
        if not unit.is_generated:
            _refuse_outer_mutation(unit, d, set(extras))
        node = copy.deepcopy(d)
        node.decorator_list = []
        for e in extras:
            node.args.kwonlyargs.append(ast.arg(arg=e, annotation=None))
            node.args.kw_defaults.append(None)
        nested = Unit(node, f"{unit.name}.<locals>.{d.name}", unit.filename,
                      unit.line_offset, unit.globals, unit.closure,
                      defaults=None, extra_params=extras)
        nested.local_functions = local_functions
        try:                                  # literal defaults: the generated code needs them
            nested.defaults = tuple(ast.literal_eval(d) for d in inner.defaults) or None
            nested.kwdefaults = {a.arg: ast.literal_eval(d) for a, d in
                                 zip(inner.kwonlyargs, inner.kw_defaults) if d is not None} \
                or None
        except ValueError:
            pass
        local_functions[d.name] = nested
    return body


def _refuse_outer_mutation(unit, d, outer):
    """A nested def that changes a variable of the enclosing function in place (an append,
    an element write...) has effects the derivative of the enclosing function would miss:
    refused at the line of the change."""
    for n in ast.walk(ast.Module(body=d.body, type_ignores=[])):
        target = None
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            for t in (n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]):
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Subscript) and isinstance(sub.ctx, (ast.Store,
                                                                                ast.Del)):
                        target = _root_name(sub)
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr in MUTATING_METHODS):
            target = _root_name(n.func.value)
        if target is not None and target in outer:
            raise unit.error(f"unsupported construct: the nested function '{d.name}' changes "
                             f"'{target}' of the enclosing function in place; return the "
                             "value instead and change it in the enclosing function", n)


def _root_name(e):
    """The variable at the root of `a`, `a[i]`, `a[i].T`..., or None."""
    while isinstance(e, (ast.Subscript, ast.Attribute)):
        e = e.value
    return e.id if isinstance(e, ast.Name) else None


def _place_keywords(fn, args, keywords, params=None):
    """Move keyword arguments that name positional parameters of fn's rule into place
    (`np.dot(a=v, b=w)` is `np.dot(v, w)`); the rest stay keywords."""
    rule = None
    if params is None:
        rule = lookup(fn, None) or lookup(fn, len(args))
        params = rule.params if rule is not None and rule.params else ()
    remaining = list(keywords)
    moved = True
    while moved and remaining:
        moved = False
        for k in list(remaining):
            if k.arg is not None and len(args) < len(params) and params[len(args)] == k.arg:
                args.append(k.value)
                remaining.remove(k)
                moved = True
    if rule is not None and rule.vjps is not None:
        # a constant the user passed by keyword (`axis=1`) stays a keyword: vjp
        # functions take it by name, and the generated code reads as the user wrote it
        kept = len(args)
        while kept > 1 and _constant(args[kept - 1]) and lookup(fn, kept - 1) is \
                lookup(fn, len(args)) and any(k.value is args[kept - 1] for k in keywords):
            kept -= 1
        if kept < len(args):
            back = [ast.keyword(arg=params[i], value=args[i]) for i in range(kept, len(args))]
            args, remaining = args[:kept], back + remaining
    return args, remaining


def _constant(e):
    """A literal: 1, -1, None, True, (0, 1)."""
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.USub, ast.UAdd)):
        e = e.operand
    if isinstance(e, ast.Tuple):
        return all(_constant(x) for x in e.elts)
    return isinstance(e, ast.Constant)


def _name_called_lambdas(stmts, unit):
    """`(lambda u: e)(a)` -> `def _lambda1(u): return e` before the statement, `_lambda1(a)`."""
    from .names import Names
    names = Names(ast.Module(body=list(stmts), type_ignores=[]))

    def fresh():
        return names.fresh("_lambda")

    def block(body):
        out = []
        for s in body:
            defs = []

            class Name(ast.NodeTransformer):
                def visit_FunctionDef(self, n):
                    return n

                def visit_Call(self, n):
                    self.generic_visit(n)
                    if isinstance(n.func, ast.Lambda):
                        lam, name = n.func, fresh()
                        defs.append(A.lambda_def(name, lam, s))
                        n.func = A.located(A.load(name), lam)
                    return n

            for field in ("body", "orelse"):
                sub = getattr(s, field, None)
                if isinstance(sub, list) and not isinstance(s, ast.FunctionDef):
                    setattr(s, field, block(sub))
            if isinstance(s, (ast.If, ast.For, ast.While)):
                for field in ("test", "iter"):
                    if hasattr(s, field):
                        setattr(s, field, Name().visit(getattr(s, field)))
            elif not isinstance(s, ast.FunctionDef):
                s = Name().visit(s)
            out.extend(defs)
            out.append(s)
        return out

    return block(stmts)


def _walk_stmts(stmts):
    """Statements (recursively into blocks, not into nested defs)."""
    for s in stmts:
        yield s
        if isinstance(s, ast.FunctionDef):
            continue
        for field in ("body", "orelse"):
            sub = getattr(s, field, None)
            if isinstance(sub, list):
                yield from _walk_stmts(sub)


# --- break / continue / return -> flags ---------------------------------------------

class _Loop:
    def __init__(self):
        self.brk = None
        self.cont = None


class JumpLowering:
    """Rewrite jumps into flag assignments so every loop runs whole iterations."""

    def __init__(self, names):
        self.names = names
        self.ret = None
        self.result = None

    def run(self, body):
        returns = [n for n in _walk_stmts(body) if isinstance(n, ast.Return)]
        jumps = [n for n in _walk_stmts(body) if isinstance(n, (ast.Break, ast.Continue))]
        last = body[-1] if body else None
        if isinstance(last, ast.Return) and len(returns) == 1 and not jumps:
            if isinstance(last.value, ast.Name):
                return body[:-1], last.value.id
            self.result = self.names.unique("_result")
            value = last.value if last.value is not None else A.const(None)
            return body[:-1] + [A.assign(self.result, value, last)], self.result
        self.result = self.names.unique("_result")
        pre = [A.located(A.assign(self.result, A.const(None)), body[0] if body else None)]
        if returns and not (len(returns) == 1 and last is returns[0]):
            self.ret = self.names.flag("_ret")
            pre.append(A.located(A.assign(self.ret, A.const(False)), body[0]))
        new, _ = self.block(body, None)
        return pre + new, self.result

    def block(self, stmts, loop):
        out = []
        for i, s in enumerate(stmts):
            new, flags = self.stmt(s, loop)
            out.extend(new)
            if flags:
                rest, more = self.block(stmts[i + 1:], loop)
                if rest:
                    out.append(A.located(ast.If(test=self._none_set(flags), body=rest,
                                                orelse=[]), stmts[i + 1]))
                return out, flags | more
        return out, set()

    @staticmethod
    def _any_set(flags):
        flags = sorted(flags)
        if len(flags) == 1:
            return A.load(flags[0])
        return ast.BoolOp(op=ast.Or(), values=[A.load(f) for f in flags])

    def _none_set(self, flags):
        return ast.UnaryOp(op=ast.Not(), operand=self._any_set(flags))

    def stmt(self, s, loop):
        if isinstance(s, ast.Return):
            value = s.value if s.value is not None else A.const(None)
            new = [A.assign(self.result, value, s)]
            if self.ret is None:                    # the single, final return
                return new, set()
            new.append(A.assign(self.ret, A.const(True), s))
            return new, {self.ret}
        if isinstance(s, ast.Break):
            loop.brk = loop.brk or self.names.flag("_brk")
            return [A.assign(loop.brk, A.const(True), s)], {loop.brk}
        if isinstance(s, ast.Continue):
            loop.cont = loop.cont or self.names.flag("_cont")
            return [A.assign(loop.cont, A.const(True), s)], {loop.cont}
        if isinstance(s, ast.If):
            body, f1 = self.block(s.body, loop)
            orelse, f2 = self.block(s.orelse, loop)
            new = ast.copy_location(ast.If(test=s.test, body=body or [ast.Pass()],
                                           orelse=orelse), s)
            return [new], f1 | f2
        if isinstance(s, (ast.For, ast.While)):
            inner = _Loop()
            body, flags = self.block(s.body, inner)
            escaping = flags - {inner.brk, inner.cont}
            if inner.cont:
                body.insert(0, A.assign(inner.cont, A.const(False), s))
            exits = {f for f in (inner.brk,) if f} | escaping
            pre = []
            if inner.brk:
                pre.append(A.assign(inner.brk, A.const(False), s))
            if exits:
                exit_if = A.located(ast.If(test=self._any_set(exits), body=[ast.Break()],
                                           orelse=[]), s)
                A.tag(exit_if, loop_exit=True)
                body.append(exit_if)
            new = copy.copy(s)
            new.body = body or [ast.Pass()]
            return pre + [new], escaping
        return [s], set()


# --- flattening ------------------------------------------------------------------------

def _dict_names(body, unit):
    """Variables that only ever hold dicts built here (displays, comprehensions, dict()):
    a loop over one walks its keys."""
    stores = {}
    for n in _walk_outside_defs(body):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        is_dict = isinstance(t, ast.Name) and (
                            isinstance(n.value, (ast.Dict, ast.DictComp))
                            or isinstance(n.value, ast.Call)
                            and unit.resolve(n.value.func) is dict)
                        stores[sub.id] = stores.get(sub.id, True) and is_dict
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign, ast.For)):
            for sub in ast.walk(n.target):
                if isinstance(sub, ast.Name):
                    stores[sub.id] = False
    return {name for name, is_dict in stores.items() if is_dict}


class Flattener:
    """Split expressions so each statement does one special thing (see module doc)."""

    def __init__(self, unit, names, local_functions, local_names):
        self.unit = unit
        self.names = names
        self.local_functions = local_functions
        self.local_names = set(local_names) | set(unit.params)
        self.out = []
        self.cur = unit.node

    def run(self, body):
        self.dict_names = _dict_names(body, self.unit)
        self.rebound_in_loop = set()
        return self.block(body)

    def error(self, msg, node=None):
        return self.unit.error(msg, node if node is not None else self.cur)

    def block(self, stmts):
        saved, self.out = self.out, []
        for s in stmts:
            prev, self.cur = self.cur, s
            self.stmt(s)
            self.cur = prev
        res, self.out = self.out, saved
        return res

    def emit(self, s):
        A.located(s, self.cur)
        self.out.append(s)
        return s

    def temp(self, value, base="_t"):
        name = self.names.fresh(base)
        self.emit(A.assign(name, value))
        return A.load(name)

    # statements
    def stmt(self, s):
        method = getattr(self, "stmt_" + type(s).__name__, None)
        if method is None:
            raise self.error(f"unsupported construct '{type(s).__name__}'", s)
        method(s)

    def stmt_Pass(self, s):
        pass

    def stmt_FunctionDef(self, s):
        self.emit(A.tag(s, forward_only=True))

    def stmt_Assert(self, s):
        self.emit(A.tag(s, forward_only=True))

    def stmt_Raise(self, s):
        self.emit(A.tag(s, forward_only=True))

    def stmt_Break(self, s):
        self.emit(s)

    def stmt_AnnAssign(self, s):
        if s.value is not None:
            self.stmt_Assign(ast.copy_location(ast.Assign(targets=[s.target], value=s.value),
                                               s))

    def stmt_Assign(self, s):
        targets, value = s.targets, s.value
        if (len(targets) == 1 and isinstance(targets[0], (ast.Tuple, ast.List))
                and isinstance(value, (ast.Tuple, ast.List))
                and len(targets[0].elts) == len(value.elts)):
            stored = set()
            for t in targets[0].elts:
                stored |= A.names_stored(t) | A.names_loaded(t)
            vals = []
            for v in value.elts:
                r = self.expr(v)
                if not isinstance(r, ast.Constant) and not (
                        isinstance(r, ast.Name) and r.id not in stored):
                    r = self.temp(r)
                vals.append(r)
            for t, v in zip(targets[0].elts, vals):
                self.assign_to(t, v)
            return
        r = self.expr(value)
        if len(targets) > 1 and not A.is_atom(r):
            r = self.temp(r)
        for t in targets:
            self.assign_to(t, copy.deepcopy(r))

    def assign_to(self, target, value):
        if isinstance(target, ast.Name):
            self.local_names.add(target.id)
            self.emit(A.assign(target.id, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            v = self.bind(value)
            for k, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    raise self.error("unsupported construct '*' unpacking")
                sub = A.tag(ast.Subscript(value=copy.deepcopy(v), slice=A.const(k),
                                          ctx=ast.Load()), special="subscript")
                self.assign_to(elt, sub)
        elif isinstance(target, ast.Subscript):
            self.store_subscript(target, self.bind(value))
        elif isinstance(target, ast.Attribute):
            raise self.error("unsupported construct: assignment to an attribute")
        else:
            raise self.error(f"unsupported assignment target '{type(target).__name__}'")

    def store_subscript(self, target, atom, chain=None):
        """`X[i][j]... = atom`: the holders X[i], X[i][j]... are read once into temporaries,
        the innermost is written, and each holder is stored back into its parent
        (`X[i] = _t`): the same object (or the same memory) goes back where it was, so the
        primal is unchanged, and the transforms see every write (tagged `writeback`)."""
        holder = target.value
        if chain is None:
            chain = self.subscript_chain(holder)
        base = chain[-1][2] if chain else self.atom(holder)
        sub = ast.Subscript(value=copy.deepcopy(base), slice=self.index_expr(target.slice),
                            ctx=ast.Store())
        self.emit(A.tag(ast.Assign(targets=[sub], value=atom), setitem=True))
        self.store_back(chain)

    def store_back(self, chain):
        """`X[i] = _held` for each holder of `subscript_chain`, innermost first."""
        for parent, index, held in reversed(chain):
            back = ast.Subscript(value=copy.deepcopy(parent), slice=copy.deepcopy(index),
                                 ctx=ast.Store())
            self.emit(A.tag(ast.Assign(targets=[back], value=copy.deepcopy(held)),
                            setitem=True, writeback=True))

    def subscript_chain(self, holder):
        """For a store target's holder `X[i][j]`: read X, X[i], X[i][j] into names once;
        [(parent atom, index, holder name), ...] outermost first (empty for a plain name)."""
        if not (isinstance(holder, ast.Subscript) and not (
                isinstance(holder.value, ast.Attribute) and holder.value.attr in SHAPE_ATTRS)):
            return []
        chain = self.subscript_chain(holder.value)
        parent = chain[-1][2] if chain else self.atom(holder.value)
        index = self.index_expr(holder.slice)
        held = self.temp(A.tag(ast.Subscript(value=copy.deepcopy(parent),
                                             slice=copy.deepcopy(index), ctx=ast.Load()),
                               special="subscript"), base="_held")
        A.tag(self.out[-1], holder=True)
        return chain + [(parent, index, held)]

    def stmt_AugAssign(self, s):
        t = s.target
        if isinstance(t, ast.Name):
            new = ast.BinOp(left=A.load(t.id), op=s.op, right=s.value)
            self.local_names.add(t.id)
            # on an array, `v op= e` writes into v in place: split_array_trees decides,
            # once the kinds are known, whether rebinding v says the same
            self.emit(A.tag(A.assign(t.id, self.expr(A.located(new, s))), augassign=True))
        elif isinstance(t, ast.Subscript):
            chain = self.subscript_chain(t.value)
            base = chain[-1][2] if chain else self.atom(t.value)
            index = self.index_expr(t.slice)
            old = self.temp(A.tag(ast.Subscript(value=copy.deepcopy(base), slice=index,
                                                ctx=ast.Load()), special="subscript"))
            new = self.bind(self.expr(A.located(ast.BinOp(left=old, op=s.op, right=s.value),
                                                s)))
            sub = ast.Subscript(value=copy.deepcopy(base), slice=copy.deepcopy(index),
                                ctx=ast.Store())
            self.emit(A.tag(ast.Assign(targets=[sub], value=new), setitem=True))
            self.store_back(chain)
        else:
            raise self.error("unsupported construct: augmented assignment to an attribute")

    def stmt_Expr(self, s):
        v = s.value
        if isinstance(v, ast.Constant):
            return                                   # docstring or bare constant
        if not isinstance(v, ast.Call):
            return                                   # a bare expression has no effect
        r = self.expr(v)
        if A.get_tag(r, "inactive"):
            self.emit(A.tag(ast.Expr(value=r), forward_only=True))
        elif A.get_tag(r, "special") == "method":
            self.emit(ast.Expr(value=r))
        else:
            self.temp(r)

    def stmt_If(self, s):
        if A.get_tag(s, "loop_exit"):
            self.emit(A.tag(ast.If(test=self.inactive(s.test), body=[ast.Break()], orelse=[]),
                            loop_exit=True))
            return
        test = self.cond(s.test)
        body = self.block(s.body)
        orelse = self.block(s.orelse)
        self.emit(ast.If(test=test, body=body or [ast.Pass()], orelse=orelse))

    def cond(self, test, name=None):
        """Bind a condition (only its truth matters: kept verbatim) to a name. Anything
        but a comparison is stored as bool(...): a list tested here may change later."""
        name = name or self.names.fresh("_c")
        test = copy.deepcopy(test)
        if not self._boolish(test):
            test = A.located(ast.Call(func=A.load("bool"), args=[test], keywords=[]), test)
        self.emit(A.assign(name, self.inactive(test)))
        return A.load(name)

    def stmt_While(self, s):
        test = self.cond(s.test)
        saved, self.out = self.out, []
        self.cond(s.test, test.id)                 # recomputed at the end of each pass
        recompute, self.out = self.out, saved
        body = self.block(s.body)
        at = len(body)
        if body and A.get_tag(body[-1], "loop_exit"):
            at -= 1
        body[at:at] = recompute
        self.emit(ast.While(test=test, body=body, orelse=[]))

    def stmt_For(self, s):
        it, target = s.iter, s.target
        pre_body = []
        saved, self.out = self.out, pre_body
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is builtins.range and not it.keywords:
            if not isinstance(target, ast.Name):
                raise self.error("a range loop needs a single loop variable")
            loop_var = target.id
            iterator = ast.Call(func=A.load("range"), args=[self.inactive(a) for a in it.args],
                                keywords=[])
            self.out = saved
        elif self._grows_while_walked(s):
            self.out = saved
            self.growing_loop(s)
            return
        else:
            self.rebound_in_loop = _stored_outside_defs(s.body)
            loop_var = None
            if (fn is enumerate and isinstance(target, ast.Tuple) and len(target.elts) == 2
                    and isinstance(target.elts[0], ast.Name) and len(it.args) == 1
                    and not it.keywords):
                loop_var = target.elts[0].id        # `for i, v in enumerate(xs)`: i is k
            loop_var = loop_var or self.names.fresh("_k")
            n, element = self.iteration(it, saved)
            self.unpack(target, element(A.load(loop_var)))
            iterator = ast.Call(func=A.load("range"), args=[n], keywords=[])
            self.out = saved
        A.tag(iterator, inactive=True)
        self.local_names.add(loop_var)
        body = pre_body + self.block(s.body)
        loop = self.emit(ast.For(target=A.store(loop_var), iter=iterator, body=body,
                                 orelse=[], type_comment=None))
        if isinstance(it, ast.Name) and fn is None:
            A.tag(loop, walks=it.id)        # indexed directly: see _walk_other_iterables

    def _grows_while_walked(self, s):
        """`for v in xs` (or enumerate(xs)) whose body changes the length of the list xs
        (append, pop, `xs += ...`): Python's iterator sees the new length."""
        seq = self._walked_name(s.iter)
        if seq is None:
            return False
        for n in _walk_outside_defs(s.body):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in LENGTH_METHODS and isinstance(n.func.value, ast.Name)
                    and n.func.value.id == seq):
                return True
            if (isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
                    and n.target.id == seq):
                return True
        return False

    def _walked_name(self, it):
        if isinstance(it, ast.Name):
            return it.id
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is enumerate and len(it.args) == 1 and not it.keywords \
                and isinstance(it.args[0], ast.Name):
            return it.args[0].id
        return None

    def growing_loop(self, s):
        """`for v in xs: ...` as Python runs it: `k = 0; while k < len(xs): v = xs[k]; ...;
        k += 1` (the length is read again before every step)."""
        seq = self._walked_name(s.iter)
        k = self.names.fresh("_k")
        element = ast.Subscript(value=A.load(seq), slice=A.load(k), ctx=ast.Load())
        if not isinstance(s.iter, ast.Name):                     # enumerate(xs)
            element = ast.Tuple(elts=[A.load(k), element], ctx=ast.Load())
        body = [A.located(ast.Assign(targets=[s.target], value=element), s)] + list(s.body)
        step = A.located(ast.Assign(targets=[A.store(k)], value=ast.BinOp(
            left=A.load(k), op=ast.Add(), right=A.const(1))), s)
        at = len(body) - 1 if A.get_tag(body[-1], "loop_exit") else len(body)
        body.insert(at, step)
        test = ast.Compare(left=A.load(k), ops=[ast.Lt()], comparators=[ast.Call(
            func=A.load("len"), args=[A.load(seq)], keywords=[])])
        self.local_names.add(k)
        self.emit(A.assign(k, A.const(0)))
        self.stmt_While(A.located(ast.While(test=test, body=body, orelse=[]), s))

    def iteration(self, it, outer):
        """How a loop walks `it`: (length expression, k -> element expression).

        enumerate, zip and reversed compose; anything else is evaluated once before the
        loop (materialized with list() unless it is a name or a plain value) and indexed."""
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is enumerate and 1 <= len(it.args) <= 2:
            n, inner = self.iteration(it.args[0], outer)
            start = it.args[1] if len(it.args) > 1 else next(
                (kw.value for kw in it.keywords if kw.arg == "start"), None)

            def element(k):
                idx = k if start is None else ast.BinOp(left=k, op=ast.Add(),
                                                       right=self.inactive(start))
                return A.tag(ast.Tuple(elts=[A.tag(idx, inactive=True), inner(k)],
                                       ctx=ast.Load()), elements=True)
            return n, element
        if fn is zip and it.args and not it.keywords:
            parts = [self.iteration(a, outer) for a in it.args]
            n = parts[0][0] if len(parts) == 1 else A.tag(ast.Call(
                func=A.load("min"), args=[p[0] for p in parts], keywords=[]), inactive=True)
            return n, lambda k: A.tag(ast.Tuple(elts=[e(k) for _, e in parts],
                                                ctx=ast.Load()), elements=True)
        if fn is reversed and len(it.args) == 1 and not it.keywords:
            n, inner = self.iteration(it.args[0], outer)

            def element(k):
                back = ast.BinOp(left=ast.BinOp(left=copy.deepcopy(n), op=ast.Sub(),
                                                right=A.const(1)), op=ast.Sub(), right=k)
                return inner(A.tag(back, inactive=True))
            return n, element
        seq = self.atom_seq(it, outer)
        if isinstance(seq, ast.Name) and seq.id in self.dict_names:
            seq = self.atom_seq(ast.Call(func=A.load("list"), args=[seq], keywords=[]), outer)
        elif isinstance(seq, ast.Name) and isinstance(it, ast.Name) and \
                seq.id in self.rebound_in_loop:
            # the loop walks the object xs held when it started, even if xs is rebound
            inner, self.out = self.out, outer
            seq = self.temp(copy.deepcopy(seq), base="_seq")
            self.out = inner
        return self.len_of(seq), lambda k: self.index(seq, k)

    def unpack(self, target, value):
        """Assign a loop element to the loop target, pairing up tuples where possible."""
        if A.get_tag(value, "elements"):
            if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == len(
                    value.elts):
                for t, v in zip(target.elts, value.elts):
                    self.unpack(t, v)
                return
            value = A.tag(ast.Tuple(elts=[self.bind(self._element_value(v))
                                          for v in value.elts], ctx=ast.Load()),
                          special="display")
        if isinstance(target, ast.Name) and isinstance(value, ast.Name) and \
                target.id == value.id:
            return
        self.assign_to(target, value)

    def _element_value(self, v):
        if A.get_tag(v, "elements"):
            return A.tag(ast.Tuple(elts=[self.bind(self._element_value(e)) for e in v.elts],
                                   ctx=ast.Load()), special="display")
        return v

    def atom_seq(self, expr, outer):
        """The sequence a loop walks, as a name evaluated before the loop."""
        inner, self.out = self.out, outer
        r = self.expr(expr)
        if isinstance(expr, ast.Call) and A.get_tag(r, "special") in ("opaque",) \
                or A.get_tag(r, "inactive") and isinstance(r, ast.Call) \
                or A.get_tag(r, "method") in ("items", "keys", "values"):
            r = A.tag(ast.Call(func=A.load("list"), args=[self.bind(r)], keywords=[]),
                      special="container", container=builtins.list)
        seq = self.bind(r, base="_seq")
        self.out = inner
        return seq

    @staticmethod
    def len_of(seq):
        return A.tag(ast.Call(func=A.load("len"), args=[copy.deepcopy(seq)], keywords=[]),
                     inactive=True)

    @staticmethod
    def index(seq, k):
        k = A.load(k) if isinstance(k, str) else copy.deepcopy(k)
        return A.tag(ast.Subscript(value=copy.deepcopy(seq), slice=A.tag(k, inactive=True),
                                   ctx=ast.Load()), special="subscript")

    # expressions
    def inactive(self, e):
        """Keep e verbatim: its value carries no derivative (conditions, indices, ints)."""
        self._check_expr(e)
        return A.tag(e, inactive=True)

    def _check_expr(self, e):
        for n in ast.walk(e):
            if isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr)):
                raise self.error(f"unsupported construct '{UNSUPPORTED[type(n)]}'", n)

    def bind(self, r, base="_t"):
        """An atom (name or constant) holding the value of the flattened expression r."""
        if A.is_atom(r):
            return r
        return self.temp(r, base)

    def atom(self, e):
        return self.bind(self.expr(e))

    def operand(self, e):
        """Flatten e for use inside a pure expression tree."""
        r = self.expr(e)
        if A.get_tag(r, "special"):
            return self.temp(r)
        return r

    def expr(self, e):
        method = getattr(self, "expr_" + type(e).__name__, None)
        if method is None:
            raise self.error(f"unsupported expression '{type(e).__name__}'", e)
        r = method(e)
        return A.located(r, e)

    def expr_Name(self, e):
        return e

    def expr_Constant(self, e):
        return e

    def expr_JoinedStr(self, e):
        return self.inactive(e)

    def expr_Compare(self, e):
        return self.inactive(e)

    def expr_BinOp(self, e):
        return ast.BinOp(left=self.operand(e.left), op=e.op, right=self.operand(e.right))

    def expr_UnaryOp(self, e):
        if isinstance(e.op, (ast.Not, ast.Invert)):
            return self.inactive(e)
        return ast.UnaryOp(op=e.op, operand=self.operand(e.operand))

    def _boolish(self, e):
        if isinstance(e, ast.Compare) or (isinstance(e, ast.UnaryOp)
                                          and isinstance(e.op, ast.Not)):
            return True
        if isinstance(e, ast.Constant) and isinstance(e.value, bool):
            return True
        if isinstance(e, ast.Name) and e.id in self.names.flags:
            return True
        if isinstance(e, ast.BoolOp):
            return all(self._boolish(v) for v in e.values)
        if isinstance(e, ast.Call) and self.unit.resolve(e.func, self.local_names) in (
                bool, isinstance, callable):
            return True
        return False

    def expr_BoolOp(self, e):
        if self._boolish(e):
            return self.inactive(e)
        result = self.names.fresh("_t")
        self.emit(A.assign(result, self.expr(e.values[0])))
        self._boolop_rest(e, result, e.values[1:])
        return A.load(result)

    def _boolop_rest(self, e, result, values):
        if not values:
            return
        test = A.load(result)
        if isinstance(e.op, ast.Or):
            test = ast.UnaryOp(op=ast.Not(), operand=test)
        c = self.cond(test)
        saved, self.out = self.out, []
        self.emit(A.assign(result, self.expr(values[0])))
        self._boolop_rest(e, result, values[1:])
        body, self.out = self.out, saved
        self.emit(ast.If(test=c, body=body, orelse=[]))

    def expr_IfExp(self, e):
        c = self.cond(e.test)
        result = self.names.fresh("_t")
        saved, self.out = self.out, []
        self.emit(A.assign(result, self.expr(e.body)))
        body, self.out = self.out, []
        self.emit(A.assign(result, self.expr(e.orelse)))
        orelse, self.out = self.out, saved
        self.emit(ast.If(test=c, body=body, orelse=orelse))
        return A.load(result)

    def expr_Subscript(self, e):
        if isinstance(e.value, ast.Attribute) and e.value.attr in SHAPE_ATTRS:
            return self.inactive(e)                  # x.shape[0]: an int
        joined = self.index_concatenation(e)
        if joined is not None:
            return self.expr(A.located(joined, e))
        base = self.atom(e.value)
        return A.tag(ast.Subscript(value=base, slice=self.index_expr(e.slice), ctx=ast.Load()),
                     special="subscript")

    def index_concatenation(self, e):
        """`np.r_[a, b]` -> `np.concatenate([np.atleast_1d(a), np.atleast_1d(b)])` and
        `np.c_[a, b]` -> `np.concatenate([np.column_stack([a]), ...], axis=-1)`: the same
        arrays, built by functions with derivative rules (what NumPy's index tricks do for
        items that are not slices or string directives). None for anything else."""
        import numpy
        obj = self.unit.resolve(e.value, self.local_names)
        if obj is not numpy.r_ and obj is not numpy.c_:
            return None
        items = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
        if not items or any(isinstance(n, ast.Slice) or isinstance(n, ast.Constant)
                            and isinstance(n.value, str) for n in items):
            return None                       # ranges and directives: left to NumPy
        module = None
        if isinstance(e.value, ast.Attribute) and \
                self.unit.resolve(e.value.value, self.local_names) is numpy:
            module = e.value.value
        else:
            name = next((k for k, v in self.unit.globals.items() if v is numpy
                         and k not in self.local_names and k.isidentifier()), None)
            module = A.load(name) if name is not None else None
        if module is None:
            return None

        def np_call(fn, args, keywords=()):
            return ast.Call(func=ast.Attribute(value=copy.deepcopy(module), attr=fn,
                                               ctx=ast.Load()), args=args,
                            keywords=list(keywords))
        if obj is numpy.r_:
            parts = [np_call("atleast_1d", [item]) for item in items]
            return np_call("concatenate", [ast.List(elts=parts, ctx=ast.Load())])
        parts = [np_call("column_stack", [ast.List(elts=[item], ctx=ast.Load())])
                 for item in items]
        return np_call("concatenate", [ast.List(elts=parts, ctx=ast.Load())],
                       [ast.keyword(arg="axis", value=A.const(-1))])

    def index_expr(self, index):
        """An index expression, evaluated once: masks and other computed indices go into a
        variable, so the adjoint sweep reuses the very same index."""
        if isinstance(index, ast.Slice):     # `a:b:c` is no expression: its bounds are
            return A.tag(A.located(ast.Slice(  # hoisted one by one, the slice kept inline
                lower=index.lower and self.index_expr(index.lower),
                upper=index.upper and self.index_expr(index.upper),
                step=index.step and self.index_expr(index.step)), index), inactive=True)
        if isinstance(index, ast.Tuple) and any(isinstance(n, ast.Slice) for n in index.elts):
            return A.tag(A.located(ast.Tuple(elts=[self.index_expr(n) for n in index.elts],
                                             ctx=ast.Load()), index), inactive=True)
        simple = (ast.Constant, ast.Name, ast.Slice, ast.BinOp, ast.UnaryOp, ast.Tuple)
        if isinstance(index, simple) and not any(
                isinstance(n, (ast.Call, ast.Compare, ast.Subscript, ast.BoolOp))
                for n in ast.walk(index)):
            return self.inactive(index)
        name = self.names.fresh("_index")
        self.emit(A.assign(name, self.inactive(index)))
        return A.load(name)

    def expr_Attribute(self, e):
        if self.unit.resolve(e, self.local_names) is not None or e.attr in SHAPE_ATTRS:
            return self.inactive(e)
        base = self.atom(e.value)
        return A.tag(ast.Attribute(value=base, attr=e.attr, ctx=ast.Load()), special="attr")

    def expr_List(self, e):
        return self._display(e, ast.List)

    def expr_Tuple(self, e):
        return self._display(e, ast.Tuple)

    def _display(self, e, kind):
        for x in e.elts:
            if isinstance(x, ast.Starred):
                raise self.error("unsupported construct '*' unpacking", x)
        return A.tag(kind(elts=[self.atom(x) for x in e.elts], ctx=ast.Load()),
                     special="display")

    def expr_Dict(self, e):
        return A.tag(e, special="opaque", opaque="dict display")

    def expr_Set(self, e):
        return A.tag(e, special="opaque", opaque="set display")

    def expr_DictComp(self, e):
        return A.tag(e, special="opaque", opaque="dict comprehension")

    def expr_SetComp(self, e):
        return A.tag(e, special="opaque", opaque="set comprehension")

    def expr_Lambda(self, e):
        raise self.error("unsupported construct: a lambda used as a value (assign it to a "
                         "name or use def)", e)

    def expr_Starred(self, e):
        raise self.error("unsupported construct '*' unpacking", e)

    def expr_ListComp(self, e):
        return self._comprehension(e)

    def expr_GeneratorExp(self, e):
        return self._comprehension(e)

    def _comprehension(self, e):
        result = self.names.fresh("_list")
        self.emit(A.assign(result, ast.List(elts=[], ctx=ast.Load())))
        e = copy.deepcopy(e)
        mapping = {}
        for gen in e.generators:
            for n in ast.walk(gen.target):
                if isinstance(n, ast.Name):
                    mapping[n.id] = self.names.fresh("_" + n.id.lstrip("_") + "_")
        A.rename(e, mapping)
        inner = [A.located(ast.Expr(value=ast.Call(
            func=ast.Attribute(value=A.load(result), attr="append", ctx=ast.Load()),
            args=[e.elt], keywords=[])), e)]
        for gen in reversed(e.generators):
            if gen.is_async:
                raise self.error("unsupported construct 'async for'", e)
            for cond in reversed(gen.ifs):
                inner = [A.located(ast.If(test=cond, body=inner, orelse=[]), e)]
            inner = [A.located(ast.For(target=gen.target, iter=gen.iter, body=inner,
                                       orelse=[], type_comment=None), e)]
        for s in inner:
            self.stmt(s)
        return A.load(result)

    def expr_Call(self, e):
        for a in e.args:
            if isinstance(a, ast.Starred):
                raise self.error("unsupported construct '*args' in a call", a)
        for k in e.keywords:
            if k.arg is None:
                raise self.error("unsupported construct '**kwargs' in a call", k)
        if (self.unit.resolve(e.func, self.local_names) in (max, min) and e.args
                and [k.arg for k in e.keywords] == ["key"]):
            return self.best_with_key(e)
        kind, target = self.classify(e)
        if kind == "inactive":
            return self.inactive(e)
        if kind == "primitive":
            positional, keywords = _place_keywords(target, list(e.args), list(e.keywords))
            rule = lookup(target, len(positional))
            if keywords and (rule is None or (rule.vjps is None and rule.multilinear is None
                                              and rule.unavailable is None)):
                raise self.error(f"keyword arguments to {ast.unparse(e.func)} are not "
                                 "supported", e)
            # keyword values stay visible to the activity analysis: one that carries a
            # derivative is reported by the transforms rather than silently dropped
            keywords = [ast.keyword(arg=k.arg, value=self.inactive(k.value) if isinstance(
                k.value, (ast.Constant, ast.Lambda)) else self.operand(k.value))
                for k in keywords]
            args = [self.inactive(a) if isinstance(a, ast.Lambda) else self.operand(a)
                    for a in positional]           # a lambda argument (a hook) is data
            if target in VARIADIC and len(args) > 2:
                acc = args[0]
                for a in args[1:]:
                    acc = A.tag(ast.Call(func=copy.deepcopy(e.func), args=[acc, a],
                                         keywords=[]), rule=lookup(target, 2))
                return acc
            return A.tag(ast.Call(func=e.func, args=args, keywords=keywords),
                         rule=lookup(target, len(args)))
        if kind == "container" and target is builtins.sum:
            e = copy.copy(e)
            e.args, e.keywords = _place_keywords(target, list(e.args), list(e.keywords),
                                                 ("iterable", "start"))
        args = [self.atom(a) for a in e.args]
        keywords = [ast.keyword(arg=k.arg, value=self.atom(k.value)) for k in e.keywords]
        if kind == "method":
            base = self.atom(e.func.value)
            func = ast.Attribute(value=base, attr=e.func.attr, ctx=ast.Load())
            return A.tag(ast.Call(func=func, args=args, keywords=keywords),
                         special="method", method=e.func.attr)
        call = ast.Call(func=e.func, args=args, keywords=keywords)
        if kind == "user":
            extras = getattr(target, "extra_params", ())
            for x in extras:
                call.keywords.append(ast.keyword(arg=x, value=A.load(x)))
            return A.tag(call, special="user", user=target)
        if kind == "container":
            return A.tag(call, special="container", container=target)
        return A.tag(call, special="opaque", opaque=target if target is not None
                     else ast.unparse(e.func))

    def best_with_key(self, e):
        """`max(xs, key=f)` -> `_index = max(range(len(xs)), key=lambda i: f(xs[i]))`,
        then `xs[_index]`: the first best element, as Python picks it, read by index (so
        the derivative flows to that element only)."""
        if len(e.args) == 1:
            seq = self.atom_seq(e.args[0], self.out)     # iterators become lists
            if isinstance(seq, ast.Name) and seq.id in self.dict_names:
                seq = self.temp(A.tag(ast.Call(func=A.load("list"), args=[seq], keywords=[]),
                                      special="container", container=list))
        else:
            seq = self.temp(self._display(ast.List(elts=e.args, ctx=ast.Load()), ast.List))
        i = self.names.fresh("_i")
        key = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=i)],
                                            vararg=None, kwonlyargs=[], kw_defaults=[],
                                            kwarg=None, defaults=[]),
                         body=ast.Call(func=copy.deepcopy(e.keywords[0].value), args=[
                             ast.Subscript(value=copy.deepcopy(seq), slice=A.load(i),
                                           ctx=ast.Load())], keywords=[]))
        best = ast.Call(func=copy.deepcopy(e.func), args=[ast.Call(
            func=A.load("range"), args=[self.len_of(seq)], keywords=[])],
            keywords=[ast.keyword(arg="key", value=key)])
        index = self.names.fresh("_index")
        self.emit(A.assign(index, self.inactive(A.located(best, e))))
        return self.index(seq, index)

    def classify(self, call):
        """What kind of call this is: primitive, user, container, method, inactive, opaque."""
        func = call.func
        nargs = len(call.args)
        if isinstance(func, ast.Name) and func.id in self.local_functions:
            return "user", self.local_functions[func.id]
        if isinstance(func, ast.Name) and func.id in self.local_names:
            return "opaque", func.id
        if isinstance(func, ast.Attribute) and self.unit.resolve(func, self.local_names) is None:
            return "method", None
        obj = self.unit.resolve(func, self.local_names)
        if obj is None:
            return "opaque", ast.unparse(func)
        obj = getattr(obj, "__transpile_function__", obj)
        if obj in (max, min) and nargs == 1 or obj in CONTAINER_FUNCS:
            return "container", obj
        if obj in VARIADIC and nargs > 2:
            return "primitive", obj               # folded into nested 2-argument calls
        rule = lookup(obj, nargs)
        if rule is not None:
            return ("inactive" if rule.zero else "primitive"), obj
        if inspect.isfunction(obj):
            return "user", obj
        return "opaque", obj


# --- arrays: one operation per statement ------------------------------------------------

def split_array_trees(norm, kind_of):
    """Give every intermediate of a non-scalar expression its own variable.

    Scalar trees stay whole (recomputing a scalar in the adjoint sweep is cheaper than
    saving it); array intermediates are kept, and each operation's adjoint can then sum
    broadcasts back to the exact shape of its operands."""

    def internal(n):
        return isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) and not A.get_tag(
            n, "inactive") and not A.get_tag(n, "special")

    def hoist(n, out, like):
        for field in ("left", "right", "operand"):
            child = getattr(n, field, None)
            if child is not None and internal(child):
                setattr(n, field, hoist_child(child, out, like))
        if isinstance(n, ast.Call):
            n.args = [hoist_child(a, out, like) if internal(a) else a for a in n.args]
        return n

    def hoist_child(child, out, like):
        child = hoist(child, out, like)
        name = norm.names.fresh("_t")
        out.append(A.located(A.assign(name, child), like))
        return A.load(name)

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            elif (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                  and internal(s.value) and kind_of(s.value) != "scalar"):
                s.value = hoist(s.value, out, s)
            out.append(s)
        return out

    norm.body = block(norm.body)
    an = getattr(kind_of, "__self__", None)
    if an is not None and not norm.unit.is_generated:
        _augmented_in_place(norm, an)
        _propagate_aliases(norm, an)
        _walk_other_iterables(norm, an)
    norm.kinds_resolved = True
    return norm


def _augmented_in_place(norm, an):
    """`v op= e` on an array writes into v (NumPy): where v may share its memory with
    anything (a parameter, `v = a`, a view), it becomes `_t = v op e; v[...] = _t`, an
    element write the transforms follow; a fresh array keeps the cheaper `v = v op e`."""
    from .analysis import Aliases, ARRAY
    aliases = Aliases(an)

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            elif (isinstance(s, ast.Assign) and A.get_tag(s, "augassign")
                  and an.kind.get(s.targets[0].id) == ARRAY
                  and aliases.aliased(aliases.before.get(id(s), frozenset()),
                                      s.targets[0].id)):
                v = s.targets[0].id
                t = norm.names.fresh("_t")
                out.append(A.assign(t, s.value, s))
                s = A.tag(A.assign(ast.Subscript(value=A.load(v), slice=A.const(Ellipsis),
                                                 ctx=ast.Store()), A.load(t), s),
                          setitem=True)
            out.append(s)
        return out

    norm.body = block(norm.body)


def _walk_other_iterables(norm, an):
    """`for v in d` over a value that is no list, tuple or array (a dict, a set, a
    generator passed in): walk `list(d)`, as Python's iterator does, instead of d[k]."""
    from .analysis import UNKNOWN, MODULE

    def block(stmts):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                s.body = block(s.body)
                s.orelse = block(s.orelse)
            seq = A.get_tag(s, "walks") if isinstance(s, ast.For) else None
            if seq is not None and an.kind.get(seq) in (UNKNOWN, MODULE) and (
                    seq in an.params or seq not in an.seq):
                if seq in an.active:
                    raise norm.unit.error(f"unsupported construct: a loop over '{seq}', "
                                          "which is neither a list, a tuple nor an array, "
                                          "carrying derivatives", s)
                walked = norm.names.fresh("_seq")
                out.append(A.assign(walked, A.tag(ast.Call(
                    func=A.load("list"), args=[A.load(seq)], keywords=[]),
                    special="container", container=list), s))
                k = s.target.id
                for n in ast.walk(s):
                    if (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                            and n.value.id == seq and isinstance(n.slice, ast.Name)
                            and n.slice.id == k) or (
                            isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                            and n.func.id == "len" and n.args and isinstance(
                                n.args[0], ast.Name) and n.args[0].id == seq
                            and n in ast.walk(s.iter)):
                        target = n.value if isinstance(n, ast.Subscript) else n.args[0]
                        target.id = walked
            out.append(s)
        return out

    norm.body = block(norm.body)


def _propagate_aliases(norm, an):
    """`b = a` at the top level, b assigned nowhere else, a never rebound afterwards, and
    one of them written in place: every later use of b is a use of a (one object, one
    name), so writes through b are seen as writes into a."""
    from .analysis import MUTABLE, MUTATING_METHODS
    body = norm.body
    i = 0
    while i < len(body):
        s = body[i]
        if not (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                and isinstance(s.value, ast.Name) and not A.get_tag(s, "augassign")):
            i += 1
            continue
        b, a = s.targets[0].id, s.value.id
        rest = body[i + 1:]
        later = set()
        for r in rest:
            later |= A.names_stored(r)
        sites = sum(1 for r in _walk_stmts(body) for t in _assigned_names(r) if t == b)
        if (a == b or b in an.params or sites != 1 or a in later
                or an.kind.get(a) not in MUTABLE or a not in an.sites
                or not _written_in_place(rest, {a, b}, MUTATING_METHODS)):
            i += 1
            continue
        for r in rest:
            A.rename(r, {b: a})
        if norm.result == b:
            norm.result = a
        del body[i]


def _assigned_names(s):
    if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
        return [s.targets[0].id]
    if isinstance(s, ast.For) and isinstance(s.target, ast.Name):
        return [s.target.id]
    return []


def _written_in_place(stmts, names, methods):
    for st in stmts:
        for n in ast.walk(st):
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store) and isinstance(
                    n.value, ast.Name) and n.value.id in names:
                return True
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in methods and isinstance(n.func.value, ast.Name)
                    and n.func.value.id in names):
                return True
            if isinstance(n, ast.Assign) and A.get_tag(n, "augassign") and \
                    n.targets[0].id in names:
                return True
    return False
