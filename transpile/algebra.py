"""Tiny algebra on expression ASTs: build products and sums with constants folded.

Used wherever derivative expressions are assembled (reverse, forward, rule templates) so
generated code reads ``2 * x * g`` rather than ``2 * x ** (2 - 1) * 1.0 * g``.
"""
import ast

from . import astutil as A


def _num(e):
    if isinstance(e, ast.Constant) and type(e.value) in (int, float):
        return e.value
    if (isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub)
            and isinstance(e.operand, ast.Constant) and type(e.operand.value) in (int, float)):
        return -e.operand.value
    return None


def number(v):
    if v < 0:
        return ast.UnaryOp(op=ast.USub(), operand=A.const(-v))
    return A.const(v)


def neg(e):
    n = _num(e)
    if n is not None:
        return number(-n)
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        return e.operand
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
        c, fs = _factors(e)
        if fs and c not in (1, -1):       # -(2 * x) -> -2 * x: one array pass less
            out = fs[0]
            for f in fs[1:]:
                out = ast.BinOp(left=out, op=ast.Mult(), right=f)
            return ast.BinOp(left=number(-c), op=ast.Mult(), right=out)
    return ast.UnaryOp(op=ast.USub(), operand=e)


def mul(a, b):
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return number(na * nb)
    if na == 1:
        return b
    if nb == 1:
        return a
    if na == -1:
        return neg(b)
    if nb == -1:
        return neg(a)
    if isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub):
        return neg(mul(a.operand, b))
    if isinstance(b, ast.UnaryOp) and isinstance(b.op, ast.USub):
        return neg(mul(a, b.operand))
    return ast.BinOp(left=a, op=ast.Mult(), right=b)


def _factors(e):
    """Flatten a product into (constant, [factors]); negations become -1 in the constant."""
    n = _num(e)
    if n is not None:
        return n, []
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        c, fs = _factors(e.operand)
        return -c, fs
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
        c1, f1 = _factors(e.left)
        c2, f2 = _factors(e.right)
        return c1 * c2, f1 + f2
    return 1, [e]


def product(e):
    """Rebuild a product with its constants multiplied out in front: 2*a*(-3*b) -> -6*a*b."""
    c, fs = _factors(e)
    if not fs:
        return number(c)
    out = fs[0]
    for f in fs[1:]:
        out = ast.BinOp(left=out, op=ast.Mult(), right=f)
    if c == 1:
        return out
    if c == -1 and not _boolean(out):
        return neg(out)
    return ast.BinOp(left=number(c), op=ast.Mult(), right=out)      # -2 * x: one multiply


def _boolean(e):
    """A comparison (NumPy cannot negate a boolean array; -1.0 * mask is fine)."""
    return isinstance(e, (ast.Compare, ast.BoolOp)) or (
        isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.Not, ast.Invert)))


class _Fold(A.Transformer):
    """The rewrites of `fold`, bottom up."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        l, r = _num(node.left), _num(node.right)
        op = node.op
        if l is not None and r is not None and isinstance(
                op, (ast.Add, ast.Sub, ast.Mult, ast.Pow)):
            try:
                v = {ast.Add: lambda: l + r, ast.Sub: lambda: l - r,
                     ast.Mult: lambda: l * r, ast.Pow: lambda: l ** r}[type(op)]()
                if isinstance(v, (int, float)) and abs(v) < 1e12:
                    return number(v)
            except (OverflowError, ZeroDivisionError):
                pass
        if isinstance(op, ast.Mult):
            return product(mul(node.left, node.right))
        if isinstance(op, ast.Pow) and r == 1:
            return node.left
        if isinstance(op, ast.Pow) and r == 0:
            return A.const(1)
        if isinstance(op, ast.Add) and r == 0:
            return node.left
        if isinstance(op, ast.Add) and l == 0:
            return node.right
        if isinstance(op, ast.Sub) and r == 0:
            return node.left
        if isinstance(op, ast.Div) and r == 1:
            return node.left
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            return neg(node.operand)
        return node


def fold(e, fresh=False):
    """Constant-fold and drop neutral elements throughout an expression (returns a copy;
    with `fresh`, e is the caller's own, made for this and held nowhere else: folded in
    place, without a copy)."""
    return _Fold().visit(e if fresh else A.copy_tree(e))
