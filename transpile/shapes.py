"""Shapes: what is known about array shapes when the derivative code is written.

The generated code is specialised on each float64 array argument's number of dimensions
and on which of its dimensions have size 1 (the argument's *mask*, ``"n1"`` for an
(n, 1) array; ``"py"`` for a Python number). From the masks, a small inference gives
symbolic shapes: a shape is a tuple of dimensions, each the literal 1 or a `Dim` standing
for an unknown size other than 1. Broadcasting two sizes other than 1 means they are equal
(NumPy raises otherwise, and the forward sweep ran before any adjoint statement), so
those `Dim`s are unified; `X @ W` unifies X's last dimension with W's first. Only
statements that surely ran (the function's top level, not a branch or a loop body) unify.

Two uses, both in `specialise`, run over the finished forward and adjoint sweeps:

* ``unbroadcast(g, x)`` (summing an adjoint back to the shape of an operand that was
  broadcast) is dropped where g provably has x's shape already, or is a Python number
  (which `unbroadcast` returns unchanged);
* a call of a rule's vjp function is replaced by the rule's inlined *template* (see
  rules.registry.Template) where the template's condition provably holds.

A value the inference cannot follow (an index, a reshape to a computed shape, a list,
anything of another dtype) has no shape (None), and every rewrite needing it is left out.
"""
import ast
import inspect

from . import astutil as A

PY = "py"                   # a Python number (int, float, bool)
ARR = "array"               # a float64 NumPy array (or float64 scalar) of unknown shape
RESULT_ADJOINT = "[result adjoint]"     # kinds entry: the caller passes an adjoint of
EXACT = "exact"                         # exactly the result's shape (a float64 array)


class Dim:
    """An unknown size other than 1 (union-find node)."""
    __slots__ = ("parent",)

    def __init__(self):
        self.parent = None

    def root(self):
        d = self
        while d.parent is not None:
            d = d.parent
        return d


def same_dim(a, b):
    if isinstance(a, Dim) and isinstance(b, Dim):
        return a.root() is b.root()
    return a == b == 1


def same_shape(a, b):
    """Provably the same shape (two Python numbers count as the same)."""
    if a is None or b is None or a == ARR or b == ARR:
        return False
    if a == PY or b == PY:
        return a == b == PY
    return len(a) == len(b) and all(same_dim(x, y) for x, y in zip(a, b))


def shape_of_mask(mask):
    if mask == PY:
        return PY
    return tuple(1 if c == "1" else Dim() for c in mask)


def mask_of(shape):
    """The kinds fact of a shape: "py", or "1"/"n" per dimension; None if unknown."""
    if shape is None or shape == ARR:
        return None
    if shape == PY:
        return PY
    return "".join("1" if d == 1 else "n" for d in shape)


def value_mask(value):
    """The mask of a run-time value, or None (the key the generated code is specialised on:
    float64 arrays and scalars, Python numbers)."""
    cls = value.__class__
    if cls is float or cls is int or cls is bool:
        return PY
    import numpy
    dtype = getattr(value, "dtype", None)
    if not isinstance(dtype, numpy.dtype) or dtype.char != "d" or not hasattr(value, "ndim"):
        return None         # (a class such as np.ndarray has a dtype attribute too)
    if cls is numpy.ndarray or cls is numpy.float64:
        return "".join("1" if d == 1 else "n" for d in value.shape)
    return None


def _literal(node):
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


