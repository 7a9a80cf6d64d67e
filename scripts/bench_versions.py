"""Two versions of transpile side by side in one process: is a change a slowdown?

    python scripts/bench_versions.py OTHER_TREE [--repeats 21]

OTHER_TREE is another checkout of this repository (e.g. `git worktree add ../base HEAD~5`).
Its `transpile` package is loaded under the name `transpile_other` next to this tree's
`transpile`, and for each workload of scripts/workloads.py (the ones scripts/bench.py
times) the two generated gradients are timed alternately, call by call, so machine noise
hits both alike. Printed: medians, each version's gradient / primal ratio, and the ratio
new / other (below 1: this tree is faster). The gradients are compared before timing.

Also the transform time (CPU time, cache cleared, median of 5) of each workload for both
versions.

Not a test: numbers depend on the machine.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import math  # noqa: E402

import numpy  # noqa: E402

import transpile  # noqa: E402
from workloads import array_workloads, scalar_workloads  # noqa: E402


def load_other(tree):
    """The transpile package of another checkout, imported as `transpile_other`."""
    init = os.path.join(tree, "transpile", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        "transpile_other", init, submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["transpile_other"] = module
    spec.loader.exec_module(module)
    return module


def _forget(tool, fn):
    """Drop tool's in-memory cache entries for fn (as scripts/transform_time.forget)."""
    pipeline = sys.modules[tool.__name__ + ".pipeline"]
    pipeline._CACHE.pop(fn, None)
    pipeline._UNITS.pop(fn, None)


def alternate(calls, repeats):
    """Median seconds per call of each callable, timed in turn (inner loop sized ~2 ms)."""
    inner = []
    for call in calls:
        start = time.perf_counter()
        call()
        once = max(time.perf_counter() - start, 1e-7)
        inner.append(max(1, int(0.002 / once)))
    samples = [[] for _ in calls]
    for _ in range(repeats):
        for k, call in enumerate(calls):
            n = inner[k]
            start = time.perf_counter()
            for _ in range(n):
                call()
            samples[k].append((time.perf_counter() - start) / n)
    return [statistics.median(s) for s in samples]


def transform_seconds(tool, fn, wrt, args, repeats=5):
    out = []
    for _ in range(repeats):
        _forget(tool, fn)
        start = time.process_time()
        tool.grad(fn, wrt=wrt)(*args)
        out.append(time.process_time() - start)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("other", help="another checkout of this repository")
    ap.add_argument("--repeats", type=int, default=21)
    opts = ap.parse_args()
    other = load_other(os.path.abspath(opts.other))
    print(f"this tree: {os.path.dirname(HERE)}   other: {os.path.abspath(opts.other)}")
    print(f"Python {sys.version.split()[0]}, NumPy {numpy.__version__}, medians of "
          f"{opts.repeats} alternated runs\n")
    rows = []
    for name, fn, args, wrt in scalar_workloads(math) + array_workloads(numpy):
        new = transpile.grad(fn, wrt=wrt)
        old = other.grad(fn, wrt=wrt)
        gn, go = new(*args), old(*args)
        flat_n = numpy.concatenate([numpy.ravel(g) for g in (gn if isinstance(gn, tuple)
                                                              else (gn,))])
        flat_o = numpy.concatenate([numpy.ravel(g) for g in (go if isinstance(go, tuple)
                                                              else (go,))])
        diff = numpy.max(numpy.abs(flat_n - flat_o)) / max(numpy.max(numpy.abs(flat_o)),
                                                           1e-300)
        if diff > 1e-10:
            print(f"WARNING {name}: the gradients differ (relative {diff:.1e})")
        primal, t_new, t_old = alternate([lambda: fn(*args), lambda: new(*args),
                                          lambda: old(*args)], opts.repeats)
        x_new = transform_seconds(transpile, fn, wrt, args)
        x_old = transform_seconds(other, fn, wrt, args)
        rows.append((name, primal, t_new, t_old, x_new, x_old))
    print(f"{'workload':<22}{'primal':>10}{'new':>10}{'other':>10}{'new/primal':>12}"
          f"{'other/primal':>14}{'new/other':>11}{'transform new':>15}{'other':>9}")
    for name, primal, t_new, t_old, x_new, x_old in rows:
        print(f"{name:<22}{primal * 1e6:>8.1f}us{t_new * 1e6:>8.1f}us{t_old * 1e6:>8.1f}us"
              f"{t_new / primal:>11.2f}x{t_old / primal:>13.2f}x{t_new / t_old:>10.2f}x"
              f"{x_new * 1e3:>13.1f}ms{x_old * 1e3:>7.1f}ms")
    geo = math.exp(statistics.mean(math.log(r[2] / r[3]) for r in rows))
    print(f"\nnew / other, geometric mean over the workloads: {geo:.2f}x")


if __name__ == "__main__":
    main()
