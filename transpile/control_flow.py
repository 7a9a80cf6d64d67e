"""Reverse mode, control flow: how branches and loops are reversed.

The forward sweep keeps each branch as written (its condition lives in a variable the
adjoint sweep reads again) and makes loops countable: a `for` loop's iterable is kept in a
`_range` variable, a `while` loop (and a `for` loop that may exit early) counts its
iterations in `_n`. The adjoint sweep replays the recorded decision for a branch and runs
a loop's adjoint body over the same iterations backwards (``reversed(_range)``,
``range(_n)``). Loops inside loops push their counts (`keep_count`). What a loop's
iterations overwrite is not handled here: the bodies carry save/restore *markers* that
`tapes.py` turns into pushes, pops or per-loop tapes.

`ControlFlowReversal` is one part of `reverse.ReverseTransform` (statement by statement
adjoints live in reverse.py): its methods call the transform's `block` for the bodies.
"""
import ast
import copy

from . import astutil as A
from .tapes import PUSH, POP, marker


class ControlFlowReversal:
    """if / for / while for `reverse.ReverseTransform` (which provides `block`, `d`,
    `an`, `names`, `primal`, `new_overwritten`)."""

    depth = 0            # loop nesting of the statement being transformed
    branches = 0         # branch nesting of it
    loop_ids = 0

    def if_(self, s):
        self.branches += 1          # a branch's adjoints may be the zero placeholder
        fb, rb = self.block(s.body)
        fo, ro = self.block(s.orelse)
        self.branches -= 1
        fwd = ast.If(test=s.test, body=fb or [ast.Pass()], orelse=fo)
        rev = ast.If(test=A.copy_tree(s.test), body=rb or [ast.Pass()], orelse=ro)
        return [fwd], [rev]

    def fresh(self, stmts):
        """Adjoints of values that live and die within one pass over `stmts`: each
        reverse pass over the block starts with them at zero."""
        out = set()
        for i, st in enumerate(stmts):
            if not (isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name)):
                continue
            v = st.targets[0].id
            if v not in self.an.active or self.an.sites.get(v) != 1 or v in self.an.params:
                continue
            later = sum(_count_loads(x, v) for x in stmts[i + 1:]
                        if not isinstance(x, (ast.If, ast.For, ast.While)))
            if later == self.an.loads.get(v, 0):
                out.add(self.d(v))
        return out

    def _loop_id(self):
        self.loop_ids += 1
        return self.loop_ids

    def for_(self, s):
        L = self._loop_id()
        var = s.target.id
        exits = bool(s.body) and A.get_tag(s.body[-1], "loop_exit")
        nested = self.depth > 0
        self.depth += 1
        fb, rb = self.block(s.body)
        self.depth -= 1
        r = self.names.fresh("_range")
        self.primal.add(r)
        if nested:
            self.new_overwritten.add(r)
        fwd = [marker(save=r), A.assign(r, s.iter), marker(loop_target=var, loop=L,
                                                           nested=nested, save=var)]
        rng = A.load(r)
        if exits:
            n = self.names.fresh("_n")
            self.primal.add(n)              # the adjoint sweep reads the count
            fwd.append(A.tag(A.assign(n, A.const(0)), loop=L))
            fb.insert(0, A.tag(ast.AugAssign(target=A.store(n), op=ast.Add(),
                                             value=A.const(1)), loop=L))
            rng = ast.Subscript(value=rng, slice=ast.Slice(upper=A.load(n)), ctx=ast.Load())
        fwd.append(A.tag(ast.For(target=A.store(var), iter=A.load(r), body=fb, orelse=[],
                                 type_comment=None), forward_loop=L))
        rev = self.keep_count(n, L, fwd) if exits and nested else []
        if var in self.an.active:
            # each iteration's `var = next item` overwrote var: no adjoint flows past it
            rb = rb + [A.assign(self.d(var), A.const(0.0))]
        rev.append(A.tag(ast.For(target=A.store(var), iter=ast.Call(
            func=A.load("reversed"), args=[rng], keywords=[]), body=rb or [ast.Pass()],
            orelse=[], type_comment=None), reverse_loop=L, fresh_zero=self.fresh(s.body)))
        rev.append(marker(loop_target=var, loop=L, nested=nested, restore=var))
        rev.append(marker(restore=r))
        return fwd, rev

    def keep_count(self, n, L, fwd):
        """A loop inside a loop runs many times: push its iteration count after it (added
        to fwd) and pop it before its adjoint loop (returned)."""
        fwd.append(A.tag(ast.Expr(value=ast.Call(func=A.load(PUSH), args=[A.load(n)],
                                                 keywords=[])), loop=L))
        return [A.tag(A.assign(n, ast.Call(func=A.load(POP), args=[], keywords=[])), loop=L)]

    def while_(self, s):
        L = self._loop_id()
        nested = self.depth > 0
        self.depth += 1
        fb, rb = self.block(s.body)
        self.depth -= 1
        n = self.names.fresh("_n")
        self.primal.add(n)
        fb.insert(0, A.tag(ast.AugAssign(target=A.store(n), op=ast.Add(), value=A.const(1)),
                           loop=L))
        fwd = [A.tag(A.assign(n, A.const(0)), loop=L),
               A.tag(ast.While(test=s.test, body=fb, orelse=[]), forward_loop=L)]
        rev = self.keep_count(n, L, fwd) if nested else []
        rev.append(A.tag(ast.For(target=A.store("_"), iter=ast.Call(
            func=A.load("range"), args=[A.load(n)], keywords=[]), body=rb or [ast.Pass()],
            orelse=[], type_comment=None), reverse_loop=L, fresh_zero=self.fresh(s.body)))
        return fwd, rev


