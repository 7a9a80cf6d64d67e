"""numba stand-ins for the array cases of what generated derivative code calls (jit.py).

The plain-Python runtime helpers and NumPy vjp rules take any argument; numba compiles a
function per argument types, so each stand-in here is a `numba.extending.overload` that
looks at the types (number or array, number of dimensions, literal ``keepdims``) and
returns the implementation for them, or nothing: numba then reports that it has no
implementation for those types, which jit.py turns into one TranspileError at the user's
line. Covered, for real (float, int, bool) arrays of any number of dimensions:

- runtime helpers: ``add_at`` (ints, slices and tuples of them, 1-D integer arrays),
  ``unbroadcast`` (sums over broadcast axes, and broadcasts a lower-rank adjoint),
  ``mul_masked``, ``result_seed``;
- NumPy vjp rules: ``sum``, ``mean``, ``max``/``min``/``amax``/``amin`` (axis None or an
  int, literal keepdims), ``dot``/``matmul``/``@`` of numbers and 1-D or 2-D arrays;
- the reductions themselves where numba lacks their keywords: ``np.sum``, ``np.mean``,
  ``np.max``... called with an axis or keepdims are rewritten to `reduction` stand-ins by
  jit.py's numba pass (`REDUCTIONS`).

Each computes what its Python counterpart computes for those types (the same numbers;
arrays where the Python code returns arrays, numbers where it returns numbers).
"""
import numpy as np

_STANDINS = {}        # name bound in jitted modules -> stand-in
_REPLACES = {}        # runtime helper or vjp rule -> name of its stand-in

#: NumPy reductions the numba pass rewrites when called with axis/keepdims: stand-in name
REDUCTIONS = {np.sum: "_jit_sum", np.mean: "_jit_mean", np.max: "_jit_max",
              np.min: "_jit_min", np.amax: "_jit_max", np.amin: "_jit_min"}
#: NumPy ufuncs of one argument that run as NumPy's own on arrays (`_numpy_ufunc`): its
#: vectorised loops are several times faster than numba's element by element calls of
#: the C library, and give the very numbers the user's NumPy primal computes
UFUNCS = ("exp", "log", "tanh", "sin", "cos", "tan", "log1p", "expm1", "log2", "log10",
          "exp2", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh",
          "arctanh", "cbrt")
#: NumPy functions the numba pass always rewrites (numba's lack cases the stand-in has)
REWRITES = {np.full: "_jit_full", np.dot: "_jit_dot"}


def standins():
    """(name -> stand-in, replaced function -> name), built on first use."""
    if not _STANDINS:
        _build()
    return _STANDINS, _REPLACES


