"""Desugaring before flattening: the rewrites normalize.py makes on whole bodies first.

* bound-method aliases inlined (``push = xs.append; push(v)`` is ``xs.append(v)``), so
  derivative code's stacks are list operations again;
* nested functions lambda-lifted (their free variables become keyword-only parameters)
  and called lambdas named, so calls to them are differentiated like any other call;
* ``break``, ``continue`` and ``return`` inside loops lowered into flags
  (`JumpLowering`), so loops have one exit at the top of their body.
"""
import ast
import copy

from . import astutil as A
from .analysis import MUTATING_METHODS
from .frontend import Unit

ALIASABLE_METHODS = {"append", "pop"}


def inline_method_aliases(body, params):
    """`push = xs.append; push(v)` -> `xs.append(v)` (and the same for `pop`).

    Generated derivative code binds its stack's methods to locals for speed; turning the
    calls back into method calls lets the transforms see list operations they have rules
    for, so derivative code can be differentiated again. Only top-level aliases of a local
    list not rebound afterwards, whose alias is assigned once and only ever called, are
    inlined."""
    stores, loads, called = A.name_uses(body)
    aliases = {}
    for i, s in enumerate(body):
        if (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Attribute)
                and isinstance(s.value.value, ast.Name)
                and s.value.attr in ALIASABLE_METHODS):
            alias, base = s.targets[0].id, s.value.value.id
            later = set()                      # the list is never rebound after the alias
            for n in A.walk_outside_defs(body[i + 1:]):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    later.add(n.id)
            if (stores.get(alias) == 1 and base not in later and base not in params
                    and loads.get(alias, 0) == called.get(alias, 0)):
                aliases[alias] = s.value
    if not aliases:
        return body

    class Inline(A.Transformer):
        def visit_Call(self, n):
            self.generic_visit(n)
            if isinstance(n.func, ast.Name) and n.func.id in aliases:
                n.func = ast.copy_location(A.copy_tree(aliases[n.func.id]), n.func)
            return n

    kept = [s for s in body if not (isinstance(s, ast.Assign) and isinstance(
        s.targets[0], ast.Name) and s.targets[0].id in aliases and s.value is aliases[
        s.targets[0].id])]
    return [Inline().visit(s) for s in kept]


def lift_nested(unit, body, outer_locals, local_functions):
    """Register nested defs (and `name = lambda`) as Units with free locals as kw params."""

    class Lift(A.Transformer):
        def visit_FunctionDef(self, n):
            return n                         # do not look inside

        def visit_Lambda(self, n):
            return n

        def visit_Assign(self, n):
            if (len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                    and isinstance(n.value, ast.Lambda)):
                lam = n.value
                return A.lambda_def(n.targets[0].id, lam, n)
            return n

    body = [Lift().visit(s) for s in body]
    body = _name_called_lambdas(body, unit)
    defs = [n for n in A.statements(body) if isinstance(n, ast.FunctionDef)]
    made = _derivatives_made(body, unit)           # g = transpile.grad(F): g stands for F
    fnames = {d.name for d in defs} | set(local_functions) | set(made)
    own = {}                  # def name -> (outer locals it reads, local functions it calls)
    for d in defs:
        inner = d.args
        inner_params = {p.arg for p in inner.posonlyargs + inner.args + inner.kwonlyargs}
        inner_locals = inner_params | A.stored_outside_defs(d.body)
        free = set()
        for s in d.body:
            free |= A.names_loaded(s)
        own[d.name] = ((free - inner_locals) & outer_locals - fnames,
                       {made.get(c, c) for c in (free - inner_locals) & fnames})
    reads = {k: set(v[0]) for k, v in own.items()}
    changed = True
    while changed:             # a def calling another reads what that one reads: `g` calling
        changed = False        # `f`, which closes over x, passes x on to f
        for k, (_, calls) in own.items():
            for c in calls:
                extra = reads.get(c, set(getattr(local_functions.get(c), "extra_params",
                                                 ()))) & outer_locals - reads[k]
                if extra:
                    reads[k] |= extra
                    changed = True
    for d in defs:
        inner = d.args
        extras = sorted(reads[d.name])
        if not unit.is_generated:
            _refuse_outer_mutation(unit, d, set(extras))
        node = A.copy_tree(d)
        node.decorator_list = []
        for e in extras:
            node.args.kwonlyargs.append(ast.arg(arg=e, annotation=None))
            node.args.kw_defaults.append(None)
        nested = Unit(node, f"{unit.name}.<locals>.{d.name}", unit.filename,
                      unit.line_offset, unit.globals, unit.closure,
                      defaults=None, extra_params=extras)
        nested.local_functions = local_functions
        try:                                  # literal defaults: the generated code needs them
            nested.defaults = tuple(ast.literal_eval(d) for d in inner.defaults) or None
            nested.kwdefaults = {a.arg: ast.literal_eval(d) for a, d in
                                 zip(inner.kwonlyargs, inner.kw_defaults) if d is not None} \
                or None
        except ValueError:
            pass
        local_functions[d.name] = nested
    return _nested_derivatives(unit, body, local_functions)


