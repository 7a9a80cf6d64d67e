"""Forward mode: tangent statements interleaved with the primal ones.

For ``t = TREE`` the tangent ``dt = sum_i partial_i * d(arg_i)`` is computed (from the
same partial-derivative templates reverse mode uses) just before t is assigned, so it
reads the operands' current values; branches and loops keep their shape and need no tape.
Lists carry lists of tangents; a call to another function calls that function's own
forward derivative. Primitives with vjp rules get their tangent from the structure their
rule declares: the argument positions they are (multi)linear in (the function applied to
the tangents, zeros for the keywords whose values it places in its result), a jvp
(piecewise linear and explicit rules, `defjvp`), else J v from the reverse rule itself.

Conventions: the tangent of an elementwise result has the result's shape (`x + c` with
scalar x and array c); the returned tangent has the structure, shape and floating dtype of
the returned value, also when it is identically zero; the tangent of ``np.where(c, a, b)``
is ``np.where(c, da, db)``, so a non-finite tangent in the branch not selected is dropped.
"""
import ast
import copy

from . import algebra
from . import astutil as A
from .analysis import walk_body, SCALAR, SEQ, UNKNOWN
from .rules import containers
from .rules.scalar import specialize
from .rules.registry import no_derivative_message
from .transform import Transform


