"""Rules for scipy.stats: the methods of its distribution objects (``scipy.stats.norm.logpdf``
is a bound method of the singleton ``norm``; bound methods of one object compare and hash
equal, so the bound method is the rule's key).

The primal stays SciPy's own call. Univariate distributions (norm, t, gamma, beta, chi2;
expon, logistic, cauchy, laplace)
get partial-derivative templates for logpdf, pdf, cdf, logcdf, sf and logsf in x, loc,
scale and their shape parameters (and ppf, isf in q, loc and scale), written from the standardized variable
``y = (x - loc) / scale``: with ``l(y)`` the standard log density, ``d/dx = l'(y) / scale``,
``d/dloc = -l'(y) / scale`` and ``d/dscale = -(y l'(y) + 1) / scale``; pdf is logpdf's times
the pdf, cdf's is the pdf (loc and scale by the chain rule), logcdf's and logsf's divide by
cdf and sf. The templates call the distributions' own methods (and scipy.special), so
every mode follows, second order where scipy.special's functions have rules. A shape
parameter of a cdf (t's df, gamma's a, beta's a and b, chi2's df) has no closed-form
derivative: differentiating it is refused. loc and scale may be left out or passed by
keyword (the rules declare their defaults).

poisson (logpmf, pmf, cdf, logcdf, sf, logsf) is differentiable in mu only (the count k
and loc are integers: refused). multivariate_normal (logpdf, pdf, entropy; x, mean, cov)
and dirichlet (logpdf, pdf; x, alpha) have vjp and jvp functions in plain NumPy, which
transpile reads and differentiates again for second order; ``allow_singular=True`` is
supported in x and mean (through the pseudo-inverse), in cov only where cov is regular.
The shape parameters' derivatives call scipy.special.digamma (its rule: special.py). A frozen distribution
(``scipy.stats.norm(mu, s).logpdf(x)``, or ``rv = scipy.stats.norm(mu, s)`` and then
``rv.logpdf(x)``) is the same call with its parameters after x (normalize.py).
"""
import re

import numpy as np
import scipy
import scipy.special
import scipy.stats

from ..registry import defvjp
from ...errors import TranspileError

ENV = {"np": np, "scipy": scipy}

_Y = "((x - loc) / scale)"


def _in_x(template):
    """A template in the standardized variable `y` written in x, loc and scale."""
    return "(" + re.sub(r"\by\b", _Y, template) + ")"


def _continuous(name, shapes, dlog_y, dlog_shapes):
    """Rules for the univariate distribution scipy.stats.<name>: ``dlog_y`` is the
    derivative of the standard log density in ``y`` (the name `y`, and the shape
    parameters, are the template's free names), ``dlog_shapes`` those in each shape
    parameter (None: not differentiable)."""
    dist = getattr(scipy.stats, name)
    full = f"scipy.stats.{name}"
    params = ["x"] + list(shapes) + ["loc=0.0", "scale=1.0"]
    call_args = ", ".join(["x"] + list(shapes) + ["loc", "scale"])
    ly = _in_x(dlog_y)
    dx = f"({ly}) / scale"
    dloc = f"-({ly}) / scale"
    dscale = f"-({_Y} * ({ly}) + 1.0) / scale"
    dshapes = [None if d is None else _in_x(d) for d in dlog_shapes]
    log_parts = [dx] + dshapes + [dloc, dscale]
    pdf = f"{full}.pdf({call_args})"

    def register(method, partials, first="x"):
        refused = {i + 1: "a shape parameter: no closed form"
                   for i, shape in enumerate(shapes) if partials[i + 1] is None}
        defvjp(getattr(dist, method), *partials, params=[first] + params[1:],
               name=f"{full}.{method}", env=ENV, no_derivative=refused)

    register("logpdf", log_parts)
    register("pdf", [None if p is None else f"{pdf} * {p}" for p in log_parts])
    # cdf(x) = F((x - loc) / scale): its derivative in x is the pdf
    cdf_parts = [pdf] + [None] * len(shapes) + [f"-{pdf}", f"-{pdf} * ((x - loc) / scale)"]
    register("cdf", cdf_parts)
    register("sf", [None if p is None else f"-({p})" for p in cdf_parts])
    logcdf = f"np.exp({full}.logpdf({call_args}) - {full}.logcdf({call_args}))"
    logsf = f"np.exp({full}.logpdf({call_args}) - {full}.logsf({call_args}))"
    unit = ["1.0"] + [None] * len(shapes) + ["-1.0", "-((x - loc) / scale)"]
    register("logcdf", [None if u is None else f"{logcdf} * {u}" for u in unit])
    register("logsf", [None if u is None else f"-{logsf} * {u}" for u in unit])
    # the quantile x = ppf(q) = loc + scale z(q): dx/dq = 1 / pdf(x), 1 in loc, z in scale
    # (isf(q) = ppf(1 - q))
    q_args = call_args.replace("x", "q", 1)
    for method, sign in (("ppf", ""), ("isf", "-")):
        quantile = f"{full}.{method}({q_args})"
        at = call_args.replace("x", quantile, 1)
        register(method, [f"{sign}1.0 / {full}.pdf({at})"] + [None] * len(shapes)
                 + ["1.0", f"({quantile} - loc) / scale"], first="q")


