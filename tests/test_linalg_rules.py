"""numpy.linalg rules (transpile/rules/linalg.py) through the compiler: svd, qr, lstsq,
norms of every order, eig/eigvals, each mode (reverse, forward, both Hessian-vector
routes, grad of grad) against central finite differences, on batched, wide, tall and
square inputs; and the refusals where no derivative exists."""
import numpy as np
import pytest

import transpile
from transpile import TranspileError

from finite_differences import central

RNG = np.random.default_rng(20261203)
EPS = 1e-6


def _weights(shape, salt):
    return np.random.default_rng(salt).normal(size=shape)


def check_modes(f, x, *rest, second=True, gg=True, rtol=1e-5, atol=1e-6):
    """f(x, *rest) -> number: every mode in x against central differences (gg=False: all
    but grad of grad)."""
    x = np.asarray(x, float)
    rng = np.random.default_rng(x.size)
    fx = lambda y: float(f(y, *rest))                                # noqa: E731
    ref = central(fx, x, EPS)
    scale = max(1.0, float(np.max(np.abs(ref))))
    value, g = transpile.value_and_grad(f)(x, *rest)
    assert np.isclose(value, fx(x))
    np.testing.assert_allclose(g, ref, rtol=rtol, atol=atol * scale)
    t = rng.normal(size=x.shape)
    _, jv = transpile.jvp(f, (x,) + rest, (t,) + (None,) * len(rest))
    np.testing.assert_allclose(jv, np.sum(ref * t), rtol=rtol, atol=atol * scale)
    if not second:
        return
    v = rng.normal(size=x.shape)
    grad = transpile.grad(f)
    h = 1e-5
    hv_ref = (grad(x + h * v, *rest) - grad(x - h * v, *rest)) / (2 * h)
    hscale = max(1.0, float(np.max(np.abs(hv_ref))))
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        hv = transpile.hvp(f, mode=mode)(x, *rest, v=v)
        np.testing.assert_allclose(hv, hv_ref, rtol=1e-4, atol=1e-5 * hscale)
    if not gg:
        return
    second = transpile.grad(transpile.grad(line_of(f, len(rest)), wrt=0))(0.0, x, v, *rest)
    np.testing.assert_allclose(second, np.sum(v * hv_ref), rtol=1e-4, atol=1e-5 * hscale)


_MODULES = []


def _module(source, namespace):
    """The functions of `source`, written into a file (transpile reads source) and run
    with `namespace` as its globals."""
    import atexit
    import importlib.util
    import shutil
    import tempfile
    from pathlib import Path
    if not _MODULES:
        _MODULES.append(tempfile.mkdtemp(prefix="linalg_rules_"))
        atexit.register(shutil.rmtree, _MODULES[0], True)
    name = f"linalg_rules_{len(_MODULES)}"
    _MODULES.append(name)
    path = Path(_MODULES[0]) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(namespace)
    spec.loader.exec_module(module)
    return module


def line_of(f, nrest):
    """f(x + t v, *rest) as a function of (t, x, v, *rest) with its own source: grad of
    grad in t at 0 is v . H v."""
    rest = "".join(f", r{i}" for i in range(nrest))
    return _module(f"def line(t, x, v{rest}):\n    return f(x + t * v{rest})\n",
                   {"f": f}).line


# --------------------------------------------------------------------------------------
# svd
# --------------------------------------------------------------------------------------
def svd_all(x, w):
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return np.sum(np.sin(u) * w[0]) + np.sum(np.sin(s) * w[1]) + np.sum(np.sin(vh) * w[2])


def svd_default(x, w):
    u, s, vh = np.linalg.svd(x)
    return np.sum(u * w[0]) + np.sum(s ** 2 * w[1]) + np.sum(np.cos(vh) * w[2])


def svd_s(x, w):
    s = np.linalg.svd(x, full_matrices=False, compute_uv=False)
    return np.sum(np.sin(s) * w)


def svd_fields(x, w):
    r = np.linalg.svd(x, full_matrices=False)
    return np.sum(r.U * w[0]) + np.sum(r.S * w[1]) + np.sum(r.Vh * w[2])


