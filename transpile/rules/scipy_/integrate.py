"""Rules for scipy.integrate (real arguments).

odeint(func, y0, t, args=()) is differentiated in y0, t and the entries of args by the
ADJOINT method: the cotangent of the trajectory is carried backwards from each output time
to the one before by solving, with odeint itself, the augmented system

    y' = f(y, t),  a' = -a^T df/dy,  b' = -a^T df/dargs

(a: the adjoint of the state, b: the adjoint of args, y solved again backwards from the
stored output), adding each output's cotangent to a as its time is reached. With lam the
adjoint at t[0] from the later outputs, the gradients are lam + G[0] for y0,
G[i] . f(y_i, t_i) for t[i] (i > 0) and -lam . f(y0, t[0]) for t[0]. Forward mode solves
the forward sensitivity system s' = df/dy s + df/dargs dargs, s(t0) = dy0 - f(y0, t0) dt0,
and adds f(y_i, t_i) dt_i at each output. The vector-Jacobian (and Jacobian-vector)
products of the user's func come from transpile itself (`transpile.vjp`, `transpile.jvp`
on func), which reads func's source; SciPy's solver is never read. Second derivatives
through odeint are refused.

func must be a function transpile reads (a def in a file) whose derivative flows through
its arguments only: a func that closes over a differentiated value is refused where it is
passed (pass the value through args=, where its derivative is taken). solve_ivp is refused with a message
that names odeint.
"""
import inspect

import numpy as np
import scipy.integrate as integrate

from ..registry import defvjp
from ..derivative_code import _refused
from ..numpy_ import _fit, _is_zero, _t
from ...errors import TranspileError

_NAME = "scipy.integrate.odeint"
_SOLVER = ("rtol", "atol", "tcrit", "h0", "hmax", "hmin", "ixpr", "mxstep", "mxhnil",
           "mxordn", "mxords", "ml", "mu")


def _float_like(v):
    return isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind == "f") \
        or isinstance(v, np.floating)


class _Problem:
    """One odeint call: func's argument order, the flattened args and the solver options
    (the user's, reused for the backward solves)."""

    def __init__(self, func, y0, t, args, kw):
        if kw.get("Dfun") is not None or kw.get("full_output"):
            raise TranspileError(f"{_NAME}: derivatives without Dfun= and full_output= only")
        if np.ndim(y0) > 1:
            raise TranspileError(f"{_NAME}: derivatives for a 1-D y0 only")
        self.func, self.tfirst = func, bool(kw.get("tfirst", False))
        self.args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        self.shaped = isinstance(args, (tuple, list))
        self.y0 = np.atleast_1d(np.asarray(y0, dtype=float))
        self.t = np.asarray(t, dtype=float)
        self.active = [k for k, a in enumerate(self.args) if _float_like(a) or (
            isinstance(a, int) and not isinstance(a, bool))]
        self.sizes = [int(np.size(self.args[k])) for k in self.active]
        self.options = {k: kw[k] for k in _SOLVER if k in kw}

    def call_args(self, y, t):
        return ((t, y) if self.tfirst else (y, t)) + self.args

    def f(self, y, t):
        return np.asarray(self.func(*self.call_args(y, t)), dtype=float).reshape(-1)

    def vjp(self, y, t, a):
        """(f, a^T df/dy, a^T df/dargs flattened) at (y, t)."""
        iy = 1 if self.tfirst else 0
        wrt = (iy,) + tuple(2 + k for k in self.active)
        import transpile
        value, pull = transpile.vjp(self.func, *self.call_args(y, t), wrt=wrt)
        grads = pull(np.reshape(a, np.shape(value)))
        grads = grads if isinstance(grads, tuple) else (grads,)
        gy = np.asarray(grads[0], dtype=float).reshape(-1)
        gargs = [np.zeros(s) if g is None else np.asarray(g, dtype=float).reshape(-1)
                 for g, s in zip(grads[1:], self.sizes)]
        return (np.asarray(value, dtype=float).reshape(-1), gy,
                np.concatenate(gargs) if gargs else np.zeros(0))

    def jvp(self, y, t, s, dargs):
        import transpile
        tangents = [None] * (2 + len(self.args))
        tangents[1 if self.tfirst else 0] = np.reshape(s, np.shape(y))
        for k, d in zip(self.active, dargs):
            tangents[2 + k] = d
        value, tangent = transpile.jvp(self.func, self.call_args(y, t), tangents)
        return (np.asarray(value, dtype=float).reshape(-1),
                np.asarray(tangent, dtype=float).reshape(-1) * np.ones(np.size(value)))

    def unflatten(self, flat):
        out, pos = [None] * len(self.args), 0
        for k, size in zip(self.active, self.sizes):
            out[k] = _fit(flat[pos:pos + size].reshape(np.shape(self.args[k])), self.args[k])
            pos += size
        return out if self.shaped else out[0]


_SIGNATURE = inspect.signature(integrate.odeint)


