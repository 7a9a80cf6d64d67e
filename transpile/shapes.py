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
import functools
import inspect
import types

from . import astutil as A
from . import runtime
from .frontend import _MISSING

PY = "py"                   # a Python number (int, float, bool)
ARR = "array"               # a float64 NumPy array (or float64 scalar) of unknown shape
RESULT_ADJOINT = "[result adjoint]"     # kinds entry: the caller passes an adjoint of
EXACT = "exact"                         # exactly the result's shape (a float64 array)
INTS = "[ints]"                 # primal_shapes' entry: the names that hold Python ints
SHAPE_NAMES = "[shapes]"        # and the names that hold an array's shape tuple
SIZES = "[sizes]"               # and the lengths of slices (`x[1:]`, `x[:-1]`: one Size)


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


class Size:
    """A size that may be 1 (the length of a slice): the same as itself only, never
    unified (broadcasting it against another size proves nothing about it)."""
    __slots__ = ()


def same_dim(a, b):
    if isinstance(a, Dim) and isinstance(b, Dim):
        return a.root() is b.root()
    if isinstance(a, Size) or isinstance(b, Size):
        return a is b
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
    return tuple(1 if c == "1" else Size() if c == "?" else Dim() for c in mask)


def mask_of(shape):
    """The kinds fact of a shape: "py", or per dimension "1", "n" (not 1) or "?" (a size
    that may be 1); None if unknown."""
    if shape is None or shape == ARR:
        return None
    if shape == PY:
        return PY
    return "".join("?" if isinstance(d, Size) else "1" if d == 1 else "n" for d in shape)


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


