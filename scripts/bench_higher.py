"""Cost of Hessian-vector products and Hessians relative to a gradient, in one run.

    python scripts/bench_higher.py [--repeats 11]

An HVP is forward mode over the generated gradient code (forward over reverse, the
default) or reverse mode over the generated tangent code (reverse over forward); both are
timed. The Hessian of n inputs is n forward-over-reverse HVPs, column by column.
"""
import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import transpile  # noqa: E402
from workloads import scalar_workloads  # noqa: E402


def per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def mlp_loss(W1, W2, X, Y):
    h = np.tanh(X @ W1)
    out = h @ W2
    return 0.5 * np.sum((out - Y) ** 2) / X.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    opts = ap.parse_args()
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(8, 6)) * 0.3, rng.normal(size=(6, 1))
    X, Y = rng.normal(size=(32, 8)), rng.normal(size=(32, 1))
    recurrence, euler = scalar_workloads(math)[0][1], scalar_workloads(math)[1][1]
    cases = [
        ("recurrence-200 (x)", recurrence, (0.3, 0.7), 0, 1.0, 1),
        ("euler-500 (k)", euler, (2.0, 1.0, 0.0), 0, 1.0, 1),
        ("mlp W1 (8x6 = 48)", mlp_loss, (W1, W2, X, Y), 0, rng.normal(size=W1.shape), 48),
    ]
    print(f"{'workload':<22} {'gradient':>10} {'hvp f/r':>10} {'hvp/grad':>9} "
          f"{'hvp r/f':>10} {'hvp/grad':>9} {'hessian':>10} {'hessian/hvp':>12}")
    for name, f, args, wrt, v, n in cases:
        g = transpile.grad(f, wrt=wrt)
        hv = transpile.hvp(f, wrt=wrt)
        hv2 = transpile.hvp(f, wrt=wrt, mode="reverse-over-forward")
        H = transpile.hessian(f, wrt=wrt)
        calls = [lambda: g(*args), lambda: hv(*args, v=v), lambda: hv2(*args, v=v),
                 lambda: H(*args)]
        for c in calls:
            c()
        numbers = []
        for c in calls:
            k = 1
            while per_call(c, k) * k < 0.02:
                k *= 2
            numbers.append(k)
        times = [[] for _ in calls]
        for _ in range(opts.repeats):
            for i, c in enumerate(calls):
                times[i].append(per_call(c, numbers[i]))
        tg, th, th2, tH = (statistics.median(t) for t in times)
        print(f"{name:<22} {tg * 1e6:>8.1f}us {th * 1e6:>8.1f}us {th / tg:>8.2f}x "
              f"{th2 * 1e6:>8.1f}us {th2 / tg:>8.2f}x "
              f"{tH * 1e6:>8.1f}us {tH / th:>11.1f}x (n = {n})")


if __name__ == "__main__":
    main()
