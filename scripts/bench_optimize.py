"""What the optimisation passes buy: generated-code size and gradient time, on and off.

    python scripts/bench_optimize.py [--repeats 15]

For each workload the gradient is built three ways (all passes; no sympy simplification;
no optimisation at all) and timed alternately in one process; medians are printed.
"""
import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy  # noqa: E402

from transpile import pipeline  # noqa: E402
from transpile.analysis import value_kind  # noqa: E402
from workloads import array_workloads, scalar_workloads  # noqa: E402

VARIANTS = [("optimized", {}), ("no simplify", {"simplify": False}),
            ("no optimize", {"optimize": False, "simplify": False})]


def per_call(fn, args, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - t0) / number


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    opts = ap.parse_args()
    print(f"{'workload':<16} " + " ".join(f"{v:>24}" for v, _ in VARIANTS))
    print(f"{'':<16} " + " ".join(f"{'lines':>8} {'time':>15}" for _ in VARIANTS))
    for name, fn, args, wrt in scalar_workloads(math) + array_workloads(numpy):
        params = fn.__code__.co_varnames[:fn.__code__.co_argcount]
        kinds = {p: value_kind(a) for p, a in zip(params, args)}
        names = tuple(params[i] for i in wrt)
        built = [pipeline.gradient_function(fn, names, kinds, o) for _, o in VARIANTS]
        number = 1
        while per_call(built[0].function, args, number) * number < 0.02:
            number *= 2
        times = [[] for _ in built]
        for _ in range(opts.repeats):
            for k, c in enumerate(built):
                times[k].append(per_call(c.function, args, number))
        cells = []
        for c, t in zip(built, times):
            lines = len(c.source.strip().splitlines())
            cells.append(f"{lines:>8} {statistics.median(t) * 1e6:>13.1f}us")
        print(f"{name:<16} " + " ".join(cells))


if __name__ == "__main__":
    main()
