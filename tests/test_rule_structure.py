"""Every mode of a primitive derived from the structure its rule declares (linear,
multilinear, piecewise linear, explicit with the tangents of its vjps): forward mode, both
routes of Hessian-vector products and grad of grad, each checked against central finite
differences of the gradient; `supported(modes=True)` read off the registry; structural
declarations through the public `defvjp` door."""
import math

import numpy as np
import pytest

import transpile
from transpile.rules import lookup, supported
from transpile.rules.registry import MODES

from finite_differences import central

RNG = np.random.default_rng(7)
X0 = RNG.normal(size=(3, 4))
V0 = RNG.normal(size=(3, 4))
SPD = np.array([[2.0, 0.3, -0.2], [0.3, 1.5, 0.4], [-0.2, 0.4, 1.8]])
W = RNG.normal(size=(3, 4))


# --- programs, one (or two) primitives each; x has the shape of X0 ---------------------
def p_sum_initial(x):
    return np.sum(np.sum(x ** 2, axis=0, initial=1.5) ** 2)


def p_pad(x):
    return np.sum(np.pad(x, 1, constant_values=2.0) ** 3)


def p_diff_prepend(x):
    return np.sum(np.diff(x, axis=1, prepend=0.5) ** 3)


def p_concatenate(x):
    return np.sum(np.concatenate([x, x ** 2], axis=1) ** 2)


def p_take(x):
    return np.sum(np.take(x, [0, 2, 2], axis=0) ** 3)


def p_linspace(x):
    return np.sum(np.linspace(x[0, 0], x[1, 1] ** 2, 5) ** 3)


def p_einsum(x):
    return np.sum(np.einsum("ij,kj->ik", x, x * W) ** 2)


def p_dot(x):
    return np.sum(np.dot(x, (x ** 2).T) ** 2)


def p_kron(x):
    return np.sum(np.kron(x[:2, :2], x[1:, 2:]) ** 2)


def p_cross(x):
    return np.sum(np.cross(x[:, :3], x[:, 1:] ** 2) ** 2)


def p_convolve(x):
    return np.sum(np.convolve(x[0], x[1] ** 2) ** 2)


def p_max(x):
    return np.sum(np.max(x, axis=1) ** 3) * np.sum(x ** 2)


def p_sort(x):
    return np.sum(np.sort(x, axis=1) ** 3 * np.arange(4))


def p_partition(x):
    return np.sum(np.partition(x ** 3, 2, axis=1) * np.arange(4))


def p_clip_bounds(x):
    return np.sum(np.clip(x, -0.5 * x ** 2, 0.7) ** 3)


def p_median(x):
    return np.sum(np.median(x, axis=0) ** 3)


def p_ptp(x):
    return np.ptp(x ** 2, axis=1).sum() ** 2


def p_nansum(x):
    return np.nansum(x ** 3, axis=0).dot(np.arange(4.0))


def p_ediff1d(x):
    return np.sum(np.ediff1d(x[0] ** 2, to_begin=1.0) ** 3)


def p_prod(x):
    return np.prod(x ** 2 + 1)


def p_var(x):
    return np.var(x, axis=1).sum() ** 2


def p_std(x):
    return np.std(x) ** 3


def p_norm(x):
    return np.linalg.norm(x, axis=0).sum() ** 2


def p_cumprod(x):
    return np.sum(np.cumprod(x ** 2 + 0.5, axis=1) ** 2)


def p_inv(x):
    return np.sum(np.linalg.inv(x @ x.T + np.eye(3)) ** 2)


def p_det(x):
    return np.linalg.det(x @ x.T + np.eye(3))


def p_slogdet(x):
    return np.linalg.slogdet(x @ x.T + np.eye(3))[1] ** 2


def p_solve(x):
    return np.sum(np.linalg.solve(x @ x.T + np.eye(3), x[:, 0] ** 2) ** 2)


def p_cholesky(x):
    return np.sum(np.linalg.cholesky(x @ x.T + np.eye(3)) ** 3)


def p_eigh(x):
    w, v = np.linalg.eigh(x @ x.T + SPD)
    return np.sum(w ** 3) + np.sum((v[:, 0] * v[:, 2]) ** 2)


