"""Reverse mode: turn a normalized function into a forward sweep and an adjoint sweep.

The forward sweep is the primal code plus bookkeeping: before a variable is overwritten its
old value is pushed on a stack when (and only when) the adjoint sweep reads it; ``if``
conditions live in variables (pushed when inside a loop); loops count their iterations.
The adjoint sweep walks the statements backwards: for ``t = TREE`` it recomputes the
intermediate values the rules need, applies each rule's partial derivatives to the incoming
adjoint ``dt`` and accumulates into the arguments' adjoints, then restores ``t``'s old value;
branches replay the recorded decision, loops run their recorded iteration count backwards.

Bookkeeping is first emitted as *markers*; `Resolver` then turns them into pushes and pops
for exactly the values the finished adjoint code reads, and drops adjoint loops and
branches that do no work (with their counters), so straight-line code with no overwrites
needs no stack at all.
"""
import ast
import copy

from . import astutil as A
from . import algebra
from .analysis import expr_names, walk_body, SCALAR, SEQ, UNKNOWN
from .errors import TranspileError
from .rules import lookup
from .rules.scalar import specialize
from .transform import Transform

PUSH, POP, STACK = "_push", "_pop", "_stack"
# kinds entry of a callee whose result's adjoint may be masked (see _masked_adjoints)
MASKED_RESULT = "[masked result]"


def marker(**tags):
    m = ast.Expr(value=A.const("marker"))
    return A.tag(m, marker=True, **tags)