class Shapes:
    """Symbolic shapes of the names of one generated function."""

    def __init__(self, facts, resolve, origins=None):
        self.env = {}                       # name -> shape (None: unknown)
        for name, mask in facts.items():
            self.env[name] = shape_of_mask(mask)
        self.resolve = resolve              # func AST -> object or None
        self.origins = origins or {}        # bound helper name -> ("vjp", rule, i)...
        self.unify_ok = True
        self._made = {}                     # (id of an AST node, position) -> its Dim

    # --- dimensions ----------------------------------------------------------------
    def _fresh(self, node, i):
        """A new size, the same one each time the same expression is looked at."""
        key = (id(node), i)
        if key not in self._made:
            self._made[key] = (node, Dim())       # (the node kept alive: ids stay unique)
        return self._made[key][1]

    def _unify(self, a, b):
        if self.unify_ok and isinstance(a, Dim) and isinstance(b, Dim):
            ra, rb = a.root(), b.root()
            if ra is not rb:
                rb.parent = ra

    def broadcast(self, shapes):
        out = PY
        arr = False
        for s in shapes:
            if s is None:
                return None
            if s == PY:
                continue
            if s == ARR:
                arr = True
                continue
            if out == PY:
                out = s
                continue
            n = max(len(out), len(s))
            a = (1,) * (n - len(out)) + tuple(out)
            b = (1,) * (n - len(s)) + tuple(s)
            dims = []
            for x, y in zip(a, b):
                if x == 1:
                    dims.append(y)
                elif y == 1:
                    dims.append(x)
                else:
                    self._unify(x, y)
                    dims.append(x)          # both other than 1: equal, or NumPy raised
            out = tuple(dims)
        return ARR if arr else out

    def matmul(self, a, b):
        if a is None or b is None or a in (PY, ARR) or b in (PY, ARR) or not (
                1 <= len(a) <= 2 and 1 <= len(b) <= 2):
            return None
        inner_a, inner_b = a[-1], b[0]
        if (inner_a == 1) != (inner_b == 1):
            return None
        self._unify(inner_a, inner_b)
        return tuple(a[:-1]) + tuple(b[1:])

    def reduce(self, a, axis, keepdims):
        if a is None:
            return None
        if a == PY:
            return ()
        if a == ARR:
            return ARR
        n = len(a)
        if axis is None:
            axes = set(range(n))
        elif isinstance(axis, int) and not isinstance(axis, bool) and -n <= axis < n:
            axes = {axis % n}
        else:
            return None
        if keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(a))
        return tuple(d for i, d in enumerate(a) if i not in axes)

    # --- expressions ---------------------------------------------------------------
    def of(self, e):
        """The shape of expression e (None when unknown)."""
        if isinstance(e, ast.Constant):
            v = e.value
            return PY if type(v) in (int, float, bool) else None
        if isinstance(e, ast.Name):
            return self.env.get(e.id)
        if isinstance(e, ast.UnaryOp):
            if isinstance(e.op, (ast.USub, ast.UAdd)):
                return self.of(e.operand)
            return None
        if isinstance(e, ast.BinOp):
            a, b = self.of(e.left), self.of(e.right)
            if isinstance(e.op, ast.MatMult):
                return self.matmul(a, b)
            if isinstance(e.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
                if a == PY and b == PY:
                    return PY
                return self.broadcast([a, b])
            return None
        if isinstance(e, ast.Attribute) and e.attr == "T":
            a = self.of(e.value)
            return a if a in (None, PY, ARR) else tuple(reversed(a))
        if isinstance(e, ast.Compare) and len(e.ops) == 1:      # (a boolean array)
            a, b = self.of(e.left), self.of(e.comparators[0])
            return PY if a == PY and b == PY else self.broadcast([a, b])
        if isinstance(e, ast.Subscript):
            a = self.of(e.value)
            return ARR if a is not None and a != PY else None     # an element or a part
        if isinstance(e, ast.Call):
            return self._call(e)
        return None

    def _call(self, e):
        import numpy as np
        from . import runtime
        fn = self._function(e)
        if fn is None and isinstance(e.func, ast.Attribute) and e.func.attr in _METHODS:
            base = self.of(e.func.value)           # x.sum(axis=1), x.reshape(2, 3)
            if base is None or base in (PY, ARR):
                return None if base is None or base == PY else ARR
            args = list(e.args)
            if e.func.attr == "reshape" and len(args) > 1:
                args = [ast.Tuple(elts=args, ctx=ast.Load())]
            call = ast.Call(func=e.func, args=[e.func.value] + args, keywords=e.keywords)
            resolve = self.resolve
            self.resolve = lambda f: getattr(np, f.attr) if f is e.func else resolve(f)
            try:
                return self._call(call)
            finally:
                self.resolve = resolve
        if fn is None:
            return None
        args = e.args
        kw = {k.arg: k.value for k in e.keywords}
        if any(isinstance(a, ast.Starred) for a in args) or None in kw:
            return None
        shapes = [self.of(a) for a in args]
        if isinstance(fn, np.ufunc) and fn.signature is None:   # (np.matmul is a ufunc
            sig = "d" * fn.nin + "->" + "d" * fn.nout          # with core dimensions)
            if kw or len(args) != fn.nin or fn.nout != 1 or sig not in fn.types:
                return None
            s = self.broadcast(shapes)
            return () if s == PY else s
        if fn is np.where and len(args) == 3 and not kw:
            return self.broadcast(shapes)
        if fn in (np.sum, np.mean, np.max, np.min, np.amax, np.amin, np.prod):
            names = ["a", "axis", "dtype", "out", "keepdims"]
            bound = dict(zip(names, args))
            bound.update(kw)
            if set(bound) - {"a", "axis", "keepdims"} or "a" not in bound:
                return None
            ok_axis, axis = _literal(bound["axis"]) if "axis" in bound else (True, None)
            ok_kd, keepdims = _literal(bound["keepdims"]) if "keepdims" in bound else (
                True, False)
            if not (ok_axis and ok_kd) or keepdims not in (True, False):
                return None
            return self.reduce(self.of(bound["a"]), axis, keepdims)
        if fn in (np.matmul, np.dot) and len(args) == 2 and not kw:
            return self.matmul(*shapes)
        if fn is np.reshape and len(args) == 2 and not kw:
            ok, new = _literal(args[1])
            new = (new,) if type(new) is int else new
            if self.of(args[0]) in (None, PY) or not ok or not isinstance(new, tuple) or \
                    not all(type(k) is int and k >= 0 for k in new):
                return None                 # (-1: a size computed at run time)
            return tuple(1 if k == 1 else self._fresh(e.func, i) for i, k in enumerate(new))
        if fn is np.transpose and len(args) == 1 and not kw:
            a = shapes[0]
            return a if a in (None, PY, ARR) else tuple(reversed(a))
        if fn is np.outer and len(args) == 2 and not kw:
            a, b = shapes
            if any(x in (None, PY, ARR) for x in (a, b)) or len(a) != 1 or len(b) != 1:
                return None
            return (a[0], b[0])
        if fn is np.full and len(args) == 2 and not kw:
            s = args[0]
            if isinstance(s, ast.Attribute) and s.attr == "shape":
                target = self.of(s.value)
                return None if target == PY else target
            return None
        if fn is np.broadcast_to and len(args) == 2 and not kw:
            s = args[1]
            if isinstance(s, ast.Attribute) and s.attr == "shape":
                target = self.of(s.value)
                return None if target == PY else target
            if self.of(args[0]) not in (None, PY):
                return ARR
            return None
        if fn is np.expand_dims and len(args) == 2 and not kw:
            a = shapes[0]
            ok, axis = _literal(args[1])
            if a == ARR:
                return ARR
            if a is None or a == PY or not ok or type(axis) is not int:
                return None
            n = len(a) + 1
            if not -n <= axis < n:
                return None
            out = list(a)
            out.insert(axis % n, 1)
            return tuple(out)
        if fn is runtime.unbroadcast and len(args) == 2:
            g, like = shapes
            if g == PY:
                return PY
            if g is None or like is None or like == PY:
                return None
            return like
        if fn is runtime.add and len(args) == 2:
            return self.broadcast(shapes)
        if fn is runtime.mul_masked and len(args) == 2:
            return self.broadcast(shapes)
        if fn is runtime.add_at and len(args) == 4:
            adj, value, _, g = shapes
            if value is None or value == PY:
                return None
            if same_shape(adj, value) or (adj == PY and g not in (None, PY)):
                return value            # (a zero adjoint is made like value)
            return None
        origin = self.origins.get(e.func.id) if isinstance(e.func, ast.Name) else None
        if origin is not None and origin[0] == "vjp" and _numpy_rule(origin[1]):
            i = origin[2]
            if len(args) > 2 + i:           # vjp(g, ans, *args): operand i's own shape
                s = shapes[2 + i]
                return s
        return None

    def _function(self, call):
        try:
            return self.resolve(call.func)
        except Exception:                   # an attribute that does not resolve
            return None

    # --- statements ----------------------------------------------------------------
    def assign(self, target, value):
        if isinstance(target, ast.Name):
            self.env[target.id] = self.of(value)
        else:
            for n in A.walk(target):
                if isinstance(n, ast.Name) and isinstance(target, (ast.Tuple, ast.List)):
                    self.env[n.id] = None


_METHODS = ("sum", "mean", "max", "min", "prod", "reshape", "transpose")


def _numpy_rule(rule):
    """Rules of rules/numpy_.py: their vjps return the operand's own shape."""
    from .rules import numpy_
    return rule.env is numpy_.ENV


# --- the primal: flow-insensitive shapes of the user's names ------------------------------

def primal_shapes(body, params, facts, resolve, results=None):
    """name -> shape for the normalized primal `body`: a name's shape is the one every
    assignment to it gives (else None); a parameter's first value has the shape its fact
    says. `results`: shapes of user-call results known (target name -> shape)."""
    sh = Shapes({p: m for p, m in facts.items() if p in params}, resolve)
    for p in params:
        sh.env.setdefault(p, None)
    unset = object()
    sites, poisoned = [], set()
    for s, depth in _walk_with_depth(body):
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name):
            sites.append((s, depth))
            continue
        own = [s.target] if isinstance(s, ast.For) else [] if isinstance(
            s, (ast.If, ast.While)) else [s]
        for part in own:
            poisoned |= {n.id for n in A.nodes(part) if isinstance(n, ast.Name)
                         and isinstance(n.ctx, ast.Store)}
    for s, _ in sites:
        t = s.targets[0].id
        if t not in params:
            sh.env[t] = unset
    for name in poisoned:
        sh.env[name] = None
    for _ in range(10):
        changed = False
        for s, depth in sites:
            t = s.targets[0].id
            if sh.env.get(t) is None and t in sh.env:
                continue                        # known to be unknown
            sh.unify_ok = depth == 0
            if A.get_tag(s.value, "special") == "user":
                new = (results or {}).get(t)
            elif _reads(s.value, sh.env, unset):
                continue
            else:
                new = sh.of(s.value)
            old = sh.env.get(t)
            if old is unset:
                sh.env[t] = new
                changed = True
            elif not (old is new or old == ARR == new or same_shape(old, new)):
                sh.env[t] = None
                changed = True
        if not changed:
            break
    for name, v in list(sh.env.items()):
        if v is unset:
            sh.env[name] = None
    return sh.env


