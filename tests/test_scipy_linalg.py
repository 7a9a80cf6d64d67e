"""scipy.linalg rules: programs through them against central finite differences in
reverse mode, forward mode and both Hessian-vector-product routes (tests/rule_examples.py
feeds the rule matrix one call at a time; here they are composed as people write them),
and the refusals: one TranspileError, never a number."""
import numpy as np
import pytest

sla = pytest.importorskip("scipy.linalg")

import transpile                                         # noqa: E402
from transpile import TranspileError                     # noqa: E402
from finite_differences import along, central_wrt        # noqa: E402

rng = np.random.default_rng(11)


def spd(n):
    b = rng.normal(size=(n, n))
    return b @ b.T / n + np.eye(n)


def well(n):
    return 2.0 * np.eye(n) + 0.3 * rng.normal(size=(n, n))


# every program: (x, y) -> number
def solve_pos(x, y):
    s = (x + x.T) / 2
    return np.sum(np.sin(sla.solve(s, y, assume_a="pos")))


def cho_roundtrip(x, y):
    s = (x + x.T) / 2
    return np.sum(np.sin(sla.cho_solve(sla.cho_factor(s, lower=True), y)))


def cholesky_logdet(x, y):
    s = x @ x.T + np.eye(3)
    L = sla.cholesky(s, lower=True)
    return 2 * np.sum(np.log(np.diag(L))) + np.sum(sla.solve_triangular(L, y, lower=True) ** 2)


def inv_det(x, y):
    return sla.det(x) * np.sum(sla.inv(x) @ y)


def expm_sqrtm(x, y):
    e = sla.expm(0.3 * x)
    return np.sum(np.sin(sla.sqrtm(e @ e.T) @ y))


def sylvester(x, y):
    return np.sum(np.cos(sla.solve_sylvester(x, x.T + np.eye(3), np.outer(y, y))))


def sqrtm_negative(x, y):
    """The principal root of a symmetric matrix with negative eigenvalues is complex: a
    real function of it (real and imaginary parts)."""
    r = sla.sqrtm((x + x.T) / 2 - 1.5 * np.eye(3))
    return np.sum(np.sin(np.real(r)) * y) + np.sum(np.imag(r) ** 2)


def banded(x, y):
    ab = np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]) * x[:3]
    ab = ab + np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0], [0.0, 0.0, 0.0]])
    return np.sum(np.sin(sla.solve_banded((1, 1), ab, y)))


PROGRAMS = [
    (solve_pos, lambda: spd(3), lambda: rng.normal(size=3)),
    (cho_roundtrip, lambda: spd(3), lambda: rng.normal(size=(3, 2))),
    (cholesky_logdet, lambda: rng.normal(size=(3, 3)), lambda: rng.normal(size=3)),
    (inv_det, lambda: well(3), lambda: rng.normal(size=3)),
    (expm_sqrtm, lambda: rng.normal(size=(3, 3)), lambda: rng.normal(size=3)),
    (sylvester, lambda: well(3), lambda: rng.normal(size=3)),
    (banded, lambda: rng.uniform(0.2, 0.5, size=(3, 3)), lambda: rng.normal(size=3)),
    (sqrtm_negative, lambda: 0.5 * rng.normal(size=(3, 3)) + np.diag([0.2, 1.0, 3.0]),
     lambda: rng.normal(size=3)),
]


