"""scipy.optimize with transpile gradients: BFGS on the Rosenbrock function.

    python examples/scipy_rosenbrock.py [--quick]

    minimize(rosenbrock, x0, jac=transpile.grad(rosenbrock), method="BFGS")

is compared with jac=None, where scipy approximates the gradient by forward differences
(n extra function evaluations per gradient, and an O(sqrt(eps)) error in every gradient).
For n = 2 (start (-1.2, 1)), 10 and 50 (start 0) we report iterations, function and
gradient evaluations, the final error max|x - 1| and the wall time, and plot f against
the iteration for both.

Writes examples/figures/scipy_rosenbrock.png. `main(quick=False)` returns the numbers.
"""
import os
import sys
import time

import numpy as np
from plotting import figure_path, quick_from_argv, save_figure
from scipy.optimize import minimize, rosen_der

import transpile

FIGURE = figure_path("scipy_rosenbrock")


def rosenbrock(x):
    """sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2; minimum 0 at x = (1, ..., 1)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def start(n):
    if n == 2:
        return np.array([-1.2, 1.0])
    return np.zeros(n)


def run(n, jac):
    """One BFGS run; returns a dict of counts, error, time and the f-per-iteration history."""
    x0 = start(n)
    calls = {"f": 0, "grad": 0}

    def f(x):
        calls["f"] += 1
        return rosenbrock(x)

    g = None
    if jac is not None:
        def g(x):
            calls["grad"] += 1
            return jac(x)

    history = [rosenbrock(x0)]
    t0 = time.perf_counter()
    res = minimize(f, x0, jac=g, method="BFGS",
                   callback=lambda xk: history.append(rosenbrock(xk)))
    seconds = time.perf_counter() - t0
    return {
        "n": n, "nit": int(res.nit), "nfev": int(res.nfev), "njev": int(res.njev),
        "f_calls": calls["f"], "grad_calls": calls["grad"],
        "error": float(np.max(np.abs(res.x - 1.0))), "f_final": float(res.fun),
        "success": bool(res.success), "message": str(res.message),
        "seconds": seconds, "history": np.array(history),
    }


def main(quick=False):
    t_start = time.perf_counter()
    sizes = (2, 10) if quick else (2, 10, 50)
    jac = transpile.grad(rosenbrock)

    t0 = time.perf_counter()
    jac(start(10))                          # first call: transform + compile
    transform_s = time.perf_counter() - t0
    max_grad_err = max(float(np.max(np.abs(jac(x) - rosen_der(x))))
                       for x in (start(2), start(10), np.linspace(-2, 2, 17)))
    print(f"transpile.grad(rosenbrock): built in {transform_s * 1e3:.1f} ms; max |diff| "
          f"from scipy.optimize.rosen_der at 3 points: {max_grad_err:.1e}")
    print("\nBFGS, default options (gtol 1e-5)")
    print(f"  {'n':>3} {'gradient':>12} {'iter':>5} {'nfev':>6} {'njev':>5} "
          f"{'max|x-1|':>10} {'time (s)':>9}  success")

    results = {}
    for n in sizes:
        for label, j in (("transpile", jac), ("finite diff", None)):
            r = run(n, j)
            results[(n, label)] = r
            print(f"  {n:3d} {label:>12} {r['nit']:5d} {r['nfev']:6d} {r['njev']:5d} "
                  f"{r['error']:10.2e} {r['seconds']:9.4f}  {r['success']}")
    for n in sizes:
        a, b = results[(n, "transpile")], results[(n, "finite diff")]
        print(f"  n={n}: finite differences need {b['nfev'] / a['nfev']:.1f}x the function "
              f"evaluations and {b['seconds'] / a['seconds']:.1f}x the time; final error "
              f"{a['error']:.1e} (transpile) vs {b['error']:.1e}")

    _plot(results, sizes)
    elapsed = time.perf_counter() - t_start
    print(f"\nwrote {os.path.relpath(FIGURE)}  ({elapsed:.1f} s)")
    return {
        "sizes": sizes, "transform_seconds": transform_s, "max_grad_err": max_grad_err,
        "runs": {f"{n}/{label}": r for (n, label), r in results.items()},
        "figure": FIGURE, "seconds": elapsed,
    }


def _plot(results, sizes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 4))
    for ax, n in zip(np.atleast_1d(axes), sizes):
        for label, style in (("transpile", "-"), ("finite diff", "--")):
            r = results[(n, label)]
            ax.semilogy(np.maximum(r["history"], 1e-30), style,
                        label=f"jac={'transpile.grad' if label == 'transpile' else 'None'}"
                              f" ({r['nfev']} f evals)")
        ax.set_title(f"Rosenbrock, n = {n}")
        ax.set_xlabel("BFGS iteration")
        ax.set_ylabel("f(x_k)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, FIGURE, dpi=110)


if __name__ == "__main__":
    main(quick=quick_from_argv(__doc__.splitlines()[0]))
    sys.exit(0)
