"""Benchmark workloads: plain Python functions with their arguments and wrt.

Shared by scripts/bench.py (and later peers' versions of the same programs).
"""
import math


def recurrence(x, w):
    """200-step scalar recurrence with math functions."""
    y = x
    for i in range(200):
        y = math.sin(y) * w + 0.5 * y
    return y


def euler(k, x0, v0):
    """500-step explicit Euler integration of a damped spring; returns the final position."""
    x = x0
    v = v0
    dt = 0.01
    for i in range(500):
        a = -k * x - 0.1 * v
        x = x + dt * v
        v = v + dt * a
    return x


SCALAR = [
    ("recurrence-200", recurrence, (0.3, 0.7), (0, 1)),
    ("euler-500", euler, (2.0, 1.0, 0.0), (0, 1, 2)),
]