def svd_only_s_of_full(x, w):
    u, s, vh = np.linalg.svd(x)
    return np.sum(np.sin(s) * w)


def svd_u_of_full(x, w):
    u, s, vh = np.linalg.svd(x)
    return np.sum(np.sin(u) * w)


SHAPES = [(3, 5), (4, 4), (5, 3), (2, 3, 5), (2, 5, 3), (2, 4, 4), (2, 1, 3, 2)]


def _svd_weights(shape, salt):
    u, s, vh = np.linalg.svd(np.zeros(shape), full_matrices=False)
    return [_weights(u.shape, salt), _weights(s.shape, salt + 1), _weights(vh.shape, salt + 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_svd_reduced_every_mode(shape):
    check_modes(svd_all, RNG.normal(size=shape), _svd_weights(shape, 1))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_svd_only_s_every_mode(shape):
    k = min(shape[-2:])
    check_modes(svd_s, RNG.normal(size=shape), _weights(shape[:-2] + (k,), 2))


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)], ids=str)
def test_svd_full_matrices_square_every_mode(shape):
    check_modes(svd_default, RNG.normal(size=shape), _svd_weights(shape, 3))


def eigh_fields(x, w):
    r = np.linalg.eigh(x + x.T)
    return np.sum(r.eigenvalues * w) + np.sum(r.eigenvectors[:, 0] ** 2 * w)


def slogdet_fields(x, w):
    r = np.linalg.slogdet(x)
    return r.logabsdet * w[0] + r.sign


def test_result_fields():
    """The fields of the NamedTuples svd, eigh and slogdet return (U, eigenvalues,
    logabsdet...), in every mode (grad of grad: an internal TypeError before)."""
    check_modes(svd_fields, RNG.normal(size=(4, 3)), _svd_weights((4, 3), 4))
    check_modes(eigh_fields, RNG.normal(size=(3, 3)), _weights(3, 7))
    check_modes(slogdet_fields, RNG.normal(size=(3, 3)) + 3 * np.eye(3), _weights(3, 8))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 5, 3)], ids=str)
def test_svd_full_non_square_singular_values_only_reverse(shape):
    """full_matrices=True, m != n: the extra vectors get no adjoint, so reverse mode (and
    only it) has a derivative."""
    x, w = RNG.normal(size=shape), _weights(shape[:-2] + (min(shape[-2:]),), 5)
    np.testing.assert_allclose(transpile.grad(svd_only_s_of_full)(x, w),
                               central(lambda y: svd_only_s_of_full(y, w), x), atol=1e-6)
    with pytest.raises(TranspileError, match="full_matrices=False"):
        transpile.jvp(svd_only_s_of_full, (x, w), (x, None))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)], ids=str)
def test_svd_full_non_square_vectors_refused(shape):
    x = RNG.normal(size=shape)
    w = _weights((shape[0], shape[0]), 6)
    if shape[0] < shape[1]:               # wide: u is square, vh has extra rows
        w = _weights((shape[0], shape[0]), 6)
        with pytest.raises(TranspileError, match="full_matrices=False"):
            transpile.jvp(svd_u_of_full, (x, w), (x, None))
        return
    with pytest.raises(TranspileError, match="full_matrices=False"):
        transpile.grad(svd_u_of_full)(x, w)


def svd_hermitian(x):
    return np.sum(np.linalg.svd(x + x.T, hermitian=True, compute_uv=False))


def test_svd_hermitian_refused():
    with pytest.raises(TranspileError, match="hermitian"):
        transpile.grad(svd_hermitian)(RNG.normal(size=(3, 3)))


# --------------------------------------------------------------------------------------
# qr
# --------------------------------------------------------------------------------------
def qr_reduced(x, w):
    q, r = np.linalg.qr(x)
    return np.sum(np.sin(q) * w[0]) + np.sum(np.sin(r) * w[1])


def qr_r(x, w):
    return np.sum(np.sin(np.linalg.qr(x, mode="r")) * w[1])