class ForwardTransform(Transform):
    def __init__(self, norm, analysis, env):
        super().__init__(norm, analysis, env)
        # names written in place somewhere (xs[i] = v): a tangent that is another
        # variable's tangent must be copied where the primal value is a new object
        self.written = {st.targets[0].value.id for st, _ in walk_body(norm.body)
                        if isinstance(st, ast.Assign) and isinstance(
                            st.targets[0], (ast.Subscript, ast.Attribute))
                        and isinstance(st.targets[0].value, ast.Name)}
        # lists made once from `[]` (tapes, stacks, accumulators): their tangent is a real
        # list from the start, updated with plain list operations instead of helpers
        self.real_lists = {
            st.targets[0].id for st, _ in walk_body(norm.body)
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name)
            and isinstance(st.value, ast.List) and not st.value.elts
            and analysis.sites.get(st.targets[0].id) == 1
            and st.targets[0].id not in analysis.params}

    def run(self):
        """The tangent statements; at the end, the tangent of the result (named
        `self.d(result)`) has the result's structure, shape and floating dtype."""
        body = self.block(self.norm.body)
        # a parameter held fixed that later holds a value with a tangent (`c = c + x`):
        # its tangent starts at zero
        fixed = [p for p in self.an.params if p in self.an.active and p not in
                 self.an.wrt and any(isinstance(n, ast.Name) and n.id == self.d(p)
                                  for s in body for n in A.nodes(s))]
        body = [A.assign(self.d(p), A.const(0.0)) for p in fixed] + body
        result = self.norm.result
        dres = self.d(result)
        t = A.load(dres) if result in self.an.active else A.const(0.0)
        body.append(A.assign(dres, ast.Call(func=A.load(self._fr("result_tangent")),
                                            args=[t, A.load(result)], keywords=[])))
        return body

    def _fr(self, name):
        """Bind a helper of rules/forward_runtime.py."""
        from .rules import forward_runtime
        return self.env.bind(name, getattr(forward_runtime, name))

    def block(self, stmts):
        out = []
        for s in stmts:
            prev, self.cur = self.cur, s
            new = self.stmt(s)
            self.cur = prev
            for n in new:
                A.located(n, s)
            out += new
        return out

    def stmt(self, s):
        if isinstance(s, ast.Try):         # derivative-free (analysis.check_passthrough)
            from .analysis import try_kills
            return [s] + [A.assign(self.d(n), A.const(0.0)) for n in try_kills(self.an, s)]
        if A.get_tag(s, "forward_only") or A.get_tag(s, "loop_exit") or isinstance(
                s, ast.Break):
            return [s]
        if isinstance(s, ast.Pass):
            return []
        if isinstance(s, ast.Assign):
            t = s.targets[0]
            if isinstance(t, ast.Name):
                return self.assign(s, t.id, s.value)
            return self.setitem(s, t, s.value)
        if isinstance(s, ast.Expr) and A.get_tag(s.value, "special") == "method":
            return self.method_stmt(s, s.value)
        if isinstance(s, ast.If):
            return [ast.If(test=s.test, body=self.block(s.body) or [ast.Pass()],
                           orelse=self.block(s.orelse))]
        if isinstance(s, (ast.For, ast.While)):
            new = copy.copy(s)
            body = self.block(s.body)
            if isinstance(s, ast.For) and s.target.id in self.an.active:
                body.insert(0, A.assign(self.d(s.target.id), A.const(0.0)))   # an int now
            new.body = body or [ast.Pass()]
            return [new]
        raise self.error(f"unsupported statement '{type(s).__name__}'", s)

    # --- assignments -------------------------------------------------------------------
    def assign(self, s, t, value):
        if A.get_tag(value, "special") == "method" and self.is_stack_pop(value):
            base = value.func.value.id
            if base in self.real_lists:
                popped = ast.Call(func=ast.Attribute(value=A.load(self.d(base)), attr="pop",
                                                     ctx=ast.Load()), args=[], keywords=[])
            else:
                popped = ast.Call(func=A.load(self.env.helper("pop_tangent")),
                                  args=[A.load(self.d(base))], keywords=[])
            if t not in self.an.active:
                return [ast.Expr(value=popped), s]
            return [A.assign(self.d(t), popped), s]
        if t not in self.an.active:
            return [s]
        dt = self.d(t)
        if t in self.real_lists and isinstance(value, ast.List):
            return [s, A.assign(dt, ast.List(elts=[], ctx=ast.Load()))]
        if not self.active(value):
            return [s, A.assign(dt, A.const(0.0))]
        special = A.get_tag(value, "special")
        if special == "user":
            return self.user_call(s, t, value)
        if special == "dynamic":
            return self.dynamic_call(s, t, value)
        if special is None:
            tangent = self.tangent(value)
        else:
            tangent = self.special_tangent(value)
        if (isinstance(tangent, ast.Name) and self.written and not isinstance(value, ast.Name)
                and self.an.kind_of(value) != SCALAR):
            # t is a new object but its tangent would be another's: writes into one
            # (set_tangent) must not change the other
            tangent = ast.Call(func=A.load(self.env.helper("snapshot")), args=[tangent],
                               keywords=[])
        # the tangent reads the operands as they are before t is overwritten
        out = [A.assign(dt, tangent if tangent is not None else A.const(0.0)), s]
        if tangent is not None and self._elementwise(value):
            out.append(A.assign(dt, ast.Call(func=A.load(self._fr("broadcast_tangent")),
                                             args=[A.load(dt), A.load(t)], keywords=[])))
        return out

    def _elementwise(self, value):
        """An elementwise operation of several operands whose tangent may be smaller
        than its (broadcast) value: a constant operand or a zero tangent contributes
        nothing to the tangent's shape."""
        if not isinstance(value, (ast.BinOp, ast.Call)) or special_of(value) is not None:
            return False
        rule, args = self.rule_of(value)
        if rule is None or rule.vjps is not None or rule.jvp is not None or len(args) < 2:
            return False
        if self.an.kind_of(value) == SCALAR:
            return False
        return rule.multilinear is None

    def tangent(self, n):
        """Tangent expression of a pure tree (None when it is identically zero)."""
        t = self._tangent(n)
        if t is not None and self.an.complex and isinstance(n, ast.Call) and getattr(
                A.get_tag(n, "rule"), "result", None) == "real" and any(
                    self.an.may_be_complex(a) for a in n.args):
            # a real result's tangent is real: the real part of the complex one
            t = ast.Call(func=A.load(self.env.helper("real_part")), args=[t], keywords=[])
        return t

    def _tangent(self, n):
        if isinstance(n, ast.Name):
            return A.load(self.d(n.id)) if n.id in self.an.active else None
        if not isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) or A.get_tag(n, "inactive"):
            return None
        if not self.active(n):
            return None
        rule, args = self.rule_of(n)
        if rule is None:
            raise self.error(f"no derivative rule for {ast.unparse(n)}", n)
        if rule.zero:
            return None
        self.check_keywords(n, rule)
        self.check_not_list_arithmetic(n, args)
        fn = rule.fn
        if rule.jvp is not None:
            tangents = [self.tangent(a) for a in args]
            jvp = self.env.bind(f"{_short_name(rule.name)}_jvp", rule.jvp,
                                origin=("jvp", rule))
            return ast.Call(func=A.load(jvp), args=[ast.List(
                elts=[t if t is not None else A.const(None) for t in tangents],
                ctx=ast.Load())] + [A.copy_tree(a) for a in args],
                keywords=A.copy_tree(getattr(n, "keywords", [])))
        if rule.unavailable is not None and rule.multilinear is None:
            raise self.error(rule.unavailable, n)
        for i, a in enumerate(args):
            if i in rule.no_derivative and self.tangent(a) is not None:
                raise self.error(no_derivative_message(rule, i), n)
        if rule.multilinear is not None:
            return self.multilinear_tangent(n, args, rule)
        if rule.vjps is not None:
            return self.structured_tangent(n, fn, args, rule)
        terms = []
        for i, a in enumerate(args):
            ta = self.tangent(a)
            if ta is None or rule.partials[i] is None:
                continue
            mapping = {name: A.copy_tree(args[j]) for j, name in enumerate(rule.params)
                       if j < len(args)}
            p = algebra.fold(self.env.instantiate(specialize(rule.partials[i], mapping),
                                                  mapping, rule.env), fresh=True)
            terms.append(algebra.product(algebra.mul(p, ta)))
        return _sum(terms)

    def multilinear_tangent(self, n, args, rule):
        """fn linear in each group of arguments: sum over the groups that carry a tangent
        of fn with that group's arguments replaced by their tangents (0.0 where none;
        zeros shaped like the argument for lists and groups of several arguments)."""
        tangents = [self.tangent(a) for a in args]
        # keywords whose values fn places in its result: zeros of their shape
        keywords = [k if k.arg not in rule.constant_keywords else ast.keyword(
            arg=k.arg, value=ast.Call(func=A.load(self.env.helper("zeros_like")),
                                      args=[A.copy_tree(k.value)], keywords=[]))
            for k in getattr(n, "keywords", [])]
        terms = []
        for group in rule.multilinear:
            group = [i for i in group if i < len(args)]
            if all(tangents[i] is None for i in group):
                continue
            new_args = [A.copy_tree(a) for a in args]
            for i in group:
                new_args[i] = A.copy_tree(tangents[i]) if tangents[i] is not None \
                    else A.const(0.0)
                if not rule.zero_tangent_ok and (len(group) > 1 or self.an.kind_of(
                        args[i]) in (SEQ, UNKNOWN, None)):
                    new_args[i] = ast.Call(func=A.load(self._fr("dense")),
                                           args=[new_args[i], A.copy_tree(args[i])],
                                           keywords=[])
            if isinstance(n, ast.BinOp):
                func = A.load(self.env.bind(_short_name(rule.name), rule_function(rule)))
            else:
                func = n.func
            if not rule.zero_tangent_ok and len(group) == 1:
                terms.append(self.term(tangents[group[0]], func, new_args, keywords))
            else:
                terms.append(ast.Call(func=A.copy_tree(func), args=new_args,
                                      keywords=A.copy_tree(keywords)))
        return _sum(terms)

    def term(self, tangent, func, args, keywords):
        """`func(*args)`, a product-rule term linear in `tangent`; when the tangent is a
        variable (it may hold the zero placeholder 0.0, which fn may not accept), guarded:
        `unless_zero(tangent, func, *args)`."""
        keywords = A.copy_tree(keywords)
        if isinstance(tangent, ast.Name):
            return ast.Call(func=A.load(self.env.helper("unless_zero")),
                            args=[A.copy_tree(tangent), A.copy_tree(func)] + args,
                            keywords=keywords)
        return ast.Call(func=A.copy_tree(func), args=args, keywords=keywords)

    def structured_tangent(self, n, fn, args, rule):
        """A rule with vjp functions only (a user rule): J v from the reverse rule, one
        vjp per output element."""
        keywords = A.copy_tree(getattr(n, "keywords", []))
        if not isinstance(n, ast.Call):
            raise self.error(f"forward mode has no tangent rule for {rule.name}", n)
        tangents = [self.tangent(a) for a in args]
        vjps = self.env.bind(f"{_short_name(rule.name)}_vjps", tuple(rule.vjps),
                             origin=("vjps", rule))
        return ast.Call(func=A.load(self._fr("jvp_by_vjps")), args=[
            A.load(vjps), A.copy_tree(n.func),
            ast.List(elts=[A.copy_tree(a) for a in args], ctx=ast.Load()),
            ast.List(elts=[t if t is not None else A.const(None) for t in tangents],
                     ctx=ast.Load())], keywords=keywords)

    def special_tangent(self, v):
        """Tangent of a container operation (rules/containers.py)."""
        return containers.rule_for(v).tangent(self, v)

    def tangent_by_rule(self, v, fn, args):
        """Tangent of a method or attribute of an array, by the rule of the NumPy
        function it stands for (x.sum(axis=0): np.sum's)."""
        if fn is None:
            raise self.error(f"forward mode: no tangent rule for {ast.unparse(v)}", v)
        call = A.tag(ast.Call(func=A.load(self.env.bind(f"np_{fn.__name__}", fn)), args=args,
                              keywords=A.copy_tree(getattr(v, "keywords", []))),
                     rule=self._rule(fn, len(args)))
        return self.tangent(call)

    def _rule(self, fn, nargs):
        from .rules import lookup
        return lookup(fn, nargs)

    def user_call(self, s, t, call):
        target = A.get_tag(call, "user")
        params, bound = self.env.bind_call(target, call, self.unit, s)
        active = [p for p in params if p in bound and self.active(bound[p])]
        from .reverse import plain_call
        kinds = {p: self.an.kind_of(arg) or "unknown" for p, arg in bound.items()}
        from .pipeline import static_kinds
        kinds.update(static_kinds(getattr(self.norm, "statics", {}), bound))
        kinds.update(self.an.complex_kinds(bound))
        kinds.update(self.an.lazy_kinds(bound))
        if not active:
            return [plain_call(s, target, self.env, kinds), A.assign(self.d(t), A.const(0.0))]
        jvp_name, tangent_kw = self.env.callee_jvp(target, tuple(active), kinds, s)
        keywords = list(call.keywords) + [
            ast.keyword(arg=tangent_kw[p], value=A.load(self.d(bound[p].id)))
            for p in active if isinstance(bound[p], ast.Name)]
        new_call = ast.Call(func=A.load(jvp_name), args=list(call.args), keywords=keywords)
        return [A.assign(ast.Tuple(elts=[A.store(t), A.store(self.d(t))], ctx=ast.Store()),
                         new_call)]

    def dynamic_call(self, s, t, call):
        """`t = f(args)` with f a value: `t, dt = call_jvp(f, active, tangents, args)`."""
        from .calls import call_jvp
        from .reverse import dynamic_active, dynamic_positions
        active = dynamic_active(self, call)
        if not active:
            return [s, A.assign(self.d(t), A.const(0.0))]
        tangents = ast.Tuple(elts=[A.load(self.d(a.id)) for _, a in active], ctx=ast.Load())
        new_call = ast.Call(func=A.load(self.env.bind("call_jvp", call_jvp)),
                            args=[call.func, dynamic_positions(active, t not in self.an.complex),
                                  tangents]
                            + list(call.args), keywords=list(call.keywords))
        return [A.assign(ast.Tuple(elts=[A.store(t), A.store(self.d(t))], ctx=ast.Store()),
                         new_call)]

    def setitem(self, s, target, value):
        base = target.value.id
        if base not in self.an.active:
            return [s]
        tv = A.load(self.d(value.id)) if isinstance(value, ast.Name) and \
            value.id in self.an.active else A.const(0.0)
        dbase = self.d(base)
        from .reverse import store_kind
        _, index = store_kind(self.an, target)
        # before the write, like every tangent: the value written may be computed from
        # views of the array written to (y[1:] = y[1:] * y[:-1])
        return [A.assign(dbase, ast.Call(func=A.load(self.env.helper("set_tangent")),
                                         args=[A.load(dbase), A.load(base),
                                               A.index_value(index), tv],
                                         keywords=[])), s]

    def method_stmt(self, s, call):
        base = call.func.value
        if not (isinstance(base, ast.Name) and base.id in self.an.active):
            return [s]
        if A.get_tag(call, "method") == "append" and len(call.args) == 1:
            arg = call.args[0]
            tv = A.load(self.d(arg.id)) if isinstance(arg, ast.Name) and \
                arg.id in self.an.active else A.const(0.0)
            dbase = self.d(base.id)
            if base.id in self.real_lists:
                return [s, ast.Expr(value=ast.Call(func=ast.Attribute(
                    value=A.load(dbase), attr="append", ctx=ast.Load()), args=[tv],
                    keywords=[]))]
            return [s, A.assign(dbase, ast.Call(
                func=A.load(self.env.helper("append_tangent")),
                args=[A.load(dbase), A.load(base.id), tv], keywords=[]))]
        raise self.error(f"no tangent rule for the method '.{A.get_tag(call, 'method')}()'",
                         s)


def rule_function(rule):
    """The callable of an operator rule (ast.MatMult -> numpy.matmul)."""
    import numpy as np
    return {ast.MatMult: np.matmul}.get(rule.fn, rule.fn)


def special_of(n):
    return A.get_tag(n, "special")


def _short_name(name):
    from .reverse import _short
    return _short(name)


def _sum(terms):
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.USub):
            out = ast.BinOp(left=out, op=ast.Sub(), right=t.operand)      # a - b
        else:
            out = ast.BinOp(left=out, op=ast.Add(), right=t)
    return out