def _close(a, b, tol=1e-5):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("f, x, y", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
@pytest.mark.parametrize("mode", ["reverse", "forward", "forward-over-reverse",
                                  "reverse-over-forward"])
def test_program(f, x, y, mode):
    args = [x(), y()]
    for i in range(2):
        if mode == "reverse":
            _close(transpile.grad(f, wrt=i)(*args), central_wrt(f, args, i))
        elif mode == "forward":
            v = rng.normal(size=np.shape(args[i]))
            ts = [None, None]
            ts[i] = v
            _close(transpile.jvp(f, args, ts)[1], np.sum(central_wrt(f, args, i) * v))
        else:
            v = rng.normal(size=np.shape(args[i]))
            hv = transpile.hvp(f, wrt=i, mode=mode)(*args, v=v)
            _close(hv, along(transpile.grad(f, wrt=i), args, i, v), 1e-4)


def lu_roundtrip(x, y):
    return np.sum(np.sin(sla.lu_solve(sla.lu_factor(x), y)))


def lu_parts(x):
    p, L, U = sla.lu(x)
    return np.sum(np.sin(L) * 0.7) + np.sum(U ** 2)


def test_lu_every_mode():
    x, y = rng.normal(size=(4, 4)), rng.normal(size=4)
    args = [x, y]
    for i in range(2):
        _close(transpile.grad(lu_roundtrip, wrt=i)(*args), central_wrt(lu_roundtrip, args, i))
    _close(transpile.grad(lu_parts)(x), central_wrt(lu_parts, [x], 0))
    v = rng.normal(size=(4, 4))
    _close(transpile.jvp(lu_parts, [x], [v])[1], np.sum(central_wrt(lu_parts, [x], 0) * v))
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        _close(transpile.hvp(lu_parts, mode=mode)(x, v=v),
               along(transpile.grad(lu_parts), [x], 0, v), 1e-4)
        _close(transpile.hvp(lu_roundtrip, mode=mode)(x, y, v=v),
               along(transpile.grad(lu_roundtrip), [x, y], 0, v), 1e-4)


def test_gradient_reads_only_the_triangle_used():
    """solve(assume_a='pos') and cholesky read one triangle: the other gets no gradient."""
    x, y = spd(3), rng.normal(size=3)

    def upper(x, y):
        return np.sum(sla.solve(x, y, assume_a="pos"))

    def lower(x, y):
        return np.sum(sla.cholesky(x, lower=True))
    assert np.all(np.tril(transpile.grad(upper)(x, y), -1) == 0)
    assert np.all(np.triu(transpile.grad(lower)(x, y), 1) == 0)
    _close(transpile.grad(upper)(x, y), central_wrt(upper, [x, y], 0))
    _close(transpile.grad(lower)(x, y), central_wrt(lower, [x, y], 0))


def sqrtm_sum(x):
    return np.sum(sla.sqrtm(x))


def lu_of_rect(x):
    return np.sum(sla.lu(x)[2])


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("f, x, match", [
    (sqrtm_sum, -np.eye(3) + 0.1 * np.ones((3, 3)), "complex"),
    (lu_of_rect, np.arange(6.0).reshape(2, 3) + np.eye(2, 3), "square"),
], ids=["sqrtm-complex", "lu-rectangular"])
def test_refusals(f, x, match):
    with pytest.raises(TranspileError, match=match):
        transpile.grad(f)(x)


def test_supported_modes():
    modes = transpile.rules.supported(modes=True)
    for name in ("solve", "inv", "det", "cholesky", "solve_triangular", "solve_banded",
                 "cho_factor", "cho_solve", "lu_factor", "lu_solve", "lu", "sqrtm", "expm",
                 "solve_sylvester"):
        assert all(r is None for r in modes[f"scipy.linalg.{name}"].values()), name


def factored_twice(x, y):
    c = sla.cho_factor(x, lower=True)
    f = sla.lu_factor(x)
    return (np.sum(sla.cho_solve(c, y) ** 2) + np.sum(sla.cho_solve(c, 2 * y) * y)
            + np.sum(np.sin(sla.lu_solve(f, y))) + np.sum(sla.lu_solve(f, y, trans=1) ** 2))


def pair_argument(pair, y):
    return np.sum(sla.cho_solve(pair, y) ** 2)


def test_one_factorization_used_twice():
    """The adjoints of one (factor, flag) pair from several solves add up entry by entry
    (plain tuples would be joined: the first solve's share alone reached the factor)."""
    x, y = spd(3), rng.normal(size=3)
    args = [x, y]
    _close(transpile.grad(factored_twice)(*args), central_wrt(factored_twice, args, 0))
    v = rng.normal(size=(3, 3))
    for mode in ("forward-over-reverse", "reverse-over-forward"):
        _close(transpile.hvp(factored_twice, mode=mode)(*args, v=v),
               along(transpile.grad(factored_twice), args, 0, v), 1e-4)
    L = np.linalg.cholesky(x)
    g = transpile.grad(pair_argument)((L, True), y)
    assert isinstance(g, tuple) and g[1] is None
    _close(g[0], central_wrt(lambda c, y: pair_argument((c, True), y), [L, y], 0))


def cho_factor_whole(x):
    return np.sum(np.sin(sla.cho_factor(x, lower=True)[0]))


@pytest.mark.parametrize("other", ["full", "zero"])
def test_cho_factor_other_triangle(other):
    """The triangle without the factor: a copy of the input's up to SciPy 1.17, zeros from
    1.18; either way the derivative is this SciPy's (an input whose other triangle is zero
    already cannot tell them apart from the result)."""
    x = spd(3)
    if other == "zero":
        x = np.tril(x)
    _close(transpile.grad(cho_factor_whole)(x), central_wrt(cho_factor_whole, [x], 0))
    v = rng.normal(size=(3, 3))
    _close(transpile.jvp(cho_factor_whole, [x], [v])[1],
           (cho_factor_whole(x + 1e-6 * v) - cho_factor_whole(x - 1e-6 * v)) / 2e-6, 1e-5)