def _count_loads(node, name):
    return sum(1 for n in A.nodes(node) if isinstance(n, ast.Name) and n.id == name
               and isinstance(n.ctx, ast.Load))


def try_(rt, s):
    """A `try` that carries no derivative (analysis.check_passthrough): copied whole into
    the forward sweep; a name it overwrites that the adjoint sweep reads is saved before
    it and restored at its place in the adjoint sweep; the adjoints of variables it sets
    to values carrying no derivative restart from zero."""
    from .analysis import try_kills
    handlers = {h.name for h in s.handlers if h.name}
    saved = sorted(n for n in A.names_stored(s) - handlers if rt.an.overwritten(n))
    kills = [A.assign(rt.d(n), A.const(0.0)) for n in try_kills(rt.an, s)]
    return [marker(save=n) for n in saved] + [s], [marker(restore=n) for n in saved] + kills


def rebuild_with(stmts):
    """Put back the `with` statements normalize lowered (`_with1 = cm`,
    `v = _with1.__enter__()`, body, `_with1.__exit__(None, None, None)`): where the three
    are still in one block, with the lowering's name read nowhere else, they become
    `with cm as v: body` again (the forward sweep statements of the body inside it). Any
    other arrangement keeps the explicit calls, which do the same when nothing raises."""
    out, i = [], 0
    while i < len(stmts):
        s = _rebuild_nested(stmts[i])
        cm = A.get_tag(s, "with_enter")
        if cm is not None and isinstance(s, ast.Assign) and i + 1 < len(stmts) and \
                A.get_tag(stmts[i + 1], "with_value") == cm:
            end = next((j for j in range(i + 2, len(stmts))
                        if A.get_tag(stmts[j], "with_exit") == cm), None)
            if end is not None and not any(_count_loads(t, cm) for t in stmts[i + 2:end]) \
                    and not any(_count_loads(t, cm) for t in stmts[end + 1:]):
                value = stmts[i + 1]
                target = value.targets[0] if isinstance(value, ast.Assign) else None
                body = rebuild_with(stmts[i + 2:end]) or [ast.Pass()]
                if len(body) == 1 and isinstance(body[0], ast.With):
                    items, body = body[0].items, body[0].body    # `with a, b:`
                else:
                    items = []
                item = ast.withitem(context_expr=s.value, optional_vars=A.copy_tree(
                    target) if target is not None else None)
                out.append(A.located(ast.With(items=[item] + items, body=body), s))
                i = end + 1
                continue
        out.append(s)
        i += 1
    return out


def _rebuild_nested(s):
    if isinstance(s, ast.FunctionDef):
        return s
    fields = ("body", "orelse", "finalbody")
    if not any(isinstance(getattr(s, f, None), list) for f in fields) and \
            not isinstance(s, ast.Try):
        return s
    s = copy.copy(s)
    for f in fields:
        part = getattr(s, f, None)
        if isinstance(part, list):
            setattr(s, f, rebuild_with(part))
    if isinstance(s, ast.Try):
        s.handlers = [copy.copy(h) for h in s.handlers]
        for h in s.handlers:
            h.body = rebuild_with(h.body)
    return s


def without_effects(stmts):
    """Forward code to run a second time (a checkpointed loop's segment, re-run in the
    adjoint sweep) without the effects the first run already had: the calls copied as they
    are (print, logging, `ax.plot`, attribute stores, `del obj[i]`) are left out, also in
    nested blocks; `with` enters and exits, imports, asserts and raises stay."""
    out = []
    for s in stmts:
        if A.get_tag(s, "forward_only") and isinstance(s, (ast.Expr, ast.Delete,
                                                            ast.AugAssign)) and \
                not A.get_tag(s, "with_value") and not A.get_tag(s, "with_exit"):
            continue
        if isinstance(s, (ast.If, ast.For, ast.While, ast.Try)):
            s = copy.copy(s)
            s.body = without_effects(s.body) or [ast.Pass()]
            s.orelse = without_effects(s.orelse)
            if isinstance(s, ast.Try):
                s.finalbody = without_effects(s.finalbody)
                s.handlers = [copy.copy(h) for h in s.handlers]
                for h in s.handlers:
                    h.body = without_effects(h.body) or [ast.Pass()]
        out.append(s)
    return out
