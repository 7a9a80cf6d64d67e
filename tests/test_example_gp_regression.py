"""Run examples/gp_regression.py in quick mode: its gradient of the log marginal likelihood
(through scipy.stats.multivariate_normal.logpdf) against central finite differences and
the Cholesky version, the fit raising the likelihood to a stationary point, the figure."""
import os
import time

import numpy as np
import pytest

pytest.importorskip("scipy")

from finite_differences import central  # noqa: E402
from example_loader import load  # noqa: E402


@pytest.fixture(scope="module")
def gp():
    started = time.time()
    module = load("gp_regression")
    return module, module.main(quick=True), started


def test_gradient_matches_central_differences(gp):
    module, out, _ = gp
    assert out["grad_err"] < 1e-6
    x, y = module.data(25)
    for i in range(3):                  # every hyper-parameter, by the shared helper
        def along(t, i=i):
            theta = np.array(out["theta0"], float)
            theta[i] = t
            return module.log_marginal_likelihood(theta, x, y)
        assert abs(out["grad0"][i] - central(along, out["theta0"][i])) < 1e-6


def test_scipy_density_and_cholesky_agree(gp):
    _, out, _ = gp
    assert out["cholesky_err"] < 1e-8


def test_fit_raises_the_likelihood_to_a_stationary_point(gp):
    _, out, _ = gp
    history = out["history"]
    assert history[-1] > history[0] + 5.0
    assert np.linalg.norm(out["final_grad"]) < 0.05
    ell, sf2, sn2 = np.exp(out["theta"])
    assert 0.5 < ell < 2.0 and 0.05 < np.sqrt(sn2) < 0.4
    assert out["rmse"] < 0.3


def test_example_is_fast_and_draws_its_figure(gp):
    _, out, started = gp
    assert out["seconds"] < 10.0
    if out["figure"] is not None:
        path = out["figure"]
        assert os.path.isfile(path) and os.path.getmtime(path) >= started - 1
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
