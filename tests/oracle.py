"""Ground-truth gradients for plain Python functions, computed with sympy.

``sympy_grad(fn, args, wrt)`` runs ``fn`` on *symbolic duals*: objects that
carry both the concrete float the real program would compute and a sympy
expression for it.  Every control-flow decision (comparisons, ``bool``,
``int()``, ``round``, ``min``/``max`` ties, loop counts) is taken on the
concrete value, so the dual execution follows exactly the path the plain
program takes.  The resulting expression is differentiated with
``sympy.diff`` and evaluated at the point with 50 significant digits.

To keep expressions from blowing up in loops (``y = sin(y)*w + 0.5*y``
doubles the tree every iteration) a sub-expression whose tree size exceeds
``ABBREV_SIZE`` is replaced by a fresh symbol ``_z<k>`` and its definition is
recorded.  The total derivative is then assembled with the chain rule over
those definitions (forward accumulation, every partial derivative still
computed by ``sympy.diff``).  ``ABBREV_SIZE = None`` disables this; the
self-tests check that both paths agree.

``fd_grad(fn, args, wrt, h)`` is an independent central finite difference.
"""

import builtins
import inspect
import math as _math
import types

import sympy as sp

PREC = 50                # decimal digits used for constants and evaluation
ABBREV_SIZE = 20         # tree size above which a sub-expression is named


# --------------------------------------------------------------------------
# recording context
# --------------------------------------------------------------------------

class _Tape:
    def __init__(self, abbrev):
        self.abbrev = abbrev
        self.defs = []          # [(symbol, expression)] in creation order


_TAPE = None


def _num(c):
    """Python number -> exact sympy number."""
    if isinstance(c, bool):
        return sp.Integer(int(c))
    if isinstance(c, int):
        return sp.Integer(c)
    if isinstance(c, float):
        if c.is_integer() and abs(c) < 2 ** 53:
            return sp.Float(c, PREC)
        return sp.Float(c, PREC)   # exact binary value, 50 digits
    raise TypeError("cannot convert %r to sympy" % (c,))


def _is_num(c):
    return isinstance(c, (int, float)) and not isinstance(c, complex)


# --------------------------------------------------------------------------
# the symbolic dual
# --------------------------------------------------------------------------

