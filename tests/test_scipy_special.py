"""scipy.special rules: every derivative against central finite differences, in reverse
mode, forward mode and Hessian-vector products; the arguments without a closed-form
derivative are refused."""
import numpy as np
import pytest

special = pytest.importorskip("scipy.special")

import transpile                                         # noqa: E402
from transpile import TranspileError                     # noqa: E402
from finite_differences import central, central_wrt      # noqa: E402

rng = np.random.default_rng(7)


def U(lo, hi, n=3):
    return rng.uniform(lo, hi, size=n)


N3 = lambda: rng.normal(size=3)          # noqa: E731
P3 = lambda: U(0.5, 2.0)                 # noqa: E731

UNARY = {
    "expit": N3, "logit": lambda: U(0.2, 0.8), "log_expit": N3, "softplus": N3,
    "erf": N3, "erfc": N3, "erfcx": N3, "erfinv": lambda: U(-0.8, 0.8),
    "erfcinv": lambda: U(0.3, 1.7), "dawsn": N3, "ndtr": N3, "log_ndtr": N3,
    "ndtri": lambda: U(0.2, 0.8), "gamma": P3, "gammaln": P3, "loggamma": P3,
    "rgamma": P3, "digamma": P3, "psi": P3, "entr": P3, "j0": N3, "j1": N3, "y0": P3,
    "y1": P3, "i0": N3, "i1": N3, "i0e": lambda: U(0.3, 2.0) * [1, -1, 1], "i1e": N3,
    "k0": P3, "k1": P3, "k0e": P3, "k1e": P3, "spence": P3, "erfi": N3, "exp2": N3,
    "exp10": N3, "expm1": N3, "log1p": P3, "cbrt": P3,
}
UNARY = {k: v for k, v in UNARY.items() if hasattr(special, k)}

# (name, source of the call in x and y, domain of x, domain of y, differentiated)
CALLS = [
    ("jv", "special.jv(1.5, x)", P3, None),
    ("jn", "special.jn(2, x)", N3, None),
    ("yv", "special.yv(1.5, x)", P3, None),
    ("yn", "special.yn(2, x)", P3, None),
    ("iv", "special.iv(1.5, x)", P3, None),
    ("ive", "special.ive(1.5, x)", P3, None),
    ("ive-integer-order", "special.ive(1.0, x)", lambda: U(0.3, 2.0) * [1, -1, 1], None),
    ("kv", "special.kv(1.5, x)", P3, None),
    ("kve", "special.kve(1.5, x)", P3, None),
    ("polygamma", "special.polygamma(2, x)", P3, None),
    ("multigammaln", "special.multigammaln(x, 3)", lambda: U(2.5, 4.0), None),
    ("gammainc", "special.gammainc(2.5, x)", P3, None),
    ("gammaincc", "special.gammaincc(2.5, x)", P3, None),
    ("betainc", "special.betainc(2.0, 3.0, x)", lambda: U(0.2, 0.8), None),
    ("zeta", "special.zeta(3.0, x)", P3, None),
    ("beta", "special.beta(x, y)", P3, P3),
    ("betaln", "special.betaln(x, y)", P3, P3),
    ("binom", "special.binom(x, y)", lambda: 4.0 + P3(), P3),
    ("poch", "special.poch(x, y)", P3, P3),
    ("xlogy", "special.xlogy(x, y)", P3, P3),
    ("xlog1py", "special.xlog1py(x, y)", P3, P3),
    ("rel_entr", "special.rel_entr(x, y)", P3, P3),
    ("kl_div", "special.kl_div(x, y)", P3, P3),
]
for _n in UNARY:
    CALLS.append((_n, f"special.{_n}(x)", UNARY[_n], None))