def _problem(*call, **kwargs):
    """The _Problem of odeint(*call, **kwargs) (a call of odeint itself, differentiated
    directly, passes every parameter)."""
    b = _SIGNATURE.bind(*call, **kwargs)
    kw = dict(b.arguments)
    func, y0, t = kw.pop("func"), kw.pop("y0"), kw.pop("t")
    return _Problem(func, y0, t, kw.pop("args", ()), kw)


def _adjoint(g, ans, *call, **kwargs):
    """(the problem, the gradient of y0, of t, of args flattened) by the backward solves."""
    p = _problem(*call, **kwargs)
    Y = np.asarray(ans, dtype=float)
    T, n = Y.shape
    G = np.broadcast_to(np.asarray(g, dtype=float), Y.shape)
    m = sum(p.sizes)

    def augmented(state, t):
        y, a = state[:n], state[n:2 * n]
        fy, ay, aargs = p.vjp(y, t, a)
        return np.concatenate([fy, -ay, -aargs])

    lam, gargs = np.zeros(n), np.zeros(m)
    gt = np.zeros(T)
    for i in range(T - 1, 0, -1):
        lam = lam + G[i]
        gt[i] = float(np.dot(G[i], p.f(Y[i], p.t[i])))
        state = np.concatenate([Y[i], lam, gargs])
        back = integrate.odeint(augmented, state, np.array([p.t[i], p.t[i - 1]]),
                                **p.options)[1]
        lam, gargs = back[n:2 * n], back[2 * n:]
    gt[0] = -float(np.dot(lam, p.f(Y[0], p.t[0]))) if T > 1 else 0.0
    return p, lam + G[0], gt, gargs


def odeint_vjp_y0(g, ans, *call, **kwargs):
    y0 = _SIGNATURE.bind(*call, **kwargs).arguments["y0"]
    if _is_zero(g):
        return _fit(np.zeros(np.shape(y0)), y0)
    return _fit(np.reshape(_adjoint(g, ans, *call, **kwargs)[1], np.shape(y0)), y0)


def odeint_vjp_t(g, ans, *call, **kwargs):
    t = _SIGNATURE.bind(*call, **kwargs).arguments["t"]
    if _is_zero(g):
        return _fit(np.zeros(np.shape(t)), t)
    return _fit(_adjoint(g, ans, *call, **kwargs)[2], t)


def odeint_vjp_args(g, ans, *call, **kwargs):
    p = _problem(*call, **kwargs)
    if _is_zero(g):
        return p.unflatten(np.zeros(sum(p.sizes)))
    return p.unflatten(_adjoint(g, ans, *call, **kwargs)[3])


def _arg_tangents(p, targs):
    """The tangents of the active entries of args (zeros where none)."""
    if _is_zero(targs) or targs is None:
        return [np.zeros(np.shape(p.args[k])) for k in p.active]
    targs = targs if p.shaped else [targs]
    return [np.zeros(np.shape(p.args[k])) if _is_zero(targs[k]) or targs[k] is None
            else np.asarray(targs[k], dtype=float) for k in p.active]


def odeint_jvp(tangents, *call, **kwargs):
    p = _problem(*call, **kwargs)
    dy0, dt, dargs = _t(tangents, 1), _t(tangents, 2), _t(tangents, 3)
    if dy0 is None and dt is None and dargs is None:
        return 0.0
    n, T = p.y0.size, p.t.size
    dargs = _arg_tangents(p, dargs)
    dt = np.zeros(T) if dt is None else np.broadcast_to(np.asarray(dt, dtype=float), (T,))
    s0 = np.zeros(n) if dy0 is None else np.asarray(dy0, dtype=float).reshape(-1)
    s0 = s0 - p.f(p.y0, p.t[0]) * dt[0]

    def sensitivity(state, t):
        y, s = state[:n], state[n:]
        fy, ds = p.jvp(y, t, s, dargs)
        return np.concatenate([fy, ds])

    both = integrate.odeint(sensitivity, np.concatenate([p.y0, s0]), p.t, **p.options)
    Y, S = both[:, :n], both[:, n:]
    return S + np.stack([p.f(Y[i], p.t[i]) * dt[i] for i in range(T)])


_rule = defvjp(integrate.odeint, None, odeint_vjp_y0, odeint_vjp_t, odeint_vjp_args,
               params="func, y0, t, args", name=_NAME, env={"np": np}, jvp=odeint_jvp,
               no_derivative={0: "a func that closes over a differentiated value; pass the "
                                 "value through args="})
_why = (f"second derivatives through {_NAME} are not available (its adjoint solves "
        "have no derivative rule of their own)")
for _v in _rule.vjps:
    if _v is not None:
        _refused(_v, f"the reverse rule of {_NAME}", _why, _rule)
_refused(_rule.jvp, f"the forward rule of {_NAME}", _why, _rule)

defvjp(integrate.solve_ivp, None, name="scipy.integrate.solve_ivp", params="fun",
       unavailable="scipy.integrate.solve_ivp has no derivative rule (its result is an "
                   "object); use scipy.integrate.odeint(func, y0, t, args=...), which is "
                   "differentiated by the adjoint method, or give solve_ivp a rule of "
                   "your own with transpile.defvjp")
