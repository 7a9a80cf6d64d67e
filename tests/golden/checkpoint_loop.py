"""A loop differentiated with checkpoint=: snapshots every 3 iterations, recomputed going
back."""
import math


def f(x, a):
    s = x
    for i in range(7):
        s = s + 0.1 * math.sin(a * s)
    return s * s


ARGS = (0.3, 2.0)
WRT = ("x", "a")
OPTIONS = {"checkpoint": 3}
