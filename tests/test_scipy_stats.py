"""scipy.stats distributions: gradients (reverse), tangents (forward) and Hessian-vector
products (both routes) against central finite differences over every argument, frozen
distributions, keyword and left-out loc/scale, and the refusals."""
import numpy as np
import pytest

import transpile
from transpile import TranspileError
from finite_differences import central, central_wrt

scipy = pytest.importorskip("scipy")
import scipy.stats as st  # noqa: E402
from scipy.stats import multivariate_normal, norm  # noqa: E402

RTOL, ATOL = 1e-5, 1e-7
rng = np.random.default_rng(7)
X4 = rng.normal(size=4)
M4 = rng.normal(size=4)
S4 = rng.uniform(0.8, 2.0, size=4)
POS4 = rng.uniform(0.6, 3.0, size=4)
A4 = rng.uniform(1.3, 3.0, size=4)
B4 = rng.uniform(1.3, 3.0, size=4)
U4 = rng.uniform(0.2, 0.8, size=4)
DF4 = rng.uniform(2.5, 5.0, size=4)
K4 = np.array([0.0, 1.0, 3.0, 2.0])
C4 = rng.normal(size=(4, 4))
C4 = C4 @ C4.T / 4 + np.eye(4)


def sym(c):
    return 0.5 * (c + c.T)


def close(a, b):
    assert np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=RTOL, atol=ATOL), \
        (a, b)


def check_all_modes(f, args, second=True, refused=()):
    """Every argument: grad vs central differences; jvp along a random direction; and the
    Hessian-vector product by both routes against differences of the gradient (the
    routes in `refused` must raise TranspileError instead)."""
    args = tuple(np.array(a, float) for a in args)
    n = len(args)
    wrt = tuple(range(n))
    grads = transpile.grad(f, wrt)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i in range(n):
        close(grads[i], central_wrt(f, args, i))
    dirs = tuple(rng.normal(size=np.shape(a)) for a in args)
    _, tangent = transpile.jvp(f, args, dirs)

    def along(t):
        return f(*[a + t * v for a, v in zip(args, dirs)])
    close(tangent, central(along, 0.0))
    if not second:
        return
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        if mode in refused:
            with pytest.raises(TranspileError):
                transpile.hvp(f, wrt, mode=mode)(*args, v=dirs)
            continue
        hv = transpile.hvp(f, wrt, mode=mode)(*args, v=dirs)
        hv = hv if isinstance(hv, tuple) else (hv,)
        for i in range(n):
            def gi(t, i=i):
                g = transpile.grad(f, wrt)(*[a + t * v for a, v in zip(args, dirs)])
                return (g if isinstance(g, tuple) else (g,))[i]
            eps = 1e-5
            close(hv[i], (gi(eps) - gi(-eps)) / (2 * eps))


