"""Rules for scipy.special.

The elementwise functions (ufuncs and their thin Python wrappers: polygamma, zeta,
multigammaln) get partial-derivative templates in their parameter names, so forward mode
and the second-order routes are derived from them like NumPy's ufuncs. Where a derivative
with respect to an argument has no closed form (the order of a Bessel function, the integer
n of polygamma, the shape parameters of gammainc/gammaincc/betainc, the argument of the
Riemann zeta function) the entry is None: differentiating there is refused.

Reductions over an axis (logsumexp with ``b=``, ``keepdims=``, ``return_sign=``; softmax,
log_softmax) get vjp functions with their jvp and the tangents of their vjps (every mode,
second order included).

Names that are one ufunc (psi and digamma, jn and jv) share their rule: the registry's keys
are the callables themselves. No rule here is declared for complex values.
"""
import math

import numpy as np
import scipy.special as special

from ..registry import defvjp
from ..numpy_ import _expand, _fit, _is_zero, _parts, _plus, _t

ENV = {"np": np, "math": math, "special": special}

_SQRT_PI = "1.7724538509055159"          # sqrt(pi)
_SQRT_2PI = "2.5066282746310002"         # sqrt(2 pi)


def _def(fn, *derivs, params, name=None, none=None, **kw):
    """Register a rule; ``none``: {argument position: why its derivative is no closed
    form}, refused where that argument is differentiated (a None entry alone is 0)."""
    return defvjp(fn, *derivs, params=params, env=ENV, no_derivative=none,
                  name=name or f"scipy.special.{fn.__name__}", **kw)


_ORDER = "the derivative in the order is no closed form"
_SHAPE = "the derivative in the shape parameters is no closed form"


# ======================================================================================
# elementwise: templates
# ======================================================================================
UNARY = {
    # logistic
    "expit": "special.expit(x) * special.expit(-x)",
    "logit": "1 / (x * (1 - x))",
    "log_expit": "special.expit(-x)",
    "softplus": "special.expit(x)",
    # error functions
    "erf": f"(2 / {_SQRT_PI}) * np.exp(-x * x)",
    "erfc": f"(-2 / {_SQRT_PI}) * np.exp(-x * x)",
    "erfcx": f"2 * x * special.erfcx(x) - 2 / {_SQRT_PI}",
    "erfinv": f"({_SQRT_PI} / 2) * np.exp(special.erfinv(x) ** 2)",
    "erfcinv": f"(-{_SQRT_PI} / 2) * np.exp(special.erfcinv(x) ** 2)",
    "dawsn": "1 - 2 * x * special.dawsn(x)",
    # normal distribution
    "ndtr": f"np.exp(-x * x / 2) / {_SQRT_2PI}",
    "log_ndtr": f"np.exp(-x * x / 2 - special.log_ndtr(x)) / {_SQRT_2PI}",
    "ndtri": f"{_SQRT_2PI} * np.exp(special.ndtri(x) ** 2 / 2)",
    # gamma family
    "gamma": "special.gamma(x) * special.digamma(x)",
    "gammaln": "special.digamma(x)",
    "loggamma": "special.digamma(x)",
    "rgamma": "-special.rgamma(x) * special.digamma(x)",
    "digamma": "special.polygamma(1, x)",           # psi is the same ufunc
    # entropy
    "entr": "-(np.log(x) + 1)",
    # Bessel functions of integer order 0 and 1
    "j0": "-special.j1(x)",
    "j1": "(special.j0(x) - special.jv(2, x)) / 2",
    "y0": "-special.y1(x)",
    "y1": "(special.y0(x) - special.yv(2, x)) / 2",
    "i0": "special.i1(x)",
    "i1": "(special.i0(x) + special.iv(2, x)) / 2",
    "i0e": "special.i1e(x) - np.sign(x) * special.i0e(x)",
    "i1e": "(special.i0e(x) + special.ive(2, x)) / 2 - np.sign(x) * special.i1e(x)",
    "k0": "-special.k1(x)",
    "k1": "-(special.k0(x) + special.kv(2, x)) / 2",
    "k0e": "special.k0e(x) - special.k1e(x)",
    "k1e": "special.k1e(x) - (special.k0e(x) + special.kve(2, x)) / 2",
    "erfi": f"(2 / {_SQRT_PI}) * np.exp(x * x)",
    # SciPy's versions of elementary functions
    "exp2": "special.exp2(x) * math.log(2)",
    "exp10": "special.exp10(x) * math.log(10)",
    "expm1": "np.exp(x)",
    "log1p": "1 / (1 + x)",
    "cbrt": "1 / (3 * special.cbrt(x) ** 2)",
    # other
    "spence": "np.log(x) / (1 - x)",
}
#: analytic, with SciPy's complex versions: the templates hold for complex values
HOLOMORPHIC = {"erf", "erfc", "erfcx", "erfi", "dawsn", "expm1", "log1p", "loggamma"}
for _n, _d in UNARY.items():
    if hasattr(special, _n):
        _def(getattr(special, _n), _d, params="x", name=f"scipy.special.{_n}",
             complex="holomorphic" if _n in HOLOMORPHIC else None)

