"""Run the examples vanishing_gradients, hypergradient, scipy_rosenbrock and
symbolic_vs_automatic in quick mode and check their key numbers."""
import time
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import transpile  # noqa: E402
from example_loader import load  # noqa: E402


def _png_written(path, started):
    assert path.endswith(".png") and os.path.isfile(path)
    assert os.path.getmtime(path) >= started - 1
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vanishing():
    started = time.time()
    return load("vanishing_gradients").main(quick=True), started


@pytest.fixture(scope="module")
def hyper():
    started = time.time()
    return load("hypergradient").main(quick=True), started


@pytest.fixture(scope="module")
def rosen():
    started = time.time()
    return load("scipy_rosenbrock").main(quick=True), started


@pytest.fixture(scope="module")
def symbolic():
    started = time.time()
    return load("symbolic_vs_automatic").main(quick=True), started


# ----------------------------------------------------------------- vanishing_gradients

def test_sigmoid_gradients_vanish(vanishing):
    r, _ = vanishing
    assert r["sigmoid_first"] < 1e-3 * r["sigmoid_last"]
    assert r["sigmoid_first"] < 1e-3 * r["relu_first"]
    assert r["sigmoid_decay_per_layer"] > 2.0
    # ReLU with He init stays within an order of magnitude across the depth
    assert 0.1 < r["relu_first"] / r["relu_last"] < 10
    assert r["fd_rel_err"] < 1e-4


def test_clipping_hook_bounds_the_backward_signal(vanishing):
    r, _ = vanishing
    clip = r["clip"]
    assert r["max_signal_norm"] > 10 * clip                 # it does explode without the hook
    assert r["max_signal_norm_clipped"] <= clip * (1 + 1e-9)
    assert np.all(r["tanh_weight_norms_clipped"] <= r["tanh_weight_bound_clipped"] * (1 + 1e-9))
    assert r["max_weight_norm_clipped"] < r["max_weight_norm"] / 10
    # layers whose incoming signal is below the clip value are untouched by the hook
    raw, clipped = r["tanh_signal_norms"], r["tanh_signal_norms_clipped"]
    assert raw[-1] < clip and clipped[-1] == pytest.approx(raw[-1], rel=1e-12)


def test_vanishing_figure(vanishing):
    r, started = vanishing
    _png_written(r["figure"], started)


# ----------------------------------------------------------------- hypergradient

def test_hypergradient_matches_finite_differences(hyper):
    r, _ = hyper
    for lr, value, d_lr, fd, rel in r["checks"]:
        assert d_lr == pytest.approx(fd, rel=1e-5)
    assert r["schedule_sum_err"] < 1e-10


def test_hyperstep_tuning_lowers_validation_loss(hyper):
    r, _ = hyper
    assert r["val_final"] < r["val_initial"] - 0.03
    vals = [v for _, v in r["path"]]
    assert min(vals) == pytest.approx(r["val_final"], abs=1e-3)
    # ends near the best learning rate of the grid sweep
    assert r["val_final"] < r["grid_best_val"] + 5e-3


def test_hypergradient_figure(hyper):
    r, started = hyper
    _png_written(r["figure"], started)


# ----------------------------------------------------------------- scipy_rosenbrock

def test_bfgs_with_transpile_gradient(rosen):
    r, _ = rosen
    assert r["max_grad_err"] < 1e-10
    for n in r["sizes"]:
        a = r["runs"][f"{n}/transpile"]
        b = r["runs"][f"{n}/finite diff"]
        assert a["success"] and a["error"] < 1e-5
        # one gradient per function evaluation, each the one transpile function call
        assert a["njev"] == a["nfev"] == a["grad_calls"] == a["f_calls"]
        assert a["njev"] <= 2 * a["nit"] + 2
        # scipy's finite differences spend n extra function evaluations per gradient
        assert a["nfev"] < b["nfev"]
        assert b["nfev"] >= n * b["njev"]
        assert a["error"] < b["error"]


def test_rosenbrock_figure(rosen):
    r, started = rosen
    _png_written(r["figure"], started)


# ----------------------------------------------------------------- symbolic_vs_automatic

def test_sympy_and_transpile_agree(symbolic):
    r, _ = symbolic
    assert set(r["functions"]) == {"polynomial", "nested", "recurrence"}
    for row in r["functions"].values():
        assert row["max_abs_diff"] < 1e-10


def test_expression_swell(symbolic):
    r, _ = symbolic
    ops = [d for _, _, d in r["swell"]]
    assert all(b > 2 * a for a, b in zip(ops[1:], ops[2:]))    # more than doubles per step
    assert r["functions"]["recurrence"]["sympy_count_ops"] > 1000
    lines = r["functions"]["recurrence"]["transpile_source_lines"]
    assert lines < 40
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "README.md")
    with open(readme, encoding="utf-8") as fh:          # the README quotes the count
        assert f"the generated gradient stays {lines} lines" in fh.read()


def test_symbolic_figure(symbolic):
    r, started = symbolic
    _png_written(r["figure"], started)


# ----------------------------------------------------------------- the compiler bug worked around

def _helper_sin(x):
    return np.sin(x)


def _loop_calling_array_helper(x):
    h = x
    for i in range(3):
        h = _helper_sin(h)
    return np.sum(h)


def test_array_helper_called_in_a_loop():
    # regression: the saved value and the call's tape used to be restored in the wrong order
    x = np.array([0.3])
    g = transpile.grad(_loop_calling_array_helper)(x)
    eps = 1e-6
    fd = (_loop_calling_array_helper(x + eps) - _loop_calling_array_helper(x - eps)) / (2 * eps)
    assert g[0] == pytest.approx(fd, rel=1e-6)