def np_function(namespace, attr):
    """`np.<attr>` for generated code: NumPy bound in the namespace as `np`."""
    np_name = namespace.bind("np", __import__("numpy"))
    return ast.Attribute(value=A.load(np_name), attr=attr, ctx=ast.Load())


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
        self._sizes = {}                    # ("slice", dimension, cut) -> its Size
        self.ints = set()                   # names that hold Python ints
        self.shape_names = set()            # names that hold an array's shape tuple

    def use_primal(self, primal):
        """Take the shapes `primal_shapes` found (and its ints and shape tuples)."""
        self.env.update({k: v for k, v in primal.items() if k not in (INTS, SHAPE_NAMES,
                                                                       SIZES)})
        self.ints |= primal.get(INTS, frozenset())
        self.shape_names |= primal.get(SHAPE_NAMES, frozenset())
        self._sizes.update(primal.get(SIZES, {}))     # (a later x[:-1] is the primal's)

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
                if isinstance(x, int) and x == 1:
                    dims.append(y)
                elif isinstance(y, int) and y == 1:
                    dims.append(x)
                elif isinstance(x, Size) or isinstance(y, Size):
                    # a size that may be 1 against one that is not: that one (against
                    # itself: itself; against another that may be 1: nothing is known)
                    if same_dim(x, y):
                        dims.append(x)
                    elif isinstance(x, Size) and isinstance(y, Size):
                        return None
                    else:
                        dims.append(y if isinstance(x, Size) else x)
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

    def _part(self, a, index):
        """The shape of a[index] for a basic index, or None. Integers (literals, and names
        known to hold ints: `is_int`) drop their dimension (NumPy raised if one was out of
        range); a slice keeps a length: the dimension itself for `[:]`, one `Size` for all
        slices of literal bounds that leave out as many elements of the same dimension
        (`x[1:]`, `x[:-1]`), a `Size` of its own for any other (`x[i:i + k]`, `x[::2]`:
        its bounds are indices, or NumPy raised)."""
        if a == ARR:
            return None
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        if len(items) > len(a):
            return None
        out = []
        for d, item in zip(a, items):
            bounds = self._slice_bounds(item)
            if bounds is None:
                if not self.is_int(item):
                    return None
                continue
            start, stop, step = bounds
            plain = step is None or _literal(step) == (True, 1)
            if plain and start is None and stop is None:
                out.append(d)
                continue
            ok_a, lo = _literal(start) if start is not None else (True, None)
            ok_b, hi = _literal(stop) if stop is not None else (True, None)
            if plain and ok_a and ok_b and (lo is None or type(lo) is int and lo >= 0) and (
                    hi is None or type(hi) is int and hi < 0):
                key = ("slice", d.root() if isinstance(d, Dim) else d, (lo or 0) - (hi or 0))
                out.append(self._sizes.setdefault(key, Size()))
            else:                   # a slice of some length (its bounds are indices,
                out.append(self._sizes.setdefault(("node", id(item)), (item, Size()))[1])
        return tuple(out) + tuple(a[len(items):])

    def basic_index(self, index):
        """The subscript for a basic index given as a value (`(i, slice(a, b, None))`:
        ints and slices, each element selected once), or None."""
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        out = []
        for item in items:
            bounds = self._slice_bounds(item)
            if bounds is not None:
                out.append(ast.Slice(*[A.copy_tree(b) for b in bounds]))
            elif self.is_int(item):
                out.append(A.copy_tree(item))
            else:
                return None
        return out[0] if not isinstance(index, ast.Tuple) else ast.Tuple(elts=out,
                                                                         ctx=ast.Load())

    def _slice_bounds(self, item):
        """(start, stop, step) ASTs (None where absent) of `a:b:c` or `slice(...)`."""
        if isinstance(item, ast.Slice):
            return item.lower, item.upper, item.step
        if isinstance(item, ast.Call) and not item.keywords and 1 <= len(item.args) <= 3 \
                and self._function(item) is slice and not any(
                    isinstance(x, ast.Starred) for x in item.args):
            args = [None if isinstance(x, ast.Constant) and x.value is None else x
                    for x in item.args]
            return (None, args[0], None) if len(args) == 1 else tuple(args + [None])[:3]
        return None

    def is_int(self, e):
        """Does e surely hold a Python int (or raise)? Int literals, names of `ints`,
        arithmetic of those, `x.shape[k]`, len() and int()."""
        if isinstance(e, ast.Constant):
            return type(e.value) is int
        if isinstance(e, ast.Name):
            return e.id in self.ints
        if isinstance(e, ast.BinOp):
            return isinstance(e.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)) \
                and self.is_int(e.left) and self.is_int(e.right)
        if isinstance(e, ast.UnaryOp):
            return isinstance(e.op, (ast.USub, ast.UAdd)) and self.is_int(e.operand)
        if isinstance(e, ast.Subscript):
            ok, k = _literal(e.slice)
            return ok and type(k) is int and self.is_shape(e.value)
        if isinstance(e, ast.Call) and len(e.args) == 1 and not e.keywords:
            return self._function(e) in (len, int) and not isinstance(e.args[0], ast.Starred)
        return False

    def is_shape(self, e):
        """Is e the shape tuple of an array (`x.shape`, or a name holding one)?"""
        if isinstance(e, ast.Name):
            return e.id in self.shape_names
        if not (isinstance(e, ast.Attribute) and e.attr == "shape"):
            return False
        a = self.of(e.value)
        return a == ARR or isinstance(a, tuple)

    # --- expressions ---------------------------------------------------------------
    #: {id(node): shape} while set (by a pass that keeps it for as long as the names'
    #: shapes and the nodes stay as they are: in_place.py, one statement at a time)
    memo = None

    def of(self, e):
        """The shape of expression e (None when unknown)."""
        memo = self.memo
        if memo is None:
            return self._of(e)
        known = memo.get(id(e), memo)
        if known is memo:
            known = memo[id(e)] = self._of(e)
        return known

    def _of(self, e):
        if isinstance(e, ast.Constant):
            v = e.value
            return PY if type(v) in (int, float, bool) else None
        if isinstance(e, ast.Name):
            return PY if e.id in self.ints else self.env.get(e.id)
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
        if isinstance(e, ast.BoolOp):       # `n or 1` of numbers
            return PY if all(self.of(v) == PY for v in e.values) else None
        if isinstance(e, ast.Compare) and len(e.ops) == 1:      # (a boolean array)
            a, b = self.of(e.left), self.of(e.comparators[0])
            return PY if a == PY and b == PY else self.broadcast([a, b])
        if isinstance(e, ast.Attribute) and e.attr in ("size", "ndim"):
            return PY if self.of(e.value) not in (None, PY) else None     # (an int)
        if isinstance(e, ast.Subscript) and self.is_shape(e.value):
            ok, k = _literal(e.slice)
            return PY if ok and type(k) is int else None
        if isinstance(e, ast.Subscript):
            a = self.of(e.value)
            if a is None or a == PY:
                return None
            part = self._part(a, e.slice)
            return ARR if part is None else part        # an element or a part
        if isinstance(e, ast.Call):
            return self._call(e)
        return None

    def _call(self, e):
        import numpy as np
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
        if fn is np.count_nonzero and len(args) == 1 and not kw:
            return PY if shapes[0] not in (None, PY) else None      # (an int)
        if fn in (np.zeros, np.ones, np.empty) and len(args) == 1 and not kw:
            return self._new_shape(args[0])
        if fn is np.zeros_like and len(args) == 1 and not kw:
            return shapes[0] if shapes[0] not in (PY,) else None
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
        if not kw and any(fn is h and len(args) == n for h, n in _elementwise_helpers()):
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

    def _new_shape(self, e):
        """The shape of np.zeros(e): e an array's shape, an int or a tuple (each size the
        literal 1 or a `Size` of its own: a size other than a literal may be 1)."""
        if self.is_shape(e):
            a = self.of(e.value) if isinstance(e, ast.Attribute) else None
            return a if a not in (None, PY) else None
        if isinstance(e, ast.Tuple):        # (each an index, or NumPy raised)
            items = e.elts
            if any(isinstance(x, ast.Starred) for x in items):
                return None
        elif self.is_int(e):
            items = [e]
        else:
            return None
        return tuple(1 if _literal(x) == (True, 1) else
                     self._sizes.setdefault(("node", id(x)), (x, Size()))[1] for x in items)

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


