"""Small helpers for building and inspecting Python ASTs (shared by every pass)."""
import ast
import collections
import copy
import sys


def load(name):
    return ast.Name(id=name, ctx=ast.Load())


def store(name):
    return ast.Name(id=name, ctx=ast.Store())


def const(value):
    return ast.Constant(value=value)


def assign(target, value, like=None):
    """`target = value`; target may be a name (str) or an AST target."""
    if isinstance(target, str):
        target = store(target)
    node = ast.Assign(targets=[target], value=value, type_comment=None)
    if like is not None:
        ast.copy_location(node, like)
    return node


# Values copy.deepcopy returns as they are; and the context and operator nodes (Load,
# Add...), which have no fields and are shared by the trees ast.parse makes: a copy keeps
# them shared instead of making new ones
_ATOMIC = frozenset({int, float, bool, complex, str, bytes, type(None), type(Ellipsis)} | {
    c for base in (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    for c in base.__subclasses__()})


def copy_tree(x, memo=None):
    """copy.deepcopy(x) for ASTs (nodes, lists of them, their line numbers and tags),
    several times faster: nodes are rebuilt from their attributes directly, the same
    memo keeps shared nodes shared, and anything else is handed to copy.deepcopy."""
    if memo is None:
        memo = {}
    y = memo.get(id(x))
    if y is not None:
        return y
    cls = x.__class__
    if cls in _ATOMIC or cls is _Ref:
        return x
    if cls is list:
        y = memo[id(x)] = []
        for v in x:
            y.append(v if v.__class__ in _ATOMIC else copy_tree(v, memo))
        return y
    if isinstance(x, ast.AST) and not hasattr(cls, "__deepcopy__"):
        y = memo[id(x)] = cls.__new__(cls)
        d = y.__dict__
        for k, v in x.__dict__.items():
            d[k] = v if v.__class__ in _ATOMIC else copy_tree(v, memo)
        return y
    return copy.deepcopy(x, memo)


_LOCATION = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def located(node, like):
    """Give node (and its children without one) the line of `like`."""
    if like is not None and hasattr(like, "lineno"):
        where = _location_of(like)
        located_kinds = (ast.stmt, ast.expr)
        todo = [node]           # (the walk of `nodes`, inline: this runs per statement)
        pop, push, AST, fields_of = todo.pop, todo.append, ast.AST, _CHILD_FIELDS
        while todo:
            n = pop()
            if "lineno" not in n.__dict__ and isinstance(n, located_kinds):
                for attr, value in where:
                    setattr(n, attr, value)
            cls = n.__class__
            fields = fields_of.get(cls)
            for f in (_child_fields(cls) if fields is None else fields):
                v = getattr(n, f, None)
                if v.__class__ is list:
                    for x in v:
                        if isinstance(x, AST):
                            push(x)
                elif isinstance(v, AST):
                    push(v)
        if isinstance(node, located_kinds):
            ast.copy_location(node, like)
    return node


def _location_of(like):
    """What ast.copy_location copies from `like` onto a statement or expression."""
    return [(attr, getattr(like, attr, None)) for attr in _LOCATION
            if attr in like._attributes and (getattr(like, attr, None) is not None or (
                hasattr(like, attr) and attr.startswith("end_")))]


def lambda_def(name, lam, like=None):
    """`def name(<lam's args>): return <lam's body>`, at lam's (or like's) line."""
    fdef = ast.FunctionDef(name=name, args=lam.args, body=[located(ast.Return(lam.body), lam)],
                           decorator_list=[], returns=None, type_comment=None)
    return located(fdef, like if like is not None else lam)


def parse_stmts(src):
    return ast.parse(src).body


# Fields that never hold a node worth visiting: identifiers, flags, and the singleton
# context and operator nodes (no children, and no names)
_NOT_CHILDREN = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "type_comment", "kind",
                           "level", "module", "conversion", "is_async", "simple"})
_CHILD_FIELDS = {ast.Constant: ()}       # AST class -> its fields that may hold nodes


def _child_fields(cls):
    fields = _CHILD_FIELDS.get(cls)
    if fields is None:
        fields = _CHILD_FIELDS[cls] = tuple(f for f in cls._fields if f not in _NOT_CHILDREN)
    return fields


def nodes(node):
    """Every node inside node (node included) but the context and operator singletons, in
    no particular order: ast.walk for collecting, at a fraction of its cost."""
    todo = [node]
    pop, push, AST = todo.pop, todo.append, ast.AST
    fields_of = _CHILD_FIELDS
    while todo:
        n = pop()
        yield n
        cls = n.__class__
        fields = fields_of.get(cls)
        for f in (_child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)


