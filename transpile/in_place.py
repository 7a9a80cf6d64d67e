"""Lowering for NumPy in CPython: the last pass over a gradient before it is printed.

Where the shapes of float64 arrays are known when the code is written (shapes.py), two
rewrites spare NumPy work that does not change a single number:

* **Temporaries written in place.** In ``t = <elementwise expression>``, the first
  operation that makes a new array of the result's shape makes the one array every later
  operation of the expression writes into (``out=``, or ``*=``), instead of each making
  another::

      d = (1 - h ** 2) * dh          ->     d = h ** 2
                                            d = np.subtract(1, d, out=d)
                                            d *= dh

  The operations, their operands and their order per element are those of the
  expression; only where results are stored changes, into an array made by the statement
  itself that nothing else holds. ``a + t`` and ``a * t`` become ``t += a`` and ``t *= a``
  (IEEE addition and multiplication are commutative, to the bit). Every array on the path
  is float64 of the result's shape, proven, so no result is cast or broadcast into
  another shape (and NumPy would raise rather than do either: ``out=`` checks both).
* **Reductions called directly.** ``np.sum(x, axis=0)`` is ``np.add.reduce(x, axis=0)``,
  what np.sum calls after its Python-level dispatch (np.max and np.min: maximum.reduce
  and minimum.reduce), for an x that is a float64 or boolean NumPy array.

Only expressions of names, constants, arithmetic, comparisons, attributes, subscripts
and NumPy functions are rewritten (nothing in them has an effect that order could
change). The pass runs on gradients called from Python (`grad`, `value_and_grad`), never on
code that is differentiated again (that code copies instead: `Namespace.copying`). The
numba backend folds both rewrites back (jit.py: numba fuses whole expressions itself).
"""
import ast
import functools

from . import astutil as A
from . import runtime
from .shapes import ARR, Shapes, _resolver, np_function, same_shape

#: BinOp operators done in place, with their ufuncs; those that commute take the
#: temporary on either side (`a + t` is `t += a`)
_UFUNCS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}
_COMMUTE = (ast.Add, ast.Mult)
#: reductions called by their ufunc: NumPy function name -> ufunc name
_REDUCTIONS = {"sum": "add", "max": "maximum", "amax": "maximum", "min": "minimum",
               "amin": "minimum"}


def lower(body, rt, env):
    """The statements of body with both rewrites (see the module docstring)."""
    import numpy as np
    sh = Shapes({}, _resolver(rt), env.origins)
    primal = rt.primal_shapes()
    sh.use_primal(primal)
    sh.unify_ok = False
    lowering = _Lowering(sh, set(primal), env, np)
    lowering.floats = _float_names(body, rt, sh, lowering)
    try:
        return lowering.block(body)
    finally:
        sh.memo = None