def _cases():
    return [pytest.param(expr, dx, dy, id=name) for name, expr, dx, dy in CALLS]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """The test programs written to one module (transpile reads their source)."""
    d = tmp_path_factory.mktemp("scipy_special")
    lines = ["import numpy as np", "import scipy.special as special", ""]
    for k, (_, expr, _, _) in enumerate(CALLS):
        lines += [f"def f{k}(x, y, w):", f"    return np.sum(np.sin({expr}) * w)", ""]
    path = d / "special_programs.py"
    path.write_text("\n".join(lines))
    import importlib.util
    spec = importlib.util.spec_from_file_location("special_programs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {expr: getattr(module, f"f{k}") for k, (_, expr, _, _) in enumerate(CALLS)}


def _close(a, b, atol):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, atol=atol, rtol=1e-5), (a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("expr, dx, dy", _cases())
@pytest.mark.parametrize("mode", ["reverse", "forward", "hvp"])
def test_rule_against_finite_differences(programs, expr, dx, dy, mode):
    f = programs[expr]
    x = dx()
    y = dy() if dy is not None else 0.0
    w = rng.normal(size=3)
    args = [x, y, w]
    wrt = [0] if dy is None else [0, 1]
    for i in wrt:
        _check_mode(f, args, i, mode)


def _check_mode(f, args, i, mode):
    """f's derivative in args[i], in one mode (reverse, forward or hvp), against central
    differences."""
    if mode == "reverse":
        _close(transpile.grad(f, wrt=i)(*args), central_wrt(f, args, i), 1e-5)
    elif mode == "forward":
        v = rng.normal(size=np.shape(args[i]))
        tangents = [None] * len(args)
        tangents[i] = v
        _, t = transpile.jvp(f, args, tangents)
        _close(t, np.sum(central_wrt(f, args, i) * v), 1e-5)
    else:
        v = rng.normal(size=np.shape(args[i]))
        hv = transpile.hvp(f, wrt=i)(*args, v=v)
        grad = transpile.grad(f, wrt=i)

        def directional(s):
            a = list(args)
            a[i] = args[i] + s * v
            return grad(*a)
        _close(hv, (directional(1e-5) - directional(-1e-5)) / 2e-5, 1e-4)


def test_aliases_share_one_rule():
    from transpile.rules import lookup
    assert lookup(special.psi) is lookup(special.digamma) is not None
    assert lookup(special.jn) is lookup(special.jv) is not None


# --------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax
# --------------------------------------------------------------------------------------
def lse_axis(x):
    return np.sum(np.sin(special.logsumexp(x, axis=1)) * np.array([0.3, -1.2]))


def lse_keepdims(x):
    return np.sum(np.sin(special.logsumexp(x, 0, keepdims=True)) * np.array([0.3, -1.2, 2.0]))


def lse_b(x, b):
    return np.sum(np.sin(special.logsumexp(x, 1, b)) * np.array([0.3, -1.2]))


def lse_sign(x, b):
    out, sgn = special.logsumexp(x, None, b, return_sign=True)
    return np.sin(out) * sgn


def lse_tuple_axes(x):
    return np.sin(np.sum(special.logsumexp(x, axis=(0, 1)) * np.array([1.0, -0.5])))


def softmax_axis(x):
    return np.sum(np.sin(special.softmax(x, axis=1)) * np.arange(1.0, 7.0).reshape(2, 3))


def softmax_all(x):
    return np.sum(np.sin(special.softmax(x)) * np.arange(1.0, 7.0).reshape(2, 3))


def log_softmax_axis(x):
    return np.sum(np.sin(special.log_softmax(x, axis=0)) * np.arange(1.0, 7.0).reshape(2, 3))


REDUCTIONS = [
    (lse_axis, lambda: [rng.normal(size=(2, 3))]),
    (lse_keepdims, lambda: [rng.normal(size=(2, 3))]),
    (lse_b, lambda: [rng.normal(size=(2, 3)), rng.uniform(0.5, 2.0, size=(2, 3))]),
    (lse_b, lambda: [rng.normal(size=(2, 3)), rng.uniform(0.5, 2.0, size=3)]),
    (lse_sign, lambda: [rng.normal(size=3), np.array([1.0, -0.2, 0.5])]),
    (lse_sign, lambda: [rng.normal(size=3), np.array([-1.0, -0.2, 0.5])]),
    (lse_tuple_axes, lambda: [rng.normal(size=(2, 3, 2))]),
    (softmax_axis, lambda: [rng.normal(size=(2, 3))]),
    (softmax_all, lambda: [rng.normal(size=(2, 3))]),
    (log_softmax_axis, lambda: [rng.normal(size=(2, 3))]),
]


@pytest.mark.parametrize("f, make", [pytest.param(f, m, id=f"{f.__name__}-{k}")
                                     for k, (f, m) in enumerate(REDUCTIONS)])
@pytest.mark.parametrize("mode", ["reverse", "forward", "hvp"])
def test_reductions_against_finite_differences(f, make, mode):
    args = make()
    for i in range(len(args)):
        _check_mode(f, args, i, mode)


def test_logsumexp_second_order_grad_of_grad():
    def f(x):
        return special.logsumexp(x)

    def g(x):
        return np.sum(np.sin(transpile.grad(f)(x)))
    x = rng.normal(size=4)
    _close(transpile.grad(g)(x), central(g, x), 1e-5)


def test_logsumexp_itself_differentiated():
    """The primitive passed to vjp directly: its rule applies (scipy's source is not
    read)."""
    x = rng.normal(size=(3, 4))
    value, pullback = transpile.vjp(special.logsumexp, x, axis=0)
    g = rng.normal(size=4)
    (dx,) = pullback(g) if isinstance(pullback(g), tuple) else (pullback(g),)
    _close(dx, central(lambda z: np.dot(special.logsumexp(z, axis=0), g), x), 1e-5)


def test_logsumexp_b_by_keyword():
    """b= after a skipped axis= is put in its place (axis at its default None)."""
    def f(x, b):
        return special.logsumexp(x, b=b)
    x, b = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    for i in (0, 1):
        _close(transpile.grad(f, wrt=i)(x, b), central_wrt(f, [x, b], i), 1e-5)
        v = rng.normal(size=3)
        tangents = [None, None]
        tangents[i] = v
        _close(transpile.jvp(f, [x, b], tangents)[1],
               np.dot(central_wrt(f, [x, b], i), v), 1e-5)


# --------------------------------------------------------------------------------------
# no closed form: refused, never 0
# --------------------------------------------------------------------------------------
def order_jv(v, x):
    return special.jv(v, x)


def order_iv(v, x):
    return special.iv(v, x)


def n_polygamma(n, x):
    return special.polygamma(n, x)


def shape_gammainc(a, x):
    return special.gammainc(a, x)


def shape_betainc(a, x):
    return special.betainc(a, 2.0, x)


def riemann_zeta(x, q):
    return special.zeta(x) + q


def hurwitz_zeta_x(x, q):
    return special.zeta(x, q)


@pytest.mark.parametrize("f, args", [
    (order_jv, (1.5, 0.7)), (order_iv, (1.5, 0.7)), (n_polygamma, (1.0, 0.7)),
    (shape_gammainc, (2.0, 0.7)), (shape_betainc, (2.0, 0.3)), (riemann_zeta, (3.0, 1.0)),
    (hurwitz_zeta_x, (3.0, 1.5))])
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_no_closed_form_is_refused(f, args, mode):
    with pytest.raises(TranspileError, match="no derivative with respect to"):
        if mode == "reverse":
            transpile.grad(f, wrt=0)(*args)
        else:
            transpile.jvp(f, list(args), [1.0, None])


def test_refusal_names_the_users_line():
    with pytest.raises(TranspileError) as info:
        transpile.grad(order_jv, wrt=0)(1.5, 0.7)
    assert "test_scipy_special.py" in str(info.value)


def test_gammasgn_is_zero():
    def f(x):
        return np.sum(special.gammasgn(x) * x)
    x = np.array([-0.5, 1.5, -2.5])
    _close(transpile.grad(f)(x), special.gammasgn(x), 0)