class SD:
    """Concrete float value ``v`` + sympy expression ``e`` (+ tree size)."""

    __slots__ = ("v", "e", "size")
    __hash__ = None

    def __init__(self, v, e, size=1):
        self.v = v
        self.e = e
        self.size = size

    @staticmethod
    def make(v, e, size):
        tape = _TAPE
        if tape is not None and tape.abbrev is not None and size > tape.abbrev:
            z = sp.Symbol("_z%d" % len(tape.defs), real=True)
            tape.defs.append((z, e))
            return SD(v, z, 1)
        return SD(v, e, size)

    def __repr__(self):
        return "SD(%r, %s)" % (self.v, self.e)

    # ---- helpers
    @staticmethod
    def _parts(o):
        if isinstance(o, SD):
            return o.v, o.e, o.size
        if _is_num(o):
            return o, _num(o), 1
        return None

    def _bin(self, other, fv, fe, reflected=False):
        p = SD._parts(other)
        if p is None:
            return NotImplemented
        ov, oe, os_ = p
        if reflected:
            return SD.make(fv(ov, self.v), fe(oe, self.e), 1 + os_ + self.size)
        return SD.make(fv(self.v, ov), fe(self.e, oe), 1 + self.size + os_)

    # ---- arithmetic
    def __add__(self, o):
        return self._bin(o, lambda a, b: a + b, lambda a, b: a + b)

    def __radd__(self, o):
        return self._bin(o, lambda a, b: a + b, lambda a, b: a + b, True)

    def __sub__(self, o):
        return self._bin(o, lambda a, b: a - b, lambda a, b: a - b)

    def __rsub__(self, o):
        return self._bin(o, lambda a, b: a - b, lambda a, b: a - b, True)

    def __mul__(self, o):
        return self._bin(o, lambda a, b: a * b, lambda a, b: a * b)

    def __rmul__(self, o):
        return self._bin(o, lambda a, b: a * b, lambda a, b: a * b, True)

    def __truediv__(self, o):
        return self._bin(o, lambda a, b: a / b, lambda a, b: a / b)

    def __rtruediv__(self, o):
        return self._bin(o, lambda a, b: a / b, lambda a, b: a / b, True)

    @staticmethod
    def _pow(a, b):
        """a ** b where at least one is an SD."""
        av, ae, asz = SD._parts(a)
        bv, be, bsz = SD._parts(b)
        if not isinstance(b, SD) and isinstance(bv, float) and bv.is_integer():
            be = sp.Integer(int(bv))      # real result for negative bases
        return SD.make(av ** bv, ae ** be, 1 + asz + bsz)

    def __pow__(self, o, mod=None):
        if mod is not None or SD._parts(o) is None:
            return NotImplemented
        return SD._pow(self, o)

    def __rpow__(self, o):
        if SD._parts(o) is None:
            return NotImplemented
        return SD._pow(o, self)

    # floor division: piecewise constant -> zero derivative
    def __floordiv__(self, o):
        p = SD._parts(o)
        if p is None:
            return NotImplemented
        r = self.v // p[0]
        return SD(r, _num(r), 1)

    def __rfloordiv__(self, o):
        p = SD._parts(o)
        if p is None:
            return NotImplemented
        r = p[0] // self.v
        return SD(r, _num(r), 1)

    # a % b == a - b * floor(a / b), the floor being a local constant
    def __mod__(self, o):
        p = SD._parts(o)
        if p is None:
            return NotImplemented
        q = self.v // p[0]
        return SD.make(self.v % p[0], self.e - p[1] * _num(q), 2 + self.size + p[2])

    def __rmod__(self, o):
        p = SD._parts(o)
        if p is None:
            return NotImplemented
        q = p[0] // self.v
        return SD.make(p[0] % self.v, p[1] - self.e * _num(q), 2 + self.size + p[2])

    def __neg__(self):
        return SD.make(-self.v, -self.e, 1 + self.size)

    def __pos__(self):
        return self

    def __abs__(self):
        if self.v < 0:
            return SD.make(-self.v, -self.e, 1 + self.size)
        return SD(abs(self.v), self.e, self.size)

    # ---- decisions on the concrete value
    def _cmp(self, o, op):
        p = SD._parts(o)
        if p is None:
            return NotImplemented
        return op(self.v, p[0])

    def __lt__(self, o):
        return self._cmp(o, lambda a, b: a < b)

    def __le__(self, o):
        return self._cmp(o, lambda a, b: a <= b)

    def __gt__(self, o):
        return self._cmp(o, lambda a, b: a > b)

    def __ge__(self, o):
        return self._cmp(o, lambda a, b: a >= b)

    def __eq__(self, o):
        return self._cmp(o, lambda a, b: a == b)

    def __ne__(self, o):
        return self._cmp(o, lambda a, b: a != b)

    def __bool__(self):
        return bool(self.v)

    # float(SD) would silently drop the derivative if the program were
    # not running under the shim; fail loudly instead.
    def __float__(self):
        raise TypeError("float() of a symbolic dual outside the oracle shim")

    def __int__(self):
        return int(self.v)

    def __round__(self, ndigits=None):
        return round(self.v, ndigits)

    def __trunc__(self):
        return _math.trunc(self.v)

    def __floor__(self):
        return _math.floor(self.v)

    def __ceil__(self):
        return _math.ceil(self.v)


def _v(a):
    return a.v if isinstance(a, SD) else a


def _e(a):
    return a.e if isinstance(a, SD) else _num(a)


def _sz(a):
    return a.size if isinstance(a, SD) else 1