def qr_complete(x, w):
    q, r = np.linalg.qr(x, "complete")
    return np.sum(np.sin(q) * w[0]) + np.sum(np.sin(r) * w[1])


def qr_complete_r_only(x, w):
    q, r = np.linalg.qr(x, "complete")
    return np.sum(np.sin(r) * w[1])


def _qr_weights(shape, salt, mode="reduced"):
    q, r = np.linalg.qr(np.ones(shape) + np.eye(*shape[-2:]), mode)
    return [_weights(q.shape, salt), _weights(r.shape, salt + 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_qr_reduced_every_mode(shape):
    check_modes(qr_reduced, RNG.normal(size=shape), _qr_weights(shape, 11))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_qr_r_every_mode(shape):
    check_modes(qr_r, RNG.normal(size=shape), _qr_weights(shape, 12))


@pytest.mark.parametrize("shape", [(3, 5), (4, 4), (2, 3, 4)], ids=str)
def test_qr_complete_not_tall_every_mode(shape):
    check_modes(qr_complete, RNG.normal(size=shape), _qr_weights(shape, 13, "complete"))


def test_qr_complete_tall():
    """mode='complete' of a tall matrix: r alone has a derivative in reverse mode; the
    extra columns of q have none, and forward mode is refused."""
    x = RNG.normal(size=(5, 3))
    w = _qr_weights((5, 3), 14, "complete")
    np.testing.assert_allclose(transpile.grad(qr_complete_r_only)(x, w),
                               central(lambda y: qr_complete_r_only(y, w), x), atol=1e-6)
    with pytest.raises(TranspileError, match="mode='reduced'"):
        transpile.grad(qr_complete)(x, w)
    with pytest.raises(TranspileError, match="mode='reduced'"):
        transpile.jvp(qr_complete_r_only, (x, w), (x, None))


def qr_raw(x):
    h, tau = np.linalg.qr(x, mode="raw")
    return np.sum(h) + np.sum(tau)


def test_qr_raw_refused():
    with pytest.raises(TranspileError, match="raw"):
        transpile.grad(qr_raw)(RNG.normal(size=(3, 3)))


# --------------------------------------------------------------------------------------
# lstsq
# --------------------------------------------------------------------------------------
def lstsq_all(a, b, w):
    x, res, rank, s = np.linalg.lstsq(a, b)
    return np.sum(np.sin(x) * w[0]) + np.sum(np.sin(res) * w[1]) + np.sum(np.sin(s) * w[2])


def lstsq_all_b(b, a, w):
    return lstsq_all(a, b, w)


def lstsq_rcond(a, b, w):
    x, res, rank, s = np.linalg.lstsq(a, b, rcond=1e-10)
    return np.sum(np.sin(x) * w[0]) + np.sum(res * w[1])


def _lstsq_weights(a, b, salt):
    x, res, rank, s = np.linalg.lstsq(a, b)
    return [_weights(x.shape, salt), _weights(res.shape, salt + 1), _weights(s.shape, salt + 2)]


LSTSQ_SHAPES = [((5, 3), (5,)), ((5, 3), (5, 2)), ((3, 3), (3,)), ((2, 4), (2,)),
                ((2, 4), (2, 3))]


@pytest.mark.parametrize("sa,sb", LSTSQ_SHAPES, ids=str)
def test_lstsq_every_mode(sa, sb):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    w = _lstsq_weights(a, b, 21)
    check_modes(lstsq_all, a, b, w)
    check_modes(lstsq_all_b, b, a, w)
    check_modes(lstsq_rcond, a, b, w)


def lstsq_x(a, b):
    return np.sum(np.linalg.lstsq(a, b)[0] ** 2)


def test_lstsq_rank_deficient_refused():
    a = RNG.normal(size=(4, 1)) @ RNG.normal(size=(1, 3))
    with pytest.raises(TranspileError, match="rank-deficient"):
        transpile.grad(lstsq_x)(a, RNG.normal(size=4))


# --------------------------------------------------------------------------------------
# norms: every ord, axis and keepdims
# --------------------------------------------------------------------------------------
def norm_of(x, ord, axis, keepdims, w):
    return np.sum(np.sin(np.linalg.norm(x, ord, axis, keepdims)) * w)


def _norm_case(shape, ord, axis, keepdims):
    x = RNG.normal(size=shape)
    w = _weights(np.shape(np.linalg.norm(x, ord, axis, keepdims)), 31)
    return x, w


VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 2.5, 1.5, 0.5, -1, -2, -1.5]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=repr)
@pytest.mark.parametrize("shape,axis,keepdims", [((5,), None, False), ((3, 4), 1, False),
                                                 ((3, 4), 0, True), ((2, 3, 4), -1, True)],
                         ids=str)
