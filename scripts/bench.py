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
import math  # noqa: E402

from workloads import array_workloads, scalar_workloads  # noqa: E402


def autograd_peer():
    """(numpy module, grad maker) of autograd, or None when it is not installed."""
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None
    return anp, lambda f, wrt: autograd.grad(f, argnum=wrt if len(wrt) > 1 else wrt[0])


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


def fmt(seconds):
    return f"{seconds * 1e6:>8.1f}us" if seconds < 1e-2 else f"{seconds * 1e3:>8.1f}ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    opts = ap.parse_args()
    repeats = 3 if opts.quick else opts.repeats
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} cores; medians of {repeats} alternating runs")
    peer = autograd_peer()
    print(f"{'workload':<16} {'primal':>10} {'gradient':>10} {'ratio':>7} {'transform':>10}"
          f" {'autograd':>10} {'vs autograd':>11}")
    ratios = []
    import numpy
    peer_programs = ({n: (f, a, w) for n, f, a, w in scalar_workloads(peer[0])
                      + array_workloads(peer[0])} if peer else {})
    for name, fn, args, wrt in scalar_workloads(math) + array_workloads(numpy):
        g = transpile.grad(fn, wrt=wrt)
        g(*args)
        contenders = [(fn, args), (g, args)]
        if peer is not None:
            pf, pa, pw = peer_programs.get(name, (fn, args, wrt))
            pg = peer[1](pf, pw)
            pg(*pa)
            contenders.append((pg, pa))
        numbers = [calibrate(f, a) for f, a in contenders]
        times = [[] for _ in contenders]
        for _ in range(repeats):
            for k, (f, a) in enumerate(contenders):
                times[k].append(per_call(f, a, numbers[k]))
        med = [statistics.median(t) for t in times]
        mp, mg = med[0], med[1]
        ratios.append(mg / mp)
        tt = transform_time(fn, args, wrt)
        peer_cols = (f" {med[2] * 1e6:>8.1f}us {med[2] / mg:>10.1f}x" if peer else
                     "   (autograd not installed)")
        print(f"{name:<16} {fmt(mp)} {fmt(mg)} {mg / mp:>6.2f}x "
              f"{tt * 1e3:>8.2f}ms{peer_cols}")
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x")


if __name__ == "__main__":
    main()
