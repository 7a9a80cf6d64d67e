"""Gradient hooks: act on the gradient flowing through a value, inside the function.

    y = transpile.grad_hook(y, lambda g: np.clip(g, -1.0, 1.0))

In the forward sweep `grad_hook(x, fn)` is the identity; in the adjoint sweep the
adjoint arriving at that point is replaced by ``fn(adjoint)`` (clipping, scaling,
logging, stopping). `stop_gradient(x)` is the special case that lets nothing through.
Both are ordinary rules, registered through the same door as every other primitive.
"""
from .rules import defvjp


def grad_hook(x, fn):
    """Identity on x; the adjoint flowing back through this point becomes fn(adjoint)."""
    return x


def stop_gradient(x):
    """Identity on x; no adjoint flows back through this point."""
    return x


defvjp(grad_hook, lambda g, ans, x, fn: fn(g), None, name="transpile.grad_hook")
defvjp(stop_gradient, zero=True, name="transpile.stop_gradient")