# functions of an order (or another parameter) that has no closed-form derivative
ORDER = {
    "jv": "(special.jv(v - 1, x) - special.jv(v + 1, x)) / 2",       # jn is the same ufunc
    "yv": "(special.yv(v - 1, x) - special.yv(v + 1, x)) / 2",
    "iv": "(special.iv(v - 1, x) + special.iv(v + 1, x)) / 2",
    "ive": "(special.ive(v - 1, x) + special.ive(v + 1, x)) / 2 - np.sign(x) * special.ive(v, x)",
    "kv": "-(special.kv(v - 1, x) + special.kv(v + 1, x)) / 2",
    "kve": "special.kve(v, x) - (special.kve(v - 1, x) + special.kve(v + 1, x)) / 2",
}
for _n, _d in ORDER.items():
    _def(getattr(special, _n), None, _d, params="v, x", none={0: _ORDER})
_def(special.yn, None, "(special.yn(n - 1, x) - special.yn(n + 1, x)) / 2", params="n, x",
     none={0: "n is an integer"})
_def(special.polygamma, None, "special.polygamma(n + 1, x)", params="n, x",
     none={0: "n is an integer"})

BINARY = {
    "beta": ("special.beta(a, b) * (special.digamma(a) - special.digamma(a + b))",
             "special.beta(a, b) * (special.digamma(b) - special.digamma(a + b))"),
    "betaln": ("special.digamma(a) - special.digamma(a + b)",
               "special.digamma(b) - special.digamma(a + b)"),
}
for _n, _ds in BINARY.items():
    _def(getattr(special, _n), *_ds, params="a, b")
# binom(n, k) = gamma(n + 1) / (gamma(k + 1) gamma(n - k + 1)), in real n and k
_def(special.binom,
     "special.binom(n, k) * (special.digamma(n + 1) - special.digamma(n - k + 1))",
     "special.binom(n, k) * (special.digamma(n - k + 1) - special.digamma(k + 1))",
     params="n, k")
# poch(z, m) = gamma(z + m) / gamma(z)
_def(special.poch, "special.poch(z, m) * (special.digamma(z + m) - special.digamma(z))",
     "special.poch(z, m) * special.digamma(z + m)", params="z, m")

XY = {
    "xlogy": ("np.log(y)", "x / y"),
    "xlog1py": ("np.log1p(y)", "x / (1 + y)"),
    "rel_entr": ("np.log(x / y) + 1", "-x / y"),
    "kl_div": ("np.log(x / y)", "1 - x / y"),
}
for _n, _ds in XY.items():
    _def(getattr(special, _n), *_ds, params="x, y")

# regularized incomplete gamma and beta functions: in x only (the shape parameters' partial
# derivatives are no closed form)
_GAMMAINC = "np.exp(special.xlogy(a - 1, x) - x - special.gammaln(a))"
_def(special.gammainc, None, _GAMMAINC, params="a, x", none={0: _SHAPE})
_def(special.gammaincc, None, f"-{_GAMMAINC}", params="a, x", none={0: _SHAPE})
_def(special.betainc, None, None,
     "np.exp(special.xlogy(a - 1, x) + special.xlog1py(b - 1, -x) - special.betaln(a, b))",
     params="a, b, x", none={0: _SHAPE, 1: _SHAPE})