@functools.cache
def _elementwise_helpers():
    """Runtime helpers that act elementwise on float64 operands, with their numbers of
    arguments: the result is shaped like the operands broadcast (their complex cases lie
    outside what this module follows)."""
    return ((runtime.add, 2), (runtime.mul_masked, 2), (runtime.sign, 1),
            (runtime.abs_partial, 1), (runtime.real_part, 1), (runtime.pow_log, 3),
            (runtime.pow_deriv, 3))


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
    _ints_and_shape_names(sh, sites, body, params)     # (from the parameters' shapes)
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
    sh.env[INTS] = frozenset(sh.ints)
    sh.env[SHAPE_NAMES] = frozenset(sh.shape_names)
    sh.env[SIZES] = {k: v for k, v in sh._sizes.items() if k[0] == "slice"}
    return sh.env


def _ints_and_shape_names(sh, sites, body, params):
    """The names every assignment of which gives a Python int (a loop over range()
    included), and those every assignment of which gives an array's shape: the largest
    such sets (assumed, then dropped where an assignment disagrees, until none does)."""
    by_name = {}
    for s, _ in sites:
        by_name.setdefault(s.targets[0].id, []).append(s.value)
    ranges = {t for t, values in by_name.items() if all(
        isinstance(v, ast.Call) and sh._function(v) is range for v in values)}
    loops, other = {}, set()
    for s, _ in _walk_with_depth(body):
        if isinstance(s, ast.For):
            it = s.iter
            over_range = isinstance(s.target, ast.Name) and (
                (isinstance(it, ast.Name) and it.id in ranges) or (
                    isinstance(it, ast.Call) and sh._function(it) is range))
            for n in A.nodes(s.target):
                if isinstance(n, ast.Name):
                    loops[n.id] = loops.get(n.id, True) and over_range
        elif not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name)) and not isinstance(s, (ast.If, ast.While)):
            other |= {n.id for n in A.nodes(s) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, (ast.Store, ast.Del))}
    for n in A.nodes(ast.Module(body=body, type_ignores=[])):   # (nested defs too)
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            other |= set(n.names)
        elif isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
            other.add(n.target.id)
    candidates = (set(by_name) | set(loops)) - set(params) - other - {
        t for t, ok in loops.items() if not ok}
    sh.ints = set(candidates)
    sh.shape_names = candidates - set(loops)      # (a loop's target is an int)
    changed = True
    while changed:
        changed = False
        for name in list(sh.ints | sh.shape_names):
            for v in by_name.get(name, ()):
                if name in sh.ints and not sh.is_int(v):
                    sh.ints.discard(name)
                    changed = True
                if name in sh.shape_names and not sh.is_shape(v):
                    sh.shape_names.discard(name)
                    changed = True


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
        self.real = False           # surely no complex value in the function

    def block(self, stmts, top=True):
        out = []
        for s in stmts:
            if isinstance(s, ast.If) and self._surely_not_zero(s.test):
                out += self.block(s.body, top)      # the guard of an adjoint that is an
                continue                            # array here: always taken
            if isinstance(s, ast.If):
                stored = self._stored(s)
                saved, self.sh.unify_ok = self.sh.unify_ok, False
                s.test = self.expr(s.test)
                entry = dict(self.sh.env)
                s.body = self.block(s.body, False)
                after_body, self.sh.env = self.sh.env, entry
                s.orelse = self.block(s.orelse, False)
                for n in stored:            # what both branches agree on
                    a, b = after_body.get(n), self.sh.env.get(n)
                    self.sh.env[n] = a if a is b or same_shape(a, b) else None
                self.sh.unify_ok = saved
                out.append(s)
                continue
            if isinstance(s, (ast.For, ast.While)):
                saved, self.sh.unify_ok = self.sh.unify_ok, False
                out.append(self._loop(s))
                self.sh.unify_ok = saved
                continue
            if isinstance(s, ast.Assign):
                s.value = self.expr(s.value)
                inline = self._in_place(s)
                if inline is not None:
                    out += inline
                    continue
                if self._callee_adjoints(s) or self._taken_item(s):
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

    def _surely_not_zero(self, test):
        """Is `test` `not is_zero(g)` for a g that cannot be the zero placeholder (0.0 is a
        Python number; g is provably a float64 array or NumPy number)?"""
        if not (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and
                isinstance(test.operand, ast.Call) and len(test.operand.args) == 1 and
                self.sh._function(test.operand) is runtime.is_zero):
            return False
        g = self.sh.of(test.operand.args[0])
        return g == ARR or isinstance(g, tuple)

    def _stored(self, s):
        return A.names_stored(s) - self.fixed

    def _loop(self, s):
        """A loop rewritten with the shapes that hold at the top of every pass over its
        body: a name assigned in it keeps the shape it had before the loop where the
        body, rewritten on a copy, gives it that shape again (assumed for all, then
        dropped where the body disagrees; after a few tries, none is kept). The names
        the loop assigns keep those shapes after it (zero passes included)."""
        stored = self._stored(s)
        keep = {n for n in stored if self.sh.env.get(n) is not None}
        for attempt in range(3):
            if not keep:
                break
            entry = dict(self.sh.env)
            for n in stored - keep:
                self.sh.env[n] = None
            start = dict(self.sh.env)
            trial = self._rewrite_loop(A.copy_tree(s))
            bad = {n for n in keep if not (self.sh.env.get(n) is start[n] or same_shape(
                self.sh.env.get(n), start[n]))}
            if not bad:
                for n in stored - keep:
                    self.sh.env[n] = None
                for n in keep:
                    self.sh.env[n] = start[n]
                return trial
            keep -= bad
            self.sh.env = entry
        for n in stored:
            self.sh.env[n] = None
        s = self._rewrite_loop(s)
        for n in stored:
            self.sh.env[n] = None
        return s

    def _rewrite_loop(self, s):
        if isinstance(s, ast.While):
            s.test = self.expr(s.test)
        s.body = self.block(s.body, False)
        s.orelse = self.block(s.orelse, False)
        return s

    def _in_place(self, s):
        """`dv = add_at(dv, x, index, g)` and `g, dv = take_item(dv, index)` on an adjoint
        that is an array here, at a basic index: the element updates themselves,
        `dv[index] += g` and `g = dv[index]; dv[index] = 0.0` (a view copied), or None."""
        v, target = s.value, s.targets[0]
        if self.namespace.copying or not (isinstance(v, ast.Call) and v.args and not
                                          v.keywords and isinstance(v.args[0], ast.Name)):
            return None             # (code to be differentiated again: helpers that copy)
        fn = self.sh._function(v)
        dv = v.args[0].id
        shape = self.sh.env.get(dv)
        if not (shape == ARR or isinstance(shape, tuple)):
            return None
        if fn is runtime.add_at and len(v.args) == 4 and isinstance(target, ast.Name) and \
                target.id == dv and self.sh.of(v.args[3]) is not None:
            index = self.sh.basic_index(v.args[2])
            if index is None:
                return None
            store = ast.Subscript(value=A.load(dv), slice=index, ctx=ast.Store())
            return [A.located(ast.AugAssign(target=store, op=ast.Add(), value=v.args[3]), s)]
        taken = self._take_item_names(s)
        if taken is not None and taken[1] == dv:
            index = self.sh.basic_index(v.args[1])
            if index is None or not isinstance(shape, tuple):
                return None
            part = self.sh._part(shape, index)
            g = taken[0]
            read = ast.Subscript(value=A.load(dv), slice=A.copy_tree(index), ctx=ast.Load())
            if part != ():              # a view into dv: its values as they are now
                read = ast.Call(func=ast.Attribute(value=read, attr="copy", ctx=ast.Load()),
                                args=[], keywords=[])
            if g not in self.fixed:
                self.sh.env[g] = part
            zero = ast.Subscript(value=A.load(dv), slice=index, ctx=ast.Store())
            return [A.located(A.assign(g, read), s),
                    A.located(ast.Assign(targets=[zero], value=A.const(0.0)), s)]
        return None

    def _take_item_names(self, s):
        """(g, adj) of `g, adj = take_item(x, index)`, or None."""
        v, target = s.value, s.targets[0]
        if isinstance(v, ast.Call) and len(v.args) == 2 and not v.keywords and \
                isinstance(target, ast.Tuple) and len(target.elts) == 2 and \
                all(isinstance(t, ast.Name) for t in target.elts) and \
                self.sh._function(v) is runtime.take_item:
            return target.elts[0].id, target.elts[1].id
        return None

    def _taken_item(self, s):
        """`g, adj = take_item(adj, index)`: g is adj's part at a basic index, adj keeps
        its shape."""
        taken = self._take_item_names(s)
        if taken is None:
            return False
        v = s.value
        adj = self.sh.of(v.args[0])
        part = self.sh._part(adj, v.args[1]) if adj not in (None, PY) else None
        g, kept = taken
        for name, shape in ((g, part), (kept, adj)):
            if name not in self.fixed:
                self.sh.env[name] = shape
        return True

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
        real = self._real_form(fn, e)
        if real is not None:
            return real
        if fn is runtime.mul_masked and len(e.args) == 2 and not e.keywords and \
                isinstance(e.args[1], ast.Compare) and len(e.args[1].ops) == 1:
            p = self.sh.of(e.args[0])
            if p == ARR or isinstance(p, tuple):
                # an adjoint p where a comparison holds, exactly 0 elsewhere: np.where,
                # in one pass (mul_masked's product and test of every element)
                where = np_function(self.namespace, "where")
                return A.located(ast.Call(func=where, args=[e.args[1], e.args[0],
                                                            A.const(0.0)], keywords=[]), e)
        origin = self.sh.origins.get(e.func.id) if isinstance(e.func, ast.Name) else None
        if origin is not None and origin[0] == "vjp":
            rule, i = origin[1], origin[2]
            templates = rule.templates[i] if i < len(rule.templates) else ()
            for t in templates:
                new = self._inline(t, rule, e)
                if new is not None:
                    return new
        return e

    def _real_form(self, fn, e):
        """A helper that tells real from complex operands at run time, written for the real
        operand it provably has (a shape here means float64 or a real Python number):
        `abs_partial(x)` is `np.sign(x)` of an array and `sign(x)` of a number,
        `real_part(g)` is g."""
        if len(e.args) != 1 or e.keywords or not (fn is runtime.abs_partial or
                                                   fn is runtime.real_part):
            return None
        s = self.sh.of(e.args[0])
        if s is None:
            return None
        if fn is runtime.real_part:
            return e.args[0]
        if s == PY:
            func = A.load(self.namespace.helper("sign"))
        else:
            func = np_function(self.namespace, "sign")
        return A.located(ast.Call(func=func, args=e.args, keywords=[]), e)

    def _sum_back(self, e, g, like):
        """`unbroadcast(g, x)` written out as the sums it does, where both shapes are known:
        `np.sum(g, axis=0)` for a bias vector, `np.sum(g, axis=1, keepdims=True)` for an
        (n, 1) operand, `float(np.sum(g))` for a Python number (the same reductions, in the
        same order, as unbroadcast)."""
        if like == PY and isinstance(g, tuple) and len(g) >= 1 and self.real and \
                not self.namespace.copying:       # (code differentiated again: the call)
            total = ast.Call(func=np_function(self.namespace, "sum"), args=[e.args[0]],
                             keywords=[])
            return A.located(ast.Call(func=A.load(self.namespace.bind("float", float)),
                                      args=[total], keywords=[]), e)
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

        def total(x, axes, keepdims):
            axis = A.const(axes[0]) if len(axes) == 1 else ast.Tuple(
                elts=[A.const(k) for k in axes], ctx=ast.Load())
            kw = [ast.keyword(arg="axis", value=axis)]
            if keepdims:
                kw.append(ast.keyword(arg="keepdims", value=A.const(True)))
            return ast.Call(func=np_function(self.namespace, "sum"), args=[x], keywords=kw)
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
        if isinstance(expr, ast.Call) and self.sh._function(expr) is __import__("numpy").full:
            A.tag(expr, fill=True)
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
    sh.use_primal(primal)
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
    sp.real = not rt.an.complex     # (no complex value anywhere: adjoints are real too)
    sh.unify_ok = False         # primal facts were unified already; sweeps add nothing
    rt.zero_buffers = _zero_buffers(rev, rt, sh)
    for dv, p in rt.zero_buffers.items():
        sh.env[dv] = primal[p]
    fwd = sp.block(fwd)
    rev = sp.block(rev)
    if sp.failed:
        _redirect(rt, sp.failed, fwd + rev)
    if resolver is not None:
        read = {n.id for s in rev for n in A.nodes(s) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)} | set(rt.zero_buffers.values())
        resolver.needed = {v for v in resolver.needed if v in read}
    if compiled is not None:
        compiled.result_shape = mask_of(primal.get(result))
        compiled.exact_adjoints = {p for p in rt.an.active if p in rt.an.params and
                                   same_shape(sh.env.get(rt.d(p)), primal.get(p))}
    return fwd, rev