def _build():
    import numba
    from numba.core import types as nt
    from numba.extending import overload, register_jitable
    from numba.np.unsafe.ndarray import to_fixed_tuple

    from . import runtime, seed
    from .rules import numpy_, registry

    scalar = (nt.Number, nt.Boolean)

    def real_array(t):
        return isinstance(t, nt.Array) and not isinstance(t.dtype, nt.Complex)

    def omitted(t):
        return t is None or isinstance(t, (nt.Omitted, nt.NoneType))

    def literal_bool(t, default=False):
        """The value of a literal keepdims (None: not literal, not known)."""
        if omitted(t):
            return default
        if isinstance(t, (bool, int)):              # an omitted argument's default
            return bool(t)
        if isinstance(t, nt.BooleanLiteral):
            return t.literal_value
        if isinstance(t, nt.IntegerLiteral):
            return bool(t.literal_value)
        return None

    def float_dtype(t):
        """NumPy dtype of an adjoint of an array of dtype t (runtime.zeros_like)."""
        return np.float32 if t == nt.float32 else np.float64

    # --- shapes -------------------------------------------------------------------------

    @register_jitable
    def norm_axis(axis, nd):
        ax = axis + nd if axis < 0 else axis
        if ax < 0 or ax >= nd:
            raise ValueError("axis is out of bounds for the array's dimensions")
        return ax

    @register_jitable
    def split3(shape, ax):
        """(before, along, after): the shape as three dimensions around axis ax."""
        pre = 1
        post = 1
        for i in range(len(shape)):
            if i < ax:
                pre *= shape[i]
            elif i > ax:
                post *= shape[i]
        return pre, shape[ax], post

    def reduced_shape(nd, keep):
        """shape, ax -> the shape of a reduction along ax (nd dimensions)."""
        nd_out = nd if keep else nd - 1

        @register_jitable
        def shape_of(shape, ax):
            s = np.empty(nd_out, np.intp)
            k = 0
            for i in range(nd):
                if i == ax:
                    if keep:
                        s[k] = 1
                        k += 1
                else:
                    s[k] = shape[i]
                    k += 1
            return to_fixed_tuple(s, nd_out)
        return shape_of

    def ones_shape(nd):
        @register_jitable
        def shape_of():
            return to_fixed_tuple(np.ones(nd, np.intp), nd)
        return shape_of

    @register_jitable
    def first(x):
        return np.ascontiguousarray(x).reshape(-1)[0]

    # --- reductions (primal) ------------------------------------------------------------

    @register_jitable
    def sum_rows(a3, out):
        pre, n, post = a3.shape
        for i in range(pre):
            for j in range(n):
                for k in range(post):
                    out[i, k] += a3[i, j, k]

    @register_jitable
    def max_rows(a3, out):
        pre, n, post = a3.shape
        if n == 0:
            raise ValueError("zero-size array to reduction operation maximum which has "
                             "no identity")
        for i in range(pre):
            for k in range(post):
                out[i, k] = a3[i, 0, k]
            for j in range(1, n):
                for k in range(post):
                    v = a3[i, j, k]
                    m = out[i, k]
                    if (v > m or v != v) and m == m:       # nan propagates
                        out[i, k] = v

    @register_jitable
    def min_rows(a3, out):
        pre, n, post = a3.shape
        if n == 0:
            raise ValueError("zero-size array to reduction operation minimum which has "
                             "no identity")
        for i in range(pre):
            for k in range(post):
                out[i, k] = a3[i, 0, k]
            for j in range(1, n):
                for k in range(post):
                    v = a3[i, j, k]
                    m = out[i, k]
                    if (v < m or v != v) and m == m:
                        out[i, k] = v

    @register_jitable
    def mean_rows(a3, out):
        sum_rows(a3, out)
        out /= a3.shape[1]

    @numba.njit("float64(float64[::1], intp, intp)", cache=False)
    def pairwise_sum(a, lo, n):
        """NumPy's summation of n contiguous float64 (DOUBLE_pairwise_sum): the same
        additions in the same order, so the same number."""
        if n < 8:
            res = 0.0
            for i in range(lo, lo + n):
                res += a[i]
            return res
        if n <= 128:
            r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
            r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
            m = n - n % 8
            for i in range(lo + 8, lo + m, 8):
                r0 += a[i]
                r1 += a[i + 1]
                r2 += a[i + 2]
                r3 += a[i + 3]
                r4 += a[i + 4]
                r5 += a[i + 5]
                r6 += a[i + 6]
                r7 += a[i + 7]
            res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            for i in range(lo + m, lo + n):
                res += a[i]
            return res
        n2 = n // 2
        n2 -= n2 % 8
        return pairwise_sum(a, lo, n2) + pairwise_sum(a, lo + n2, n - n2)

    ROWS = {"sum": sum_rows, "mean": mean_rows, "max": max_rows, "min": min_rows}
    WHOLE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}

    def reduction(kind):
        rows = ROWS[kind]
        whole = WHOLE[kind]

        def stub(a, axis=None, keepdims=False):
            raise NotImplementedError

        def typer(a, axis=None, keepdims=False):
            keep = literal_bool(keepdims)
            if not real_array(a) and omitted(axis) and keep is False:
                return lambda a, axis=None, keepdims=False: whole(a)    # numba's own
            if not real_array(a) or keep is None:
                return None
            nd = a.ndim
            if isinstance(a.dtype, (nt.Integer, nt.Boolean)):
                dt = np.float64 if kind == "mean" else (
                    np.int64 if kind == "sum" else np.dtype(str(a.dtype)).type)
            else:
                dt = np.dtype(str(a.dtype)).type
            pairwise = kind in ("sum", "mean") and isinstance(a.dtype, nt.Float)
            if pairwise:                           # NumPy's pairwise summation itself
                res_t = a.dtype
                native = a.dtype == nt.float64 and a.layout == "C"
                mean = kind == "mean"

                @register_jitable
                def whole_(a):
                    if a.size < 8:
                        return whole(a)
                    if native:
                        total = 0.0 + pairwise_sum(a.reshape(-1), 0, a.size)
                        return total / a.size if mean else total
                    with numba.objmode(v=res_t):
                        v = whole(a)
                    return v
            else:
                @register_jitable
                def whole_(a):
                    return whole(a)
            if omitted(axis):
                if not keep:
                    return lambda a, axis=None, keepdims=False: whole_(a)
                ones = ones_shape(nd)
                return lambda a, axis=None, keepdims=False: np.full(ones(), whole_(a), dt)
            if not isinstance(axis, nt.Integer):
                return None
            shape_of = reduced_shape(nd, keep)
            if nd == 1 and not keep:
                def to_number(a, axis=None, keepdims=False):
                    norm_axis(axis, nd)
                    return whole_(a)
                return to_number
            out_type = nt.Array(numba.from_dtype(np.dtype(dt)), nd if keep else nd - 1, "C")
            whole_kind = WHOLE[kind]

            def along(a, axis=None, keepdims=False):
                ax = norm_axis(axis, nd)
                pre, n, post = split3(a.shape, ax)
                if pairwise and post == 1 and n >= 8:
                    # along the last axis NumPy sums pairwise: its own reduction
                    with numba.objmode(r=out_type):
                        r = np.ascontiguousarray(whole_kind(a, axis=ax, keepdims=keep))
                    return r
                a3 = np.ascontiguousarray(a).reshape((pre, n, post))
                out = np.zeros((pre, post), dt)
                rows(a3, out)
                return out.reshape(shape_of(a.shape, ax))
            return along

        stub.__name__ = f"jit_{kind}"
        overload(stub, prefer_literal=True)(typer)
        return stub

    for kind in ("sum", "mean", "max", "min"):
        _STANDINS[f"_jit_{kind}"] = reduction(kind)

    def jit_full(shape, fill_value):
        return np.full(shape, fill_value)

    @overload(jit_full)
    def _full(shape, fill_value):
        if isinstance(fill_value, scalar):
            return lambda shape, fill_value: np.full(shape, fill_value)
        if not real_array(fill_value):
            return None
        if isinstance(shape, nt.Integer):
            nd, as_tuple = 1, True
        elif isinstance(shape, nt.UniTuple) and isinstance(shape.dtype, nt.Integer):
            nd, as_tuple = len(shape), False
        else:
            return None
        gnd = fill_value.ndim
        lnd = max(nd, gnd)
        dt = np.dtype(str(fill_value.dtype)).type

        def impl(shape, fill_value):           # a broadcast array value (np.full does)
            s = (shape,) if as_tuple else shape
            return spread(fill_value, s, gnd, nd, lnd, dt, True)
        return impl

    _STANDINS["_jit_full"] = jit_full

    def jit_dot(a, b):
        return np.dot(a, b)

    def numpy_product(a, b, fn):
        """NumPy's own matrix product of float arrays of 1 or 2 dimensions (its BLAS,
        the same numbers as the primal), else None."""
        if not (isinstance(a, nt.Array) and isinstance(b, nt.Array)
                and 1 <= a.ndim <= 2 and 1 <= b.ndim <= 2
                and isinstance(a.dtype, nt.Float) and a.dtype == b.dtype):
            return None
        nd = a.ndim + b.ndim - 2
        if nd == 0:
            res_t = a.dtype

            def vector(a, b):
                with numba.objmode(r=res_t):
                    r = fn(a, b)
                return r
            return vector
        out_type = nt.Array(a.dtype, nd, "C")

        def impl(a, b):
            with numba.objmode(r=out_type):
                r = np.ascontiguousarray(fn(a, b))
            return r
        return impl

    @overload(jit_dot)
    def _dot(a, b):
        if isinstance(a, scalar) or isinstance(b, scalar):
            return lambda a, b: a * b               # np.dot of a number multiplies
        found = numpy_product(a, b, np.dot)
        if found is not None:
            return found
        if isinstance(a, nt.Array) and isinstance(b, nt.Array):
            return lambda a, b: np.dot(a, b)

    def jit_matmul(a, b):
        return a @ b

    @overload(jit_matmul)
    def _matmul(a, b):
        found = numpy_product(a, b, np.matmul)
        if found is not None:
            return found
        return lambda a, b: a @ b

    _STANDINS["_jit_dot"] = jit_dot
    _STANDINS["_jit_matmul"] = jit_matmul

    def jit_zeros_like(value):
        return runtime.zeros_like(value)

    @overload(jit_zeros_like)
    def _zeros_like(value):
        if isinstance(value, scalar):
            return lambda value: 0.0
        if isinstance(value, nt.Array):
            dt = float_dtype(value.dtype)
            return lambda value: np.zeros(value.shape, dt)

    _STANDINS["_jit_zeros_like"] = jit_zeros_like

    def jit_owned(adj):
        return runtime.owned(adj)

    @overload(jit_owned)
    def _owned(adj):
        if isinstance(adj, scalar):
            return lambda adj: adj
        if isinstance(adj, nt.Array):
            return lambda adj: adj.copy()     # the caller's adjoint, not written into

    _STANDINS["_jit_owned"] = jit_owned
    _REPLACES[runtime.owned] = "_jit_owned"

    def numpy_ufunc(name):
        ufunc = getattr(np, name)

        def stub(x):
            return ufunc(x)

        def typer(x):
            if isinstance(x, scalar):
                return lambda x: ufunc(x)
            if not (isinstance(x, nt.Array) and isinstance(x.dtype, nt.Float)):
                return None if not isinstance(x, nt.Array) else (lambda x: ufunc(x))
            out_type = nt.Array(x.dtype, x.ndim, "C")

            def impl(x):                        # NumPy's own loop, called from numba
                with numba.objmode(out=out_type):
                    out = np.ascontiguousarray(ufunc(x))
                return out
            return impl

        stub.__name__ = f"jit_np_{name}"
        overload(stub)(typer)
        return stub

    for name in UFUNCS:
        if hasattr(np, name):
            _STANDINS[f"_jit_np_{name}"] = numpy_ufunc(name)

    def jit_like(a, b):
        return np.broadcast(a, b)

    @overload(jit_like)
    def _like(a, b):
        """Something of the shape of ``a op b`` for `unbroadcast` (which reads only the
        shape): a number for numbers, else a broadcast view of one element."""
        if isinstance(a, scalar) and isinstance(b, scalar):
            return lambda a, b: 0.0
        if isinstance(a, scalar):
            return lambda a, b: b
        if isinstance(b, scalar):
            return lambda a, b: a
        if not (isinstance(a, nt.Array) and isinstance(b, nt.Array)):
            return None
        na, nb = a.ndim, b.ndim
        nd = max(na, nb)

        def impl(a, b):
            s = np.ones(nd, np.intp)
            for d in range(na):
                s[nd - na + d] = a.shape[d]
            for d in range(nb):
                n = b.shape[d]
                k = nd - nb + d
                if s[k] == 1:
                    s[k] = n
                elif n != 1 and n != s[k]:
                    raise ValueError("operands could not be broadcast together")
            return np.broadcast_to(np.zeros(1), to_fixed_tuple(s, nd))
        return impl

    _STANDINS["_jit_like"] = jit_like
    _STANDINS["_jit_np"] = np

    # --- vjps of reductions ---------------------------------------------------------------

    @register_jitable
    def spread_rows(g2, out):
        pre, n, post = out.shape
        for i in range(pre):
            for j in range(n):
                for k in range(post):
                    out[i, j, k] = g2[i, k]

    @register_jitable
    def extremum_rows(g2, e2, a3, out):
        pre, n, post = out.shape
        cnt = np.zeros((pre, post), np.intp)
        for i in range(pre):
            for j in range(n):
                for k in range(post):
                    if a3[i, j, k] == e2[i, k]:
                        cnt[i, k] += 1
        for i in range(pre):
            for j in range(n):
                for k in range(post):
                    if a3[i, j, k] == e2[i, k]:
                        out[i, j, k] = g2[i, k] / max(cnt[i, k], 1)
                    else:
                        out[i, j, k] = 0.0

    def reduction_vjp(kind):
        """The adjoint of a sum/mean/max/min reduction: g spread over the reduced axis
        (divided by its length for mean; to the elements equal to the extremum, ties
        sharing it evenly, for max/min)."""
        def stub(g, ans, a, axis=None, keepdims=False):
            raise NotImplementedError

        def typer(g, ans, a, axis=None, keepdims=False):
            if literal_bool(keepdims) is None:
                return None
            extremum = kind == "extremum"
            if isinstance(a, scalar) and isinstance(g, scalar) and omitted(axis):
                return lambda g, ans, a, axis=None, keepdims=False: g * 1.0
            if not real_array(a) or not (isinstance(g, scalar) or real_array(g)):
                return None
            if extremum and not (isinstance(ans, scalar) or real_array(ans)):
                return None
            dt = float_dtype(a.dtype)
            g_number = isinstance(g, scalar)
            ans_number = isinstance(ans, scalar)
            if omitted(axis):
                if kind == "sum":
                    if g_number:
                        return lambda g, ans, a, axis=None, keepdims=False: np.full(
                            a.shape, g, dt)
                    return lambda g, ans, a, axis=None, keepdims=False: np.full(
                        a.shape, first(g), dt)
                if kind == "mean":
                    if g_number:
                        return lambda g, ans, a, axis=None, keepdims=False: np.full(
                            a.shape, g / a.size, dt)
                    return lambda g, ans, a, axis=None, keepdims=False: np.full(
                        a.shape, first(g) / a.size, dt)

                def full(g, ans, a, axis=None, keepdims=False):
                    gv = g if g_number else first(g)
                    av = ans if ans_number else first(ans)
                    out = np.zeros(a.shape, dt)
                    of = out.reshape(-1)
                    af = np.ascontiguousarray(a).reshape(-1)
                    cnt = 0
                    for k in range(af.size):
                        if af[k] == av:
                            cnt += 1
                    share = gv / max(cnt, 1)
                    for k in range(af.size):
                        if af[k] == av:
                            of[k] = share
                    return out
                return full
            if not isinstance(axis, nt.Integer):
                return None
            nd = a.ndim

            @register_jitable
            def rows_of(g, pre, post):
                if g_number:
                    return np.full((pre, post), g, dt)
                return np.ascontiguousarray(g).reshape((pre, post))

            if kind != "extremum":
                def along(g, ans, a, axis=None, keepdims=False):
                    ax = norm_axis(axis, nd)
                    pre, n, post = split3(a.shape, ax)
                    out = np.empty((pre, n, post), dt)
                    g2 = rows_of(g, pre, post)
                    if kind == "mean":
                        g2 = g2 / n
                    spread_rows(g2, out)
                    return out.reshape(a.shape)
                return along

            @register_jitable
            def ans_rows(ans, pre, post):
                if ans_number:
                    return np.full((pre, post), ans)
                return np.ascontiguousarray(ans).reshape((pre, post))

            def extremum_along(g, ans, a, axis=None, keepdims=False):
                ax = norm_axis(axis, nd)
                pre, n, post = split3(a.shape, ax)
                out = np.empty((pre, n, post), dt)
                a3 = np.ascontiguousarray(a).reshape((pre, n, post))
                extremum_rows(rows_of(g, pre, post), ans_rows(ans, pre, post), a3, out)
                return out.reshape(a.shape)
            return extremum_along

        stub.__name__ = f"jit_{kind}_vjp"
        overload(stub, prefer_literal=True)(typer)
        return stub

    _STANDINS["_jit_sum_vjp"] = reduction_vjp("sum")
    _STANDINS["_jit_mean_vjp"] = reduction_vjp("mean")
    _STANDINS["_jit_extremum_vjp"] = reduction_vjp("extremum")
    _REPLACES[numpy_.sum_vjp] = "_jit_sum_vjp"
    _REPLACES[numpy_.mean_vjp] = "_jit_mean_vjp"
    for fn in (np.max, np.min, np.amax, np.amin):
        _REPLACES[registry.lookup(fn).vjps[0]] = "_jit_extremum_vjp"

    # --- dot / matmul -------------------------------------------------------------------

    def product_vjp(i):
        """The adjoint of np.dot / np.matmul / @ for argument i (0: a, 1: b), numbers and
        1-D or 2-D arrays (what matmul_vjp_a/b compute for them)."""
        def stub(g, ans, a, b):
            raise NotImplementedError

        def typer(g, ans, a, b):
            for t in (a, b):
                if not (isinstance(t, scalar) or real_array(t) and 1 <= t.ndim <= 2
                        and isinstance(t.dtype, nt.Float)):
                    return None
            if not (isinstance(g, scalar) or real_array(g)):
                return None
            if isinstance(a, scalar) or isinstance(b, scalar):
                other_number = isinstance(b if i == 0 else a, scalar)
                mine_number = isinstance(a if i == 0 else b, scalar)
                if mine_number:
                    if other_number:
                        return lambda g, ans, a, b: g * (b if i == 0 else a)
                    return lambda g, ans, a, b: np.sum(g * (b if i == 0 else a))
                return lambda g, ans, a, b: g * (b if i == 0 else a) + np.zeros(
                    (a if i == 0 else b).shape)
            na, nb = a.ndim, b.ndim
            g_number = isinstance(g, scalar)

            @register_jitable
            def dense(g, a, b):
                if na == 2 and nb == 2:
                    return np.full((a.shape[0], b.shape[1]), g)
                if na == 1 and nb == 2:
                    return np.full(b.shape[1], g)
                return np.full(a.shape[0], g)

            if na == 1 and nb == 1:
                if i == 0:
                    return lambda g, ans, a, b: g * b
                return lambda g, ans, a, b: g * a
            if i == 0:
                if na == 2 and nb == 2:
                    def impl(g, ans, a, b):
                        return (dense(g, a, b) if g_number else g) @ b.T
                elif na == 1:
                    def impl(g, ans, a, b):
                        return b @ (dense(g, a, b) if g_number else g)
                else:
                    def impl(g, ans, a, b):
                        return np.outer(dense(g, a, b) if g_number else g, b)
            else:
                if na == 1:
                    def impl(g, ans, a, b):
                        return np.outer(a, dense(g, a, b) if g_number else g)
                else:
                    def impl(g, ans, a, b):
                        return a.T @ (dense(g, a, b) if g_number else g)
            return impl

        stub.__name__ = f"jit_dot_vjp_{'ab'[i]}"
        overload(stub)(typer)
        return stub

    _STANDINS["_jit_dot_vjp_a"] = product_vjp(0)
    _STANDINS["_jit_dot_vjp_b"] = product_vjp(1)
    for fn in (np.dot, np.matmul):
        rule = registry.lookup(fn)
        _REPLACES[rule.vjps[0]] = "_jit_dot_vjp_a"
        _REPLACES[rule.vjps[1]] = "_jit_dot_vjp_b"
    _REPLACES[numpy_.matmul_vjp_a] = "_jit_dot_vjp_a"
    _REPLACES[numpy_.matmul_vjp_b] = "_jit_dot_vjp_b"

    # --- runtime helpers ----------------------------------------------------------------

    def jit_unbroadcast(g, like):
        return runtime.unbroadcast(g, like)

    @overload(jit_unbroadcast)
    def _unbroadcast(g, like):
        if isinstance(g, scalar):
            if isinstance(like, scalar) or real_array(like):
                return lambda g, like: g            # numbers pass (runtime.unbroadcast)
            return None
        if not real_array(g):
            return None
        if isinstance(like, scalar):
            return lambda g, like: float(np.sum(g))
        if not isinstance(like, nt.Array):
            return None
        gnd, lnd = g.ndim, like.ndim
        nd = max(gnd, lnd)
        dt = float_dtype(g.dtype)
        same_rank = gnd == lnd

        def impl(g, like):
            if same_rank and g.shape == like.shape:
                return np.asarray(g)
            return spread(g, like.shape, gnd, lnd, nd, dt, False)
        return impl

    @register_jitable
    def spread(g, lshape, gnd, lnd, nd, dt, broadcast_only=False):
        """g summed over the axes where lshape has 1 (or lacks, leading) and broadcast
        over those where g has 1 (or lacks): an array of shape lshape."""
        gs = np.ones(nd, np.intp)
        ls = np.ones(nd, np.intp)
        for d in range(gnd):
            gs[nd - gnd + d] = g.shape[d]
        for d in range(lnd):
            ls[nd - lnd + d] = lshape[d]
        js = np.maximum(gs, ls)
        gst = np.zeros(nd, np.intp)
        lst = np.zeros(nd, np.intp)
        gstep = 1
        lstep = 1
        total = 1
        for d in range(nd - 1, -1, -1):
            if (gs[d] != js[d] and gs[d] != 1) or (ls[d] != js[d] and ls[d] != 1):
                raise ValueError("the adjoint's shape does not broadcast to its value's")
            if broadcast_only and ls[d] != js[d]:
                raise ValueError("could not broadcast the value to the shape")
            gst[d] = gstep if gs[d] != 1 else 0
            lst[d] = lstep if ls[d] != 1 else 0
            gstep *= gs[d]
            lstep *= ls[d]
            total *= js[d]
        gf = np.ascontiguousarray(g).reshape(-1)
        out = np.zeros(lstep, dt)
        if total == 0:
            return out.reshape(lshape)
        idx = np.zeros(nd, np.intp)
        goff = 0
        loff = 0
        inner = js[nd - 1]
        gi = gst[nd - 1]
        li = lst[nd - 1]
        for _ in range(total // inner):
            for k in range(inner):
                out[loff + k * li] += gf[goff + k * gi]
            d = nd - 2
            while d >= 0:
                idx[d] += 1
                goff += gst[d]
                loff += lst[d]
                if idx[d] < js[d]:
                    break
                goff -= gst[d] * js[d]
                loff -= lst[d] * js[d]
                idx[d] = 0
                d -= 1
        return out.reshape(lshape)

    def jit_mul_masked(p, g):
        return runtime.mul_masked(p, g)

    @overload(jit_mul_masked)
    def _mul_masked(p, g):
        if isinstance(p, scalar) and isinstance(g, scalar):
            def numbers(p, g):
                out = p * g
                return out if out - out == 0.0 or g != 0 else 0.0 * out
            return numbers
        if not all(isinstance(t, scalar) or real_array(t) for t in (p, g)):
            return None
        if isinstance(g, scalar):
            def by_number(p, g):
                out = p * g
                if g == 0:
                    out[:] = 0.0
                return out
            return by_number

        def arrays(p, g):
            out = p * g
            if np.isfinite(out).all():
                return out
            gb = g + np.zeros_like(out)
            of = out.reshape(-1)
            gf = gb.reshape(-1)
            for k in range(of.size):
                if gf[k] == 0:
                    of[k] = 0.0
            return out
        return arrays

    def jit_add_at(adj, value, index, g):
        return runtime.add_at(adj, value, index, g)

    def basic(t):
        if isinstance(t, (nt.Integer, nt.SliceType)):
            return True
        if isinstance(t, nt.BaseTuple):
            return all(isinstance(e, (nt.Integer, nt.SliceType)) for e in t.types)
        return False

    @overload(jit_add_at)
    def _add_at(adj, value, index, g):
        if not real_array(value) or not (isinstance(g, scalar) or real_array(g)):
            return None
        if not (isinstance(adj, scalar) or real_array(adj)):
            return None
        dt = float_dtype(value.dtype)
        fresh = isinstance(adj, scalar)     # the 0.0 placeholder: zeros like value
        if basic(index):
            ints = (1 if isinstance(index, nt.Integer) else 0 if not isinstance(
                index, nt.BaseTuple) else sum(isinstance(e, nt.Integer) for e in index.types))
            if ints >= value.ndim:                   # one element
                def element(adj, value, index, g):
                    out = np.zeros(value.shape, dt) if fresh else adj
                    out[index] += g
                    return out
                return element

            def impl(adj, value, index, g):          # a view: added into in place
                out = np.zeros(value.shape, dt) if fresh else adj
                view = out[index]
                view += g
                return out
            return impl
        if (isinstance(index, nt.Array) and index.ndim == 1
                and isinstance(index.dtype, nt.Integer)):
            g_number = isinstance(g, scalar)

            def repeated(adj, value, index, g):    # an index may repeat: each adds
                out = np.zeros(value.shape, dt) if fresh else adj
                for k in range(index.size):
                    if g_number:
                        out[index[k]] += g
                    else:
                        out[index[k]] += g[k]
                return out
            return repeated
        return None

    def jit_take_item(adj, index):
        return runtime.take_item(adj, index)

    @overload(jit_take_item)
    def _take_item(adj, index):
        if isinstance(adj, scalar):
            return lambda adj, index: (0.0, adj)     # the zero adjoint: nothing there
        if not real_array(adj) or not basic(index):
            return None
        ints = (1 if isinstance(index, nt.Integer) else
                sum(isinstance(e, nt.Integer) for e in index.types)
                if isinstance(index, nt.BaseTuple) else 0)
        if ints >= adj.ndim:
            def element(adj, index):
                g = adj[index]
                adj[index] = 0
                return g, adj
            return element

        def view(adj, index):               # a copy of the selection, zeroed there
            part = adj[index]
            g = part.copy()
            part[...] = 0
            return g, adj
        return view

    _STANDINS["take_item"] = jit_take_item
    _REPLACES[runtime.take_item] = "take_item"

    def jit_result_seed(value):
        return seed.result_seed(value)

    @overload(jit_result_seed)
    def _result_seed(value):
        if isinstance(value, scalar):
            return lambda value: 1.0            # the seed of a number (seed.py)
        if real_array(value):
            # an array of one element is taken for its number; any other result is
            # refused after the call, by the value check of the gradient (api.py)
            return lambda value: np.ones(value.shape)

    _STANDINS.update(unbroadcast=jit_unbroadcast, mul_masked=jit_mul_masked,
                     add_at=jit_add_at, result_seed=jit_result_seed)
    _REPLACES[runtime.unbroadcast] = "unbroadcast"
    _REPLACES[runtime.mul_masked] = "mul_masked"
    _REPLACES[runtime.add_at] = "add_at"
    _REPLACES[seed.result_seed] = "result_seed"
