"""Benchmark: peak memory and time of a gradient through a long loop, with and without
checkpointing (`checkpoint=`).

    python scripts/bench_memory.py [--quick] [--repeats 7]

The workload is the scalar recurrence ``y = math.sin(y) * w + 0.5 * y`` run for n steps,
differentiated with respect to x and w. Peak memory is tracemalloc's peak during one
gradient call (compiled and warmed up before), so it counts what the call allocates: the
tape, or the snapshots plus one segment's tape (for n = 100 part of the floats come from
CPython's float free list, which tracemalloc does not see). Time is the median of 7 runs
(each of max(1, 10^5 / n) calls), None and "sqrt" alternating, without tracemalloc.
Not a test: the numbers depend on the machine; the README quotes one run.
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import transpile  # noqa: E402


def recurrence(x, w, n):
    y = x
    for i in range(n):
        y = math.sin(y) * w + 0.5 * y
    return y


def peak_bytes(gradient, args):
    """tracemalloc's peak during one call of gradient(*args), compiled and warm before."""
    gradient(*args)
    tracemalloc.start()
    try:
        gradient(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def seconds(gradient, args, number):
    t0 = time.perf_counter()
    for _ in range(number):
        gradient(*args)
    return (time.perf_counter() - t0) / number


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n up to 10^4 only")
    parser.add_argument("--repeats", type=int, default=7)
    opts = parser.parse_args()
    counts = [10 ** e for e in range(2, 5 if opts.quick else 7)]
    plain = transpile.grad(recurrence, wrt=(0, 1))
    ckpt = transpile.grad(recurrence, wrt=(0, 1), checkpoint="sqrt")
    print(f"CPython {platform.python_version()}, {platform.machine()}; "
          "y = sin(y) * w + 0.5 * y, n steps; peak = tracemalloc peak of one gradient call")
    print()
    print("| n | peak, checkpoint=None | per step | peak, checkpoint=\"sqrt\" | per step "
          "| memory ratio | time None | time \"sqrt\" | time ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in counts:
        args = (0.3, 0.7, n)
        assert max(abs(a - b) for a, b in zip(plain(*args), ckpt(*args))) < 1e-9
        p, c = peak_bytes(plain, args), peak_bytes(ckpt, args)
        number = max(1, 10 ** 5 // n)
        tp, tc = [], []
        for _ in range(opts.repeats):     # alternate, so machine noise hits both alike
            tp.append(seconds(plain, args, number))
            tc.append(seconds(ckpt, args, number))
        tp, tc = statistics.median(tp), statistics.median(tc)
        print(f"| {n:,} | {p:,} B | {p / n:.1f} B | {c:,} B | {c / n:.2f} B "
              f"| {p / c:.0f}x | {_fmt(tp)} | {_fmt(tc)} | {tc / tp:.2f}x |")


def _fmt(t):
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


if __name__ == "__main__":
    main()
