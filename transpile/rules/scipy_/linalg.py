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
input's (zeros from SciPy 1.18). lu_factor and lu (square matrices) differentiate the factors by the usual
L^-1 P^T dA U^-1 split (the permutation is locally constant), second order included.
sqrtm, expm and solve_sylvester have rules of their own: sqrtm's derivative solves a
Sylvester equation, expm's is the Frechet derivative (scipy.linalg.expm_frechet; its second
derivative the Frechet derivative of the block matrix [[A, E], [0, A]]).
"""
import functools
import inspect

import numpy as np
import scipy.linalg as sla

from ..registry import defvjp, lookup
from ..numpy_ import _fit, _is_zero, _matT, _parts, _plus, _t
from ...errors import TranspileError
from ._parts import Parts, tangent_of

ENV = {"np": np, "scipy": __import__("scipy")}
la = np.linalg


def _def(fn, *vjps, params, **kw):
    return defvjp(fn, *vjps, params=params, env=ENV, name=f"scipy.linalg.{fn.__name__}",
                  **kw)


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
    """x with a x + x b = q (complex where any of them is: sqrtm's complex roots)."""
    kind = np.result_type(np.asarray(a), np.asarray(b), np.asarray(q), float)
    return sla.solve_sylvester(np.asarray(a, dtype=kind), np.asarray(b, dtype=kind),
                               np.asarray(q, dtype=kind))


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


def _one_matrix(x, what):
    if isinstance(x, tuple):
        raise TranspileError(f"scipy.linalg.{what}: derivatives of its one-matrix result "
                             "only (not of disp=False's pair)")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise TranspileError(f"scipy.linalg.{what}: derivatives for one square matrix "
                             f"(2-D) only, not shape {x.shape}")
    return x


# sqrtm: X X = A, so X dX + dX X = dA: dX = solve_sylvester(X, X, dA). Holomorphic (the
# principal root of a complex matrix, and of a real one with negative eigenvalues, whose
# root is complex: result='complex'); the Sylvester solves keep complex values, and the
# adjoint map uses plain transposes (autograd's convention, registry.COMPLEX).
def sqrtm_vjp(g, ans, A, *rest, **kw):
    X = _one_matrix(ans, "sqrtm")
    return _fit(_sylvester_adjoint(g, X, X), A)


def sqrtm_jvp(tangents, A, *rest, **kw):
    dA = _t(tangents, 0)
    if dA is None:
        return 0.0
    X = _one_matrix(sla.sqrtm(A), "sqrtm")
    return _sylvester(X, X, dA)


def _sqrtm_vjp_jvp(tangents, g, ans, A, *rest, **kw):
    """The adjoint y of q in solve_sylvester(X, X, q) at X = ans, along dX = dans."""
    X = _one_matrix(ans, "sqrtm")
    dg, dX = _t(tangents, 0), _t(tangents, 1)
    dy = _sylvester_dy([dg, None, dX, dX], g, X, X)[1]
    return 0.0 if dy is None else dy


_def(sla.sqrtm, sqrtm_vjp, params="A", jvp=sqrtm_jvp, vjp_tangents=[_sqrtm_vjp_jvp],
     complex="holomorphic", result="complex")


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


# ======================================================================================
# Cholesky and LU factors
# ======================================================================================
_CHOL = lookup(la.cholesky)
_SOLVE = lookup(la.solve)


def _off(lower):
    """The triangle without the factor in cho_factor's result."""
    return (lambda x: np.triu(x, 1)) if lower else (lambda x: np.tril(x, -1))


def _cho_parts(ans, a, lower):
    """The factor, the map from a's adjoint or tangent to the other triangle's (a copy of
    the input's triangle up to SciPy 1.17, zeros from 1.18), the symmetric matrix read from
    a and its tangent map."""
    c = np.asarray(ans[0])
    off = _off(lower) if _cho_factor_keeps_off() else _zero_off
    if not np.array_equal(off(c), off(np.asarray(a, dtype=c.dtype))):
        raise TranspileError("scipy.linalg.cho_factor: the triangle without the factor is "
                             "neither a copy of the input's nor zero here: no derivative "
                             "rule for it")
    value, lin, adj = _symmetric(lower)
    return _tri(lower)(c), off, value(np.asarray(a, dtype=float)), lin, {"upper": not lower}


@functools.cache
def _cho_factor_keeps_off():
    """Whether this SciPy's cho_factor leaves the other triangle as it was (up to 1.17)
    rather than zeroing it (1.18)."""
    return bool(sla.cho_factor(np.array([[2.0, 1.0], [1.0, 2.0]]), lower=True)[0][0, 1])


def _zero_off(x):
    return np.zeros(np.shape(x))


def cho_factor_vjp(g, ans, a, lower=False, overwrite_a=False, check_finite=True):
    gc = _parts(g, 2)[0]
    if _is_zero(gc):
        return _fit(np.zeros(np.shape(a)), a)
    F, off, A, lin, kw = _cho_parts(ans, a, lower)
    gc = np.asarray(gc)
    return _fit(_CHOL.vjps[0](_tri(lower)(gc), F, A, **kw) + off(gc), a)


def cho_factor_jvp(tangents, a, lower=False, overwrite_a=False, check_finite=True):
    da = _t(tangents, 0)
    if da is None:
        return 0.0
    ans = sla.cho_factor(a, lower=lower)
    F, off, A, lin, kw = _cho_parts(ans, a, lower)
    da = np.asarray(da, dtype=float)
    return _tri(lower)(_CHOL.jvp([lin(da)], A, **kw)) + off(da), 0.0


def _cho_factor_vjp_jvp(tangents, g, ans, a, lower=False, overwrite_a=False,
                        check_finite=True):
    dgc, dc = tangent_of(_t(tangents, 0)), tangent_of(_t(tangents, 1))
    gc, da = _parts(g, 2)[0], _t(tangents, 2)
    F, off, A, lin, kw = _cho_parts(ans, a, lower)
    tri = _tri(lower)
    if _is_zero(gc):
        gc = np.zeros(np.shape(F))
    ts = [None if dgc is None else tri(np.asarray(dgc)),
          None if dc is None else tri(np.asarray(dc)),
          None if da is None else lin(np.asarray(da, dtype=float))]
    out = _CHOL.vjp_tangents[0](ts, tri(np.asarray(gc)), F, A, **kw)
    return _plus(None if _is_zero(out) else out, None if dgc is None else off(np.asarray(dgc)))


_def(sla.cho_factor, cho_factor_vjp, params="a", several=True, jvp=cho_factor_jvp,
     vjp_tangents=[_cho_factor_vjp_jvp])


class _Factors:
    """A matrix rebuilt from its factors c: A = rebuild(c), its tangent d(c, dc), the
    adjoint of c from the adjoint of A, adj(c, G), and adj's derivative in c along dc,
    adj2(c, dc, G) (adj is linear in G)."""

    def __init__(self, rebuild, d, adj, adj2):
        self.rebuild, self.d, self.adj, self.adj2 = rebuild, d, adj, adj2


def _cho_factors(lower):
    tri = _tri(lower)
    if lower:                       # A = F F^T
        return _Factors(lambda c: tri(c) @ _matT(tri(c)),
                        lambda c, dc: tri(dc) @ _matT(tri(c)) + tri(c) @ _matT(tri(dc)),
                        lambda c, G: tri((G + _matT(G)) @ tri(c)),
                        lambda c, dc, G: tri((G + _matT(G)) @ tri(dc)))
    return _Factors(lambda c: _matT(tri(c)) @ tri(c),          # A = F^T F
                    lambda c, dc: _matT(tri(dc)) @ tri(c) + _matT(tri(c)) @ tri(dc),
                    lambda c, G: tri(tri(c) @ (G + _matT(G))),
                    lambda c, dc, G: tri(tri(dc) @ (G + _matT(G))))


def _permutation(piv, n):
    """perm with A[perm] = L U, from LAPACK's row interchanges piv."""
    perm = np.arange(n)
    for i, p in enumerate(np.asarray(piv)):
        perm[i], perm[p] = perm[p], perm[i]
    return perm


def _unpermute(M, perm):
    out = np.empty_like(M)
    out[perm] = M
    return out


def _lu_factors(piv, n, trans):
    """A (or A^T for trans) = P L U from lu_factor's (lu, piv): A[perm] = L U."""
    perm = _permutation(piv, n)
    L = lambda c: np.tril(c, -1) + np.eye(n)                  # noqa: E731
    U = np.triu

    def t(M):
        return _matT(M) if trans else M

    def rebuild(c):
        return t(_unpermute(L(c) @ U(c), perm))

    def d(c, dc):
        return t(_unpermute(np.tril(dc, -1) @ U(c) + L(c) @ U(dc), perm))

    def adj(c, G):
        GM = t(G)[perm]
        return np.tril(GM @ _matT(U(c)), -1) + np.triu(_matT(L(c)) @ GM)

    def adj2(c, dc, G):
        GM = t(G)[perm]
        return np.tril(GM @ _matT(U(dc)), -1) + np.triu(_matT(np.tril(dc, -1)) @ GM)
    return _Factors(rebuild, d, adj, adj2)


def _pair_adjoint(c, pair):
    """The adjoint of a (factors, ...) pair argument (adds entry by entry: `Parts`)."""
    return Parts([c] + [None] * (len(pair) - 1))


def _factor_solve(fn, factors_of):
    """The rule of fn(c_and_more, b, ...) = solve(A, b), A rebuilt from the factors c
    (``factors_of(c_and_more, **kw) -> (c, _Factors)``): numpy's solve rule chained with
    the derivative of the rebuild."""
    def setup(pair, rest, kw):
        c, fac = factors_of(pair, *rest, **kw)
        c = np.asarray(c, dtype=float)
        return c, fac, fac.rebuild(c)

    def vjp_c(g, ans, pair, b, *rest, **kw):
        c, fac, A = setup(pair, rest, kw)
        gA = _SOLVE.vjps[0](g, ans, A, b)
        return _pair_adjoint(_fit(fac.adj(c, np.asarray(gA)), pair[0]), pair)

    def vjp_b(g, ans, pair, b, *rest, **kw):
        c, fac, A = setup(pair, rest, kw)
        return _fit(_SOLVE.vjps[1](g, ans, A, b), b)

    def tangents_of(ts, c, fac, k):
        dc, db = tangent_of(_t(ts, k)), _t(ts, k + 1)
        dA = None if dc is None else fac.d(c, np.asarray(dc, dtype=float))
        return dc, dA, db

    def jvp(tangents, pair, b, *rest, **kw):
        c, fac, A = setup(pair, rest, kw)
        dc, dA, db = tangents_of(tangents, c, fac, 0)
        if dA is None and db is None:
            return 0.0
        return _SOLVE.jvp([dA, db], A, b)

    def vjp_c_jvp(tangents, g, ans, pair, b, *rest, **kw):
        c, fac, A = setup(pair, rest, kw)
        dc, dA, db = tangents_of(tangents, c, fac, 2)
        ts = [_t(tangents, 0), _t(tangents, 1), dA, db]
        dgA = _SOLVE.vjp_tangents[0](ts, g, ans, A, b)
        out = None if _is_zero(dgA) else fac.adj(c, np.asarray(dgA))
        if dc is not None and not _is_zero(g):
            gA = np.asarray(_SOLVE.vjps[0](g, ans, A, b))
            out = _plus(out, fac.adj2(c, np.asarray(dc, dtype=float), gA))
        return _pair_adjoint(_plus(out), pair)

    def vjp_b_jvp(tangents, g, ans, pair, b, *rest, **kw):
        c, fac, A = setup(pair, rest, kw)
        dc, dA, db = tangents_of(tangents, c, fac, 2)
        return _SOLVE.vjp_tangents[1]([_t(tangents, 0), _t(tangents, 1), dA, db],
                                      g, ans, A, b)
    return vjp_c, vjp_b, jvp, vjp_c_jvp, vjp_b_jvp


def _cho_pair(c_and_lower, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    return c, _cho_factors(bool(lower))


def _lu_pair(lu_and_piv, trans=0, overwrite_b=False, check_finite=True):
    lu, piv = lu_and_piv
    if trans not in (0, 1, 2, "N", "T", "C"):
        raise TranspileError(f"scipy.linalg.lu_solve: trans={trans!r}")
    return lu, _lu_factors(piv, np.shape(lu)[-1], trans not in (0, "N"))


for _fn, _pair, _params in ((sla.cho_solve, _cho_pair, "c_and_lower, b"),
                            (sla.lu_solve, _lu_pair, "lu_and_piv, b")):
    _vc, _vb, _jvp, _vcj, _vbj = _factor_solve(_fn, _pair)
    _def(_fn, _vc, _vb, params=_params, jvp=_jvp, vjp_tangents=[_vcj, _vbj])


# --- lu_factor and lu (square matrices): dL = L tril(X, -1), dU = triu(X) U with
# X = L^-1 P^T dA U^-1; the adjoint of P^T A is L^-T gX U^-T, with
# gX = tril(L^T gL, -1) + triu(gU U^T) -----------------------------------------------
def _square(a, what):
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise TranspileError(f"scipy.linalg.{what}: derivatives for a square 2-D matrix "
                             f"only, not shape {a.shape}")
    return a


def _lu_tangent(L, U, dM):
    """(dL, dU) from dM = P^T dA."""
    X = la.solve(L, _matT(la.solve(_matT(U), _matT(dM))))      # L^-1 dM U^-1
    return L @ np.tril(X, -1), np.triu(X) @ U


def _lu_adjoint(L, U, gL, gU):
    """P^T gA (the adjoint of dM) from the adjoints of L and U."""
    gX = np.tril(_matT(L) @ gL, -1) + np.triu(gU @ _matT(U))
    return _matT(la.solve(U, _matT(la.solve(_matT(L), gX))))   # L^-T gX U^-T


def _lu_of_factor(ans, a):
    lu, piv = ans
    n = np.shape(lu)[0]
    return np.tril(lu, -1) + np.eye(n), np.triu(lu), _permutation(piv, n)


def lu_factor_vjp(g, ans, a, overwrite_a=False, check_finite=True):
    _square(a, "lu_factor")
    glu = _parts(g, 2)[0]
    if _is_zero(glu):
        return _fit(np.zeros(np.shape(a)), a)
    L, U, perm = _lu_of_factor(ans, a)
    glu = np.asarray(glu)
    return _fit(_unpermute(_lu_adjoint(L, U, np.tril(glu, -1), np.triu(glu)), perm), a)


def lu_factor_jvp(tangents, a, overwrite_a=False, check_finite=True):
    da = _t(tangents, 0)
    if da is None:
        return 0.0
    ans = sla.lu_factor(_square(a, "lu_factor"))
    L, U, perm = _lu_of_factor(ans, a)
    dL, dU = _lu_tangent(L, U, np.asarray(da, dtype=float)[perm])
    return dL + dU, np.zeros(np.shape(ans[1]))


def _dense(x, n):
    return np.zeros((n, n)) if _is_zero(x) else np.asarray(x, dtype=float)


def _lu_output(x, permute_l, P, n):
    """(L part, U part) of lu's result (or of its adjoint or tangent): with permute_l, the
    first is P L, read back as L."""
    parts = _parts(x, 2 if permute_l else 3)
    l, u = parts[-2], parts[-1]
    l = _dense(l, n)
    return (_matT(P) @ l if permute_l else l), _dense(u, n)


def lu_vjp(g, ans, a, permute_l=False, overwrite_a=False, check_finite=True,
           p_indices=False):
    A = _square(a, "lu")
    n = A.shape[0]
    P = sla.lu(A)[0]                   # A = P L U (p_indices changes p only)
    L, U = _lu_output(ans, permute_l, P, n)
    gl, gu = _lu_output(g, permute_l, P, n)
    return _fit(P @ _lu_adjoint(L, U, gl, gu), a)


def _lu_adjoint_tangent(L, U, gL, gU, dL, dU, dgL, dgU):
    """The tangent of _lu_adjoint(L, U, gL, gU) = L^-T gX U^-T."""
    gX = np.tril(_matT(L) @ gL, -1) + np.triu(gU @ _matT(U))
    dgX = np.tril(_matT(dL) @ gL + _matT(L) @ dgL, -1) + np.triu(dgU @ _matT(U) +
                                                                 gU @ _matT(dU))

    def lt_rt(X):                                              # L^-T X U^-T
        return _matT(la.solve(U, _matT(la.solve(_matT(L), X))))
    M = lt_rt(gX)
    return lt_rt(dgX) - la.solve(_matT(L), _matT(dL) @ M) - _matT(la.solve(U, _matT(
        M @ _matT(dU))))


def _lu_vjp_jvp(tangents, g, ans, a, permute_l=False, overwrite_a=False,
                check_finite=True, p_indices=False):
    A = _square(a, "lu")
    n = A.shape[0]
    P = sla.lu(A)[0]
    L, U = _lu_output(ans, permute_l, P, n)
    gl, gu = _lu_output(g, permute_l, P, n)
    dgl, dgu = _lu_output(_t(tangents, 0), permute_l, P, n)
    dl, du = _lu_output(_t(tangents, 1), permute_l, P, n)
    return P @ _lu_adjoint_tangent(L, U, gl, gu, np.tril(dl, -1), np.triu(du), dgl, dgu)


def _lu_factor_vjp_jvp(tangents, g, ans, a, overwrite_a=False, check_finite=True):
    _square(a, "lu_factor")
    L, U, perm = _lu_of_factor(ans, a)
    n = L.shape[0]
    glu = _dense(_parts(g, 2)[0], n)
    dglu = _dense(_parts(_t(tangents, 0), 2)[0], n)
    dlu = _dense(_parts(_t(tangents, 1), 2)[0], n)
    dM = _lu_adjoint_tangent(L, U, np.tril(glu, -1), np.triu(glu), np.tril(dlu, -1),
                             np.triu(dlu), np.tril(dglu, -1), np.triu(dglu))
    return _unpermute(dM, perm)


def lu_jvp(tangents, a, permute_l=False, overwrite_a=False, check_finite=True,
           p_indices=False):
    da = _t(tangents, 0)
    if da is None:
        return 0.0
    A = _square(a, "lu")
    P, L, U = sla.lu(A)                # A = P L U (p_indices changes p only)
    dL, dU = _lu_tangent(L, U, _matT(P) @ np.asarray(da, dtype=float))
    if permute_l:
        return P @ dL, dU
    return np.zeros(np.shape(P) if not p_indices else P.shape[:1]), dL, dU


for _fn, _vjp, _jvp, _vjp_jvp in (
        (sla.lu_factor, lu_factor_vjp, lu_factor_jvp, _lu_factor_vjp_jvp),
        (sla.lu, lu_vjp, lu_jvp, _lu_vjp_jvp)):
    _def(_fn, _vjp, params="a", several=True, jvp=_jvp, vjp_tangents=[_vjp_jvp])