def _reads(e, env, unset):
    return any(isinstance(n, ast.Name) and env.get(n.id, None) is unset for n in A.nodes(e))


def _walk_with_depth(body, depth=0):
    for s in body:
        yield s, depth
        for field in ("body", "orelse"):
            inner = getattr(s, field, None)
            if inner and isinstance(s, (ast.If, ast.For, ast.While)):
                yield from _walk_with_depth(inner, depth + 1)


# --- the rewrite of the finished sweeps ---------------------------------------------------

class _Specialiser:
    def __init__(self, shapes, fixed, env, requests):
        self.requests = requests
        self.failed = set()
        self.sh = shapes
        self.fixed = fixed          # primal names: their (flow-insensitive) shapes hold
        self.namespace = env

    def block(self, stmts, top=True):
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                stored = {n.id for n in A.nodes(s) if isinstance(n, ast.Name)
                          and isinstance(n.ctx, ast.Store)} - self.fixed
                for n in stored:
                    self.sh.env[n] = None
                saved, self.sh.unify_ok = self.sh.unify_ok, False
                if isinstance(s, ast.If):
                    s.test = self.expr(s.test)
                else:
                    if isinstance(s, ast.While):
                        s.test = self.expr(s.test)
                s.body = self.block(s.body, False)
                for n in stored:
                    self.sh.env[n] = None
                s.orelse = self.block(s.orelse, False)
                for n in stored:
                    self.sh.env[n] = None
                self.sh.unify_ok = saved
                out.append(s)
                continue
            if isinstance(s, ast.Assign):
                s.value = self.expr(s.value)
                if self._callee_adjoints(s):
                    out.append(s)
                    continue
                for t in s.targets:
                    if isinstance(t, ast.Name) and t.id in self.fixed:
                        continue
                    if isinstance(t, (ast.Tuple, ast.List)):
                        for n in A.walk(t):
                            if isinstance(n, ast.Name) and n.id not in self.fixed:
                                self.sh.env[n.id] = None
                        continue
                    if isinstance(t, ast.Name):
                        self.sh.assign(t, s.value)
            elif isinstance(s, ast.Expr):
                s.value = self.expr(s.value)
            elif isinstance(s, ast.Return) and s.value is not None:
                s.value = self.expr(s.value)
            else:
                for n in A.walk(s):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and \
                            n.id not in self.fixed:
                        self.sh.env[n.id] = None
            out.append(s)
        return out

    def _callee_adjoints(self, s):
        """`_d1, _d2 = f_backward(_tape, g)`: the callee's adjoints that have exactly the
        shapes of the caller's arguments (recorded on the callee's Compiled)."""
        v = s.value
        request = A.get_tag(v, "callee_request") if isinstance(v, ast.Call) else None
        if request is None or not A.get_tag(v, "callee_backward"):
            return False
        r = self.requests[request]
        target = s.targets[0]
        outs = [n.id for n in target.elts] if isinstance(target, ast.Tuple) else []
        for name in outs:
            self.sh.env[name] = None
        if request in self.failed:
            return True
        callee = self.namespace.origins.get(v.func.id, (None, None))[1] if isinstance(
            v.func, ast.Name) else None
        exact = getattr(callee, "exact_adjoints", ())
        for name, p in zip(outs, r["active"]):
            arg = r["args"].get(p)
            if p in exact and isinstance(arg, ast.Name):
                self.sh.env[name] = self.sh.env.get(arg.id)
        return True

    def expr(self, e):
        """e with its sub-expressions rewritten (innermost first)."""
        if isinstance(e, ast.Lambda):
            return e
        for field in e._fields:                 # (ast.iter_fields, without a generator)
            value = getattr(e, field, None)
            if isinstance(value, ast.expr):
                setattr(e, field, self.expr(value))
            elif isinstance(value, list):
                setattr(e, field, [self.expr(v) if isinstance(v, ast.expr) else
                                   self._keyword(v) if isinstance(v, ast.keyword) else v
                                   for v in value])
        if isinstance(e, ast.Call):
            return self._call(e)
        return e

    def _keyword(self, k):
        k.value = self.expr(k.value)
        return k

    def _call(self, e):
        from . import runtime
        request = A.get_tag(e, "callee_request")
        if request is not None and A.get_tag(e, "callee_backward"):
            # the callee assumed an adjoint of exactly its result's shape: proven here?
            g = self.sh.of(e.args[1]) if len(e.args) == 2 else None
            want = self.sh.env.get(self.requests[request]["result"])
            if not (want is None or same_shape(g, want)):
                self.failed.add(request)
            return e
        fn = self.sh._function(e)
        if fn is runtime.unbroadcast and len(e.args) == 2 and not e.keywords:
            g, like = self.sh.of(e.args[0]), self.sh.of(e.args[1])
            if g == PY or same_shape(g, like):
                return e.args[0]
            return self._sum_back(e, g, like) or e
        origin = self.sh.origins.get(e.func.id) if isinstance(e.func, ast.Name) else None
        if origin is not None and origin[0] == "vjp":
            rule, i = origin[1], origin[2]
            templates = rule.templates[i] if i < len(rule.templates) else ()
            for t in templates:
                new = self._inline(t, rule, e)
                if new is not None:
                    return new
        return e

    def _sum_back(self, e, g, like):
        """`unbroadcast(g, x)` written out as the sums it does, where both shapes are known:
        `np.sum(g, axis=0)` for a bias vector, `np.sum(g, axis=1, keepdims=True)` for an
        (n, 1) operand (the same reductions, in the same order, as unbroadcast)."""
        if g in (None, PY, ARR) or like in (None, PY, ARR) or len(g) < len(like):
            return None
        extra = len(g) - len(like)
        kept = []
        for i, (a, b) in enumerate(zip(g[extra:], like)):
            if b == 1 and a != 1:
                kept.append(i)
            elif not same_dim(a, b):
                return None
        out = e.args[0]
        np_name = self.namespace.bind("np", __import__("numpy"))

        def total(x, axes, keepdims):
            axis = A.const(axes[0]) if len(axes) == 1 else ast.Tuple(
                elts=[A.const(k) for k in axes], ctx=ast.Load())
            kw = [ast.keyword(arg="axis", value=axis)]
            if keepdims:
                kw.append(ast.keyword(arg="keepdims", value=A.const(True)))
            return ast.Call(func=ast.Attribute(value=A.load(np_name), attr="sum",
                                               ctx=ast.Load()), args=[x], keywords=kw)
        if extra:
            out = total(out, list(range(extra)), False)
        if kept:
            out = total(out, kept, True)
        return A.located(out, e)

    def _inline(self, t, rule, e):
        """Template t applied to the vjp call e, or None when its condition is not
        proven."""
        if any(isinstance(a, ast.Starred) for a in e.args) or any(
                k.arg is None for k in e.keywords):
            return None
        try:
            bound = t.signature.bind(*e.args, **{k.arg: k.value for k in e.keywords})
        except TypeError:
            return None
        bound.apply_defaults()
        values = bound.arguments
        params = list(t.signature.parameters)
        g_name, ans_name = params[0], params[1]
        for name, allowed in t.ndim.items():
            node = values.get(name)
            s = self.sh.of(node) if isinstance(node, ast.AST) else None
            if s is None or s in (PY, ARR) or len(s) not in allowed:
                return None
        for name, want in t.values.items():
            v = values.get(name)
            if isinstance(v, ast.AST):
                ok, v = _literal(v)
                if not ok:
                    return None
            if type(v) is not type(want) or v != want:
                return None
        for name in t.ints:
            v = values.get(name)
            ok, lit = _literal(v) if isinstance(v, ast.AST) else (False, None)
            if not ok or type(lit) is not int:
                return None
        # the result's shape, from the operands (the primitive's own call)
        operands = [values[p] for p in params[2:] if p in values and isinstance(
            values[p], ast.AST) and t.signature.parameters[p].kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)]
        ans = self._result_shape(rule, e)
        g = self.sh.of(values[g_name])
        if ans is None or ans in (PY, ARR):
            return None
        exact = same_shape(g, ans) or (g == PY and ans == ())
        if not exact and not (not t.exact and g == PY):
            return None
        del operands
        mapping = {}
        for name, v in values.items():
            if t.signature.parameters[name].kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            mapping[name] = v if isinstance(v, ast.AST) else A.const(v)
        expr = self.namespace.instantiate(t.expr, mapping, t.env)
        return A.located(expr, e)

    def _result_shape(self, rule, e):
        """The shape of the primitive's result, from the vjp call's operands."""
        import numpy as np
        operands = e.args[2:]
        fn = rule.fn
        call = ast.Call(func=ast.Name(id="_", ctx=ast.Load()), args=list(operands),
                        keywords=list(e.keywords))
        if isinstance(fn, type) and issubclass(fn, ast.operator):
            if len(operands) != 2 or e.keywords:
                return None
            return self.sh.of(ast.BinOp(left=operands[0], op=fn(), right=operands[1]))
        if fn is np.transpose or fn is np.ndarray.transpose:
            return self.sh.of(ast.Attribute(value=operands[0], attr="T", ctx=ast.Load())) \
                if len(operands) == 1 and not e.keywords else None
        resolve = self.sh.resolve
        self.sh.resolve = lambda f: fn if isinstance(f, ast.Name) and f.id == "_" else \
            resolve(f)
        try:
            return self.sh.of(call)
        finally:
            self.sh.resolve = resolve


