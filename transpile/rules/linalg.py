"""Rules for numpy.linalg.

Complex values (registry.COMPLEX, autograd's convention): solve, inv, det, matrix_power,
multi_dot, tensorinv and tensorsolve are holomorphic (their real formulas hold as written);
slogdet, cholesky, eigh/eigvalsh, svd/svdvals, pinv, eig/eigvals, the norms and cond are
explicit (conjugate transposes where the real formulas have transposes; real results take
the real part of their adjoint); qr and lstsq declare nothing (refused for complex
values).

The vjp functions follow rules/numpy_.py's conventions (``vjp(g, ans, *args, **kwargs)``
returning a contribution of the argument's own shape) and register through its `_def`, so
that they share its namespace (`ENV`) and its helpers.

Conventions at non-differentiable points and other choices:
  * np.linalg.cholesky and eigh/eigvalsh read one triangle of their input only (lower by
    default); their gradients are the true partial derivatives, so they live on that
    triangle (off-diagonal entries count twice). For a symmetric input built from other
    values the chain rule gives the usual symmetric result.
  * det/slogdet/inv/solve need invertible matrices; pinv assumes constant rank, lstsq full
    rank (a rank-deficient a is refused: its solution jumps with the rank).
  * svd and qr: the reduced factorizations (distinct nonzero singular values, an invertible
    r). full_matrices=True / mode='complete' of a non-square (tall, for qr) matrix add an
    arbitrary orthonormal completion with no derivative: refused where it would need one
    (a reverse pass that sends it a nonzero adjoint, every forward pass).
  * eig/eigvals: distinct eigenvalues (unit-norm eigenvectors), real or complex; their
    results are taken for complex (a real matrix's spectrum may be).
  * norms at 0 have gradient 0; second derivatives of p-norms with p < 2 at a vector with a
    0 element are unbounded: refused.
  * The tangent of a NamedTuple result (SVDResult, QRResult, EighResult, EigResult,
    SlogdetResult) is a list, as the compiler represents NamedTuples' tangents.
"""
import math

import numpy as np

from ..errors import TranspileError
from ..namespaces import as_array
from ..runtime import unbroadcast
from .forward_runtime import jvp_by_vjps
from .numpy_ import (_T, _arr, _axes, _by_weights, _def, _expand, _fit, _given, _group_last,
                     _is_zero, _matT, _parts, _plus, _real_tangent, _scaled_bilinear_jvp, _t,
                     _vjps_if_more)

la = np.linalg


def solve_vjp_a(g, ans, a, b):
    A = as_array(a)
    x = as_array(ans)
    vec = np.ndim(b) == 1
    gb = _solve_T(A, g, vec)
    if vec:
        r = -gb[..., :, None] * x[..., None, :]
    else:
        r = -np.matmul(gb, _T(x))
    return _fit(unbroadcast(r, A), a)


def _solve_T(A, g, vec):
    if vec:
        return la.solve(_T(A), as_array(g)[..., None])[..., 0]
    return la.solve(_T(A), as_array(g))


def solve_vjp_b(g, ans, a, b):
    A = as_array(a)
    gb = _solve_T(A, g, np.ndim(b) == 1)
    return _fit(unbroadcast(gb, as_array(b)), b)


def _solve_jvp(tangents, a, b):
    x = la.solve(a, b)
    vec = np.ndim(b) == 1
    rhs = 0.0
    if _given(tangents[1]):
        rhs = as_array(tangents[1])
    if _given(tangents[0]):
        X = x[..., None] if vec else x
        dAx = as_array(tangents[0]) @ X
        rhs = rhs - (dAx[..., 0] if vec else dAx)
    if _is_zero(rhs):
        return 0.0
    if vec:
        return la.solve(a, as_array(rhs)[..., None])[..., 0]
    return la.solve(a, rhs)


def _solve_gb_jvp(tangents, g, a, b):
    """(gb, tangent of gb) for gb = solve(a^T, g) (vectors as columns)."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    A = as_array(a)
    vec = np.ndim(b) == 1
    G = as_array(g)[..., None] if vec else as_array(g)
    gb = np.linalg.solve(_matT(A), G)
    dgb = 0.0
    if dg is not None:
        dgb = dgb + np.linalg.solve(_matT(A), as_array(dg)[..., None] if vec else dg)
    if da is not None:
        dgb = dgb - np.linalg.solve(_matT(A), _matT(da) @ gb)
    return gb, dgb, vec


def _solve_vjp_b_jvp(tangents, g, ans, a, b):
    gb, dgb, vec = _solve_gb_jvp(tangents, g, a, b)
    return dgb[..., 0] if vec and not _is_zero(dgb) else dgb


def _solve_vjp_a_jvp(tangents, g, ans, a, b):
    """-gb x^T with x = ans."""
    gb, dgb, vec = _solve_gb_jvp(tangents, g, a, b)
    dx = _t(tangents, 1)
    X = as_array(ans)[..., None] if vec else as_array(ans)
    out = 0.0 if _is_zero(dgb) else -(dgb @ _matT(X))
    if dx is not None:
        dX = as_array(dx)[..., None] if vec else as_array(dx)
        out = out - gb @ _matT(dX)
    return out


_def(la.solve, solve_vjp_a, solve_vjp_b, params="a, b", ans=True, jvp=_solve_jvp,
     vjp_tangents=[_solve_vjp_a_jvp, _solve_vjp_b_jvp], complex="holomorphic")


def inv_vjp(g, ans, a):
    Ai = _T(as_array(ans))
    return _fit(-np.matmul(np.matmul(Ai, as_array(g)), Ai), a)


def _dinv(a, da):
    """Tangent of inv(a)."""
    ai = la.inv(as_array(a))
    return -(ai @ as_array(da) @ ai)


def _inv_vjp_jvp(tangents, g, ans, a):
    """-A^-T g A^-T with A^-1 = ans."""
    dg, dans = _t(tangents, 0), _t(tangents, 1)
    Ai = _matT(ans)
    terms = [None if dg is None else -(Ai @ as_array(dg) @ Ai)]
    if dans is not None:
        dAi, G = _matT(dans), as_array(g)
        terms.append(-(dAi @ G @ Ai + Ai @ G @ dAi))
    return _plus(*terms)


def _inv_jvp(da, a):
    return _dinv(a, da)


_def(la.inv, inv_vjp, params="a", ans=True, jvp=_vjps_if_more(la.inv, [inv_vjp], _inv_jvp),
     vjp_tangents=[_inv_vjp_jvp], complex="holomorphic")


def _cofactors(A):
    """det(a) inv(a)^T, also where a is singular: with a = u diag(s) vh, the cofactor
    matrix is det(u) det(vh) u diag(prod over j != i of s_j) vh."""
    u, s, vh = la.svd(A)
    others = np.prod(np.where(np.eye(s.shape[-1], dtype=bool), 1.0, s[..., None, :]), axis=-1)
    return (la.det(u) * la.det(vh))[..., None, None] * (
        (np.conj(u) * others[..., None, :]) @ np.conj(vh))       # (det(a) inv(a)^T)


def det_vjp(g, ans, a):
    A = as_array(a)
    try:
        r = (as_array(g) * as_array(ans))[..., None, None] * _T(la.inv(A))
    except la.LinAlgError:                     # a singular matrix: its cofactors
        r = as_array(g)[..., None, None] * _cofactors(A)
    return _fit(r, a)


def _det_vjp_jvp(tangents, g, ans, a):
    """(g det a) inv(a)^T."""
    dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    A = as_array(a)
    _inv_or_refuse(A, "second derivatives of numpy.linalg.det")
    scale = as_array(g) * as_array(ans)
    dscale = _plus(None if dg is None else as_array(dg) * as_array(ans),
                   None if dans is None else as_array(g) * as_array(dans))
    inv_T = _matT(la.inv(A))
    out = as_array(dscale)[..., None, None] * inv_T
    if da is not None:
        out = out + scale[..., None, None] * _matT(_dinv(A, da))
    return out


_def(la.det, det_vjp, params="a", ans=True,
     jvp=_by_weights(la.det, [det_vjp], lambda nd, **kw: ((nd - 2, nd - 1), False)),
     vjp_tangents=[_det_vjp_jvp], complex="holomorphic")


def _inv_or_refuse(A, what):
    """inv(A), or for a singular A a TranspileError: `what` needs an invertible matrix."""
    try:
        return la.inv(A)
    except la.LinAlgError:
        raise TranspileError(f"{what} at a singular matrix: not available (it needs an "
                             f"invertible matrix)") from None


# slogdet of a complex a: logabsdet = Re log det a is real, sign = det a / |det a| has the
# tangent sign i Im(w), w = tr(a^-1 da) (0 for a real a); the adjoint of a is
# a^-T (Re(g_logabsdet) + i Im(g_sign sign)).
def _slogdet_weight(g, ans):
    """Re(g_logabsdet) + i Im(g_sign sign) (None where no adjoint flows)."""
    gs, gl = _parts(g, 2)
    c = None if _is_zero(gl) else np.real(as_array(gl))
    if not _is_zero(gs) and np.iscomplexobj(ans[0]):
        c = _plus(c, 1j * np.imag(as_array(gs) * as_array(ans[0])))
    return c


def slogdet_vjp(g, ans, a):
    c = _slogdet_weight(g, ans)
    if c is None:
        return _fit(np.zeros(np.shape(a)), a)
    return _fit(as_array(c)[..., None, None]
                * _T(_inv_or_refuse(as_array(a), "the derivative of numpy.linalg.slogdet")), a)


def _slogdet_jvp(da, a):
    sign, logdet = la.slogdet(a)
    Ai = _inv_or_refuse(as_array(a), "the derivative of numpy.linalg.slogdet")
    t = np.einsum("...ij,...ji->...", Ai, as_array(da))
    dsign = sign * 1j * np.imag(t) if np.iscomplexobj(sign) else np.zeros(np.shape(sign))
    t = np.real(t)
    return [dsign, (t if np.ndim(t) else float(t))]         # a NamedTuple: a list


def _slogdet_vjp_jvp(tangents, g, ans, a):
    """The tangent of a^-T c, c = Re(g_logabsdet) + i Im(g_sign sign), along g and a
    (through sign: d sign = sign i Im tr(a^-1 da))."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    A = as_array(a)
    Ai = _inv_or_refuse(A, "second derivatives of numpy.linalg.slogdet")
    c = _slogdet_weight(g, ans)
    dc = None if dg is None else _slogdet_weight(dg, ans)
    if da is not None and not _is_zero(g) and np.iscomplexobj(ans[0]):
        gs = _parts(g, 2)[0]
        if not _is_zero(gs):
            dsign = _slogdet_jvp(da, A)[0]
            dc = _plus(dc, 1j * np.imag(as_array(gs) * dsign))
    out = 0.0
    if dc is not None:
        out = as_array(dc)[..., None, None] * _matT(Ai)
    if da is not None and c is not None:
        out = out + as_array(c)[..., None, None] * _matT(_dinv(A, da))
    return out