class _Lowering:
    def __init__(self, sh, fixed, env, np):
        self.sh, self.fixed, self.env, self.np = sh, fixed, env, np
        #: sums, means, maxima and minima (a new array or number of their argument's)
        self.reducers = (np.sum, np.mean, np.max, np.min, np.amax, np.amin, np.add.reduce,
                         np.maximum.reduce, np.minimum.reduce)
        self.floats = set()
        self.reals = set()
        self._functions = {}        # id(call) -> (call, what it calls)
        self.forget()
        self.owned = set()          # names whose array no other name, tape or call holds

    # --- what an expression is ------------------------------------------------------
    def _function(self, call):
        """What call calls (shapes.Shapes._function), looked up once per call (the entry
        keeps the call alive, so its id stays its own)."""
        known = self._functions.get(id(call))
        if known is None:
            known = self._functions[id(call)] = (call, self.sh._function(call))
        return known[1]

    def forget(self):
        """Drop what is_float, is_real and shape found (the facts they read changed)."""
        self._floats_of, self._reals_of, self._shapes_of = {}, {}, {}
        self.sh.memo = {}

    def is_float(self, e):
        """Is e surely a float64 value (a float64 array or a real float)?"""
        known = self._floats_of.get(id(e))
        if known is None:
            known = self._floats_of[id(e)] = self._is_float(e)
        return known

    def _is_float(self, e):
        if isinstance(e, ast.Constant):
            return type(e.value) is float
        if isinstance(e, ast.Name):
            return e.id in self.floats
        if isinstance(e, ast.Subscript) or isinstance(e, ast.Attribute) and e.attr == "T":
            return self.is_float(e.value)            # (a part of a float64 array)
        if isinstance(e, ast.UnaryOp):
            return isinstance(e.op, (ast.USub, ast.UAdd)) and self.is_float(e.operand)
        if isinstance(e, ast.BinOp):
            if isinstance(e.op, ast.MatMult):
                return self.is_float(e.left) and self.is_float(e.right)
            if not isinstance(e.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
                return False
            # float64 with any real operand (a shape says real) is float64
            return (self.is_float(e.left) and self.is_real(e.right)) or (
                self.is_float(e.right) and self.is_real(e.left))
        if isinstance(e, ast.Call):
            fn = self._function(e)
            if any(isinstance(a, ast.Starred) for a in e.args):
                return False
            if self._reducing(fn, e):
                return self.is_float(e.args[0])
            if e.keywords:
                return False
            if self._ufunc(fn, len(e.args)) or self._helper(fn, len(e.args)):
                return any(self.is_float(a) for a in e.args) and all(
                    self.is_float(a) or self.is_real(a) for a in e.args) and (
                    len(e.args) == 2 or self.is_float(e.args[0]))
            if fn is runtime.unbroadcast and len(e.args) == 2:
                return self.is_float(e.args[0])
            if fn is runtime.add_at and len(e.args) == 4:
                return self.is_float(e.args[0]) and self.is_float(e.args[3])
            if fn is self.np.dot or fn is self.np.matmul:
                return len(e.args) == 2 and all(self.is_float(a) for a in e.args)
        return False

    def _reducing(self, fn, call):
        """A sum, mean, max or min of its first argument (axis=, keepdims= at most)?"""
        return fn in self.reducers and 1 <= len(call.args) <= 2 and all(
            k.arg in ("axis", "keepdims") for k in call.keywords)

    def is_real(self, e):
        """Surely a real number or array (bool, int or float)? A known shape says so,
        and so do the names every assignment of which is real (`reals`)."""
        known = self._reals_of.get(id(e))
        if known is None:
            known = self._reals_of[id(e)] = self._is_real(e)
        return known

    def _is_real(self, e):
        if isinstance(e, ast.Constant):
            return type(e.value) in (int, float, bool)
        if isinstance(e, ast.Name):
            return e.id in self.reals or e.id in self.floats or self.sh.of(e) is not None
        if isinstance(e, ast.Compare):
            return all(self.is_real(x) for x in [e.left] + e.comparators)
        if isinstance(e, ast.BinOp) and not isinstance(e.op, ast.MatMult):
            return self.is_real(e.left) and self.is_real(e.right)
        if isinstance(e, ast.UnaryOp):
            return self.is_real(e.operand)
        if isinstance(e, ast.Call):
            fn = self._function(e)
            if self._reducing(fn, e):
                return self.is_real(e.args[0])
            if not e.keywords and (self._ufunc(fn, len(e.args)) or fn is self.np.where or
                                   self._helper(fn, len(e.args))):
                return all(self.is_real(a) for a in e.args)
        return self.is_float(e) or self.sh.of(e) is not None

    @staticmethod
    def _helper(fn, nargs):
        """A runtime helper acting elementwise on real operands (shapes.py's list)."""
        try:
            return _helpers().get(fn) == nargs
        except TypeError:           # (an unhashable callable)
            return False

    def _ufunc(self, fn, nargs):
        """A ufunc of nargs operands with a float64 loop (`d->d`, `dd->d`): its result is
        float64 for float64 operands (not np.isnan's booleans)."""
        np = self.np
        return isinstance(fn, np.ufunc) and fn.signature is None and fn.nout == 1 and \
            fn.nin == nargs and nargs in (1, 2) and "d" * nargs + "->d" in fn.types

    def shape(self, e):
        """e's shape where e is an array of known shape with at least one dimension."""
        if id(e) in self._shapes_of:
            return self._shapes_of[id(e)]
        s = self.sh.of(e)
        s = self._shapes_of[id(e)] = s if isinstance(s, tuple) and len(s) >= 1 else None
        return s

    def fresh_array(self, e, shape):
        """Does e make a new float64 array of exactly `shape` (so that writing into it
        changes nothing anyone else holds)?"""
        if not self.is_float(e) or not same_shape(self.shape(e), shape):
            return False
        if isinstance(e, ast.BinOp):
            return True          # (a float64 array operand: a new array, never a view)
        if isinstance(e, ast.UnaryOp):
            return isinstance(e.op, ast.USub)
        if isinstance(e, ast.Call):
            fn = self._function(e)
            return self._ufunc(fn, len(e.args)) or fn is self.np.dot or fn is self.np.matmul
        return False

    def in_place_op(self, e):
        """The operands of e if its operation can write into one of them (+, -, *, / of
        two operands, unary minus, a ufunc of one or two arguments), else None."""
        if isinstance(e, ast.BinOp) and type(e.op) in _UFUNCS:
            return [e.left, e.right]
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
            return [e.operand]
        if isinstance(e, ast.Call) and self._ufunc(self._function(e), len(e.args)) \
                and not e.keywords:
            return list(e.args)
        return None

    def plain(self, nodes):
        """Only names, constants, arithmetic, comparisons, attributes, subscripts, NumPy
        functions and the elementwise runtime helpers (among a statement's `nodes`):
        nothing whose order of evaluation could matter."""
        for n in nodes:
            if isinstance(n, ast.Call):
                fn = self._function(n)
                module = getattr(fn, "__module__", None) or getattr(
                    type(fn), "__module__", None)
                if not (isinstance(module, str) and module.startswith("numpy") or
                        self._helper(fn, len(n.args))):
                    return False
            elif isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.BoolOp,
                                ast.YieldFrom, ast.IfExp, ast.ListComp, ast.SetComp,
                                ast.DictComp, ast.GeneratorExp, ast.JoinedStr)):
                return False
        return True

    # --- statements -----------------------------------------------------------------
    def block(self, stmts):
        owned = self.owned = set()
        out = []
        for s in stmts:
            if isinstance(s, (ast.If, ast.For, ast.While)):
                entry = dict(self.sh.env)
                stored = [n for n in A.names_stored(s) if n not in self.fixed]
                if not isinstance(s, ast.If):
                    for n in stored:    # (what a pass leaves for the next: not followed)
                        self.sh.env[n] = None
                s.body = self.block(s.body)
                if isinstance(s, ast.If):
                    self.sh.env = dict(entry)
                s.orelse = self.block(s.orelse)
                self.sh.env = entry
                for n in stored:
                    self.sh.env[n] = None
                owned = self.owned = set()
                out.append(s)
                continue
            self.forget()           # (the shapes moved on)
            nodes = list(A.nodes(s))    # (of s as it was: the rewrites reuse its nodes)
            value = self.sh.of(s.value) if isinstance(s, ast.Assign) else None
            calls = [n for n in nodes if isinstance(n, ast.Call) and self._reduction(n)]
            held = self._held(nodes)
            ops = sum(1 for n in nodes if n.__class__ in (ast.BinOp, ast.UnaryOp, ast.Call))
            new = (self.temporaries(s, nodes) if isinstance(s, ast.Assign) and (
                ops >= 2 or ops == 1 and owned) else None) or [s]
            owned -= held
            self.track(s, value)    # (the shapes of what s reads, then of what it writes)
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                    s.targets[0], ast.Name):
                if self.fresh_array(s.value, value):     # (`d += e` for `d + e` too)
                    owned.add(s.targets[0].id)
                else:
                    owned.discard(s.targets[0].id)
            else:
                owned -= A.names_stored(s)
            for n in calls:
                self._reduce(n)
            out += new
        return out

    def _held(self, nodes):
        """The owned names a statement (its `nodes`) reads in a way that may keep their
        array (a view, another name for it, a call that may return or store it): no
        longer owned after it."""
        owned = self.owned
        reads = [n for n in nodes if n.__class__ is ast.Name and n.id in owned and
                 n.ctx.__class__ is ast.Load] if owned else ()
        if not reads:
            return set()
        held = set()
        parent = {}
        for n in nodes:
            for c in A.children(n, leaves=False):
                parent[id(c)] = n
        for n in reads:
            up = parent.get(id(n))
            if isinstance(up, (ast.BinOp, ast.UnaryOp, ast.Compare)):
                continue            # (arithmetic makes a new array)
            if isinstance(up, ast.Attribute) and up.attr in ("shape", "size", "ndim",
                                                               "dtype"):
                continue
            if isinstance(up, ast.Subscript) and up.value is n and isinstance(
                    up.ctx, ast.Store):
                continue            # (written into: `d[i] += g`)
            if isinstance(up, ast.Call) and n in up.args and self._new_result(up):
                continue
            held.add(n.id)
        return held

    def _new_result(self, call):
        """Does this call of NumPy surely return a new array (never its argument)?"""
        np = self.np
        fn = self._function(call)
        return isinstance(fn, np.ufunc) and not call.keywords or fn in self.reducers or \
            fn is np.dot or fn is np.matmul or fn is np.where

    def track(self, s, value):
        """The shapes after s (as shapes.specialise follows them); value: the shape of
        an assignment's value, taken before s was rewritten."""
        if isinstance(s, ast.Assign):
            for t in s.targets:
                if isinstance(t, ast.Name):
                    if t.id not in self.fixed:
                        self.sh.env[t.id] = value
                    continue
                for n in A.walk(t):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and \
                            n.id not in self.fixed:
                        self.sh.env[n.id] = None
            return
        for n in A.names_stored(s):
            if n not in self.fixed:
                self.sh.env[n] = None

    def _reduction(self, n):
        """Is n a call of np.sum, np.max or np.min of a known array (one `_reduce` writes
        as its ufunc's reduce)?"""
        if not isinstance(n, ast.Call) or not n.args or len(n.args) > 2 or any(
                k.arg not in ("axis", "keepdims") for k in n.keywords) or any(
                isinstance(a, ast.Starred) for a in n.args):
            return False
        fn = self._function(n)
        if not any(getattr(self.np, k) is fn for k in _REDUCTIONS):
            return False
        s = self.sh.of(n.args[0])
        return s == ARR or isinstance(s, tuple) and len(s) >= 1

    def _reduce(self, n):
        fn = self._function(n)
        name = next(k for k in _REDUCTIONS if getattr(self.np, k) is fn)
        keepdims = [k for k in n.keywords if k.arg == "keepdims"]
        axis = n.args[1] if len(n.args) == 2 else next(
            (k.value for k in n.keywords if k.arg == "axis"), A.const(None))
        n.func = ast.Attribute(value=np_function(self.env, _REDUCTIONS[name]),
                               attr="reduce", ctx=ast.Load())
        n.args = [n.args[0]]
        n.keywords = [ast.keyword(arg="axis", value=axis)] + keepdims

    def temporaries(self, s, nodes):
        """`t = <elementwise expression>` as statements writing into one new array (or,
        where the expression is not elementwise, its elementwise arguments of NumPy
        calls, each into a new array of its own: `np.sum(a * b + c)`), or None when
        nothing would be spared."""
        if len(s.targets) != 1 or not isinstance(s.targets[0], ast.Name) or \
                not self.plain(nodes):
            return None
        target = s.targets[0].id
        reads = [n.id for n in nodes if n.__class__ is ast.Name and n.ctx.__class__ is
                 ast.Load]
        # an array the target alone holds, read once here: the sum goes into it
        own = target if target in self.owned and reads.count(target) == 1 else None
        path = self._path(s.value, own)
        if path is not None:
            buf = target if target not in reads or path[-1].__class__ is ast.Name \
                else self._fresh()
            return self._lowered(path, buf, target, s)
        out = []
        self._hoist(s.value, out, s)
        return out + [s] if out else None

    def _hoist(self, node, out, s):
        """The elementwise arguments of the NumPy calls in node (outermost first, none
        inside another) each computed into a new array first (statements added to out)."""
        if isinstance(node, ast.Call):
            for k, a in enumerate(node.args):
                path = self._path(a)
                if path is None:
                    self._hoist(a, out, s)
                    continue
                buf = self._fresh()
                out += self._lowered(path, buf, buf, s)
                self.sh.env[buf] = self.shape(a)        # (read by the call from now on)
                self.floats.add(buf)
                node.args[k] = A.load(buf)
            for k in node.keywords:
                self._hoist(k.value, out, s)
            return
        for child in A.children(node, leaves=False):
            self._hoist(child, out, s)

    def _path(self, root, own=None):
        """The operations from root down to the first that makes a new array of root's
        shape, root's operand, its operand's... (at least two), or None. `own`: a name
        whose array may be that array (it alone holds it; then it ends the path)."""
        shape = self.shape(root)
        if shape is None or self.in_place_op(root) is None or \
                not self.fresh_array(root, shape):
            return None
        path = [root]
        while True:
            operands = self.in_place_op(path[-1]) or ()
            mine = next((a for a in operands if isinstance(a, ast.Name) and a.id == own
                         and self.is_float(a) and same_shape(self.shape(a), shape)), None)
            if mine is not None and (isinstance(path[-1], ast.BinOp) or len(operands) == 1):
                path.append(mine)
                break
            below = next((a for a in operands if self.fresh_array(a, shape)), None)
            if below is None:
                break
            path.append(below)
            if self.in_place_op(below) is None:
                break
        return path if len(path) >= 2 else None

    def _lowered(self, path, buf, target, s):
        """`buf = <the first new array>`, then each operation above it written into buf,
        the last one's result named target. (Each new statement has s's place: the line
        map reads statements; emit.build places the new expressions inside them.)"""
        made, ops = path[-1], path[-2::-1]
        out = [] if isinstance(made, ast.Name) else [ast.copy_location(A.assign(buf, made), s)]
        for k, op in enumerate(ops):
            into = target if k == len(ops) - 1 else buf
            below = path[len(path) - 1 - k]
            self._own_operands(op, below, out, s)
            out.append(ast.copy_location(self._written(op, below, buf, into), s))
        return out

    def _own_operands(self, op, below, out, s):
        """op's other operands that are elementwise expressions themselves (`d += a * b
        * c`): each computed into a new array first (statements added to out)."""
        if isinstance(op, ast.BinOp):
            fields = [("right", op.right)] if op.left is below else [("left", op.left)]
        elif isinstance(op, ast.Call):
            fields = [(k, a) for k, a in enumerate(op.args) if a is not below]
        else:
            return
        for field, a in fields:
            path = self._path(a)
            if path is None:
                continue
            buf = self._fresh()
            out += self._lowered(path, buf, buf, s)
            name = A.load(buf)
            if isinstance(field, str):
                setattr(op, field, name)
            else:
                op.args[field] = name

    def _written(self, op, below, buf, into):
        """The statement doing op with its operand `below` (now in buf) written into buf;
        its result named `into`."""
        t = A.load(buf)
        if isinstance(op, ast.BinOp):
            left, right = (t, op.right) if op.left is below else (op.left, t)
            if into == buf and (op.left is below or isinstance(op.op, _COMMUTE)):
                other = right if op.left is below else left
                return ast.AugAssign(target=ast.Name(id=buf, ctx=ast.Store()), op=op.op,
                                     value=other)
            func = np_function(self.env, _UFUNCS[type(op.op)])
            args = [left, right]
        elif isinstance(op, ast.UnaryOp):
            func, args = np_function(self.env, "negative"), [t]
        else:
            func, args = op.func, [t if a is below else a for a in op.args]
        call = ast.Call(func=func, args=args,
                        keywords=[ast.keyword(arg="out", value=A.load(buf))])
        return A.assign(into, call)

    def _fresh(self):
        return self.env.names.fresh("_b")