def children(node, leaves=True):
    """ast.iter_child_nodes(node) as a list (the same nodes in the same order), faster;
    without the context and operator singletons unless `leaves`."""
    out = []
    AST = ast.AST
    for f in (node._fields if leaves else _child_fields(node.__class__)):
        v = getattr(node, f, None)
        if isinstance(v, AST):
            out.append(v)
        elif v.__class__ is list:
            for x in v:
                if isinstance(x, AST):
                    out.append(x)
    return out


def walk(node):
    """ast.walk(node): the same nodes in the same order (breadth first), faster."""
    todo = collections.deque([node])
    pop, extend = todo.popleft, todo.extend
    while todo:
        n = pop()
        extend(children(n))
        yield n


_DUMP_EMPTY = sys.version_info < (3, 13)     # 3.13's ast.dump leaves out [] and None


def dumps(node, out=None):
    """{id(n): ast.dump(n)} for node and every node inside it, built bottom up (each
    node's text from its children's) instead of one ast.dump per node."""
    out = {} if out is None else out
    _dump_text(node, out)
    return out


# (The recursive helpers of this module are module functions, not closures: a closure
# calling itself is a reference cycle, which holds what it closes over, trees included,
# until the garbage collector runs.)
_DUMP_KEEP = (ast.Constant, getattr(ast, "MatchSingleton", ast.Constant))


def _dump_text(v, out):
    """ast.dump's text of v (a node, a list, a value); each node's put in out by id."""
    if isinstance(v, ast.AST):
        cls = v.__class__
        args = []
        for name in v._fields:
            try:
                value = getattr(v, name)
            except AttributeError:
                continue
            if value is None and getattr(cls, name, ...) is None:
                continue
            if not _DUMP_EMPTY and (value is None or value == []) and not isinstance(
                    v, _DUMP_KEEP):
                continue
            args.append(f"{name}={_dump_text(value, out)}")
        out[id(v)] = t = f"{cls.__name__}({', '.join(args)})"
        return t
    if isinstance(v, list):
        return f"[{', '.join([_dump_text(x, out) for x in v])}]" if v else "[]"
    return repr(v)


_LEAF_NAMES = frozenset(c.__name__ for base in (ast.expr_context, ast.operator, ast.unaryop,
                                                  ast.cmpop, ast.boolop)
                        for c in (base, *base.__subclasses__()))
_LEAF_FIELDS = frozenset({"ctx", "op", "ops"})      # they hold nothing but those


class Transformer(ast.NodeTransformer):
    """ast.NodeTransformer with the same visits and results, faster: children without
    iter_fields' generators, and the context and operator singletons (whose visit changes
    nothing) not visited unless the transformer has a visitor for one of them."""

    def generic_visit(self, node):
        AST = ast.AST
        cls = self.__class__
        skip = cls.__dict__.get("_skip_fields")
        if skip is None:
            visits_leaves = any(name.startswith("visit_") and name[6:] in _LEAF_NAMES
                                for klass in cls.__mro__ for name in vars(klass))
            skip = cls._skip_fields = frozenset() if visits_leaves else _LEAF_FIELDS
        for field in node._fields:
            if field in skip:
                continue
            try:
                old = getattr(node, field)
            except AttributeError:
                continue
            if isinstance(old, list):
                new = []
                for value in old:
                    if isinstance(value, AST):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, AST):
                            new.extend(value)
                            continue
                    new.append(value)
                old[:] = new
            elif isinstance(old, AST):
                node_ = self.visit(old)
                if node_ is None:
                    delattr(node, field)
                else:
                    setattr(node, field, node_)
        return node


def fix_missing_locations(node):
    """ast.fix_missing_locations(node): the same locations, set in the same order (depth
    first, so a node reached twice keeps the first), without recursion or generators."""
    return _place(node, None)


def placed(node, like):
    """fix_missing_locations(located(node, like)) in one walk: each statement and
    expression without a line gets `like`'s location, then every node still missing one
    its parent's."""
    if like is None or not hasattr(like, "lineno"):
        return fix_missing_locations(node)
    if isinstance(node, (ast.stmt, ast.expr)):  # (located's last step: the same values
        ast.copy_location(node, like)           # whether it comes first or last)
    return _place(node, _location_of(like))


