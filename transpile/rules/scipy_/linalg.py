"""Rules for scipy.linalg (real arguments).

Where a SciPy function computes what a numpy.linalg function computes from its arguments
read through a fixed linear map (one triangle of a symmetric matrix, a transpose, a band
stored as rows, a triangle with a unit diagonal), its rule is numpy.linalg's rule (looked up
in the registry, never copied: every mode and the second-order terms come with it) with the
arguments read through that map, the tangents through its linear part and the adjoints
through its transpose (`_reuse`):

* solve (every ``assume_a``; ``lower=``, ``transposed=``), inv (``assume_a``, ``lower``),
  det, cholesky (``lower=``): numpy.linalg's solve, inv, det, cholesky;
* solve_triangular (``trans``, ``lower``, ``unit_diagonal``) and solve_banded: solve of the
  triangle or of the band made a full matrix.

cho_solve and lu_solve solve with a matrix rebuilt from its factors (L L^T, U^T U, P L U):
numpy's solve rule chained with the derivative of that product (`_factor_solve`).
cho_factor is cholesky on its triangle; the other triangle of its result is a copy of the
input's. lu_factor and lu (square matrices) differentiate the factors by the usual
L^-1 dA U^-1 split (first order only: their second derivatives are refused).
sqrtm, expm and solve_sylvester have rules of their own: sqrtm's derivative solves a
Sylvester equation, expm's is the Frechet derivative (scipy.linalg.expm_frechet; its second
derivative the Frechet derivative of the block matrix [[A, E], [0, A]]).
"""
import inspect

import numpy as np
import scipy.linalg as sla

from ..registry import defvjp, lookup
from ..derivative_code import _refused
from ..numpy_ import _fit, _is_zero, _matT, _parts, _plus, _t
from ...errors import TranspileError

ENV = {"np": np, "scipy": __import__("scipy")}
la = np.linalg


def _def(fn, *vjps, params, **kw):
    return defvjp(fn, *vjps, params=params, env=ENV, name=f"scipy.linalg.{fn.__name__}",
                  **kw)


def _first_order_only(rule, why):
    """Second derivatives through `rule` are refused (its vjp and jvp functions get rules
    that say so), never derived by reading their code."""
    reason = f"second derivatives through {rule.name} are not available yet ({why})"
    for v in rule.vjps:
        if v is not None:
            _refused(v, f"the reverse rule of {rule.name}", reason, rule)
    if rule.jvp is not None:
        _refused(rule.jvp, f"the forward rule of {rule.name}", reason, rule)


# ======================================================================================
# numpy.linalg's rules, the arguments read through a linear map
# ======================================================================================
class Read:
    """How one SciPy call reads into numpy's: ``args`` and ``kw`` of the numpy call; per
    differentiated SciPy argument position i, ``maps[i] = (j, lin, adj)``: it is numpy's
    argument j, its tangent is ``lin(t)`` and an adjoint c of numpy's argument goes back as
    ``adj(c)``."""

    def __init__(self, args, kw=None, maps=None):
        self.args, self.kw, self.maps = tuple(args), dict(kw or {}), dict(maps or {})


def _same(v):
    return v


def _reuse(fn, np_fn, params, read, **kw):
    """The rule of fn: numpy's rule for np_fn, the call read by ``read(*args, **kw) ->
    Read`` (see there)."""
    rule = lookup(np_fn)
    sig = inspect.signature(fn)

    def bound(args, kwargs):
        b = sig.bind(*args, **kwargs)
        return read(*b.args, **b.kwargs)

    def vjp(i):
        def f(g, ans, *args, **kwargs):
            r = bound(args, kwargs)
            j, lin, adj = r.maps[i]
            c = rule.vjps[j](g, ans, *r.args, **r.kw)
            return _fit(None if c is None else adj(np.asarray(c)), args[i])
        return f

    def jvp(tangents, *args, **kwargs):
        r = bound(args, kwargs)
        ts = [None] * len(r.args)
        for i, (j, lin, adj) in r.maps.items():
            if _t(tangents, i) is not None:
                ts[j] = lin(np.asarray(tangents[i], dtype=float))
        if all(t is None for t in ts):
            return 0.0
        out = rule.jvp(ts, *r.args, **r.kw)
        return out

    def vjp_tangent(i):
        def f(tangents, g, ans, *args, **kwargs):
            r = bound(args, kwargs)
            j, lin, adj = r.maps[i]
            ts = [_t(tangents, 0), _t(tangents, 1)] + [None] * len(r.args)
            for k, (jk, link, _) in r.maps.items():
                if _t(tangents, k + 2) is not None:
                    ts[jk + 2] = link(np.asarray(tangents[k + 2], dtype=float))
            c = rule.vjp_tangents[j](ts, g, ans, *r.args, **r.kw)
            return 0.0 if _is_zero(c) else _fit(adj(np.asarray(c)), args[i])
        return f

    n = len([p for p in params.split(",") if p.strip()])
    diff = read.positions
    vjps = [vjp(i) if i in diff else None for i in range(n)]
    tangents = [vjp_tangent(i) if i in diff else None for i in range(n)]
    return _def(fn, *vjps, params=params, jvp=jvp, vjp_tangents=tangents,
                needs_ans=True, **kw)