digamma = scipy.special.digamma      # its rule is scipy_/special.py's
ENV["digamma"] = digamma
_psi = "digamma"
_continuous("norm", (), "-y", ())
_continuous("t", ("df",), "-y * (df + 1.0) / (y * y + df)",
            (f"0.5 * (y * y * (df + 1.0) / (df * (y * y + df)) - np.log1p(y * y / df) "
             f"- 1.0 / df - {_psi}(df / 2.0) + {_psi}((df + 1.0) / 2.0))",))
_continuous("gamma", ("a",), "(a - 1.0) / y - 1.0", (f"np.log(y) - {_psi}(a)",))
_continuous("beta", ("a", "b"), "(a - 1.0) / y - (b - 1.0) / (1.0 - y)",
            (f"np.log(y) - {_psi}(a) + {_psi}(a + b)",
             f"np.log1p(-y) - {_psi}(b) + {_psi}(a + b)"))
_continuous("chi2", ("df",), "(df / 2.0 - 1.0) / y - 0.5",
            (f"0.5 * (np.log(y / 2.0) - {_psi}(df / 2.0))",))
# beyond autograd's list: location-scale families without shape parameters
_continuous("expon", (), "-1.0 + 0.0 * y", ())
_continuous("logistic", (), "-np.tanh(y / 2.0)", ())
_continuous("cauchy", (), "-2.0 * y / (1.0 + y * y)", ())
_continuous("laplace", (), "-np.sign(y)", ())


# ---- poisson: in mu (k and loc are integers) ---------------------------------------------
def _poisson():
    dist = scipy.stats.poisson
    params = ["k", "mu", "loc=0"]
    dlog = "np.where((k - loc) % 1 == 0, (k - loc) / mu - 1.0, 0.0)"
    pmf = "scipy.stats.poisson.pmf(k, mu, loc)"
    # cdf(k) = sum_{j <= k} pmf(j): d/dmu = -pmf(floor(k - loc))
    dcdf = "-scipy.stats.poisson.pmf(np.floor(k - loc), mu)"
    parts = {"logpmf": dlog, "pmf": f"{pmf} * {dlog}", "cdf": dcdf, "sf": f"-({dcdf})",
             "logcdf": f"({dcdf}) / scipy.stats.poisson.cdf(k, mu, loc)",
             "logsf": f"-({dcdf}) / scipy.stats.poisson.sf(k, mu, loc)"}
    for method, d in parts.items():
        defvjp(getattr(dist, method), None, d, None, params=params,
               name=f"scipy.stats.poisson.{method}", env=ENV,
               no_derivative={0: "an integer count", 2: "an integer shift"})


_poisson()


