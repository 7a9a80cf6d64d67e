"""Sample input for the CLI tests: its top level must never run."""
import math
from math import sin

SCALE = 0.5

open("MARKER_SHOULD_NOT_EXIST", "w").write("the file was executed")


def helper(a, b=2.0):
    return a * b + math.exp(a)


def loss(x, w):
    y = x
    for i in range(20):
        y = sin(y) * w + SCALE * y
    return y * y + helper(w, b=x)


def piecewise(x):
    if x > 0:
        return x ** 3
    return -x


def broken(x):
    try:
        y = x * 2  # BAD
    except ValueError:
        y = x
    return y


raise SystemExit("the file was executed")
