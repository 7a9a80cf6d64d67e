"""Reverse mode: turn a normalized function into a forward sweep and an adjoint sweep.

The forward sweep is the primal code plus bookkeeping: before a variable is overwritten its
old value is pushed on a stack when (and only when) the adjoint sweep reads it; ``if``
conditions live in variables (pushed when inside a loop); loops count their iterations.
The adjoint sweep walks the statements backwards: for ``t = TREE`` it recomputes the
intermediate values the rules need, applies each rule's partial derivatives to the incoming
adjoint ``dt`` and accumulates into the arguments' adjoints, then restores ``t``'s old value;
branches replay the recorded decision, loops run their recorded iteration count backwards.

The passes of reverse mode, one file each: this file gives each statement its adjoint
(rules applied to the incoming adjoint, accumulation, calls of user functions, element
writes, in-place methods); `control_flow.py` reverses branches and loops; bookkeeping is
emitted as *markers* and `tapes.py` plans what is saved (pushes and pops for exactly the
values the finished adjoint code reads, per-loop tapes) from the `SweepPlan` this
transform hands on; `checkpoint.py` restructures long loops before that.
"""
import ast
import copy

from . import astutil as A
from . import algebra
from .analysis import expr_names, walk_body, SCALAR, SEQ, MAP, OBJECT, UNKNOWN, STRUCTURES
from . import calls
from .rules import containers
from .rules.scalar import specialize
from .rules.registry import no_derivative_message
from .control_flow import ControlFlowReversal, _count_loads
from .tapes import SweepPlan, marker
from .transform import Transform

# kinds entry of a callee whose result's adjoint may be masked (see _masked_adjoints)
MASKED_RESULT = "[masked result]"
# kinds entry of a callee whose result's adjoint may be the 0.0 placeholder (see zero_guard)
ZERO_RESULT = "[zero result adjoint]"


