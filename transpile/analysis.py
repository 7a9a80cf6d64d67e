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
from .runtime import LIST_RESULTS

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


SCALAR, ARRAY, SEQ, UNKNOWN = "scalar", "array", "seq", "unknown"
MODULE = "module"        # a module passed as an argument: its functions are not visible
SHAPE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}


def value_kind(value):
    """The kind of a run-time value, as the transform specializes on it."""
    if isinstance(value, (bool, int, float)):
        return SCALAR
    try:
        import numpy
        if isinstance(value, numpy.ndarray):
            return ARRAY
        if isinstance(value, numpy.generic):
            return SCALAR if isinstance(value, numpy.floating) else ARRAY
    except ImportError:          # pragma: no cover
        pass
    if isinstance(value, (list, tuple)):
        return SEQ
    import types
    if isinstance(value, types.ModuleType):
        return MODULE
    return UNKNOWN


def join(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    if {a, b} == {SCALAR, ARRAY}:
        return ARRAY
    return UNKNOWN


class Analysis:
    def __init__(self, norm, active_params, param_kinds=None):
        self.norm = norm
        self.params = list(norm.params) + list(norm.unit.extra_params)
        self.active = set(active_params)
        self.seq = set()
        self.sites = {}          # name -> number of assignment sites
        self.in_loop = set()     # names assigned inside a loop
        self.kind = {}           # name -> SCALAR | ARRAY | SEQ | UNKNOWN
        self.elem = {}           # SEQ name -> kind of its elements
        self._activity()
        self._kinds()
        self._sites()
        self._value_kinds(param_kinds or {})

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
                    if special is None and isinstance(v, ast.Call) and getattr(A.get_tag(
                            v, "rule"), "fn", None) in LIST_RESULTS:
                        new.add(t.id)       # an adjoint list in derivative code
                    if special == "method" and isinstance(v.func.value, ast.Name):
                        new.add(v.func.value.id)
                        if v.func.attr == "copy":
                            new.add(t.id)
            elif isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
                if isinstance(s.value.func.value, ast.Name):
                    new.add(s.value.func.value.id)
            return new
        self._fixpoint(self.seq, step)

    # --- value kinds: what a variable holds (specialized on the argument types) -------
    def kind_of(self, e):
        """Kind of the value of a normalized expression."""
        if isinstance(e, ast.Name):
            if e.id in self.kind:
                return self.kind[e.id]
            if e.id in self.sites or e.id in self.params:
                return None                       # not known yet (fixpoint)
            obj = self.norm.unit.lookup(e.id)
            return value_kind(obj)
        if isinstance(e, ast.Constant):
            return SCALAR if isinstance(e.value, (int, float, bool)) else UNKNOWN
        special = A.get_tag(e, "special")
        if A.get_tag(e, "inactive"):
            return self._inactive_kind(e)
        if isinstance(e, ast.BinOp):
            return join(self.kind_of(e.left), self.kind_of(e.right))
        if isinstance(e, ast.UnaryOp):
            return self.kind_of(e.operand)
        if isinstance(e, ast.Call) and special is None:          # rule-backed primitive
            rule = A.get_tag(e, "rule")
            module = getattr(getattr(rule, "fn", None), "__module__", "") or ""
            if module == "math":
                return SCALAR
            if module.startswith("numpy"):
                return ARRAY
            out = None
            for a in e.args:
                out = join(out, self.kind_of(a))
            return out if module == "builtins" else UNKNOWN
        if special == "display":
            return SEQ
        if special == "subscript":
            base = self.kind_of(e.value)
            if base == SEQ and isinstance(e.value, ast.Name):
                return self.elem.get(e.value.id, UNKNOWN) if not isinstance(
                    e.slice, ast.Slice) else SEQ
            if base == SCALAR:                   # indexing a shape tuple or similar
                return SCALAR
            return ARRAY if base == ARRAY else UNKNOWN
        if special == "container":
            fn = A.get_tag(e, "container")
            if fn in (list, tuple):
                return SEQ
            if isinstance(e.args[0], ast.Name):
                return self.elem.get(e.args[0].id, UNKNOWN)
            return UNKNOWN
        if special == "method":
            base = self.kind_of(e.func.value)
            if base == SEQ:
                return SEQ if A.get_tag(e, "method") == "copy" else UNKNOWN
            return ARRAY if base in (ARRAY, UNKNOWN) else UNKNOWN
        if special == "attr":
            return ARRAY if self.kind_of(e.value) == ARRAY else UNKNOWN
        return UNKNOWN

    def _inactive_kind(self, e):
        if isinstance(e, ast.Name):
            return self.kind_of(ast.Name(id=e.id, ctx=ast.Load()))
        if isinstance(e, ast.Constant):
            return SCALAR
        if isinstance(e, ast.Attribute) and e.attr in SHAPE_ATTRS:
            return SCALAR
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Attribute) \
                and e.value.attr == "shape":
            return SCALAR
        if isinstance(e, ast.Call):
            fn = self.norm.unit.resolve(e.func, set(self.sites) | set(self.params))
            if fn in (len, int, round, bool, float, range, isinstance):
                return SCALAR
            if (getattr(fn, "__module__", "") or "").startswith("numpy"):
                return ARRAY
            return UNKNOWN
        if isinstance(e, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp)):
            out = None
            for n in ast.walk(e):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                    k = self.kind_of(ast.Name(id=n.id, ctx=ast.Load()))
                    if k is not None:
                        out = join(out, k if k != SEQ else SCALAR)
                elif isinstance(n, ast.Call):
                    return UNKNOWN
            return out or SCALAR
        return UNKNOWN

    def _value_kinds(self, param_kinds):
        defaults = self._default_values()
        for p in self.params:
            self.kind[p] = param_kinds.get(p, value_kind(defaults[p]) if p in defaults
                                           else UNKNOWN)
            if self.kind[p] == SEQ:
                self.elem[p] = param_kinds.get(p + "[]", UNKNOWN)
        changed = True
        while changed:
            changed = False
            for s, _ in walk_body(self.norm.body):
                updates = []
                if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
                    t, v = s.targets[0].id, s.value
                    updates.append((t, self.kind_of(v)))
                    if A.get_tag(v, "special") == "display":
                        elem = None
                        for x in v.elts:
                            elem = join(elem, self.kind_of(x))
                        updates.append((t + "[]", elem))
                    elif isinstance(v, ast.Name) and v.id in self.elem:
                        updates.append((t + "[]", self.elem[v.id]))
                    elif A.get_tag(v, "special") in ("container", "method") and \
                            self.kind_of(v) == SEQ:
                        base = v.args[0] if A.get_tag(v, "special") == "container" \
                            else v.func.value
                        if isinstance(base, ast.Name) and base.id in self.elem:
                            updates.append((t + "[]", self.elem[base.id]))
                    elif A.get_tag(v, "special") == "subscript" and isinstance(
                            v.slice, ast.Slice) and isinstance(v.value, ast.Name) \
                            and v.value.id in self.elem:
                        updates.append((t + "[]", self.elem[v.value.id]))
                elif isinstance(s, ast.For):
                    updates.append((s.target.id, SCALAR))
                elif isinstance(s, ast.Expr) and A.get_tag(s.value, "method") == "append":
                    base = s.value.func.value
                    if isinstance(base, ast.Name) and s.value.args:
                        updates.append((base.id + "[]", self.kind_of(s.value.args[0])))
                elif isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Subscript):
                    base = s.targets[0].value
                    if isinstance(base, ast.Name) and self.kind.get(base.id) == SEQ:
                        updates.append((base.id + "[]", self.kind_of(s.value)))
                for name, k in updates:
                    if k is None:
                        continue
                    table, key = (self.elem, name[:-2]) if name.endswith("[]") else (
                        self.kind, name)
                    new = join(table.get(key), k)
                    if new != table.get(key):
                        table[key] = new
                        changed = True
        for name in self.sites:
            self.kind.setdefault(name, UNKNOWN)

    def _default_values(self):
        """Parameter -> default value (for parameters a call site leaves out)."""
        unit = self.norm.unit
        a = unit.node.args
        out = {}
        positional = [p.arg for p in a.posonlyargs + a.args]
        if unit.defaults:
            out.update(zip(positional[len(positional) - len(unit.defaults):], unit.defaults))
        out.update(unit.kwdefaults or {})
        return out

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