def p_eigvalsh(x):
    return np.sum(np.linalg.eigvalsh(x @ x.T + SPD) ** 3)


def p_vector_norm(x):
    return np.sum(np.linalg.vector_norm(x, axis=1) ** 3)


def p_vector_norm_inf(x):
    return np.linalg.vector_norm(x[0] * x[1], ord=np.inf) * np.sum(x ** 2)


def p_matrix_norm(x):
    return np.linalg.matrix_norm(x * x[0]) ** 3


def p_trapezoid(x):
    return np.sum(np.trapezoid(x ** 2, np.cumsum(x[0] ** 2)) ** 2)


def p_matrix_power(x):
    return np.sum(np.linalg.matrix_power(x[:, :3] * 0.5, 3) ** 2)


def p_matrix_power_negative(x):
    return np.sum(np.linalg.matrix_power(x @ x.T + np.eye(3), -2) ** 2)


def p_split(x):
    return np.sum(np.split(x, 2, axis=1)[1] ** 3)


def p_stack(x):
    return np.sum(np.stack([x, x ** 2], axis=1) ** 3)


def p_meshgrid(x):
    return np.sum(np.meshgrid(x[0], x[1] ** 2)[1] ** 3)


def p_broadcast(x):
    return np.sum(np.broadcast_arrays(x[0], x ** 2)[0] ** 3)


def p_select(x):
    return np.sum(np.select([x > 0, x < -0.5], [x ** 2, x ** 3], 0.5) ** 2)


def p_choose(x):
    return np.sum(np.choose(np.array([0, 1, 0, 1]), [x[0] ** 2, x[1] ** 3]) ** 2)


def p_insert(x):
    return np.sum(np.insert(x[0], 1, x[1, :2] ** 2) ** 3)


def p_append(x):
    return np.sum(np.append(x, x ** 2, axis=0) ** 3)


def p_full_like(x):
    return np.sum(np.full_like(x, x[0, 0] ** 2) * x ** 2)


def p_bincount(x):
    return np.sum(np.bincount(np.array([0, 2, 2, 1]), weights=x[0] ** 2) ** 2)


def p_atleast(x):
    return np.sum(np.atleast_2d(x[0] ** 2) ** 3)


def p_block(x):
    return np.sum(np.block([[x, x ** 2]]) ** 3)


def p_moveaxis(x):
    return np.sum(np.moveaxis(x[None] ** 2, 0, 2) ** 3)


def p_roll(x):
    return np.sum(np.roll(x ** 2, 2) * W)


def p_compress(x):
    return np.sum(np.compress([True, False, True], x ** 2, axis=0) ** 3)


def p_extract(x):
    return np.sum(np.extract(x > 0, x ** 2) ** 3)


def p_column_stack(x):
    return np.sum(np.column_stack([x[0], x[1] ** 2]) ** 3)


def p_nancumsum(x):
    return np.sum(np.nancumsum(x ** 2, axis=1) ** 3)


def p_nanmean(x):
    return np.sum(np.nanmean(x ** 2, axis=0) ** 3)


def p_tolist(x):
    return sum(v ** 3 for v in (x[0] ** 2).tolist())


def p_inner(x):
    return np.sum(np.inner(x, x ** 2) ** 2)


def p_vdot(x):
    return np.vdot(x, x ** 2) ** 2


def p_correlate(x):
    return np.sum(np.correlate(x[0], x[1] ** 2, "full") ** 2)


def p_einsum3(x):
    return np.einsum("ij,ij,ij->", x, x, W) ** 2


def p_matvec(x):
    return np.sum((x[:, :3] @ x[0, :3] ** 2) ** 2)


def p_amax(x):
    return np.sum(np.amax(x ** 2, axis=0) ** 3)


def p_nanmin(x):
    return np.sum(np.nanmin(x ** 2, axis=1) ** 3)


def p_maximum(x):
    return np.sum(np.maximum(x ** 2, x * 0.5) ** 3)


def p_nanvar(x):
    return np.sum(np.nanvar(x, axis=0) ** 2)


def p_nanstd(x):
    return np.sum(np.nanstd(x, axis=1) ** 3)