_def(la.slogdet, slogdet_vjp, params="a", ans=True, several=True,
     jvp=_vjps_if_more(la.slogdet, [slogdet_vjp], _slogdet_jvp),
     vjp_tangents=[_slogdet_vjp_jvp], complex="explicit")


def _H(x):
    """The conjugate transpose of the last two axes (the transpose for real x)."""
    x = as_array(x)
    return np.conj(_matT(x)) if np.iscomplexobj(x) else _matT(x)


def _lower_partial(M, uplo="L"):
    """Gradient wrt a matrix read through one triangle, from a gradient M wrt the
    symmetric (complex: Hermitian, of real diagonal) matrix it stands for (any M with the
    right symmetric part): M_ij + conj(M_ji) below the diagonal, Re(M_ii) on it."""
    S = (M + _H(M)) / 2
    d = np.diagonal(S, axis1=-2, axis2=-1)
    tri = np.tril if uplo.upper() == "L" else np.triu
    return 2 * tri(S) - d[..., None] * np.eye(S.shape[-1])


# a = L L^H (L lower triangular, of real positive diagonal; upper=True returns L^H), read
# from one triangle of a (Hermitian: _read_triangle). With Phi(X) = tril(X) with its diagonal
# halved and P = L^-1 da L^-H, dL = L Phi(P); the vjp is the triangle's gradient
# (_lower_partial) of conj(S), S = L^-H Phi(L^H conj(G)) L^-1 (for real a the formulas of
# the real case: the conjugates do nothing).
def _cholesky_phi(X):
    return np.tril(X) / (1.0 + np.eye(X.shape[-1]))


def _cholesky_lower(L, G, upper):
    """(L, G) of the lower factor for the result and its adjoint (upper: L^H and G^H)."""
    return (_H(L), _H(G)) if upper else (as_array(L), as_array(G))


def _cholesky_S(L, Gc):
    """L^-H Phi(L^H Gc) L^-1."""
    left = la.solve(_H(L), _cholesky_phi(_H(L) @ Gc))
    return _H(la.solve(_H(L), _H(left)))


def cholesky_vjp(g, ans, a, upper=False):
    L, G = _cholesky_lower(ans, g, upper)
    S = _cholesky_S(L, np.conj(G))
    return _fit(_lower_partial(np.conj(S), "U" if upper else "L"), a)


def _cholesky_jvp(da, a, upper=False):
    L = la.cholesky(a, upper=upper) if upper else la.cholesky(a)
    Lo = _H(L) if upper else L
    Li = la.inv(Lo)
    P = Li @ _read_triangle(da, "U" if upper else "L") @ _H(Li)
    dL = Lo @ _cholesky_phi(P)
    return _H(dL) if upper else dL


def _cholesky_vjp_jvp(tangents, g, ans, a, upper=False):
    """cholesky's vjp: the triangle's gradient of conj(S), S = L^-H Phi(L^H Gc) L^-1 with
    Gc = conj(G). It depends on g (linearly) and on L = ans: with dL the tangent of ans,
    dS = -L^-H dL^H S + L^-H Phi(dL^H Gc) L^-1 - S dL L^-1 (plus the dG part)."""
    dg, dans = _t(tangents, 0), _t(tangents, 1)
    terms = [None if dg is None else cholesky_vjp(dg, ans, a, upper)]
    if dans is not None and not _is_zero(g):
        L, G = _cholesky_lower(ans, g, upper)
        dL = _H(dans) if upper else as_array(dans)
        Gc = np.conj(G)

        def left(X):                       # L^-H X
            return la.solve(_H(L), X)

        def right(X):                      # X L^-1
            return _H(la.solve(_H(L), _H(X)))

        S = _cholesky_S(L, Gc)
        dS = -left(_H(dL) @ S) + right(left(_cholesky_phi(_H(dL) @ Gc))) - right(S @ dL)
        terms.append(_fit(_lower_partial(np.conj(dS), "U" if upper else "L"), a))
    return _plus(*terms)


_def(la.cholesky, cholesky_vjp, params="a", ans=True,
     jvp=_vjps_if_more(la.cholesky, [cholesky_vjp], _cholesky_jvp),
     vjp_tangents=[_cholesky_vjp_jvp], complex="explicit")


def _eigh_M(gw, gv, w, v):
    """The gradient wrt the Hermitian matrix: conj(v) (diag(gw) + F o (v^T gv)) v^T (the
    eigenvalues are real: the real part of gw)."""
    vT, vc = _T(v), np.conj(v)
    M = 0
    if not _is_zero(gw):
        M = np.matmul(vc * np.real(as_array(gw))[..., None, :], vT)
    if not _is_zero(gv):
        F = _eigh_F(w)
        M = M + np.matmul(np.matmul(vc, F * np.matmul(vT, as_array(gv))), vT)
    return M


def eigh_vjp(g, ans, a, UPLO="L"):
    w, v = ans
    gw, gv = _parts(g, 2)
    M = _eigh_M(gw, gv, as_array(w), as_array(v))
    if _is_zero(M):
        return _fit(np.zeros(np.shape(a)), a)
    return _fit(_lower_partial(M, UPLO), a)


def eigvalsh_vjp(g, ans, a, UPLO="L"):
    w, v = la.eigh(as_array(a), UPLO=UPLO)
    return _fit(_lower_partial(_eigh_M(g, 0.0, w, v), UPLO), a)


def _read_triangle(a, UPLO="L"):
    """The symmetric matrix eigh and eigvalsh see in a (they read one triangle)."""
    A = as_array(a)
    if np.iscomplexobj(A):              # Hermitian; LAPACK reads the diagonal's real part
        half = np.tril(A, -1) if UPLO.upper() == "L" else np.triu(A, 1)
        d = np.real(np.diagonal(A, axis1=-2, axis2=-1))
        return half + _H(half) + d[..., None, :] * np.eye(A.shape[-1])
    if UPLO.upper() == "L":
        return np.tril(A) + _matT(np.tril(A, -1))
    return np.triu(A) + _matT(np.triu(A, 1))


def _gaps(x, what):
    """F_ij = 1 / (x_j - x_i) off the diagonal, 0 on it; where two of the values x (along
    the last axis) coincide (to rounding), `what` has no derivative: a TranspileError."""
    n = x.shape[-1]
    eye = np.eye(n)
    diff = x[..., None, :] - x[..., :, None]
    scale = np.max(np.abs(x), axis=-1, keepdims=True)[..., None]
    if np.any((np.abs(diff) <= 64 * np.finfo(float).eps * scale) & (eye == 0)):
        raise TranspileError(f"{what} at repeated values: no derivative there (the "
                             f"vectors of a repeated value are not unique; for the values "
                             f"alone call eigvalsh, svdvals or svd(..., compute_uv=False))")
    return (1 - eye) / (diff + eye)


def _eigh_F(w):
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it (distinct eigenvalues)."""
    return _gaps(w, "the eigenvectors of numpy.linalg.eigh (and second derivatives of its "
                    "eigenvalues)")


def _eigh_tangent(w, v, da, UPLO, vectors=True):
    """(dw, dv) of eigh for the tangent da of its input (distinct eigenvalues); dv None
    for vectors=False."""
    P = _H(v) @ _read_triangle(da, UPLO) @ v
    dw = np.real(np.diagonal(P, axis1=-2, axis2=-1)).copy()
    return dw, (v @ (_eigh_F(w) * P) if vectors else None)


def _eigh_jvp(tangents, a, UPLO="L"):
    w, v = la.eigh(as_array(a), UPLO=UPLO)
    if not _given(tangents[0]):
        return [np.zeros_like(w), np.zeros_like(v)]
    return list(_eigh_tangent(w, v, tangents[0], UPLO))    # a NamedTuple's tangent: a list


def _eigh_vjp_jvp(tangents, g, ans, a, UPLO="L"):
    """The tangent of eigh's vjp lower(v diag(gw) v^T + v (F o v^T gv) v^T) along g and
    along (dw, dv), the tangent of ans = (w, v)."""
    dg, dans = _t(tangents, 0), _t(tangents, 1)
    terms = [None if dg is None else eigh_vjp(dg, ans, a, UPLO)]
    gw, gv = _parts(g, 2)
    if dans is not None and not (_is_zero(gw) and _is_zero(gv)):
        w, v = as_array(ans[0]), as_array(ans[1])
        dw, dv = (np.zeros_like(x) if _is_zero(t) else as_array(t)
                  for t, x in zip(_parts(dans, 2), (w, v)))
        dw = np.real(dw)
        vT, dvT, vc, dvc = _matT(v), _matT(dv), np.conj(v), np.conj(dv)
        dM = 0.0
        if not _is_zero(gw):
            Gw = np.real(as_array(gw))[..., None, :]
            dM = dM + (dvc * Gw) @ vT + (vc * Gw) @ dvT
        if not _is_zero(gv):
            F, C = _eigh_F(w), vT @ as_array(gv)
            K = F * C
            dK = -(F * F) * (dw[..., None, :] - dw[..., :, None]) * C + F * (dvT @ gv)
            dM = dM + dvc @ K @ vT + vc @ dK @ vT + vc @ K @ dvT
        terms.append(_fit(_lower_partial(dM, UPLO), a))
    return _plus(*terms)


def _eigvalsh_jvp(tangents, a, UPLO="L"):
    w, v = la.eigh(as_array(a), UPLO=UPLO)
    if not _given(tangents[0]):
        return np.zeros_like(w)
    return _eigh_tangent(w, v, tangents[0], UPLO, vectors=False)[0]


def _eigvalsh_vjp_jvp(tangents, g, ans, a, UPLO="L"):
    """The tangent of lower(v diag(g) v^T), v the eigenvectors of a."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    terms = [None if dg is None else eigvalsh_vjp(dg, ans, a, UPLO)]
    if da is not None and not _is_zero(g):
        w, v = la.eigh(as_array(a), UPLO=UPLO)
        dv = _eigh_tangent(w, v, da, UPLO)[1]
        G = np.real(as_array(g))[..., None, :]
        terms.append(_fit(_lower_partial((np.conj(dv) * G) @ _matT(v)
                                         + (np.conj(v) * G) @ _matT(dv), UPLO), a))
    return _plus(*terms)


# (complex Hermitian matrices: real eigenvalues, complex eigenvectors; a function of the
# eigenvectors is differentiable where it does not depend on their phases)
_def(la.eigh, eigh_vjp, params="a", ans=True, several=True, jvp=_eigh_jvp,
     vjp_tangents=[_eigh_vjp_jvp], complex="explicit")
_def(la.eigvalsh, eigvalsh_vjp, params="a", jvp=_eigvalsh_jvp,
     vjp_tangents=[_eigvalsh_vjp_jvp], complex="explicit", result="real")


def svdvals_vjp(g, ans, x):
    """conj(u diag(g) vh) (the gradient of s_k = Re(u_k^H x v_k); g real)."""
    u, s, vh = la.svd(as_array(x), full_matrices=False)
    return _fit(np.conj(np.matmul(u * np.real(as_array(g))[..., None, :], vh)), x)