# ---- univariate continuous -------------------------------------------------------------
@pytest.mark.parametrize("method", ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"])
def test_norm_every_method_every_mode(method):
    fn = getattr(st.norm, method)

    def f(x, m, s):
        return np.sum(fn(x, m, s))
    check_all_modes(f, (X4, M4, S4))


@pytest.mark.parametrize("method", ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"])
def test_norm_broadcast(method):
    fn = getattr(st.norm, method)

    def f(x, m, s):
        return np.sum(np.sin(fn(x, m, s)))
    check_all_modes(f, (rng.normal(size=(4, 3)), rng.normal(size=(1, 3)),
                        rng.uniform(0.8, 2.0, size=(4, 1))), second=False)


def test_norm_keywords_and_left_out_defaults():
    def by_keyword(x, m, s):
        return np.sum(st.norm.logpdf(x, loc=m, scale=s))

    def scale_only(x, s):
        return np.sum(st.norm.pdf(x, scale=s))

    def x_only(x):
        return np.sum(st.norm.logcdf(x))

    def loc_only(x, m):
        return np.sum(st.norm.cdf(x, m))
    check_all_modes(by_keyword, (X4, M4, S4))
    check_all_modes(scale_only, (X4, S4))
    check_all_modes(x_only, (X4,))
    check_all_modes(loc_only, (X4, M4))


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_t_density_in_every_argument(method):
    fn = getattr(st.t, method)

    def f(x, df, m, s):
        return np.sum(fn(x, df, m, s))
    check_all_modes(f, (X4, DF4, M4, S4), second=False)


def test_t_density_second_order_in_x_loc_scale():
    def f(x, m, s):
        return np.sum(st.t.logpdf(x, 3.5, loc=m, scale=s))
    check_all_modes(f, (X4, M4, S4))


@pytest.mark.parametrize("method", ["cdf", "logcdf", "sf", "logsf"])
def test_t_cdfs_in_x_loc_scale(method):
    fn = getattr(st.t, method)

    def f(x, m, s):
        return np.sum(fn(x, 3.5, m, s))
    check_all_modes(f, (X4, M4, S4))


def test_shape_parameter_of_a_cdf_is_refused():
    def f(x, df):
        return np.sum(st.t.cdf(x, df))
    with pytest.raises(TranspileError):
        transpile.grad(f, 1)(X4, DF4)
    close(transpile.grad(f, 0)(X4, DF4), central_wrt(f, (X4, DF4), 0))


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_gamma_density(method):
    fn = getattr(st.gamma, method)

    def f(x, a, s):
        return np.sum(fn(x, a, scale=s))
    check_all_modes(f, (POS4, A4, S4), second=False)


@pytest.mark.parametrize("method", ["cdf", "logcdf", "sf", "logsf"])
def test_gamma_cdfs(method):
    fn = getattr(st.gamma, method)

    def f(x, s):
        return np.sum(fn(x, 2.5, 0.1, s))
    check_all_modes(f, (POS4, S4))


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_beta_density(method):
    fn = getattr(st.beta, method)

    def f(x, a, b):
        return np.sum(fn(x, a, b))
    check_all_modes(f, (U4, A4, B4), second=False)


@pytest.mark.parametrize("method", ["cdf", "logcdf", "sf", "logsf"])
def test_beta_cdfs(method):
    fn = getattr(st.beta, method)

    def f(x):
        return np.sum(fn(x, 2.0, 3.0))
    check_all_modes(f, (U4,))


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_chi2_density(method):
    fn = getattr(st.chi2, method)

    def f(x, df):
        return np.sum(fn(x, df))
    check_all_modes(f, (POS4, DF4), second=False)


@pytest.mark.parametrize("method", ["cdf", "logcdf", "sf", "logsf"])
def test_chi2_cdfs(method):
    fn = getattr(st.chi2, method)

    def f(x):
        return np.sum(fn(x, 3.0))
    check_all_modes(f, (POS4,))


@pytest.mark.parametrize("dist", ["expon", "logistic", "cauchy", "laplace"])
@pytest.mark.parametrize("method", ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"])
def test_location_scale_families(dist, method):
    fn = getattr(getattr(st, dist), method)
    x = POS4 if dist == "expon" else np.array([-1.3, -0.4, 0.5, 1.7])   # not at a kink

    def f(x, s):
        return np.sum(fn(x, scale=s))

    def with_loc(x, m, s):
        return np.sum(fn(x, m, s))
    check_all_modes(f, (x, S4))
    if dist in ("logistic", "cauchy"):
        check_all_modes(with_loc, (X4, M4, S4))


QUANTILES = {
    "norm": lambda q, m, s: np.sum(st.norm.ppf(q, m, s)) + np.sum(st.norm.isf(q, m, s)),
    "t": lambda q, m, s: np.sum(st.t.ppf(q, 3.5, m, s)) + np.sum(st.t.isf(q, 3.5, m, s)),
    "gamma": lambda q, m, s: np.sum(st.gamma.ppf(q, 2.5, loc=m, scale=s))
    + np.sum(st.gamma.isf(q, 2.5, loc=m, scale=s)),
    "beta": lambda q, m, s: np.sum(st.beta.ppf(q, 2.0, 3.0, m, s) * st.beta.isf(q, 2.0, 3.0,
                                                                              m, s)),
    "chi2": lambda q, m, s: np.sum(st.chi2.ppf(q, 3.0, m, s) ** 2)
    + np.sum(st.chi2.isf(q, 3.0, m, s)),
    "logistic": lambda q, m, s: np.sum(st.logistic.ppf(q, scale=s) * st.logistic.isf(q, m)),
}


@pytest.mark.parametrize("dist", sorted(QUANTILES))
def test_quantiles(dist):
    check_all_modes(QUANTILES[dist], (U4, M4, S4))


def test_quantile_shape_parameter_is_refused():
    def f(q, df):
        return np.sum(st.t.ppf(q, df))
    with pytest.raises(TranspileError, match="with respect to 'df' \\(a shape parameter"):
        transpile.grad(f, 1)(U4, DF4)


# ---- poisson ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"])
def test_poisson_in_mu(method):
    fn = getattr(st.poisson, method)

    def f(mu):
        return np.sum(fn(K4, mu))
    check_all_modes(f, (A4,))


def test_poisson_count_is_refused():
    def f(k, mu):
        return np.sum(st.poisson.logpmf(k, mu))
    with pytest.raises(TranspileError):
        transpile.grad(f, 0)(K4, A4)


# ---- multivariate normal, dirichlet ------------------------------------------------------
# their rules are vjp and jvp functions in plain NumPy, which transpile differentiates
# again for the second-order routes
@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_mvn_density_every_argument(method):
    fn = getattr(multivariate_normal, method)

    def f(x, m, c):
        return fn(x, m, sym(c))
    check_all_modes(f, (X4, M4, C4))


def test_mvn_several_points_and_keywords():
    def f(x, m, c):
        return np.sum(multivariate_normal.logpdf(x, mean=m, cov=sym(c)))
    check_all_modes(f, (rng.normal(size=(5, 4)), M4, C4))


def test_mvn_diagonal_and_default_mean():
    def diagonal(x, m, d):
        return multivariate_normal.logpdf(x, m, d)

    def default_mean(x, c):
        return multivariate_normal.pdf(x, cov=sym(c))
    check_all_modes(diagonal, (X4, M4, POS4))
    check_all_modes(default_mean, (X4, C4))


def test_mvn_entropy():
    def f(m, c):
        return multivariate_normal.entropy(m, sym(c))
    check_all_modes(f, (M4, C4))


def test_mvn_allow_singular():
    cov = np.diag([1.0, 1.0, 0.0, 0.0])

    def f(x, m, c):
        x = np.concatenate([x[:2], m[2:]])
        return multivariate_normal.logpdf(x, m, c, allow_singular=True)
    x = np.concatenate([rng.normal(size=2), np.zeros(2)])
    m = np.concatenate([rng.normal(size=2), np.zeros(2)])
    g = transpile.grad(f, (0, 1))(x, m, cov)
    for i in range(2):
        close(g[i], central_wrt(f, (x, m, cov), i))
    with pytest.raises(TranspileError, match="singular"):
        transpile.grad(f, 2)(x, m, cov)


@pytest.mark.parametrize("method", ["logpdf", "pdf"])
def test_dirichlet(method):
    fn = getattr(st.dirichlet, method)
    alpha = rng.uniform(1.2, 2.5, size=4)
    x = rng.dirichlet(alpha)

    def in_x(x):
        return fn(x / np.sum(x), alpha)

    def in_alpha(a):
        return fn(x, a)
    check_all_modes(in_x, (x,))
    check_all_modes(in_alpha, (alpha,), second=False)


def test_dirichlet_short_x():
    alpha = np.array([1.5, 2.0, 2.5])

    def f(x):
        return st.dirichlet.logpdf(x, alpha)
    check_all_modes(f, (np.array([0.3, 0.45]),))


# ---- frozen distributions ----------------------------------------------------------------
def test_frozen_inline():
    def f(x, m, s):
        return np.sum(norm(m, s).logpdf(x)) + np.sum(st.norm(loc=m, scale=s).cdf(x))
    check_all_modes(f, (X4, M4, S4))


def test_frozen_variable_reads_its_parameters_where_frozen():
    def f(x, m, s):
        rv = st.norm(m, s)
        m = m * 2.0               # rv keeps the first m
        return np.sum(rv.logpdf(x) * m) + np.sum(rv.sf(x))
    check_all_modes(f, (X4, M4, S4))


def test_frozen_multivariate():
    def f(x, m, c):
        c = sym(c)
        rv = multivariate_normal(m, c)
        return rv.logpdf(x) + multivariate_normal(mean=m, cov=c).entropy()
    check_all_modes(f, (X4, M4, C4))


def test_frozen_shapes():
    def f(x, df, s):
        return np.sum(st.t(df, scale=s).logpdf(x))
    check_all_modes(f, (X4, DF4, S4), second=False)


# ---- the primal is SciPy's own ----------------------------------------------------------
def test_value_is_scipys():
    def f(x, m, s):
        return np.sum(st.norm.logpdf(x, scale=s)) + np.sum(norm(m, s).cdf(x))
    value, _ = transpile.value_and_grad(f, (0, 1, 2))(X4, M4, S4)
    assert value == f(X4, M4, S4)


def test_unsupported_method_is_one_transpile_error():
    def f(m):
        return np.sum(st.norm.moment(2, m))
    with pytest.raises(TranspileError):
        transpile.grad(f)(M4)


def test_frozen_in_a_loop():
    def f(x, m):
        total = 0.0
        for i in range(3):
            rv = st.norm(m * (i + 1.0), 1.5)
            total = total + np.sum(rv.logpdf(x))
        return total
    check_all_modes(f, (X4, np.array(0.3)))


def test_frozen_method_with_keyword_argument_is_not_rewritten():
    def f(x, m):
        return np.sum(st.norm(m, 1.5).logpdf(x=x))
    try:
        g = transpile.grad(f, 1)(X4, 0.3)
    except TranspileError:
        return                         # refused: allowed
    close(g, central_wrt(f, (X4, 0.3), 1))


def test_frozen_used_otherwise_or_in_a_nested_function_is_refused():
    def other_use(x, m):
        rv = st.norm(m, 1.5)
        return np.sum(rv.logpdf(x)) + rv.mean()

    def nested(x, m):
        rv = st.norm(m, 1.5)

        def inner(z):
            return rv.logpdf(z)
        return np.sum(inner(x))
    for f in (other_use, nested):
        with pytest.raises(TranspileError):
            transpile.grad(f, 1)(X4, 0.3)