def p_norm_inf(x):
    return np.linalg.norm(x[0] ** 3, ord=np.inf) ** 2


def p_solve_matrix(x):
    return np.sum(np.linalg.solve(x @ x.T + np.eye(3), x ** 2) ** 2)


def p_cholesky_upper(x):
    return np.sum(np.linalg.cholesky(x @ x.T + np.eye(3), upper=True) ** 3)


def p_eigh_upper(x):
    return np.sum(np.linalg.eigh(x @ x.T + np.diag([1.0, 2.0, 3.5]), UPLO="U")[0] ** 3)


def p_cumprod_flat(x):
    return np.sum(np.cumprod(x ** 2 + 0.5) ** 2)


def p_prod_axis(x):
    return np.sum(np.prod(x ** 2 + 0.5, axis=1) ** 2)


def p_det_batch(x):
    batch = np.stack([x[:, :3] + 2 * np.eye(3), x[:, 1:] + 3 * np.eye(3)])
    return np.sum(np.linalg.det(batch) ** 2)


def p_mean_keepdims(x):
    return np.sum(np.mean(x ** 2, axis=1, keepdims=True) * x)


MORE = [p_split, p_stack, p_meshgrid, p_broadcast, p_select, p_choose, p_insert, p_append,
        p_full_like, p_bincount, p_atleast, p_block, p_moveaxis, p_roll, p_compress,
        p_extract, p_column_stack, p_nancumsum, p_nanmean, p_tolist, p_inner, p_vdot,
        p_correlate, p_einsum3, p_matvec, p_amax, p_nanmin, p_maximum, p_nanvar, p_nanstd,
        p_norm_inf, p_solve_matrix, p_cholesky_upper, p_eigh_upper, p_cumprod_flat,
        p_prod_axis, p_det_batch, p_mean_keepdims]
def p_norm_p3(x):
    return np.linalg.norm(x[0] * x[1], ord=3) ** 2


def p_norm_p4_axis(x):
    return np.sum(np.linalg.norm(x ** 2, ord=4, axis=1) ** 3)


def p_vector_norm_p3(x):
    return np.linalg.vector_norm(x, ord=3) ** 3


def p_norm_matrix_1(x):
    return np.linalg.norm(x * x[0], ord=1) * np.sum(x ** 2)


def p_norm_matrix_inf(x):
    return np.linalg.norm(x * x[0], ord=np.inf) ** 2


def p_fmax(x):
    return np.sum(np.fmax(x ** 2, x * 0.5) ** 3 + np.fmin(x, 0.2) ** 3)


def p_nanprod(x):
    y = np.where(x > 1.0, np.nan, x ** 2 + 0.5)
    return np.sum(np.nanprod(y, axis=1) ** 2)


def p_nancumprod(x):
    y = np.where(x > 1.0, np.nan, x ** 2 + 0.5)
    return np.sum(np.nancumprod(y, axis=1) ** 2)


def p_multi_dot(x):
    return np.sum(np.linalg.multi_dot([x, (x ** 2).T, x * W]) ** 2)


def p_polyval(x):
    return np.sum(np.polyval(x[0] ** 2, x[1:] * 0.7) ** 2)


def p_average(x):
    return np.sum(np.average(x ** 2, 1, np.arange(1.0, 5.0)) ** 3)


def p_average_weights(x):
    return np.average(x[0], None, x[1] ** 2 + 1) ** 2 + np.sum(
        np.average(x ** 3, 0, x * x + 0.5) ** 2)


def p_svdvals(x):
    return np.sum(np.linalg.svdvals(x * x[0]) ** 3)


def p_svdvals_tall(x):
    return np.sum(np.linalg.svdvals((x * W).T) ** 3) * np.sum(x[0] ** 2)


def p_pinv_wide(x):
    return np.sum(np.linalg.pinv(x * x[0]) ** 2)


def p_pinv_tall(x):
    return np.sum(np.linalg.pinv((x * W).T) ** 3) * np.sum(x[1] ** 2)