def test_vector_norms_every_mode(ord, shape, axis, keepdims):
    x, w = _norm_case(shape, ord, axis, keepdims)
    check_modes(norm_of, x, ord, axis, keepdims, w)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=repr)
@pytest.mark.parametrize("shape,axis,keepdims", [((3, 4), None, False), ((4, 3), (0, 1), True),
                                                 ((2, 3, 4), (1, 2), False),
                                                 ((3, 2, 4), (2, 0), True)], ids=str)
def test_matrix_norms_every_mode(ord, shape, axis, keepdims):
    if axis is None and ord is not None and ord != "fro" and len(shape) != 2:
        pytest.skip("norm of ord= needs a 1-D or 2-D array without axis")
    x, w = _norm_case(shape, ord, axis, keepdims)
    check_modes(norm_of, x, ord, axis, keepdims, w)


def test_norm_zero_ord():
    """ord=0 counts the nonzero elements: zero derivative in every mode."""
    x, w = _norm_case((5,), 0, None, False)
    check_modes(norm_of, x, 0, None, False, w)


def _program(call):
    """sum(sin(call) * w) as a function of (x, w), from its source (the keywords of
    vector_norm and matrix_norm are literals there: passed in variables, grad of grad
    refuses them)."""
    return _module(f"def f(x, w):\n    return np.sum(np.sin({call}) * w)\n", {"np": np}).f


@pytest.mark.parametrize("ord", [2, 1, 0, np.inf, -np.inf, 3, 1.5, -1], ids=repr)
@pytest.mark.parametrize("shape,axis,keepdims", [((5,), None, False), ((3, 4), None, True),
                                                 ((3, 4), 1, False), ((2, 3, 4), 0, True),
                                                 ((2, 3, 4), (0, 2), False),
                                                 ((2, 3, 4), (2, 1), True)],
                         ids=str)
def test_vector_norm_function_every_mode(ord, shape, axis, keepdims):
    x = RNG.normal(size=shape)
    y = np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    o = {np.inf: "np.inf", -np.inf: "-np.inf"}.get(ord, repr(ord))
    f = _program(f"np.linalg.vector_norm(x, axis={axis!r}, keepdims={keepdims!r}, ord={o})")
    if not isinstance(axis, tuple):
        check_modes(f, x, _weights(np.shape(y), 32))
        return
    # grad of grad refuses a tuple passed to a keyword of vector_norm (a compiler limit,
    # a TranspileError: see the report of this branch); every other mode holds
    check_modes(f, x, _weights(np.shape(y), 32), gg=False)
    with pytest.raises(TranspileError, match="keyword argument 'axis'"):
        transpile.grad(transpile.grad(line_of(f, 1), wrt=0))(0.0, x, x, _weights(np.shape(y), 32))


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf], ids=repr)
@pytest.mark.parametrize("shape,keepdims", [((3, 4), False), ((2, 4, 3), True)], ids=str)
def test_matrix_norm_function_every_mode(ord, shape, keepdims):
    x = RNG.normal(size=shape)
    y = np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    o = {np.inf: "np.inf", -np.inf: "-np.inf"}.get(ord, repr(ord))
    f = _program(f"np.linalg.matrix_norm(x, keepdims={keepdims!r}, ord={o})")
    check_modes(f, x, _weights(np.shape(y), 33))


