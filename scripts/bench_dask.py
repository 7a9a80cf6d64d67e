"""Throughput of transpile's gradient on Dask arrays: rows per second per worker.

    python scripts/bench_dask.py [--rows N] [--repeats R]

The workload of examples/dask_out_of_core.py: the mean logistic loss of 16 features and
its gradient (`transpile.value_and_grad`, both computed in one `dask.compute`), on a
LocalCluster of two single-threaded worker processes. Three rows of the table:

- out of core: the rows generated chunk by chunk in every pass (the example), so the
  time includes making the random numbers;
- in worker memory: the same rows persisted on the workers first;
- NumPy in memory: one process, one thread, the same code on an in-memory slice of
  1/2 of the rows (what one worker holds), as plain NumPy arrays.

Medians of `repeats` passes, after one warm-up pass. Not a test: numbers depend on the
machine. The README's "Beyond one machine" section quotes one run.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "examples"))
import transpile  # noqa: E402
from dask_out_of_core import FEATURES, dataset, loss  # noqa: E402


def median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    opts = ap.parse_args()
    import dask
    from dask.distributed import Client, LocalCluster
    rows, workers = opts.rows, 2
    vg = transpile.value_and_grad(loss, wrt=(0, 1))
    w, b = np.linspace(-0.2, 0.2, FEATURES), 0.1
    print(f"# Python {sys.version.split()[0]}, NumPy {np.__version__}, Dask "
          f"{dask.__version__}; {rows:,} rows x {FEATURES} features, {workers} workers x 1 "
          f"thread, medians of {opts.repeats}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        X, y = dataset(rows)

        def pass_over(X, y):
            value, (dw, db) = vg(w, b, X, y)
            return client.compute([value, dw, db], sync=True)

        t_gen = median_time(lambda: pass_over(X, y), opts.repeats)
        Xp, yp = client.persist([X, y])
        dask.distributed.wait([Xp, yp])
        t_mem = median_time(lambda: pass_over(Xp, yp), opts.repeats)
        half = rows // workers
        Xn, yn = X[:half].compute(), y[:half].compute()
    t_np = median_time(lambda: vg(w, b, Xn, yn), opts.repeats)
    t_primal = median_time(lambda: loss(w, b, Xn, yn), opts.repeats)
    print("| data | seconds per pass | rows/s per worker |")
    print("| --- | --- | --- |")
    print(f"| Dask, out of core (rows generated in each pass) | {t_gen:.3f} | "
          f"{rows / t_gen / workers:,.0f} |")
    print(f"| Dask, in worker memory | {t_mem:.3f} | {rows / t_mem / workers:,.0f} |")
    print(f"| NumPy in memory ({half:,} rows, one process) | {t_np:.3f} | "
          f"{half / t_np:,.0f} |")
    print(f"| NumPy primal only (the loss, {half:,} rows) | {t_primal:.3f} | "
          f"{half / t_primal:,.0f} |")
    print(f"Dask in worker memory / NumPy in memory, per worker: "
          f"{(rows / t_mem / workers) / (half / t_np):.2f}")


if __name__ == "__main__":
    main()
