"""A for loop overwriting a variable each iteration (the tape must save the old value)."""
import math


def f(x, w):
    s = x
    for i in range(4):
        s = math.sin(w * s) + 0.5 * s
    return s * x


ARGS = (0.4, 1.1)
WRT = ("x", "w")