def _place(node, where):
    """The walk of fix_missing_locations; with `where` (attribute, value pairs), a
    statement or expression without a line takes those first (`placed`)."""
    todo = [(node, 1, 0, 1, 0)]
    pop, push = todo.pop, todo.append
    leaves = _LEAF_NAMES
    located_kinds = (ast.stmt, ast.expr)
    while todo:
        n, lineno, col_offset, end_lineno, end_col_offset = pop()
        attributes = n._attributes
        if attributes:
            if where is not None and "lineno" not in n.__dict__ and isinstance(
                    n, located_kinds):
                for attr, value in where:
                    setattr(n, attr, value)
            if "lineno" in attributes:
                if not hasattr(n, "lineno"):
                    n.lineno = lineno
                else:
                    lineno = n.lineno
            if "end_lineno" in attributes:
                if getattr(n, "end_lineno", None) is None:
                    n.end_lineno = end_lineno
                else:
                    end_lineno = n.end_lineno
            if "col_offset" in attributes:
                if not hasattr(n, "col_offset"):
                    n.col_offset = col_offset
                else:
                    col_offset = n.col_offset
            if "end_col_offset" in attributes:
                if getattr(n, "end_col_offset", None) is None:
                    n.end_col_offset = end_col_offset
                else:
                    end_col_offset = n.end_col_offset
        elif n.__class__.__name__ in leaves:
            continue
        for child in reversed(children(n, False)):     # (leaves: nothing to place)
            push((child, lineno, col_offset, end_lineno, end_col_offset))
    return node


def names_loaded(node):
    """Names read anywhere inside node (the target of `v += e` is read too)."""
    return name_sets(node)[0]


def names_stored(node):
    """Names assigned or deleted anywhere inside node."""
    return name_sets(node)[1]


def name_sets(node):
    """(names_loaded(node), names_stored(node)), in one pass over node."""
    loaded, stored = set(), set()
    todo = [node]
    pop, push, AST, Name, Load = todo.pop, todo.append, ast.AST, ast.Name, ast.Load
    fields_of = _CHILD_FIELDS
    while todo:
        n = pop()
        cls = n.__class__
        if cls is Name:
            (loaded if n.ctx.__class__ is Load else stored).add(n.id)
            continue
        if cls is ast.AugAssign and n.target.__class__ is Name:
            loaded.add(n.target.id)
        fields = fields_of.get(cls)
        for f in (_child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)
    return loaded, stored


def substitute(expr, mapping, renames=None):
    """Copy of expr with each Name in mapping replaced by (a copy of) its AST; the names of
    `renames` not in mapping (loads and stores) renamed, in the same pass."""
    return _substituted(copy_tree(expr), mapping, renames or {})


def _substituted(node, mapping, renames):
    """substitute's rewrite of node, in place (an ast.NodeTransformer's visit, without
    dispatch)."""
    if node.__class__ is ast.Name:
        if node.id in mapping and isinstance(node.ctx, ast.Load):
            return copy_tree(mapping[node.id])
        if node.id in renames and node.id not in mapping:
            node.id = renames[node.id]
        return node
    AST = ast.AST
    for field in node._fields:
        try:
            old = getattr(node, field)
        except AttributeError:
            continue
        if isinstance(old, list):
            old[:] = [_substituted(v, mapping, renames) if isinstance(v, AST) else v
                      for v in old]
        elif isinstance(old, AST):
            setattr(node, field, _substituted(old, mapping, renames))
    return node


def rename(node, mapping):
    """Rename variables (loads and stores) in place."""
    for n in nodes(node):
        if isinstance(n, ast.Name) and n.id in mapping:
            n.id = mapping[n.id]
    return node


def is_atom(expr):
    return isinstance(expr, (ast.Name, ast.Constant))


