"""Small helpers for building and inspecting Python ASTs (shared by every pass)."""
import ast
import copy


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


def located(node, like):
    """Give node (and its children without one) the line of `like`."""
    if like is not None and hasattr(like, "lineno"):
        for n in ast.walk(node):
            if isinstance(n, (ast.stmt, ast.expr)) and not hasattr(n, "lineno"):
                ast.copy_location(n, like)
        if isinstance(node, (ast.stmt, ast.expr)):
            ast.copy_location(node, like)
    return node


def lambda_def(name, lam, like=None):
    """`def name(<lam's args>): return <lam's body>`, at lam's (or like's) line."""
    fdef = ast.FunctionDef(name=name, args=lam.args, body=[located(ast.Return(lam.body), lam)],
                           decorator_list=[], returns=None, type_comment=None)
    return located(fdef, like if like is not None else lam)


def parse_stmts(src):
    return ast.parse(src).body


def names_loaded(node):
    """Names read anywhere inside node (the target of `v += e` is read too)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            out.add(n.id)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
    return out


def names_stored(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
            and isinstance(n.ctx, (ast.Store, ast.Del))}


def substitute(expr, mapping):
    """Copy of expr with each Name in mapping replaced by (a copy of) its AST."""

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in mapping and isinstance(node.ctx, ast.Load):
                return copy.deepcopy(mapping[node.id])
            return node

    return Sub().visit(copy.deepcopy(expr))


def rename(node, mapping):
    """Rename variables (loads and stores) in place."""
    for n in ast.walk(node):
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


def tag(node, **attrs):
    """Annotate an AST node (tags survive copy.deepcopy, their values are shared)."""
    for k, v in attrs.items():
        setattr(node, "_tp_" + k, _Ref(v))
    return node


def get_tag(node, key, default=None):
    ref = getattr(node, "_tp_" + key, None)
    return default if ref is None else ref.value


def index_value(index):
    """An index AST usable as a value: `a:b` becomes `slice(a, b, None)`."""
    if isinstance(index, ast.Slice):
        parts = [copy.deepcopy(x) if x is not None else const(None)
                 for x in (index.lower, index.upper, index.step)]
        return ast.Call(func=load("slice"), args=parts, keywords=[])
    if isinstance(index, ast.Tuple):
        return ast.Tuple(elts=[index_value(e) for e in index.elts], ctx=ast.Load())
    return copy.deepcopy(index)


def replace_equal(expr, target, replacement):
    """Copy of expr with every subexpression structurally equal to `target` (an AST, or
    its ast.dump) replaced by a copy of `replacement`."""
    key = target if isinstance(target, str) else ast.dump(target)
    if ast.dump(expr) == key:
        return copy.deepcopy(replacement)

    class Replace(ast.NodeTransformer):
        def generic_visit(self, node):
            if isinstance(node, ast.expr) and ast.dump(node) == key:
                return copy.deepcopy(replacement)
            return super().generic_visit(node)

    return Replace().visit(copy.deepcopy(expr))
