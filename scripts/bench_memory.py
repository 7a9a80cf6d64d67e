"""Peak memory of a gradient against the number of loop iterations.

    python scripts/bench_memory.py [--steps 100 1000 10000 100000] [--option KEY=VALUE ...]

A loop that overwrites its variables stores the old values for the adjoint sweep, so the
gradient's memory grows with the iteration count. Measured on the scalar recurrence
``y = sin(y) * w + 0.5 * y`` run n times (n a parameter), with tracemalloc (Python-level
allocations: the tape of floats and lists), the gradient function built before measuring.

Each column is one way of calling transpile.grad: the default, plus one per ``--option``
(its keyword arguments, values read as Python literals, e.g. ``--option checkpoint=100``
once grad takes such an option), so other settings are compared in the same table.
"""
import argparse
import ast
import math
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transpile  # noqa: E402
from workloads import recurrence_steps_program  # noqa: E402


def peak_bytes(call):
    """Peak bytes allocated (above what was allocated before) while call() runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return peak, result


def gradient_peak(fn, args, wrt, **grad_options):
    """(peak bytes of one gradient call, the gradient); grad_options go to transpile.grad."""
    g = transpile.grad(fn, wrt=wrt, **grad_options)
    g(*args)                                      # transform and first call outside
    return peak_bytes(lambda: g(*args))


def parse_option(text):
    key, _, value = text.partition("=")
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass
    return key, value


def fmt_bytes(n):
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra column: transpile.grad(..., KEY=VALUE)")
    opts = ap.parse_args()
    columns = [("gradient", {})] + [(o, dict([parse_option(o)])) for o in opts.option]
    f = recurrence_steps_program(math)
    print("recurrence y = sin(y) * w + 0.5 * y, n steps; gradient w.r.t. (x, w); "
          "peak memory by tracemalloc")
    head = "| steps n | primal |"
    for label, _ in columns:
        head += f" {label} | per step | marginal per step |"
    print(head)
    print("| --- " * (2 + 3 * len(columns)) + "|")
    previous = {}
    reference = None
    for n in opts.steps:
        args = (0.3, 0.7, n)
        primal, _ = peak_bytes(lambda: f(*args))
        row = f"| {n:,} | {fmt_bytes(primal)} |"
        for label, options in columns:
            peak, grads = gradient_peak(f, args, (0, 1), **options)
            if label == "gradient":
                reference = grads
            elif grads != reference:
                print(f"# WARNING: {label}: gradient {grads} differs from the default's "
                      f"{reference}")
            marginal = ""
            if label in previous:
                n0, p0 = previous[label]
                marginal = f"{(peak - p0) / (n - n0):.1f} B"
            previous[label] = (n, peak)
            row += f" {fmt_bytes(peak)} | {peak / n:.1f} B | {marginal} |"
        print(row)


if __name__ == "__main__":
    main()
