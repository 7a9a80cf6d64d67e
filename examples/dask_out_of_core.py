"""Gradient descent on a dataset larger than the workers' memory, with Dask.

    python examples/dask_out_of_core.py [--quick] [--rows N] [--scheduler ADDRESS]

A logistic regression over `rows` rows of 16 features (10 million by default: 1.3 GB of
float64, more than the 2 x 512 MiB the two local workers are given). The rows are never
held anywhere: `dask.array.random` makes each chunk of 250,000 rows when a task needs it,
from a fixed seed, so every pass over the data regenerates the same rows chunk by chunk.

The loss is plain NumPy code. transpile writes its gradient once; called with Dask arrays,
that derivative code builds a Dask graph (nothing is computed by transpile), and
`dask.compute(loss, gradient)` evaluates both in one pass over the chunks on the workers.
A tqdm progress bar counts the steps; the loss curve goes to
examples/figures/dask_out_of_core.png.

Without --scheduler, a `LocalCluster` of two worker processes runs on this machine. On a
real cluster, the same script connects to its scheduler:
`--scheduler tcp://scheduler:8786` (`Client("tcp://scheduler:8786")`).

`main(quick=True)` runs 200,000 rows and 8 steps, checks the first gradient against the
NumPy gradient of the same rows computed in memory, and returns the numbers.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plotting import figure_path, save_figure  # noqa: E402

import transpile  # noqa: E402

FIGURE = figure_path("dask_out_of_core")
FEATURES = 16
CHUNK_ROWS = 250_000


def loss(w, b, X, y):
    """Mean logistic loss (cross-entropy) of the weights w and bias b."""
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def dataset(rows, seed=0, chunk_rows=CHUNK_ROWS):
    """X (rows x FEATURES) and labels y, both lazy: each chunk is generated when used."""
    import dask.array as da
    rs = da.random.RandomState(seed)
    chunk_rows = min(chunk_rows, rows)
    X = rs.normal(size=(rows, FEATURES), chunks=(chunk_rows, FEATURES))
    w_true = np.linspace(-1.0, 1.0, FEATURES)
    noise = rs.logistic(size=rows, chunks=chunk_rows)
    y = (X @ w_true + 0.5 + noise > 0).astype(float)
    return X, y


def train(X, y, steps, lr=2.0, progress=True):
    """Gradient descent from zero; the loss before each step and the final weights."""
    import dask
    from tqdm import tqdm
    value_and_grad = transpile.value_and_grad(loss, wrt=(0, 1))
    w, b = np.zeros(FEATURES), 0.0
    losses = []
    bar = tqdm(range(steps), desc="gradient steps", unit="step", disable=not progress)
    for _ in bar:
        value, (dw, db) = value_and_grad(w, b, X, y)   # a Dask graph: nothing computed
        value, dw, db = dask.compute(value, dw, db)     # one pass over the chunks
        losses.append(float(value))
        bar.set_postfix(loss=f"{losses[-1]:.5f}")
        w, b = w - lr * dw, b - lr * float(db)
    return losses, w, b


def plot(losses, rows, path=FIGURE):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(len(losses)), losses, marker="o")
    ax.set_xlabel("gradient step")
    ax.set_ylabel("mean logistic loss")
    ax.set_title(f"Logistic regression on {rows:,} rows (Dask, out of core)")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    return path


def main(quick=False, rows=None, scheduler=None, steps=None, progress=True):
    from dask.distributed import Client, LocalCluster
    rows = rows or (200_000 if quick else 10_000_000)
    steps = steps or (8 if quick else 20)
    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               memory_limit="512MiB", dashboard_address=None)
        client = Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        X, y = dataset(rows, chunk_rows=CHUNK_ROWS if not quick else 50_000)
        size = X.nbytes / 2 ** 30
        print(f"{rows:,} rows x {FEATURES} features = {size:.2f} GiB of float64, on "
              f"{workers} workers")
        result = {"rows": rows, "workers": workers, "gib": size}
        if quick:        # the first gradient against NumPy's, the rows in memory
            Xn, yn = X.compute(), y.compute()
            lazy = transpile.grad(loss, wrt=(0, 1))(np.zeros(FEATURES), 0.0, X, y)
            ref = transpile.grad(loss, wrt=(0, 1))(np.zeros(FEATURES), 0.0, Xn, yn)
            got = [np.asarray(g) for g in client.compute(list(lazy), sync=True)]
            result["max_abs_diff"] = max(float(np.max(np.abs(a - b)))
                                         for a, b in zip(got, ref))
        t0 = time.perf_counter()
        losses, w, b = train(X, y, steps, progress=progress)
        took = time.perf_counter() - t0
        result.update(losses=losses, w=w, b=b, seconds=took,
                      rows_per_second_per_worker=rows * steps / took / workers,
                      figure=plot(losses, rows))
        print(f"loss {losses[0]:.5f} -> {losses[-1]:.5f} in {steps} steps, {took:.1f} s: "
              f"{result['rows_per_second_per_worker']:,.0f} rows/s per worker; "
              f"figure {result['figure']}")
        return result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 8 steps")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler (tcp://host:8786)")
    opts = parser.parse_args()
    quick = opts.quick or os.environ.get("TRANSPILE_EXAMPLES_QUICK", "") not in ("", "0")
    main(quick=quick, rows=opts.rows, scheduler=opts.scheduler, steps=opts.steps)
