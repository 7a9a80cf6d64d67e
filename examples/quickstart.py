"""Quickstart: differentiate f(x) = sin(x**2 + 2x + 1), read the generated code, check it.

    python examples/quickstart.py
"""
import math

import sympy

import transpile


@transpile.differentiate
def f(x):
    return math.sin(x ** 2 + 2 * x + 1)


@transpile.differentiate(wrt=("x", "w"))
def recurrence(x, w):
    y = x
    for i in range(200):
        y = math.sin(y) * w + 0.5 * y
    return y


def main():
    print("Generated derivative of f:\n")
    print(f.source)
    g = f.grad(2.0)
    s = sympy.Symbol("x")
    exact = sympy.diff(sympy.sin(s ** 2 + 2 * s + 1), s)
    expected = float(exact.subs(s, 2))
    print(f"f'(2)      = {g:.12f}")
    print(f"6*cos(9)   = {6 * math.cos(9):.12f}")
    print(f"sympy      = {expected:.12f}   ({exact})")
    assert abs(g - expected) < 1e-12

    print("\nA loop: 200 steps of y = sin(y) * w + 0.5 * y\n")
    print(recurrence.source)
    value, (dx, dw) = recurrence.value_and_grad(0.3, 0.7)
    h = 1e-6
    fd_w = (recurrence(0.3, 0.7 + h) - recurrence(0.3, 0.7 - h)) / (2 * h)
    print(f"value {value:.6g}   d/dx {dx:.6g}   d/dw {dw:.10f}   "
          f"(central difference d/dw {fd_w:.10f})")
    assert abs(dw - fd_w) < 1e-6


if __name__ == "__main__":
    main()