def _svd_tangent(u, s, vh, dA, vectors=True):
    """(du, ds, dvh) of the thin SVD u diag(s) vh along dA (distinct nonzero singular
    values): with dP = u^H dA v and F_ij = 1 / (s_j^2 - s_i^2) off the diagonal,
    du = u (F o (dP S + S dP^H) + i Im diag(dP) S^-1) + (I - u u^H) dA v S^-1,
    ds = Re diag(dP), dv = v (F o (S dP + dP^H S)) + (I - v v^H) dA^H u S^-1 (for complex
    a, the phases of the vectors are fixed by giving u's the imaginary diagonal term)."""
    v = _H(vh)
    dA = _arr(dA)
    dP = _H(u) @ dA @ v
    ds = np.real(np.diagonal(dP, axis1=-2, axis2=-1)).copy()
    if not vectors:
        return None, ds, None
    F = _svd_F(s, u.shape[-2], v.shape[-2])
    col, row = s[..., None, :], s[..., :, None]            # X * col = X S, row * X = S X
    du = u @ (F * (dP * col + row * _H(dP)))
    dv = v @ (F * (row * dP + _H(dP) * col))
    if np.iscomplexobj(dP):
        du = du + u * (1j * np.imag(np.diagonal(dP, axis1=-2, axis2=-1)) / s)[..., None, :]
    k = s.shape[-1]
    if u.shape[-2] > k:             # (I - u u^H) dA v S^-1 (0 for a square u)
        du = du + (dA @ v - u @ (_H(u) @ dA @ v)) / col
    if v.shape[-2] > k:
        dv = dv + (_H(dA) @ u - v @ (vh @ _H(dA) @ u)) / col
    return du, ds, _H(dv)


def _svd_F(s, m, n):
    """F_ij = 1 / (s_j^2 - s_i^2) off the diagonal: the singular vectors need distinct
    singular values, and nonzero ones for a non-square matrix (a TranspileError else)."""
    what = "the singular vectors of numpy.linalg.svd (and second derivatives of svdvals)"
    k = s.shape[-1]
    if m != n and np.any(s[..., -1] <= 64 * np.finfo(float).eps * s[..., 0]):
        raise TranspileError(f"{what} of a non-square matrix with a zero singular value: "
                             f"no derivative there")
    return _gaps(s ** 2, what) if k > 1 else np.zeros(s.shape[:-1] + (1, 1))


def _svdvals_jvp(tangents, x):
    u, s, vh = la.svd(_arr(x), full_matrices=False)
    if not _given(tangents[0]):
        return np.zeros_like(s)
    return _svd_tangent(u, s, vh, tangents[0], vectors=False)[1]


def _svdvals_vjp_jvp(tangents, g, ans, x):
    """The tangent of u diag(g) vh along g and x."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    terms = [None if dg is None else svdvals_vjp(dg, ans, x)]
    if dx is not None and not _is_zero(g):
        u, s, vh = la.svd(_arr(x), full_matrices=False)
        du, _, dvh = _svd_tangent(u, s, vh, dx)
        G = np.real(as_array(g))[..., None, :]
        terms.append(_fit(np.conj((du * G) @ vh + (u * G) @ dvh), x))
    return _plus(*terms)


_def(la.svdvals, svdvals_vjp, params="x", jvp=_svdvals_jvp, vjp_tangents=[_svdvals_vjp_jvp],
     complex="explicit", result="real")


# --- svd ---------------------------------------------------------------------------------
# Reduced SVD a = u diag(s) vh (k = min(m, n), distinct nonzero singular values): the
# usual vjp (Townsend's note, autograd's grad_svd) and its tangent. full_matrices=True is
# the reduced SVD for a square a; for m != n the extra columns of u (m > n) or rows of vh
# (m < n) are any orthonormal completion LAPACK picks, with no derivative: a reverse pass
# that sends them a nonzero adjoint, and any forward pass, is refused.
def _svd_check(a, full_matrices, hermitian):
    if hermitian:
        raise TranspileError("numpy.linalg.svd with hermitian=True has no derivative rule "
                             "(it goes through eigh and reads one triangle): use "
                             "np.linalg.eigh, or hermitian=False")
    m, n = np.shape(a)[-2:]
    return full_matrices and m != n


def _svd_full_refusal():
    return TranspileError(
        "numpy.linalg.svd(a, full_matrices=True) of a non-square matrix: the extra "
        "singular vectors (the columns of u beyond min(m, n), or the rows of vh) are an "
        "arbitrary orthonormal completion and have no derivative; pass "
        "full_matrices=False")


def _svd_parts(g, ans, k):
    """(gu, gs, gv) of the reduced SVD as arrays (zeros where no adjoint flows), v = vh^T;
    None when the extra vectors of a full SVD receive a nonzero adjoint."""
    u, s, vh = (as_array(p) for p in ans)
    out = []
    for part, x in zip(_parts(g, 3), (u, s, vh)):
        out.append(np.zeros(x.shape) if _is_zero(part) else as_array(part))
    gu, gs, gvh = out
    if np.any(gu[..., :, k:]) or np.any(gvh[..., k:, :]):
        return None
    return gu[..., :, :k], np.real(gs), _H(gvh[..., :k, :])


def _svd_back(gu, gs, gv, u, s, v, d=None):
    """The vjp of the reduced SVD for the adjoints (gu, gs, gv) and, with d = (dgu, dgs,
    dgv, du, ds, dv), its tangent instead. With F_ij = 1 / (s_j^2 - s_i^2) off the diagonal,
    J = F o (u^T gu - gu^T u), K = F o (v^T gv - gv^T v), M = J S + diag(gs) + S K:
    u M v^T + (I - u u^T) gu S^-1 v^T + u S^-1 gv^T (I - v v^T)."""
    k = s.shape[-1]
    eye = np.eye(k)
    tall, wide = u.shape[-2] > k, v.shape[-2] > k       # the (I - u u^T), (I - v v^T) terms
    if not (np.any(gu) or np.any(gv)) and (d is None or not (np.any(d[0]) or np.any(d[2]))):
        F = np.zeros(s.shape[:-1] + (k, k))               # the singular values alone
    else:
        F = _svd_F(s, u.shape[-2], v.shape[-2])
    if np.iscomplexobj(u) or np.iscomplexobj(gu) or np.iscomplexobj(gv):
        return _svd_back_complex(gu, gs, gv, u, s, v, F, tall, wide, d)
    uT, vT = _matT(u), _matT(v)
    Cu, Cv = uT @ gu, vT @ gv
    J, K = F * (Cu - _matT(Cu)), F * (Cv - _matT(Cv))
    col, row = s[..., None, :], s[..., :, None]             # X * col = X S, row * X = S X
    M = J * col + eye * gs[..., :, None] + row * K
    Pu = gu - u @ Cu                                         # (I - u u^T) gu
    Pv = gv - v @ Cv                                         # (I - v v^T) gv
    if d is None:
        out = u @ M @ vT
        if tall:
            out = out + (Pu / col) @ vT
        if wide:
            out = out + u @ _matT(Pv / col)
        return out
    dgu, dgs, dgv, du, ds, dv = d
    duT, dvT = _matT(du), _matT(dv)
    dF = -(F * F) * 2 * (s[..., None, :] * ds[..., None, :] - s[..., :, None] * ds[..., :, None])
    dCu = duT @ gu + uT @ dgu
    dCv = dvT @ gv + vT @ dgv
    dJ = dF * (Cu - _matT(Cu)) + F * (dCu - _matT(dCu))
    dK = dF * (Cv - _matT(Cv)) + F * (dCv - _matT(dCv))
    dcol, drow = ds[..., None, :], ds[..., :, None]
    dM = dJ * col + J * dcol + eye * dgs[..., :, None] + drow * K + row * dK
    dPu = dgu - du @ Cu - u @ dCu
    dPv = dgv - dv @ Cv - v @ dCv
    out = du @ M @ vT + u @ dM @ vT + u @ M @ dvT
    if tall:
        out = out + (dPu / col - Pu * dcol / col ** 2) @ vT + (Pu / col) @ dvT
    if wide:
        out = out + du @ _matT(Pv / col) + u @ _matT(dPv / col - Pv * dcol / col ** 2)
    return out


def _svd_back_complex(gu, gs, gv, u, s, v, F, tall, wide, d=None):
    """The vjp of the reduced SVD of a complex matrix, as _svd_back's with conjugate
    transposes: with Gu = conj(gu), Gv = conj(gv), X = u^H Gu, Z = v^H Gv,
    Y = (F o (X - X^H)) S + diag(gs) + S (F o (Z - Z^H)) + i Im diag(X) S^-1 (the term of
    the vectors' phases), the adjoint is conj(u Y v^H + (I - u u^H) Gu S^-1 v^H
    + u S^-1 Gv^H (I - v v^H)); with d = (dgu, dgs, dgv, du, ds, dv) its tangent."""
    k = s.shape[-1]
    eye = np.eye(k)
    Gu, Gv = np.conj(gu), np.conj(gv)
    X, Z = _H(u) @ Gu, _H(v) @ Gv
    col, row = s[..., None, :], s[..., :, None]
    JX, KZ = F * (X - _H(X)), F * (Z - _H(Z))
    imX = np.imag(np.diagonal(X, axis1=-2, axis2=-1))
    Y = JX * col + eye * gs[..., :, None] + row * KZ + eye * (1j * imX / s)[..., None, :]
    Pu, Pv = Gu - u @ X, Gv - v @ Z
    if d is None:
        out = u @ Y @ _H(v)
        if tall:
            out = out + (Pu / col) @ _H(v)
        if wide:
            out = out + u @ _H(Pv / col)
        return np.conj(out)
    dgu, dgs, dgv, du, ds, dv = d
    ds = np.real(ds)
    dGu, dGv = np.conj(dgu), np.conj(dgv)
    dX, dZ = _H(du) @ Gu + _H(u) @ dGu, _H(dv) @ Gv + _H(v) @ dGv
    dF = -(F * F) * 2 * (s[..., None, :] * ds[..., None, :] - s[..., :, None] * ds[..., :, None])
    dcol, drow = ds[..., None, :], ds[..., :, None]
    dimX = np.imag(np.diagonal(dX, axis1=-2, axis2=-1))
    dY = ((dF * (X - _H(X)) + F * (dX - _H(dX))) * col + JX * dcol
          + eye * np.real(dgs)[..., :, None] + drow * KZ
          + row * (dF * (Z - _H(Z)) + F * (dZ - _H(dZ)))
          + eye * (1j * (dimX / s - imX * ds / s ** 2))[..., None, :])
    out = du @ Y @ _H(v) + u @ dY @ _H(v) + u @ Y @ _H(dv)
    if tall:
        dPu = dGu - du @ X - u @ dX
        out = out + (dPu / col - Pu * dcol / col ** 2) @ _H(v) + (Pu / col) @ _H(dv)
    if wide:
        dPv = dGv - dv @ Z - v @ dZ
        out = out + du @ _H(Pv / col) + u @ _H(dPv / col - Pv * dcol / col ** 2)
    return np.conj(out)


def svd_vjp(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    extra = _svd_check(a, full_matrices, hermitian)
    if not compute_uv:
        return svdvals_vjp(g, ans, a)
    u, s, vh = (as_array(p) for p in ans)
    k = s.shape[-1]
    parts = _svd_parts(g, ans, k)
    if parts is None:
        raise _svd_full_refusal()
    if extra:
        u, vh = u[..., :, :k], vh[..., :k, :]
    return _fit(_svd_back(*parts, u, s, _H(vh)), a)


def _svd_jvp(tangents, a, full_matrices=True, compute_uv=True, hermitian=False):
    extra = _svd_check(a, full_matrices, hermitian)
    if not compute_uv:
        return _svdvals_jvp(tangents, a)
    if extra:
        raise _svd_full_refusal()
    u, s, vh = la.svd(_arr(a), full_matrices=False)
    if not _given(tangents[0]):
        return [np.zeros_like(u), np.zeros_like(s), np.zeros_like(vh)]
    return list(_svd_tangent(u, s, vh, tangents[0]))      # a NamedTuple's tangent: a list


def _svd_vjp_jvp(tangents, g, ans, a, full_matrices=True, compute_uv=True,
                 hermitian=False):
    """The tangent of svd's vjp along g, along ans = (u, s, vh) and along a."""
    extra = _svd_check(a, full_matrices, hermitian)
    if not compute_uv:
        return _svdvals_vjp_jvp(tangents, g, ans, a)
    if extra:
        raise _svd_full_refusal()
    dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    u, s, vh = (as_array(p) for p in ans)
    k = s.shape[-1]
    parts = _svd_parts(g, ans, k)
    dparts = _svd_parts(dg, ans, k)
    if dans is None:
        if da is None:
            dans = (np.zeros(u.shape), np.zeros(s.shape), np.zeros(vh.shape))
        else:
            dans = _svd_tangent(u, s, vh, da)
    du, ds, dvh = (np.zeros(x.shape) if _is_zero(t) else as_array(t)
                   for t, x in zip(_parts(dans, 3), (u, s, vh)))
    return _fit(_svd_back(*parts, u, s, _H(vh), d=(*dparts, du, ds, _H(dvh))), a)


