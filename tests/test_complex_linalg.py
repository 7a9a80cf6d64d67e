"""numpy.linalg and the reductions on complex values, in autograd's convention (registry.COMPLEX:
the gradient of a real f of z = x + iy is df/dx - i df/dy, a real argument's gradient is
real).

Every program is checked in every mode against central differences: the gradient along the
real and the imaginary axis of each element, the tangent (transpile.jvp) along a complex
direction, and both Hessian-vector routes against the difference of the gradient. Programs
mix complex and real arguments (a real argument's gradient must come out real)."""
import numpy as np
import pytest

import transpile
from test_complex import fd_grad          # df/dx - i df/dy of each element (df/dx if real)

rng = np.random.default_rng(11)


def C(*shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def CWELL(n, batch=()):
    """A well-conditioned complex square matrix."""
    return 2.0 * np.eye(n) + 0.3 * C(*batch, n, n)


def HPD(n, batch=()):
    """A complex Hermitian positive definite matrix with well-separated eigenvalues."""
    b = C(*batch, n, n)
    return b @ np.conj(np.swapaxes(b, -1, -2)) / n + np.diag(np.arange(1.0, n + 1))


def close(a, b, tol=1e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    assert np.allclose(a, b, rtol=tol, atol=tol * scale), (a, b)


def direction(x):
    v = rng.normal(size=np.shape(x)) + (1j * rng.normal(size=np.shape(x))
                                         if np.iscomplexobj(x) else 0)
    if not np.ndim(x):
        v = complex(v) if np.iscomplexobj(x) else float(v)
    return v


def check(f, args, mode, wrt=None):
    """f's derivative in `mode` with respect to each argument in wrt (default all)."""
    for i in (range(len(args)) if wrt is None else wrt):
        x = args[i]
        if mode == "reverse":
            g = transpile.grad(f, wrt=i)(*args)
            close(g, fd_grad(f, args, i))
            assert np.iscomplexobj(x) or not np.iscomplexobj(g), "a real argument's " \
                "gradient is real"
            continue
        v = direction(x)

        def at(s, fn):
            a = list(args)
            a[i] = x + s * v
            return fn(*a)
        if mode == "forward":
            tangents = [None] * len(args)
            tangents[i] = v
            value, t = transpile.jvp(f, args, tangents)
            eps = 1e-6
            close(value, f(*args))
            close(t, (at(eps, f) - at(-eps, f)) / (2 * eps))
            continue
        hv = transpile.hvp(f, wrt=i, mode=mode)(*args, v=v)
        grad, eps = transpile.grad(f, wrt=i), 1e-5
        close(hv, (at(eps, grad) - at(-eps, grad)) / (2 * eps), 1e-4)


MODES = ["reverse", "forward", "forward-over-reverse", "reverse-over-forward"]


# --- 1. holomorphic rules: the real formulas hold as written -----------------------------
def solve_program(a, b):
    x = np.linalg.solve(a, b)
    return np.sum(np.abs(x) ** 2)


def solve_matrix_program(a, b):
    return np.real(np.sum(np.sin(np.linalg.solve(a, b)) * (0.3 - 0.8j)))


def inv_det_program(a):
    return np.abs(np.linalg.det(a)) + np.real(np.sum(np.linalg.inv(a) * np.conj(a)))


def det_program(a):
    return np.sum(np.real(np.linalg.det(a) * (0.4 + 0.9j)) + np.imag(np.linalg.det(a * a)))


def matrix_power_program(a):
    return np.sum(np.abs(np.linalg.matrix_power(a, 3))) + \
        np.real(np.sum(np.linalg.matrix_power(a, -2)))


def multi_dot_program(a, b, c):
    return np.sum(np.abs(np.linalg.multi_dot([a, b, c])) ** 2)


def tensor_program(a, b):
    return np.sum(np.abs(np.linalg.tensorsolve(a, b)) ** 2) + \
        np.real(np.sum(np.linalg.tensorinv(a, ind=1) * (1 - 0.5j)))


def cumprod_program(z):
    c = np.cumprod(z)               # (|c|^2 as c conj(c): smooth where c is 0)
    return np.real(np.sum(c * np.conj(c)) + np.sum(np.cumprod(z * z, axis=0)))


def trace_diagonal_program(a):
    return np.abs(np.trace(a @ a)) + np.sum(np.abs(np.diagonal(a)) ** 3)


HOLOMORPHIC = [
    (solve_program, lambda: [CWELL(3), C(3)]),
    (solve_program, lambda: [2.0 * np.eye(3) + 0.3 * rng.normal(size=(3, 3)), C(3)]),
    (solve_matrix_program, lambda: [CWELL(3, (2,)), C(2, 3, 2)]),
    (inv_det_program, lambda: [CWELL(3)]),
    (det_program, lambda: [CWELL(3, (2,))]),
    (matrix_power_program, lambda: [0.5 * CWELL(3)]),
    (multi_dot_program, lambda: [C(2, 3), C(3, 3), rng.normal(size=(3, 2))]),
    (tensor_program, lambda: [CWELL(4).reshape(4, 2, 2), C(4)]),
    (cumprod_program, lambda: [C(2, 3)]),
    (cumprod_program, lambda: [np.array([[1 + 1j, 0.0, 2 - 1j], [0.5j, 1.0, -1 + 0.3j]])]),
    (trace_diagonal_program, lambda: [C(3, 3)]),
]



# --- 2. explicit rules: products that conjugate an argument, real results ----------------
def vdot_program(a, b):
    v = np.vdot(a, b)
    return np.real(v * (0.3 + 0.6j)) + np.abs(v) ** 2


def vecdot_program(a, b):
    return np.sum(np.abs(np.vecdot(a, b)) ** 2) + np.real(np.sum(
        np.linalg.vecdot(b[0], a, axis=-1) * (1 - 2j)))


def correlate_program(a, v):
    return np.sum(np.abs(np.correlate(a, v, "full")) ** 2) + np.real(np.sum(
        np.correlate(a, v) * (0.5 + 1j)))


def convolve_program(a, v):
    return np.sum(np.abs(np.convolve(a, v)) ** 2) + np.real(np.sum(
        np.convolve(v, a, "same") * (0.5 - 1j)))


def var_std_program(z):
    return np.var(z) + np.sum(np.var(z, axis=0, ddof=1) ** 2) + np.std(z) + \
        np.sum(np.sin(np.std(z, axis=1, keepdims=True)))


def nan_var_std_program(z):
    return np.nanvar(z) + np.sum(np.nanstd(z, axis=0) ** 3)


def matvec_vecmat_program(a, v):
    return np.sum(np.abs(np.vecmat(v, a)) ** 2) + np.real(np.sum(np.matvec(a, v) * (1 - 1j)))


def extrema_program(z):
    return np.abs(np.max(z)) ** 2 + np.sum(np.abs(np.min(z, axis=0))) + np.real(np.sum(
        np.amax(z, axis=1, keepdims=True) * (1 + 1j))) + np.abs(np.nanmin(z) + np.amin(z))


def real_if_close_program(z, x):
    # the imaginary parts of x * 1e-16j are dropped, those of z kept
    return np.real(np.sum(np.real_if_close(z) * (1 + 1j))) + np.sum(
        np.sin(np.real_if_close(x + x * 1e-16j)))


PRODUCTS = [
    (real_if_close_program, lambda: [C(3), rng.normal(size=3)]),
    (extrema_program, lambda: [C(3, 4)]),
    *([(matvec_vecmat_program, lambda: [C(2, 3, 3), C(3)])] if hasattr(np, "vecmat") else []),
    (vdot_program, lambda: [C(2, 3), C(2, 3)]),
    (vdot_program, lambda: [rng.normal(size=4), C(4)]),
    (vecdot_program, lambda: [C(2, 3), C(2, 3)]),
    (correlate_program, lambda: [C(5), C(3)]),
    (correlate_program, lambda: [C(3), rng.normal(size=4)]),
    (convolve_program, lambda: [C(4), C(3)]),
    (var_std_program, lambda: [C(3, 4)]),
    (nan_var_std_program, lambda: [C(3, 2)]),
]



def test_var_of_complex_is_the_mean_squared_modulus():
    """np.var of complex z is mean |z - mean z|^2: its gradient 2 conj(z - mean z) / n."""
    z = C(5)
    close(transpile.grad(_var)(z), 2 * np.conj(z - z.mean()) / 5)


def _var(z):
    return np.var(z)


# --- norms of complex values (real results) ----------------------------------------------
def vector_norms_program(z):
    return (np.linalg.norm(z) + np.linalg.norm(z, 1) + np.linalg.norm(z, 3)
            + np.linalg.norm(z, 2.5) ** 2 + np.linalg.norm(z, 0)
            + np.linalg.vector_norm(z, ord=1) + np.sin(np.linalg.vector_norm(z)))


def axis_norms_program(z):
    return (np.sum(np.linalg.norm(z, axis=0) ** 2) + np.sum(np.cos(np.linalg.norm(z, 3, axis=1)))
            + np.sum(np.linalg.norm(z, axis=1, keepdims=True))
            + np.sum(np.linalg.vector_norm(z, axis=0, ord=1))
            + np.sum(np.linalg.vector_norm(z, axis=(0, 1))))


def matrix_norms_program(z):
    return (np.linalg.norm(z) + np.linalg.norm(z, "fro") ** 2 + np.linalg.matrix_norm(z)
            + np.sin(np.linalg.norm(z, "nuc")) + np.linalg.norm(z, 2)
            + np.linalg.matrix_norm(z, ord=-2))


def inf_norms_program(z):
    return (np.linalg.norm(z[0], np.inf) + np.linalg.norm(z[1], -np.inf)
            + np.linalg.norm(z, 1) + np.linalg.norm(z, np.inf)
            + np.linalg.matrix_norm(z, ord=-1))


NORMS = [
    (vector_norms_program, lambda: [C(4)]),
    (axis_norms_program, lambda: [C(2, 3)]),
    (matrix_norms_program, lambda: [C(3, 2)]),
    (inf_norms_program, lambda: [C(3, 3)]),
]



def _norm(z):
    return np.linalg.norm(z)


def test_norm_of_complex_is_conj_over_norm():
    z = C(4)
    close(transpile.grad(_norm)(z), np.conj(z) / np.linalg.norm(z))


# --- eigh, eigvalsh of complex Hermitian matrices ------------------------------------------
# (eigenvectors are defined up to a phase each: the programs read them through |v|^2 and
# v diag(.) v^H, which do not depend on it)
def eigh_program(a):
    w, v = np.linalg.eigh(a)
    p = v * np.conj(v)
    return np.sum(w ** 2) + np.real(np.sum(np.sin(p) * np.arange(1.0, 10.0).reshape(3, 3))) \
        + np.real(np.sum((v * np.exp(w)) @ np.conj(v.T) * (1 + 2j)))


def eigh_upper_program(a):
    r = np.linalg.eigh(a, UPLO="U")
    return np.sum(np.sin(r.eigenvalues)) + np.sum(np.abs(r.eigenvectors[0]) ** 2 * r.eigenvalues)


def eigh_hermitian_of_program(x):
    h = x + np.conj(np.swapaxes(x, -1, -2)) + 4.0 * np.eye(3)
    w, v = np.linalg.eigh(h)
    return np.sum(w ** 3) + np.sum(np.abs(v[..., 1, :]) ** 4)


def eigvalsh_program(a):
    return np.sum(np.linalg.eigvalsh(a) ** 3) + np.sum(np.cos(np.linalg.eigvalsh(a, UPLO="U")))


EIGH = [
    (eigh_program, lambda: [HPD(3)]),
    (eigh_program, lambda: [HPD(3) + np.triu(C(3, 3), 1) + 0.5j * np.eye(3)]),
    (eigh_upper_program, lambda: [HPD(3) + np.tril(C(3, 3), -1)]),
    (eigh_hermitian_of_program, lambda: [C(2, 3, 3)]),
    (eigvalsh_program, lambda: [HPD(3) + 0.3j * np.eye(3)]),
]



# --- svd, svdvals of complex matrices ------------------------------------------------------
# (phase-independent functions of the singular vectors: |u|^2, |vh|^2, u diag(.) vh)
def svd_program(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.sum(np.sin(s)) + np.sum(np.abs(u) ** 2 * np.arange(1.0, u.size + 1).reshape(
        u.shape)) + np.sum(np.abs(vh[..., 0, :]) ** 4) + np.real(np.sum(
            (u * np.exp(s)[..., None, :]) @ vh * (0.3 - 1j)))


def svd_square_program(a):
    r = np.linalg.svd(a)
    return np.sum(r.S ** 3) + np.real(np.sum((r.U * r.S[..., None, :]) @ r.Vh * np.conj(a)))


def svdvals_program(a):
    return np.sum(np.linalg.svdvals(a) ** 3) + np.sum(np.sqrt(np.linalg.svd(a, compute_uv=False)))


SVD = [
    (svd_program, lambda: [C(3, 2)]),
    (svd_program, lambda: [C(2, 4)]),
    (svd_program, lambda: [C(2, 3, 2)]),
    (svd_square_program, lambda: [C(3, 3)]),
    (svd_program, lambda: [rng.normal(size=(3, 2))]),
    (svdvals_program, lambda: [C(3, 2)]),
    (svdvals_program, lambda: [C(2, 2, 3)]),
]



# --- cholesky of complex Hermitian matrices (one triangle read) ---------------------------
def cholesky_program(a):
    L = np.linalg.cholesky(a)
    return np.real(np.sum(np.sin(L) * (1 + 0.5j))) + np.sum(np.abs(L) ** 2)


def cholesky_upper_program(a):
    u = np.linalg.cholesky(a, upper=True)
    return np.real(np.sum(np.exp(0.3 * u) * (0.2 - 1j)))


CHOLESKY = [
    (cholesky_program, lambda: [HPD(3)]),
    (cholesky_program, lambda: [HPD(3, (2,)) + np.triu(C(3, 3), 1) + 0.2j * np.eye(3)]),
    (cholesky_upper_program, lambda: [HPD(3) + np.tril(C(3, 3), -1)]),
    # real: forward mode along a tangent that is not symmetric (reads one triangle)
    (cholesky_program, lambda: [np.real(HPD(3))]),
    (cholesky_upper_program, lambda: [np.real(HPD(3))]),
]



# --- slogdet of complex matrices: a complex sign (with a derivative), a real logabsdet ----
def slogdet_program(a):
    sign, logdet = np.linalg.slogdet(a)
    return np.sum(logdet ** 2) + np.real(np.sum(sign * (0.3 + 0.7j))) + np.sum(np.imag(sign) ** 2)


def slogdet_fields_program(a):
    r = np.linalg.slogdet(a)
    return np.sum(np.sin(r.logabsdet)) + np.real(np.sum(r.sign ** 2))


SLOGDET = [
    (slogdet_program, lambda: [CWELL(3)]),
    (slogdet_program, lambda: [CWELL(3, (2,))]),
    (slogdet_fields_program, lambda: [CWELL(3)]),
    (slogdet_program, lambda: [2.0 * np.eye(3) + 0.3 * rng.normal(size=(3, 3))]),
]



# --- eig, eigvals with complex spectra (of complex and of real matrices) ------------------
# (phase-independent functions of the eigenvectors: |v|, v diag(.) v^-1)
def eig_program(a):
    w, v = np.linalg.eig(a)
    return np.real(np.sum(w * w * (0.3 - 0.2j))) + np.sum(np.abs(w)) + np.sum(
        np.abs(v) ** 2 * np.arange(1.0, 10.0).reshape(3, 3))


def eig_reconstruct_program(a):
    r = np.linalg.eig(a)
    m = (r.eigenvectors * np.exp(r.eigenvalues)[..., None, :]) @ np.linalg.inv(r.eigenvectors)
    return np.real(np.sum(m * (1 + 1j))) + np.sum(np.abs(r.eigenvectors[..., 0, :]))


def eigvals_program(a):
    w = np.linalg.eigvals(a)
    return np.sum(np.abs(w) ** 3) + np.real(np.sum(np.sin(w)))


ROTATION = np.array([[0.0, -2.0, 0.3], [1.5, 0.2, 0.1], [0.4, -0.3, 1.0]])   # complex pair

EIG = [
    (eig_program, lambda: [C(3, 3)]),
    (eig_program, lambda: [ROTATION + 0.1 * rng.normal(size=(3, 3))]),
    (eig_reconstruct_program, lambda: [C(2, 3, 3)]),
    (eig_reconstruct_program, lambda: [ROTATION]),
    (eigvals_program, lambda: [C(3, 3)]),
    (eigvals_program, lambda: [ROTATION]),
]



# --- pinv of complex matrices (conjugate transposes), constant rank ------------------------
def pinv_program(a):
    p = np.linalg.pinv(a)
    return np.sum(np.abs(p) ** 2) + np.real(np.sum(np.sin(p) * (0.4 + 1j)))


def pinv_hermitian_program(a):
    return np.real(np.sum(np.linalg.pinv(a, hermitian=True) * (1 - 0.3j))) + np.sum(
        np.abs(np.linalg.pinv(a, hermitian=True)) ** 2)


def pinv_low_rank_program(x):
    return np.sum(np.abs(np.linalg.pinv(np.conj(x.T) @ x)) ** 2)


PINV = [
    (pinv_program, lambda: [C(3, 2)]),
    (pinv_program, lambda: [C(2, 2, 4)]),
    (pinv_program, lambda: [CWELL(3)]),
    (pinv_hermitian_program, lambda: [HPD(3) + np.triu(C(3, 3), 1) + 0.4j * np.eye(3)]),
    (pinv_low_rank_program, lambda: [C(2, 3)]),
]



# --- cond of complex matrices (real results) ----------------------------------------------
def cond_program(a):
    # (np.real: NumPy before 2.3 returns cond of a complex matrix in its complex type)
    return np.real(np.linalg.cond(a) + np.linalg.cond(a, -2) ** 2
                   + np.sin(np.linalg.cond(a, "fro")) + np.linalg.cond(a, np.inf)
                   + np.linalg.cond(a, 1) + np.linalg.cond(a, "nuc"))


def cond_batched_program(a):
    return np.real(np.sum(np.linalg.cond(a) ** 2) + np.sum(np.linalg.cond(a, np.inf)))


COND = [(cond_program, lambda: [CWELL(3)]), (cond_batched_program, lambda: [CWELL(3, (2,))])]



# --- every family, every mode -------------------------------------------------------------
FAMILIES = {"holomorphic": HOLOMORPHIC, "products": PRODUCTS, "norms": NORMS, "eigh": EIGH,
            "svd": SVD, "cholesky": CHOLESKY, "slogdet": SLOGDET, "eig": EIG, "pinv": PINV,
            "cond": COND}
ALL = [(family, f, make) for family, cases in FAMILIES.items() for f, make in cases]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family, f, make", ALL,
                         ids=[f"{fam}-{f.__name__}-{k}" for k, (fam, f, _) in enumerate(ALL)])
def test_every_mode(family, f, make, mode):
    check(f, make(), mode)


def singular_det_program(a):
    return np.real(np.linalg.det(a) * (0.3 + 0.7j))


def test_det_at_a_singular_complex_matrix():
    """The gradient there is the cofactor matrix (from the SVD: conj(u), conj(vh))."""
    a = np.array([[1 + 1j, 2, 0.5j], [0, 0, 0], [1j, 1 - 1j, 2]])
    close(transpile.grad(singular_det_program)(a), fd_grad(singular_det_program, [a], 0))


def qr_program(a):
    return np.sum(np.abs(np.linalg.qr(a)[1]))


def lstsq_program(a, b):
    return np.sum(np.abs(np.linalg.lstsq(a, b)[0]))


@pytest.mark.parametrize("f, make", [(qr_program, lambda: [C(3, 2)]),
                                     (lstsq_program, lambda: [C(3, 2), C(3)])],
                         ids=["qr", "lstsq"])
def test_rules_without_complex_rules_refuse(f, make):
    """qr and lstsq declare nothing for complex values: one TranspileError."""
    with pytest.raises(transpile.TranspileError, match="complex values"):
        transpile.grad(f)(*make())