def _any_sd(args):
    return any(isinstance(a, SD) for a in args)


# --------------------------------------------------------------------------
# math shim
# --------------------------------------------------------------------------

def _unary(name, symfn):
    real = getattr(_math, name)

    def f(x):
        if not isinstance(x, SD):
            return real(x)
        return SD.make(real(x.v), symfn(x.e), 1 + x.size)

    f.__name__ = name
    return f


def _nary(name, symfn):
    real = getattr(_math, name)

    def f(*args):
        if not _any_sd(args):
            return real(*args)
        v = real(*[_v(a) for a in args])
        return SD.make(v, symfn(*[_e(a) for a in args]), 1 + sum(_sz(a) for a in args))

    f.__name__ = name
    return f


def _const_result(name):
    """floor/ceil/trunc: integer result, zero derivative."""
    real = getattr(_math, name)

    def f(x):
        return real(_v(x))

    f.__name__ = name
    return f


def _lgamma_sym(e, sign):
    # lgamma(x) = log|gamma(x)|; the sign of gamma is a local constant
    return sp.log(sp.Integer(sign) * sp.gamma(e))


class _MathShim(types.ModuleType):
    def __getattr__(self, name):
        real = getattr(_math, name)
        if not callable(real):
            return real

        def unknown(*args, **kw):
            if _any_sd(list(args) + list(kw.values())):
                raise NotImplementedError("oracle has no rule for math.%s" % name)
            return real(*args, **kw)

        return unknown


math_shim = _MathShim("math")
for _name, _sym in [
    ("sin", sp.sin), ("cos", sp.cos), ("tan", sp.tan),
    ("asin", sp.asin), ("acos", sp.acos), ("atan", sp.atan),
    ("sinh", sp.sinh), ("cosh", sp.cosh), ("tanh", sp.tanh),
    ("asinh", sp.asinh), ("acosh", sp.acosh), ("atanh", sp.atanh),
    ("exp", sp.exp), ("expm1", lambda e: sp.exp(e) - 1),
    ("log2", lambda e: sp.log(e) / sp.log(2)),
    ("log10", lambda e: sp.log(e) / sp.log(10)),
    ("log1p", lambda e: sp.log(1 + e)),
    ("sqrt", sp.sqrt), ("erf", sp.erf), ("erfc", sp.erfc),
    ("gamma", sp.gamma),
    ("degrees", lambda e: e * 180 / sp.pi),
    ("radians", lambda e: e * sp.pi / 180),
]:
    setattr(math_shim, _name, _unary(_name, _sym))

math_shim.atan2 = _nary("atan2", sp.atan2)
math_shim.hypot = _nary("hypot", lambda *es: sp.sqrt(sum(e * e for e in es)))
math_shim.pow = _nary("pow", lambda a, b: a ** b)
for _name in ("floor", "ceil", "trunc"):
    setattr(math_shim, _name, _const_result(_name))
for _name in ("pi", "e", "tau", "inf", "nan"):
    setattr(math_shim, _name, getattr(_math, _name))


def _shim_log(x, base=None):
    if base is None:
        if not isinstance(x, SD):
            return _math.log(x)
        return SD.make(_math.log(x.v), sp.log(x.e), 1 + x.size)
    if not _any_sd((x, base)):
        return _math.log(x, base)
    return SD.make(_math.log(_v(x), _v(base)), sp.log(_e(x)) / sp.log(_e(base)),
                   2 + _sz(x) + _sz(base))


def _shim_fabs(x):
    if not isinstance(x, SD):
        return _math.fabs(x)
    return abs(SD(float(x.v), x.e, x.size))


def _shim_lgamma(x):
    if not isinstance(x, SD):
        return _math.lgamma(x)
    sign = 1 if _math.gamma(x.v) > 0 else -1
    return SD.make(_math.lgamma(x.v), _lgamma_sym(x.e, sign), 1 + x.size)