class ReverseTransform(ControlFlowReversal, Transform):
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
                        if isinstance(st, ast.Assign) and isinstance(
                            st.targets[0], (ast.Subscript, ast.Attribute))
                        and isinstance(st.targets[0].value, ast.Name)}
        # names of unknown kind holding what has fields or entries written or read (an
        # object, a dict): their adjoints may be dicts, accumulated with `add`
        self.structured = set(self.mutated) | {
            st.value.value.id for st, _ in walk_body(norm.body)
            if isinstance(st, ast.Assign) and A.get_tag(st.value, "special") == "attr"
            and isinstance(st.value.value, ast.Name)
            and containers.is_field(analysis, st.value)}
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
        self.zero_buffers = {}      # adjoint -> parameter: starts as zeros (shapes.py)
        # the zero placeholder (see zero_guard): where an adjoint may still be 0.0 when the
        # sweep reaches its definition, and whether a rule's adjoint called a vjp
        self.branches = 0
        self.unsure_top = self._unsure_top_level()
        self.vjp_called = False

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
            if special is not None:
                return containers.rule_for(v).selects(self, v) & active
            new = set()
            if special is None:
                for n in A.walk(v):
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
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], (ast.Subscript,
                                                                        ast.Attribute)):
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
        return self._dense_too(out, names_in, selects)

    def _dense_too(self, out, names_in, selects):
        """`out` without the names whose adjoint also has a dense part, so that it is not
        exactly 0 anywhere by selection: every value the name holds (a parameter, and
        each assignment on the straight-line path, where all of the name's assignments
        are) is read there by an assignment whose target's value is dense, other than as
        an operand a selection picks from (`h` of an MLP whose logits are shifted by
        their maximum: the shift selects, the softmax reads every logit). A value in
        `out` is dense until shown otherwise; the target's values are followed back
        until nothing changes."""
        body = self.norm.body
        top = [st for st in body if isinstance(st, ast.Assign) and len(st.targets) == 1
               and isinstance(st.targets[0], ast.Name)]
        top_ids = {id(st) for st in top}
        elsewhere = set()           # names stored other than by a top-level `name = e`
        for st, _ in walk_body(body):
            if id(st) in top_ids:
                continue
            for n in A.nodes(st):
                if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                    elsewhere.add(n.id)
                elif isinstance(n, (ast.Global, ast.Nonlocal)):
                    elsewhere |= set(n.names)
        for st in top:
            elsewhere |= {n.target.id for n in A.nodes(st.value) if isinstance(
                n, ast.NamedExpr) and isinstance(n.target, ast.Name)}
        forced = {st.targets[0].value.id for st, _ in walk_body(body) if isinstance(
            st, ast.Assign) and isinstance(st.targets[0], (ast.Subscript, ast.Attribute))
            and isinstance(st.targets[0].value, ast.Name)}
        tracked = out - elsewhere - forced
        if not tracked:
            return out
        version = {n: 0 for n in tracked}     # (0: a parameter's value)
        edges = []                  # (value read, value assigned, read densely)
        for st in top:
            picked = selects(st.value)
            reads = [(n, version[n]) for n in names_in(st.value) if n in tracked]
            t = st.targets[0].id
            if t in version:
                version[t] += 1
            target = (t, version[t]) if t in version else (t, None)
            spread = self._spreads(st.value)
            for n in reads:
                edges.append((n, target, spread and n[0] not in picked))
        dense = set()
        changed = True
        while changed:
            changed = False
            for value, target, plain in edges:
                if plain and value not in dense and (
                        target in dense if target[0] in tracked else target[0] not in out):
                    dense.add(value)
                    changed = True
        params = set(self.an.params)
        return out - {n for n in tracked if all(
            (n, v) in dense for v in range(0 if n in params else 1, version[n] + 1))}

    def _spreads(self, v):
        """Does every operation of v pass adjoints on to all of its operands' elements:
        arithmetic, and NumPy and math functions whose rules do not select (no `masks`),
        no index, no helper of transpile's (forward-mode code calls some that select)?"""
        if A.get_tag(v, "special") is not None:
            return False
        for n in ast.walk(v):
            if isinstance(n, (ast.Subscript, ast.IfExp, ast.Lambda, ast.NamedExpr)):
                return False
            if self._internal(n):
                rule, _ = self.rule_of(n)
                name = getattr(rule, "name", None) or ""
                if rule is None or rule.masks or not (
                        name.startswith(("numpy.", "math.")) or not name[:1].isalpha()):
                    return False
        return True

    def masked_product(self, p, g):
        """p * g for a partial p and an adjoint g: `mul_masked(p, g)` (exactly 0 where g
        is 0) when g may be masked and p may be inf or nan, else the plain product."""
        if self.cur_masked and not _surely_finite(p):
            return ast.Call(func=A.load(self.env.helper("mul_masked")),
                            args=[p, A.copy_tree(g)], keywords=[])
        return algebra.mul(p, A.copy_tree(g))

    # --- the zero placeholder ------------------------------------------------------------
    def _unsure_top_level(self):
        """The top-level assignments whose target's adjoint may still be the zero
        placeholder when the adjoint sweep reaches them: every later read of the value
        is inside a branch or a loop, or not an assignment, or an assignment unsure
        itself (ids of the statements). Straight-line code has none."""
        body = self.norm.body
        unsure = set()
        zero_result = bool(self.an.param_kinds.get(ZERO_RESULT))   # from a caller's loop
        for i in range(len(body) - 1, -1, -1):
            s = body[i]
            if not (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)):
                continue
            t = s.targets[0].id
            read = sure = False
            for later in body[i + 1:]:
                if _count_loads(later, t):
                    read = True
                    if (isinstance(later, ast.Assign) and isinstance(later.targets[0], ast.Name)
                            and id(later) not in unsure):
                        sure = True
                        break
                if t in A.names_stored(later):
                    break
            else:
                if t == self.norm.result:
                    read, sure = True, sure or not zero_result
            if read and not sure:
                unsure.add(id(s))
        return unsure

    def zero_guard(self, s, t, G, stmts):
        """stmts, the adjoint of `t = ...` for the incoming adjoint G, run only when G is
        not the zero placeholder where it may be one: an array value's adjoint in a loop,
        a branch or before them, when a rule's vjp function is called (a vjp needs g
        shaped like the value; a zero adjoint contributes nothing anyway)."""
        called, self.vjp_called = self.vjp_called, False
        if not (called and stmts and self.an.kind.get(t) != SCALAR and (
                self.depth > 0 or self.branches > 0 or id(s) in self.unsure_top)):
            return stmts
        test = ast.UnaryOp(op=ast.Not(), operand=ast.Call(
            func=A.load(self.env.helper("is_zero")), args=[A.copy_tree(G)], keywords=[]))
        return [ast.If(test=test, body=stmts, orelse=[])]

    # --- driving ---------------------------------------------------------------------
    def run(self):
        if self.top_level:
            self._check_result_is_no_structure()
        fwd, rev = self.block(self.norm.body)
        if self.top_level:
            where = self.unit.node
            through_calls = self.written_by_calls()
            for p in sorted(self.written_params()):
                kept = self.names.fresh("_final_" + p.lstrip("_"))
                arg = p
                if self.an.sites.get(p, 0) > 1:     # rebound: follow the caller's object
                    arg = self.names.fresh("_arg_" + p.lstrip("_"))
                    fwd.insert(0, A.located(marker(final_alias=(p, arg)), where))
                always = p in through_calls      # a callee's adjoint sweep restores it
                fwd.append(A.located(marker(final_save=(p, arg, kept), final_always=always),
                                     where))
                rev.append(A.located(marker(final_restore=(p, arg, kept),
                                            final_always=always), where))
        return fwd, rev

    def _check_result_is_no_structure(self):
        """A gradient needs a number: a returned dict or object (one written into) holding
        a derivative is refused at its first store (vjp takes a structured cotangent)."""
        result = self.norm.result
        kind = self.an.kind.get(result)
        if result not in self.an.active or not (kind in (MAP, OBJECT) or kind in (
                UNKNOWN, None) and result in self.mutated):
            return
        where = next((st for st, _ in walk_body(self.norm.body) if isinstance(
            st, ast.Assign) and isinstance(st.targets[0], (ast.Subscript, ast.Attribute))
            and isinstance(st.targets[0].value, ast.Name)
            and st.targets[0].value.id == result), None)
        raise self.error("unsupported construct: a value carrying a derivative is stored in "
                         f"the returned object '{result}': a gradient needs a function "
                         "returning a number (transpile.vjp takes a cotangent shaped like "
                         "a returned dict or object)", where)

    def plan(self, params):
        """The sweep plan (tapes.SweepPlan) for the passes after this one."""
        return SweepPlan(analysis=self.an, env=self.env, names=self.names, norm=self.norm,
                         params=frozenset(params), primal=frozenset(self.primal),
                         overwritten=frozenset(self.new_overwritten),
                         mutated=frozenset(self.mutated))

    def written_by_calls(self):
        """Parameters passed to user functions that change them in place."""
        from .analysis import written_by_call
        out = set()
        for st, _ in walk_body(self.norm.body):
            v = getattr(st, "value", None)
            if isinstance(v, ast.Call) and A.get_tag(v, "user") is not None:
                out |= written_by_call(self.an, st, v)
        return out & set(self.an.params)

    def written_params(self):
        """Parameters whose contents the function changes in place (element writes, also
        into their elements, and in-place methods)."""
        from .analysis import MUTATING_METHODS
        out = set(self.mutated) | self.written_by_calls()
        for st, _ in walk_body(self.norm.body):
            v = getattr(st, "value", None)
            if A.get_tag(v, "special") == "method" and A.get_tag(v, "method") in \
                    MUTATING_METHODS and isinstance(v.func.value, ast.Name):
                out.add(v.func.value.id)
        holders = {}
        for st, _ in walk_body(self.norm.body):
            if A.get_tag(st, "holder") and isinstance(st.value, (
                    ast.Subscript, ast.Attribute)) and \
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
        if isinstance(s, ast.Try):
            from .control_flow import try_
            return try_(self, s)
        if A.get_tag(s, "forward_only") or A.get_tag(s, "loop_exit"):
            return [s], []
        if isinstance(s, ast.Assign):
            t = s.targets[0]
            if isinstance(t, ast.Name):
                return self.assign(s, t.id, s.value)
            if isinstance(t, (ast.Subscript, ast.Attribute)):
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
        orig = s
        special = A.get_tag(value, "special")
        self.cur_arrays = self.an.kind.get(t) != SCALAR or self.an.kind_of(value) != SCALAR
        self.cur_masked = t in self.masked and self.cur_arrays
        if special == "user":
            return self.user_call(s, t, value)
        if special == "dynamic":
            return self.dynamic_call(s, t, value)
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
            return fwd, self.tree_statement(orig, t, value, restore)
        self.vjp_called = False
        if not uses_t:
            rev = self.zero_guard(orig, t, A.load(dt),
                                  self.special_adjoint(t, value, A.load(dt), A.load(t)))
            return fwd, rev + restore + [A.assign(dt, A.const(0.0))]
        g, ans = self.names.fresh("_g"), self.names.fresh("_ans")
        rev = [A.assign(g, A.load(dt)), A.assign(dt, A.const(0.0)), A.assign(ans, A.load(t))]
        rev += restore
        rev += self.zero_guard(orig, t, A.load(g),
                               self.special_adjoint(t, value, A.load(g), A.load(ans)))
        return fwd, rev

    def tree_statement(self, s, t, value, restore):
        """Adjoint of `t = TREE` (the statement s)."""
        dt = self.d(t)
        uses_t = t in expr_names(value)
        scalar = self.an.kind_of(value) == SCALAR
        rule, _ = self.rule_of(value) if self._internal(value) else (None, [])
        wants_ans = rule is not None and rule.vjps is not None
        self.vjp_called = False
        if not uses_t:
            # the rules read the arguments and (as `ans`) t's new value: before the restore
            return (self.zero_guard(s, t, A.load(dt), self.tree_adjoint(value, A.load(dt), top=t))
                    + restore + [A.assign(dt, A.const(0.0))])
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
            return rev + self.zero_guard(s, t, G, self.tree_adjoint(value, G, top=ans))
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
        if self.an.complex and name not in self.an.complex and \
                self.an.complex_statement(self.cur):
            # a surely real value gets the real part of what a complex one sends it
            G = ast.Call(func=A.load(self.env.helper("real_part")), args=[G], keywords=[])
        kind = self.an.kind.get(name)
        if kind in STRUCTURES or kind in (UNKNOWN, None) and (
                self.an.is_seq(name) or name in self.structured) or (
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
        for i, a in enumerate(args):
            if i in rule.no_derivative and self.active(a):
                raise self.error(no_derivative_message(rule, i), n)

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
            return A.copy_tree(n)
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
            full = A.copy_tree(full)
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
        if rule.result == "real" and self.an.complex and self.an.complex_statement(self.cur):
            # a real result's adjoint is real: the real part of what flows in
            full = G if coef is None else (coef if G is None else self.masked_product(
                coef, G))
            g = self.names.fresh("_g")
            out.append(A.assign(g, ast.Call(func=A.load(self.env.helper("real_part")),
                                            args=[A.copy_tree(full)], keywords=[])))
            coef, G = A.load(g), None
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
                self.vjp_called = True
                full = G if coef is None else (coef if G is None else self.masked_product(
                    coef, G))
                ans = self._value_expr(n, values) if _reads_ans(rule) else A.const(None)
                child = ast.Call(func=A.load(helper), args=[A.copy_tree(full), ans]
                    + [self._value_expr(a, values) for a in args],
                    keywords=A.copy_tree(getattr(n, "keywords", [])))
                self._propagate(args[i], child, None, values, out)
                continue
            p = rule.partials[i]
            if p is None:
                continue
            mapping = {name: self._value_expr(args[j], values)
                       for j, name in enumerate(rule.params) if j < len(args)}
            p = self.env.instantiate(specialize(p, mapping), mapping, rule.env)
            if id(n) in values:       # d exp(x) = exp(x): reuse the value computed already
                p = A.replace_equal(p, self._recompute(n, values), A.load(values[id(n)]),
                                    fresh=True)
            p = algebra.fold(p, fresh=True)          # (p: instantiated here, a new tree)
            if rule.masks and self.cur_arrays and rule.name.startswith("numpy"):
                # a selection's adjoint is 0 where it does not select, whatever flows in
                # (an inf from np.sqrt(np.maximum(x, 0)) at 0): mask * adjoint keeps it
                full = G if coef is None else (coef if G is None else algebra.mul(
                    A.copy_tree(coef), A.copy_tree(G)))
                child = ast.Call(func=A.load(self.env.helper("mul_masked")),
                                 args=[A.copy_tree(full), p], keywords=[])
                others = [self.an.kind_of(a) for j, a in enumerate(args) if j != i]
                self._propagate(args[i], child, None, values, out,
                                broadcast=any(k != SCALAR for k in others))
                continue
            if coef is None:
                child = p
            elif G is None:             # coef is the adjoint itself
                child = self.masked_product(p, coef)
            else:                       # a product of partials, times G at the leaves
                child = algebra.mul(p, A.copy_tree(coef))
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
        """Adjoint statements of a container operation (rules/containers.py)."""
        return containers.rule_for(v).adjoint(self, v, G, ans)

    def user_call(self, s, t, call):
        target = A.get_tag(call, "user")
        params, bound = self.env.bind_call(target, call, self.unit, s)
        active = [p for p in params if p in bound and self.active(bound[p])]
        if not active or t not in self.an.active:
            reset = [A.assign(self.d(t), A.const(0.0))] if t in self.an.active else []
            kinds = {p: self.an.kind_of(arg) or "unknown" for p, arg in bound.items()}
            return [marker(save=t), plain_call(s, target, self.env, kinds)], [
                marker(restore=t)] + reset
        from .pipeline import static_kinds
        kinds = static_kinds(getattr(self.norm, "statics", {}), bound)
        for p, arg in bound.items():
            kinds[p] = self.an.kind_of(arg) or "unknown"
            if kinds[p] in STRUCTURES and isinstance(arg, ast.Name):
                kinds[p + "[]"] = self.an.elem.get(arg.id, "unknown")
        kinds.update(self.an.complex_kinds(bound))
        kinds.update(self.an.lazy_kinds(bound))
        if self.cur_masked:
            kinds[MASKED_RESULT] = "masked"     # the callee keeps zeros of its adjoint
        if self.an.kind.get(t) != SCALAR and (self.depth > 0 or self.branches > 0
                                              or id(s) in self.unsure_top):
            kinds[ZERO_RESULT] = "maybe"        # the callee may get the 0.0 placeholder
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
        new_call = ast.Call(func=A.load(fwd_name), args=call.args, keywords=call.keywords)
        if request is not None:
            A.tag(new_call, callee_request=request)

        def backward(tape, g):
            back = ast.Call(func=A.load(bwd_name), args=[tape, g], keywords=[])
            if request is not None:
                A.tag(back, callee_request=request, callee_backward=True)
            return back
        return self.taped_call(t, new_call, backward, [bound[p] for p in active])

    def taped_call(self, t, new_call, backward, args):
        """A call with a backward function: ``t, _tape = new_call`` in the forward sweep
        (t and the tape saved), ``_d... = backward(_tape, _g)`` in the adjoint sweep with
        each ``_d`` accumulated into its argument of `args` (the active arguments' atoms,
        in the order the backward function returns their adjoints)."""
        tape = self.names.fresh("_tape")
        if self.depth > 0:
            self.new_overwritten.add(tape)
        self.primal.add(tape)
        fwd = [marker(save=t), marker(save=tape),
               A.assign(ast.Tuple(elts=[A.store(t), A.store(tape)], ctx=ast.Store()),
                        new_call)]
        dt = self.d(t)
        g = self.names.fresh("_g")
        rev = [A.assign(g, A.load(dt)), A.assign(dt, A.const(0.0))]
        outs = [self.names.fresh("_d") for _ in args]
        rev.append(A.assign(ast.Tuple(elts=[A.store(o) for o in outs], ctx=ast.Store()),
                            backward(A.load(tape), A.load(g))))
        # undo the two saves in reverse order: the tape was pushed last
        rev += [marker(restore=tape), marker(restore=t)]
        for arg, o in zip(args, outs):
            if isinstance(arg, ast.Name):
                rev += self.accumulate(arg.id, A.load(o))
        return fwd, rev

    def dynamic_call(self, s, t, call):
        """`t = f(args)` with f a value: `t, _tape = call_forward(f, active, args)`, and
        in the adjoint sweep `_d... = call_backward(_tape, _g)` (calls.py)."""
        active = dynamic_active(self, call)
        if not active or t not in self.an.active:
            reset = [A.assign(self.d(t), A.const(0.0))] if t in self.an.active else []
            return [marker(save=t), s], [marker(restore=t)] + reset
        real = t not in self.an.complex
        new_call = ast.Call(func=A.load(self.env.bind("call_forward", calls.call_forward)),
                            args=[call.func, dynamic_positions(active, real)] + list(call.args),
                            keywords=list(call.keywords))
        backward = self.env.bind("call_backward", calls.call_backward)
        return self.taped_call(t, new_call, lambda tape, g: ast.Call(
            func=A.load(backward), args=[tape, g], keywords=[]), [a for _, a in active])

    def setitem(self, s, target, value):
        """`base[index] = v` (an element, a dict entry) or `base.name = v` (an attribute):
        the old value is saved and restored (a new key or attribute removed again), the
        adjoint of the entry goes to v and is 0 for the old value."""
        base = target.value.id
        how, index = store_kind(self.an, target)
        array = how == "array"
        fwd = [marker(save_elem=(base, index, how)), s]
        if base not in self.an.active:
            return fwd, [marker(restore_elem=(base, index, how))]
        g = self.names.fresh("_g")
        dbase = self.d(base)
        rev = [A.assign(ast.Tuple(elts=[A.store(g), A.store(dbase)], ctx=ast.Store()),
                        ast.Call(func=A.load(self.env.helper("take_item")),
                                 args=[A.load(dbase), A.index_value(index)],
                                 keywords=[])),
               marker(restore_elem=(base, index, how))]
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


def store_kind(an, target):
    """(how, index) of a store target: "attr" for `obj.name = v` (index: the name as a
    constant), "map" into a dict (a key that may be new: `runtime.entry`), "seq" into a
    list, "array" otherwise (an array, or a list of unknown kind)."""
    if isinstance(target, ast.Attribute):
        return "attr", A.const(target.attr)
    kind = an.kind.get(target.value.id)
    return {SEQ: "seq", MAP: "map"}.get(kind, "array"), target.slice


def dynamic_active(tr, call):
    """[(position or keyword name, argument name)] of the arguments of a call through a
    value that carry a derivative; the callee itself must not (refused)."""
    active, starred = [], False
    if any(n in tr.an.active for n in A.names_loaded(call.func)):
        if not isinstance(call.func, ast.Name):
            raise tr.error(f"unsupported construct: the function called here "
                           f"('{ast.unparse(call.func)}') depends on a differentiated "
                           "value (a function or object made from it); pass the value "
                           "as an argument instead", call)
        # a layer object or bound method holding differentiated values (`layer(x)` over
        # a list of layers): the object is its function's first argument (calls.py)
        active.append(("self", call.func))
    for i, a in enumerate(call.args):
        if isinstance(a, ast.Starred):
            if tr.active(a.value):
                if starred or i != len(call.args) - 1 or not isinstance(a.value, ast.Name):
                    raise tr.error("unsupported construct: '*' unpacking of differentiated "
                                   "values into a call, other than as its last "
                                   "positional argument", call)
                active.append((f"*{i}", a.value))     # all the arguments it unpacks
            starred = True
            continue
        if isinstance(a, ast.Name) and tr.active(a):
            if starred:
                raise tr.error("unsupported construct: a differentiated value passed "
                               "after '*' unpacking in a call (pass it before)", call)
            active.append((i, a))
    for k in call.keywords:
        if isinstance(k.value, ast.Name) and tr.active(k.value):
            if k.arg is None:
                raise tr.error("unsupported construct: '**' unpacking of differentiated "
                               "values into a call (pass them by name)", call)
            active.append((k.arg, k.value))
    return active


def dynamic_positions(active, real=False):
    """The `active` argument of call_forward / call_jvp: a tuple of positions and names,
    and calls.REAL where the code takes the result for a real value (the function called
    is known only when it runs: calls.py refuses a complex result then)."""
    return ast.Tuple(elts=[A.const(p) for p, _ in active] + (
        [A.const(calls.REAL)] if real else []), ctx=ast.Load())


def plain_call(s, target, env=None, kinds=None):
    """`t = h(x, w=w)` -> `t = h(x)`: a call of a lifted nested function that needs no
    derivative calls the function as the user wrote it (without its lifted extras). A
    derivative called inside (higher.NestedDerivative) calls its generated code."""
    code = getattr(target, "nested_code", None)
    if code is not None:
        fn = code(kinds or {})
        call = copy.copy(s.value)
        call.func = A.load(env.bind(fn.__name__, fn))
        return A.assign(s.targets[0], call, s)
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