def specialise(fwd, rev, rt, kind, compiled=None, resolver=None, number_seed=True):
    """Drop no-op unbroadcasts and inline rule templates in the finished sweeps of the
    reverse transform `rt` (see the module docstring). `kind`: the generated function's
    kind ("value_and_grad", "gradient": the seed is 1.0, or with `number_seed` False
    seed.result_seed's, of unknown shape; a pair: the adjoint of the result is its
    argument). Records the result's shape on `compiled` (callers read it
    for their facts about the call's result); `resolver`'s tape (the values the adjoint
    sweep reads) loses the values the rewritten sweep no longer reads."""
    if not rt.shape_facts and not rt.call_results:
        return fwd, rev
    env = rt.env
    resolve = _resolver(rt)
    primal = rt.primal_shapes()
    fixed = set(primal)
    sh = Shapes({}, resolve, env.origins)
    sh.env.update(primal)
    result = rt.norm.result
    d_result = rt.d(result)
    if kind in ("value_and_grad", "gradient"):
        sh.env[d_result] = PY if number_seed else None
    elif rt.an.param_kinds.get(RESULT_ADJOINT) == EXACT:
        sh.env[d_result] = primal.get(result)
    else:
        sh.env[d_result] = None
    for dv in set(rt.names.adjoints.values()) - {d_result}:
        sh.env.setdefault(dv, PY)               # adjoints start as 0.0
    sp = _Specialiser(sh, fixed, env, rt.callee_requests)
    sh.unify_ok = False         # primal facts were unified already; sweeps add nothing
    fwd = sp.block(fwd)
    rev = sp.block(rev)
    if sp.failed:
        _redirect(rt, sp.failed, fwd + rev)
    if resolver is not None:
        read = {n.id for s in rev for n in A.nodes(s) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}
        resolver.needed = {v for v in resolver.needed if v in read}
    if compiled is not None:
        compiled.result_shape = mask_of(primal.get(result))
        compiled.exact_adjoints = {p for p in rt.an.active if p in rt.an.params and
                                   same_shape(sh.env.get(rt.d(p)), primal.get(p))}
    return fwd, rev


