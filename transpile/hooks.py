"""Gradient hooks: act on the gradient flowing through a value, inside the function.

    y = transpile.grad_hook(y, lambda g: np.clip(g, -1.0, 1.0))

In the forward sweep `grad_hook(x, fn)` is the identity; in the adjoint sweep the
adjoint arriving at that point is replaced by ``fn(adjoint)`` (clipping, scaling,
logging, stopping). `stop_gradient(x)` is the special case that lets nothing through.
Both are ordinary rules, registered through the same door as every other primitive.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from .rules import defvjp

T = TypeVar("T")


def grad_hook(x: T, fn: Callable[[Any], Any]) -> T:
    """Identity on ``x``; the gradient flowing back through this point becomes
    ``fn(gradient)``.

    Call it inside a function being differentiated. In the adjoint sweep (``grad``,
    ``value_and_grad``, ``vjp``) ``fn`` receives the adjoint arriving at ``x`` (the
    gradient of the result with respect to this value) and returns the adjoint to pass
    on: clip it, scale it, log it. In forward mode (``jvp``) and in a plain call it is
    the identity.

    Parameters
    ----------
    x : number, array or list
        The value the gradient flows back through.
    fn : callable
        ``fn(adjoint) -> adjoint``, of the shape of ``x``; a lambda or any function,
        which may read the function's variables.

    Returns
    -------
    x
        ``x`` itself.

    Examples
    --------
    >>> import transpile
    >>> def f(x):
    ...     y = transpile.grad_hook(x * x, lambda g: min(g, 1.0))
    ...     return 3.0 * y
    >>> f(2.0)                     # the identity in a plain call
    12.0
    >>> transpile.grad(f)(2.0)     # 3.0 arrives at x * x clipped to 1.0: 1.0 * 2x
    4.0
    """
    return x


def stop_gradient(x: T) -> T:
    """Identity on ``x``; no gradient flows back through this point.

    Parameters
    ----------
    x : number, array or list
        A value to treat as a constant when differentiating.

    Returns
    -------
    x
        ``x`` itself.

    Examples
    --------
    >>> import transpile
    >>> def f(x):
    ...     return transpile.stop_gradient(x) * x
    >>> transpile.grad(f)(3.0)     # d/dx of c * x with c = 3.0 held constant
    3.0
    """
    return x


defvjp(grad_hook, lambda g, ans, x, fn: fn(g), None, name="transpile.grad_hook")
defvjp(stop_gradient, zero=True, name="transpile.stop_gradient")