@functools.cache
def _helpers():
    from .shapes import _elementwise_helpers
    return dict(_elementwise_helpers())


def _float_names(body, rt, sh, lowering):
    """The names that hold float64 values wherever they are assigned: float64 array
    parameters (what the code is specialised on) and names every assignment of which is
    a float64 expression (to a fixpoint; flow-insensitive)."""
    from .tapes import POP
    params = set(rt.an.params)
    sites, bad = {}, set()
    for s in A.statements(body, into_defs=False):
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name):
            v = s.value
            if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and
                    v.func.id == POP and not v.args):
                # (a value popped off the stack is one the name held before)
                sites.setdefault(s.targets[0].id, []).append(v)
        elif isinstance(s, ast.For):
            bad |= A.names_stored(s.target)
        elif isinstance(s, (ast.Assign, ast.AugAssign)) and all(
                isinstance(t, (ast.Subscript, ast.Attribute))
                for t in getattr(s, "targets", [getattr(s, "target", None)])):
            continue            # (an element write keeps the array's dtype)
        elif not isinstance(s, (ast.If, ast.While)):    # (their bodies come one by one)
            bad |= A.names_stored(s)
    arrays = {p for p in params if isinstance(sh.env.get(p), tuple) or sh.env.get(p) == ARR}
    # assume every candidate, drop those with an assignment that is not float64 (real)
    lowering.floats = (arrays | set(sites)) - bad - (params - arrays) - set(sh.ints)
    lowering.reals = set(sites) - bad - params
    readers = {}                # name -> the names with an assignment reading it
    for n, values in sites.items():
        for v in values:
            for m in A.nodes(v):
                if m.__class__ is ast.Name:
                    readers.setdefault(m.id, set()).add(n)
    todo = set(sites)           # (names to look at again: what they read was dropped)
    while todo:
        lowering.forget()
        drop = {n for n in todo & lowering.floats
                if not all(lowering.is_float(v) for v in sites.get(n, ()))}
        unreal = {n for n in todo & lowering.reals
                  if not all(lowering.is_real(v) for v in sites.get(n, ()))}
        lowering.floats -= drop
        lowering.reals -= unreal
        todo = {r for n in drop | unreal for r in readers.get(n, ())}
    lowering.forget()
    return lowering.floats