class _Ref:
    """A tag value: shared, never deep-copied along with the AST it annotates."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo):
        return self


# Every tag the passes put on AST nodes, who writes it, and what it says. `tag` refuses
# any other key, so a tag is declared here or it does not exist.
TAGS = {
    # normalize.py: what a normalized expression is
    "special": "the kind of a non-rule expression: subscript, display, dict (a dict "
               "display), container, method, attr, user, dynamic (a call through a value: "
               "calls.py), opaque",
    "rule": "the registry Rule of a primitive call or operator",
    "user": "the Python function a `special=user` call calls (transformed with it)",
    "container": "the builtin of a `special=container` call (list, tuple, sum, max, min)",
    "method": "the method name of a `special=method` call",
    "opaque": "what a `special=opaque` call is (a callable or a description): no rule",
    "inactive": "the expression carries no derivative (indices, shapes, comparisons)",
    "elements": "a tuple of loop elements (enumerate/zip) unpacked by the loop target",
    # normalize.py: what a normalized statement came from
    "forward_only": "copied into the forward sweep only (def, assert, raise, try, "
                    "print-like calls, imports)",
    "sink": "a forward-only statement that hands values to (or changes) the object this "
            "local name holds (\"\" for a global object): `ax.plot(x)`, `del o[i]`",
    "with_enter": "`_with1 = cm`: a `with` lowered into its enter and exit (the name)",
    "with_value": "`v = _with1.__enter__()` (or the bare call) of a lowered `with`",
    "with_exit": "`_with1.__exit__(None, None, None)` of a lowered `with`",
    "loop_exit": "the statement that leaves a loop early (break / return flag)",
    "augassign": "`v op= e` rebound as `v = v op e` (split_array_trees decides in place)",
    "holder": "`_held = parent[i]` (or `parent.name`), the element a nested element "
              "write goes through",
    "writeback": "the store-back of a holder into its parent",
    "walks": "a loop indexes this iterable directly (see _walk_other_iterables)",
    # control_flow.py / reverse.py: loops of the two sweeps
    "loop": "the loop id a counter statement belongs to (pruned with its loop)",
    "forward_loop": "the loop id of a forward-sweep loop",
    "reverse_loop": "the loop id of an adjoint-sweep loop",
    "fresh_zero": "adjoints that start at zero on each pass over the loop body",
    # tapes.py: markers, turned into pushes and pops
    "marker": "a bookkeeping placeholder statement",
    "save": "marker: save this name before it is overwritten",
    "restore": "marker: restore this name",
    "save_elem": "marker: save an element (base, index, how: array, seq, map or attr) "
                 "before its write",
    "restore_elem": "marker: restore an element",
    "loop_target": "marker: the save/restore is of a loop's target variable",
    "nested": "marker: the loop is inside another loop",
    "final_save": "marker: keep an argument's final state (param, arg, kept name)",
    "final_restore": "marker: write an argument's final state back after the sweep",
    "final_always": "final_save/final_restore kept though the adjoint sweep reads nothing "
                    "of the argument (a callee writes into it and restores it)",
    "final_alias": "marker: follow the caller's object of a rebound parameter",
    "recompute": "forward code re-run in the adjoint sweep: the names it reads from "
                 "outside (checkpointing)",
    # reverse.py / shapes.py: calls of a callee's derivative code specialised on shapes
    "callee_request": "the shape variant a callee's forward/backward call asks for "
                      "(shapes.specialise checks it, or redirects to the general one)",
    "callee_backward": "the call is a callee's backward function",
    "fill": "np.full(x.shape, v) made by a rule template, v fitting x's shape "
            "(shapes.implicit_fills may leave the broadcast to the operation reading it)",
    # checkpoint.py
    "checkpoint_save": "the snapshot call of a checkpointed loop (its arguments filled in "
                       "by checkpoint.finish)",
    "checkpoint_adjoint": "the adjoint loop over a checkpointed loop's segments",
}


def statements(stmts, into_defs=False):
    """Every statement of `stmts` and of the blocks nested in them (the bodies and else
    branches of if, for, while, with...), in source order; not into nested function
    definitions unless `into_defs`."""
    for s in stmts:
        yield s
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and not into_defs:
            continue
        for field in ("body", "orelse"):
            sub = getattr(s, field, None)
            if isinstance(sub, list):
                yield from statements(sub, into_defs)


_STATEMENT_KINDS = (ast.stmt, ast.excepthandler, getattr(ast, "match_case", ast.excepthandler))


def all_statements(stmts):
    """Every statement in stmts and in the statements nested in them, in no particular
    order: every block (bodies, else branches, handlers, finally blocks, match cases,
    nested defs), without walking expressions (statements are never inside one)."""
    todo = list(stmts)
    pop, extend, kinds = todo.pop, todo.extend, _STATEMENT_KINDS
    while todo:
        s = pop()
        if isinstance(s, ast.stmt):
            yield s
        for f in s._fields:
            v = getattr(s, f, None)
            if v.__class__ is list and v and isinstance(v[0], kinds):
                extend(v)


def bodies(stmts):
    """`stmts` and every statement list nested in it (not into function definitions)."""
    yield stmts
    for s in stmts:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for field in ("body", "orelse"):
            sub = getattr(s, field, None)
            if isinstance(sub, list):
                yield from bodies(sub)


def name_uses(body):
    """(stores, loads, calls): how many times each name is assigned, read, and called by
    name in `body`, outside nested defs."""
    stores, loads, called = {}, {}, {}
    for n in walk_outside_defs(body):
        if isinstance(n, ast.Name):
            table = stores if isinstance(n.ctx, ast.Store) else loads
            table[n.id] = table.get(n.id, 0) + 1
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            called[n.func.id] = called.get(n.func.id, 0) + 1
    return stores, loads, called


def walk_outside_defs(stmts):
    """ast.walk over statements (in another order, and without the context and operator
    singletons), not descending into lambdas, nor into nested function definitions but
    for their bodies' statements (still checked for what is unsupported)."""
    todo = list(stmts)
    pop, push, AST = todo.pop, todo.append, ast.AST
    FunctionDef, Lambda = ast.FunctionDef, ast.Lambda
    fields_of = _CHILD_FIELDS
    while todo:
        n = pop()
        yield n
        cls = n.__class__
        if cls is FunctionDef:
            todo.extend(n.body)
            continue
        if cls is Lambda:
            continue
        fields = fields_of.get(cls)
        for f in (_child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)