def _maker_call(unit, e, local=()):
    """Is e a call of transpile.grad or transpile.value_and_grad (not of a local name)?"""
    if not isinstance(e, ast.Call):
        return False
    from .higher import is_maker
    try:
        return is_maker(unit.resolve(e.func, local))
    except Exception:                  # noqa: BLE001 - an odd attribute: not a maker
        return False


def _locals(body, unit):
    """The names a body binds (its variables and defs) and the unit's parameters."""
    return A.stored_outside_defs(body) | set(unit.params)


def _derivatives_made(body, unit):
    """{g: F} for the statements ``g = transpile.grad(F, ...)`` of body (F a name)."""
    local = _locals(body, unit)
    out = {}
    for s in A.statements(body):
        if (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and _maker_call(unit, s.value, local)
                and s.value.args and isinstance(s.value.args[0], ast.Name)):
            out[s.targets[0].id] = s.value.args[0].id
    return out


def _nested_derivatives(unit, body, local_functions):
    """Calls of derivatives inside the function (closure conversion, see higher.py):
    ``g = transpile.grad(F, wrt)`` makes g a local function standing for F's gradient
    (the assignment itself goes: g is only ever called) and ``transpile.grad(F)(a)`` calls
    one directly. F is a local def or lambda (lifted: its free variables become explicit
    parameters), another such g, or a function or derivative the function reads."""
    from .higher import NestedDerivative, _makers
    from .names import Names
    names = Names(ast.Module(body=list(body), type_ignores=[]))
    local = _locals(body, unit)
    stores = {}
    for n in A.walk_outside_defs(body):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            stores[n.id] = stores.get(n.id, 0) + 1

    def derivative(call):
        with_value = _makers()[unit.resolve(call.func)]
        if not call.args or len(call.args) > 2 or any(k.arg != "wrt" for k in call.keywords):
            raise unit.error("inside a differentiated function transpile.grad takes the "
                             "function and wrt= only", call)
        f = call.args[0]
        if isinstance(f, ast.Name) and f.id in local_functions:
            base = local_functions[f.id]
        else:
            base = unit.resolve(f, set(stores) | set(unit.params))
            if base is None or not callable(base):
                raise unit.error(f"transpile.grad of {ast.unparse(f)} inside a "
                                 "differentiated function: give it a function defined "
                                 "here or in a module (a def or lambda)", call)
        wrt = call.args[1] if len(call.args) > 1 else next(
            (k.value for k in call.keywords), A.const(0))
        try:
            wrt = ast.literal_eval(wrt)
        except ValueError:
            raise unit.error("inside a differentiated function, wrt must be a literal "
                             "(a number or a name in quotes)", call) from None
        nd = NestedDerivative(base, None, with_value, call, unit)
        nd.resolve_wrt(wrt, lambda msg: unit.error(msg, call))
        return nd

    class Rewrite(A.Transformer):
        def visit_FunctionDef(self, n):
            return n

        def visit_Lambda(self, n):
            return n

        def visit_Assign(self, n):
            if (len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                    and _maker_call(unit, n.value, local)):
                name = n.targets[0].id
                if stores.get(name, 0) != 1:
                    raise unit.error(f"'{name}' holds a derivative and is assigned again: "
                                     "give each derivative its own name", n)
                self.generic_visit(n.value)
                local_functions[name] = derivative(n.value)
                return A.located(ast.Pass(), n)
            self.generic_visit(n)
            return n

        def visit_Call(self, n):
            if _maker_call(unit, n.func, local):
                self.generic_visit(n.func)
                n.args = [self.visit(a) for a in n.args]
                n.keywords = [self.visit(k) for k in n.keywords]
            else:
                self.generic_visit(n)
            if _maker_call(unit, n.func, local):
                name = names.fresh("_" + ("value_and_grad" if _makers()[
                    unit.resolve(n.func.func)] else "grad"))
                local_functions[name] = derivative(n.func)
                n.func = A.located(A.load(name), n.func)
            elif _maker_call(unit, n, local):
                raise unit.error("a derivative made inside a differentiated function must "
                                 "be called there or assigned to a name that is called",
                                 n)
            return n

    body = [Rewrite().visit(s) for s in body]
    made = {k for k, v in local_functions.items() if isinstance(v, NestedDerivative)}
    if not made:                # (nothing to look for)
        return body
    funcs = {id(n.func) for s in body for n in A.nodes(s) if isinstance(n, ast.Call)}
    for s in body:
        for n in A.walk(s):
            if isinstance(n, ast.Name) and n.id in made and isinstance(n.ctx, ast.Load) \
                    and id(n) not in funcs:
                from .frontend import NESTED_MESSAGE
                raise unit.error(NESTED_MESSAGE, n)
    return body


