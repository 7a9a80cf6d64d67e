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
are refused.

solve_ivp(fun, t_span, y0, method, t_eval, ..., args=) is the same problem over the times
(t_span[0], *t_eval), solved (backwards too) by its own method and options: derivatives in
y0, t_span[0], t_eval and args of its result's y and t (an object: its adjoint is a dict).
The times the solver picks itself have no derivative: without t_eval= it is refused, and
so are events= and dense_output=.

func must be a function transpile reads (a def in a file) whose derivative flows through
its arguments only: a func that closes over a differentiated value is refused where it is
passed (pass the value through args=, where its derivative is taken).
"""
import inspect

import numpy as np
import scipy.integrate as integrate

from ..registry import defvjp
from ..derivative_code import _refused
from ..numpy_ import _fit, _is_zero, _t
from ...errors import TranspileError
from ._parts import Parts

_NAME = "scipy.integrate.odeint"
_SOLVER = ("rtol", "atol", "tcrit", "h0", "hmax", "hmin", "ixpr", "mxstep", "mxhnil",
           "mxordn", "mxords", "ml", "mu")


def _float_like(v):
    return isinstance(v, float) or (isinstance(v, np.ndarray) and v.dtype.kind == "f") \
        or isinstance(v, np.floating)


class _Problem:
    """One ODE: func's argument order, its times (the initial one first), the flattened
    args and ``solve(rhs, state, t0, t1)``, the state at t1 of the solution of
    state' = rhs(state, t) from t0, by the user's solver with the user's options."""

    def __init__(self, func, y0, t, args, tfirst, solve, name):
        if np.ndim(y0) > 1:
            raise TranspileError(f"{name}: derivatives for a 1-D y0 only")
        self.func, self.tfirst, self.solve = func, tfirst, solve
        args = () if args is None else args
        self.args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        self.shaped = isinstance(args, (tuple, list))
        self.y0 = np.atleast_1d(np.asarray(y0, dtype=float))
        self.t = np.asarray(t, dtype=float)
        self.active = [k for k, a in enumerate(self.args) if _float_like(a) or (
            isinstance(a, int) and not isinstance(a, bool))]
        self.sizes = [int(np.size(self.args[k])) for k in self.active]

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
        return Parts(out) if self.shaped else out[0]


_SIGNATURE = inspect.signature(integrate.odeint)


def _problem(*call, **kwargs):
    """The _Problem of odeint(*call, **kwargs) (a call of odeint itself, differentiated
    directly, passes every parameter)."""
    b = _SIGNATURE.bind(*call, **kwargs)
    kw = dict(b.arguments)
    if kw.get("Dfun") is not None or kw.get("full_output"):
        raise TranspileError(f"{_NAME}: derivatives without Dfun= and full_output= only")
    options = {k: kw[k] for k in _SOLVER if k in kw}

    def solve(rhs, state, t0, t1):
        return integrate.odeint(rhs, state, np.array([t0, t1]), **options)[1]
    return _Problem(kw["func"], kw["y0"], kw["t"], kw.get("args", ()),
                    bool(kw.get("tfirst", False)), solve, _NAME)


def _adjoint(g, ans, *call, **kwargs):
    """(the problem, the gradient of y0, of t, of args flattened) by the backward solves."""
    p = _problem(*call, **kwargs)
    return (p,) + _backward(p, np.asarray(ans, dtype=float), g)


def _backward(p, Y, g):
    """The adjoint solves for the outputs Y[i] at p.t[i] (Y[0] = y0 at the initial time)
    with cotangents g: (the gradient of y0, of the times, of args flattened)."""
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
        if p.t[i] == p.t[i - 1]:
            continue
        back = p.solve(augmented, np.concatenate([Y[i], lam, gargs]), p.t[i], p.t[i - 1])
        lam, gargs = back[n:2 * n], back[2 * n:]
    gt[0] = -float(np.dot(lam, p.f(Y[0], p.t[0]))) if T > 1 else 0.0
    return lam + G[0], gt, gargs


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


def _forward(p, dy0, dt, dargs):
    """The tangents of the states at p.t (the first: the initial state) along dy0, the
    times' dt and args' dargs, by the forward sensitivity system."""
    n, T = p.y0.size, p.t.size
    dargs = _arg_tangents(p, dargs)
    dt = np.zeros(T) if dt is None else np.broadcast_to(np.asarray(dt, dtype=float), (T,))
    s0 = np.zeros(n) if dy0 is None else np.asarray(dy0, dtype=float).reshape(-1)
    s0 = s0 - p.f(p.y0, p.t[0]) * dt[0]

    def sensitivity(state, t):
        y, s = state[:n], state[n:]
        fy, ds = p.jvp(y, t, s, dargs)
        return np.concatenate([fy, ds])

    states = [np.concatenate([p.y0, s0])]
    for i in range(1, T):
        states.append(states[-1] if p.t[i] == p.t[i - 1] else
                      p.solve(sensitivity, states[-1], p.t[i - 1], p.t[i]))
    both = np.stack(states)
    Y, S = both[:, :n], both[:, n:]
    return S + np.stack([p.f(Y[i], p.t[i]) * dt[i] for i in range(T)])


def odeint_jvp(tangents, *call, **kwargs):
    p = _problem(*call, **kwargs)
    dy0, dt, dargs = _t(tangents, 1), _t(tangents, 2), _t(tangents, 3)
    if dy0 is None and dt is None and dargs is None:
        return 0.0
    return _forward(p, dy0, dt, dargs)


