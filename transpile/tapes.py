"""Reverse mode, tapes: what the forward sweep saves for the adjoint sweep, and where.

The reverse transform (reverse.py, control_flow.py) emits bookkeeping as *markers*: "this
value is about to be overwritten" (save), "put it back" (restore), per loop and per
element write. Only once the adjoint code is finished is it known which of those values it
reads, so the plan is made here, in two steps:

* `Resolver` turns markers into pushes on (and pops from) one stack, for exactly the values
  the finished adjoint code reads, and drops adjoint loops and branches that do no work
  (with their counters): straight-line code with no overwrites needs no stack at all;
* `loop_tapes` gives each simple top-level loop a tape of its own (a list appended once per
  iteration, walked backwards by the adjoint loop) instead of stack pops.

Forward code re-run inside the adjoint sweep (checkpointed segments, tagged
``recompute=<names it reads from outside>``) is resolved as forward code.
"""
import ast
import copy
import dataclasses
from typing import Any

from . import astutil as A
from . import templates as T

PUSH, POP, STACK = "_push", "_pop", "_stack"


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """What the reverse transform hands on to the passes after it (checkpointing, the
    `Resolver`), as one value: which names hold primal values the adjoint sweep may read,
    which of those the transform itself overwrites (loop ranges, counts, snapshots: they
    must be saved when the adjoint code reads them), and what it was made from."""
    analysis: Any               # analysis.Analysis of the normalized function
    env: Any                    # the namespace generated code resolves helpers in
    names: Any                  # names.Names: fresh names
    norm: Any                   # the normalized function
    params: frozenset
    primal: frozenset           # values of the primal program
    overwritten: frozenset      # names the transform made that are overwritten
    mutated: frozenset          # names whose elements are written

    def is_overwritten(self, name):
        return self.analysis.overwritten(name) or name in self.overwritten

    def keeping(self, names, nested):
        """The plan once `names` (set once per run of a loop, read by its adjoint) are
        primal values too; inside another loop they are overwritten on each run."""
        names = frozenset(names)
        return dataclasses.replace(self, primal=self.primal | names,
                                   overwritten=self.overwritten | (names if nested
                                                                   else frozenset()))


def marker(**tags):
    """A bookkeeping placeholder statement carrying `tags` (save=, restore=, ...)."""
    m = ast.Expr(value=A.const("marker"))
    return A.tag(m, marker=True, **tags)