def test_pnorm_second_order_at_zero_refused():
    x = np.array([0.0, 1.0, -2.0])
    with pytest.raises(TranspileError, match="unbounded"):
        transpile.hvp(norm_of)(x, 1.5, None, False, 1.0, v=np.ones(3))


# --------------------------------------------------------------------------------------
# second order where it was refused: cumprod with zeros or include_initial, pinv of
# constant (deficient) rank, batched pinv, eigh and cholesky
# --------------------------------------------------------------------------------------
def cumprod_axis(x, w):
    return np.sum(np.sin(np.cumprod(x, axis=1)) * w)


def cumulative_prod_initial(x, w):
    return np.sum(np.sin(np.cumulative_prod(x, axis=0, include_initial=True)) * w)


@pytest.mark.parametrize("x", [np.array([[1.3, 0.0, -0.7, 2.0], [0.0, 1.1, 0.0, 0.8],
                                         [0.9, 1.2, -1.1, 0.7]])], ids=["zeros"])
def test_cumprod_with_zeros_every_mode(x):
    check_modes(cumprod_axis, x, _weights(x.shape, 41))
    if not hasattr(np, "cumulative_prod"):          # NumPy < 2.1
        return
    check_modes(cumulative_prod_initial, x, _weights((4, 4), 42))
    check_modes(cumulative_prod_initial, np.abs(x) + 0.5, _weights((4, 4), 43))


def pinv_low_rank(x, w):
    return np.sum(np.sin(np.linalg.pinv(x.T @ x)) * w)


def pinv_plain(x, w):
    return np.sum(np.sin(np.linalg.pinv(x)) * w)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 3, 4), (2, 4, 2)], ids=str)
def test_pinv_every_mode(shape):
    x = RNG.normal(size=shape)
    check_modes(pinv_plain, x, _weights(shape[:-2] + shape[-2:][::-1], 44))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3)], ids=str)
def test_pinv_constant_deficient_rank_every_mode(shape):
    x = RNG.normal(size=shape)                     # x^T x: rank min(m, n) of n
    check_modes(pinv_low_rank, x, _weights((shape[1], shape[1]), 45))


def pinv_hermitian(x, w):
    return np.sum(np.sin(np.linalg.pinv(x, hermitian=True)) * w)


def pinv_hermitian_positional(x, w):
    return np.sum(np.sin(np.linalg.pinv(x @ x.T, 1e-12, True)) * w)


def test_pinv_hermitian_every_mode():
    """hermitian=True reads the lower triangle only: the gradient lives there (a full,
    wrong gradient before)."""
    b = RNG.normal(size=(3, 3))
    check_modes(pinv_hermitian, b @ b.T + np.eye(3), _weights((3, 3), 48))
    check_modes(pinv_hermitian_positional, RNG.normal(size=(3, 2)), _weights((3, 3), 49))


def eigh_both(x, w):
    s, v = np.linalg.eigh(x @ x.T + np.eye(x.shape[0]))
    return np.sum(np.sin(s) * w) + np.sum(np.sin(v * v) * w)


def cholesky_of(x, w):
    return np.sum(np.sin(np.linalg.cholesky(x @ np.swapaxes(x, -1, -2) + np.eye(3))) * w)


def test_eigh_and_cholesky_every_mode():
    check_modes(eigh_both, RNG.normal(size=(3, 3)), _weights(3, 46))
    check_modes(cholesky_of, RNG.normal(size=(2, 3, 3)), _weights((2, 3, 3), 47))


# --------------------------------------------------------------------------------------
# eig, eigvals: real matrices with real eigenvalues, and with complex ones
# --------------------------------------------------------------------------------------
def _real_spectrum(shape, salt):
    """A non-symmetric matrix with real distinct eigenvalues: s diag(d) s^-1."""
    r = np.random.default_rng(salt)
    n = shape[-1]
    s = np.eye(n) + 0.4 * r.normal(size=shape)
    d = np.arange(1.0, n + 1) + 0.2 * r.normal(size=shape[:-1])
    return s * d[..., None, :] @ np.linalg.inv(s)


