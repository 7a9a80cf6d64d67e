"""Symbolic (sympy) vs automatic (transpile) differentiation of the same Python functions.

    python examples/symbolic_vs_automatic.py [--quick]

Three functions of (x, y), written once with `math` functions:

* `polynomial`  - a bivariate polynomial of degree 6,
* `nested`      - nested transcendental functions (exp, sin, log, cos, tanh, sqrt),
* `recurrence`  - a loop: `steps` iterations of y <- sin(y) * w + 0.5 * y.

sympy gets *the same code*: each function is re-bound to a namespace where sin, exp, ...
are sympy's, and called on symbols; then sympy.diff and sympy.lambdify (plain, and with
common-subexpression elimination, cse=True). transpile reads the source and generates a
gradient function. We compare the two at random points (max abs difference), time how long
it takes to obtain the derivative (symbolic run + diff + lambdify, vs transpile's
transform + compile) and to evaluate it, and measure the expression swell of the loop:
sympy's derivative grows exponentially with the number of iterations (sympy.count_ops),
while transpile's generated code is the same loop run backwards, one size for any count.

Writes examples/figures/symbolic_vs_automatic.png. `main(quick=False)` returns the numbers.
"""
import os
import sys
import time
import timeit
import types
from math import cos, exp, log, sin, sqrt, tanh

import numpy as np
from plotting import figure_path, quick_from_argv, save_figure
import sympy

import transpile

FIGURE = figure_path("symbolic_vs_automatic")


# ----------------------------------------------------------------------------- functions

def polynomial(x, y, steps):
    return (3 * x ** 6 - 2 * x ** 3 * y ** 2 + 7 * x * y ** 4 - 5 * x ** 2 * y
            + 0.5 * y ** 5 - 4 * x * y + 1.5)


def nested(x, y, steps):
    a = exp(sin(x * y) / (1 + x ** 2))
    b = log(1 + cos(x + y) ** 2)
    return tanh(a * b + sqrt(1 + y ** 2)) * a


def recurrence(x, y, steps):
    z = x
    for i in range(steps):
        z = sin(z) * y + 0.5 * z
    return z


FUNCTIONS = (polynomial, nested, recurrence)
SYMPY_NAMES = {"sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "log": sympy.log,
               "sqrt": sympy.sqrt, "tanh": sympy.tanh}


def symbolic_version(f):
    """The same code object, run with sympy's sin/cos/... in place of math's."""
    return types.FunctionType(f.__code__, dict(f.__globals__, **SYMPY_NAMES), f.__name__)


def fresh_copy(f):
    """A new function object with the same code: transpile's cache starts empty for it."""
    return types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                              f.__closure__)


# ----------------------------------------------------------------------------- helpers

def sympy_derivative(f, steps, cse):
    x, y = sympy.symbols("x y")
    expr = symbolic_version(f)(x, y, steps)
    grads = [sympy.diff(expr, v) for v in (x, y)]
    fn = sympy.lambdify([x, y], grads, "math", cse=cse)
    return expr, grads, fn


def timed(thunk, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = thunk()
        best = min(best, time.perf_counter() - t0)
    return best, out


def per_call(fn, args, budget=0.05):
    """Seconds per call (best of 3), with the number of calls sized to ~budget seconds."""
    t0 = time.perf_counter()
    fn(*args)
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, min(2000, int(budget / one)))
    return min(timeit.repeat(lambda: fn(*args), number=number, repeat=3)) / number


# ----------------------------------------------------------------------------- main