_rule = defvjp(integrate.odeint, None, odeint_vjp_y0, odeint_vjp_t, odeint_vjp_args,
               params="func, y0, t, args", name=_NAME, env={"np": np}, jvp=odeint_jvp,
               no_derivative={0: "a func that closes over a differentiated value; pass the "
                                 "value through args="})


def _refuse_second_order(rule, name):
    why = (f"second derivatives through {name} are not available (its adjoint solves "
           "have no derivative rule of their own)")
    for v in rule.vjps:
        if v is not None:
            _refused(v, f"the reverse rule of {name}", why, rule)
    _refused(rule.jvp, f"the forward rule of {name}", why, rule)


_refuse_second_order(_rule, _NAME)


# --------------------------------------------------------------------------------------
# solve_ivp(fun, t_span, y0, method, t_eval, ..., args): with t_eval given, its result's
# y[:, i] is the state at t_eval[i] and its t is t_eval: the same adjoint, over the times
# (t_span[0], *t_eval); t_span[1] does not reach the result
# --------------------------------------------------------------------------------------
_IVP = "scipy.integrate.solve_ivp"
_IVP_SIGNATURE = inspect.signature(integrate.solve_ivp)


def _ivp_problem(*call, **kwargs):
    kw = dict(_IVP_SIGNATURE.bind(*call, **kwargs).arguments)
    options = dict(kw.pop("options", {}))
    if kw.get("t_eval") is None:
        raise TranspileError(f"{_IVP}: derivatives at given times only: pass t_eval= (the "
                             "times the solver picks itself have no derivative)")
    if kw.get("events") is not None or kw.get("dense_output"):
        raise TranspileError(f"{_IVP}: derivatives without events= and dense_output= only")
    method = kw.get("method", "RK45")

    def solve(rhs, state, t0, t1):
        out = integrate.solve_ivp(lambda t, y: rhs(y, t), (t0, t1), state, method=method,
                                  **options)
        if out.status != 0:
            raise TranspileError(f"{_IVP}: the adjoint solve failed: {out.message}")
        return out.y[:, -1]
    t0 = float(np.asarray(kw["t_span"], dtype=float)[0])
    times = np.concatenate([[t0], np.asarray(kw["t_eval"], dtype=float).reshape(-1)])
    return _Problem(kw["fun"], kw["y0"], times, kw.get("args"), True, solve, _IVP), kw


def _ivp_parts(g):
    """The adjoints of the result's y and t (the result is an object: a dict adjoint)."""
    if _is_zero(g):
        return 0.0, 0.0
    get = g.get if isinstance(g, dict) else (lambda k, d: getattr(g, k, d))
    return get("y", 0.0), get("t", 0.0)


def _ivp_adjoint(g, ans, call, kwargs):
    p, kw = _ivp_problem(*call, **kwargs)
    gy, gt_out = _ivp_parts(g)
    Y = np.concatenate([p.y0[None, :], np.asarray(ans["y"], dtype=float).T])
    G = np.zeros(Y.shape)
    if not _is_zero(gy):
        G[1:] = np.broadcast_to(np.asarray(gy, dtype=float), Y[1:].T.shape).T
    gy0, gtimes, gargs = _backward(p, Y, G)
    return p, kw, gy0, gtimes, gt_out, gargs


def ivp_vjp_t_span(g, ans, *call, **kwargs):
    p, kw, gy0, gtimes, _, _ = _ivp_adjoint(g, ans, call, kwargs)
    span = _fit(np.array([gtimes[0], 0.0]), kw["t_span"])
    return Parts(span) if isinstance(span, list) else span


def ivp_vjp_y0(g, ans, *call, **kwargs):
    p, kw, gy0, _, _, _ = _ivp_adjoint(g, ans, call, kwargs)
    return _fit(np.reshape(gy0, np.shape(kw["y0"])), kw["y0"])


def ivp_vjp_t_eval(g, ans, *call, **kwargs):
    p, kw, _, gtimes, gt_out, _ = _ivp_adjoint(g, ans, call, kwargs)
    out = gtimes[1:] + (0.0 if _is_zero(gt_out) else np.asarray(gt_out, dtype=float))
    return _fit(np.reshape(out, np.shape(kw["t_eval"])), kw["t_eval"])


def ivp_vjp_args(g, ans, *call, **kwargs):
    p, kw, _, _, _, gargs = _ivp_adjoint(g, ans, call, kwargs)
    return p.unflatten(gargs)


def ivp_jvp(tangents, *call, **kwargs):
    p, kw = _ivp_problem(*call, **kwargs)
    ans = integrate.solve_ivp(*call, **kwargs)
    dspan, dy0, dte, dargs = (_t(tangents, k) for k in (1, 2, 4, 8))
    if dspan is None and dy0 is None and dte is None and dargs is None:
        return 0.0
    dt = np.zeros(p.t.size)
    if dspan is not None:
        dt[0] = float(np.asarray(dspan, dtype=float).reshape(-1)[0])
    if dte is not None:
        dt[1:] = np.asarray(dte, dtype=float).reshape(-1)
    S = _forward(p, dy0, dt, dargs)[1:]
    return {k: (S.T if k == "y" else dt[1:].copy() if k == "t" else 0.0) for k in ans}


_ivp_rule = defvjp(integrate.solve_ivp, None, ivp_vjp_t_span, ivp_vjp_y0, None,
                   ivp_vjp_t_eval, None, None, None, ivp_vjp_args,
                   params="fun, t_span, y0, method, t_eval, dense_output, events, "
                          "vectorized, args", name=_IVP, env={"np": np}, jvp=ivp_jvp,
                   no_derivative={0: "a fun that closes over a differentiated value; pass "
                                     "the value through args="})
_refuse_second_order(_ivp_rule, _IVP)
