"""Normalize: rewrite a function into the small language the transforms understand.

After this pass a function body holds only these statements:

* ``name = TREE`` where TREE is a pure expression of operators and rule-backed calls
  (``math.sin``, ``abs``...) over names and constants, or an *inactive* expression kept
  verbatim (comparisons, ``len(xs)``, ``int(x)``: no derivative flows through them);
* ``name = SPECIAL`` where SPECIAL is one call of a user function, a container operation
  (``sum(xs)``, ``[a, b]``, ``xs[i]``, ``list(xs)``), a method call or an opaque call;
* ``xs[index] = atom`` (also into a dict), ``obj.name = atom`` and ``xs.append(atom)``;
* ``if c:`` / ``for i in range(...)`` / ``while c:`` with ``c`` a name, loops ending (if they
  can exit early) in ``if <flags>: break``; forward-only statements (nested ``def``,
  ``assert``, ``raise``, ``import``, calls that only record values such as ``print``,
  ``logging.info``, ``ax.plot``, ``del obj[i]``, and ``try`` statements, their blocks
  normalized), copied into the forward sweep as they are; ``with`` becomes
  ``_with1 = cm``, ``v = _with1.__enter__()``, the body, ``_with1.__exit__(None, None,
  None)`` in one block (emit.build writes the ``with`` back). analysis.check_passthrough
  refuses these where a derivative would have to flow through them.

On the way it desugars augmented and chained assignment, tuple unpacking and swaps,
conditional expressions and ``and``/``or``, comprehensions (into loops), iteration over
lists, ``enumerate``, ``zip`` and ``reversed`` (into index loops), the dict operations
``d.get(k, default)`` (a read if the key is there), ``d.update(...)`` (stores),
``d.items()``/``d.values()`` (entries read by key), ``dict(...)`` (displays and dict
comprehensions; a dict display keeps its shape, tagged ``special="dict"``), lowers ``break``,
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
import functools
import inspect
import math
import types

from . import astutil as A
from . import frontend, tree
from .namespaces import is_namespace_getter
from .rules import lookup
from .desugar import JumpLowering, inline_method_aliases, lift_nested
from .loops import LoopFlattening

UNSUPPORTED = {
    ast.AsyncWith: "async with",
    ast.AsyncFor: "async for", ast.AsyncFunctionDef: "async def", ast.Yield: "yield",
    ast.YieldFrom: "yield from", ast.Await: "await", ast.ClassDef: "class definition",
    ast.NamedExpr: "walrus operator :=",
}
if hasattr(ast, "TryStar"):
    UNSUPPORTED[ast.TryStar] = "try/except*"
if hasattr(ast, "Match"):
    UNSUPPORTED[ast.Match] = "match"

CONTAINER_FUNCS = {builtins.sum, builtins.list, builtins.tuple}


def _value_methods():
    import numpy
    out = set()
    for t in (numpy.ndarray, numpy.generic, list, tuple, dict, set, float, int, str):
        out |= set(dir(t))
    return frozenset(out)


#: method names of arrays, numbers, lists, tuples, dicts, sets and strings: `v.name(...)`
#: is one of those (rules/containers.py Method); any other name is a method of an object,
#: called through the value (a `special=dynamic` call, calls.py)
VALUE_METHODS = _value_methods()
SHAPE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}
VARIADIC = {builtins.max, builtins.min, math.hypot}


# Functions whose results carry no derivative and that change nothing they are passed:
# output, logging, warnings, plotting, strings. Their calls are kept as they are and read
# primal values.
SINK_FUNCTIONS = {builtins.print, builtins.str, builtins.repr, builtins.format,
                  builtins.type, builtins.id, builtins.hash, builtins.input}
SINK_MODULES = {"logging", "warnings", "_warnings", "matplotlib", "pprint", "traceback", "time"}


def _shape_only(fn):
    """The argument positions of a helper of tangent code that it reads for their
    structure, shape and dtype only (`like` of result_tangent, dense, broadcast_tangent):
    kept verbatim, without a derivative, where tangent code is differentiated again."""
    from .rules import forward_runtime as F
    try:
        return (1,) if fn in (F.result_tangent, F.dense, F.broadcast_tangent) else ()
    except TypeError:                                # unhashable
        return ()


def _is_sink(obj):
    try:
        if obj in SINK_FUNCTIONS:
            return True
    except TypeError:                                # unhashable
        return False
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str) or not (inspect.isfunction(obj) or
                                           inspect.isbuiltin(obj) or inspect.isclass(obj)):
        return False
    return module.split(".")[0] in SINK_MODULES


class Normalized:
    """The result of normalization: the new body plus what later passes need to know."""

    def __init__(self, unit, body, result, names, local_functions, params):
        self.unit = unit
        self.body = body
        self.result = result                # name holding the return value
        self.names = names
        self.local_functions = local_functions
        self.params = params


def normalize(unit, names, statics=None):
    """The normalized function. `statics` ({param: ("callable", f) or ("class", cls)}, from
    the variant's kinds, pipeline.static_values): parameters known to hold the function f
    (their calls are calls of f) or an object of class cls (`p.method(x)` is the call of
    cls.method with p first)."""
    node = unit.node
    if is_generator(node):
        node = _collecting(unit, node, names)
    _check_supported(unit, node)
    params = unit.params
    body = A.copy_tree(node.body)
    local_functions = getattr(unit, "local_functions", None)
    if local_functions is None:
        local_functions = {}
    outer_locals = set(params) | A.stored_outside_defs(body)
    body = inline_method_aliases(body, set(params))
    body = lift_nested(unit, body, outer_locals, local_functions)
    body, result = JumpLowering(names).run(body)
    flattener = Flattener(unit, names, local_functions, outer_locals | {result})
    stored = A.stored_outside_defs(body)
    statics = {p: v for p, v in (statics or {}).items() if p in params and p not in stored}
    flattener.callables = {p: v for p, (what, v) in statics.items() if what == "callable"}
    flattener.classes = {p: v for p, (what, v) in statics.items() if what == "class"}
    flattener.namespaces = {p: v for p, (what, v) in statics.items() if what == "namespace"}
    flattener.namespaces.update(_namespace_locals(unit, body, {
        p: v for p, (what, v) in statics.items() if what == "xp"}, flattener.local_names))
    flat = flattener.run(body)
    norm = Normalized(unit, flat, result, names, local_functions, params)
    norm.statics = statics
    norm.rebound_outer = {x for n in A.walk_outside_defs(node.body) if isinstance(
        n, (ast.Global, ast.Nonlocal)) for x in n.names} & outer_locals
    return norm


# --- generators -------------------------------------------------------------------------

def is_generator(node):
    """Does this def hold `yield` (outside nested defs)?"""
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in A.walk_outside_defs(
        node.body))


def _collecting(unit, node, names):
    """A generator function differentiated as the function building the list of its
    items: `yield v` -> `_items.append(v)`, `return` -> `return _items` (callers make the
    list too: `list(gen(...))`, see Flattener.expr_Call). Only `yield` statements (not
    `x = yield`, not `yield from`)."""
    items = names.fresh("_items")
    for n in A.walk_outside_defs(node.body):
        if isinstance(n, ast.YieldFrom):
            raise unit.error("unsupported construct 'yield from'", n)
        if isinstance(n, ast.Yield) and not any(
                isinstance(s, ast.Expr) and s.value is n
                for s in A.walk_outside_defs(node.body)):
            raise unit.error("unsupported construct: 'yield' as an expression (a "
                             "generator is differentiated as the list of what it yields: "
                             "use `yield v` statements)", n)
        if isinstance(n, ast.Return) and n.value is not None:
            raise unit.error("unsupported construct: 'return' with a value in a generator",
                             n)

    class Collect(A.Transformer):
        def visit_FunctionDef(self, n):
            return n

        def visit_Lambda(self, n):
            return n

        def visit_Expr(self, s):
            if isinstance(s.value, ast.Yield):
                value = s.value.value if s.value.value is not None else A.const(None)
                return A.located(ast.Expr(value=ast.Call(
                    func=ast.Attribute(value=A.load(items), attr="append", ctx=ast.Load()),
                    args=[value], keywords=[])), s)
            return s

        def visit_Return(self, s):
            return A.located(ast.Return(value=A.load(items)), s)

    new = A.copy_tree(node)
    body = [Collect().visit(s) for s in new.body]
    first = new.body[0] if new.body else new
    new.body = ([A.located(A.assign(items, ast.List(elts=[], ctx=ast.Load())), first)] + body
                + [A.located(ast.Return(value=A.load(items)), body[-1] if body else first)])
    return new


# --- checks ---------------------------------------------------------------------------

def _takes_star(target):
    """Does the user function take *args or **kwargs?"""
    node = getattr(target, "node", None)
    if node is None:
        code = getattr(target, "__code__", None)
        return code is not None and bool(code.co_flags & (inspect.CO_VARARGS
                                                          | inspect.CO_VARKEYWORDS))
    return node.args.vararg is not None or node.args.kwarg is not None


def _generator_function(target):
    code = getattr(target, "__code__", None)
    if code is not None:
        return bool(code.co_flags & inspect.CO_GENERATOR)
    node = getattr(target, "node", None)
    return node is not None and is_generator(node)


def _check_supported(unit, node):
    top = {id(n) for n in A.nodes(ast.Module(body=[
        s for s in A.statements(node.body) if not isinstance(s, ast.FunctionDef)],
        type_ignores=[]))}
    for n in A.walk_outside_defs(node.body):
        kind = UNSUPPORTED.get(type(n))
        if kind is not None:
            raise unit.error(f"unsupported construct '{kind}'", n)
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            what = "global" if isinstance(n, ast.Global) else "nonlocal"
            if id(n) not in top:
                raise unit.error(f"unsupported construct '{what}' in a nested function", n)
        if isinstance(n, (ast.For, ast.While)) and n.orelse:
            raise unit.error("unsupported construct 'else' on a loop", n)


def _root_name(e):
    """The name at the root of `xp.linalg.norm`, or None."""
    while isinstance(e, ast.Attribute):
        e = e.value
    return e.id if isinstance(e, ast.Name) else None


def _namespace_attribute(ns, e):
    """`xp.linalg.vector_norm` with xp the namespace ns: that function, or None."""
    if isinstance(e, ast.Name):
        return ns
    base = _namespace_attribute(ns, e.value)
    return None if base is None else getattr(base, e.attr, None)


def _namespace_locals(unit, body, array_namespaces, local_names):
    """{name: namespace} for the local names assigned only `array_namespace(x, ...)` or
    `x.__array_namespace__()` (namespaces.is_namespace_getter), all of one namespace:
    that of the arguments' arrays in this variant (their parameters' kinds `.xp`
    entries). The variant is specialised on the arguments' types, so it is the namespace
    the call returns when the code runs."""
    found, getters, stores = {}, {}, {}
    for n in A.walk_outside_defs(body):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            stores[n.id] = stores.get(n.id, 0) + 1
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(
                n.targets[0], ast.Name) and isinstance(n.value, ast.Call)):
            continue
        call, name = n.value, n.targets[0].id
        method = isinstance(call.func, ast.Attribute) and \
            call.func.attr == "__array_namespace__"
        if not method and not is_namespace_getter(unit.resolve(call.func, local_names)):
            continue
        reads = [r for a in ([call.func.value] if method else call.args)
                 for r in sorted(A.names_loaded(a)) if r in array_namespaces]
        spaces = {id(array_namespaces[r]): array_namespaces[r] for r in reads} or {
            id(v): v for v in array_namespaces.values()}
        getters[name] = getters.get(name, 0) + 1
        if len(spaces) == 1:
            ns = next(iter(spaces.values()))
            found[name] = ns if found.get(name, ns) is ns else None
    return {k: v for k, v in found.items()
            if v is not None and stores.get(k) == getters.get(k)}


def _place_keywords(fn, args, keywords, params=None):
    """Move keyword arguments that name positional parameters of fn's rule into place
    (`np.dot(a=v, b=w)` is `np.dot(v, w)`); the rest stay keywords."""
    rule = None
    if params is None:
        rule = lookup(fn, None) or lookup(fn, len(args))
        params = rule.params if rule is not None and rule.params else ()
    remaining = list(keywords)
    defaults = getattr(rule, "defaults", None) or {}
    moved = True
    while moved and (remaining or defaults):
        moved = False
        for k in list(remaining):
            if k.arg is not None and len(args) < len(params) and params[len(args)] == k.arg:
                args.append(k.value)
                remaining.remove(k)
                moved = True
        if not moved:
            moved = _fill_defaults(fn, args, remaining, params, defaults)
        if not moved and len(args) < len(params) and params[len(args)] in defaults:
            # a parameter left out that has a declared default (`norm.logpdf(x, scale=s)`
            # is `norm.logpdf(x, 0.0, s)`): the rule's templates read every parameter
            args.append(ast.Constant(value=defaults[params[len(args)]]))
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


def _fill_defaults(fn, args, remaining, params, declared):
    """A keyword that is not a literal (it may carry a derivative) naming a later
    positional parameter of the rule (`logsumexp(x, b=w)`): put the parameters between
    at their literal defaults (those the rule declares, else fn's signature's) so that it
    lands in its place. False when none applies."""
    sig = None
    for k in remaining:
        if k.arg is None or k.arg not in params or _constant(k.value):
            continue
        j = params.index(k.arg)
        if j <= len(args):
            continue
        gap = []
        for name in params[len(args):j]:
            if any(q.arg == name for q in remaining):
                gap = None
                break
            if name in declared:
                gap.append(ast.Constant(declared[name]))
                continue
            if sig is None:
                try:
                    sig = inspect.signature(fn).parameters
                except (TypeError, ValueError):
                    sig = {}
            p = sig.get(name)
            if p is None or p.default is inspect.Parameter.empty or not (
                    p.default is None or type(p.default) in (bool, int, float, str)):
                gap = None
                break
            gap.append(ast.Constant(p.default))
        if gap is None:
            continue
        args.extend(gap)
        args.append(k.value)
        remaining.remove(k)
        return True
    return False


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


def _dict_get(e):
    """``d.get(k)`` / ``d.get(k, default)`` -> ``d[k] if k in d else default``: the entry
    read by indexing (its adjoint goes to that entry), the default only where the key is
    missing. None for other calls."""
    if not (isinstance(e.func, ast.Attribute) and e.func.attr == "get" and not e.keywords
            and 1 <= len(e.args) <= 2 and isinstance(e.func.value, ast.Name)):
        return None
    base, key = e.func.value, e.args[0]
    if not isinstance(key, (ast.Name, ast.Constant)):
        return None
    default = e.args[1] if len(e.args) == 2 else A.const(None)
    return ast.IfExp(test=ast.Compare(left=A.copy_tree(key), ops=[ast.In()],
                                      comparators=[A.copy_tree(base)]),
                     body=ast.Subscript(value=A.copy_tree(base), slice=A.copy_tree(key),
                                        ctx=ast.Load()), orelse=default)


def _update_stores(e, key):
    """``d.update({k: v, ...}, name=w)`` -> ``d[k] = v; ...; d["name"] = w``;
    ``d.update(other)`` -> ``for _k in other.keys(): d[_k] = other[_k]`` (a dict of
    entries: other's keys method is called as update calls it): statements, or None for
    other calls."""
    if not (isinstance(e.func, ast.Attribute) and e.func.attr == "update" and isinstance(
            e.func.value, ast.Name) and len(e.args) <= 1 and (e.args or e.keywords)
            and all(k.arg is not None for k in e.keywords)):
        return None
    base = e.func.value
    out = []

    def store(key, value):
        out.append(ast.Assign(targets=[ast.Subscript(value=A.copy_tree(base), slice=key,
                                                     ctx=ast.Store())], value=value))
    if e.args:
        arg = e.args[0]
        if isinstance(arg, ast.Dict) and all(k is not None for k in arg.keys):
            for k, v in zip(arg.keys, arg.values):
                store(k, v)
        elif isinstance(arg, ast.Name):
            k = A.load(key)
            body = [ast.Assign(targets=[ast.Subscript(value=A.copy_tree(base), slice=k,
                                                      ctx=ast.Store())],
                               value=ast.Subscript(value=A.copy_tree(arg), slice=k,
                                                   ctx=ast.Load()))]
            out.append(ast.For(target=A.store(key), iter=ast.Call(
                func=ast.Attribute(value=A.copy_tree(arg), attr="keys", ctx=ast.Load()),
                args=[], keywords=[]), body=body, orelse=[], type_comment=None))
        else:
            return None
    for k in e.keywords:
        store(A.const(k.arg), k.value)
    return out


def _dict_entries(e, resolved, key):
    """``d.items()`` -> ``[(k, d[k]) for k in d.keys()]``, ``d.values()`` -> ``[d[k] for
    k in d.keys()]`` (each value read by its key, so its adjoint goes to that entry), and
    ``sorted(d.items())`` (also ``key=operator.itemgetter(0)``, ``reverse=``) -> the pairs
    in the order of ``sorted(d.keys())``: keys are distinct, so pairs sort by their keys.
    A list where Python gives a view: the same for iterating, ``sorted``, ``list``,
    ``len``, ``sum``, ``zip``. None for other calls."""
    order = None
    if resolved is sorted and len(e.args) == 1 and isinstance(e.args[0], ast.Call):
        keywords = {k.arg: k.value for k in e.keywords}
        by = keywords.pop("key", None)
        if set(keywords) - {"reverse"} or by is not None and not (
                isinstance(by, ast.Call) and ast.unparse(by.func).endswith("itemgetter")
                and len(by.args) == 1 and isinstance(by.args[0], ast.Constant)
                and by.args[0].value == 0 and not by.keywords):
            return None
        order = [ast.keyword(arg="reverse", value=v) for v in keywords.values()]
        e = e.args[0]
        if _dict_entries(e, None, key) is None or e.func.attr != "items":
            return None
    elif resolved is not None:
        return None
    if not (isinstance(e.func, ast.Attribute) and e.func.attr in ("items", "values")
            and not e.args and not e.keywords and isinstance(e.func.value, ast.Name)):
        return None
    base = e.func.value
    keys = ast.Call(func=ast.Attribute(value=A.copy_tree(base), attr="keys",
                                       ctx=ast.Load()), args=[], keywords=[])
    if order is not None:
        keys = ast.Call(func=A.load("sorted"), args=[keys], keywords=order)
    value = ast.Subscript(value=A.copy_tree(base), slice=A.load(key), ctx=ast.Load())
    elt = value if e.func.attr == "values" else ast.Tuple(elts=[A.load(key), value],
                                                          ctx=ast.Load())
    return ast.ListComp(elt=elt, generators=[ast.comprehension(
        target=A.store(key), iter=keys, ifs=[], is_async=0)])


# --- flattening ------------------------------------------------------------------------

def _dict_names(body, unit):
    """Variables that only ever hold dicts built here (displays, comprehensions, dict()):
    a loop over one walks its keys."""
    stores = {}
    for n in A.walk_outside_defs(body):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                for sub in A.walk(t):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        is_dict = isinstance(t, ast.Name) and (
                            isinstance(n.value, (ast.Dict, ast.DictComp))
                            or isinstance(n.value, ast.Call)
                            and unit.resolve(n.value.func) is dict)
                        stores[sub.id] = stores.get(sub.id, True) and is_dict
        elif isinstance(n, (ast.AugAssign, ast.AnnAssign, ast.For)):
            for sub in A.walk(n.target):
                if isinstance(sub, ast.Name):
                    stores[sub.id] = False
    return {name for name, is_dict in stores.items() if is_dict}


def _frozen_call(e, unit, local_names, frozen=None):
    """A method call of a frozen SciPy distribution as the call of the distribution's own
    method with its parameters after the method's arguments: ``D(a, loc=m).m(x)`` is
    ``D.m(x, a, loc=m)``, as SciPy defines freezing, for a distribution object D of
    scipy.stats (``norm``, ``multivariate_normal``) whose method ``D.m`` has a rule.
    ``frozen``: name -> (D, args, keywords) of variables assigned once from ``D(...)``
    (`_partial_names`), so that ``rv.m(x)`` is rewritten too. None for other calls (and
    for a method's arguments by keyword, ``rv.m(x=v)``, which would land after the
    distribution's parameters)."""
    if not (isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute)) or e.keywords \
            or any(isinstance(a, ast.Starred) for a in e.args):
        return None
    base = e.func.value
    if isinstance(base, ast.Name) and frozen and base.id in frozen:
        dist, args, keywords = frozen[base.id]
    elif isinstance(base, ast.Call) and not any(isinstance(a, ast.Starred) for a in
                                                base.args) and all(
            k.arg is not None for k in base.keywords):
        dist, args, keywords = base.func, base.args, base.keywords
    else:
        return None
    obj = unit.resolve(dist, local_names)
    if not tree.type_module(obj).startswith("scipy.stats.") or not callable(obj) or \
            frontend._ruled_method(obj, e.func.attr) is None:
        return None
    return A.located(ast.Call(
        func=A.located(ast.Attribute(value=A.copy_tree(dist), attr=e.func.attr,
                                     ctx=ast.Load()), e.func),
        args=list(e.args) + A.copy_tree(list(args)), keywords=A.copy_tree(list(keywords))),
        e)


def _partial_names(body, unit, local_names):
    """Variables assigned once, from `functools.partial(...)`, and only ever called: each
    call `h(x)` is the call of the partial's function with its arguments (`h = partial(g,
    y=w); h(x)` is `g(x, y=w)`, w read where the partial is made). Likewise variables
    assigned once from a SciPy distribution ``rv = D(a)`` and only used as ``rv.m(x)``
    (`_frozen_call`)."""
    stores, loads, called = {}, {}, {}          # (A.name_uses, in the same walk)
    made = set()
    assigned, uses, calls, defs = {}, {}, [], []
    for n in A.walk_outside_defs(body):
        if isinstance(n, ast.Name):
            table = stores if isinstance(n.ctx, ast.Store) else loads
            table[n.id] = table.get(n.id, 0) + 1
        elif isinstance(n, ast.Call):
            if isinstance(n.func, ast.Name):
                called[n.func.id] = called.get(n.func.id, 0) + 1
            elif isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
                uses.setdefault(n.func.value.id, []).append(n)
        elif isinstance(n, ast.Assign):
            if (len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                    and isinstance(n.value, ast.Call)):
                assigned[n.targets[0].id] = n.value
                calls.append(n)
        elif isinstance(n, (ast.FunctionDef, ast.Lambda)):
            defs.append(n)
    for h, value in assigned.items():
        if h in uses and stores.get(h) == 1 and h not in unit.params and loads.get(h) == len(
                uses[h]) and all(_frozen_call(c, unit, local_names, {h: (
                    value.func, value.args, value.keywords)}) is not None for c in uses[h]) \
                and not any(isinstance(a, ast.Starred) for a in value.args) \
                and all(k.arg is not None for k in value.keywords):
            made.add(h)
    partials = set()
    for n in calls:
        if (unit.resolve(n.value.func, local_names) is functools.partial
                and n.value.args and not any(isinstance(a, ast.Starred)
                                             for a in n.value.args)
                and all(k.arg is not None for k in n.value.keywords)):
            partials.add(n.targets[0].id)
    nested = {n.id for d in defs for n in A.nodes(d)
              if isinstance(n, ast.Name)}                        # (not rewritten there)
    return (made | {h for h in partials if stores.get(h) == 1 and h not in unit.params
                    and loads.get(h, 0) == called.get(h, 0)}) - nested


class Flattener(LoopFlattening):
    """Split expressions so each statement does one special thing (see module doc)."""

    def __init__(self, unit, names, local_functions, local_names):
        self.unit = unit
        self.names = names
        self.local_functions = local_functions
        self.local_names = set(local_names) | set(unit.params)
        self.imported = set()        # names bound by imports inside the function
        self.out = []
        self.cur = unit.node
        self.callables = {}
        self.classes = {}
        self.namespaces = {}         # names holding an Array API namespace (xp.sum(x))

    def run(self, body):
        self.dict_names = _dict_names(body, self.unit)
        self.partial_names = _partial_names(body, self.unit, self.local_names)
        self.partials = {}
        self.frozen = {}
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

    # statements that carry no derivative pass through into the forward sweep as they
    # are (analysis.check_passthrough refuses those a derivative would flow through)
    def stmt_Global(self, s):
        """Kept where it is when the function assigns one of the names (the generated
        code runs in the user's module globals, over the user's closure cells), else
        dropped (a name only read is resolved like any other). analysis.check_passthrough
        refuses an assignment the derivative would have to follow."""
        if set(s.names) & self.local_names:
            self.emit(A.tag(s, forward_only=True))

    stmt_Nonlocal = stmt_Global

    def stmt_Import(self, s):
        for alias in s.names:
            name = (alias.asname or alias.name).split(".")[0]
            self.local_names.add(name)
            self.imported.add(name)
        self.emit(A.tag(s, forward_only=True))

    stmt_ImportFrom = stmt_Import

    def stmt_Delete(self, s):
        for t in s.targets:
            if isinstance(t, ast.Name):
                continue        # unbinding a local: the derivative code may still read it
            if not isinstance(t, (ast.Subscript, ast.Attribute)) or not isinstance(
                    t.value, ast.Name):
                raise self.error(f"unsupported construct: 'del' of {ast.unparse(t)}", s)
            self.emit(A.tag(A.located(ast.Delete(targets=[t]), s), forward_only=True,
                            sink=t.value.id))

    def stmt_With(self, s):
        """`with cm as v: body` -> `_with1 = cm`, `v = _with1.__enter__()`, body,
        `_with1.__exit__(None, None, None)`, all in one block: the forward sweep keeps the
        body's primal statements between them, and emit.build puts the `with` back
        (control_flow.rebuild_with)."""
        self.with_items(s, list(s.items))

    def with_items(self, s, items):
        if not items:
            for b in s.body:
                prev, self.cur = self.cur, b
                self.stmt(b)
                self.cur = prev
            return
        item = items[0]
        cm = self.names.fresh("_with")
        self.local_names.add(cm)
        self.emit(A.tag(A.assign(cm, self.inactive(item.context_expr)), with_enter=cm))
        enter = ast.Call(func=ast.Attribute(value=A.load(cm), attr="__enter__",
                                            ctx=ast.Load()), args=[], keywords=[])
        target = item.optional_vars
        if target is None:
            self.emit(A.tag(ast.Expr(value=enter), forward_only=True, with_value=cm))
        elif isinstance(target, ast.Name):
            self.local_names.add(target.id)
            self.emit(A.tag(A.assign(target.id, self.inactive(enter)), with_value=cm))
        else:
            raise self.error(f"unsupported construct: 'with ... as {ast.unparse(target)}' "
                             "(use one name)", s)
        self.with_items(s, items[1:])
        exit_ = ast.Call(func=ast.Attribute(value=A.load(cm), attr="__exit__",
                                            ctx=ast.Load()),
                         args=[A.const(None)] * 3, keywords=[])
        self.emit(A.tag(ast.Expr(value=exit_), forward_only=True, with_exit=cm))

    def stmt_Try(self, s):
        """A `try` is copied whole into the forward sweep, its blocks normalized; the
        transforms refuse it if a statement inside carries a derivative (which statements
        ran would depend on where an exception was raised)."""
        handlers = []
        for h in s.handlers:
            if h.name:
                self.local_names.add(h.name)
            prev, self.cur = self.cur, h
            handlers.append(A.located(ast.ExceptHandler(
                type=h.type and self.inactive(h.type), name=h.name,
                body=self.block(h.body) or [ast.Pass()]), h))
            self.cur = prev
        new = ast.Try(body=self.block(s.body) or [ast.Pass()], handlers=handlers,
                      orelse=self.block(s.orelse), finalbody=self.block(s.finalbody))
        self.emit(A.tag(new, forward_only=True))

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
        if (len(targets) == 1 and isinstance(targets[0], ast.Name)
                and targets[0].id in self.partial_names):
            # the partial's arguments are read here, its function is called at each call
            # (a frozen distribution's parameters likewise, `_frozen_call`)
            partial = self.unit.resolve(value.func, self.local_names) is functools.partial
            func = value.args[0] if partial else value.func
            # (into a name of its own: the variable may be assigned again before a call)
            def held(a):
                r = self.expr(a)
                return self.temp(r, "_arg") if isinstance(r, ast.Name) else self.bind(r, "_arg")
            args = [held(a) for a in value.args[partial:]]
            keywords = [ast.keyword(arg=k.arg, value=held(k.value)) for k in value.keywords]
            (self.partials if partial else self.frozen)[targets[0].id] = (func, args,
                                                                          keywords)
            return
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
            self.assign_to(t, A.copy_tree(r))

    def assign_to(self, target, value):
        if isinstance(target, ast.Name):
            self.local_names.add(target.id)
            self.emit(A.assign(target.id, value))
        elif isinstance(target, (ast.Tuple, ast.List)):
            v = self.bind(value)
            for k, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    raise self.error("unsupported construct '*' unpacking")
                sub = A.tag(ast.Subscript(value=A.copy_tree(v), slice=A.const(k),
                                          ctx=ast.Load()), special="subscript")
                self.assign_to(elt, sub)
        elif isinstance(target, ast.Subscript):
            self.store_subscript(target, self.bind(value))
        elif isinstance(target, ast.Attribute):
            # obj.name = atom: a store into an object's field (its adjoint and tangent
            # are dicts keyed by attribute name), seen by the transforms like d[k] = v
            value = self.bind(value)
            chain = self.subscript_chain(target.value)
            base = chain[-1][2] if chain else self.atom(target.value)
            self.emit(ast.Assign(targets=[ast.Attribute(value=A.copy_tree(base),
                                                        attr=target.attr, ctx=ast.Store())],
                                 value=value))
            self.store_back(chain)
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
        sub = ast.Subscript(value=A.copy_tree(base), slice=self.index_expr(target.slice),
                            ctx=ast.Store())
        self.emit(A.tag(ast.Assign(targets=[sub], value=atom)))
        self.store_back(chain)

    def store_back(self, chain):
        """`X[i] = _held` (`X.name = _held`) for each holder of `subscript_chain`,
        innermost first."""
        for parent, index, held in reversed(chain):
            if isinstance(index, str):              # an attribute
                back = ast.Attribute(value=A.copy_tree(parent), attr=index,
                                     ctx=ast.Store())
            else:
                back = ast.Subscript(value=A.copy_tree(parent),
                                     slice=A.copy_tree(index), ctx=ast.Store())
            self.emit(A.tag(ast.Assign(targets=[back], value=A.copy_tree(held)),
                            writeback=True))

    def subscript_chain(self, holder):
        """For a store target's holder `X[i][j]` (or `X.a[i]`, `X[i].a`: fields of objects
        hold too): read X, X[i], X[i][j] into names once; [(parent atom, index or
        attribute name, holder name), ...] outermost first (empty for a plain name)."""
        from .rules.containers import ARRAY_ATTRIBUTES
        if isinstance(holder, ast.Attribute) and holder.attr not in ARRAY_ATTRIBUTES and \
                self.unit.resolve(holder, self.local_names) is None:      # a field
            chain = self.subscript_chain(holder.value)
            parent = chain[-1][2] if chain else self.atom(holder.value)
            held = self.temp(A.tag(ast.Attribute(value=A.copy_tree(parent),
                                                 attr=holder.attr, ctx=ast.Load()),
                                   special="attr"), base="_held")
            A.tag(self.out[-1], holder=True)
            return chain + [(parent, holder.attr, held)]
        if not (isinstance(holder, ast.Subscript) and not (
                isinstance(holder.value, ast.Attribute) and holder.value.attr in SHAPE_ATTRS)):
            return []
        chain = self.subscript_chain(holder.value)
        parent = chain[-1][2] if chain else self.atom(holder.value)
        index = self.index_expr(holder.slice)
        held = self.temp(A.tag(ast.Subscript(value=A.copy_tree(parent),
                                             slice=A.copy_tree(index), ctx=ast.Load()),
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
            old = self.temp(A.tag(ast.Subscript(value=A.copy_tree(base), slice=index,
                                                ctx=ast.Load()), special="subscript"))
            new = self.bind(self.expr(A.located(ast.BinOp(left=old, op=s.op, right=s.value),
                                                s)))
            sub = ast.Subscript(value=A.copy_tree(base), slice=A.copy_tree(index),
                                ctx=ast.Store())
            self.emit(A.tag(ast.Assign(targets=[sub], value=new)))
            self.store_back(chain)
        elif isinstance(t, ast.Attribute):         # obj.name op= e: read, compute, store
            base = self.atom(t.value)
            old = self.temp(A.tag(ast.Attribute(value=A.copy_tree(base), attr=t.attr,
                                                ctx=ast.Load()), special="attr"))
            new = self.bind(self.expr(A.located(ast.BinOp(left=old, op=s.op, right=s.value),
                                                s)))
            self.emit(ast.Assign(targets=[ast.Attribute(value=A.copy_tree(base),
                                                        attr=t.attr, ctx=ast.Store())],
                                 value=new))
        else:
            raise self.error("unsupported construct: augmented assignment to "
                             f"'{type(t).__name__}'")

    def stmt_Expr(self, s):
        v = s.value
        if isinstance(v, ast.Constant):
            return                                   # docstring or bare constant
        if not isinstance(v, ast.Call):
            return                                   # a bare expression has no effect
        stores = _update_stores(v, self.names.fresh("_key")) if self.unit.resolve(
            v.func, self.local_names) is None else None
        if stores is not None:                       # d.update(...): one store per entry
            for st in stores:
                self.stmt(A.located(st, s))
            return
        sink = self.sink_method(v)
        if sink is not None:
            self._check_expr(v)
            self.emit(A.tag(ast.Expr(value=A.tag(v, inactive=True)), forward_only=True,
                            sink=sink))
            return
        r = self.expr(v)
        if A.get_tag(r, "inactive"):
            self.emit(A.tag(ast.Expr(value=r), forward_only=True))
        elif A.get_tag(r, "special") == "method":
            self.emit(ast.Expr(value=r))
        else:
            self.temp(r)

    def sink_method(self, call):
        """For a call statement `obj.m(...)` whose result is dropped, of a method transpile
        has no rule for that changes nothing it is passed (`ax.plot(x, y)`,
        `logger.info(...)`, `fh.write(...)`, `sys.stdout.write(...)`): the name of the
        local object (or "" for a global one), else None. Such a call is copied as it is
        and reads primal values; `analysis.check_passthrough` refuses it on an object
        that carries a derivative or that is read elsewhere."""
        from .analysis import MUTATING_METHODS, WRITES_FIRST_ARGUMENT
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr in MUTATING_METHODS or \
                func.attr in WRITES_FIRST_ARGUMENT or func.attr.startswith("__"):
            return None
        root = func.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Call) and root is func.value and self.classify(root)[0] == \
                "inactive" and not any(isinstance(n, ast.Name) and n.id in
                                       self.local_functions for n in A.nodes(call)):
            return ""                       # `logging.getLogger(name).info(...)`
        if not isinstance(root, ast.Name) or self.unit.resolve(func, self.local_names) \
                is not None:
            return None
        if any(isinstance(n, ast.Name) and n.id in self.local_functions
               for n in A.nodes(call)) or any(isinstance(a, ast.Starred) for a in call.args) \
                or any(k.arg is None for k in call.keywords):
            return None
        if root.id in self.local_names:
            return root.id                  # `ax.plot(...)`, `self.logger.info(...)`
        obj = self.unit.resolve(func.value, self.local_names)
        if obj is None or inspect.ismodule(obj) or isinstance(obj, type):
            return None
        return ""

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
        test = A.copy_tree(test)
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
        for n in A.walk(e):
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
        if isinstance(e.op, ast.Mod) and (isinstance(e.left, ast.JoinedStr) or isinstance(
                e.left, ast.Constant) and isinstance(e.left.value, str)):
            return self.inactive(e)                  # `"%s" % x`: a string
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
        if not items or any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                            for n in items):
            return None                       # directives: left to NumPy
        module = None
        used = ("concatenate", "atleast_1d", "column_stack", "arange", "linspace")
        base = self.unit.resolve(e.value.value, self.local_names) if isinstance(
            e.value, ast.Attribute) else None
        if base is numpy or isinstance(base, types.ModuleType) and all(
                getattr(base, fn, None) is getattr(numpy, fn) for fn in used):
            module = e.value.value            # numpy, or a module re-exporting it
        else:
            name = next((k for k, v in self.unit.globals.items() if v is numpy
                         and k not in self.local_names and k.isidentifier()), None)
            module = A.load(name) if name is not None else None
        if module is None:
            return None

        def np_call(fn, args, keywords=()):
            return ast.Call(func=ast.Attribute(value=A.copy_tree(module), attr=fn,
                                               ctx=ast.Load()), args=args,
                            keywords=list(keywords))

        def ranged(item):
            """A slice as NumPy's index tricks read it: arange(start, stop, step), or for
            an imaginary step (`0:1:5j`) linspace(start, stop, 5)."""
            if not isinstance(item, ast.Slice):
                return item
            start = item.lower if item.lower is not None else A.const(0)
            step = item.step
            if isinstance(step, ast.Constant) and isinstance(step.value, complex):
                return np_call("linspace", [start, item.upper, A.const(int(abs(step.value)))])
            return np_call("arange", [start, item.upper] + ([step] if step is not None else []))
        if any(isinstance(n, ast.Slice) and (n.upper is None or isinstance(
                n.step, ast.Constant) and isinstance(n.step.value, complex) and n.step.value.real)
               for n in items):
            return None
        items = [ranged(item) for item in items]
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
                for n in A.nodes(index)):
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
        if any(isinstance(x, ast.Starred) for x in e.elts) and all(
                not isinstance(x, ast.Starred) or isinstance(x.value, ast.Attribute)
                and x.value.attr == "shape" for x in e.elts):
            return self.inactive(e)             # (*x.shape, 2): a shape
        for x in e.elts:
            if isinstance(x, ast.Starred):
                raise self.error("unsupported construct '*' unpacking", x)
        return A.tag(kind(elts=[self.atom(x) for x in e.elts], ctx=ast.Load()),
                     special="display")

    def expr_Dict(self, e):
        if any(k is None for k in e.keys):                # {**d, ...}
            return A.tag(e, special="opaque", opaque="dict display with ** unpacking")
        keys = [self.atom(k) for k in e.keys]
        return A.tag(ast.Dict(keys=[A.tag(k, inactive=True) if isinstance(k, ast.Name)
                                    else k for k in keys],
                              values=[self.atom(v) for v in e.values]), special="dict")

    def dict_call(self, e):
        """``dict(a=x)`` -> ``{"a": x}``, ``dict()`` -> ``{}``, ``dict(zip(ks, vs))`` and
        ``dict(d)`` -> comprehensions; None for other calls of dict."""
        if self.unit.resolve(e.func, self.local_names) is not dict or any(
                k.arg is None for k in e.keywords) or len(e.args) > 1:
            return None
        shown = ast.Dict(keys=[A.const(k.arg) for k in e.keywords],
                         values=[k.value for k in e.keywords])
        if not e.args:
            return shown
        arg = e.args[0]
        k, v = self.names.fresh("_key"), self.names.fresh("_value")
        pairs = arg.elts if isinstance(arg, (ast.List, ast.Tuple)) else None
        if pairs is not None and all(isinstance(p, (ast.Tuple, ast.List)) and len(
                p.elts) == 2 for p in pairs):        # dict([("a", x), ...], b=y)
            return ast.Dict(keys=[p.elts[0] for p in pairs] + shown.keys,
                            values=[p.elts[1] for p in pairs] + shown.values)
        if isinstance(arg, (ast.Dict, ast.DictComp)) and not e.keywords:
            return arg                                # a new dict already
        if isinstance(arg, ast.Call) and self.unit.resolve(arg.func, self.local_names) \
                is zip and len(arg.args) == 2 and not arg.keywords:
            gen = ast.comprehension(target=ast.Tuple(elts=[A.store(k), A.store(v)],
                                                     ctx=ast.Store()),
                                    iter=arg, ifs=[], is_async=0)
            value = A.load(v)
        elif isinstance(arg, ast.Name) and arg.id in self.dict_names:
            gen = ast.comprehension(target=A.store(k), iter=arg, ifs=[], is_async=0)
            value = ast.Subscript(value=A.copy_tree(arg), slice=A.load(k), ctx=ast.Load())
        else:
            return None
        comp = A.located(ast.DictComp(key=A.load(k), value=value, generators=[gen]), e)
        if not e.keywords:
            return comp
        made = self.names.fresh("_dict")
        self.emit(A.assign(made, self.expr(comp)))
        for key, val in zip(shown.keys, shown.values):
            self.store_subscript(ast.Subscript(value=A.load(made), slice=key,
                                               ctx=ast.Store()), self.atom(val))
        return A.load(made)

    def expr_Set(self, e):
        return A.tag(e, special="opaque", opaque="set display")


    def expr_Lambda(self, e):
        raise self.error("unsupported construct: a lambda used as a value (assign it to a "
                         "name or use def)", e)

    def expr_Starred(self, e):
        raise self.error("unsupported construct '*' unpacking", e)


    def expr_Call(self, e):
        e = _frozen_call(e, self.unit, self.local_names, self.frozen) or e
        if isinstance(e.func, ast.Name) and e.func.id in self.partials:
            func, args, keywords = self.partials[e.func.id]
            given = {k.arg for k in e.keywords}
            e = A.located(ast.Call(func=A.copy_tree(func), args=A.copy_tree(args) + list(
                e.args), keywords=[k for k in A.copy_tree(keywords) if k.arg not in given]
                + list(e.keywords)), e)
        unpacks = any(isinstance(a, ast.Starred) for a in e.args) or any(
            k.arg is None for k in e.keywords)
        if (self.unit.resolve(e.func, self.local_names) in (max, min) and e.args
                and [k.arg for k in e.keywords] == ["key"]):
            return self.best_with_key(e)
        if (self.unit.resolve(e.func, self.local_names) is sorted and len(e.args) == 1
                and "key" in [k.arg for k in e.keywords]
                and {k.arg for k in e.keywords} <= {"key", "reverse"}):
            return self.sorted_with_key(e)
        if isinstance(e.func, ast.Attribute) and isinstance(e.func.value, ast.Constant) \
                and isinstance(e.func.value.value, str):
            return self.inactive(e)                  # `"{}".format(x)`: a string
        root = e.func
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in self.imported:
            # what the import binds is not known before it runs: no rule is found for it
            return A.tag(ast.Call(func=e.func, args=[self.atom(a) for a in e.args],
                                  keywords=[ast.keyword(arg=k.arg, value=self.atom(k.value))
                                            for k in e.keywords]),
                         special="opaque", opaque=f"{ast.unparse(e.func)}' (imported inside "
                                                  "the function: import it at module level)")
        made = self.dict_call(e)
        if made is not None:
            return self.expr(A.located(made, e))
        resolved = self.unit.resolve(e.func, self.local_names)
        got = _dict_get(e) if resolved is None else None
        if got is not None:                      # d.get(k, default): read if there
            return self.expr(A.located(got, e))
        entries = _dict_entries(e, resolved, self.names.fresh("_key"))
        if entries is not None:                  # d.items(), d.values() as values
            return self.expr(A.located(entries, e))
        kind, target = self.classify(e)
        if kind == "inactive":
            return self.inactive(e)
        if kind == "bound":                # obj.method(x): Class.method(obj, x)
            holder, target = target
            e = A.located(ast.Call(func=A.located(ast.Attribute(
                value=A.load(holder), attr=e.func.attr, ctx=ast.Load()), e.func),
                args=[A.copy_tree(e.func.value)] + list(e.args), keywords=list(
                    e.keywords)), e)
            kind = "user"
        if kind == "primitive" and unpacks:
            kind = "dynamic"              # `fun(*args)` with a rule: bound when it runs
        if kind == "user" and (unpacks or _takes_star(target)):
            kind = "dynamic"              # bound to the parameters when it runs (calls.py)
        if unpacks and kind == "method" and e.func.attr in ("reshape", "transpose") and \
                not e.keywords:           # x.reshape(n, *shape): the shape as one tuple
            e = A.located(ast.Call(func=e.func, args=[self.inactive(ast.Tuple(
                elts=list(e.args), ctx=ast.Load()))], keywords=[]), e)
            unpacks = False
        if unpacks and kind not in ("dynamic", "opaque"):
            where = ([a for a in e.args if isinstance(a, ast.Starred)]
                     + [k for k in e.keywords if k.arg is None])[0]
            raise self.error(f"unsupported construct '*' or '**' unpacking in a call of "
                             f"{ast.unparse(e.func)}", where)
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
            shape_only = _shape_only(target)
            args = [self.inactive(a) if isinstance(a, ast.Lambda) or i in shape_only
                    else self.operand(a)           # a lambda argument (a hook) is data
                    for i, a in enumerate(positional)]
            if target in VARIADIC and len(args) > 2:
                acc = args[0]
                for a in args[1:]:
                    acc = A.tag(ast.Call(func=A.copy_tree(e.func), args=[acc, a],
                                         keywords=[]), rule=lookup(target, 2))
                return acc
            return A.tag(ast.Call(func=e.func, args=args, keywords=keywords),
                         rule=lookup(target, len(args)))
        if kind == "container" and target is builtins.sum:
            e = copy.copy(e)
            e.args, e.keywords = _place_keywords(target, list(e.args), list(e.keywords),
                                                 ("iterable", "start"))
        if kind == "dynamic":
            return self.dynamic_call(e)
        args = [ast.Starred(value=self.atom(a.value), ctx=ast.Load())
                if isinstance(a, ast.Starred) else self.atom(a) for a in e.args]
        keywords = [ast.keyword(arg=k.arg, value=self.atom(k.value)) for k in e.keywords]
        if kind == "method":
            base = self.atom(e.func.value)
            func = ast.Attribute(value=base, attr=e.func.attr, ctx=ast.Load())
            call = ast.Call(func=func, args=args, keywords=keywords)
            if e.func.attr == "keys" and not args and not keywords:
                return self.inactive(call)        # a dict's keys carry no derivative
            return A.tag(call, special="method", method=e.func.attr)
        call = ast.Call(func=e.func, args=args, keywords=keywords)
        if kind == "user":
            extras = getattr(target, "extra_params", ())
            for x in extras:
                call.keywords.append(ast.keyword(arg=x, value=A.load(x)))
            call = A.tag(call, special="user", user=target)
            if _generator_function(target):      # its items, as a list (see _collecting)
                return A.tag(ast.Call(func=A.load("list"), args=[self.temp(call)],
                                      keywords=[]), special="container", container=list)
            return call
        if kind == "container":
            return A.tag(call, special="container", container=target)
        return A.tag(call, special="opaque", opaque=target if target is not None
                     else ast.unparse(e.func))

    def dynamic_call(self, e):
        """`f(x)` where f is a value (a parameter, a list element, `acts[name]`,
        `model.forward`): the callee becomes an atom (or `atom.method`), evaluated before
        the arguments as Python does; the call is differentiated through the function
        the value holds when it runs (calls.py)."""
        func = e.func
        if isinstance(func, ast.Attribute):
            func = ast.Attribute(value=self.atom(func.value), attr=func.attr, ctx=ast.Load())
        elif not isinstance(func, ast.Name):
            func = self.bind(self.expr(func), "_f")
        args = [ast.Starred(value=self.atom(a.value), ctx=ast.Load())
                if isinstance(a, ast.Starred) else self.atom(a) for a in e.args]
        keywords = [ast.keyword(arg=k.arg, value=self.atom(k.value)) for k in e.keywords]
        return A.tag(ast.Call(func=func, args=args, keywords=keywords), special="dynamic")

    def sorted_with_key(self, e):
        """`sorted(xs, key=f)` -> `_order = sorted(range(len(xs)), key=lambda i:
        f(xs[i]))`, then `[xs[i] for i in _order]`: the same (stable) order, the elements
        read by index (so each one's derivative goes back to where it came from)."""
        seq = self.atom_seq(e.args[0], self.out)
        if isinstance(seq, ast.Name) and seq.id in self.dict_names:
            seq = self.temp(A.tag(ast.Call(func=A.load("list"), args=[seq], keywords=[]),
                                  special="container", container=list))
        i = self.names.fresh("_i")
        keywords = {k.arg: k.value for k in e.keywords}
        key = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=i)],
                                            vararg=None, kwonlyargs=[], kw_defaults=[],
                                            kwarg=None, defaults=[]),
                         body=ast.Call(func=A.copy_tree(keywords["key"]), args=[
                             ast.Subscript(value=A.copy_tree(seq), slice=A.load(i),
                                           ctx=ast.Load())], keywords=[]))
        order = ast.Call(func=A.copy_tree(e.func), args=[ast.Call(
            func=A.load("range"), args=[self.len_of(seq)], keywords=[])],
            keywords=[ast.keyword(arg="key", value=key)] + (
                [ast.keyword(arg="reverse", value=keywords["reverse"])]
                if "reverse" in keywords else []))
        name = self.names.fresh("_order")
        self.emit(A.assign(name, self.inactive(A.located(order, e))))
        j = self.names.fresh("_j")
        comp = ast.ListComp(elt=ast.Subscript(value=A.copy_tree(seq), slice=A.load(j),
                                              ctx=ast.Load()),
                            generators=[ast.comprehension(target=A.store(j),
                                                          iter=A.load(name), ifs=[],
                                                          is_async=0)])
        return self.expr(A.located(comp, e))

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
                         body=ast.Call(func=A.copy_tree(e.keywords[0].value), args=[
                             ast.Subscript(value=A.copy_tree(seq), slice=A.load(i),
                                           ctx=ast.Load())], keywords=[]))
        best = ast.Call(func=A.copy_tree(e.func), args=[ast.Call(
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
        if isinstance(func, ast.Name) and func.id in self.callables:
            return self.classify_object(self.callables[func.id], nargs, call)
        if isinstance(func, ast.Attribute) and _root_name(func) in self.namespaces:
            obj = _namespace_attribute(self.namespaces[_root_name(func)], func)
            return ("opaque", ast.unparse(func)) if obj is None else \
                self.classify_object(obj, nargs, call)
        if isinstance(func, ast.Attribute) and func.attr == "__array_namespace__":
            return "inactive", None                   # x.__array_namespace__()
        if isinstance(func, ast.Name) and func.id in self.local_names:
            return "dynamic", None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                func.value.id in self.classes:
            method = self.static_method(self.classes[func.value.id], func.attr)
            if method is not None:
                return "bound", method
        if isinstance(func, ast.Attribute) and self.unit.resolve(func, self.local_names) is None:
            return ("method" if func.attr in VALUE_METHODS else "dynamic"), None
        obj = self.unit.resolve(func, self.local_names)
        if obj is None:
            if isinstance(func, (ast.Subscript, ast.Call)):
                return "dynamic", None                # acts[name](x), make(f)(x)
            return "opaque", ast.unparse(func)
        return self.classify_object(obj, nargs, call)

    def static_method(self, cls, name):
        """cls's function `name` when it is a plain method (a def in the class or a base,
        or a Differentiable there) and cls is named by a global of this module; else None
        (the call goes through the value)."""
        attr = inspect.getattr_static(cls, name, None)
        fn = getattr(attr, "__transpile_function__", attr)
        if not inspect.isfunction(fn) or getattr(fn, "__transpile_derivative__", False):
            return None
        if "__getattr__" in dir(cls) or "__getattribute__" in vars(cls) or any(
                "__getattribute__" in vars(c) for c in cls.__mro__[:-1]):
            return None
        holder = self.class_name(cls)
        return None if holder is None else (holder, fn)

    def class_name(self, cls):
        """A global of the unit's module naming cls, or None."""
        if self.unit.globals.get(cls.__name__) is cls and cls.__name__ not in self.local_names:
            return cls.__name__
        return next((k for k, v in self.unit.globals.items() if v is cls and
                     k.isidentifier() and k not in self.local_names), None)

    def classify_object(self, obj, nargs, call):
        """classify for a call of the object obj (resolved statically)."""
        if getattr(obj, "__transpile_code__", None) is not None:   # a gradient made outside
            from .higher import NestedDerivative
            return "user", NestedDerivative(obj, None)
        obj = getattr(obj, "__transpile_function__", obj)
        if _is_sink(obj) or is_namespace_getter(obj):
            return "inactive", obj
        if obj in (max, min) and nargs == 1 or obj in CONTAINER_FUNCS:
            return "container", obj
        if obj in VARIADIC and nargs > 2:
            return "primitive", obj               # folded into nested 2-argument calls
        rule = lookup(obj, nargs)
        if rule is not None:
            return ("inactive" if rule.zero else "primitive"), obj
        if inspect.isfunction(obj):
            if not frontend.is_user_code(obj.__code__, own_is_library=False):
                return "opaque", frontend.LibraryFunction(obj)
            return "user", obj
        if isinstance(obj, types.MethodType) and inspect.isfunction(getattr(
                obj.__func__, "__transpile_function__", obj.__func__)) or isinstance(
                obj, functools.partial) or not isinstance(obj, type) and inspect.isfunction(
                getattr(type(obj), "__call__", None)):
            return "dynamic", None           # a bound method, partial or callable object
        return "opaque", obj
