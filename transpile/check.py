"""check_grads: compare transpile's derivatives of a function with finite differences.

The public gradient checker (in the spirit of autograd's ``check_grads`` and PyTorch's
``gradcheck``): reverse mode (a vjp with a random cotangent), forward mode (a jvp with a
random tangent) and, for second order, Hessian-vector products, each against central
differences along a random direction.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import tree
from .api import Wrt, _function, _no_derivative, _node, _param_names, _resolve_wrt
from .api import _wrt_names
from .higher import _leaves_like
from .errors import TranspileError

if TYPE_CHECKING:
    from .higher import HvpMode

MODES = ("rev", "fwd")


def check_grads(f: Callable[..., Any], *args: Any, modes: Sequence[str] = MODES,
                order: int = 2, wrt: Wrt | None = None, eps: float = 1e-6,
                rtol: float = 1e-5, atol: float = 1e-6, seed: int = 0,
                argnums: Wrt | None = None) -> None:
    """Check transpile's derivatives of ``f`` at ``args`` against central differences.

    Parameters
    ----------
    f : callable
        A Python function transpile can differentiate.
    *args
        Positional arguments of ``f``. Those named by ``wrt`` are numbers, float arrays
        or structures of them (lists, tuples, dicts, NamedTuples, dataclasses, objects:
        every differentiable leaf is moved and checked); the others are passed through
        unchanged.
    modes : tuple of str, optional
        ``"rev"``: ``transpile.vjp`` with a random cotangent u is compared, through
        ``<vjp(u), v>``, with ``<u, (f(x + eps v) - f(x - eps v)) / (2 eps)>`` for a random
        direction v. ``"fwd"``: ``transpile.jvp`` along v is compared, element by element,
        with the same central difference.
    order : {1, 2}, optional
        With 2 (default) and ``f`` returning a number, the Hessian-vector product
        ``transpile.hvp(f)`` along v (forward over reverse; with both modes also reverse
        over forward) is compared with central differences of ``transpile.grad(f)`` along
        v. Second order needs a function returning a number: for other results only the
        first order is checked.
    wrt : int, str or tuple of them, optional
        The parameters to differentiate with respect to (as for ``transpile.grad``);
        ``argnums=`` is another name of it.
    eps : float, optional
        Step of the central differences (taken in float64).
    rtol, atol : float, optional
        Tolerances, as for ``numpy.allclose``.
    seed : int, optional
        Seed of the random directions and cotangents.

    Returns
    -------
    None

    Raises
    ------
    AssertionError
        When a derivative disagrees with finite differences: the message names the check
        and shows both numbers.
    transpile.TranspileError
        When transpile cannot differentiate ``f``.
    ValueError
        For an unknown mode or order, or a ``wrt`` argument not given positionally.

    Examples
    --------
    >>> import numpy as np, transpile
    >>> def f(x):
    ...     return np.sum(np.sin(x) * x)
    >>> transpile.check_grads(f, np.array([0.1, 0.2]))       # passes: returns None

    A rule with a wrong derivative is caught:

    >>> def twice(x):
    ...     return 2.0 * x
    >>> rule = transpile.defvjp(twice, "3.0")           # wrong: should be "2.0"
    >>> def g(x):
    ...     return twice(x) * x
    >>> transpile.check_grads(g, 1.5, order=1)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    AssertionError: ...g: reverse mode (vjp with a random cotangent u) disagrees with ...
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"modes: {mode!r} is not one of {MODES}")
    if order not in (1, 2):
        raise ValueError("order must be 1 or 2")
    from . import api, hvp as _hvp
    fn = _function(f)
    wrt = _resolve_wrt(wrt, argnums)
    names, many = _wrt_names(fn, wrt)
    params = _param_names(fn)
    index = [params.index(n) for n in names]
    if any(i >= len(args) for i in index):
        raise ValueError("check_grads: give every wrt argument positionally")
    rng = np.random.default_rng(seed)
    label = getattr(fn, "__qualname__", repr(fn))
    tol = dict(rtol=rtol, atol=atol)

    xs = [args[i] for i in index]
    vs = [_random_like(x, rng) for x in xs]

    def call(shift):
        """f(args with each wrt argument moved by shift * its direction), in float64."""
        moved = list(copy.deepcopy(args))
        for i, x, v in zip(index, xs, vs):
            moved[i] = _add(_float64(x), v, shift)
        return fn(*moved)

    value = fn(*copy.deepcopy(args))
    fd = (_flat(call(eps)) - _flat(call(-eps))) / (2 * eps)

    if "rev" in modes:
        out, pullback = api.vjp(fn, *copy.deepcopy(args), wrt=wrt)
        _compare(f"{label}: the value vjp returns differs from f(*args)",
                 _flat(out), _flat(value), tol)
        u = _random_like(value, rng)
        grads = pullback(u)
        grads = grads if many else (grads,)
        for g, x, name in zip(grads, xs, names):
            _same_structure(f"{label}: the gradient (vjp) with respect to '{name}'", g, x)
        got = sum(float(np.dot(_flat(g, like=x), _flat(v, like=x))) for g, x, v in
                  zip(grads, xs, vs))
        want = float(np.dot(_flat(u, like=value), fd))
        _compare(f"{label}: reverse mode (vjp with a random cotangent u) disagrees with "
                 f"central differences along a random direction v (eps={eps}); "
                 "<vjp(u), v>", got, want, tol)

    if "fwd" in modes:
        tangents = [None] * len(args)
        for i, v in zip(index, vs):
            tangents[i] = v
        out, tangent = api.jvp(fn, copy.deepcopy(args), tangents)
        _same_structure(f"{label}: the tangent (jvp)", tangent, value)
        _compare(f"{label}: the value jvp returns differs from f(*args)",
                 _flat(out), _flat(value), tol)
        _compare(f"{label}: forward mode (jvp along a random direction v) disagrees with "
                 f"central differences (eps={eps}); J v", _flat(tangent, like=value), fd,
                 tol)

    if order == 2 and _is_number(value):
        from . import grad as _grad
        gradient = _grad(fn, wrt=wrt)

        def gradient_at(shift):
            moved = list(copy.deepcopy(args))
            for i, x, v in zip(index, xs, vs):
                moved[i] = _add(_float64(x), v, shift)
            g = gradient(*moved)
            g = g if many else (g,)
            return np.concatenate([_flat(gi, like=x) for gi, x in zip(g, xs)])

        want = (gradient_at(eps) - gradient_at(-eps)) / (2 * eps)
        routes: list[HvpMode] = ["forward-over-reverse"]
        if "rev" in modes and "fwd" in modes:
            routes.append("reverse-over-forward")
        for route in routes:
            product = _hvp(fn, wrt=wrt, mode=route)
            hv = product(*copy.deepcopy(args), v=tuple(vs) if many else vs[0])
            hv = hv if many else (hv,)
            for h, x, name in zip(hv, xs, names):
                _same_structure(f"{label}: the Hessian-vector product ({route}) for "
                                f"'{name}'", h, x)
            hv_flat = np.concatenate([_flat(h, like=x) for h, x in zip(hv, xs)])
            _compare(f"{label}: second order (hvp, {route}) disagrees with central "
                     f"differences of the gradient along a random direction v "
                     f"(eps={eps}); H v", hv_flat, want, tol)


