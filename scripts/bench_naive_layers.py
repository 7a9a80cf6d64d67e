"""Benchmark of loops over arrays: CS231n-style naive convolution and max-pool layers.

    python scripts/bench_naive_layers.py [--repeats 15] [--quick]

For each layer, side by side in one run: the primal (forward pass), the hand-written
backward pass in plain Python (naive_layers.py, forward + backward: what a gradient costs
written by hand), transpile's gradient of the loss sum(layer(x) * dout) and, with numba
installed, transpile's gradient with jit=True. The gradients are checked against each
other first. Medians of alternating runs; ratios against the hand-written forward +
backward. Not a test: numbers depend on the machine.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transpile  # noqa: E402

from naive_layers import (conv_backward_naive, conv_data, conv_forward_naive,  # noqa: E402
                          conv_loss, max_pool_backward_naive, max_pool_forward_naive,
                          pool_data, pool_loss)


def have_numba():
    try:
        import numba  # noqa: F401
        return True
    except ImportError:
        return False


def contenders(jit):
    rng = np.random.default_rng(0)
    x, w, b, dout = conv_data(rng)
    xp, doutp = pool_data(rng)

    def conv_hand():
        out = conv_forward_naive(x, w, b)
        return np.sum(out * dout), conv_backward_naive(dout, x, w, b)

    def pool_hand():
        out = max_pool_forward_naive(xp, 2, 2)
        return np.sum(out * doutp), (max_pool_backward_naive(doutp, xp, 2, 2),)

    rows = []
    for name, primal, hand, loss, args, wrt in [
            ("conv x(4,3,16,16) w(8,3,3,3)", lambda: conv_forward_naive(x, w, b), conv_hand,
             conv_loss, (x, w, b, dout), (0, 1, 2)),
            ("max-pool x(4,3,16,16) 2x2/2", lambda: max_pool_forward_naive(xp, 2, 2),
             pool_hand, pool_loss, (xp, doutp), (0,))]:
        g = transpile.value_and_grad(loss, wrt=wrt)
        cols = {"primal": primal, "hand": hand, "transpile": lambda g=g, a=args: g(*a)}
        if jit:
            gj = transpile.value_and_grad(loss, wrt=wrt, jit=True)
            try:
                gj(*args)
                cols["jit"] = lambda g=gj, a=args: g(*a)
            except transpile.TranspileError as e:
                print(f"{name}: jit=True refused: {str(e).split(': ', 1)[-1]}")
        # the gradients agree before anything is timed
        want_v, want = hand()
        for key in ("transpile", "jit"):
            if key in cols:
                v, got = cols[key]()
                got = got if isinstance(got, tuple) else (got,)
                assert np.allclose(v, want_v), (name, key)
                for a, c in zip(got, want):
                    assert np.allclose(a, c, rtol=1e-10, atol=1e-10), (name, key)
        rows.append((name, cols))
    return rows


def timed(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    jit = have_numba()
    rows = contenders(jit)
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"numba {'yes' if jit else 'not installed'}; medians of {repeats} (ms)")
    head = f"{'layer':32} {'primal':>8} {'hand':>8} {'transpile':>10} {'ratio':>6}"
    if jit:
        head += f" {'jit':>8} {'ratio':>6}"
    print(head)
    for name, cols in rows:
        for fn in cols.values():
            fn()                                    # compiled, warm
        times = {k: [] for k in cols}
        for _ in range(repeats):                    # alternately: noise hits all alike
            for k, fn in cols.items():
                times[k].append(timed(fn, 3))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        line = (f"{name:32} {med['primal']:8.2f} {med['hand']:8.2f} "
                f"{med['transpile']:10.2f} {med['transpile'] / med['hand']:6.2f}")
        if "jit" in med:
            line += f" {med['jit']:8.2f} {med['jit'] / med['hand']:6.2f}"
        elif jit:
            line += f" {'refused':>8} {'':>6}"
        print(line)
    print("hand: forward + hand-written backward; ratio: against hand (lower is faster)")


if __name__ == "__main__":
    main()