class Resolver:
    """Replace markers by the pushes/pops the adjoint code needs; prune idle adjoint loops."""

    def __init__(self, plan):
        self.plan = plan
        self.params = set(plan.params)
        self.rerun = False              # forward code re-run in the adjoint sweep

    def overwritten(self, name):
        return self.plan.is_overwritten(name)

    def run(self, fwd_m, rev_m):
        # (only statements carry the tag: loops checkpoint.py re-runs)
        self.rerun = any(A.get_tag(s, "recompute") is not None
                         for s in A.all_statements(rev_m))
        needed = None
        # what each simple statement reads, for this run: the resolved sweep keeps most of
        # them as they are (the same objects), and none is changed in place
        reads = {}
        while True:
            self.needed = needed if needed is not None else \
                _reads(rev_m, reads) & self.plan.primal
            self.saved = {v for v in self.needed if self.overwritten(v)}
            self.pruned = set()
            rev = _drop_pruned(self.block(rev_m, reverse=True), self.pruned)
            fwd = self.block(fwd_m, reverse=False)
            new_needed = _reads(rev, reads) & self.plan.primal
            if new_needed == self.needed:
                return fwd, rev
            needed = new_needed

    def block(self, stmts, reverse):
        # a forward body re-run inside the adjoint sweep (checkpointing) is resolved after
        # the adjoint code next to it, once that code has decided which loops it prunes
        later = [i for i, s in enumerate(stmts) if A.get_tag(s, "recompute") is not None]
        done = {i: self.stmt(s, reverse) for i, s in enumerate(stmts) if i not in later}
        done.update({i: self.stmt(stmts[i], reverse) for i in later})
        return [n for i in range(len(stmts)) for n in done[i]]

    def stmt(self, s, reverse):
        if reverse and A.get_tag(s, "recompute") is not None:
            reverse = False                     # forward code: its markers are saves
        loop = A.get_tag(s, "loop")
        if loop is not None and not reverse and loop in self.pruned:
            return []
        if A.get_tag(s, "marker"):
            return self.marker(s, reverse)
        if isinstance(s, (ast.If, ast.For, ast.While)):
            new = copy.copy(s)
            new.body = self.block(s.body, reverse)
            new.orelse = self.block(s.orelse, reverse)
            if reverse and _idle(new.body) and _idle(new.orelse):
                L = A.get_tag(s, "reverse_loop")
                if L is not None:
                    self.pruned.add(L)
                return []
            new.body = new.body or [ast.Pass()]
            return [new]
        if reverse and loop is not None and loop in self.pruned:
            return []
        return [s]

    def marker(self, m, reverse):
        final = A.get_tag(m, "final_save" if not reverse else "final_restore")
        alias = A.get_tag(m, "final_alias")
        if final is not None or alias is not None:
            # the adjoint sweep restores an argument changed in place (it reads it): keep
            # what the function left in the caller's object, put that back at the end
            p = (final or alias)[0]
            if p not in self.needed and not self.rerun and not A.get_tag(m, "final_always"):
                return []
            if alias is not None:
                return [A.located(A.assign(alias[1], A.load(p)), m)]
            h = self.plan.env.helper
            _, arg, kept = final
            if not reverse:
                return [A.located(A.assign(kept, ast.Call(func=A.load(h("final_state")),
                                                          args=[A.load(arg)], keywords=[])),
                                  m)]
            return [A.located(ast.Expr(value=ast.Call(func=A.load(h("write_back")), args=[
                A.load(arg), A.load(kept)], keywords=[])), m)]
        var = A.get_tag(m, "save") if not reverse else A.get_tag(m, "restore")
        if A.get_tag(m, "loop_target"):
            L = A.get_tag(m, "loop")
            if L in self.pruned or var not in self.needed:
                return []
            if not (self.plan.analysis.sites.get(var, 0) > 1 or A.get_tag(m, "nested")
                    or var in self.params):
                return []
            self.saved.add(var)
            return [self._push(A.load(var))] if not reverse else [self._pop(A.store(var))]
        elem = A.get_tag(m, "save_elem") if not reverse else A.get_tag(m, "restore_elem")
        if elem is not None:
            base, index, how = elem
            if base not in self.needed:
                return []
            if how in ("map", "attr"):         # a key or attribute that may be new
                save, put = ("attribute", "put_attribute") if how == "attr" else (
                    "entry", "put_entry")
                h = self.plan.env.helper
                if not reverse:
                    return [self._push(ast.Call(func=A.load(h(save)), args=[
                        A.load(base), A.index_value(index)], keywords=[]))]
                return [ast.Expr(value=ast.Call(func=A.load(h(put)), args=[
                    A.load(base), A.index_value(index), ast.Call(
                        func=A.load(POP), args=[], keywords=[])], keywords=[]))]
            array = how == "array"
            sub = ast.Subscript(value=A.load(base), slice=A.copy_tree(index),
                                ctx=ast.Load() if not reverse else ast.Store())
            if reverse:
                return [self._pop(sub)]
            if array:                      # an array slice is a view: save a copy
                sub = ast.Call(func=A.load(self.plan.env.helper("snapshot")), args=[sub],
                               keywords=[])
            return [self._push(sub)]
        if var is None or var not in self.saved:
            return []
        return [self._push(A.load(var))] if not reverse else [self._pop(A.store(var))]

    def _push(self, value):
        return ast.Expr(value=ast.Call(func=A.load(PUSH), args=[value], keywords=[]))

    def _pop(self, target):
        return ast.Assign(targets=[target], value=ast.Call(func=A.load(POP), args=[],
                                                           keywords=[]))


def _drop_pruned(stmts, pruned):
    out = []
    for s in stmts:
        if A.get_tag(s, "loop") in pruned:
            continue
        if isinstance(s, (ast.If, ast.For, ast.While)):
            s.body = _drop_pruned(s.body, pruned) or [ast.Pass()]
            s.orelse = _drop_pruned(s.orelse, pruned)
        out.append(s)
    return out


def _idle(stmts):
    return all(isinstance(s, ast.Pass) for s in stmts)


def _reads(stmts, memo=None):
    """The names stmts read (markers left out); `memo`: {id: (statement, names)} of
    simple statements, kept alive with them, for statements not changed in place."""
    out = set()
    for s in stmts:
        if A.get_tag(s, "marker"):
            continue
        if memo is None or hasattr(s, "body"):
            out |= _loaded(s)
            continue
        entry = memo.get(id(s))
        if entry is None:
            entry = memo[id(s)] = (s, _loaded(s))
        out |= entry[1]
    return out