# --- values as flat float64 vectors -----------------------------------------------------

def _is_number(value):
    if value is None or tree.is_node(value):
        return False
    return isinstance(value, (int, float, np.number)) or np.shape(value) == () and \
        hasattr(value, "dtype")


def _flat(value, like=None):
    """A value (number, array, or a structure of them: `transpile.tree`) as one float64
    vector of its differentiable leaves; with `like`, the value a derivative belongs to,
    the leaves of `value` at the places of like's (None or a zero number standing for a
    leaf's or a whole structure's zeros), leaves without derivative left out."""
    if like is None:
        like = value
    parts = []
    for x, g in zip(tree.leaves(like), _leaves_like(like, value)):
        if _no_derivative(x):
            continue
        if g is None or np.ndim(g) == 0 and np.ndim(x) > 0 and float(g) == 0.0:
            parts.append(np.zeros(np.size(x)))
        else:
            parts.append(np.asarray(g, dtype=np.float64).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def _structure(value):
    """Shape of a value: () for a number, an array's shape, for a structure its kind of
    node (a list and a tuple alike), keys and what it holds; "None" for None and for a
    leaf without derivative (whose derivative is None)."""
    if value is None:
        return "None"
    if tree.is_node(value):
        children, aux = _node(value)
        kind = "sequence" if aux[0] in ("list", "tuple") else aux[:2]
        keys = aux[2] if aux[0] in ("dict", "dataclass", "object") else len(children)
        return (kind, keys, [_structure(c) for c in children])
    if _no_derivative(value):
        return "None"
    return tuple(np.shape(value))


def _same_structure(what, got, like):
    """A derivative has the shape of what it is the derivative of (numbers, arrays and
    structures alike)."""
    if _structure(got) != _structure(like):
        raise AssertionError(f"{what} has shape {_structure(got)}, but the value it "
                             f"belongs to has shape {_structure(like)}")


def _float64(x):
    """x with its floating leaves in float64 (a Python int as a float)."""
    def leaf(a):
        if _no_derivative(a):
            return a
        if isinstance(a, np.ndarray):
            return a.astype(np.float64)
        return float(a)
    return tree.map(leaf, x)


def _random_like(x, rng):
    """A random value shaped like x (a number, an array, a structure; 0.0 at leaves
    without derivative)."""
    def leaf(a):
        if _no_derivative(a):
            return 0.0
        if isinstance(a, np.ndarray) and a.ndim > 0:
            return rng.standard_normal(a.shape)
        return float(rng.standard_normal())
    return tree.map(leaf, x)


def _add(x, v, shift):
    return tree.map(lambda a, b: a if _no_derivative(a) else a + shift * b, x, v)


def _show(a):
    a = np.asarray(a, dtype=float)
    if a.size == 1:
        return repr(float(a.ravel()[0]))
    return np.array2string(a, precision=8, threshold=20)


def _compare(what, got, want, tol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: transpile gives {got.size} numbers, the reference "
                             f"{want.size}\n  transpile: {_show(got)}\n  reference: "
                             f"{_show(want)}")
    if not np.allclose(got, want, equal_nan=False, **tol):
        diff = np.max(np.abs(got - want)) if got.size else 0.0
        raise AssertionError(f"{what}\n  transpile:            {_show(got)}\n"
                             f"  finite differences:   {_show(want)}\n"
                             f"  largest difference {diff:.3g} (rtol={tol['rtol']}, "
                             f"atol={tol['atol']})")


__all__ = ["check_grads", "TranspileError"]