def _zero_buffers(rev, rt, sh):
    """Adjoints of array parameters that the adjoint sweep only adds into, part by part,
    in a loop or more than once (`dx = add_at(dx, x, index, g)` at basic indices, nothing
    else reading or writing dx): they start as zeros shaped like the parameter (dx -> x),
    so each add is an in-place `dx[index] += g` (the specialiser writes it so)."""
    if rt.env.copying:          # code to be differentiated again keeps the helpers
        return {}
    primal = rt.primal_shapes()
    out = {}
    for p in rt.an.params:
        dv = rt.d(p)
        if not isinstance(primal.get(p), tuple) or p not in rt.an.active:
            continue
        adds, in_loop, ok = 0, False, True
        for s, depth in _walk_with_depth(rev):
            if isinstance(s, (ast.If, ast.For, ast.While)):
                named = {n.id for n in ast.walk(s.test if not isinstance(s, ast.For)
                                                else s.iter) if isinstance(n, ast.Name)}
                named |= {n.id for n in ast.walk(s.target) if isinstance(n, ast.Name)} \
                    if isinstance(s, ast.For) else set()
                ok = ok and dv not in named
                continue
            names = [n for n in ast.walk(s) if isinstance(n, ast.Name) and n.id == dv]
            if not names:
                continue
            v = getattr(s, "value", None)
            if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                    s.targets[0], ast.Name) and s.targets[0].id == dv and isinstance(
                    v, ast.Call) and len(v.args) == 4 and not v.keywords and
                    sh._function(v) is runtime.add_at and isinstance(v.args[0], ast.Name)
                    and v.args[0].id == dv and isinstance(v.args[1], ast.Name) and
                    v.args[1].id == p and len(names) == 2 and
                    sh.basic_index(v.args[2]) is not None):
                ok = False
                break
            adds += 1
            in_loop = in_loop or depth > 0
        if ok and (in_loop or adds > 1):
            out[dv] = p
    return out