# (a real spectrum comes back real up to NumPy 2.4 and complex with zero imaginary parts
# from 2.5: these read its real part, as a function of a real spectrum does)
def eig_all(x, w):
    vals, vecs = np.linalg.eig(x)
    return np.sum(np.sin(np.real(vals)) * w[0]) + np.sum(np.sin(np.real(vecs * vecs)) * w[1])


def eig_signed(x, w):
    r = np.linalg.eig(x)
    return np.sum(np.sin(np.real(r.eigenvectors)) * w[1])


def eigvals_of(x, w):
    return np.sum(np.sin(np.real(np.linalg.eigvals(x))) * w[0])


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)], ids=str)
def test_eig_real_spectrum_every_mode(shape):
    x = _real_spectrum(shape, 51)
    assert not np.any(np.imag(np.linalg.eigvals(x)))
    w = [_weights(shape[:-1], 52), _weights(shape, 53)]
    check_modes(eig_all, x, w)
    check_modes(eigvals_of, x, w)
    check_modes(eig_signed, x, w)


def eig_abs(x, w):
    vals, vecs = np.linalg.eig(x)
    return np.sum(np.abs(vals) * w[0]) + np.sum(np.abs(vecs) * w[1])


def eigvals_abs(x, w):
    return np.sum(np.abs(np.linalg.eigvals(x)) * w[0])


@pytest.mark.parametrize("f", [eig_abs, eigvals_abs])
def test_eig_complex_eigenvalues_of_a_real_matrix(f):
    """A real matrix with a complex pair of eigenvalues: eig's results are complex (the
    rule declares result='complex'); functions that do not depend on the eigenvectors'
    phases are differentiable in every mode (tests/test_complex_linalg.py: complex
    matrices)."""
    x = np.array([[0.0, -1.0, 0.2], [1.0, 0.0, 0.1], [0.3, 0.2, 2.0]])   # a rotation block
    assert np.iscomplexobj(np.linalg.eigvals(x))
    check_modes(f, x, [_weights((3,), 54), _weights((3, 3), 55)])


# --------------------------------------------------------------------------------------
# tensorinv, tensorsolve
# --------------------------------------------------------------------------------------
def tensorinv_of(x, w):
    return np.sum(np.sin(np.linalg.tensorinv(x, ind=1)) * w)


def tensorinv_default(x, w):
    return np.sum(np.sin(np.linalg.tensorinv(x)) * w)


def tensorsolve_a(a, b, w):
    return np.sum(np.sin(np.linalg.tensorsolve(a, b)) * w)


def tensorsolve_b(b, a, w):
    return np.sum(np.sin(np.linalg.tensorsolve(a, b)) * w)


def tensorsolve_axes(a, b, w):
    return np.sum(np.sin(np.linalg.tensorsolve(a, b, axes=(0, 2))) * w)


def tensorsolve_axes_b(b, a, w):
    return tensorsolve_axes(a, b, w)


def _well(n):
    return 2.0 * np.eye(n) + 0.3 * RNG.normal(size=(n, n))


def test_tensorinv_every_mode():
    x = _well(6).reshape(6, 2, 3)
    check_modes(tensorinv_of, x, _weights((2, 3, 6), 61))
    x = _well(6).reshape(2, 3, 3, 2)
    check_modes(tensorinv_default, x, _weights((3, 2, 2, 3), 62))


def test_tensorsolve_every_mode():
    a, b = _well(6).reshape(2, 3, 6), RNG.normal(size=(2, 3))
    check_modes(tensorsolve_a, a, b, _weights(6, 63))
    check_modes(tensorsolve_b, b, a, _weights(6, 63))
    a = np.transpose(_well(6).reshape(2, 3, 3, 2), (2, 0, 3, 1))       # (3, 2, 2, 3)
    x_shape = np.linalg.tensorsolve(a, b, axes=(0, 2)).shape
    check_modes(tensorsolve_axes, a, b, _weights(x_shape, 64))
    check_modes(tensorsolve_axes_b, b, a, _weights(x_shape, 64))