def _redirect(rt, failed, stmts):
    """Calls of a callee variant compiled for an adjoint of exactly its result's shape,
    where the caller could not prove it passes one: to the variant assuming nothing."""
    names = {}
    for request in failed:
        r = rt.callee_requests[request]
        kinds = dict(r["kinds"])
        kinds.pop(RESULT_ADJOINT, None)
        names[request] = rt.env.callee(r["target"], r["active"], kinds, r["stmt"])
    for s in stmts:
        for n in A.walk(s):
            request = A.get_tag(n, "callee_request") if isinstance(n, ast.Call) else None
            if request in names:
                fwd_name, bwd_name = names[request]
                n.func = A.load(bwd_name if A.get_tag(n, "callee_backward") else fwd_name)


def _resolver(rt):
    unit = rt.unit
    env = rt.env
    local = env.local_names

    def resolve(func):
        if isinstance(func, ast.Name):
            if func.id in env.bindings:
                obj = env.bindings[func.id]
                return None if type(obj).__name__ == "cell" else obj
            if func.id in local or func.id in rt.names.adjoints.values():
                return None
            from .frontend import _MISSING
            obj = unit.lookup(func.id)
            return None if obj is _MISSING else obj
        if isinstance(func, ast.Attribute):
            base = resolve(func.value)
            if base is None:
                return None
            import types
            if not isinstance(base, (types.ModuleType, type)):
                return None
            return getattr(base, func.attr, None)
        return None
    return resolve
