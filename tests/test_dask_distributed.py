"""Gradients computed on a Dask cluster: a LocalCluster of worker processes on this
machine, as a real cluster would run them (`Client("tcp://scheduler:8786")`), and the
out-of-core example in quick mode."""
import time

import numpy as np
import pytest

import transpile
from finite_differences import central_wrt

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def logistic_loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_logistic_regression_gradient_on_a_local_cluster(client):
    rs = da.random.RandomState(3)
    X = rs.normal(size=(6000, 5), chunks=(1000, 5))            # six chunks
    y = (X @ np.linspace(-1, 1, 5) + rs.normal(size=6000, chunks=1000) > 0).astype(float)
    w, b = np.array([0.3, -0.1, 0.2, 0.0, 0.5]), 0.1
    value, (dw, db) = transpile.value_and_grad(logistic_loss, wrt=(0, 1))(w, b, X, y)
    assert isinstance(dw, da.Array) and isinstance(db, da.Array)   # a graph, not numbers
    value, dw, db = client.compute([value, dw, db], sync=True)
    assert client.scheduler_info()["workers"], "no workers"
    Xn, yn = X.compute(), y.compute()                             # the same rows in memory
    ref_value, (ref_dw, ref_db) = transpile.value_and_grad(logistic_loss, wrt=(0, 1))(
        w, b, Xn, yn)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, ref_db, rtol=1e-10, atol=1e-14)
    args = (w, b, Xn, yn)
    np.testing.assert_allclose(dw, central_wrt(logistic_loss, args, 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, central_wrt(logistic_loss, args, 1), rtol=1e-6, atol=1e-8)


def test_the_out_of_core_example_trains_and_matches_numpy(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    monkeypatch.setenv("TRANSPILE_EXAMPLES_FIGURES", str(tmp_path))
    from example_loader import load
    started = time.time()
    r = load("dask_out_of_core").main(quick=True, progress=False)
    assert r["workers"] == 2 and r["rows"] == 200_000
    assert r["max_abs_diff"] < 1e-12                 # the first gradient: Dask = NumPy
    losses = r["losses"]
    assert abs(losses[0] - np.log(2.0)) < 1e-12      # w = 0, b = 0: log 2
    assert all(b < a for a, b in zip(losses, losses[1:]))   # gradient descent descends
    assert losses[-1] < 0.45
    with open(r["figure"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    import os
    assert os.path.getmtime(r["figure"]) >= started - 1
