"""Benchmark of jit=True on the scalar workloads: plain-Python primal, transpile's gradient,
the numba-jitted gradient and jax.jit(jax.grad) steady state, side by side in one run.

    python scripts/bench_jit.py [--repeats 21] [--quick]

Steady state: every contender is called once first (compiled, cached), then they are timed
alternately (so machine noise hits all alike) and medians printed. First-call times (for
jit=True: transform + numba compile; for JAX: trace + XLA compile) are printed separately,
medians over fresh function objects. JAX runs in float64 (jax_enable_x64) on the same
program text (math -> jax.numpy; its Python loop is unrolled when traced), and, as a
second JAX column, on the same loops hand-written with jax.lax.fori_loop (what a JAX user
would write). Without numba or jax their columns say so.
`jit_rows(repeats)` returns the numbers for other scripts (e.g. bench.py) to print.
Not a test: numbers depend on the machine; the README quotes one run.
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transpile  # noqa: E402

from workloads import scalar_workloads  # noqa: E402


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


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def jax_peer():
    """(math-like module, grad maker) of JAX in float64, or None when it is not installed."""
    if not have("jax"):
        return None
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def make(f, wrt):
        g = jax.jit(jax.grad(f, argnums=wrt if len(wrt) > 1 else wrt[0]))
        return lambda *a: jax.block_until_ready(g(*a))
    return jnp, make


def fori_programs(jax):
    """The scalar workloads written the JAX way (lax.fori_loop), same arithmetic."""
    sin = jax.numpy.sin

    def recurrence(x, w):
        return jax.lax.fori_loop(0, 200, lambda i, y: sin(y) * w + 0.5 * y, x)

    def euler(k, x0, v0):
        def step(i, state):
            x, v = state
            a = -k * x - 0.1 * v
            return x + 0.01 * v, v + 0.01 * a
        return jax.lax.fori_loop(0, 500, step, (x0, v0))[0]

    return recurrence, euler


def first_call(build, args, repeats=3):
    """Median time of the first call of a freshly built gradient (fresh functions each)."""
    times = []
    for _ in range(repeats):
        g = build()
        t0 = time.perf_counter()
        g(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jit_rows(repeats=21):
    """One dict per scalar workload: medians (seconds) of primal, gradient, jitted
    gradient and jax steady state (None when not installed), and first-call times."""
    jitted_ok = have("numba")
    peer = jax_peer()
    rows = []
    for k, (name, fn, args, wrt) in enumerate(scalar_workloads(math)):
        g = transpile.grad(fn, wrt=wrt)
        contenders = [(fn, args), (g, args)]
        if jitted_ok:
            contenders.append((transpile.grad(fn, wrt=wrt, jit=True), args))
        if peer is not None:
            import jax
            pf, pa, pw = scalar_workloads(peer[0])[k][1:]
            fargs = tuple(float(a) for a in pa)
            contenders.append((peer[1](pf, pw), fargs))
            contenders.append((peer[1](fori_programs(jax)[k], pw), fargs))
        for f, a in contenders:
            f(*a)                                    # compile / warm up
        numbers = [calibrate(f, a) for f, a in contenders]
        times = [[] for _ in contenders]
        for _ in range(repeats):
            for j, (f, a) in enumerate(contenders):
                times[j].append(per_call(f, a, numbers[j]))
        med = [statistics.median(t) for t in times]
        row = {"name": name, "primal": med[0], "grad": med[1], "jit": None, "jax": None,
               "jax_fori": None, "jit_first": None, "jax_first": None}
        rest = med[2:]
        if jitted_ok:
            row["jit"] = rest.pop(0)
            row["jit_first"] = first_call(
                lambda: transpile.grad(scalar_workloads(math)[k][1], wrt=wrt, jit=True),
                args)
        if peer is not None:
            row["jax"], row["jax_fori"] = rest.pop(0), rest.pop(0)
            row["jax_first"] = first_call(
                lambda: peer[1](scalar_workloads(peer[0])[k][1], wrt),
                tuple(float(a) for a in args), repeats=1)
        rows.append(row)
    return rows


def fmt(seconds):
    if seconds is None:
        return f"{'-':>10}"
    return f"{seconds * 1e6:>8.1f}us" if seconds < 1e-2 else f"{seconds * 1e3:>8.1f}ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    opts = ap.parse_args()
    repeats = 3 if opts.quick else opts.repeats
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} cores; medians of {repeats} alternating "
          f"runs")
    notes = []
    if not have("numba"):
        notes.append("numba not installed: no jit column (pip install 'transpile[jit]')")
    if not have("jax"):
        notes.append("jax not installed: no jax column (pip install jax jaxlib)")
    rows = jit_rows(repeats)
    print(f"{'workload':<16} {'primal':>10} {'gradient':>10} {'jit grad':>10} "
          f"{'jax.jit':>10} {'jax fori':>10} {'jit/primal':>10} {'jit/jax':>8} "
          f"{'jit 1st':>10} {'jax 1st':>10}")
    for r in rows:
        vs_primal = f"{r['jit'] / r['primal']:>9.2f}x" if r["jit"] else f"{'-':>10}"
        best_jax = min(r["jax"], r["jax_fori"]) if r["jax"] else None
        vs_jax = (f"{r['jit'] / best_jax:>7.2f}x" if r["jit"] and best_jax
                  else f"{'-':>8}")
        print(f"{r['name']:<16} {fmt(r['primal'])} {fmt(r['grad'])} {fmt(r['jit'])} "
              f"{fmt(r['jax'])} {fmt(r['jax_fori'])} {vs_primal} {vs_jax} "
              f"{fmt(r['jit_first'])} {fmt(r['jax_first'])}")
    print("# jit/jax: against the faster of the two JAX columns; 1st: first call of a "
          "fresh function (jit: transform + numba compile; jax: trace + compile, unrolled)")
    for note in notes:
        print(f"# {note}")


if __name__ == "__main__":
    main()