def _shim_copysign(x, y):
    if not _any_sd((x, y)):
        return _math.copysign(x, y)
    xv, yv = _v(x), _v(y)
    # copysign(x, y) = x * sign(x) * sign(y): only x carries a derivative
    factor = (1 if xv >= 0 else -1) * (1 if _math.copysign(1.0, yv) > 0 else -1)
    return SD.make(_math.copysign(xv, yv), _e(x) * factor, 2 + _sz(x))


math_shim.log = _shim_log
math_shim.fabs = _shim_fabs
math_shim.lgamma = _shim_lgamma
math_shim.copysign = _shim_copysign


# --------------------------------------------------------------------------
# builtins shim
# --------------------------------------------------------------------------

def _pick(args, better, kw):
    key = kw.pop("key", None)
    has_default = "default" in kw
    default = kw.pop("default", None)
    if kw:
        raise TypeError("unexpected keyword arguments %r" % (kw,))
    items = list(args[0]) if len(args) == 1 else list(args)
    if not items:
        if has_default:
            return default
        raise ValueError("arg is an empty sequence")
    key = key or (lambda t: t)
    best, bestk = items[0], key(items[0])
    for it in items[1:]:
        k = key(it)
        if better(k, bestk):         # strict: the first extremal item wins
            best, bestk = it, k
    return best


def _shim_min(*args, **kw):
    return _pick(args, lambda a, b: bool(a < b), kw)


def _shim_max(*args, **kw):
    return _pick(args, lambda a, b: bool(a > b), kw)


def _shim_sum(iterable, start=0):
    total = start
    for t in iterable:
        total = total + t
    return total


def _shim_abs(x):
    return abs(x)


def _shim_float(x=0.0):
    if isinstance(x, SD):
        return x
    return builtins.float(x)


def _shim_int(x=0, *base):
    if isinstance(x, SD):
        return builtins.int(x.v)
    return builtins.int(x, *base)


def _shim_round(x, ndigits=None):
    if isinstance(x, SD):
        return builtins.round(x.v, ndigits)
    return builtins.round(x, ndigits)


def _shim_pow(a, b, mod=None):
    if mod is not None:
        return builtins.pow(_v(a), _v(b), _v(mod))
    return a ** b


_BUILTIN_SHIMS = {
    "abs": _shim_abs, "min": _shim_min, "max": _shim_max, "sum": _shim_sum,
    "float": _shim_float, "int": _shim_int, "round": _shim_round,
    "pow": _shim_pow,
}


# --------------------------------------------------------------------------
# re-wrapping user functions so that they see the shims
# --------------------------------------------------------------------------

class _Rewrapper:
    def __init__(self):
        self.globals_memo = {}      # id(original globals) -> new globals
        self.fn_memo = {}           # id(original function) -> rewrapped
        self.keep = []              # keep originals alive (ids stay unique)

    def new_globals(self, g):
        ng = self.globals_memo.get(id(g))
        if ng is not None:
            return ng
        ng = dict(g)
        self.globals_memo[id(g)] = ng
        self.keep.append(g)
        ng.update(_BUILTIN_SHIMS)
        for name, val in list(g.items()):
            if val is _math:
                ng[name] = math_shim
            elif isinstance(val, types.FunctionType) and val.__globals__ is g:
                ng[name] = self.fn(val)
            elif not isinstance(val, (type, types.ModuleType)):
                try:
                    inner = _unwrap(val)
                except Exception:
                    inner = None
                if inner is not None and inner.__globals__ is g:
                    # a decorated helper: call its plain original
                    ng[name] = self.fn(inner)
        return ng

    def fn(self, f):
        got = self.fn_memo.get(id(f))
        if got is not None:
            return got
        cells, pending = None, []
        if f.__closure__ is not None:
            cells = []
            for c in f.__closure__:
                try:
                    val = c.cell_contents
                except ValueError:          # not yet bound
                    cells.append(c)
                    continue
                inner = None
                if val is not _math and not isinstance(val, (type, types.ModuleType)):
                    try:
                        inner = _unwrap(val)
                    except Exception:
                        inner = None
                if val is _math or inner is not None:
                    nc = types.CellType()
                    cells.append(nc)
                    pending.append((nc, val, inner))
                else:
                    cells.append(c)         # shared, unchanged
            cells = tuple(cells)
        g = self.new_globals(f.__globals__)
        got = self.fn_memo.get(id(f))      # created while filling the globals
        if got is not None and cells is None:
            return got
        new = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, cells)
        new.__kwdefaults__ = f.__kwdefaults__
        self.fn_memo[id(f)] = new
        self.keep.append(f)
        for nc, val, inner in pending:      # filled after registration: cycles ok
            nc.cell_contents = math_shim if val is _math else self.fn(inner)
        return new