def _positions(*ps):
    """Declare the argument positions a read function maps (those differentiated)."""
    def deco(read):
        read.positions = ps
        return read
    return deco


def _tri(lower):
    return np.tril if lower else np.triu


def _symmetric(lower):
    """(value, tangent, adjoint) maps of a symmetric matrix read from one triangle."""
    tri = _tri(lower)

    def sym(a):
        t = tri(a)
        return t + _matT(t) - np.eye(a.shape[-1]) * np.diagonal(a, 0, -2, -1)[..., None, :]

    def adj(c):
        return tri(c + _matT(c)) - np.eye(c.shape[-1]) * np.diagonal(c, 0, -2, -1)[..., None, :]
    return sym, sym, adj


def _masked(mask):
    return (lambda a: a * mask(a)), (lambda a: a * mask(a)), (lambda c: c * mask(c))


def _band_mask(k_lo, k_up):
    def mask(a):
        n, m = a.shape[-2], a.shape[-1]
        d = np.arange(m)[None, :] - np.arange(n)[:, None]
        return ((d >= -k_lo) & (d <= k_up)).astype(float)
    return mask


_GENERAL = (None, "gen", "general", "banded")   # banded: the band is detected in the values
_SYM = ("sym", "symmetric", "her", "hermitian", "pos", "positive definite")


def _structure(assume_a, lower, what):
    """(value, tangent, adjoint) maps of the matrix `assume_a` reads."""
    if assume_a in _GENERAL:
        return _same, _same, _same
    if assume_a in _SYM:
        return _symmetric(lower)
    masks = {"diagonal": _band_mask(0, 0), "tridiagonal": _band_mask(1, 1),
             "upper triangular": lambda a: np.triu(np.ones(a.shape[-2:])),
             "lower triangular": lambda a: np.tril(np.ones(a.shape[-2:]))}
    if assume_a in masks:
        return _masked(masks[assume_a])
    raise TranspileError(f"scipy.linalg.{what}: no derivative rule for assume_a={assume_a!r}")


def _then(first, second):
    return lambda v: second(first(v))


@_positions(0, 1)
def _solve_read(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
                assume_a=None, transposed=False):
    value, lin, adj = _structure(assume_a, lower, "solve")
    if transposed:
        value, lin, adj = _then(value, _matT), _then(lin, _matT), _then(_matT, adj)
    A = value(np.asarray(a, dtype=float))
    return Read((A, np.asarray(b, dtype=float)), maps={0: (0, lin, adj), 1: (1, _same, _same)})


_reuse(sla.solve, la.solve, "a, b", _solve_read)