# (complex matrices: a function of the singular vectors is differentiable where it does not
# depend on their phases, u_k -> u_k e^(i t), v_k -> v_k e^(i t))
_def(la.svd, svd_vjp, None, None, None, params="a, full_matrices, compute_uv, hermitian",
     ans=True, several=True, jvp=_svd_jvp, vjp_tangents=[_svd_vjp_jvp], complex="explicit")


def _pinv_hermitian(rest, kw):
    """pinv(a, rcond, hermitian): with hermitian=True it reads a's lower triangle only."""
    return bool(kw.get("hermitian", rest[1] if len(rest) > 1 else False))


def _pinv_read(a, rest, kw):
    """The matrix pinv sees in a (the symmetric one of a's lower triangle for
    hermitian=True), and how a gradient with respect to it goes back to a."""
    if _pinv_hermitian(rest, kw):
        return _read_triangle(a, "L"), lambda M: _lower_partial(M, "L")
    return _arr(a), lambda M: M


def pinv_vjp(g, ans, a, *rest, **kw):
    """Pseudo-inverse of a matrix of constant rank: Golub & Pereyra's formula (for complex
    a, with conjugate transposes: the terms in da^H enter conjugated,
    -P^T G P^T + conj(Q G^T P P^H) + conj(P^H P G^T R))."""
    A, back = _pinv_read(a, rest, kw)
    Pi, G = as_array(ans), as_array(g)
    PT, PH, GT = _T(Pi), _H(Pi), _T(G)
    m, n = A.shape[-2], A.shape[-1]
    Q = np.eye(m) - np.matmul(A, Pi)
    R = np.eye(n) - np.matmul(Pi, A)
    r = (-np.matmul(np.matmul(PT, G), PT)
         + np.conj(np.matmul(np.matmul(Q, GT), np.matmul(Pi, PH)))
         + np.conj(np.matmul(np.matmul(PH, Pi), np.matmul(GT, R))))
    return _fit(back(r), a)


def _dpinv(A, P, dA):
    """The tangent of P = pinv(A) along dA (constant rank):
    -P dA P + P P^H dA^H (I - A P) + (I - P A) dA^H P^H P."""
    dA = _arr(dA)
    m, n = A.shape[-2], A.shape[-1]
    PH, dAH = _H(P), _H(dA)
    return (-(P @ dA @ P) + P @ PH @ dAH @ (np.eye(m) - A @ P)
            + (np.eye(n) - P @ A) @ dAH @ PH @ P)


def _pinv_jvp(tangents, a, *rest, **kw):
    if not _given(tangents[0]) or any(_given(t) for t in tangents[1:]):
        return jvp_by_vjps([pinv_vjp], la.pinv, (a,) + rest, tangents, **kw)
    A, _ = _pinv_read(a, rest, kw)
    dA = _read_triangle(tangents[0], "L") if _pinv_hermitian(rest, kw) else tangents[0]
    return _dpinv(A, la.pinv(A, *rest, **kw), dA)


def _pinv_vjp_jvp(tangents, g, ans, a, *rest, **kw):
    """The tangent of pinv's vjp -P^T G P^T + Q G^T P P^T + P^T P G^T R (Q = I - A P,
    R = I - P A, P = ans) along g, P and a."""
    dg, dP, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    terms = [None if dg is None else pinv_vjp(dg, ans, a, *rest, **kw)]
    if (da is not None or dP is not None) and not _is_zero(g):
        (A, back), P, G = _pinv_read(a, rest, kw), as_array(ans), as_array(g)
        dA = np.zeros(A.shape) if da is None else _arr(da)
        if da is not None and _pinv_hermitian(rest, kw):
            dA = _read_triangle(dA, "L")
        dP = _dpinv(A, P, dA) if dP is None else as_array(dP)
        m, n = A.shape[-2], A.shape[-1]
        PT, PH, GT, dPT, dPH = _matT(P), _H(P), _matT(G), _matT(dP), _H(dP)
        Q, R = np.eye(m) - A @ P, np.eye(n) - P @ A
        dQ, dR = -(dA @ P + A @ dP), -(dP @ A + P @ dA)
        d = (-(dPT @ G @ PT + PT @ G @ dPT)
             + np.conj(dQ @ GT @ P @ PH + Q @ GT @ (dP @ PH + P @ dPH))
             + np.conj((dPH @ P + PH @ dP) @ GT @ R + PH @ P @ GT @ dR))
        terms.append(_fit(back(d), a))
    return _plus(*terms)


_def(la.pinv, pinv_vjp, params="a", ans=True, jvp=_pinv_jvp, vjp_tangents=[_pinv_vjp_jvp],
     complex="explicit")


def matrix_power_vjp(g, ans, a, n):
    A = _arr(a)
    G = as_array(g)
    if n < 0:
        B = la.inv(A)
        gB = matrix_power_vjp(g, ans, B, -n)
        return _fit(inv_vjp(gB, B, A), a)
    if n == 0:
        return _fit(np.zeros_like(A), a)
    AT = _T(A)
    pows = [np.broadcast_to(np.eye(A.shape[-1]), A.shape)]
    for _ in range(n - 1):
        pows.append(np.matmul(pows[-1], AT))
    r = sum(np.matmul(np.matmul(pows[k], G), pows[n - 1 - k]) for k in range(n))
    return _fit(r, a)


def _power_tangent(B, dB, m):
    """The tangent of B^m along dB: the sum of B^j dB B^(m-1-j)."""
    pows = [np.broadcast_to(np.eye(B.shape[-1]), B.shape)]
    for _ in range(m - 1):
        pows.append(pows[-1] @ B)
    out = np.zeros(np.broadcast_shapes(B.shape, np.shape(dB)), dtype=np.result_type(B, dB))
    for j in range(m):
        out = out + pows[j] @ dB @ pows[m - 1 - j]
    return out


def _matrix_power_jvp(tangents, a, n):
    if not _given(tangents[0]):
        return 0.0
    A, dA = _arr(a), as_array(tangents[0])
    if n < 0:
        A, dA, n = la.inv(A), -(la.inv(A) @ dA @ la.inv(A)), -n
    return _power_tangent(A, dA, n)


def _power_vjp_tangent(G, dG, B, dB, m):
    """The tangent of the sum of P_k G P_(m-1-k) (P_j = (B^T)^j) along dG and dB."""
    BT, dBT = _matT(B), _matT(dB)
    P = [np.broadcast_to(np.eye(B.shape[-1]), B.shape)]
    for _ in range(m - 1):
        P.append(P[-1] @ BT)
    dP = [np.zeros(B.shape)] + [_power_tangent(BT, dBT, j) for j in range(1, m)]
    out = 0.0
    for k in range(m):
        out = out + dP[k] @ G @ P[m - 1 - k] + P[k] @ G @ dP[m - 1 - k]
        if dG is not None:
            out = out + P[k] @ dG @ P[m - 1 - k]
    return out