def stored_outside_defs(stmts):
    """Names bound by stmts (assignments, loop targets, defs), not inside nested functions
    or lambdas."""
    out = set()
    todo = list(stmts)
    pop, push, AST, Name, Store = todo.pop, todo.append, ast.AST, ast.Name, ast.Store
    FunctionDef, Lambda = ast.FunctionDef, ast.Lambda
    fields_of = _CHILD_FIELDS
    while todo:
        n = pop()
        cls = n.__class__
        if cls is Name:
            if n.ctx.__class__ is Store:
                out.add(n.id)
            continue
        if cls is FunctionDef:
            out.add(n.name)
            continue
        if cls is Lambda:
            continue
        fields = fields_of.get(cls)
        for f in (_child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)
    return out


def tag(node, **attrs):
    """Annotate an AST node (tags survive copy.deepcopy, their values are shared); the
    keys are those of `TAGS`."""
    for k, v in attrs.items():
        if k not in TAGS:
            raise KeyError(f"undeclared AST tag {k!r} (declare it in astutil.TAGS)")
        setattr(node, "_tp_" + k, _Ref(v))
    return node


def get_tag(node, key, default=None):
    try:                # (a node's own dict: no AttributeError raised for untagged ones)
        ref = node.__dict__.get("_tp_" + key)
    except AttributeError:
        ref = getattr(node, "_tp_" + key, None)
    return default if ref is None else ref.value


def index_value(index):
    """An index AST usable as a value: `a:b` becomes `slice(a, b, None)`."""
    if isinstance(index, ast.Slice):
        parts = [copy_tree(x) if x is not None else const(None)
                 for x in (index.lower, index.upper, index.step)]
        return ast.Call(func=load("slice"), args=parts, keywords=[])
    if isinstance(index, ast.Tuple):
        return ast.Tuple(elts=[index_value(e) for e in index.elts], ctx=ast.Load())
    return copy_tree(index)


def replace_equal(expr, target, replacement, fresh=False):
    """Copy of expr with every subexpression structurally equal to `target` (an AST, or
    its ast.dump) replaced by a copy of `replacement` (with `fresh`, expr is the caller's
    own, held nowhere else: rewritten in place, without a copy)."""
    key = target if isinstance(target, str) else dumps(target)[id(target)]
    if not fresh:
        expr = copy_tree(expr)
    inner = [n for n in nodes(expr) if isinstance(n, ast.expr)]
    # a node's text is made (with its parts') when first needed, once: right throughout
    # while no node is reached twice; a shared one (where a replacement inside changes
    # the other places' text) is dumped each time it is reached
    text = {} if len({id(n) for n in inner}) == len(inner) else None
    replacer = _Replacer(key, text, replacement)
    if replacer.equal(expr):
        return copy_tree(replacement)
    return replacer.visit(expr)


class _Replacer:
    """replace_equal's rewrite (an object, not closures: see _dump_text)."""
    __slots__ = ("key", "head", "text", "replacement")

    def __init__(self, key, text, replacement):
        self.key, self.text, self.replacement = key, text, replacement
        self.head = key.split("(", 1)[0]          # a dump starts with the node's class name

    def equal(self, node):
        if node.__class__.__name__ != self.head:
            return False
        text = self.text
        if text is None:
            return ast.dump(node) == self.key
        if id(node) not in text:
            dumps(node, text)
        return text[id(node)] == self.key

    def visit(self, node):          # an ast.NodeTransformer's visit, without dispatch
        if isinstance(node, ast.expr) and self.equal(node):
            return copy_tree(self.replacement)
        AST = ast.AST
        for field in node._fields:
            try:
                old = getattr(node, field)
            except AttributeError:
                continue
            if isinstance(old, list):
                old[:] = [self.visit(v) if isinstance(v, AST) else v for v in old]
            elif isinstance(old, AST):
                setattr(node, field, self.visit(old))
        return node