# --- folded back (for the numba backend) ---------------------------------------------------

def unlower(fdef, means):
    """The inverse of `lower` on a generated function definition (in place):
    `np.add.reduce` and friends as np.sum, np.max, np.min; each run `b = <new array>`
    (arithmetic, a ufunc, np.dot or np.matmul) followed by statements writing into b
    (`b op= e`, `x = np.f(..., b, ..., out=b)`) as one assignment of the whole expression;
    and any other `d op= e` as `d = d op e`. Folding a run is exact wherever b starts as a
    new array (nothing else holds it), whoever wrote it; the last holds for generated code,
    where `lower` alone writes `d op= e` (on arrays only d holds: normalize.py makes a
    user's `x += e` the element write it is). `means(name)`: the object a free name of
    the function refers to."""
    import numpy as np

    def is_numpy(name):
        return means(name) is np

    def new_array(e):
        if isinstance(e, (ast.BinOp, ast.UnaryOp)):
            return True
        f = getattr(e, "func", None)
        if not (isinstance(e, ast.Call) and isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) and is_numpy(f.value.id)):
            return False
        obj = getattr(np, f.attr, None)
        return isinstance(obj, np.ufunc) or obj is np.dot or obj is np.matmul
    reductions = {v: k for k, v in _REDUCTIONS.items() if k in ("sum", "max", "min")}
    for n in ast.walk(fdef):
        f = getattr(n, "func", None)
        if isinstance(n, ast.Call) and isinstance(f, ast.Attribute) and f.attr == "reduce" \
                and isinstance(f.value, ast.Attribute) and f.value.attr in reductions and \
                isinstance(f.value.value, ast.Name) and is_numpy(f.value.value.id):
            n.func = ast.Attribute(value=f.value.value, attr=reductions[f.value.attr],
                                   ctx=ast.Load())
            n.keywords = [k for k in n.keywords if not (
                k.arg == "axis" and isinstance(k.value, ast.Constant) and k.value.value is None)]
    for s in [fdef] + [s for s in ast.walk(fdef) if isinstance(s, ast.stmt)]:
        for field in ("body", "orelse"):
            body = getattr(s, field, None)
            if isinstance(body, list) and body:
                setattr(s, field, _folded(body, is_numpy, new_array))
    return fdef


