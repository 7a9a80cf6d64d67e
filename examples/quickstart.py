"""Quickstart: differentiate f(x) = sin(x**2 + 2x + 1), read the generated code, check it.

    python examples/quickstart.py [--quick]

Prints the generated derivative code, checks f'(2) = 6 cos 9 against sympy, shows a loop
being differentiated, and plots f and f' over [-3, 1] (f' from transpile and from sympy
overlaid) to examples/figures/quickstart.png.
"""
import math
import os
import sys

import sympy

import transpile
from plotting import figure_path, save_figure



@transpile.differentiate
def f(x):
    return math.sin(x ** 2 + 2 * x + 1)


@transpile.differentiate(wrt=("x", "w"))
def recurrence(x, w):
    y = x
    for i in range(200):
        y = math.sin(y) * w + 0.5 * y
    return y


def plot(path, quick=False):
    """f and f' on [-3, 1]; f' from transpile (points) and sympy (line) overlaid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = sympy.Symbol("x")
    fprime = sympy.lambdify(s, sympy.diff(sympy.sin(s ** 2 + 2 * s + 1), s), "numpy")
    xs = np.linspace(-3.0, 1.0, 101 if quick else 401)
    fx = np.array([f(float(x)) for x in xs])
    d_transpile = np.array([f.grad(float(x)) for x in xs])
    d_sympy = fprime(xs)
    max_diff = float(np.max(np.abs(d_transpile - d_sympy)))

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, fx, color="tab:blue", label="f(x) = sin(x² + 2x + 1)")
    ax.plot(xs, d_sympy, color="tab:orange", lw=3, alpha=0.5, label="f'(x), sympy")
    ax.plot(xs, d_transpile, "k--", lw=1, label="f'(x), transpile")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("x")
    ax.set_title(f"f and f' on [-3, 1]   (max |transpile - sympy| = {max_diff:.1e})")
    ax.legend(loc="lower left", fontsize=8)
    save_figure(fig, path, dpi=100)
    return max_diff


def main(quick=False):
    quick = quick or os.environ.get("TRANSPILE_EXAMPLES_QUICK") == "1"
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

    path = figure_path("quickstart")
    max_diff = plot(path, quick=quick)
    print(f"\nf' on [-3, 1]: max |transpile - sympy| = {max_diff:.2e}; plot saved to {path}")
    return {"grad_at_2": g, "sympy_at_2": expected, "recurrence_dw": dw,
            "recurrence_fd_dw": fd_w, "plot_max_diff": max_diff, "figure": path}


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