class ReverseTransform(Transform):
    """`top_level`: the code is a gradient function (not the forward/backward pair a
    caller's derivative code calls): after its adjoint sweep every argument is left as
    the function leaves it (the sweep restores values the function overwrote in place)."""

    def __init__(self, norm, analysis, env, top_level=False):
        super().__init__(norm, analysis, env)
        self.top_level = top_level
        self.depth = 0
        self.self_target, self.self_contribs = None, []
        self.loop_ids = 0
        self.new_overwritten = set()
        self.primal = set(analysis.params) | set(analysis.sites)
        self.mutated = {st.targets[0].value.id for st, _ in walk_body(norm.body)
                        if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Subscript)
                        and isinstance(st.targets[0].value, ast.Name)}
        self.masked = self._masked_adjoints()
        self.cur_masked = False         # the statement being transformed: its target's
        self.cur_arrays = False         # adjoint may be masked; it may hold arrays
        # shapes (shapes.py): the parameters' masks this variant is specialised on, the
        # masks of user-call results (from the callees), callee variants that assume an
        # adjoint of exactly their result's shape (checked by shapes.specialise)
        self.shape_facts = {k[:-len(".shape")]: v for k, v in analysis.param_kinds.items()
                            if k.endswith(".shape")}
        self.call_results = {}
        self.callee_requests = {}
        self._primal_shapes = None

    def primal_shapes(self):
        """name -> symbolic shape of the primal's names (shapes.primal_shapes)."""
        if self._primal_shapes is None:
            from . import shapes
            results = {t: shapes.shape_of_mask(m) if m is not None else None
                       for t, m in self.call_results.items()}
            self._primal_shapes = shapes.primal_shapes(
                self.norm.body, self.an.params, self.shape_facts, shapes._resolver(self),
                results)
        return self._primal_shapes

    def _masked_adjoints(self):
        """Names whose adjoints may be exactly 0 for values that do not reach the result:
        what flows into a selection (np.where's branches, maximum, an index, elements an
        element write overwrites; rules declaring `masks`) and, back from there,
        everything flowing into those. Where such a value's partial derivative is inf or
        nan (np.sqrt(x) at x < 0 in the branch np.where drops), partial * adjoint is
        formed by `mul_masked`, which keeps the 0 (plain `*` elsewhere: no cost)."""
        out = set()
        if self.an.param_kinds.get(MASKED_RESULT):
            out.add(self.norm.result)
        active = self.an.active

        def names_in(e):
            return expr_names(e) & active

        def selects(v):
            special = A.get_tag(v, "special")
            if special == "subscript":
                return names_in(v.value)
            if special == "container" and A.get_tag(v, "container") in (max, min):
                return names_in(v)
            if special == "method" and self.an.kind_of(v.func.value) != SEQ:
                try:
                    rule, args = self.method_rule(v)
                except TranspileError:
                    return set()
                return names_in(v) if rule is not None and rule.masks else set()
            new = set()
            if special is None:
                for n in ast.walk(v):
                    if self._internal(n):
                        rule, args = self.rule_of(n)
                        if rule is not None and rule.masks:
                            for a in args:
                                new |= names_in(a)
            return new

        changed = True
        while changed:
            changed = False
            for st, _ in walk_body(self.norm.body):
                new = set()
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Subscript):
                    base = st.targets[0].value.id
                    new.add(base)               # the overwritten elements get 0
                    if base in out:
                        new |= names_in(st.value)
                elif isinstance(st, ast.Assign):
                    if st.targets[0].id in out:
                        new |= names_in(st.value)
                    new |= selects(st.value)
                elif isinstance(st, ast.Expr) and A.get_tag(st.value, "special") == "method":
                    base = st.value.func.value
                    if isinstance(base, ast.Name) and base.id in out:
                        new |= names_in(st.value)
                new = (new & active) - out
                if new:
                    out |= new
                    changed = True
        return out

    def masked_product(self, p, g):
        """p * g for a partial p and an adjoint g: `mul_masked(p, g)` (exactly 0 where g
        is 0) when g may be masked and p may be inf or nan, else the plain product."""
        if self.cur_masked and not _surely_finite(p):
            return ast.Call(func=A.load(self.env.helper("mul_masked")),
                            args=[p, copy.deepcopy(g)], keywords=[])
        return algebra.mul(p, copy.deepcopy(g))

    # --- driving ---------------------------------------------------------------------
    def run(self):
        fwd, rev = self.block(self.norm.body)
        if self.top_level:
            where = self.unit.node
            for p in sorted(self.written_params()):
                kept = self.names.fresh("_final_" + p.lstrip("_"))
                arg = p
                if self.an.sites.get(p, 0) > 1:     # rebound: follow the caller's object
                    arg = self.names.fresh("_arg_" + p.lstrip("_"))
                    fwd.insert(0, A.located(marker(final_alias=(p, arg)), where))
                fwd.append(A.located(marker(final_save=(p, arg, kept)), where))
                rev.append(A.located(marker(final_restore=(p, arg, kept)), where))
        return fwd, rev

    def written_params(self):
        """Parameters whose contents the function changes in place (element writes, also
        into their elements, and in-place methods)."""
        from .analysis import MUTATING_METHODS
        out = set(self.mutated)
        for st, _ in walk_body(self.norm.body):
            v = getattr(st, "value", None)
            if A.get_tag(v, "special") == "method" and A.get_tag(v, "method") in \
                    MUTATING_METHODS and isinstance(v.func.value, ast.Name):
                out.add(v.func.value.id)
        holders = {}
        for st, _ in walk_body(self.norm.body):
            if A.get_tag(st, "holder") and isinstance(st.value, ast.Subscript) and \
                    isinstance(st.value.value, ast.Name):
                holders[st.targets[0].id] = st.value.value.id
        for name in list(out):
            while name in holders:          # x = xs[i]; x[j] = v: xs's element changes
                name = holders[name]
                out.add(name)
        return out & set(self.an.params)

    def block(self, stmts):
        fwd, rev = [], []
        for s in stmts:
            prev, self.cur = self.cur, s
            f, r = self.stmt(s)
            self.cur = prev
            for n in f + r:
                A.located(n, s)
            fwd.extend(f)
            rev[:0] = r
        return fwd, rev

    def stmt(self, s):
        if A.get_tag(s, "forward_only") or A.get_tag(s, "loop_exit"):
            return [s], []
        if isinstance(s, ast.Assign):
            t = s.targets[0]
            if isinstance(t, ast.Name):
                return self.assign(s, t.id, s.value)
            if isinstance(t, ast.Subscript):
                return self.setitem(s, t, s.value)
        if isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
            return self.method_stmt(s, s.value)
        if isinstance(s, ast.If):
            return self.if_(s)
        if isinstance(s, ast.For):
            return self.for_(s)
        if isinstance(s, ast.While):
            return self.while_(s)
        if isinstance(s, ast.Break):
            return [s], []
        if isinstance(s, ast.Pass):
            return [], []
        raise self.error(f"unsupported statement '{type(s).__name__}'", s)

    # --- assignments -----------------------------------------------------------------
    def assign(self, s, t, value):
        special = A.get_tag(value, "special")
        self.cur_arrays = self.an.kind.get(t) != SCALAR or self.an.kind_of(value) != SCALAR
        self.cur_masked = t in self.masked and self.cur_arrays
        if special == "user":
            return self.user_call(s, t, value)
        first = id(s) in self.an.first_defs
        if (special == "subscript" and isinstance(value.value, ast.Name)
                and value.value.id in self.mutated and self.an.kind.get(value.value.id) != SEQ):
            # a slice of an array that is written to later is a view: keep a copy
            s = A.assign(t, ast.Call(func=A.load(self.env.helper("snapshot")), args=[value],
                                     keywords=[]), s)
        fwd = [s] if first else [marker(save=t), s]
        restore = [] if first else [marker(restore=t)]
        if t not in self.an.active:
            if special == "method" and self.is_stack_pop(value):
                # the popped value carries no derivative, but the adjoint of the list
                # must still grow back by one entry
                return fwd, self.special_adjoint(t, value, A.const(0.0)) + restore
            return fwd, restore
        if not self.active(value):
            # an active variable overwritten by a constant: its old value no longer
            # matters downstream, so whatever adjoint arrived stops here
            return fwd, restore + [A.assign(self.d(t), A.const(0.0))]
        dt = self.d(t)
        uses_t = t in expr_names(value)
        if special is None:
            return fwd, self.tree_statement(t, value, restore)
        if not uses_t:
            rev = self.special_adjoint(t, value, A.load(dt), A.load(t))
            return fwd, rev + restore + [A.assign(dt, A.const(0.0))]
        g, ans = self.names.fresh("_g"), self.names.fresh("_ans")
        rev = [A.assign(g, A.load(dt)), A.assign(dt, A.const(0.0)), A.assign(ans, A.load(t))]
        rev += restore
        rev += self.special_adjoint(t, value, A.load(g), A.load(ans))
        return fwd, rev

    def tree_statement(self, t, value, restore):
        """Adjoint of `t = TREE`."""
        dt = self.d(t)
        uses_t = t in expr_names(value)
        scalar = self.an.kind_of(value) == SCALAR
        rule, _ = self.rule_of(value) if self._internal(value) else (None, [])
        wants_ans = rule is not None and rule.vjps is not None
        if not uses_t:
            # the rules read the arguments and (as `ans`) t's new value: before the restore
            return (self.tree_adjoint(value, A.load(dt), top=t) + restore
                    + [A.assign(dt, A.const(0.0))])
        rev = []
        ans = None
        if not scalar:
            g = self.names.fresh("_g")
            rev += [A.assign(g, A.load(dt)), A.assign(dt, A.const(0.0))]
            G = A.load(g)
        else:
            G = A.load(dt)
        if wants_ans:
            ans = self.names.fresh("_ans")
            rev.append(A.assign(ans, A.load(t)))
        rev += restore
        if not scalar:
            return rev + self.tree_adjoint(value, G, top=ans)
        # t = f(t, ...) on scalars: contributions to dt itself are collected and assigned
        # last, so the incoming adjoint is read directly from dt (no copy, no reset)
        self.self_target, self.self_contribs = t, []
        rev += self.tree_adjoint(value, G, top=ans)
        contribs, self.self_target = self.self_contribs, None
        if not (len(contribs) == 1 and contribs[0] is None):
            coefs = [A.const(1.0) if c is None else c for c in contribs]
            total = coefs[0] if coefs else A.const(0.0)
            for c in coefs[1:]:
                total = ast.BinOp(left=total, op=ast.Add(), right=c)
            rev.append(A.assign(dt, self.masked_product(total, A.load(dt))))
        return rev

    def accumulate(self, name, G):
        """d<name> += G (lists/tuples through `add`)."""
        if name not in self.an.active:
            return []
        if isinstance(G, ast.Constant) and G.value == 0:
            return []
        dv = self.d(name)
        kind = self.an.kind.get(name)
        if kind == SEQ or kind in (UNKNOWN, None) and self.an.is_seq(name) or (
                kind == UNKNOWN and self.unit.is_generated):
            # lists; in derivative code differentiated again, anything that may be one
            value = ast.Call(func=A.load(self.env.helper("add")), args=[A.load(dv), G],
                             keywords=[])
        elif isinstance(G, ast.UnaryOp) and isinstance(G.op, ast.USub):
            value = ast.BinOp(left=A.load(dv), op=ast.Sub(), right=G.operand)
        else:
            value = ast.BinOp(left=A.load(dv), op=ast.Add(), right=G)
        return [A.assign(dv, value)]

    # --- expression trees: rules applied with recomputed intermediates ----------------
    def tree_adjoint(self, expr, G, top=None):
        """Adjoint statements for `t = expr` given dt = G (an atom).

        Values of subexpressions that partial derivatives need are recomputed from the
        (restored) inputs: into a temporary when used twice, inline when used once. The
        adjoint flowing down is kept as `coefficient * G`, so contributions to the same
        target can be factored: ``dy = (math.cos(y) * w + 0.5) * dy``.
        """
        out = []
        needed = {}
        self._mark_needed(expr, needed)
        values = {}
        if top is not None:
            values[id(expr)] = top            # the statement's own result, already at hand
        self._emit_values(expr, needed, values, out)
        self._propagate(expr, None, G, values, out)
        return out

    def check_available(self, rule, n):
        if rule.unavailable is not None:
            err = self.error(rule.unavailable, n)
            err.no_reverse_rule = True      # grad of grad falls back to forward over reverse
            raise err

    def _internal(self, n):
        return isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) and not A.get_tag(
            n, "inactive")

    def _mark_needed(self, n, needed):
        if not self._internal(n) or not self.active(n):
            return
        rule, args = self.rule_of(n)
        if rule is None or rule.zero:
            return
        self.check_available(rule, n)

        def use(node, times=1):
            if self._internal(node):
                needed[id(node)] = needed.get(id(node), 0) + times
        if rule.vjps is not None:
            use(n, 2)
            for a in args:
                use(a, 2)
        else:
            partials = rule.partials
            if partials is None or len(partials) < len(args):
                raise self.error(f"the rule for {rule.name} has no derivative for "
                                 f"{len(args)} arguments", n)
            for i, a in enumerate(args):
                if not self.active(a) or partials[i] is None:
                    continue
                for j, p in enumerate(rule.params):
                    if j < len(args):
                        k = _count_loads(partials[i], p)
                        if k:
                            use(args[j], k)
        for a in args:
            self._mark_needed(a, needed)

    def _value_expr(self, n, values):
        if id(n) in values:
            return A.load(values[id(n)])
        if not self._internal(n):
            return copy.deepcopy(n)
        rule, args = self.rule_of(n)
        new = copy.copy(n)
        if isinstance(n, ast.BinOp):
            new.left, new.right = (self._value_expr(a, values) for a in args)
        elif isinstance(n, ast.UnaryOp):
            new.operand = self._value_expr(args[0], values)
        else:
            new.args = [self._value_expr(a, values) for a in args]
        return new

    def _recompute(self, n, values):
        """The expression computing node n from its operands' values."""
        own = values.pop(id(n), None)
        try:
            return self._value_expr(n, values)
        finally:
            if own is not None:
                values[id(n)] = own

    def _emit_values(self, n, needed, values, out):
        if not self._internal(n):
            return
        _, args = self.rule_of(n)
        for a in args:
            self._emit_values(a, needed, values, out)
        if id(n) not in values and needed.get(id(n), 0) > 1 and not (isinstance(n, ast.UnaryOp)
                                             and A.is_atom(n.operand)):
            v = self.names.fresh("_v")
            out.append(A.assign(v, self._value_expr(n, values)))
            values[id(n)] = v

    def _propagate(self, n, coef, G, values, out, broadcast=False):
        """Push the adjoint coef * G (coef None means 1) down to the leaves of n.

        `broadcast`: n met other operands that may be arrays, so what reaches a leaf is
        summed back to the leaf's own shape (unbroadcast)."""
        if isinstance(n, ast.Name):
            if n.id == self.self_target and n.id in self.an.active:
                self.self_contribs.append(coef)
                return
            full = G if coef is None else (coef if G is None else self.masked_product(
                coef, G))
            full = copy.deepcopy(full)
            if broadcast:       # summing is linear: keep a sign outside, -unbroadcast(g)
                negated = isinstance(full, ast.UnaryOp) and isinstance(full.op, ast.USub)
                full = ast.Call(func=A.load(self.env.helper("unbroadcast")),
                                args=[full.operand if negated else full, A.load(n.id)],
                                keywords=[])
                if negated:
                    full = algebra.neg(full)
            out += self.accumulate(n.id, full)
            return
        if not self._internal(n) or not self.active(n):
            return
        rule, args = self.rule_of(n)
        if rule is None:
            raise self.error(f"no derivative rule for {ast.unparse(n)}", n)
        if rule.zero:
            return
        self.check_available(rule, n)
        self.check_keywords(n, rule)
        self.check_not_list_arithmetic(n, args)
        act = [i for i, a in enumerate(args) if self.active(a)]
        if len(act) > 1 and coef is not None and not A.is_atom(coef):
            g = self.names.fresh("_g")
            out.append(A.assign(g, coef))
            coef = A.load(g)
        for i in act:
            if rule.vjps is not None:
                fn = rule.vjps[i] if i < len(rule.vjps) else None
                if fn is None:
                    continue
                helper = self.env.bind(f"{_short(rule.name)}_vjp{i}", fn,
                                       origin=("vjp", rule, i))
                full = G if coef is None else (coef if G is None else self.masked_product(
                    coef, G))
                ans = self._value_expr(n, values) if _reads_ans(rule) else A.const(None)
                child = ast.Call(func=A.load(helper), args=[copy.deepcopy(full), ans]
                    + [self._value_expr(a, values) for a in args],
                    keywords=copy.deepcopy(getattr(n, "keywords", [])))
                self._propagate(args[i], child, None, values, out)
                continue
            p = rule.partials[i]
            if p is None:
                continue
            mapping = {name: self._value_expr(args[j], values)
                       for j, name in enumerate(rule.params) if j < len(args)}
            p = self.env.instantiate(specialize(p, mapping), mapping, rule.env)
            if id(n) in values:       # d exp(x) = exp(x): reuse the value computed already
                p = A.replace_equal(p, self._recompute(n, values), A.load(values[id(n)]))
            p = algebra.fold(p)
            if rule.masks and self.cur_arrays and rule.name.startswith("numpy"):
                # a selection's adjoint is 0 where it does not select, whatever flows in
                # (an inf from np.sqrt(np.maximum(x, 0)) at 0): mask * adjoint keeps it
                full = G if coef is None else (coef if G is None else algebra.mul(
                    copy.deepcopy(coef), copy.deepcopy(G)))
                child = ast.Call(func=A.load(self.env.helper("mul_masked")),
                                 args=[copy.deepcopy(full), p], keywords=[])
                others = [self.an.kind_of(a) for j, a in enumerate(args) if j != i]
                self._propagate(args[i], child, None, values, out,
                                broadcast=any(k != SCALAR for k in others))
                continue
            if coef is None:
                child = p
            elif G is None:             # coef is the adjoint itself
                child = self.masked_product(p, coef)
            else:                       # a product of partials, times G at the leaves
                child = algebra.mul(p, copy.deepcopy(coef))
            if G is not None and isinstance(child, ast.Constant) and child.value == 1:
                child = None
            others = [self.an.kind_of(a) for j, a in enumerate(args) if j != i and not (
                isinstance(a, ast.Name) and isinstance(args[i], ast.Name)
                and a.id == args[i].id)]
            self._propagate(args[i], child, G, values, out,
                            broadcast=any(k != SCALAR for k in others))

    # --- special right-hand sides ----------------------------------------------------
    def apply_rule(self, rule, args, keywords, G, ans, node):
        """Adjoint of `ans = fn(*args, **keywords)` for a rule-backed fn, args atoms."""
        if rule is None or rule.zero:
            if rule is None and any(self.active(a) for a in args):
                raise self.error(f"no derivative rule for {ast.unparse(node)}", node)
            return []
        call = A.tag(ast.Call(func=A.load("_"), args=args, keywords=keywords), rule=rule)
        out = []
        values = {id(call): ans.id} if isinstance(ans, ast.Name) else {}
        self._mark_and_propagate(call, G, values, out)
        return out

    def _mark_and_propagate(self, call, G, values, out):
        needed = {}
        self._mark_needed(call, needed)
        self._emit_values(call, needed, values, out)
        self._propagate(call, None, G, values, out)

    def special_adjoint(self, t, v, G, ans=None):
        special = A.get_tag(v, "special")
        h = self.env.helper
        if special == "subscript":
            base = v.value.id
            if base not in self.an.active:
                return []
            call = ast.Call(func=A.load(h("add_at")), args=[
                A.load(self.d(base)), A.load(base), A.index_value(v.slice), G], keywords=[])
            return [A.assign(self.d(base), call)]
        if special == "display":
            out = []
            for k, e in enumerate(v.elts):
                if isinstance(e, ast.Name) and e.id in self.an.active:
                    out += self.accumulate(e.id, ast.Call(
                        func=A.load(h("item")), args=[copy.deepcopy(G), A.const(k)],
                        keywords=[]))
            return out
        if special == "container":
            fn = A.get_tag(v, "container")
            args = v.args
            for k in v.keywords:
                if self.active(k.value):
                    raise self.error(f"no derivative flows through the keyword argument "
                                     f"'{k.arg}' of {fn.__name__}", v)
            if fn in (list, tuple) and len(args) == 1:
                return self.accumulate(args[0].id, G) if isinstance(args[0], ast.Name) else []
            if fn is sum:
                out = []
                if isinstance(args[0], ast.Name) and args[0].id in self.an.active:
                    base = args[0].id
                    out.append(A.assign(self.d(base), ast.Call(
                        func=A.load(h("add_to_each")),
                        args=[A.load(self.d(base)), A.load(base), G], keywords=[])))
                if len(args) > 1 and isinstance(args[1], ast.Name):
                    g = copy.deepcopy(G)
                    if not (self.an.kind_of(v) == SCALAR == self.an.kind_of(args[1])):
                        # the start value may have broadcast against the elements
                        g = ast.Call(func=A.load(h("unbroadcast")), args=[g, A.load(
                            args[1].id)], keywords=[])
                    out += self.accumulate(args[1].id, g)
                return out
            if fn in (max, min) and len(args) == 1 and isinstance(args[0], ast.Name):
                base = args[0].id
                which = h("argmax" if fn is max else "argmin")
                idx = ast.Call(func=A.load(which), args=[A.load(base)], keywords=[])
                return [A.assign(self.d(base), ast.Call(func=A.load(h("add_at")), args=[
                    A.load(self.d(base)), A.load(base), idx, G], keywords=[]))]
            raise self.error(f"no derivative rule for {ast.unparse(v.func)} with these "
                             "arguments", v)
        if special == "method":
            name = A.get_tag(v, "method")
            base = v.func.value
            if name == "pop" and self.is_stack_pop(v):
                return [A.assign(self.d(base.id), ast.Call(
                    func=A.load(h("push_adjoint")),
                    args=[A.load(self.d(base.id)), A.load(base.id), G], keywords=[]))]
            if name == "copy" and isinstance(base, ast.Name) and self.an.kind_of(base) in (
                    SEQ, SCALAR):
                return self.accumulate(base.id, G)
            if self.an.kind_of(base) != SEQ:
                rule, args = self.method_rule(v)
                if rule is not None:
                    return self.apply_rule(rule, args, copy.deepcopy(v.keywords), G, ans, v)
            raise self.error(f"no derivative rule for the method '.{name}()' on a "
                             "differentiated value", v)
        if special == "opaque":
            what = A.get_tag(v, "opaque")
            label = what if isinstance(what, str) else _callable_name(what)
            if isinstance(what, str) and what.endswith(("display", "comprehension")):
                raise self.error(f"unsupported construct: {what} holding a differentiated "
                                 "value", v)
            raise self.error(f"no derivative rule for '{label}' and it is not a Python "
                             "function transpile can read; register a rule with "
                             "transpile.defvjp", v)
        if special == "attr":
            import numpy as np
            if v.attr == "T":
                return self.apply_rule(lookup(np.transpose, 1), [v.value], [], G, ans, v)
            if v.attr == "real":
                return self.accumulate(v.value.id, G)
            raise self.error(f"no derivative rule for the attribute '.{v.attr}' of a "
                             "differentiated value", v)
        raise self.error(f"unsupported expression {ast.unparse(v)}", v)

    def user_call(self, s, t, call):
        target = A.get_tag(call, "user")
        params, bound = self.env.bind_call(target, call, self.unit, s)
        active = [p for p in params if p in bound and self.active(bound[p])]
        if not active or t not in self.an.active:
            reset = [A.assign(self.d(t), A.const(0.0))] if t in self.an.active else []
            return [marker(save=t), plain_call(s, target)], [marker(restore=t)] + reset
        kinds = {}
        for p, arg in bound.items():
            kinds[p] = self.an.kind_of(arg) or "unknown"
            if kinds[p] == "seq" and isinstance(arg, ast.Name):
                kinds[p + "[]"] = self.an.elem.get(arg.id, "unknown")
        if self.cur_masked:
            kinds[MASKED_RESULT] = "masked"     # the callee keeps zeros of its adjoint
        request = None
        if self.shape_facts or self.call_results:
            from . import shapes
            known = self.primal_shapes()
            for p, arg in bound.items():
                mask = shapes.mask_of(known.get(arg.id) if isinstance(arg, ast.Name) else
                                      shapes.PY if isinstance(arg, ast.Constant) and type(
                                          arg.value) in (int, float) else None)
                if mask is not None and len(mask) <= 4:   # (a bounded number of variants)
                    kinds[p + ".shape"] = mask
            # predicted: this adjoint will have exactly the result's shape (checked when
            # the sweeps are finished; shapes.specialise redirects the call if not)
            kinds[shapes.RESULT_ADJOINT] = shapes.EXACT
            request = len(self.callee_requests) + 1
            self.callee_requests[request] = {"target": target, "active": tuple(active),
                                             "kinds": dict(kinds), "stmt": s, "result": t,
                                             "args": dict(bound)}
        fwd_name, bwd_name = self.env.callee(target, tuple(active), kinds, s)
        if request is not None:
            callee = self.env.origins.get(fwd_name, (None, None))[1]
            mask = getattr(callee, "result_shape", None)
            if mask is not None and self.call_results.get(t, mask) == mask:
                self.call_results[t] = mask
            elif t in self.call_results:
                self.call_results[t] = None      # two calls, two shapes: not known
            self._primal_shapes = None
        tape = self.names.fresh("_tape")
        if self.depth > 0:
            self.new_overwritten.add(tape)
        self.primal.add(tape)
        new_call = ast.Call(func=A.load(fwd_name), args=call.args, keywords=call.keywords)
        if request is not None:
            A.tag(new_call, callee_request=request)
        fwd = [marker(save=t), marker(save=tape),
               A.assign(ast.Tuple(elts=[A.store(t), A.store(tape)], ctx=ast.Store()),
                        new_call)]
        dt = self.d(t)
        g = self.names.fresh("_g")
        rev = [A.assign(g, A.load(dt)), A.assign(dt, A.const(0.0))]
        outs = [self.names.fresh("_d") for _ in active]
        back = ast.Call(func=A.load(bwd_name), args=[A.load(tape), A.load(g)], keywords=[])
        if request is not None:
            A.tag(back, callee_request=request, callee_backward=True)
        rev.append(A.assign(ast.Tuple(elts=[A.store(o) for o in outs], ctx=ast.Store()),
                            back))
        # undo the two saves in reverse order: the tape was pushed last
        rev += [marker(restore=tape), marker(restore=t)]
        for p, o in zip(active, outs):
            arg = bound[p]
            if isinstance(arg, ast.Name):
                rev += self.accumulate(arg.id, A.load(o))
        return fwd, rev

    def setitem(self, s, target, value):
        base = target.value.id
        array = self.an.kind.get(base) != SEQ
        fwd = [marker(save_elem=(base, target.slice, array)), s]
        if base not in self.an.active:
            return fwd, [marker(restore_elem=(base, target.slice, array))]
        g = self.names.fresh("_g")
        dbase = self.d(base)
        rev = [A.assign(ast.Tuple(elts=[A.store(g), A.store(dbase)], ctx=ast.Store()),
                        ast.Call(func=A.load(self.env.helper("take_item")),
                                 args=[A.load(dbase), A.index_value(target.slice)],
                                 keywords=[])),
               marker(restore_elem=(base, target.slice, array))]
        if isinstance(value, ast.Name):
            G = A.load(g)
            if array:          # a scalar (or smaller array) broadcast into the slice
                G = ast.Call(func=A.load(self.env.helper("unbroadcast")),
                             args=[G, A.load(value.id)], keywords=[])
            rev += self.accumulate(value.id, G)
        return fwd, rev

    def method_stmt(self, s, call):
        name = A.get_tag(call, "method")
        base = call.func.value
        if not (isinstance(base, ast.Name) and base.id in self.an.active):
            return [s], []
        if name == "append" and len(call.args) == 1:
            g = self.names.fresh("_g")
            dbase = self.d(base.id)
            rev = [A.assign(ast.Tuple(elts=[A.store(g), A.store(dbase)], ctx=ast.Store()),
                            ast.Call(func=A.load(self.env.helper("pop_adjoint")),
                                     args=[A.load(dbase), A.load(base.id)], keywords=[]))]
            arg = call.args[0]
            if isinstance(arg, ast.Name):
                rev += self.accumulate(arg.id, A.load(g))
            return [s], rev
        raise self.error(f"no derivative rule for the in-place method '.{name}()' on a "
                         "differentiated value (write `y = np.sort(x)`-style code instead)", s)

    # --- control flow ----------------------------------------------------------------
    def if_(self, s):
        fb, rb = self.block(s.body)
        fo, ro = self.block(s.orelse)
        fwd = ast.If(test=s.test, body=fb or [ast.Pass()], orelse=fo)
        rev = ast.If(test=copy.deepcopy(s.test), body=rb or [ast.Pass()], orelse=ro)
        return [fwd], [A.tag(rev, reverse_branch=True)]

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