def _refuse_outer_mutation(unit, d, outer):
    """A nested def that changes a variable of the enclosing function in place (an append,
    an element write...) has effects the derivative of the enclosing function would miss:
    refused at the line of the change."""
    for n in A.walk(ast.Module(body=d.body, type_ignores=[])):
        target = None
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            for t in (n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target]):
                for sub in A.walk(t):
                    if isinstance(sub, ast.Subscript) and isinstance(sub.ctx, (ast.Store,
                                                                                ast.Del)):
                        target = _root_name(sub)
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
              and n.func.attr in MUTATING_METHODS):
            target = _root_name(n.func.value)
        if target is not None and target in outer:
            raise unit.error(f"unsupported construct: the nested function '{d.name}' changes "
                             f"'{target}' of the enclosing function in place; return the "
                             "value instead and change it in the enclosing function", n)


def _root_name(e):
    """The variable at the root of `a`, `a[i]`, `a[i].T`..., or None."""
    while isinstance(e, (ast.Subscript, ast.Attribute)):
        e = e.value
    return e.id if isinstance(e, ast.Name) else None


def _name_called_lambdas(stmts, unit):
    """`(lambda u: e)(a)` -> `def _lambda1(u): return e` before the statement, `_lambda1(a)`."""
    from .names import Names
    names = Names(ast.Module(body=list(stmts), type_ignores=[]))
    local = _locals(stmts, unit)

    def fresh():
        return names.fresh("_lambda")

    def block(body):
        out = []
        for s in body:
            namer = _LambdaNamer(fresh, unit, local, s)
            for field in ("body", "orelse"):
                sub = getattr(s, field, None)
                if isinstance(sub, list) and not isinstance(s, ast.FunctionDef):
                    setattr(s, field, block(sub))
            if isinstance(s, (ast.If, ast.For, ast.While)):
                for field in ("test", "iter"):
                    if hasattr(s, field):
                        setattr(s, field, namer.visit(getattr(s, field)))
            elif not isinstance(s, ast.FunctionDef):
                s = namer.visit(s)
            out.extend(namer.defs)
            out.append(s)
        return out

    return block(stmts)


class _LambdaNamer(A.Transformer):
    """_name_called_lambdas's rewrite of one statement: the defs it makes, in `defs`."""

    def __init__(self, fresh, unit, local, stmt):
        self.fresh, self.unit, self.local, self.stmt = fresh, unit, local, stmt
        self.defs = []

    def visit_FunctionDef(self, n):
        return n

    def visit_Call(self, n):
        self.generic_visit(n)
        if isinstance(n.func, ast.Lambda):
            lam, name = n.func, self.fresh()
            self.defs.append(A.lambda_def(name, lam, self.stmt))
            n.func = A.located(A.load(name), lam)
        elif n.args and isinstance(n.args[0], ast.Lambda) and _maker_call(
                self.unit, n, self.local):   # transpile.grad(lambda y: ...)
            lam, name = n.args[0], self.fresh()
            self.defs.append(A.lambda_def(name, lam, self.stmt))
            n.args[0] = A.located(A.load(name), lam)
        return n


def _statements(stmts):
    """A.statements, also into the handlers and `finally` of try statements."""
    for s in A.statements(stmts):
        yield s
        if isinstance(s, ast.Try):
            for part in [h.body for h in s.handlers] + [s.finalbody]:
                yield from _statements(part)


class _Loop:
    def __init__(self):
        self.brk = None
        self.cont = None


