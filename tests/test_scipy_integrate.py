"""scipy.integrate.odeint and solve_ivp: the adjoint method (reverse) and forward
sensitivities (forward) against central differences of the solution, with respect to y0,
the times and the entries of args; second derivatives, closures over differentiated values
and solve_ivp at times the solver picks are refused."""
import numpy as np
import pytest

integrate = pytest.importorskip("scipy.integrate")

import transpile                                         # noqa: E402
from transpile import TranspileError                     # noqa: E402
from finite_differences import central_wrt               # noqa: E402

TOL = dict(rtol=1e-12, atol=1e-12)
EPS = 1e-4        # the solver's adaptive steps make smaller differences noisy


def decay(y, t, k, c):
    return -k * y + c * np.sin(t) - 0.1 * np.mean(y ** 2)


def decay_tfirst(t, y, k, c):
    return -k * y + c * np.sin(t) - 0.1 * np.mean(y ** 2)


def pendulum(y, t, w):
    return np.array([y[1], -w * w * np.sin(y[0])])


W = np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5], [-0.8, 0.9, 0.2], [0.6, -0.3, 1.4]])


def loss(y0, t, k, c):
    ys = integrate.odeint(decay, y0, t, args=(k, c), rtol=1e-12, atol=1e-12)
    return np.sum(np.sin(ys) * W)


def loss_tfirst(y0, t, k, c):
    ys = integrate.odeint(decay_tfirst, y0, t, (k, c), rtol=1e-12, atol=1e-12, tfirst=True)
    return np.sum(np.sin(ys) * W)


def loss_pendulum(y0, w):
    ys = integrate.odeint(pendulum, y0, np.linspace(0.0, 2.0, 5), args=(w,), rtol=1e-12,
                          atol=1e-12)
    return np.sum(ys[:, 0] * np.arange(1.0, 6.0)) + np.sum(ys[:, 1] ** 2)


def loss_scalar_arg(y0, k):
    return np.sum(integrate.odeint(decay, y0, np.array([0.0, 0.5, 1.0]), args=(k, 0.3),
                                   rtol=1e-12, atol=1e-12) * W[:3])


rng = np.random.default_rng(3)
ARGS = [rng.normal(size=3), np.array([0.1, 0.4, 0.7, 1.2]), rng.uniform(0.5, 1.5, size=3),
        rng.normal(size=3)]


def _close(a, b, tol=2e-6):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


@pytest.mark.parametrize("f", [loss, loss_tfirst], ids=["y-t", "tfirst"])
@pytest.mark.parametrize("i", range(4), ids=["y0", "t", "k", "c"])
def test_reverse(f, i):
    g = transpile.grad(f, wrt=i)(*ARGS)
    _close(g, central_wrt(f, ARGS, i, eps=EPS))


def test_reverse_all_at_once():
    gs = transpile.grad(loss, wrt=(0, 1, 2, 3))(*ARGS)
    for i, g in enumerate(gs):
        _close(g, central_wrt(loss, ARGS, i, eps=EPS))


@pytest.mark.parametrize("f", [loss, loss_tfirst], ids=["y-t", "tfirst"])
def test_forward(f):
    v = [rng.normal(size=3), 0.1 * rng.normal(size=4), rng.normal(size=3), rng.normal(size=3)]
    value, tangent = transpile.jvp(f, ARGS, v)
    assert np.isclose(value, f(*ARGS))
    expected = sum(np.sum(central_wrt(f, ARGS, i, eps=EPS) * v[i]) for i in range(4))
    _close(tangent, expected)


def test_forward_one_argument():
    v = rng.normal(size=3)
    _, tangent = transpile.jvp(loss, ARGS, [None, None, v, None])
    _close(tangent, np.sum(central_wrt(loss, ARGS, 2, eps=EPS) * v))


def test_nonlinear_system_and_scalar_arg():
    args = [np.array([0.4, -0.2]), 1.3]
    for i in range(2):
        _close(transpile.grad(loss_pendulum, wrt=i)(*args),
               central_wrt(loss_pendulum, args, i, eps=EPS), 1e-5)
    args = [rng.normal(size=3), 0.8]
    _close(transpile.grad(loss_scalar_arg, wrt=1)(*args),
           central_wrt(loss_scalar_arg, args, 1, eps=EPS))


def test_second_order_is_refused():
    with pytest.raises(TranspileError, match="odeint"):
        transpile.hvp(loss, wrt=2)(*ARGS, v=np.ones(3))
    with pytest.raises(TranspileError, match="odeint"):
        transpile.hvp(loss, wrt=2, mode="reverse-over-forward")(*ARGS, v=np.ones(3))