def plain_call(s, target):
    """`t = h(x, w=w)` -> `t = h(x)`: a call of a lifted nested function that needs no
    derivative calls the function as the user wrote it (without its lifted extras)."""
    extras = set(getattr(target, "extra_params", ()))
    if not extras:
        return s
    call = copy.copy(s.value)
    call.keywords = [k for k in call.keywords if k.arg not in extras]
    return A.assign(s.targets[0], call, s)


def _surely_finite(e):
    """Is the partial-derivative expression e finite whatever its operands hold? Numbers,
    comparisons (masks) and sums and products of those."""
    if isinstance(e, ast.Constant):
        return isinstance(e.value, (bool, int, float)) and e.value - e.value == 0
    if isinstance(e, (ast.Compare, ast.BoolOp)):
        return True
    if isinstance(e, ast.UnaryOp):
        return _surely_finite(e.operand)
    if isinstance(e, ast.BinOp) and isinstance(e.op, (ast.Add, ast.Sub, ast.Mult,
                                                      ast.BitAnd, ast.BitOr)):
        return _surely_finite(e.left) and _surely_finite(e.right)
    return False


def _reads_ans(rule):
    """Does the rule's vjp `vjp(g, ans, *args)` read `ans`? The rule declares it
    (`Rule.needs_ans`); if not, the result need not be kept for the adjoint sweep."""
    return getattr(rule, "needs_ans", True)