class JumpLowering:
    """Rewrite jumps into flag assignments so every loop runs whole iterations."""

    def __init__(self, names):
        self.names = names
        self.ret = None
        self.result = None

    def run(self, body):
        returns = [n for n in _statements(body) if isinstance(n, ast.Return)]
        jumps = [n for n in _statements(body) if isinstance(n, (ast.Break, ast.Continue))]
        last = body[-1] if body else None
        if isinstance(last, ast.Return) and len(returns) == 1 and not jumps:
            if isinstance(last.value, ast.Name):
                return body[:-1], last.value.id
            self.result = self.names.unique("_result")
            value = last.value if last.value is not None else A.const(None)
            return body[:-1] + [A.assign(self.result, value, last)], self.result
        self.result = self.names.unique("_result")
        pre = [A.located(A.assign(self.result, A.const(None)), body[0] if body else None)]
        if returns and not (len(returns) == 1 and last is returns[0]):
            self.ret = self.names.flag("_ret")
            pre.append(A.located(A.assign(self.ret, A.const(False)), body[0]))
        new, _ = self.block(body, None)
        return pre + new, self.result

    def block(self, stmts, loop):
        out = []
        for i, s in enumerate(stmts):
            new, flags = self.stmt(s, loop)
            out.extend(new)
            if flags:
                rest, more = self.block(stmts[i + 1:], loop)
                if rest:
                    out.append(A.located(ast.If(test=self._none_set(flags), body=rest,
                                                orelse=[]), stmts[i + 1]))
                return out, flags | more
        return out, set()

    @staticmethod
    def _any_set(flags):
        flags = sorted(flags)
        if len(flags) == 1:
            return A.load(flags[0])
        return ast.BoolOp(op=ast.Or(), values=[A.load(f) for f in flags])

    def _none_set(self, flags):
        return ast.UnaryOp(op=ast.Not(), operand=self._any_set(flags))

    def stmt(self, s, loop):
        if isinstance(s, ast.Return):
            value = s.value if s.value is not None else A.const(None)
            new = [A.assign(self.result, value, s)]
            if self.ret is None:                    # the single, final return
                return new, set()
            new.append(A.assign(self.ret, A.const(True), s))
            return new, {self.ret}
        if isinstance(s, ast.Break):
            loop.brk = loop.brk or self.names.flag("_brk")
            return [A.assign(loop.brk, A.const(True), s)], {loop.brk}
        if isinstance(s, ast.Continue):
            loop.cont = loop.cont or self.names.flag("_cont")
            return [A.assign(loop.cont, A.const(True), s)], {loop.cont}
        if isinstance(s, ast.If):
            body, f1 = self.block(s.body, loop)
            orelse, f2 = self.block(s.orelse, loop)
            new = ast.copy_location(ast.If(test=s.test, body=body or [ast.Pass()],
                                           orelse=orelse), s)
            return [new], f1 | f2
        if isinstance(s, ast.With):
            body, flags = self.block(s.body, loop)
            new = copy.copy(s)
            new.body = body or [ast.Pass()]
            return [new], flags
        if isinstance(s, ast.Try):
            new, flags = copy.copy(s), set()
            new.handlers = []
            for h in s.handlers:
                h2 = copy.copy(h)
                h2.body, f = self.block(h.body, loop)
                h2.body = h2.body or [ast.Pass()]
                flags |= f
                new.handlers.append(h2)
            for field in ("body", "orelse", "finalbody"):
                part, f = self.block(getattr(s, field), loop)
                flags |= f
                setattr(new, field, part or ([ast.Pass()] if field == "body" else []))
            return [new], flags
        if isinstance(s, (ast.For, ast.While)):
            inner = _Loop()
            body, flags = self.block(s.body, inner)
            escaping = flags - {inner.brk, inner.cont}
            if inner.cont:
                body.insert(0, A.assign(inner.cont, A.const(False), s))
            exits = {f for f in (inner.brk,) if f} | escaping
            pre = []
            if inner.brk:
                pre.append(A.assign(inner.brk, A.const(False), s))
            if exits:
                exit_if = A.located(ast.If(test=self._any_set(exits), body=[ast.Break()],
                                           orelse=[]), s)
                A.tag(exit_if, loop_exit=True)
                body.append(exit_if)
            new = copy.copy(s)
            new.body = body or [ast.Pass()]
            return pre + [new], escaping
        return [s], set()