def closure_loss(y0, k):
    def rhs(y, t):
        return -k * y
    return np.sum(integrate.odeint(rhs, y0, np.array([0.0, 1.0])))


def test_closure_over_a_differentiated_float_is_refused():
    with pytest.raises(TranspileError, match="args="):
        transpile.grad(closure_loss, wrt=1)(np.ones(3), 0.5)


def ivp_rhs(t, y, k, c):
    return -k * y + c * np.sin(t) - 0.1 * np.mean(y ** 2)


def ivp_loss(y0, t0, t_eval, k, c):
    sol = integrate.solve_ivp(ivp_rhs, (t0, 1.5), y0, t_eval=t_eval, args=(k, c),
                              rtol=1e-11, atol=1e-11)
    return np.sum(np.sin(sol.y) * W.T) + np.sum(sol.t * np.arange(1.0, 5.0))


def ivp_loss_method(y0, k):
    sol = integrate.solve_ivp(ivp_rhs, (0.0, 1.0), y0, "DOP853", np.array([0.5, 1.0]),
                              args=(k, 0.2), rtol=1e-11, atol=1e-11)
    return np.sum(sol.y ** 2)


IVP_ARGS = [rng.normal(size=3), 0.05, np.array([0.1, 0.4, 0.7, 1.2]),
            rng.uniform(0.5, 1.5, size=3), rng.normal(size=3)]


@pytest.mark.parametrize("i", range(5), ids=["y0", "t0", "t_eval", "k", "c"])
def test_solve_ivp_reverse(i):
    _close(transpile.grad(ivp_loss, wrt=i)(*IVP_ARGS), central_wrt(ivp_loss, IVP_ARGS, i,
                                                                   eps=EPS))


def test_solve_ivp_forward_and_method():
    v = [rng.normal(size=3), 0.3, 0.1 * rng.normal(size=4), rng.normal(size=3),
         rng.normal(size=3)]
    _, tangent = transpile.jvp(ivp_loss, IVP_ARGS, v)
    expected = sum(np.sum(central_wrt(ivp_loss, IVP_ARGS, i, eps=EPS) * v[i])
                   for i in range(5))
    _close(tangent, expected)
    args = [rng.normal(size=3), 0.7]
    for i in range(2):
        _close(transpile.grad(ivp_loss_method, wrt=i)(*args),
               central_wrt(ivp_loss_method, args, i, eps=EPS))


def ivp_free_times(y0):
    return np.sum(integrate.solve_ivp(ivp_rhs, (0.0, 1.0), y0, args=(1.0, 0.0)).y)


def test_solve_ivp_refusals():
    with pytest.raises(TranspileError, match="t_eval="):
        transpile.grad(ivp_free_times)(np.ones(2))
    with pytest.raises(TranspileError, match="solve_ivp"):
        transpile.hvp(ivp_loss, wrt=3)(*IVP_ARGS, v=np.ones(3))


def test_modes_declared():
    for name in ("odeint", "solve_ivp"):
        modes = transpile.rules.supported(modes=True)[f"scipy.integrate.{name}"]
        assert modes["reverse"] is None and modes["forward"] is None
        assert all(name in modes[m] for m in ("forward-over-reverse", "reverse-over-forward",
                                              "reverse-over-reverse"))


def shared_args(y0, k):
    a = (k, 0.3)
    s1 = integrate.odeint(decay, y0, np.array([0.0, 1.0]), args=a, rtol=1e-12, atol=1e-12)
    s2 = integrate.odeint(decay, y0, np.array([0.0, 2.0]), args=a, rtol=1e-12, atol=1e-12)
    span = (0.0, 1.0)
    sol = integrate.solve_ivp(ivp_rhs, span, y0, t_eval=np.array([0.5, 1.0]), args=a,
                              rtol=1e-11, atol=1e-11)
    sol2 = integrate.solve_ivp(ivp_rhs, span, y0, t_eval=np.array([0.25]), args=a,
                               rtol=1e-11, atol=1e-11)
    return (np.sum(s1) + np.sum(s2 ** 2) + np.sum(sol.y) + np.sum(sol.y ** 2)
            + np.sum(sol.t) + np.sum(sol2.y))


def test_arguments_and_results_used_twice():
    args = [rng.normal(size=3), 0.8]
    for i in range(2):
        _close(transpile.grad(shared_args, wrt=i)(*args),
               central_wrt(shared_args, args, i, eps=EPS))