def _count_loads(node, name):
    return sum(1 for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name
               and isinstance(n.ctx, ast.Load))


_OPERATOR_NAMES = {"@": "matmul", "+": "add", "-": "sub", "*": "mul", "/": "div",
                   "**": "pow", "%": "mod", "//": "floordiv"}


def _short(name):
    """A readable identifier for a rule's helper: np.linalg.solve -> solve, @ -> matmul."""
    import re
    name = _OPERATOR_NAMES.get(name, name).rsplit(".", 1)[-1]
    name = re.sub(r"\W", "_", name).strip("_") or "rule"
    return name if not name[0].isdigit() else "rule_" + name


def _callable_name(obj):
    mod = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{mod}.{name}" if mod and mod != "builtins" else name


# --- markers -> pushes and pops ------------------------------------------------------

class Resolver:
    """Replace markers by the pushes/pops the adjoint code needs; prune idle adjoint loops."""

    def __init__(self, transform, params):
        self.t = transform
        self.params = set(params)
        self.checkpointed = False       # loops re-run from checkpoints (restore objects)

    def overwritten(self, name):
        return self.t.an.overwritten(name) or name in self.t.new_overwritten

    def run(self, fwd_m, rev_m):
        self.checkpointed = any(A.get_tag(n, "checkpoint_adjoint") is not None
                                for s in rev_m for n in ast.walk(s))
        needed = None
        while True:
            self.needed = needed if needed is not None else _reads(rev_m) & self.t.primal
            self.saved = {v for v in self.needed if self.overwritten(v)}
            self.pruned = set()
            rev = _drop_pruned(self.block(rev_m, reverse=True), self.pruned)
            fwd = self.block(fwd_m, reverse=False)
            new_needed = _reads(rev) & self.t.primal
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
            if p not in self.needed and not self.checkpointed:
                return []
            if alias is not None:
                return [A.located(A.assign(alias[1], A.load(p)), m)]
            h = self.t.env.helper
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
            if not (self.t.an.sites.get(var, 0) > 1 or A.get_tag(m, "nested")
                    or var in self.params):
                return []
            self.saved.add(var)
            return [self._push(A.load(var))] if not reverse else [self._pop(A.store(var))]
        elem = A.get_tag(m, "save_elem") if not reverse else A.get_tag(m, "restore_elem")
        if elem is not None:
            base, index, array = elem
            if base not in self.needed:
                return []
            sub = ast.Subscript(value=A.load(base), slice=copy.deepcopy(index),
                                ctx=ast.Load() if not reverse else ast.Store())
            if reverse:
                return [self._pop(sub)]
            if array:                      # an array slice is a view: save a copy
                sub = ast.Call(func=A.load(self.t.env.helper("snapshot")), args=[sub],
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


def _reads(stmts):
    out = set()
    for s in stmts:
        if A.get_tag(s, "marker"):
            continue
        out |= _loaded(s)
    return out


def _loaded(node):
    """Names read in node; a re-run forward body (checkpointing) reads only what its tag
    lists: the values it takes from outside the loop (the rest come from a snapshot)."""
    inputs = A.get_tag(node, "recompute")
    if inputs is not None:
        return set(inputs)
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    out = set()
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        out.add(node.target.id)
    for child in ast.iter_child_nodes(node):
        out |= _loaded(child)
    return out


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
                func=A.load(record), args=[copy.deepcopy(s.body[positions[0]].value.args[0])],
                keywords=[]))
        else:                                   # copy at each push, record one tuple
            for k, j in enumerate(positions):
                body[j] = A.assign(saved[k], s.body[j].value.args[0])
            body.insert(positions[-1] + 1, ast.Expr(value=ast.Call(
                func=A.load(record), args=[ast.Tuple(elts=[A.load(x) for x in saved],
                                                     ctx=ast.Load())], keywords=[])))
        loop = copy.copy(s)
        loop.body = body
        new_fwd += A.parse_stmts(f"{tape} = []\n{record} = {tape}.append")
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
               for st in rbody for n in ast.walk(st)) and loop_var.id != "_":
            target = ast.Tuple(elts=[copy.deepcopy(loop_var), target], ctx=ast.Store())
            walked = ast.Call(func=A.load("zip"), args=[rloop.iter, walked], keywords=[])
        new_rloop = copy.copy(rloop)
        new_rloop.target, new_rloop.iter, new_rloop.body = target, walked, rbody
        rev[i] = new_rloop
        counters = {n.id for st in new_fwd + loop.body if A.get_tag(st, "loop") == L
                    for n in ast.walk(st) if isinstance(n, ast.Name)}
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
               for s in stmts for n in ast.walk(s))


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