def _matrix_power_vjp_jvp(tangents, g, ans, a, n):
    """The tangent of matrix_power's vjp along g and a (n < 0 through inv)."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    if n == 0:
        return 0.0
    A = _arr(a)
    G = as_array(g) if not _is_zero(g) else np.zeros(A.shape)
    dA = np.zeros(A.shape) if da is None else as_array(da)
    dG = None if dg is None else as_array(dg)
    if n > 0:
        return _power_vjp_tangent(G, dG, A, dA, n)
    B = la.inv(A)
    dB = -(B @ dA @ B)
    gB = as_array(matrix_power_vjp(G, None, B, -n))
    dgB = _power_vjp_tangent(G, dG, B, dB, -n)
    BT, dBT = _matT(B), _matT(dB)
    return -(dBT @ gB @ BT + BT @ dgB @ BT + BT @ gB @ dBT)


_def(la.matrix_power, matrix_power_vjp, None, params="a, n", jvp=_matrix_power_jvp,
     vjp_tangents=[_matrix_power_vjp_jvp], complex="holomorphic")


def multi_dot_vjp(g, ans, arrays, **kw):
    mats = [as_array(m) for m in arrays]
    first_vec, last_vec = mats[0].ndim == 1, mats[-1].ndim == 1
    if first_vec:
        mats[0] = mats[0][None, :]
    if last_vec:
        mats[-1] = mats[-1][:, None]
    G = as_array(g)
    if first_vec:
        G = G[None, ...] if not last_vec else G.reshape(1, 1)
    if last_vec and not first_vec:
        G = G[..., None]
    out = []
    for i in range(len(mats)):
        left = np.eye(mats[0].shape[0])
        for m in mats[:i]:
            left = left @ m
        right = np.eye(mats[-1].shape[1])
        for m in reversed(mats[i + 1:]):
            right = m @ right
        out.append((left.T @ G @ right.T).reshape(np.shape(arrays[i])))
    return [_fit(o, x) for o, x in zip(out, arrays)]


def _multi_dot_jvp(da, arrays, **kw):
    terms = []
    for i, t in enumerate(da):
        if _given(t):
            mats = list(arrays)
            mats[i] = t
            terms.append(la.multi_dot(mats, **kw))
    return sum(terms[1:], terms[0]) if terms else 0.0


def _multi_dot_vjp_jvp(tangents, g, ans, arrays, **kw):
    """multi_dot is linear in each matrix: the tangent of its vjp along matrix j is the vjp
    with matrix j replaced by its tangent (for the other matrices)."""
    dg, da = _t(tangents, 0), _t(tangents, 2)
    out = [0.0] * len(arrays)
    if dg is not None:
        out = [_plus(o, t) for o, t in zip(out, multi_dot_vjp(dg, ans, arrays, **kw))]
    if da is not None and not _is_zero(g):
        for j, t in enumerate(da):
            if not _given(t):
                continue
            mats = list(arrays)
            mats[j] = as_array(t)
            part = multi_dot_vjp(g, None, mats, **kw)
            out = [o if i == j else _plus(o, part[i]) for i, o in enumerate(out)]
    return out


_def(la.multi_dot, multi_dot_vjp, params="arrays",
     jvp=_vjps_if_more(la.multi_dot, [multi_dot_vjp], _multi_dot_jvp),
     vjp_tangents=[_multi_dot_vjp_jvp], complex="holomorphic")


# --- norms -------------------------------------------------------------------------------
# Norms of complex values are real: their vjps take the real part of g, and the gradient of
# |z| is conj(z) / |z| (`_csign`), that of |z|^2 2 conj(z) (registry.COMPLEX).
def _csign(x):
    """The gradient of |x|: sign(x) for real x, conj(x) / |x| (0 at 0) for complex x."""
    if not np.iscomplexobj(x):
        return np.sign(x)
    m = np.abs(x)
    return np.where(m == 0, 0, np.conj(x) / np.where(m == 0, 1, m))


def _vector_norm_grad(x, ans, g, ord, axis, keepdims):
    ax = _axes(axis, x.ndim)
    n = _expand(ans, x.ndim, axis, keepdims)
    gg = _expand(np.real(g), x.ndim, axis, keepdims)
    if ord is None or ord == 2:
        safe = np.where(n == 0, 1, n)
        return np.where(n == 0, 0, np.conj(x) / safe) * gg
    if ord == 0:
        return np.zeros_like(x)
    if ord in (np.inf, -np.inf):
        mask = np.abs(x) == n                     # ties split evenly
        cnt = np.sum(mask, axis=ax, keepdims=True)
        return _csign(x) * mask * gg / np.maximum(cnt, 1)
    if ord == 1:
        return _csign(x) * gg
    p = float(ord)
    safe = np.where(n == 0, 1, n)
    r = _csign(x) * np.abs(x) ** (p - 1) / safe ** (p - 1)
    return np.where(n == 0, 0, r) * gg


def _matrix_norm_grad(x, ans, g, ord, axes, keepdims):
    a1, a2 = axes[0] % x.ndim, axes[1] % x.ndim
    xm = np.moveaxis(x, (a1, a2), (-2, -1))
    if keepdims:
        gm = np.moveaxis(as_array(g), (a1, a2), (-2, -1))[..., 0, 0]
        nm = np.moveaxis(as_array(ans), (a1, a2), (-2, -1))[..., 0, 0]
    else:
        gm, nm = as_array(g), as_array(ans)
    gm = np.real(gm)[..., None, None]
    nm = nm[..., None, None]
    if ord in (None, "fro"):
        r = np.where(nm == 0, 0, np.conj(xm) / np.where(nm == 0, 1, nm)) * gm
    elif ord in ("nuc", 2, -2):
        # (a complex x: the gradient of s_k = Re(u_k^H x v_k) is conj(u_k vh_k))
        u, s, vh = la.svd(xm, full_matrices=False)
        if ord == "nuc":
            r = np.conj(np.matmul(u, vh)) * gm
        else:
            k = 0 if ord == 2 else -1
            r = np.conj(u[..., :, k][..., :, None] * vh[..., k, :][..., None, :]) * gm
    elif ord in (1, -1, np.inf, -np.inf):
        rows = ord in (np.inf, -np.inf)
        sums = np.sum(np.abs(xm), axis=-1 if rows else -2, keepdims=True)
        mask = sums == nm
        mask = mask / np.sum(mask, axis=-2 if rows else -1, keepdims=True)
        r = _csign(xm) * mask * gm
    else:
        raise NotImplementedError(f"norm gradient for ord={ord!r}")
    return np.moveaxis(r, (-2, -1), (a1, a2))


def norm_vjp(g, ans, x, ord=None, axis=None, keepdims=False):
    xa = _arr(x)
    if axis is None:
        if ord is None:
            r = _vector_norm_grad(xa.ravel(), np.ravel(ans)[0], np.ravel(g)[0], None, None,
                                  False).reshape(xa.shape)
            return _fit(r, x)
        if xa.ndim == 2:
            axis = (0, 1)
        else:
            axis = tuple(range(xa.ndim))
    if isinstance(axis, (int, np.integer)) or len(axis) == 1:
        ax = axis if isinstance(axis, (int, np.integer)) else axis[0]
        return _fit(_vector_norm_grad(xa, ans, g, ord, ax, keepdims), x)
    return _fit(_matrix_norm_grad(xa, ans, g, ord, axis, keepdims), x)


def _pnorm_vjp_tangent(vjp, tangents, g, ans, x, p, axis, keepdims, *args):
    """The tangent of the p-norm's vjp sign(x) |x|^(p-1) g / n^(p-1) along g, x and
    n = ans: (p - 1) g (|x|^(p-2) dx / n^(p-1) - sign(x) |x|^(p-1) dn / n^p). For p < 2 it
    is unbounded where an element is 0: refused there."""
    dg, dans, dx = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    terms = [None if dg is None else vjp(dg, ans, x, *args)]
    if not _is_zero(g) and (dx is not None or dans is not None):
        X = _arr(x)
        if p < 2 and np.any(X == 0):
            raise TranspileError(f"second derivatives of a p-norm with p = {p:g} < 2 at a "
                                 f"vector with an element equal to 0 are unbounded")
        n = _expand(ans, X.ndim, axis, keepdims)
        safe = np.where(n == 0, 1, n)
        m = np.abs(X)
        d = 0.0
        if dx is not None and (np.iscomplexobj(X) or np.iscomplexobj(dx)):
            # the tangent of conj(x) |x|^(p-2): conj(dx) |x|^(p-2)
            # + (p - 2) conj(x) |x|^(p-4) Re(conj(x) dx) (p = 1 too: the 1-norm)
            dX = as_array(dx)
            ms = np.where(m == 0, 1, m)
            dz = np.conj(dX) * ms ** (p - 2) + (p - 2) * np.conj(X) * ms ** (p - 4) * np.real(
                np.conj(X) * dX)
            d = d + np.where(m == 0, 0, dz) / safe ** (p - 1)
        elif dx is not None:
            d = d + (p - 1) * m ** (p - 2) * as_array(dx) / safe ** (p - 1)
        if dans is not None:
            dn = _expand(np.real(dans), X.ndim, axis, keepdims)
            d = d - (p - 1) * _csign(X) * m ** (p - 1) * dn / safe ** p
        G = _expand(np.real(g), X.ndim, axis, keepdims)
        terms.append(_fit(np.where(n == 0, 0, d * G), x))
    return _plus(*terms)


def _masked_norm_vjp_tangent(vjp, tangents, g, ans, x, *args):
    """The tangent of the vjp of a norm built of |x| through a locally constant mask (the
    vector inf-norms, the matrix 1- and inf-norms): sign(x) W with W = mask g / count.
    For real x it is linear in g; for complex x, sign(x) = conj(x) / |x| varies too:
    W = the vjp at |x| (the same mask), and d sign(x) = conj(dx) / |x|
    - conj(x) Re(conj(x) dx) / |x|^3, unbounded at an element 0 that W weighs (refused)."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    terms = [None if dg is None else vjp(dg, ans, x, *args)]
    if np.iscomplexobj(x) and dx is not None and not _is_zero(g):
        X, dX = as_array(x), as_array(dx)
        W = as_array(vjp(g, ans, np.abs(X), *args))
        m = np.abs(X)
        if np.any((m == 0) & (W != 0)):
            raise TranspileError("second derivatives of a norm of complex values at an "
                                 "element equal to 0 are unbounded")
        ms = np.where(m == 0, 1, m)
        dsign = np.conj(dX) / ms - np.conj(X) * np.real(np.conj(X) * dX) / ms ** 3
        terms.append(_fit(np.where(m == 0, 0, W * dsign), x))
    return _plus(*terms)


def _p_order(ord):
    """ord as the number p of a vector p-norm without its own rule (not 0, 1, 2, inf),
    else None."""
    if isinstance(ord, (int, float, np.integer, np.floating)) and \
            not isinstance(ord, (bool, np.bool_)) and math.isfinite(ord) \
            and ord not in (0, 1, 2):
        return float(ord)
    return None


def _svd_norm_tangent(x, g, dx, ord, axes, keepdims):
    """The tangent along dx of the vjp of the nuclear (g u v^T) or spectral (g u_k v_k^T,
    k the largest or smallest singular value) norm of the matrices on `axes` of x, from the
    tangents of the thin SVD (distinct nonzero singular values)."""
    X = _arr(x)
    a1, a2 = axes[0] % X.ndim, axes[1] % X.ndim
    xm = np.moveaxis(X, (a1, a2), (-2, -1))
    dxm = np.moveaxis(np.broadcast_to(_arr(dx), X.shape), (a1, a2), (-2, -1))
    G = np.real(as_array(g))
    gm = np.moveaxis(G, (a1, a2), (-2, -1)) if keepdims else G[..., None, None]
    u, s, vh = la.svd(xm, full_matrices=False)
    du, _, dvh = _svd_tangent(u, s, vh, dxm)
    if ord == "nuc":
        d = du @ vh + u @ dvh
    else:
        k = 0 if ord == 2 else -1
        d = du[..., :, k, None] * vh[..., k, None, :] + u[..., :, k, None] * dvh[..., k, None, :]
    return _fit(np.moveaxis(np.conj(d) * gm, (-2, -1), (a1, a2)), x)