@_positions(0)
def _inv_read(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    value, lin, adj = _structure(assume_a, lower, "inv")
    return Read((value(np.asarray(a, dtype=float)),), maps={0: (0, lin, adj)})


_reuse(sla.inv, la.inv, "a", _inv_read)


@_positions(0)
def _det_read(a, overwrite_a=False, check_finite=True):
    return Read((np.asarray(a, dtype=float),), maps={0: (0, _same, _same)})


_reuse(sla.det, la.det, "a", _det_read)


@_positions(0)
def _cholesky_read(a, lower=False, overwrite_a=False, check_finite=True):
    # numpy's cholesky(upper=True) reads the upper triangle, as LAPACK's potrf 'U'; its jvp
    # wants a symmetric tangent: the one of the triangle read (its vjp is on the triangle
    # already, which the adjoint map leaves as it is)
    value, lin, adj = _symmetric(lower)
    return Read((value(np.asarray(a, dtype=float)),), kw={"upper": not lower},
                maps={0: (0, lin, adj)})


_reuse(sla.cholesky, la.cholesky, "a", _cholesky_read)


def _unit(a):
    return np.eye(a.shape[-1])


@_positions(0, 1)
def _triangular_read(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    tri = _tri(lower)
    k = -1 if lower else 1
    if unit_diagonal:
        mask = lambda x: tri(x, k)                    # noqa: E731
        value = lambda x: tri(x, k) + _unit(x)        # noqa: E731
    else:
        mask = value = tri
    if trans in (1, 2, "T", "C"):
        value, mask, adj = _then(value, _matT), _then(mask, _matT), _then(_matT, mask)
    elif trans in (0, "N"):
        adj = mask
    else:
        raise TranspileError(f"scipy.linalg.solve_triangular: trans={trans!r}")
    A = value(np.asarray(a, dtype=float))
    return Read((A, np.asarray(b, dtype=float)), maps={0: (0, mask, adj), 1: (1, _same, _same)})


_reuse(sla.solve_triangular, la.solve, "a, b", _triangular_read)


def _band_maps(l_and_u, n):
    """The full (n, n) matrix of the band ``ab`` (rows: diagonals, as solve_banded stores
    them), and the band of a full matrix (the transpose of that map)."""
    lo, up = (int(v) for v in l_and_u)
    rows = []
    for r in range(lo + up + 1):
        k = up - r                      # ab[r, j] = A[j - k, j]: diagonal k
        j = np.arange(max(k, 0), min(n, n + k))
        rows.append((r, j - k, j))

    def full(ab):
        A = np.zeros((n, n))
        for r, i, j in rows:
            A[i, j] = ab[r, j]
        return A

    def band(M):
        ab = np.zeros((lo + up + 1, n))
        for r, i, j in rows:
            ab[r, j] = M[i, j]
        return ab
    return full, band


@_positions(1, 2)
def _banded_read(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    AB = np.asarray(ab, dtype=float)
    if AB.ndim != 2:
        raise TranspileError("scipy.linalg.solve_banded: derivatives for a 2-D ab only")
    full, band = _band_maps(l_and_u, AB.shape[1])
    return Read((full(AB), np.asarray(b, dtype=float)),
                maps={1: (0, full, band), 2: (1, _same, _same)})


_reuse(sla.solve_banded, la.solve, "l_and_u, ab, b", _banded_read)


# ======================================================================================
# solve_sylvester, sqrtm, expm
# ======================================================================================
def _sylvester(a, b, q):
    return sla.solve_sylvester(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               np.asarray(q, dtype=float))


def _sylvester_rhs(x, da, db, dq):
    """dq - da x - x db: the right-hand side of the tangent of a x + x b = q."""
    return _plus(None if dq is None else np.asarray(dq),
                 None if da is None else -(np.asarray(da) @ x),
                 None if db is None else -(x @ np.asarray(db)))


def sylvester_jvp(tangents, a, b, q):
    da, db, dq = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    if da is None and db is None and dq is None:
        return 0.0
    return _sylvester(a, b, _sylvester_rhs(_sylvester(a, b, q), da, db, dq))


def _sylvester_adjoint(g, a, b):
    """y with a^T y + y b^T = g: the adjoint of q."""
    return _sylvester(_matT(a), _matT(b), g)


def sylvester_vjp_a(g, ans, a, b, q):
    return _fit(-(_sylvester_adjoint(g, a, b) @ _matT(ans)), a)


def sylvester_vjp_b(g, ans, a, b, q):
    return _fit(-(_matT(ans) @ _sylvester_adjoint(g, a, b)), b)


def sylvester_vjp_q(g, ans, a, b, q):
    return _fit(_sylvester_adjoint(g, a, b), q)


def _sylvester_dy(tangents, g, a, b):
    """y = the adjoint of q and its tangent dy (tangents: dg, dans, da, db, dq)."""
    dg, da, db = _t(tangents, 0), _t(tangents, 2), _t(tangents, 3)
    y = _sylvester_adjoint(g, a, b)
    if dg is None and da is None and db is None:
        return y, None
    rhs = _sylvester_rhs(y, None if da is None else _matT(da),
                         None if db is None else _matT(db), dg)
    return y, _sylvester_adjoint(rhs, a, b)


def _sylvester_vjp_a_jvp(tangents, g, ans, a, b, q):
    y, dy = _sylvester_dy(tangents, g, a, b)
    dx = _t(tangents, 1)
    return _plus(None if dy is None else -(dy @ _matT(ans)),
                 None if dx is None else -(y @ _matT(dx)))


def _sylvester_vjp_b_jvp(tangents, g, ans, a, b, q):
    y, dy = _sylvester_dy(tangents, g, a, b)
    dx = _t(tangents, 1)
    return _plus(None if dy is None else -(_matT(ans) @ dy),
                 None if dx is None else -(_matT(dx) @ y))


def _sylvester_vjp_q_jvp(tangents, g, ans, a, b, q):
    dy = _sylvester_dy(tangents, g, a, b)[1]
    return 0.0 if dy is None else dy


_def(sla.solve_sylvester, sylvester_vjp_a, sylvester_vjp_b, sylvester_vjp_q,
     params="a, b, q", jvp=sylvester_jvp,
     vjp_tangents=[_sylvester_vjp_a_jvp, _sylvester_vjp_b_jvp, _sylvester_vjp_q_jvp])


def _real_square(x, what):
    if isinstance(x, tuple):
        raise TranspileError(f"scipy.linalg.{what}: derivatives of its one-matrix result "
                             "only (not of disp=False's pair)")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise TranspileError(f"scipy.linalg.{what}: derivatives for one square matrix "
                             f"(2-D) only, not shape {x.shape}")
    if x.dtype.kind == "c":
        raise TranspileError(f"scipy.linalg.{what}: the result is complex (a matrix with "
                             "negative real eigenvalues): complex derivatives are not "
                             "supported")
    return x


# sqrtm: X X = A, so X dX + dX X = dA: dX = solve_sylvester(X, X, dA)
def sqrtm_vjp(g, ans, A, *rest, **kw):
    X = _real_square(ans, "sqrtm")
    return _fit(_sylvester_adjoint(g, X, X), A)


def sqrtm_jvp(tangents, A, *rest, **kw):
    dA = _t(tangents, 0)
    if dA is None:
        return 0.0
    X = _real_square(sla.sqrtm(A), "sqrtm")
    return _sylvester(X, X, dA)


def _sqrtm_vjp_jvp(tangents, g, ans, A, *rest, **kw):
    """The adjoint y of q in solve_sylvester(X, X, q) at X = ans, along dX = dans."""
    X = _real_square(ans, "sqrtm")
    dg, dX = _t(tangents, 0), _t(tangents, 1)
    dy = _sylvester_dy([dg, None, dX, dX], g, X, X)[1]
    return 0.0 if dy is None else dy


_def(sla.sqrtm, sqrtm_vjp, params="A", jvp=sqrtm_jvp, vjp_tangents=[_sqrtm_vjp_jvp])


def _frechet(A, E):
    """The Frechet derivative of expm at A in direction E (2-D, or batches of them)."""
    A, E = np.asarray(A, dtype=float), np.asarray(E, dtype=float)
    A, E = np.broadcast_arrays(A, E)
    if A.ndim == 2:
        return sla.expm_frechet(A, E, compute_expm=False)
    out = np.empty(A.shape)
    for i in np.ndindex(A.shape[:-2]):
        out[i] = sla.expm_frechet(A[i], E[i], compute_expm=False)
    return out


def _block(A, E):
    """[[A, E], [0, A]] (batched)."""
    Z = np.zeros(np.broadcast_shapes(np.shape(A), np.shape(E)))
    A = np.broadcast_to(A, Z.shape)
    top = np.concatenate([A, np.broadcast_to(E, Z.shape)], axis=-1)
    return np.concatenate([top, np.concatenate([Z, A], axis=-1)], axis=-2)


def expm_vjp(g, ans, A):
    return _fit(_frechet(_matT(A), g), A)


def expm_jvp(tangents, A):
    dA = _t(tangents, 0)
    return 0.0 if dA is None else _frechet(A, dA)


def _expm_vjp_jvp(tangents, g, ans, A):
    """d L(A^T, g) = L(A^T, dg) + the derivative of L(A^T, g) in A^T along dA^T: the top
    right block of the Frechet derivative of expm at [[A^T, g], [0, A^T]] along
    [[dA^T, 0], [0, dA^T]]."""
    dg, dA = _t(tangents, 0), _t(tangents, 2)
    At = _matT(A)
    n = np.shape(A)[-1]
    out = None if dg is None else _frechet(At, dg)
    if dA is not None and not _is_zero(g):
        dAt = _matT(dA)
        big = _frechet(_block(At, g), _block(dAt, np.zeros(np.shape(dAt))))
        out = _plus(out, big[..., :n, n:])
    return _plus(out)


_def(sla.expm, expm_vjp, params="A", jvp=expm_jvp, vjp_tangents=[_expm_vjp_jvp])
