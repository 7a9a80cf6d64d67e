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

Its parts: desugar.py (whole-body rewrites first: method aliases, lambda lifting, jumps
into flags), this file's `Flattener` (statements and expressions into one operation each),
loops.py (iteration and comprehensions, part of the Flattener), and, once analysis.py has
found the value kinds, array_statements.py (one array operation per statement).
"""
import ast
import builtins
import copy
import inspect
import math

from . import astutil as A
from .rules import lookup
from .desugar import JumpLowering, inline_method_aliases, lift_nested
from .loops import LoopFlattening

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
    outer_locals = set(params) | A.stored_outside_defs(body)
    body = inline_method_aliases(body, set(params))
    body = lift_nested(unit, body, outer_locals, local_functions)
    body, result = JumpLowering(names).run(body)
    flat = Flattener(unit, names, local_functions, outer_locals | {result}).run(body)
    return Normalized(unit, flat, result, names, local_functions, params)


# --- checks ---------------------------------------------------------------------------

def _check_supported(unit, node):
    for n in A.walk_outside_defs(node.body):
        kind = UNSUPPORTED.get(type(n))
        if kind is not None:
            raise unit.error(f"unsupported construct '{kind}'", n)
        if isinstance(n, (ast.For, ast.While)) and n.orelse:
            raise unit.error("unsupported construct 'else' on a loop", n)
        if isinstance(n, ast.Starred):
            raise unit.error("unsupported construct '*' unpacking", n)


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
                lookup(fn, len(args)) and any(k.value is args[kept - 1] for k in keywords) \
                and _keyword_only_constant(rule, kept - 1, params[kept - 1]):
            kept -= 1
        if kept < len(args):
            back = [ast.keyword(arg=params[i], value=args[i]) for i in range(kept, len(args))]
            args, remaining = args[:kept], back + remaining
    return args, remaining


def _keyword_only_constant(rule, i, name):
    """May argument i of rule's primitive stay the keyword `name`: it has no derivative
    (no vjp, in no linear group), and every function the rule calls with it takes it by
    that name?"""
    if i < len(rule.vjps) and rule.vjps[i] is not None:
        return False
    if any(i in group for group in rule.multilinear or ()):
        return False
    for f in list(rule.vjps) + [rule.jvp]:
        if f is None:
            continue
        try:
            params = inspect.signature(f).parameters
        except (TypeError, ValueError):
            return False
        p = params.get(name)
        if p is None and not any(q.kind is q.VAR_KEYWORD for q in params.values()):
            return False
        if p is not None and p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return False
    return True


def _constant(e):
    """A literal: 1, -1, None, True, (0, 1)."""
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.USub, ast.UAdd)):
        e = e.operand
    if isinstance(e, ast.Tuple):
        return all(_constant(x) for x in e.elts)
    return isinstance(e, ast.Constant)


# --- flattening ------------------------------------------------------------------------

def _dict_names(body, unit):
    """Variables that only ever hold dicts built here (displays, comprehensions, dict()):
    a loop over one walks its keys."""
    stores = {}
    for n in A.walk_outside_defs(body):
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


class Flattener(LoopFlattening):
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
        self.emit(A.tag(ast.Assign(targets=[sub], value=atom)))
        self.store_back(chain)

    def store_back(self, chain):
        """`X[i] = _held` for each holder of `subscript_chain`, innermost first."""
        for parent, index, held in reversed(chain):
            back = ast.Subscript(value=copy.deepcopy(parent), slice=copy.deepcopy(index),
                                 ctx=ast.Store())
            self.emit(A.tag(ast.Assign(targets=[back], value=copy.deepcopy(held)),
                            writeback=True))

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
            self.emit(A.tag(ast.Assign(targets=[sub], value=new)))
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


    def expr_Lambda(self, e):
        raise self.error("unsupported construct: a lambda used as a value (assign it to a "
                         "name or use def)", e)

    def expr_Starred(self, e):
        raise self.error("unsupported construct '*' unpacking", e)


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
        if getattr(obj, "__transpile_code__", None) is not None:   # a gradient made outside
            from .higher import NestedDerivative
            return "user", NestedDerivative(obj, None)
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
