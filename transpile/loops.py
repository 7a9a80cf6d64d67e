"""Loops, normalized: how normalize.py's Flattener rewrites iteration.

``for`` loops over lists, tuples, dicts, ``range``, ``enumerate``, ``zip`` and
``reversed`` become index loops over a counted range (the element read by indexing, so
its adjoint has a place to go); loops over a list that grows while it is walked keep
reading it as it grows; loops over ``d.items()``/``d.values()`` walk the keys and read
each value by its key; ``while`` loops keep their test in a variable; comprehensions
and generator expressions become loops appending to a fresh list (dict comprehensions:
storing into a fresh dict).

`LoopFlattening` is one part of `normalize.Flattener` (which provides `emit`, `temp`,
`atom`, `expr`, `block`, `error`...).
"""
import ast
import builtins

from . import astutil as A
from .analysis import LENGTH_METHODS


class LoopFlattening:
    """for / while loops and comprehensions for `normalize.Flattener`."""

    def stmt_While(self, s):
        test = self.cond(s.test)
        saved, self.out = self.out, []
        self.cond(s.test, test.id)                 # recomputed at the end of each pass
        recompute, self.out = self.out, saved
        body = self.block(s.body)
        at = len(body)
        if body and A.get_tag(body[-1], "loop_exit"):
            at -= 1
        body[at:at] = recompute
        self.emit(ast.While(test=test, body=body, orelse=[]))

    def stmt_For(self, s):
        it, target = s.iter, s.target
        it = self.transposing_zip(it, target, s)
        pre_body = []
        saved, self.out = self.out, pre_body
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is builtins.range and not it.keywords:
            if not isinstance(target, ast.Name):
                raise self.error("a range loop needs a single loop variable")
            loop_var = target.id
            iterator = ast.Call(func=A.load("range"), args=[self.inactive(a) for a in it.args],
                                keywords=[])
            self.out = saved
        elif self._grows_while_walked(s):
            self.out = saved
            self.growing_loop(s)
            return
        else:
            self.rebound_in_loop = A.stored_outside_defs(s.body)
            loop_var = None
            if (fn is enumerate and isinstance(target, ast.Tuple) and len(target.elts) == 2
                    and isinstance(target.elts[0], ast.Name) and len(it.args) == 1
                    and not it.keywords):
                loop_var = target.elts[0].id        # `for i, v in enumerate(xs)`: i is k
            loop_var = loop_var or self.names.fresh("_k")
            n, element = self.iteration(it, saved)
            self.unpack(target, element(A.load(loop_var)))
            iterator = ast.Call(func=A.load("range"), args=[n], keywords=[])
            self.out = saved
        A.tag(iterator, inactive=True)
        self.local_names.add(loop_var)
        body = pre_body + self.block(s.body)
        loop = self.emit(ast.For(target=A.store(loop_var), iter=iterator, body=body,
                                 orelse=[], type_comment=None))
        if isinstance(it, ast.Name) and fn is None:
            A.tag(loop, walks=it.id)        # indexed directly: see _walk_other_iterables

    def transposing_zip(self, it, target, s):
        """`for a, b in zip(*rows)` -> `for a, b in zip(rows[0], rows[1])` (after
        `assert len(rows) == 2`: the loop target says how many sequences are zipped)."""
        if not (isinstance(it, ast.Call) and len(it.args) == 1 and not it.keywords
                and isinstance(it.args[0], ast.Starred)
                and self.unit.resolve(it.func, self.local_names) is zip):
            return it
        rows = it.args[0].value
        if not isinstance(target, (ast.Tuple, ast.List)) or any(
                isinstance(t, ast.Starred) for t in target.elts) or not isinstance(
                rows, ast.Name):
            raise self.error("unsupported construct: zip(*rows) other than in "
                             "`for a, b, ... in zip(*rows)` over a variable", it)
        m = len(target.elts)
        check = ast.Assert(test=ast.Compare(left=ast.Call(
            func=A.load("len"), args=[A.load(rows.id)], keywords=[]), ops=[ast.Eq()],
            comparators=[A.const(m)]), msg=None)
        self.emit(A.tag(A.located(check, s), forward_only=True))
        return A.located(ast.Call(func=A.copy_tree(it.func), args=[
            ast.Subscript(value=A.load(rows.id), slice=A.const(j), ctx=ast.Load())
            for j in range(m)], keywords=[]), it)

    def _grows_while_walked(self, s):
        """`for v in xs` (or enumerate(xs)) whose body changes the length of the list xs
        (append, pop, `xs += ...`): Python's iterator sees the new length."""
        seq = self._walked_name(s.iter)
        if seq is None:
            return False
        for n in A.walk_outside_defs(s.body):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in LENGTH_METHODS and isinstance(n.func.value, ast.Name)
                    and n.func.value.id == seq):
                return True
            if (isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
                    and n.target.id == seq):
                return True
        return False

    def _walked_name(self, it):
        if isinstance(it, ast.Name):
            return it.id
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is enumerate and len(it.args) == 1 and not it.keywords \
                and isinstance(it.args[0], ast.Name):
            return it.args[0].id
        return None

    def growing_loop(self, s):
        """`for v in xs: ...` as Python runs it: `k = 0; while k < len(xs): v = xs[k]; ...;
        k += 1` (the length is read again before every step)."""
        seq = self._walked_name(s.iter)
        k = self.names.fresh("_k")
        element = ast.Subscript(value=A.load(seq), slice=A.load(k), ctx=ast.Load())
        if not isinstance(s.iter, ast.Name):                     # enumerate(xs)
            element = ast.Tuple(elts=[A.load(k), element], ctx=ast.Load())
        body = [A.located(ast.Assign(targets=[s.target], value=element), s)] + list(s.body)
        step = A.located(ast.Assign(targets=[A.store(k)], value=ast.BinOp(
            left=A.load(k), op=ast.Add(), right=A.const(1))), s)
        at = len(body) - 1 if A.get_tag(body[-1], "loop_exit") else len(body)
        body.insert(at, step)
        test = ast.Compare(left=A.load(k), ops=[ast.Lt()], comparators=[ast.Call(
            func=A.load("len"), args=[A.load(seq)], keywords=[])])
        self.local_names.add(k)
        self.emit(A.assign(k, A.const(0)))
        self.stmt_While(A.located(ast.While(test=test, body=body, orelse=[]), s))

    def iteration(self, it, outer):
        """How a loop walks `it`: (length expression, k -> element expression).

        enumerate, zip and reversed compose; anything else is evaluated once before the
        loop (materialized with list() unless it is a name or a plain value) and indexed."""
        fn = self.unit.resolve(it.func, self.local_names) if isinstance(it, ast.Call) else None
        if fn is enumerate and 1 <= len(it.args) <= 2:
            n, inner = self.iteration(it.args[0], outer)
            start = it.args[1] if len(it.args) > 1 else next(
                (kw.value for kw in it.keywords if kw.arg == "start"), None)

            def element(k):
                idx = k if start is None else ast.BinOp(left=k, op=ast.Add(),
                                                       right=self.inactive(start))
                return A.tag(ast.Tuple(elts=[A.tag(idx, inactive=True), inner(k)],
                                       ctx=ast.Load()), elements=True)
            return n, element
        if fn is zip and it.args and not it.keywords:
            parts = [self.iteration(a, outer) for a in it.args]
            n = parts[0][0] if len(parts) == 1 else A.tag(ast.Call(
                func=A.load("min"), args=[p[0] for p in parts], keywords=[]), inactive=True)
            return n, lambda k: A.tag(ast.Tuple(elts=[e(k) for _, e in parts],
                                                ctx=ast.Load()), elements=True)
        if fn is reversed and len(it.args) == 1 and not it.keywords:
            n, inner = self.iteration(it.args[0], outer)

            def element(k):
                back = ast.BinOp(left=ast.BinOp(left=A.copy_tree(n), op=ast.Sub(),
                                                right=A.const(1)), op=ast.Sub(), right=k)
                return inner(A.tag(back, inactive=True))
            return n, element
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and \
                it.func.attr in ("items", "values") and not it.args and not it.keywords:
            # d.items() / d.values(): walk the keys, read each value by its key (so its
            # adjoint goes to that entry)
            base = self.atom_seq(it.func.value, outer)
            keys = self.atom_seq(ast.Call(func=ast.Attribute(
                value=A.copy_tree(base), attr="keys", ctx=ast.Load()), args=[],
                keywords=[]), outer)

            def entry(k):
                key = self.temp(self.index(keys, k), base="_key")
                value = A.tag(ast.Subscript(value=A.copy_tree(base), slice=A.tag(
                    A.copy_tree(key), inactive=True), ctx=ast.Load()), special="subscript")
                if it.func.attr == "values":
                    return value
                return A.tag(ast.Tuple(elts=[key, value], ctx=ast.Load()), elements=True)
            return self.len_of(keys), entry
        seq = self.atom_seq(it, outer)
        if isinstance(seq, ast.Name) and seq.id in self.dict_names:
            seq = self.atom_seq(ast.Call(func=A.load("list"), args=[seq], keywords=[]), outer)
        elif isinstance(seq, ast.Name) and isinstance(it, ast.Name) and \
                seq.id in self.rebound_in_loop:
            # the loop walks the object xs held when it started, even if xs is rebound
            inner, self.out = self.out, outer
            seq = self.temp(A.copy_tree(seq), base="_seq")
            self.out = inner
        return self.len_of(seq), lambda k: self.index(seq, k)

    def unpack(self, target, value):
        """Assign a loop element to the loop target, pairing up tuples where possible."""
        if A.get_tag(value, "elements"):
            if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == len(
                    value.elts):
                for t, v in zip(target.elts, value.elts):
                    self.unpack(t, v)
                return
            value = A.tag(ast.Tuple(elts=[self.bind(self._element_value(v))
                                          for v in value.elts], ctx=ast.Load()),
                          special="display")
        if isinstance(target, ast.Name) and isinstance(value, ast.Name) and \
                target.id == value.id:
            return
        self.assign_to(target, value)

    def _element_value(self, v):
        if A.get_tag(v, "elements"):
            return A.tag(ast.Tuple(elts=[self.bind(self._element_value(e)) for e in v.elts],
                                   ctx=ast.Load()), special="display")
        return v

    def atom_seq(self, expr, outer):
        """The sequence a loop walks, as a name evaluated before the loop."""
        inner, self.out = self.out, outer
        r = self.expr(expr)
        if isinstance(expr, ast.Call) and A.get_tag(r, "special") in ("opaque", "dynamic") \
                or A.get_tag(r, "inactive") and isinstance(r, ast.Call) \
                or A.get_tag(r, "method") in ("items", "keys", "values"):
            r = A.tag(ast.Call(func=A.load("list"), args=[self.bind(r)], keywords=[]),
                      special="container", container=builtins.list)
        seq = self.bind(r, base="_seq")
        self.out = inner
        return seq

    @staticmethod
    def len_of(seq):
        return A.tag(ast.Call(func=A.load("len"), args=[A.copy_tree(seq)], keywords=[]),
                     inactive=True)

    @staticmethod
    def index(seq, k):
        k = A.load(k) if isinstance(k, str) else A.copy_tree(k)
        return A.tag(ast.Subscript(value=A.copy_tree(seq), slice=A.tag(k, inactive=True),
                                   ctx=ast.Load()), special="subscript")

    def expr_ListComp(self, e):
        return self._comprehension(e)

    def expr_GeneratorExp(self, e):
        return self._comprehension(e)

    def expr_DictComp(self, e):
        return self._comprehension(e)

    def expr_SetComp(self, e):
        return A.tag(e, special="opaque", opaque="set comprehension")

    def _comprehension(self, e):
        """A loop appending to a fresh list (a dict comprehension: storing into a fresh
        dict, `_dict[key] = value`)."""
        made_dict = isinstance(e, ast.DictComp)
        result = self.names.fresh("_dict" if made_dict else "_list")
        self.emit(A.assign(result, A.tag(ast.Dict(keys=[], values=[]), special="dict")
                           if made_dict else ast.List(elts=[], ctx=ast.Load())))
        if made_dict:
            self.dict_names.add(result)
        e = A.copy_tree(e)
        mapping = {}
        for gen in e.generators:
            for n in A.walk(gen.target):
                if isinstance(n, ast.Name):
                    mapping[n.id] = self.names.fresh("_" + n.id.lstrip("_") + "_")
        A.rename(e, mapping)
        if made_dict:
            inner = [A.located(ast.Assign(targets=[ast.Subscript(
                value=A.load(result), slice=e.key, ctx=ast.Store())], value=e.value), e)]
        else:
            inner = [A.located(ast.Expr(value=ast.Call(
                func=ast.Attribute(value=A.load(result), attr="append", ctx=ast.Load()),
                args=[e.elt], keywords=[])), e)]
        for gen in reversed(e.generators):
            if gen.is_async:
                raise self.error("unsupported construct 'async for'", e)
            for cond in reversed(gen.ifs):
                inner = [A.located(ast.If(test=cond, body=inner, orelse=[]), e)]
            inner = [A.located(ast.For(target=gen.target, iter=gen.iter, body=inner,
                                       orelse=[], type_comment=None), e)]
        for s in inner:
            self.stmt(s)
        return A.load(result)