# --------------------------------------------------------------------------------------
# cond
# --------------------------------------------------------------------------------------
def cond_of(x, p, w):
    return np.sum(np.sin(np.linalg.cond(x, p)) * w)


@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf], ids=repr)
@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3)], ids=str)
def test_cond_every_mode(p, shape):
    x = 2.0 * np.eye(3) + 0.5 * RNG.normal(size=shape)
    check_modes(cond_of, x, p, _weights(shape[:-2], 71))


def test_cond_non_square_every_mode():
    check_modes(cond_of, RNG.normal(size=(2, 4, 3)), None, _weights(2, 72))


# --------------------------------------------------------------------------------------
# det and slogdet at a singular matrix
# --------------------------------------------------------------------------------------
def det_of(x, w):
    return np.sum(np.linalg.det(x) * w)


def slogdet_of(x):
    return np.linalg.slogdet(x)[1]


@pytest.mark.parametrize("x", [np.array([[1.0, 2.0], [2.0, 4.0]]),
                               np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 0.1, 0.3]],
                                         [[2.0, 0.1, 0.0], [0.3, 1.0, 0.2], [0.0, 0.4, 3.0]]])],
                         ids=["2d", "batched"])
def test_det_at_singular_matrix(x):
    """The cofactors (an internal LinAlgError before); second derivatives there refused."""
    w = _weights(x.shape[:-2], 81)
    check_modes(det_of, x, w, second=False)
    with pytest.raises(TranspileError, match="singular"):
        transpile.hvp(det_of)(x, w, v=np.ones(x.shape))


def test_slogdet_at_singular_matrix_refused():
    x = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(TranspileError, match="singular"):
        transpile.grad(slogdet_of)(x)
    with pytest.raises(TranspileError, match="singular"):
        transpile.jvp(slogdet_of, (x,), (x,))


# --------------------------------------------------------------------------------------
# where the vectors have no derivative: repeated values, zero singular values of a
# non-square matrix, a singular r (a TranspileError, not nan)
# --------------------------------------------------------------------------------------
def svd_u(x):
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return np.sum(u * np.arange(u.size).reshape(u.shape))


def svd_s_only(x):
    return np.sum(np.linalg.svd(x, compute_uv=False) ** 2)


def eigh_v(x):
    w, v = np.linalg.eigh(x)
    return np.sum(v * np.arange(v.size).reshape(v.shape))


def eigvalsh_sq(x):
    return np.sum(np.linalg.eigvalsh(x) ** 2)


def qr_q(x):
    q, r = np.linalg.qr(x)
    return np.sum(q * np.arange(q.size).reshape(q.shape))


def eig_v(x):
    w, v = np.linalg.eig(x)
    return np.sum(v * v * np.arange(v.size).reshape(v.shape))


@pytest.mark.parametrize("f,x", [(svd_u, np.eye(3)), (svd_u, np.zeros((3, 2))),
                                 (eigh_v, np.eye(3)), (qr_q, np.ones((2, 2))),
                                 (qr_q, np.zeros((3, 3))), (eig_v, np.eye(3)),
                                 (eig_v, np.array([[1.0, 1.0], [0.0, 1.0]]))],
                         ids=["svd-repeated", "svd-zero", "eigh-repeated", "qr-rank1",
                              "qr-zero", "eig-repeated", "eig-defective"])
def test_no_derivative_of_the_vectors_refused(f, x):
    with pytest.raises(TranspileError):
        transpile.grad(f)(x)
    with pytest.raises(TranspileError):
        transpile.jvp(f, (x,), (np.ones_like(x),))


@pytest.mark.parametrize("f", [svd_s_only, eigvalsh_sq])
def test_values_alone_at_repeated_values(f):
    """A symmetric function of repeated singular values or eigenvalues still has its
    first derivatives."""
    x = np.eye(3)
    np.testing.assert_allclose(transpile.grad(f)(x), 2 * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(transpile.jvp(f, (x,), (np.eye(3),))[1], 6.0)
