"""Benchmark: gradient time / primal time, and transform time, side by side in one run.

    python scripts/bench.py [--repeats 21] [--quick]

For each workload the primal and transpile's gradient are timed alternately (so machine
noise hits both alike); medians and their ratio are printed. Transform time is the time to
build the gradient function from scratch (cache cleared), median of several builds.
Not a test: numbers depend on the machine; the README quotes one run.
"""
import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transpile  # noqa: E402
from transpile import pipeline  # noqa: E402
from workloads import SCALAR  # noqa: E402


def per_call(fn, args, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - t0) / number


def calibrate(fn, args, target=0.02):
    number = 1
    while per_call(fn, args, number) * number < target:
        number *= 2
    return number


def transform_time(fn, args, wrt, repeats=5):
    """Source to compiled gradient: parse, all passes, print, compile (cache cleared)."""
    times = []
    for _ in range(repeats):
        pipeline._CACHE.pop(fn, None)
        pipeline._UNITS.pop(fn, None)
        t0 = time.perf_counter()
        transpile.grad(fn, wrt=wrt).variants.get(args, {})
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    opts = ap.parse_args()
    repeats = 3 if opts.quick else opts.repeats
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} cores; medians of {repeats} alternating runs")
    print(f"{'workload':<16} {'primal':>10} {'gradient':>10} {'ratio':>7} {'transform':>10}")
    transpile.grad(SCALAR[0][1])          # warm up imports (sympy rule derivation)
    ratios = []
    for name, fn, args, wrt in SCALAR:
        g = transpile.grad(fn, wrt=wrt)
        g(*args)
        n_p, n_g = calibrate(fn, args), calibrate(g, args)
        tp, tg = [], []
        for _ in range(repeats):
            tp.append(per_call(fn, args, n_p))
            tg.append(per_call(g, args, n_g))
        mp, mg = statistics.median(tp), statistics.median(tg)
        ratios.append(mg / mp)
        tt = transform_time(fn, args, wrt)
        print(f"{name:<16} {mp * 1e6:>8.1f}us {mg * 1e6:>8.1f}us {mg / mp:>6.2f}x "
              f"{tt * 1e3:>8.2f}ms")
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x")


if __name__ == "__main__":
    main()