_OPS = {v: k for k, v in _UFUNCS.items()}


def _folded(body, is_numpy, new_array):
    out, i = [], 0
    while i < len(body):
        s = body[i]
        i += 1
        if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name):
            t = s.target.id
            out.append(ast.copy_location(ast.Assign(
                targets=[ast.Name(id=t, ctx=ast.Store())],
                value=ast.BinOp(left=ast.Name(id=t, ctx=ast.Load()), op=s.op,
                                right=s.value)), s))
            continue
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name) and new_array(s.value)):
            out.append(s)
            continue
        buf, value, target = s.targets[0].id, s.value, s.targets[0].id
        while i < len(body) and target == buf:
            step = _step(body[i], buf, value, is_numpy)
            if step is None:
                break
            value, target = step
            i += 1
        out.append(ast.copy_location(ast.Assign(targets=[ast.Name(id=target, ctx=ast.Store())],
                                                value=value), s) if value is not s.value
                   else s)
    return out


def _step(s, buf, value, is_numpy):
    """(the value with statement s folded in, the name it is assigned to) where s writes
    into buf without reading it otherwise, else None."""
    def reads_buf(e):
        return any(isinstance(n, ast.Name) and n.id == buf for n in ast.walk(e))
    if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name) and \
            s.target.id == buf and not reads_buf(s.value):
        return ast.BinOp(left=value, op=s.op, right=s.value), buf
    if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
            s.targets[0], ast.Name) and isinstance(s.value, ast.Call)):
        return None
    call = s.value
    f = call.func
    outs = [k for k in call.keywords if k.arg == "out"]
    if len(call.keywords) != 1 or len(outs) != 1 or not (
            isinstance(outs[0].value, ast.Name) and outs[0].value.id == buf) or not (
            isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            and is_numpy(f.value.id)):
        return None
    at = [k for k, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id == buf]
    if len(at) != 1 or any(reads_buf(a) for k, a in enumerate(call.args) if k != at[0]):
        return None
    args = list(call.args)
    args[at[0]] = value
    if f.attr in _OPS and len(args) == 2:
        new = ast.BinOp(left=args[0], op=_OPS[f.attr](), right=args[1])
    elif f.attr == "negative" and len(args) == 1:
        new = ast.UnaryOp(op=ast.USub(), operand=args[0])
    else:
        new = ast.Call(func=f, args=args, keywords=[])
    return new, s.targets[0].id