def _unwrap(obj):
    """The plain Python function behind a (possibly decorated) callable."""
    if isinstance(obj, types.FunctionType):
        return obj
    seen = 0
    while seen < 10:
        inner = getattr(obj, "__wrapped__", None)
        if inner is None:
            return None
        if isinstance(inner, types.FunctionType):
            return inner
        obj = inner
        seen += 1
    return None


def shimmed(fn):
    """A copy of ``fn`` (and of the user helpers it calls) running on the shims."""
    f = _unwrap(fn)
    if f is None:
        raise TypeError("not a Python function: %r" % (fn,))
    return _Rewrapper().fn(f)


# --------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------

def _wrt_indices(fn, wrt):
    f = _unwrap(fn)
    names = list(inspect.signature(f).parameters)
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    idx = []
    for w in items:
        if isinstance(w, str):
            idx.append(names.index(w))
        else:
            idx.append(int(w))
    return idx, single


def _evaluate(expr, defs, point):
    """Numerically evaluate d(expr)/d(symbol) for every input symbol.

    ``point`` maps input symbols to high-precision values; ``defs`` are the
    abbreviations.  Chain rule:  dz/dx = ∂e/∂x + Σ_j ∂e/∂z_j · dz_j/dx.
    """
    inputs = list(point)
    vals = dict(point)
    zset = set()
    dz = {}                                   # z -> {x: value}

    def ev(e):
        r = sp.sympify(e).xreplace(vals).evalf(PREC)
        re_, im_ = r.as_real_imag()
        if im_ != 0 and abs(sp.N(im_)) > 1e-30 * (1 + abs(sp.N(re_))):
            raise ValueError("complex derivative value %s" % r)
        return sp.Float(re_, PREC)

    def total(e):
        free = e.free_symbols
        out = {}
        for x in inputs:
            acc = ev(sp.diff(e, x)) if x in free else sp.Float(0, PREC)
            for z in free:
                if z in zset:
                    dzx = dz[z][x]
                    if dzx != 0:
                        acc += ev(sp.diff(e, z)) * dzx
            out[x] = acc
        return out

    for z, e in defs:
        if not (e.free_symbols & (set(inputs) | zset)):
            vals[z] = ev(e)
            dz[z] = {x: sp.Float(0, PREC) for x in inputs}
            zset.add(z)
            continue
        dz[z] = total(e)
        vals[z] = ev(e)
        zset.add(z)
    return total(sp.sympify(expr))


