"""An if/else on a value, each branch computing differently."""
import math


def f(x, y):
    if x * y > 1.0:
        z = math.log(x * y) * x
    else:
        z = math.cos(x) - y * y
    return z + x


ARGS = (1.5, 0.9)
MORE_ARGS = [(0.3, 0.9)]          # the else branch
WRT = ("x", "y")