# multigammaln(a, d) = d (d - 1) / 4 log(pi) + sum_j gammaln(a - j / 2): integer d
def half_steps(d):
    """0, 1/2, ..., (d - 1)/2: the shifts of multigammaln's terms (constant)."""
    return np.arange(d) / 2


defvjp(half_steps, zero=True, params="d", name="transpile.rules.scipy_.special.half_steps")
ENV["half_steps"] = half_steps
_def(special.multigammaln,
     "np.sum(special.digamma(np.expand_dims(a, -1) - half_steps(d)), -1)",
     None, params="a, d", none={1: "d is an integer"})

# Hurwitz zeta(x, q): d/dq = -x zeta(x + 1, q); in x (and the Riemann zeta(x)) no closed form
_ZETA = "the derivative in x is no closed form"
_def(special.zeta, None, "-x * special.zeta(x + 1, q)", params="x, q", nargs=2,
     none={0: _ZETA})
_def(special.zeta, None, params="x", nargs=1, none={0: _ZETA})

# piecewise constant
_def(special.gammasgn, params="x", zero=True)


# ======================================================================================
# logsumexp
# ======================================================================================
def _lse_weights(ans, a, axis, b, keepdims, return_sign):
    """sign * exp(a - logsumexp), shaped like a (times b: the weights of a's tangent)."""
    x = np.asarray(a, dtype=float)
    lse, sgn = (ans[0], ans[1]) if return_sign else (ans, 1.0)
    lse = _expand(lse, x.ndim, axis, keepdims)
    sgn = _expand(sgn, x.ndim, axis, keepdims) if return_sign else 1.0
    return x, sgn * np.exp(x - lse)


def _lse_g(g, x, axis, keepdims, return_sign):
    if return_sign:
        g = _parts(g, 2)[0]
    return None if _is_zero(g) else _expand(g, x.ndim, axis, keepdims)


def logsumexp_vjp_a(g, ans, a, axis=None, b=None, keepdims=False, return_sign=False):
    x, w = _lse_weights(ans, a, axis, b, keepdims, return_sign)
    G = _lse_g(g, x, axis, keepdims, return_sign)
    if G is None:
        return _fit(np.zeros(x.shape), a)
    return _fit(G * w * (1.0 if b is None else np.asarray(b)), a)


def logsumexp_vjp_b(g, ans, a, axis=None, b=None, keepdims=False, return_sign=False):
    x, w = _lse_weights(ans, a, axis, b, keepdims, return_sign)
    G = _lse_g(g, x, axis, keepdims, return_sign)
    if G is None:
        return _fit(np.zeros(np.shape(b)), b)
    return _fit(G * w, b)


def _lse_dlse(tangents, a, axis, b, keepdims, return_sign, ans, reduce):
    """The tangent of logsumexp along da (tangents[0]) and db (tangents[2]), and the
    weights; `reduce=False` keeps it expanded to a's dimensions."""
    x, w = _lse_weights(ans, a, axis, b, keepdims, return_sign)
    da, db = _t(tangents, 0), _t(tangents, 2)
    bb = 1.0 if b is None else np.asarray(b)
    term = _plus(None if da is None else bb * np.asarray(da),
                 None if db is None else np.asarray(db))
    t = np.sum(w * term, axis=axis, keepdims=True)
    if reduce and not keepdims:
        t = np.sum(t, axis=axis)  # drop the kept axes (size 1)
    return x, w, t


def logsumexp_jvp(tangents, a, axis=None, b=None, keepdims=False, return_sign=False):
    ans = special.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    tangents = list(tangents) + [None] * (3 - len(tangents))
    if _t(tangents, 0) is None and _t(tangents, 2) is None:
        return 0.0
    _, _, t = _lse_dlse(tangents, a, axis, b, keepdims, return_sign, ans, True)
    t = t if isinstance(ans if not return_sign else ans[0], np.ndarray) else float(t)
    if return_sign:
        return t, np.zeros(np.shape(ans[1]))
    return t


