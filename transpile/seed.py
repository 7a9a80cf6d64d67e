"""The seed of gradient code: the adjoint of the result the adjoint sweep starts from.

`transpile.grad` differentiates a function returning a number. A NumPy computation often
returns its one number as an array of one element (``np.sum(x, keepdims=True)``,
``x.T @ A @ x`` of a column vector, shape ``(1,)`` or ``(1, 1)``): that array is taken
for the number it holds, as autograd does (its gradient is the derivative of that one
element). Gradient code whose result is not known to be a number when it is generated
starts from ``result_seed(result)``: 1.0 for a number, ones of the result's shape for an
array of one element (so every rule's reverse rule sees an adjoint of its result's exact
shape), and a `TranspileError` at the user's line for anything else (an array of several
elements, a tuple...): never the gradient of the sum of the elements in its place, which
the Hessian, hvp and grad of grad code would otherwise compute without a word.
"""
import sys

import numpy as np

from .errors import TranspileTypeError
from .namespaces import dtype_kind, iscomplexobj


def result_seed(value):
    """The adjoint the gradient of `value` starts from (see the module docstring)."""
    cls = value.__class__
    if cls is float or cls is int:
        return 1.0
    if cls is complex or iscomplexobj(value):
        raise not_real(sys._getframe(1))
    if is_bool(value):
        raise not_a_number(value, sys._getframe(1))
    shape = getattr(value, "shape", None)
    if shape == ():
        return 1.0
    if isinstance(value, np.ndarray) and value.size == 1:
        return np.ones(shape, dtype=value.dtype if value.dtype.kind == "f" else float)
    raise not_a_number(value, sys._getframe(1))


def describe(value):
    """`a ndarray of shape (3,)`, `a tuple`: what a result that is not a number is."""
    shape = getattr(value, "shape", None)
    what = f"a {type(value).__name__}"
    return what + (f" of shape {tuple(shape)}" if shape is not None else "")


def is_bool(value):
    """A bool, NumPy bool or bool array: a result grad refuses (a predicate such as
    np.allclose has no derivative to give; an integer result is a number, and its
    derivative where it is locally constant is 0)."""
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return value.__class__ is bool or kind == "b" or (
        kind is None and hasattr(value, "dtype") and dtype_kind(value) == "b")


def not_a_number(value, frame=None, where=(None, None, None)):
    """The refusal of a gradient of a result that is not a number, at the user's line
    (read off the generated frame `frame` when given)."""
    if is_bool(value):
        return TranspileTypeError(f"grad needs a function returning a number, and this call "
                                  f"returned {describe(value)}: a truth value has no "
                                  "derivative (differentiate the quantity it compares)",
                                  *_users_line(frame, where))
    return TranspileTypeError(f"grad needs a function returning a number (or an array of "
                              f"one element), and this call returned {describe(value)}; "
                              "use transpile.vjp (or transpile.jacobian) for other results",
                              *_users_line(frame, where))


def not_real(frame=None, where=(None, None, None)):
    """The refusal of a gradient of a complex result (every route: grad, hvp, the
    gradient code differentiated again), at the user's line."""
    return TranspileTypeError("grad needs a function returning a real number, and this call "
                          "returned a complex one: differentiate its real part (np.real) "
                          "or its absolute value, or use transpile.vjp for the derivative "
                          "of a complex result", *_users_line(frame, where))


def _users_line(frame, where):
    """(filename, line, qualname) of the user's code: `where`, or read off the generated
    frame `frame` through the source maps (derivative code of derivative code too)."""
    from .emit import user_line
    if frame is None:
        return where
    return (*user_line(frame.f_code.co_filename, frame.f_lineno), frame.f_code.co_name)
