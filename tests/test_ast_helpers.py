"""The fast AST helpers of astutil stand in for the standard library's exactly: the same
nodes, texts, copies and locations, so the passes that use them generate the same code
(and the gradients of functions that go through every pass stay right)."""
import ast
import copy
import glob
import math
import os

import numpy as np
import pytest

import transpile
from transpile import astutil as A

from finite_differences import central_wrt, check

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob(os.path.join(HERE, "..", "transpile", "*.py")))[:12]


def trees():
    for path in SOURCES:
        with open(path) as fh:
            yield ast.parse(fh.read())


def scalar_chain(x, w):
    a, b, c = x, w, 0.0
    for i in range(3):
        a = 0.6 * a + 0.3 * math.sin(b * x)
        b = 0.6 * b + 0.3 * math.tanh(a * w)
        c = c + 0.1 * math.atan(a - b)
    a = 0.6 * a + 0.3 * math.cos(b * x) * math.cos(b * x)
    return a + b + c


def numpy_chain(x, W):
    h, g, c = x, 0.5 * x, 0.0
    for i in range(3):
        h = 0.6 * h + 0.3 * np.tanh(W @ g)
        g = 0.6 * g + 0.3 * np.sin(h * x)
        c = c + 0.1 * np.sum(np.arctan(h - g))
    return c + np.sum(h * g)


def check_gradients():
    """The functions of the transform-time benchmark, through every pass, against
    central differences."""
    args = (0.3, 0.7)
    g = transpile.grad(scalar_chain, wrt=(0, 1))(*args)
    for i in (0, 1):
        check(g[i], central_wrt(scalar_chain, args, i))
    rng = np.random.default_rng(0)
    args = (rng.normal(size=4), rng.normal(size=(4, 4)) / 2)
    g = transpile.grad(numpy_chain, wrt=(0, 1))(*args)
    for i in (0, 1):
        check(g[i], central_wrt(numpy_chain, args, i))


def test_walks_and_names_match_the_standard_library():
    check_gradients()
    leaves = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
    for tree in trees():
        assert [id(n) for n in A.walk(tree)] == [id(n) for n in ast.walk(tree)]
        for node in ast.walk(tree):
            assert A.children(node) == list(ast.iter_child_nodes(node))
            if not isinstance(node, (ast.stmt, ast.expr)):
                continue
            assert {id(n) for n in A.nodes(node)} == {
                id(n) for n in ast.walk(node) if not isinstance(n, leaves)}
            loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Load)} | {
                n.target.id for n in ast.walk(node) if isinstance(n, ast.AugAssign)
                and isinstance(n.target, ast.Name)}
            stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, (ast.Store, ast.Del))}
            assert A.name_sets(node) == (loaded, stored)


def test_copies_and_texts_match_the_standard_library():
    check_gradients()
    for tree in trees():
        for n in ast.walk(tree):
            if isinstance(n, ast.expr):
                A.tag(n, inactive=True)
        tree.body.append(tree.body[0])                  # a node reached twice
        mine, theirs = A.copy_tree(tree), copy.deepcopy(tree)
        assert ast.dump(mine, include_attributes=True) == \
            ast.dump(theirs, include_attributes=True)
        assert mine.body[0] is mine.body[-1]
        for a, b in zip(ast.walk(mine), ast.walk(theirs)):
            assert type(a) is type(b) and a.__dict__.keys() == b.__dict__.keys()
            assert A.get_tag(a, "inactive") == A.get_tag(b, "inactive")
        text = A.dumps(tree)
        for n in ast.walk(tree):
            assert text[id(n)] == ast.dump(n)


def test_locations_match_the_standard_library():
    check_gradients()
    for tree in trees():
        for k, n in enumerate(ast.walk(tree)):
            for attr in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
                if k % 3 and attr in n.__dict__:
                    delattr(n, attr)
        tree.body.append(tree.body[0])
        mine = A.fix_missing_locations(A.copy_tree(tree))
        theirs = ast.fix_missing_locations(copy.deepcopy(tree))
        assert ast.dump(mine, include_attributes=True) == \
            ast.dump(theirs, include_attributes=True)
        # located then fix_missing_locations, and both in one walk (emit.build's)
        like = ast.Pass(lineno=7, col_offset=4, end_lineno=9, end_col_offset=2)
        for root in (tree, tree.body[0]):
            mine = A.placed(A.copy_tree(root), like)
            theirs = ast.fix_missing_locations(A.located(copy.deepcopy(root), like))
            assert ast.dump(mine, include_attributes=True) == \
                ast.dump(theirs, include_attributes=True)


@pytest.mark.parametrize("shared", [False, True])
def test_rewrites_match_node_transformers(shared):
    check_gradients()
    expr = ast.parse("f(a * b + c, -(a * b)) * (a * b + c) - g.h[a * b]", mode="eval").body
    if shared:
        call = expr.left.left
        part = call.args[0]
        call.args[1] = ast.BinOp(left=part, op=ast.Mult(), right=part)
    replacement = ast.Name(id="r", ctx=ast.Load())

    class Replace(ast.NodeTransformer):
        def generic_visit(self, node):
            if isinstance(node, ast.expr) and ast.dump(node) == self.key:
                return copy.deepcopy(replacement)
            return super().generic_visit(node)

    for target in [n for n in ast.walk(expr) if isinstance(n, ast.expr)]:
        Replace.key = ast.dump(target)
        theirs = copy.deepcopy(replacement) if ast.dump(expr) == Replace.key else \
            Replace().visit(copy.deepcopy(expr))
        assert ast.dump(A.replace_equal(expr, target, replacement)) == ast.dump(theirs)

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id == "a" and isinstance(node.ctx, ast.Load):
                return copy.deepcopy(replacement)
            if node.id == "b":
                node.id = "b2"
            return node

    assert ast.dump(A.substitute(expr, {"a": replacement}, {"b": "b2"})) == \
        ast.dump(Sub().visit(copy.deepcopy(expr)))

    class Negate(ast.NodeTransformer):
        def visit_BinOp(self, node):
            self.generic_visit(node)
            return ast.UnaryOp(op=ast.USub(), operand=node)

    class FastNegate(A.Transformer, Negate):
        pass

    assert ast.dump(FastNegate().visit(A.copy_tree(expr))) == \
        ast.dump(Negate().visit(copy.deepcopy(expr)))