def _loaded(node, saves=True):
    """Names read in node; a re-run forward body (checkpointing) reads only what its tag
    lists: the values it takes from outside the loop (the rest come from a snapshot).
    Without `saves`, what pushes and pops read is left out."""
    out = set()
    todo = [node]
    pop, push, AST, Name, Load = todo.pop, todo.append, ast.AST, ast.Name, ast.Load
    fields_of = A._CHILD_FIELDS
    while todo:
        n = pop()
        cls = n.__class__
        if cls is Name:                     # (a name has no tags, and no children)
            if n.ctx.__class__ is Load:
                out.add(n.id)
            continue
        inputs = A.get_tag(n, "recompute")
        if inputs is not None:
            out.update(inputs)
            continue
        if not saves and (_is_push(n) or _is_pop(n)):
            continue
        if cls is ast.AugAssign and n.target.__class__ is Name:
            out.add(n.target.id)
        fields = fields_of.get(cls)
        for f in (A._child_fields(cls) if fields is None else fields):
            v = getattr(n, f, None)
            if v.__class__ is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)
    return out


def drop_unread_saves(fwd, rev):
    """Saves of values the finished adjoint code no longer reads: the rewrites after the
    `Resolver` (shapes.specialise, the optimiser) dropped the reads (an `unbroadcast(g,
    x)` that was a no-op, a template's `x.shape`). Every push of such a name in `fwd` and
    `rev` goes, with every pop: the stack keeps its order for the others. `rev` is the
    adjoint sweep (a function's statements from its first pop on, for one body)."""
    popped, read = set(), set()
    for s in A.statements(rev, into_defs=True):
        if _is_pop(s):
            popped.add(s.targets[0].id)
    if not popped:
        return fwd, rev
    for s in rev:
        read |= _loaded(s, saves=False)
    dead = popped - read
    if not dead:
        return fwd, rev
    return _without_saves(fwd, dead), _without_saves(rev, dead)