# ---- multivariate_normal -----------------------------------------------------------------
# The vjp functions are plain NumPy (transpile reads and differentiates them for the
# second-order routes).
def _mvn_solved(x, mean, cov, allow_singular):
    """(S, J): the points' differences from the mean times cov^-1, one row per point, and
    cov^-1 (a pseudo-inverse under allow_singular, where cov must be regular to be
    differentiated). cov may be a number or the diagonal, as SciPy allows."""
    if np.ndim(cov) == 2:
        C = cov
    elif np.ndim(cov) == 1:
        C = np.diag(cov)
    else:
        C = cov * np.eye(1 if mean is None else np.size(mean))
    d = np.shape(C)[0]
    diff = x if mean is None else x - mean
    S = np.reshape(diff, (-1, d))
    if allow_singular:
        J = np.linalg.pinv(C)
    else:
        J = np.linalg.inv(C)
    return S @ J, J


def _mvn_weights(g, ans, by_pdf):
    """The incoming adjoint per point, as a column (times the density for pdf)."""
    if by_pdf:
        return np.reshape(g * ans, (-1, 1))
    return np.reshape(g, (-1, 1))


def _mvn_vjp_x(by_pdf):
    def vjp(g, ans, x, mean=None, cov=1, allow_singular=False):
        S, J = _mvn_solved(x, mean, cov, allow_singular)
        return np.reshape(-_mvn_weights(g, ans, by_pdf) * S, np.shape(x))
    return vjp


def _mvn_vjp_mean(by_pdf):
    def vjp(g, ans, x, mean=None, cov=1, allow_singular=False):
        S, J = _mvn_solved(x, mean, cov, allow_singular)
        return np.reshape(np.sum(_mvn_weights(g, ans, by_pdf) * S, axis=0), np.shape(mean))
    return vjp


def _mvn_vjp_cov(by_pdf):
    def vjp(g, ans, x, mean=None, cov=1, allow_singular=False):
        if allow_singular:
            _mvn_regular(cov)
        S, J = _mvn_solved(x, mean, cov, allow_singular)
        w = _mvn_weights(g, ans, by_pdf)
        c = 0.5 * (S.T @ (w * S) - np.sum(w) * J)
        if np.ndim(cov) == 1:
            return np.diag(c)
        if np.ndim(cov) == 0:
            return np.trace(c)
        return c
    return vjp


def _mvn_regular(cov):
    eig = np.linalg.eigvalsh(np.atleast_2d(cov)) if np.ndim(cov) == 2 else np.atleast_1d(cov)
    if np.min(eig) <= 1e-10 * np.max(np.abs(eig)):
        raise TranspileError("scipy.stats.multivariate_normal: the density is not "
                             "differentiable in a singular covariance matrix "
                             "(allow_singular=True); it is in x and mean")


def _as_matrix(t, cov):
    """A tangent of cov (a number, the diagonal or the matrix) as a matrix."""
    if np.ndim(cov) == 2:
        return t
    if np.ndim(cov) == 1:
        return np.diag(t)
    return t * np.eye(1)


def _mvn_jvp(by_pdf):
    def jvp(tangents, x, mean=None, cov=1, allow_singular=False):
        # per point: -s . tx + s . tmean + (s^T tcov s - tr(cov^-1 tcov)) / 2
        tx, tmean, tcov = tangents[0], tangents[1], tangents[2]
        S, J = _mvn_solved(x, mean, cov, allow_singular)
        d = np.shape(S)[1]
        per = np.zeros(np.shape(S)[0])
        # (a tangent may be the number 0.0 standing for zeros: broadcast to the argument)
        if tx is not None:
            per = per - np.sum(S * np.reshape(np.broadcast_to(tx, np.shape(x)), (-1, d)),
                               axis=1)
        if tmean is not None:
            per = per + np.sum(S * np.reshape(np.broadcast_to(tmean, np.shape(mean)),
                                              (1, d)), axis=1)
        if tcov is not None:
            if allow_singular:
                _mvn_regular(cov)
            T = _as_matrix(np.broadcast_to(tcov, np.shape(cov)), cov)
            per = per + 0.5 * (np.sum((S @ T) * S, axis=1) - np.sum(J * T))
        if by_pdf:
            per = per * np.reshape(scipy.stats.multivariate_normal.pdf(
                x, mean, cov, allow_singular), (-1,))
        if np.shape(per)[0] == 1:
            return per[0]
        return per
    return jvp


