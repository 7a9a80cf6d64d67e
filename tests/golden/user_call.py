"""A function calling another user function (the callee's forward/backward pair)."""
import math


def inner(u, k):
    return math.tanh(k * u) + u * u


def f(x, y):
    a = inner(x, y)
    b = inner(a, 2.0)
    return a * b + y


ARGS = (0.5, 0.8)
WRT = ("x", "y")