def main(quick=False):
    t_start = time.perf_counter()
    steps = 6 if quick else 10
    rng = np.random.default_rng(0)
    points = rng.uniform(-1.0, 1.0, size=(20 if quick else 200, 2))
    rows = {}
    # warm-up: import-time and first-use costs of sympy/lambdify and of transpile's
    # pipeline should not be charged to the first function
    sympy_derivative(polynomial, 1, False)
    transpile.grad(fresh_copy(recurrence), wrt=(0, 1))(0.3, 0.4, 1)

    print(f"gradient of f(x, y); recurrence with {steps} steps; {len(points)} random "
          f"points in [-1, 1]^2\n")
    print(f"  {'function':>10} {'max|diff|':>10} {'sympy diff+lambdify':>20} "
          f"{'(cse=True)':>11} {'transpile':>10} {'eval sympy':>11} {'(cse)':>9} "
          f"{'transpile':>10} {'count_ops':>10}")
    print(f"  {'':>10} {'':>10} {'(time to obtain the gradient function)':>51} "
          f"{'(time per gradient evaluation)':>33} {'(grad)':>10}")
    for f in FUNCTIONS:
        t_sym, (expr, grads, fn_sym) = timed(lambda: sympy_derivative(f, steps, False))
        t_cse, (_, _, fn_cse) = timed(lambda: sympy_derivative(f, steps, True))
        t_tp, g_tp = timed(lambda: (lambda g: (g(0.3, 0.4, steps), g)[1])(
            transpile.grad(fresh_copy(f), wrt=(0, 1))), repeat=3)

        diff = 0.0
        for px, py in points:
            a = np.array(fn_sym(px, py), dtype=float)
            b = np.array(fn_cse(px, py), dtype=float)
            c = np.array(g_tp(px, py, steps), dtype=float)
            diff = max(diff, float(np.max(np.abs(a - c))), float(np.max(np.abs(b - c))))

        args = (0.3, 0.4)
        e_sym = per_call(fn_sym, args)
        e_cse = per_call(fn_cse, args)
        e_tp = per_call(g_tp, args + (steps,))
        ops = int(sum(sympy.count_ops(gr) for gr in grads))
        rows[f.__name__] = {
            "max_abs_diff": diff, "sympy_obtain_s": t_sym, "sympy_cse_obtain_s": t_cse,
            "transpile_obtain_s": t_tp, "sympy_eval_s": e_sym, "sympy_cse_eval_s": e_cse,
            "transpile_eval_s": e_tp, "sympy_count_ops": ops,
            "transpile_source_lines": len(g_tp.source.strip().splitlines()),
        }
        print(f"  {f.__name__:>10} {diff:10.1e} {t_sym * 1e3:17.1f} ms {t_cse * 1e3:8.1f} ms "
              f"{t_tp * 1e3:7.1f} ms {e_sym * 1e6:8.1f} us {e_cse * 1e6:6.1f} us "
              f"{e_tp * 1e6:7.1f} us {ops:10d}")

    # expression swell of the loop: sympy's ops vs transpile's generated source, per step count
    x, y = sympy.symbols("x y")
    sym_rec = symbolic_version(recurrence)
    swell = []
    for n in range(1, steps + 1):
        expr = sym_rec(x, y, n)
        d = sympy.diff(expr, x)
        swell.append((n, int(sympy.count_ops(expr)), int(sympy.count_ops(d))))
    tp_lines = rows["recurrence"]["transpile_source_lines"]
    print(f"\nexpression swell, recurrence: steps -> count_ops(f), count_ops(df/dx)")
    print("  " + ", ".join(f"{n}: {a}/{b}" for n, a, b in swell))
    growth = (swell[-1][2] / swell[-2][2])
    print(f"  the symbolic derivative grows x{growth:.2f} per step; transpile's generated "
          f"gradient is {tp_lines} lines for any number of steps")
    print(f"  (cse=True shares the repeated subexpressions, which is what makes its "
          f"evaluation fast: it recovers, after the fact, the reuse that reverse mode "
          f"builds in)")

    _plot(rows, swell, tp_lines, steps)
    elapsed = time.perf_counter() - t_start
    print(f"\nwrote {os.path.relpath(FIGURE)}  ({elapsed:.1f} s)")
    return {
        "steps": steps, "functions": rows, "swell": swell,
        "max_abs_diff": max(r["max_abs_diff"] for r in rows.values()),
        "figure": FIGURE, "seconds": elapsed,
    }


def _plot(rows, swell, tp_lines, steps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
    names = list(rows)
    idx = np.arange(len(names))
    width = 0.27
    methods = (("sympy diff+lambdify", "sympy"), ("sympy, cse=True", "sympy_cse"),
               ("transpile", "transpile"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, what, unit, scale in ((axes[0], "obtain", "ms", 1e3),
                                  (axes[1], "eval", "µs", 1e6)):
        for k, (label, key) in enumerate(methods):
            vals = [rows[n][f"{key}_{what}_s"] * scale for n in names]
            ax.bar(idx + (k - 1) * width, vals, width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(idx)
        ax.set_xticklabels([n if n != "recurrence" else f"recurrence\n({steps} steps)"
                            for n in names])
        ax.set_ylabel(unit)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("Time to obtain the gradient function")
    axes[1].set_title("Time per gradient evaluation")

    ns = [s[0] for s in swell]
    axes[2].semilogy(ns, [s[2] for s in swell], "o-", label="sympy: count_ops(df/dx)")
    axes[2].semilogy(ns, [s[1] for s in swell], "s--", label="sympy: count_ops(f)")
    axes[2].semilogy(ns, [tp_lines] * len(ns), "k:", label="transpile: lines of gradient code")
    axes[2].set_xlabel("loop iterations")
    axes[2].set_title("Expression swell of the recurrence")
    axes[2].legend(fontsize=8)
    axes[2].grid(True, which="both", alpha=0.3)
    save_figure(fig, FIGURE, dpi=110)


if __name__ == "__main__":
    main(quick=quick_from_argv(__doc__.splitlines()[0]))
    sys.exit(0)