def _lse_vjp_jvp(which):
    """The tangent of vjp_a = G b w and vjp_b = G w, w = sign exp(a - lse):
    dw = w (da - dlse)."""
    def jvp(tangents, g, ans, a, axis=None, b=None, keepdims=False, return_sign=False):
        tangents = list(tangents) + [None] * (5 - len(tangents))
        dg = _t(tangents, 0)
        targs = [tangents[2], tangents[3], tangents[4]]
        x, w, dl = _lse_dlse(targs, a, axis, b, keepdims, return_sign, ans, False)
        G = _lse_g(g, x, axis, keepdims, return_sign)
        dG = None if dg is None else _lse_g(dg, x, axis, keepdims, return_sign)
        da = _t(targs, 0)
        dw = w * (_plus(None if da is None else np.asarray(da)) - dl)
        bb = 1.0 if b is None else np.asarray(b)
        db = _t(targs, 2)
        if which == 0:
            out = _plus(None if dG is None else dG * bb * w,
                        None if G is None else G * bb * dw,
                        None if (G is None or db is None) else G * np.asarray(db) * w)
            return _fit(out, a)
        out = _plus(None if dG is None else dG * w, None if G is None else G * dw)
        return _fit(out, b)
    return jvp


_def(special.logsumexp, logsumexp_vjp_a, None, logsumexp_vjp_b,
     params="a, axis, b, keepdims, return_sign", needs_ans=True, several=True,
     jvp=logsumexp_jvp, vjp_tangents=[_lse_vjp_jvp(0), None, _lse_vjp_jvp(1)])


# ======================================================================================
# softmax, log_softmax
# ======================================================================================
def _sum(v, axis):
    return np.sum(v, axis=axis, keepdims=True)


def softmax_vjp(g, ans, x, axis=None):
    s = np.asarray(ans)
    if _is_zero(g):
        return _fit(np.zeros(s.shape), x)
    G = np.asarray(g)
    return _fit(s * (G - _sum(G * s, axis)), x)


def _softmax_dot(dx, s, axis):
    return s * (dx - _sum(dx * s, axis))


def softmax_jvp(tangents, x, axis=None):
    dx = _t(tangents, 0)
    if dx is None:
        return 0.0
    s = special.softmax(x, axis=axis)
    return _softmax_dot(np.asarray(dx), s, axis)


def _softmax_vjp_jvp(tangents, g, ans, x, axis=None):
    """d[s (g - sum(g s))] = ds (g - sum(g s)) + s (dg - sum(dg s) - sum(g ds))."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    s = np.asarray(ans)
    out = None
    if dg is not None:
        out = _softmax_dot(np.asarray(dg), s, axis)
    if dx is not None and not _is_zero(g):
        G = np.asarray(g)
        ds = _softmax_dot(np.asarray(dx), s, axis)
        out = _plus(out, ds * (G - _sum(G * s, axis)) - s * _sum(G * ds, axis))
    return _fit(_plus(out), x)


_def(special.softmax, softmax_vjp, None, params="x, axis", needs_ans=True,
     jvp=softmax_jvp, vjp_tangents=[_softmax_vjp_jvp, None])


def log_softmax_vjp(g, ans, x, axis=None):
    s = np.exp(np.asarray(ans))
    if _is_zero(g):
        return _fit(np.zeros(s.shape), x)
    G = np.asarray(g)
    return _fit(G - s * _sum(G, axis), x)


def log_softmax_jvp(tangents, x, axis=None):
    dx = _t(tangents, 0)
    if dx is None:
        return 0.0
    s = special.softmax(x, axis=axis)
    dx = np.asarray(dx)
    return dx - _sum(s * dx, axis)


def _log_softmax_vjp_jvp(tangents, g, ans, x, axis=None):
    """d[g - s sum(g)] = dg - s sum(dg) - ds sum(g), ds = s (dx - sum(s dx))."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    s = np.exp(np.asarray(ans))
    out = None
    if dg is not None:
        dG = np.asarray(dg)
        out = dG - s * _sum(dG, axis)
    if dx is not None and not _is_zero(g):
        ds = _softmax_dot(np.asarray(dx), s, axis)
        out = _plus(out, -ds * _sum(np.asarray(g), axis))
    return _fit(_plus(out), x)


_def(special.log_softmax, log_softmax_vjp, None, params="x, axis", needs_ans=True,
     jvp=log_softmax_jvp, vjp_tangents=[_log_softmax_vjp_jvp, None])