def _without_saves(stmts, dead):
    out = []
    for s in stmts:
        if (_is_push(s) and len(s.value.args) == 1 and isinstance(s.value.args[0], ast.Name)
                and s.value.args[0].id in dead) or (_is_pop(s) and s.targets[0].id in dead):
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(s, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                setattr(s, field, _without_saves(inner, dead) or [ast.Pass()])
        for handler in getattr(s, "handlers", ()):      # (every pop found goes)
            handler.body = _without_saves(handler.body, dead) or [ast.Pass()]
        out.append(s)
    return out


def split_at_first_pop(body):
    """(statements before the first one that pops, the rest)."""
    for k, s in enumerate(body):
        if any(_is_pop(t) for t in A.statements([s], into_defs=True)):
            return body[:k], body[k:]
    return body, []


# --- per-loop tapes ------------------------------------------------------------------

def loop_tapes(fwd, rev, names):
    """Give simple top-level loops their own tape, read by iteration instead of pops.

    A loop qualifies when every push in its body is a top-level statement (so each
    iteration pushes the same variables in the same order) and its adjoint loop pops them
    back at top level. Each iteration then appends one value (or one tuple) to a list, and
    the adjoint loop iterates over the reversed list: ``for y_saved in reversed(tape)``
    replaces a pop call per value. Returns (fwd, rev, names of the new tape lists).
    """
    rev_loops = {A.get_tag(s, "reverse_loop"): (i, s) for i, s in enumerate(rev)
                 if A.get_tag(s, "reverse_loop") is not None}
    tapes = []
    new_fwd = []
    for s in fwd:
        L = A.get_tag(s, "forward_loop")
        plan = _tape_plan(s, rev_loops.get(L, (None, None))[1]) if L is not None else None
        if plan is None:
            new_fwd.append(s)
            continue
        pushed, pops = plan
        i, rloop = rev_loops[L]
        tape = names.fresh("_tape")
        record = names.fresh("_record")
        tapes.append(tape)
        saved = [names.fresh("_saved") for _ in pushed]
        positions = [j for j, st in enumerate(s.body) if _is_push(st)]
        body = list(s.body)
        if len(saved) == 1:                     # record the value directly
            body[positions[0]] = ast.Expr(value=ast.Call(
                func=A.load(record), args=[A.copy_tree(s.body[positions[0]].value.args[0])],
                keywords=[]))
        else:                                   # copy at each push, record one tuple
            for k, j in enumerate(positions):
                body[j] = A.assign(saved[k], s.body[j].value.args[0])
            body.insert(positions[-1] + 1, ast.Expr(value=ast.Call(
                func=A.load(record), args=[ast.Tuple(elts=[A.load(x) for x in saved],
                                                     ctx=ast.Load())], keywords=[])))
        loop = copy.copy(s)
        loop.body = body
        new_fwd += T.expand(T.loop_tape, TAPE=tape, RECORD=record)
        new_fwd.append(loop)
        # adjoint loop: iterate the tape backwards, pops become reads of the saved names
        rbody = []
        k = len(saved)
        for st in rloop.body:
            if _is_pop(st):
                k -= 1
                rbody.append(A.assign(st.targets[0], A.load(saved[k])))
            else:
                rbody.append(st)
        j = _direct_restore(rbody, saved)
        if j is not None:
            # nothing before the restore touches the variable: iterate straight into it
            saved = [rbody[j].targets[0].id]
            rbody = (rbody[:j] + rbody[j + 1:]) or [ast.Pass()]
        target = A.store(saved[0]) if len(saved) == 1 else ast.Tuple(
            elts=[A.store(x) for x in saved], ctx=ast.Store())
        walked = ast.Call(func=A.load("reversed"), args=[A.load(tape)], keywords=[])
        loop_var = rloop.target
        if any(isinstance(n, ast.Name) and n.id == getattr(loop_var, "id", None)
               for st in rbody for n in A.nodes(st)) and loop_var.id != "_":
            target = ast.Tuple(elts=[A.copy_tree(loop_var), target], ctx=ast.Store())
            walked = ast.Call(func=A.load("zip"), args=[rloop.iter, walked], keywords=[])
        new_rloop = copy.copy(rloop)
        new_rloop.target, new_rloop.iter, new_rloop.body = target, walked, rbody
        rev[i] = new_rloop
        counters = {n.id for st in new_fwd + loop.body if A.get_tag(st, "loop") == L
                    for n in A.nodes(st) if isinstance(n, ast.Name)}
        if not counters & A.names_loaded(new_rloop.iter):        # iteration count unused
            new_fwd[:] = [st for st in new_fwd if A.get_tag(st, "loop") != L]
            loop.body = [st for st in loop.body if A.get_tag(st, "loop") != L]
    return new_fwd, rev, tapes


def _direct_restore(rbody, saved):
    """Index of `y = saved` in a tape loop's body when the loop may iterate straight into
    y: one saved value, read only there, and y neither read nor written before it."""
    if len(saved) != 1:
        return None
    for j, st in enumerate(rbody):
        if (isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name)
                and isinstance(st.value, ast.Name) and st.value.id == saved[0]):
            y = st.targets[0].id
            before = rbody[:j]
            if any(y in A.names_loaded(b) | A.names_stored(b) for b in before) or any(
                    saved[0] in A.names_loaded(b) for b in before + rbody[j + 1:]):
                return None
            return j
        if isinstance(st, (ast.If, ast.For, ast.While)):
            return None
    return None


def _is_push(s):
    return (isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
            and isinstance(s.value.func, ast.Name) and s.value.func.id == PUSH)


def _is_pop(s):
    return (isinstance(s, ast.Assign) and isinstance(s.value, ast.Call)
            and isinstance(s.value.func, ast.Name) and s.value.func.id == POP
            and isinstance(s.targets[0], ast.Name))


def _uses_stack(stmts):
    return any(isinstance(n, ast.Name) and n.id in (PUSH, POP)
               for s in stmts for n in A.nodes(s))


def _tape_plan(floop, rloop):
    if rloop is None or not isinstance(floop, (ast.For, ast.While)):
        return None
    pushed = [st.value.args[0] for st in floop.body if _is_push(st)]
    if not pushed or not all(isinstance(p, ast.Name) for p in pushed):
        return None
    if _uses_stack([st for st in floop.body if not _is_push(st)]):
        return None                      # pushes inside branches or inner loops
    pops = [st.targets[0].id for st in rloop.body if _is_pop(st)]
    if _uses_stack([st for st in rloop.body if not _is_pop(st)]):
        return None
    if pops != [p.id for p in reversed(pushed)]:
        return None
    return [p.id for p in pushed], pops
