"""Code templates: Python functions whose bodies are the code to emit.

Tangent's idea. A template is written as ordinary Python, so it reads like the code it
produces and is checked by the parser when this module is imported; `expand` returns its
body with the placeholder names replaced:

* a placeholder given a string becomes that name (``STACK="_stack"``),
* given an AST expression it becomes (a copy of) that expression,
* an attribute placeholder (``STACK.METHOD``) given a string becomes that attribute,
* given a list of names it becomes the tuple of them (``TAPE=["x", "_t1"]`` in
  ``TAPE = _tape`` unpacks the tape).

Placeholders are upper-case names; every other name is left as written. The assembly of
the generated functions (pipeline.py) and of per-loop tapes (tapes.py) is written with the
templates below.
"""
import ast
import inspect
import textwrap

from . import astutil as A

_PARSED = {}


def expand(template, **subs):
    """The body of `template` (a function) with its placeholders substituted."""
    body = _PARSED.get(template)
    if body is None:
        tree = ast.parse(textwrap.dedent(inspect.getsource(template)))
        body = _PARSED[template] = tree.body[0].body
    out = []
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and \
                isinstance(stmt.value.value, str):
            continue                                  # the template's docstring
        out.append(_Substitute(subs).visit(A.copy_tree(stmt)))
    return [A.fix_missing_locations(s) for s in out]


class _Substitute(A.Transformer):
    def __init__(self, subs):
        self.subs = subs

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(self.subs.get(node.attr), str):      # `STACK.METHOD`
            node.attr = self.subs[node.attr]
        return node

    def visit_Name(self, node):
        if node.id not in self.subs:
            return node
        value = self.subs[node.id]
        if isinstance(value, str):
            return ast.Name(id=value, ctx=node.ctx)
        if isinstance(value, (list, tuple)):
            elts = [ast.Name(id=v, ctx=node.ctx) if isinstance(v, str) else A.copy_tree(v)
                    for v in value]
            return ast.Tuple(elts=elts, ctx=node.ctx)
        if isinstance(node.ctx, ast.Load):
            return A.copy_tree(value)
        raise ValueError(f"template placeholder {node.id} is assigned to: give a name")


def names_tuple(names):
    """`(a, b)` (a load of a tuple of names), `(a,)` for one."""
    return ast.Tuple(elts=[A.load(n) for n in names], ctx=ast.Load())


# --- the templates ---------------------------------------------------------------------
# The stack of a sweep with pushes and pops (tapes.py): one list, its bound methods.
def stack_with_pop(STACK, PUSH, POP):
    STACK = []
    PUSH = STACK.append
    POP = STACK.pop


def stack(STACK, PUSH):
    STACK = []
    PUSH = STACK.append


def bind_method(NAME, STACK, METHOD):
    NAME = STACK.METHOD


# A gradient function returns its value and gradient(s); a forward function its value
# and the tape its backward function unpacks.
def return_value_and(VALUE, OUT):
    return VALUE, OUT


def return_only(OUT):
    return OUT


def unpack_tape(TAPE, TAPE_ARG):
    TAPE = TAPE_ARG


# A per-loop tape (tapes.loop_tapes): a list, appended once per iteration.
def loop_tape(TAPE, RECORD):
    TAPE = []
    RECORD = TAPE.append