PROGRAMS = [p_pinv_wide, p_pinv_tall, p_svdvals, p_svdvals_tall, p_average,
            p_average_weights, p_nanprod, p_nancumprod, p_multi_dot, p_polyval, p_norm_p3,
            p_norm_p4_axis, p_vector_norm_p3, p_norm_matrix_1, p_norm_matrix_inf, p_fmax,
            p_vector_norm, p_vector_norm_inf, p_matrix_norm, p_trapezoid, p_matrix_power,
            p_matrix_power_negative, p_sum_initial, p_pad, p_diff_prepend, p_concatenate,
            p_take, p_linspace, p_einsum, p_dot, p_kron, p_cross, p_convolve, p_max,
            p_sort, p_partition, p_clip_bounds, p_median, p_ptp, p_nansum, p_ediff1d,
            p_prod, p_var, p_std, p_norm, p_cumprod, p_inv, p_det, p_slogdet, p_solve,
            p_cholesky, p_eigh, p_eigvalsh] + MORE
IDS = [p.__name__[2:] for p in PROGRAMS]


def _hvp_by_differences(f, x, v, eps=1e-5):
    g = transpile.grad(f)
    return (g(x + eps * v) - g(x - eps * v)) / (2 * eps)


@pytest.mark.parametrize("f", PROGRAMS, ids=IDS)
def test_forward_mode(f):
    """Each program's tangent along V0."""
    _, t = transpile.jvp(f, (X0,), (V0,))
    expected = central(lambda e: f(X0 + e * V0), 0.0, eps=1e-6)
    assert np.allclose(t, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
@pytest.mark.parametrize("f", PROGRAMS, ids=IDS)
def test_both_hvp_routes(f, mode):
    expected = _hvp_by_differences(f, X0, V0)
    got = transpile.hvp(f, mode=mode)(X0, v=V0)
    assert np.shape(got) == X0.shape
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", PROGRAMS, ids=IDS)
def test_grad_of_grad(f, tmp_path):
    import importlib.util
    path = tmp_path / f"line_{f.__name__}.py"
    path.write_text("import numpy as np\nfrom test_rule_structure import *\n\n\n"
                    f"def line(t):\n    return {f.__name__}(X0 + t * V0)\n")
    spec = importlib.util.spec_from_file_location(f"line_{f.__name__}", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # no fallback to forward over reverse: the outer gradient is built and run itself
    second = transpile.grad(transpile.grad(module.line))
    got = second(0.0)
    expected = float(np.sum(_hvp_by_differences(f, X0, V0) * V0))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert "def grad_grad_line" in second.source


# --- the declarations ---------------------------------------------------------------------
@pytest.mark.parametrize("fn, structure", [
    (np.sum, "linear"), (np.take, "linear"), (np.diff, "linear"), (np.where, "linear"),
    (np.dot, "multilinear"), (np.einsum, "multilinear"), (np.kron, "multilinear"),
    (np.max, "piecewise_linear"), (np.sort, "piecewise_linear"), (np.clip, "piecewise_linear"),
    (np.prod, "explicit"), (np.linalg.inv, "explicit"), (np.linalg.eigh, "explicit"),
    (np.sin, "elementwise"), (np.floor, "zero"), (np.polyval, "explicit"),
    (np.interp, "reverse_only")])
def test_structure_is_declared_at_the_rule(fn, structure):
    assert lookup(fn).structure == structure


def test_vjp_functions_shared_by_primitives_get_their_own_rules():
    """reshape and expand_dims share a vjp function: each primitive's vjp has the rule
    derived from its own structure (the reverse rule of reshape's vjp is reshape)."""
    a, b = lookup(np.reshape).vjps[0], lookup(np.expand_dims).vjps[0]
    assert a is not b
    assert lookup(a).name == "the reverse rule of numpy.reshape"
    assert lookup(b).name == "the reverse rule of numpy.expand_dims"


def test_supported_modes_is_read_off_the_registry():
    table = supported(modes=True)
    assert sorted(table) == supported()
    for name in ("numpy.max", "numpy.sort", "numpy.clip", "numpy.prod", "numpy.var",
                 "numpy.linalg.inv", "numpy.linalg.eigh", "numpy.cumprod", "numpy.diff",
                 "numpy.einsum", "numpy.sum", "math.sin", "*"):
        assert table[name] == {m: None for m in MODES}, (name, table[name])
    interp = table["numpy.interp"]
    assert interp["reverse"] is None and interp["forward"] is None
    assert "numpy.interp" in interp["forward-over-reverse"]
    assert "numpy.interp" in interp["reverse-over-reverse"]
    assert isinstance(interp["reverse-over-forward"], str)
    # math.gamma's derivative calls digamma, a Python function the compiler reads
    assert table["math.gamma"] == {m: None for m in MODES}


def gamma_twice(x):
    return math.lgamma(x) * 2.0 + math.gamma(x)


@pytest.mark.parametrize("x", [0.3, 1.7, 7.5])
def test_second_derivatives_of_gamma_through_digamma(x):
    expected = central(transpile.grad(gamma_twice), x, eps=1e-5)
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        assert transpile.hvp(gamma_twice, mode=mode)(x, v=1.0) == pytest.approx(
            expected, rel=1e-7)
    assert transpile.grad(transpile.grad(gamma_twice))(x) == pytest.approx(expected, rel=1e-7)


def p_interp(x):
    return np.sum(np.interp(x, [-1.0, 0.0, 2.0], [1.0, -1.0, 3.0]) ** 2)


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_a_mode_supported_reports_missing_is_refused(mode):
    reason = supported(modes=True)["numpy.interp"][mode]
    with pytest.raises(transpile.TranspileError) as info:
        transpile.hvp(p_interp, mode=mode)(X0, v=V0)
    assert reason[:40] in str(info.value)


# --- user rules declared by structure (the public door) ----------------------------------
def flip_rows(a):
    return a[::-1] * 1.0


def scaled_dot(a, b):
    return a @ b


def soft_clip(a):
    return np.minimum(np.maximum(a, -1.0), 1.0)


def cube(a):
    return a * a * a


transpile.defvjp(flip_rows, lambda g, ans, a: np.asarray(g)[::-1] * 1.0, linear=(0,))
transpile.defvjp(scaled_dot, lambda g, ans, a, b: g @ b.T, lambda g, ans, a, b: a.T @ g,
                 multilinear=[(0,), (1,)])
transpile.defvjp(soft_clip, lambda g, ans, a: g * (np.abs(a) < 1.0), piecewise_linear=True,
                 jvp=lambda tangents, a: tangents[0] * (np.abs(a) < 1.0))


def _cube_vjp(g, ans, a):
    return 3.0 * a * a * g


def _cube_vjp_tangent(tangents, g, ans, a):
    dg, da = tangents[0], tangents[2]
    out = 0.0
    if dg is not None:
        out = out + 3.0 * a * a * dg
    if da is not None:
        out = out + 6.0 * a * da * g
    return out


transpile.defvjp(cube, _cube_vjp, jvp=lambda tangents, a: 3.0 * a * a * tangents[0],
                 vjp_tangents=[_cube_vjp_tangent])


def uses_user_rules(x):
    y = flip_rows(x * 0.9)
    return (np.sum(scaled_dot(y, x.T ** 2)) + np.sum(soft_clip(x * 0.8) ** 3)
            + np.sum(cube(x) * x))


def test_user_rules_declared_by_structure_give_every_mode(tmp_path):
    table = supported(modes=True)
    for fn in (flip_rows, scaled_dot, soft_clip, cube):
        name = lookup(fn).name
        assert table[name] == {m: None for m in MODES}, (name, table[name])
    expected = _hvp_by_differences(uses_user_rules, X0, V0)
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        got = transpile.hvp(uses_user_rules, mode=mode)(X0, v=V0)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), mode
    _, t = transpile.jvp(uses_user_rules, (X0,), (V0,))
    assert t == pytest.approx(central(lambda e: uses_user_rules(X0 + e * V0), 0.0), rel=1e-6)


def test_a_declaration_that_does_not_fit_is_refused():
    with pytest.raises(ValueError):
        transpile.defvjp(cube, "3 * a * a", piecewise_linear=True)
    with pytest.raises(ValueError):
        transpile.defvjp(cube, _cube_vjp, linear=(0,), multilinear=[(0,)])
    assert math.isfinite(uses_user_rules(X0))