def _run(fn, args, wrt, kwargs, abbrev):
    global _TAPE
    idx, single = _wrt_indices(fn, wrt)
    args = list(args)
    syms = []            # per wrt entry: Symbol or list of Symbols (or None)
    point = {}
    for k, i in enumerate(idx):
        a = args[i]
        if isinstance(a, (list, tuple)):
            ss = []
            new = []
            for j, t in enumerate(a):
                s = sp.Symbol("x%d_%d" % (i, j), real=True)
                ss.append(s)
                point[s] = sp.Float(float(t), PREC)
                new.append(SD(float(t), s, 1))
            syms.append(ss)
            args[i] = type(a)(new)
        elif isinstance(a, float):
            s = sp.Symbol("x%d" % i, real=True)
            syms.append(s)
            point[s] = sp.Float(a, PREC)
            args[i] = SD(a, s, 1)
        else:
            syms.append(None)          # int / bool: no derivative
    g = shimmed(fn)
    _TAPE = _Tape(abbrev)
    try:
        out = g(*args, **(kwargs or {}))
        defs = _TAPE.defs
    finally:
        _TAPE = None
    return out, syms, point, defs, single


def _grads_of(expr, syms, point, defs):
    d = _evaluate(expr, defs, point) if isinstance(expr, sp.Basic) else {}
    res = []
    for s in syms:
        if s is None:
            res.append(0.0)
        elif isinstance(s, list):
            res.append([float(d.get(t, 0)) for t in s])
        else:
            res.append(float(d.get(s, 0)))
    return res


def sympy_value_and_grad(fn, args, wrt=0, cotangent=None, kwargs=None,
                         abbrev=ABBREV_SIZE):
    """(value, gradient) of ``fn`` at ``args`` with respect to ``wrt``.

    ``wrt``: parameter index or name, or a tuple of them (-> tuple of grads).
    A list-of-floats parameter gets a list gradient.  If ``fn`` returns a
    tuple/list, ``cotangent`` (same length) gives the vector-Jacobian
    product; without a cotangent a list with one gradient per output is
    returned.
    """
    out, syms, point, defs, single = _run(fn, args, wrt, kwargs, abbrev)

    def plain(o):
        if isinstance(o, SD):
            return o.v
        if isinstance(o, (list, tuple)):
            return type(o)(plain(t) for t in o)
        return o

    def grad_of(e):
        r = _grads_of(e, syms, point, defs)
        return r[0] if single else tuple(r)

    if isinstance(out, (list, tuple)):
        if cotangent is None:
            return plain(out), [grad_of(_e(o) if isinstance(o, SD) else 0) for o in out]
        if len(cotangent) != len(out):
            raise ValueError("cotangent length mismatch")
        expr = sp.Integer(0)
        for o, c in zip(out, cotangent):
            if isinstance(o, SD) and c != 0:
                expr = expr + _num(c) * o.e
        return plain(out), grad_of(expr)
    return plain(out), grad_of(out.e if isinstance(out, SD) else 0)


def sympy_grad(fn, args, wrt=0, cotangent=None, kwargs=None, abbrev=ABBREV_SIZE):
    """Exact gradient (see ``sympy_value_and_grad``)."""
    return sympy_value_and_grad(fn, args, wrt, cotangent, kwargs, abbrev)[1]


# --------------------------------------------------------------------------
# finite differences (independent second check)
# --------------------------------------------------------------------------

def _evaluate_second(expr, defs, point):
    """(gradient, Hessian) of expr with respect to the input symbols, exactly: the
    second-order chain rule over the abbreviations, every partial by ``sympy.diff``.

    For e(u) with u the symbols it reads (inputs and earlier abbreviations):
    d2e/dxa dxb = sum_uv e_uv Du_a Dv_b + sum_u e_u D2u_ab."""
    inputs = list(point)
    vals = dict(point)
    first = {x: {a: sp.Float(1 if a == x else 0, PREC) for a in inputs} for x in inputs}
    second = {x: {(a, b): sp.Float(0, PREC) for a in inputs for b in inputs}
              for x in inputs}

    def ev(e):
        return sp.Float(sp.re(sp.sympify(e).xreplace(vals).evalf(PREC)), PREC)

    def totals(e):
        free = [u for u in e.free_symbols if u in first]
        d1 = {u: ev(sp.diff(e, u)) for u in free}
        g = {a: sum((d1[u] * first[u][a] for u in free), sp.Float(0, PREC)) for a in inputs}
        h = {}
        d2 = {(u, v): ev(sp.diff(e, u, v)) for u in free for v in free}
        for a in inputs:
            for b in inputs:
                acc = sp.Float(0, PREC)
                for u in free:
                    acc += d1[u] * second[u][(a, b)]
                    for v in free:
                        if d2[(u, v)] != 0:
                            acc += d2[(u, v)] * first[u][a] * first[v][b]
                h[(a, b)] = acc
        return g, h

    for z, e in defs:
        first[z], second[z] = totals(sp.sympify(e))
        vals[z] = ev(e)
    return totals(sp.sympify(expr))


