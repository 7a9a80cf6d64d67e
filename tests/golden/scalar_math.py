"""Straight-line scalar math: arithmetic, powers, math functions, a reused temporary."""
import math


def f(x, y):
    a = x * y + math.sin(x)
    b = a ** 2 / (1.0 + y * y)
    c = math.exp(-b) * math.log(1.0 + x * x)
    return c + math.sqrt(a * a + 1.0) - 3.0 * b


ARGS = (0.7, 1.3)
WRT = ("x", "y")