for _method, _by_pdf in (("logpdf", False), ("pdf", True)):
    defvjp(getattr(scipy.stats.multivariate_normal, _method), _mvn_vjp_x(_by_pdf),
           _mvn_vjp_mean(_by_pdf), _mvn_vjp_cov(_by_pdf), None,
           params=["x", "mean=None", "cov=1", "allow_singular=False"],
           name=f"scipy.stats.multivariate_normal.{_method}", env=ENV, needs_ans=_by_pdf,
           jvp=_mvn_jvp(_by_pdf))


def _mvn_entropy_cov(g, ans, mean=None, cov=1):
    # entropy = (d log(2 pi e) + log det cov) / 2
    if np.ndim(cov) == 2:
        return 0.5 * g * np.linalg.inv(cov).T
    return 0.5 * g / cov


def _mvn_entropy_jvp(tangents, mean=None, cov=1):
    tcov = tangents[1]
    if tcov is None:
        return 0.0
    if np.ndim(cov) == 2:
        return 0.5 * np.sum(np.linalg.inv(cov).T * tcov)
    return 0.5 * np.sum(tcov / cov)


defvjp(scipy.stats.multivariate_normal.entropy, None, _mvn_entropy_cov,
       params=["mean=None", "cov=1"], name="scipy.stats.multivariate_normal.entropy",
       env=ENV, needs_ans=False, jvp=_mvn_entropy_jvp)


# ---- dirichlet ---------------------------------------------------------------------------
# x holds one point per column (k rows, or k - 1 rows with the last entry 1 - their sum).
def _dirichlet_weights(g, ans, by_pdf):
    if by_pdf:
        return g * ans
    return g


def _dirichlet_x(by_pdf):
    def vjp(g, ans, x, alpha):
        a = np.reshape(alpha, (-1,) + (1,) * (np.ndim(x) - 1))
        w = _dirichlet_weights(g, ans, by_pdf)
        if np.shape(x)[0] == np.size(alpha) - 1:       # the last entry is 1 - sum(x)
            last = 1.0 - np.sum(x, axis=0)
            return w * ((a[:-1] - 1.0) / x - (a[-1] - 1.0) / last)
        return w * (a - 1.0) / x
    return vjp


def _dirichlet_alpha(by_pdf):
    def vjp(g, ans, x, alpha):
        if np.shape(x)[0] == np.size(alpha) - 1:
            x = np.concatenate([x, [1.0 - np.sum(x, axis=0)]], axis=0)
        a = np.reshape(alpha, (-1,) + (1,) * (np.ndim(x) - 1))
        per = digamma(np.sum(alpha)) - digamma(a) + np.log(x)
        c = _dirichlet_weights(g, ans, by_pdf) * per
        if np.ndim(x) > 1:
            return np.sum(np.reshape(c, (np.shape(c)[0], -1)), axis=1)
        return c
    return vjp


def _dirichlet_jvp(by_pdf):
    def jvp(tangents, x, alpha):
        tx, talpha = tangents[0], tangents[1]
        out = 0.0
        if tx is not None:
            out = out + np.sum(_dirichlet_x(False)(1.0, None, x, alpha) * tx, axis=0)
        if talpha is not None:
            if np.shape(x)[0] == np.size(alpha) - 1:
                x = np.concatenate([x, [1.0 - np.sum(x, axis=0)]], axis=0)
            a = np.reshape(alpha, (-1,) + (1,) * (np.ndim(x) - 1))
            ta = np.reshape(talpha, (-1,) + (1,) * (np.ndim(x) - 1))
            per = digamma(np.sum(alpha)) - digamma(a) + np.log(x)
            out = out + np.sum(per * ta, axis=0)
        if by_pdf:
            out = out * scipy.stats.dirichlet.pdf(x, alpha)
        return out
    return jvp


for _method, _by_pdf in (("logpdf", False), ("pdf", True)):
    defvjp(getattr(scipy.stats.dirichlet, _method), _dirichlet_x(_by_pdf),
           _dirichlet_alpha(_by_pdf), params=["x", "alpha"],
           name=f"scipy.stats.dirichlet.{_method}", env=ENV, needs_ans=_by_pdf,
           jvp=_dirichlet_jvp(_by_pdf))