def sympy_hessian(fn, args, wrt=0, kwargs=None, abbrev=ABBREV_SIZE):
    """Exact Hessian of scalar ``fn`` at ``args`` with respect to ``wrt`` (a parameter
    or a tuple of them; list parameters count one input per element), as a list of rows
    over the flattened inputs."""
    out, syms, point, defs, single = _run(fn, args, wrt, kwargs, abbrev)
    flat = []
    for s in syms:
        if isinstance(s, list):
            flat += s
        elif s is not None:
            flat.append(s)
    if not isinstance(out, SD):
        return [[0.0] * len(flat) for _ in flat]
    _, h = _evaluate_second(out.e, defs, point)
    return [[float(h.get((a, b), 0)) for b in flat] for a in flat]


def fd_grad(fn, args, wrt=0, h=1e-6, cotangent=None, kwargs=None):
    """Central finite differences of ``fn`` (scalar or cotangent-weighted)."""
    f = _unwrap(fn) or fn
    idx, single = _wrt_indices(fn, wrt)
    kwargs = kwargs or {}

    def scalar(a):
        out = f(*a, **kwargs)
        if isinstance(out, (list, tuple)):
            if cotangent is None:
                raise ValueError("vector output needs a cotangent")
            return sum(c * o for c, o in zip(cotangent, out))
        return out

    def d(i, j=None):
        lo, hi = list(args), list(args)
        if j is None:
            step = h * max(1.0, abs(args[i]))
            lo[i] = args[i] - step
            hi[i] = args[i] + step
        else:
            step = h * max(1.0, abs(args[i][j]))
            lo[i] = list(args[i])
            hi[i] = list(args[i])
            lo[i][j] -= step
            hi[i][j] += step
            lo[i] = type(args[i])(lo[i])
            hi[i] = type(args[i])(hi[i])
        return (scalar(hi) - scalar(lo)) / (2 * step)

    res = []
    for i in idx:
        a = args[i]
        if isinstance(a, (list, tuple)):
            res.append([d(i, j) for j in range(len(a))])
        elif isinstance(a, float):
            res.append(d(i))
        else:
            res.append(0.0)
    return res[0] if single else tuple(res)


# --------------------------------------------------------------------------
# comparison helper
# --------------------------------------------------------------------------

def assert_close(got, expected, rtol=1e-9, atol=1e-12, path="grad"):
    """Recursive comparison of floats / tuples / lists (structure must match)."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)), "%s: expected a %s, got %r" % (
            path, type(expected).__name__, got)
        assert len(got) == len(expected), "%s: length %d != %d (%r vs %r)" % (
            path, len(got), len(expected), got, expected)
        if isinstance(expected, list):
            assert isinstance(got, list), "%s: expected a list, got %r" % (path, got)
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, rtol, atol, "%s[%d]" % (path, k))
        return
    try:
        g = builtins.float(got)
    except Exception:
        raise AssertionError("%s: expected a number %r, got %r" % (path, expected, got))
    e = builtins.float(expected)
    ok = abs(g - e) <= atol + rtol * abs(e) or (_math.isnan(g) and _math.isnan(e))
    assert ok, "%s: got %.17g, expected %.17g (abs err %.3g)" % (path, g, e, abs(g - e))