def implicit_fills(body, rt):
    """`d = np.full(x.shape, v)`, a sum's or mean's adjoint made by its template (v fits
    x's shape by construction), becomes `d = v` where d is assigned once and every read
    of d is one where the broadcast happens anyway, to the same numbers:

    * an operand of +, -, *, / or `mul_masked` whose other operand provably has x's shape;
    * `unbroadcast(p * d, q)` (or `mul_masked(p, d)`) where the primal computed
      `x = p * q`: x's shape is p's and q's broadcast, so summing p * v back to q's shape
      sums (or repeats) exactly what summing the full product does.

    Returns (body, whether anything changed)."""
    fills, after = {}, {}       # d -> its fill statement; -> the statements after it
    for block in A.bodies(body):
        for i, s in enumerate(block):
            v = getattr(s, "value", None)
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                    s.targets[0], ast.Name) and isinstance(v, ast.Call) and \
                    A.get_tag(v, "fill") and len(v.args) == 2 and isinstance(
                    v.args[0], ast.Attribute) and v.args[0].attr == "shape":
                d = s.targets[0].id
                fills[d] = None if d in fills else s        # (filled twice: left alone)
                after[d] = block[i + 1:]
    fills = {d: s for d, s in fills.items() if s is not None}
    if not fills:
        return body, False
    module = ast.Module(body=body, type_ignores=[])
    stores, loads, fitting, parent = {}, {}, {}, {}
    for n in ast.walk(module):
        for child in ast.iter_child_nodes(n):
            parent[id(child)] = n
        if isinstance(n, ast.Name):
            table = stores if isinstance(n.ctx, (ast.Store, ast.Del)) else loads
            table[n.id] = table.get(n.id, 0) + 1
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            stores[n.target.id] = stores.get(n.target.id, 0) + 2
    sh = Shapes({}, _resolver(rt), rt.env.origins)
    primal = rt.primal_shapes()
    sh.use_primal(primal)
    sh.unify_ok = False
    for s in body:              # names assigned once (temporaries of the optimiser)
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(
                s.targets[0], ast.Name) and s.targets[0].id not in primal and \
                stores.get(s.targets[0].id) == 1:
            sh.env[s.targets[0].id] = sh.of(s.value)
    products = _primal_products(rt.norm.body)

    def product_operands(n):
        """(the product node, its other operand) of a product p * n or mul_masked."""
        up = parent.get(id(n))
        if isinstance(up, ast.BinOp) and isinstance(up.op, ast.Mult):
            return up, up.right if up.left is n else up.left
        if isinstance(up, ast.Call) and len(up.args) == 2 and not up.keywords and \
                sh._function(up) is runtime.mul_masked:
            return up, up.args[1] if up.args[0] is n else up.args[0]
        return None, None

    def fits(n, d):
        x = fills[d].value.args[0].value
        want = sh.of(x)
        up = parent.get(id(n))
        if want in (None, PY, ARR):
            return False
        if isinstance(up, ast.BinOp) and isinstance(up.op, (ast.Add, ast.Sub, ast.Mult,
                                                            ast.Div)):
            other = up.right if up.left is n else up.left
            if same_shape(sh.of(other), want):
                return True
        prod, other = product_operands(n)
        if prod is None:
            return False
        if isinstance(prod, ast.Call) and same_shape(sh.of(other), want):
            return True
        outer = parent.get(id(prod))
        if not (isinstance(outer, ast.Call) and len(outer.args) == 2 and outer.args[0] is
                prod and not outer.keywords and sh._function(outer) is runtime.unbroadcast):
            return False
        like = outer.args[1]
        return isinstance(x, ast.Name) and isinstance(other, ast.Name) and isinstance(
            like, ast.Name) and products.get(x.id) in ({other.id, like.id},)

    for n in ast.walk(module):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in fills \
                and fits(n, n.id):
            fitting[n.id] = fitting.get(n.id, 0) + 1
    # every read of d is of the fill's value, in the same pass over its block (a slice's
    # length the same in the fill and in the read): after it, in the same block
    later = {d: sum(1 for s in after[d] for n in ast.walk(s) if isinstance(n, ast.Name)
                    and n.id == d and isinstance(n.ctx, ast.Load)) for d in fills}
    done = {d for d in fills if loads.get(d, 0) > 0 and fitting.get(d) == loads[d] ==
            later[d] and not any(d in A.names_stored(s) for s in after[d])}
    if not done:
        return body, False
    for d in done:
        s = fills[d]
        s.value = s.value.args[1]
    return body, True


def _primal_products(body):
    """name -> {p, q} for names the primal assigns once, as `p * q` of two other names."""
    sites = {}
    for s in A.statements(body):
        for t in getattr(s, "targets", ()):
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    sites[n.id] = sites.get(n.id, 0) + 1
                    if sites[n.id] == 1 and t is n and isinstance(s.value, ast.BinOp) and \
                            isinstance(s.value.op, ast.Mult) and all(
                                isinstance(v, ast.Name) and v.id != n.id
                                for v in (s.value.left, s.value.right)):
                        sites[(n.id,)] = {s.value.left.id, s.value.right.id}
    return {k[0]: v for k, v in sites.items() if isinstance(k, tuple) and sites[k[0]] == 1}


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
            obj = unit.lookup(func.id)
            return None if obj is _MISSING else obj
        if isinstance(func, ast.Attribute):
            base = resolve(func.value)
            if base is None:
                return None
            if not isinstance(base, (types.ModuleType, type)):
                return None
            return getattr(base, func.attr, None)
        return None
    return resolve