def _matrix_norm_vjp_tangent(vjp, tangents, g, ans, x, ord, axes, keepdims, *args):
    """The nuclear and spectral norms: the vjp along dg plus the term along dx."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    terms = [None if dg is None else vjp(dg, ans, x, *args)]
    if dx is not None and not _is_zero(g):
        terms.append(_svd_norm_tangent(x, g, dx, ord, axes, keepdims))
    return _plus(*terms)


def _norm_vjp_jvp(tangents, g, ans, x, ord=None, axis=None, keepdims=False):
    """norm: 2-norms and the Frobenius norm are scaled bilinear; 0-, 1- and inf-norms
    locally linear in g (sign and mask constant); other p-norms of vectors by their
    formula; the nuclear and spectral norms of matrices through the tangent of the SVD."""
    if not isinstance(axis, (int, np.integer)) and axis is not None and len(axis) == 1:
        vaxis = axis[0]
    else:
        vaxis = axis if axis is not None or np.ndim(x) != 1 else 0
    vector = isinstance(vaxis, (int, np.integer))
    if ord is None or ord == "fro" or (ord == 2 and vector):
        return _scaled_bilinear_jvp(norm_vjp)(tangents, g, ans, x, ord, axis, keepdims)
    if vector and ord == 1 and np.iscomplexobj(x):          # sum |x|: not piecewise linear
        return _pnorm_vjp_tangent(norm_vjp, tangents, g, ans, x, 1.0, vaxis, keepdims,
                                  ord, axis, keepdims)
    if ord in (0, 1, np.inf, -np.inf) or (not vector and ord == -1):
        return _masked_norm_vjp_tangent(norm_vjp, tangents, g, ans, x, ord, axis, keepdims)
    if vector and _p_order(ord) is not None:
        return _pnorm_vjp_tangent(norm_vjp, tangents, g, ans, x, _p_order(ord),
                                  vaxis, keepdims, ord, axis, keepdims)
    if not vector and ord in ("nuc", 2, -2):
        return _matrix_norm_vjp_tangent(norm_vjp, tangents, g, ans, x, ord,
                                        (0, 1) if axis is None else axis, keepdims,
                                        ord, axis, keepdims)
    raise TranspileError(f"second derivatives through numpy.linalg.norm with "
                         f"ord={ord!r} are not available yet")


_norm_jvp = _by_weights(la.norm, [norm_vjp, None, None, None],
                        lambda nd, ord=None, axis=None, keepdims=False, **kw: (
                            _axes(axis, nd), bool(keepdims)))
_def(la.norm, norm_vjp, None, None, None, params="x, ord, axis, keepdims", ans=True,
     jvp=_real_tangent(_norm_jvp), vjp_tangents=[_norm_vjp_jvp], complex="explicit",
     result="real")


def vector_norm_vjp(g, ans, x, axis=None, keepdims=False, ord=2):
    xa = _arr(x)
    if axis is None:
        r = _vector_norm_grad(xa.ravel(), np.ravel(ans)[0], np.ravel(g)[0], ord, None, False)
        return _fit(r.reshape(xa.shape), x)
    if not isinstance(axis, (int, np.integer)) and len(axis) > 1:
        ax = _axes(axis, xa.ndim)
        y, undo = _group_last(xa, ax)
        an = as_array(ans) if not keepdims else np.squeeze(ans, ax)
        gg = as_array(g) if not keepdims else np.squeeze(g, ax)
        # collapsing the axes of the reduced group; the result order of kept axes is unchanged
        r = _vector_norm_grad(y, an, gg, ord, -1, False)
        return _fit(undo(r), x)
    return _fit(_vector_norm_grad(xa, ans, g, ord, axis, keepdims), x)


def matrix_norm_vjp(g, ans, x, keepdims=False, ord="fro"):
    xa = _arr(x)
    return _fit(_matrix_norm_grad(xa, ans, g, ord, (-2, -1), keepdims), x)


def _vector_norm_vjp_jvp(tangents, g, ans, x, axis=None, keepdims=False, ord=2):
    """2-norms scaled bilinear, 0-, 1- and inf-norms locally linear in g, other p-norms
    over one axis or all (as norm's)."""
    if ord == 2:
        return _scaled_bilinear_jvp(vector_norm_vjp)(tangents, g, ans, x, axis, keepdims,
                                                     ord)
    if ord == 1 and np.iscomplexobj(x):                     # sum |x|: not piecewise linear
        return _pnorm_vjp_tangent(vector_norm_vjp, tangents, g, ans, x, 1.0, axis, keepdims,
                                  axis, keepdims, ord)
    if ord in (0, 1, np.inf, -np.inf):
        return _masked_norm_vjp_tangent(vector_norm_vjp, tangents, g, ans, x, axis, keepdims,
                                        ord)
    if _p_order(ord) is not None:
        return _pnorm_vjp_tangent(vector_norm_vjp, tangents, g, ans, x, _p_order(ord),
                                  axis, keepdims, axis, keepdims, ord)
    raise TranspileError(f"second derivatives through numpy.linalg.vector_norm with "
                         f"ord={ord!r} are not available yet")


def _matrix_norm_vjp_jvp(tangents, g, ans, x, keepdims=False, ord="fro"):
    """The Frobenius norm scaled bilinear, 1- and inf-norms locally linear in g, the
    nuclear and spectral norms through the tangent of the SVD."""
    if ord == "fro":
        return _scaled_bilinear_jvp(matrix_norm_vjp)(tangents, g, ans, x, keepdims, ord)
    if ord in (1, -1, np.inf, -np.inf):
        return _masked_norm_vjp_tangent(matrix_norm_vjp, tangents, g, ans, x, keepdims, ord)
    if ord in ("nuc", 2, -2):
        return _matrix_norm_vjp_tangent(matrix_norm_vjp, tangents, g, ans, x, ord, (-2, -1),
                                        keepdims, keepdims, ord)
    raise TranspileError(f"second derivatives through numpy.linalg.matrix_norm with "
                         f"ord={ord!r} are not available yet")


_def(la.vector_norm, vector_norm_vjp, params="x", ans=True,
     jvp=_real_tangent(_by_weights(la.vector_norm, [vector_norm_vjp],
                     lambda nd, axis=None, keepdims=False, **kw: (
                         _axes(axis, nd), bool(keepdims)))),
     vjp_tangents=[_vector_norm_vjp_jvp], complex="explicit", result="real")
_def(la.matrix_norm, matrix_norm_vjp, params="x", ans=True,
     jvp=_real_tangent(_by_weights(la.matrix_norm, [matrix_norm_vjp],
                                   lambda nd, keepdims=False, **kw: (
                                       (nd - 2, nd - 1), bool(keepdims)))),
     vjp_tangents=[_matrix_norm_vjp_jvp], complex="explicit", result="real")


# --- qr ----------------------------------------------------------------------------------
# a = q r, for m >= n (q: m x n, r: n x n upper triangular, invertible); a wide matrix
# [x y] (m < n) is q [r1 r2] with x = q r1 square and r2 = q^T y. The vjp of the square
# or tall case (Walter & Lehmann; Liao et al. 2019): with M = r gr^T - gq^T q and
# copyltu(M) = tril(M) + tril(M, -1)^T, ga = (gq + q copyltu(M)) r^-T. mode='complete'
# of a tall matrix appends an arbitrary orthonormal completion to q (no derivative) and
# zero rows to r.
def _copyltu(M):
    return np.tril(M) + _matT(np.tril(M, -1))


def _right_solve(X, R):
    """X R^-1 (R triangular)."""
    d = np.abs(np.diagonal(R, axis1=-2, axis2=-1))
    if np.any(d <= 64 * np.finfo(float).eps * np.max(d, axis=-1, keepdims=True)):
        raise TranspileError("numpy.linalg.qr of a matrix whose leading columns are "
                             "linearly dependent (r is singular): no derivative rule there")
    return _matT(la.solve(_matT(R), _matT(X)))


def _qr_mode(a, mode):
    if mode not in ("reduced", "complete", "r"):
        raise TranspileError(f"numpy.linalg.qr(a, mode={mode!r}) has no derivative rule: "
                             f"use mode='reduced', 'complete' or 'r'")
    m, n = np.shape(a)[-2:]
    return m, n, mode == "complete" and m > n


def _qr_refusal():
    return TranspileError("numpy.linalg.qr(a, mode='complete') of a tall matrix: the "
                          "columns of q beyond a's are an arbitrary orthonormal completion "
                          "and have no derivative; pass mode='reduced'")


def _qr_tall_tangent(q, r, da):
    """(dq, dr) of a = q r (m >= n) along da."""
    C = _matT(q) @ _right_solve(da, r)
    L = np.tril(C, -1)
    omega = L - _matT(L)
    return q @ omega + _right_solve(da - q @ (_matT(q) @ da), r), (C - omega) @ r


def _qr_tangent(q, r, a, da):
    """(dq, dr) of the reduced QR of a along da (q, r reduced)."""
    m, n = np.shape(a)[-2:]
    da = as_array(da, dtype=float)
    if m >= n:
        return _qr_tall_tangent(q, r, da)
    dq, dr1 = _qr_tall_tangent(q, r[..., :, :m], da[..., :, :m])
    dr2 = _matT(dq) @ as_array(a)[..., :, m:] + _matT(q) @ da[..., :, m:]
    return dq, np.concatenate([dr1, dr2], axis=-1)


def _qr_tall_back(gq, gr, q, r, d=None):
    """ga of a = q r (m >= n), or with d = (dgq, dgr, dq, dr) its tangent."""
    M = r @ _matT(gr) - _matT(gq) @ q
    B = gq + q @ _copyltu(M)
    ga = _right_solve(B, _matT(r))                     # B r^-T
    if d is None:
        return ga
    dgq, dgr, dq, dr = d
    dM = dr @ _matT(gr) + r @ _matT(dgr) - _matT(dgq) @ q - _matT(gq) @ dq
    dB = dgq + dq @ _copyltu(M) + q @ _copyltu(dM)
    return _right_solve(dB - ga @ _matT(dr), _matT(r))


def _qr_back(gq, gr, q, r, a, d=None):
    """The vjp of the reduced QR (q, r reduced), or with d = (dgq, dgr, dq, dr, da) its
    tangent; a wide a goes through its square left block."""
    m, n = np.shape(a)[-2:]
    if m >= n:
        return _qr_tall_back(gq, gr, q, r, None if d is None else d[:4])
    A = as_array(a, dtype=float)
    y, gr1, gr2 = A[..., :, m:], gr[..., :, :m], gr[..., :, m:]
    g1 = gq + y @ _matT(gr2)
    if d is None:
        return np.concatenate([_qr_tall_back(g1, gr1, q, r[..., :, :m]), q @ gr2], axis=-1)
    dgq, dgr, dq, dr, da = d
    dy = da[..., :, m:]
    dg1 = dgq + dy @ _matT(gr2) + y @ _matT(dgr[..., :, m:])
    dx = _qr_tall_back(g1, gr1, q, r[..., :, :m],
                       (dg1, dgr[..., :, :m], dq, dr[..., :, :m]))
    return np.concatenate([dx, dq @ gr2 + q @ dgr[..., :, m:]], axis=-1)


def _qr_adjoints(g, q, r, mode, k):
    """(gq, gr) for the reduced factors (zeros where none flows); None where the extra
    columns of a complete q receive a nonzero adjoint."""
    if mode == "r":
        gq, gr = 0.0, g
    else:
        gq, gr = _parts(g, 2)
    gq = np.zeros(q.shape) if _is_zero(gq) else as_array(gq, dtype=float)
    gr = np.zeros(r.shape) if _is_zero(gr) else as_array(gr, dtype=float)
    if np.any(gq[..., :, k:]):
        return None
    return gq[..., :, :k], gr[..., :k, :]              # r's extra rows are zeros


def _qr_factors(ans, a, mode):
    """The reduced (q, r) of a, from the result where it has them."""
    if mode == "r":
        return la.qr(as_array(a, dtype=float))
    q, r = (as_array(p) for p in ans)
    k = min(np.shape(a)[-2:])
    return q[..., :, :k], r[..., :k, :]


def qr_vjp(g, ans, a, mode="reduced"):
    m, n, _ = _qr_mode(a, mode)
    q, r = _qr_factors(ans, a, mode)
    adj = _qr_adjoints(g, q, r, mode, min(m, n))
    if adj is None:
        raise _qr_refusal()
    return _fit(_qr_back(*adj, q, r, a), a)


def _qr_jvp(tangents, a, mode="reduced"):
    m, n, extra = _qr_mode(a, mode)
    if extra:
        raise _qr_refusal()
    q, r = la.qr(as_array(a, dtype=float))
    dq, dr = ((np.zeros_like(q), np.zeros_like(r)) if not _given(tangents[0])
              else _qr_tangent(q, r, a, tangents[0]))
    return dr if mode == "r" else [dq, dr]                # a NamedTuple's tangent: a list


def _qr_vjp_jvp(tangents, g, ans, a, mode="reduced"):
    """The tangent of qr's vjp along g, along ans = (q, r) and along a."""
    m, n, extra = _qr_mode(a, mode)
    if extra:
        raise _qr_refusal()
    dg, dans, da = _t(tangents, 0), _t(tangents, 1), _t(tangents, 2)
    q, r = _qr_factors(ans, a, mode)
    k = min(m, n)
    da = np.zeros(np.shape(a)) if da is None else as_array(da, dtype=float)
    if dans is None or mode == "r":
        dq, dr = _qr_tangent(q, r, a, da)
    else:
        dq, dr = (np.zeros(x.shape) if _is_zero(t) else as_array(t, dtype=float)
                  for t, x in zip(_parts(dans, 2), (q, r)))
    adj, dadj = _qr_adjoints(g, q, r, mode, k), _qr_adjoints(dg, q, r, mode, k)
    return _fit(_qr_back(*adj, q, r, a, d=(*dadj, dq, dr, da)), a)


_def(la.qr, qr_vjp, None, params="a, mode", ans=True, several=True, jvp=_qr_jvp,
     vjp_tangents=[_qr_vjp_jvp])


# --- lstsq -------------------------------------------------------------------------------
# x, residuals, rank, s = lstsq(a, b): for a of full rank, x = pinv(a) b (through pinv's
# rules), residuals = the squared column norms of r = b - a x (given when rank = n < m;
# a^T r = 0 there, so their derivative does not go through x), s = svdvals(a). At a
# rank-deficient a the solution jumps with the rank: refused.
def _lstsq_setup(a, b, ans):
    A, Bv = as_array(a, dtype=float), as_array(b, dtype=float)
    x, res, rank, s = ans
    if int(rank) < min(A.shape):
        raise TranspileError(f"numpy.linalg.lstsq of a rank-deficient matrix (rank "
                             f"{int(rank)} of {min(A.shape)}): its solution is not "
                             f"differentiable there")
    vec = Bv.ndim == 1
    B = Bv[:, None] if vec else Bv
    X = as_array(x)[:, None] if vec else as_array(x)
    return A, B, X, la.pinv(A), B - A @ X, np.size(res) > 0, vec


def _lstsq_adjoints(g, ans, vec):
    """(gx, gres, gs) as arrays (x's as a matrix) or None where no adjoint flows."""
    gx, gres, _, gs = _parts(g, 4)
    if not _is_zero(gx) and vec:
        gx = as_array(gx)[:, None]
    return (None if _is_zero(gx) else as_array(gx, dtype=float),
            None if _is_zero(gres) or np.size(ans[1]) == 0 else as_array(gres, dtype=float),
            None if _is_zero(gs) else as_array(gs, dtype=float))


def _lstsq_vjp(i):
    def vjp(g, ans, a, b, rcond=None):
        A, B, X, P, r, has_res, vec = _lstsq_setup(a, b, ans)
        gx, gres, gs = _lstsq_adjoints(g, ans, vec)
        terms = []
        if i == 0:
            if gx is not None:
                terms.append(pinv_vjp(gx @ _matT(B), P, A))
            if gres is not None and has_res:
                terms.append(-2 * (r * gres) @ _matT(X))
            if gs is not None:
                terms.append(svdvals_vjp(gs, ans[3], A))
            return _fit(_plus(*terms) if terms else np.zeros(A.shape), a)
        if gx is not None:
            terms.append(_matT(P) @ gx)
        if gres is not None and has_res:
            terms.append(2 * r * gres)
        out = _plus(*terms) if terms else np.zeros(B.shape)
        return _fit(out[:, 0] if vec else out, b)
    return vjp


def _lstsq_tangent(A, B, X, P, da, db):
    """(dx, dP) as matrices along da and db (None for none)."""
    dA = np.zeros(A.shape) if da is None else as_array(da, dtype=float)
    dP = _dpinv(A, P, dA)
    dX = dP @ B + (0.0 if db is None else P @ db)
    return dX, dP, dA


def _as_matrix(t, vec):
    return None if t is None else (as_array(t, dtype=float)[:, None] if vec else
                                   as_array(t, dtype=float))


def _lstsq_jvp(tangents, a, b, rcond=None):
    ans = la.lstsq(a, b, rcond=rcond)
    A, B, X, P, r, has_res, vec = _lstsq_setup(a, b, ans)
    da, db = _t(tangents, 0), _as_matrix(_t(tangents, 1), vec)
    dX, dP, dA = _lstsq_tangent(A, B, X, P, da, db)
    dres = np.zeros(np.shape(ans[1]))
    if has_res:
        dres = 2 * np.sum(r * ((0.0 if db is None else db) - dA @ X), axis=0)
    ds = np.zeros(np.shape(ans[3])) if da is None else _svdvals_jvp([da], A)
    return dX[:, 0] if vec else dX, dres, 0.0, ds


def _lstsq_vjp_jvp(i):
    """The tangent of lstsq's vjp i along g, ans (through x) and a, b."""
    def tangent(tangents, g, ans, a, b, rcond=None):
        A, B, X, P, r, has_res, vec = _lstsq_setup(a, b, ans)
        dg, da, db = _t(tangents, 0), _t(tangents, 2), _as_matrix(_t(tangents, 3), vec)
        gx, gres, gs = _lstsq_adjoints(g, ans, vec)
        dgx, dgres, dgs = (_lstsq_adjoints(dg, ans, vec) if dg is not None
                           else (None, None, None))
        dX, dP, dA = _lstsq_tangent(A, B, X, P, da, db)
        dB = np.zeros(B.shape) if db is None else db
        dr = dB - dA @ X - A @ dX
        zero = lambda t, x: np.zeros(np.shape(x)) if t is None else t      # noqa: E731
        terms = []
        if i == 0:
            if gx is not None or dgx is not None:
                G = zero(gx, X) @ _matT(B)
                dG = zero(dgx, X) @ _matT(B) + zero(gx, X) @ _matT(dB)
                terms.append(_pinv_vjp_jvp([dG, dP, dA], G, P, A))
            if has_res and (gres is not None or dgres is not None):
                gr, dgr = zero(gres, ans[1]), zero(dgres, ans[1])
                terms.append(-2 * ((dr * gr + r * dgr) @ _matT(X) + (r * gr) @ _matT(dX)))
            if gs is not None or dgs is not None:
                terms.append(_svdvals_vjp_jvp([dgs, None, da], zero(gs, ans[3]), ans[3], A))
            return _fit(_plus(*terms) if terms else np.zeros(A.shape), a)
        if gx is not None or dgx is not None:
            terms.append(_matT(dP) @ zero(gx, X) + _matT(P) @ zero(dgx, X))
        if has_res and (gres is not None or dgres is not None):
            terms.append(2 * (dr * zero(gres, ans[1]) + r * zero(dgres, ans[1])))
        out = _plus(*terms) if terms else np.zeros(B.shape)
        return _fit(out[:, 0] if vec else out, b)
    return tangent


_def(la.lstsq, _lstsq_vjp(0), _lstsq_vjp(1), None, params="a, b, rcond", ans=True,
     several=True, jvp=_lstsq_jvp, vjp_tangents=[_lstsq_vjp_jvp(0), _lstsq_vjp_jvp(1)])


# --- eig, eigvals ------------------------------------------------------------------------
# a = v diag(w) v^-1 with unit-norm eigenvectors and distinct eigenvalues, real or complex
# (a real matrix's spectrum may be complex: the rules declare result='complex'). With
# F_ij = 1 / (w_j - w_i) off the diagonal, P = v^-1 da v: dw = diag(P), dv = v (F o P)
# less each column's component along itself, v_k v_k^H dv_k (the norms stay 1; for complex
# vectors this also fixes their phases: a function of them is differentiable where it does
# not depend on the phases). The map da -> (dw, dv) is complex-linear, and the vjp is
# v^-T (diag(gw) + F o (v^T gv')) v^T with gv' = gv - conj(v) diag(diag(v^T gv)).
def _eig_parts(a):
    return la.eig(_arr(a))


def _eig_F(w):
    return _gaps(w, "numpy.linalg.eig / eigvals")


def _eig_tangent(w, v, da):
    P = _inv_or_refuse(v, "numpy.linalg.eig (eigenvectors)") @ _arr(da) @ v
    dv = v @ (_eig_F(w) * P)
    dv = dv - v * np.sum(np.conj(v) * dv, axis=-2, keepdims=True)
    return np.diagonal(P, axis1=-2, axis2=-1).copy(), dv


def _eig_back(gw, gv, w, v, d=None):
    """The vjp for (gw, gv), or with d = (dgw, dgv, dw, dv) its tangent."""
    F, vi, vT = _eig_F(w), _inv_or_refuse(v, "numpy.linalg.eig (eigenvectors)"), _matT(v)
    eye = np.eye(w.shape[-1])
    h = np.diagonal(vT @ gv, axis1=-2, axis2=-1)[..., None, :]
    gv1 = gv - np.conj(v) * h
    C = vT @ gv1
    mid = eye * gw[..., None, :] + F * C
    if d is None:
        return _matT(vi) @ mid @ vT
    dgw, dgv, dw, dv = d
    dvT = _matT(dv)
    dh = np.diagonal(dvT @ gv + vT @ dgv, axis1=-2, axis2=-1)[..., None, :]
    dgv1 = dgv - np.conj(dv) * h - np.conj(v) * dh
    dC = dvT @ gv1 + vT @ dgv1
    dF = -(F * F) * (dw[..., None, :] - dw[..., :, None])
    dmid = eye * dgw[..., None, :] + dF * C + F * dC
    dvi = -(vi @ dv @ vi)
    return _matT(dvi) @ mid @ vT + _matT(vi) @ dmid @ vT + _matT(vi) @ mid @ dvT


def _eig_adjoints(g, w, v, values_only):
    parts = [g, 0.0] if values_only else _parts(g, 2)
    return [np.zeros(x.shape) if _is_zero(p) else as_array(p)
            for p, x in zip(parts, (w, v))]


def _eig_vjp(values_only):
    def vjp(g, ans, a):
        if _is_zero(g):
            return _fit(np.zeros(np.shape(a)), a)
        w, v = _eig_parts(a)
        return _fit(_eig_back(*_eig_adjoints(g, w, v, values_only), w, v), a)
    return vjp


def _eig_jvp(values_only):
    def jvp(tangents, a):
        w, v = _eig_parts(a)
        if not _given(tangents[0]):
            dw, dv = np.zeros(w.shape), np.zeros(v.shape)
        else:
            dw, dv = _eig_tangent(w, v, tangents[0])
        return dw if values_only else [dw, dv]           # a NamedTuple's tangent: a list
    return jvp


def _eig_vjp_jvp(values_only):
    def tangent(tangents, g, ans, a):
        """The tangent of eig's vjp along g and a (through w and v)."""
        dg, da = _t(tangents, 0), _t(tangents, 2)
        if _is_zero(g) and dg is None:
            return 0.0
        w, v = _eig_parts(a)
        dw, dv = ((np.zeros(w.shape), np.zeros(v.shape)) if da is None
                  else _eig_tangent(w, v, da))
        d = (*_eig_adjoints(0.0 if dg is None else dg, w, v, values_only), dw, dv)
        return _fit(_eig_back(*_eig_adjoints(g, w, v, values_only), w, v, d=d), a)
    return tangent


_def(la.eig, _eig_vjp(False), params="a", several=True, jvp=_eig_jvp(False),
     vjp_tangents=[_eig_vjp_jvp(False)], complex="explicit", result="complex")
_def(la.eigvals, _eig_vjp(True), params="a", jvp=_eig_jvp(True),
     vjp_tangents=[_eig_vjp_jvp(True)], complex="explicit", result="complex")


# --- tensorinv, tensorsolve: inv and solve of a reshaped (and, for tensorsolve's axes=,
# transposed) matrix, through their rules ------------------------------------------------
def _reshaped(t, shape):
    return None if t is None else np.reshape(_arr(t), shape)


def _tensorinv_matrix(a, ind):
    shape = np.shape(a)
    rows = math.prod(shape[ind:])
    return (rows, math.prod(shape) // max(rows, 1)), shape


def tensorinv_vjp(g, ans, a, ind=2):
    mshape, shape = _tensorinv_matrix(a, ind)
    r = inv_vjp(np.reshape(g, mshape), np.reshape(ans, mshape), np.reshape(_arr(a), mshape))
    return _fit(np.reshape(r, shape), a)


def _tensorinv_jvp(tangents, a, ind=2):
    if not _given(tangents[0]):
        return 0.0
    mshape, shape = _tensorinv_matrix(a, ind)
    d = _dinv(np.reshape(_arr(a), mshape), _reshaped(tangents[0], mshape))
    return d.reshape(shape[ind:] + shape[:ind])


def _tensorinv_vjp_jvp(tangents, g, ans, a, ind=2):
    mshape, shape = _tensorinv_matrix(a, ind)
    ts = [_reshaped(_t(tangents, 0), mshape), _reshaped(_t(tangents, 1), mshape)]
    if ts[1] is None and _t(tangents, 2) is not None:        # the tangent of ans from a's
        ts[1] = _dinv(np.reshape(_arr(a), mshape), _reshaped(_t(tangents, 2), mshape))
    d = _inv_vjp_jvp(ts, np.reshape(g, mshape), np.reshape(ans, mshape), None)
    return 0.0 if _is_zero(d) else _fit(np.reshape(d, shape), a)


_def(la.tensorinv, tensorinv_vjp, None, params="a, ind", ans=True, jvp=_tensorinv_jvp,
     vjp_tangents=[_tensorinv_vjp_jvp], complex="holomorphic")


def _tensorsolve_setup(a, b, axes):
    """(the matrix A, b as a vector, undo: an adjoint of A back to a's layout)."""
    A = _arr(a)
    perm = list(range(A.ndim))
    if axes is not None:
        for k in axes:
            perm.remove(k)
            perm.insert(A.ndim, k)
    At = np.transpose(A, perm)
    n = math.prod(At.shape[np.ndim(b):])
    inverse = np.argsort(perm)

    def undo(M):
        return np.transpose(np.reshape(M, At.shape), inverse)

    def to_matrix(T):
        return None if T is None else np.reshape(np.transpose(_arr(T), perm), (n, n))
    return np.reshape(At, (n, n)), np.ravel(b), undo, to_matrix


def tensorsolve_vjp_a(g, ans, a, b, axes=None):
    A, bv, undo, _ = _tensorsolve_setup(a, b, axes)
    return _fit(undo(solve_vjp_a(np.ravel(g), np.ravel(ans), A, bv)), a)


def tensorsolve_vjp_b(g, ans, a, b, axes=None):
    A, bv, _, _ = _tensorsolve_setup(a, b, axes)
    return _fit(np.reshape(solve_vjp_b(np.ravel(g), np.ravel(ans), A, bv), np.shape(b)), b)


def _tensorsolve_jvp(tangents, a, b, axes=None):
    A, bv, _, to_matrix = _tensorsolve_setup(a, b, axes)
    db = _t(tangents, 1)
    d = _solve_jvp([to_matrix(_t(tangents, 0)), None if db is None else np.ravel(db)], A, bv)
    shape = np.shape(la.tensorsolve(a, b, axes))
    return 0.0 if _is_zero(d) else np.reshape(d, shape)


def _tensorsolve_vjp_tangent(i):
    """The tangents of solve's vjps on the reshaped operands."""
    def tangent(tangents, g, ans, a, b, axes=None):
        A, bv, undo, to_matrix = _tensorsolve_setup(a, b, axes)
        ravel = lambda t: None if t is None else np.ravel(t)               # noqa: E731
        ts = [ravel(_t(tangents, 0)), ravel(_t(tangents, 1)), to_matrix(_t(tangents, 2)),
              ravel(_t(tangents, 3))]
        if ts[1] is None and (ts[2] is not None or ts[3] is not None):
            ts[1] = _solve_jvp([ts[2], ts[3]], A, bv)
            ts[1] = None if _is_zero(ts[1]) else ts[1]
        fn = _solve_vjp_a_jvp if i == 0 else _solve_vjp_b_jvp
        d = fn(ts, np.ravel(g), np.ravel(ans), A, bv)
        if _is_zero(d):
            return 0.0
        return _fit(undo(d), a) if i == 0 else _fit(np.reshape(d, np.shape(b)), b)
    return tangent


_def(la.tensorsolve, tensorsolve_vjp_a, tensorsolve_vjp_b, None, params="a, b, axes",
     ans=True, jvp=_tensorsolve_jvp,
     vjp_tangents=[_tensorsolve_vjp_tangent(0), _tensorsolve_vjp_tangent(1)], complex="holomorphic")


# --- cond --------------------------------------------------------------------------------
# p None, 2, -2: a ratio of the largest and smallest singular values (svdvals' rules);
# other p: norm(x, p) norm(inv(x), p) over the last two axes (norm's and inv's rules).
_LAST2 = (-2, -1)


def _cond_svd_weights(g, s, ds, dg, p):
    """The adjoint gs of the singular values for c = s_0 / s_k (p = -2: s_k / s_0) and, for
    the tangents ds of s and dg of g, its tangent dgs."""
    i, j = (-1, 0) if p == -2 else (0, -1)          # c = s_i / s_j
    si, sj = s[..., i], s[..., j]
    G = np.real(as_array(g))
    gs = np.zeros(s.shape)
    gs[..., i] = G / sj
    gs[..., j] = gs[..., j] - G * si / sj ** 2
    if ds is None:
        return gs, None
    dsi, dsj = ds[..., i], ds[..., j]
    dG = 0.0 if dg is None else np.real(as_array(dg))
    dgs = np.zeros(s.shape)
    dgs[..., i] = dG / sj - G * dsj / sj ** 2
    dgs[..., j] = dgs[..., j] - dG * si / sj ** 2 - G * dsi / sj ** 2 \
        + 2 * G * si * dsj / sj ** 3
    return gs, dgs


def cond_vjp(g, ans, x, p=None):
    X = _arr(x)
    if p is None or p in (2, -2):
        s = la.svd(X, compute_uv=False)
        return svdvals_vjp(_cond_svd_weights(g, s, None, None, p)[0], s, x)
    xi = la.inv(X)
    n1, n2 = la.norm(X, p, _LAST2), la.norm(xi, p, _LAST2)
    G = np.real(as_array(g))
    return _fit(as_array(norm_vjp(G * n2, n1, X, p, _LAST2))
                + as_array(inv_vjp(norm_vjp(G * n1, n2, xi, p, _LAST2), xi, X)), x)


def _cond_jvp(tangents, x, p=None):
    if not _given(tangents[0]):
        return 0.0
    X, dx = _arr(x), _arr(tangents[0])
    if p is None or p in (2, -2):
        s = la.svd(X, compute_uv=False)
        ds = _svdvals_jvp([dx], X)
        i, j = (-1, 0) if p == -2 else (0, -1)
        return ds[..., i] / s[..., j] - s[..., i] * ds[..., j] / s[..., j] ** 2
    xi = la.inv(X)
    n1, n2 = la.norm(X, p, _LAST2), la.norm(xi, p, _LAST2)
    return np.real(_norm_jvp([dx], X, p, _LAST2) * n2
                   + n1 * _norm_jvp([-(xi @ dx @ xi)], xi, p, _LAST2))


def _cond_vjp_jvp(tangents, g, ans, x, p=None):
    """The tangent of cond's vjp along g and x (through the singular values, or through
    the two norms and the inverse)."""
    dg, dx = _t(tangents, 0), _t(tangents, 2)
    X = _arr(x)
    dX = np.zeros(X.shape) if dx is None else _arr(dx)
    if p is None or p in (2, -2):
        s = la.svd(X, compute_uv=False)
        gs, dgs = _cond_svd_weights(g, s, _svdvals_jvp([dX], X), dg, p)
        return _svdvals_vjp_jvp([dgs, None, dx], gs, s, x)
    xi = la.inv(X)
    dxi = -(xi @ dX @ xi)
    n1, n2 = la.norm(X, p, _LAST2), la.norm(xi, p, _LAST2)
    dn1, dn2 = (np.real(_norm_jvp([dX], X, p, _LAST2)),
                np.real(_norm_jvp([dxi], xi, p, _LAST2)))
    G = np.real(as_array(g))
    dG = 0.0 if dg is None else np.real(as_array(dg))
    first = _norm_vjp_jvp([dG * n2 + G * dn2, dn1, dX], G * n2, n1, X, p, _LAST2)
    G2 = norm_vjp(G * n1, n2, xi, p, _LAST2)
    dG2 = _norm_vjp_jvp([dG * n1 + G * dn1, dn2, dxi], G * n1, n2, xi, p, _LAST2)
    second = _inv_vjp_jvp([dG2, dxi], G2, xi, X)
    return _fit(as_array(first) + as_array(second), x)


_def(la.cond, cond_vjp, None, params="x, p", jvp=_cond_jvp, vjp_tangents=[_cond_vjp_jvp],
     complex="explicit", result="real")
