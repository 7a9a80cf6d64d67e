"""Analyses over normalized code: activity, value kinds, assignment sites.

* activity: which variables carry a derivative (depend on an active input through
  differentiable operations). Flow-insensitive fixpoint: conservative, never misses one.
  Integers from ``range``/``len``/``//``, booleans and comparisons are never active.
* kinds: which variables hold lists or tuples (their adjoints are lists, accumulated with
  ``add``) rather than numbers or arrays (accumulated with ``+``).
* sites: where each variable is assigned and whether inside a loop; a variable assigned
  more than once (or in a loop, or a reassigned parameter) is *overwritten*, so the reverse
  sweep must save and restore any value of it that the adjoint code reads.
"""
import ast

from . import astutil as A

LIST_METHODS_MUTATING = {"append"}


def walk_body(stmts, depth=0):
    """Yield (stmt, loop_depth) for every statement, recursively."""
    for s in stmts:
        yield s, depth
        if isinstance(s, ast.If):
            yield from walk_body(s.body, depth)
            yield from walk_body(s.orelse, depth)
        elif isinstance(s, (ast.For, ast.While)):
            yield from walk_body(s.body, depth + 1)


def expr_names(e):
    """Names whose values flow (differentiably) into expression e."""
    if e is None or A.get_tag(e, "inactive"):
        return set()
    if isinstance(e, ast.Name):
        return {e.id}
    if isinstance(e, ast.Constant):
        return set()
    if isinstance(e, ast.BinOp):
        if isinstance(e.op, ast.FloorDiv):
            return set()
        return expr_names(e.left) | expr_names(e.right)
    if isinstance(e, ast.UnaryOp):
        return expr_names(e.operand)
    if isinstance(e, ast.Call):
        out = set()
        for a in e.args:
            out |= expr_names(a)
        for k in e.keywords:
            out |= expr_names(k.value)
        if isinstance(e.func, ast.Attribute) and A.get_tag(e, "special") == "method":
            out |= expr_names(e.func.value)
        return out
    if isinstance(e, ast.Subscript):
        return expr_names(e.value)
    if isinstance(e, ast.Attribute):
        return expr_names(e.value)
    if isinstance(e, (ast.List, ast.Tuple)):
        out = set()
        for x in e.elts:
            out |= expr_names(x)
        return out
    return A.names_loaded(e)


class Analysis:
    def __init__(self, norm, active_params):
        self.norm = norm
        self.params = list(norm.params) + list(norm.unit.extra_params)
        self.active = set(active_params)
        self.seq = set()
        self.sites = {}          # name -> number of assignment sites
        self.in_loop = set()     # names assigned inside a loop
        self._activity()
        self._kinds()
        self._sites()

    def _fixpoint(self, grow, step):
        """Add step(statement) to the set `grow` until nothing changes."""
        changed = True
        while changed:
            changed = False
            for s, _ in walk_body(self.norm.body):
                new = step(s) - grow
                if new:
                    grow |= new
                    changed = True

    def _activity(self):
        def step(s):
            new = set()
            if isinstance(s, ast.Assign):
                t = s.targets[0]
                flows = expr_names(s.value) & self.active
                if isinstance(t, ast.Name) and flows:
                    new.add(t.id)
                elif isinstance(t, ast.Subscript) and flows:
                    new.add(t.value.id)
            elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
                call = s.value
                args = set()
                for a in call.args:
                    args |= expr_names(a)
                if args & self.active and isinstance(call.func.value, ast.Name):
                    new.add(call.func.value.id)
            return new
        self._fixpoint(self.active, step)

    def _kinds(self):
        def step(s):
            new = set()
            if isinstance(s, ast.Assign):
                t, v = s.targets[0], s.value
                if isinstance(t, ast.Subscript):
                    new.add(t.value.id)
                elif isinstance(t, ast.Name):
                    special = A.get_tag(v, "special")
                    if special == "display" or (special == "container" and A.get_tag(
                            v, "container") in (list, tuple)):
                        new.add(t.id)
                    if isinstance(v, ast.Name) and (v.id in self.seq or t.id in self.seq):
                        new |= {v.id, t.id}
                    if special == "container" or special == "subscript":
                        base = v.args[0] if isinstance(v, ast.Call) else v.value
                        if isinstance(base, ast.Name):
                            new.add(base.id)
                    if special == "method" and isinstance(v.func.value, ast.Name):
                        new.add(v.func.value.id)
                        if v.func.attr == "copy":
                            new.add(t.id)
            elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
                if isinstance(s.value.func.value, ast.Name):
                    new.add(s.value.func.value.id)
            return new
        self._fixpoint(self.seq, step)

    def _sites(self):
        for p in self.params:
            self.sites[p] = 1
        self.first_defs = set()       # ids of top-level first assignments (nothing to save)
        seen = set(self.params)
        for s in self.norm.body:
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) \
                    and s.targets[0].id not in seen:
                self.first_defs.add(id(s))
            for n in ast.walk(s):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    seen.add(n.id)
        self.loads = {}
        for n in ast.walk(ast.Module(body=self.norm.body, type_ignores=[])):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                self.loads[n.id] = self.loads.get(n.id, 0) + 1
        for s, depth in walk_body(self.norm.body):
            targets = []
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
                targets = [s.targets[0].id]
            elif isinstance(s, ast.For):
                targets = [s.target.id]
                depth += 1
            for t in targets:
                self.sites[t] = self.sites.get(t, 0) + 1
                if depth > 0:
                    self.in_loop.add(t)

    def overwritten(self, name):
        return self.sites.get(name, 0) > 1 or name in self.in_loop

    def is_seq(self, name):
        return name in self.seq
