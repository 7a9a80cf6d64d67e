"""The adjoint of a tuple argument ((c, lower) of cho_solve, odeint's args, solve_ivp's
t_span): a tuple that adds entry by entry. Generated code adds the contributions of one
value passed to several calls with +, which would join plain tuples and lists."""
import numpy as np


def _add(a, b):
    if a is None or (type(a) in (int, float) and a == 0):
        return b
    if b is None or (type(b) in (int, float) and b == 0):
        return a
    return np.add(a, b) if not isinstance(a, (list, tuple)) else Parts(
        _add(x, y) for x, y in zip(a, b))


class Parts(tuple):
    """A tuple of adjoints; ``+`` adds entry by entry (0.0 and None are no adjoint)."""

    def __add__(self, other):
        if other is None or (type(other) in (int, float) and other == 0):
            return self
        return Parts(_add(x, y) for x, y in zip(self, other))

    __radd__ = __add__


def tangent_of(t, k=0):
    """Entry k of the tangent (or adjoint) of a tuple argument, None where none flows."""
    if t is None or (type(t) in (int, float) and t == 0) or not isinstance(t, (list, tuple)):
        return None
    v = t[k]
    return None if v is None or (type(v) in (int, float) and v == 0) else v
