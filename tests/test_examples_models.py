"""The example applications in examples/ run (quick mode) and find what they claim.

Each example exposes main(quick=True) returning its key numbers; these tests call it,
check the numbers and that the figure was written. Plus a finite-difference check of
the MLP loss gradient that the digit examples are built on.
"""
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)

import adversarial  # noqa: E402
import digits_model  # noqa: E402
import linear_regression  # noqa: E402
import mlp_digits  # noqa: E402
import quickstart  # noqa: E402
import saliency  # noqa: E402


def run(module):
    """main(quick=True), checking the figure it reports was (re)written by this run."""
    start = time.time()
    result = module.main(quick=True)
    path = result["figure"]
    assert os.path.basename(path) == module.__name__ + ".png"
    assert os.path.dirname(path) == os.environ["TRANSPILE_EXAMPLES_FIGURES"]
    assert os.path.getsize(path) > 1000
    assert os.path.getmtime(path) >= start - 1
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    return result


def test_quickstart():
    r = run(quickstart)
    assert abs(r["grad_at_2"] - 6 * math.cos(9)) < 1e-12
    assert abs(r["grad_at_2"] - r["sympy_at_2"]) < 1e-12
    assert abs(r["recurrence_dw"] - r["recurrence_fd_dw"]) < 1e-6
    assert r["plot_max_diff"] < 1e-12


def test_linear_regression():
    r = run(linear_regression)
    (dw, db), (aw, ab) = r["first_grad"], r["first_grad_analytic"]
    assert abs(dw - aw) < 1e-10 and abs(db - ab) < 1e-10
    assert r["max_grad_diff"] < 1e-10
    assert abs(r["w"] - 2.0) < 0.2 and abs(r["b"] - 3.0) < 0.3
    assert abs(r["w"] - r["lstsq_w"]) < 1e-3 and abs(r["b"] - r["lstsq_b"]) < 1e-3
    assert r["loss_final"] < r["loss_first"] / 10


def test_mlp_digits():
    r = run(mlp_digits)
    assert r["test_accuracy"] > 0.85      # quick mode (8 epochs) reaches ~0.95
    assert r["final_loss"] < r["first_loss"]
    assert r["fd_max_error"] < 1e-6


def test_saliency():
    r = run(saliency)
    maps, images = r["saliency"], r["images"]
    assert maps.shape == images.shape == (10, 8, 8)
    assert np.all(np.isfinite(maps))
    assert np.all(np.abs(maps).reshape(len(maps), -1).max(axis=1) > 0)
    assert r["batch_vs_single"] < 1e-12
    assert r["fd_error"] < 1e-6


def test_adversarial():
    r = run(adversarial)
    eps, acc = r["eps"], r["accuracy"]
    assert eps[0] == 0.0 and eps[-1] == pytest.approx(0.5)
    assert acc[0] == pytest.approx(r["test_accuracy"])
    assert acc[-1] < acc[0] - 0.3
    assert acc[-1] < r["random_accuracy"][-1]          # the gradient sign matters
    assert acc[1] < acc[0]


@pytest.mark.parametrize("name,how", [("quickstart", "--quick"),
                                      ("linear_regression", "--quick"),
                                      ("adversarial", "env")])
def test_script_runs_from_repo_root(name, how):
    """`python examples/NAME.py --quick` (or TRANSPILE_EXAMPLES_QUICK=1) as documented."""
    root = os.path.dirname(EXAMPLES)
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [sys.executable, os.path.join("examples", name + ".py")]
    if how == "env":
        env["TRANSPILE_EXAMPLES_QUICK"] = "1"
    else:
        cmd.append("--quick")
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "plot saved to" in out.stdout


@pytest.fixture(scope="module")
def digits_batch():
    X_train, _, y_train, _ = digits_model.load_data()
    return X_train[:50], y_train[:50]


@pytest.mark.parametrize("seed", [0, 1])
def test_mlp_loss_gradient_matches_central_differences(digits_batch, seed):
    X, y = digits_batch
    rng = np.random.default_rng(seed)
    params = digits_model.init_params(seed=seed)
    params = {k: v + 0.1 * rng.normal(size=v.shape) for k, v in params.items()}  # b != 0
    args = digits_model.param_args(params)
    value, grads = digits_model.loss_and_param_grads(*args, X, y)
    assert value == pytest.approx(digits_model.loss(*args, X, y), rel=1e-14)
    h = 1e-6
    for k, (p, g) in enumerate(zip(args, grads)):
        assert g.shape == p.shape
        for _ in range(4):
            i = tuple(int(rng.integers(0, s)) for s in p.shape)
            plus, minus = list(args), list(args)
            plus[k], minus[k] = p.copy(), p.copy()
            plus[k][i] += h
            minus[k][i] -= h
            fd = (digits_model.loss(*plus, X, y) - digits_model.loss(*minus, X, y)) / (2 * h)
            assert g[i] == pytest.approx(fd, abs=1e-7, rel=1e-5)


def test_input_gradients_match_central_differences(digits_batch):
    X, y = digits_batch
    X, y = X[:5], y[:5]
    args = digits_model.param_args(digits_model.init_params(seed=3))
    gx = digits_model.input_grad_of_loss(*args, X, y)
    gs = digits_model.input_grad_of_scores(X, *args, y)   # (n, 64) images work too
    assert gx.shape == gs.shape == X.shape
    h = 1e-6
    for i in [(0, 10), (2, 27), (4, 63)]:
        Xp, Xm = X.copy(), X.copy()
        Xp[i] += h
        Xm[i] -= h
        fd_loss = (digits_model.loss(*args, Xp, y) - digits_model.loss(*args, Xm, y)) / (2 * h)
        fd_score = (digits_model.class_scores(Xp, *args, y)
                    - digits_model.class_scores(Xm, *args, y)) / (2 * h)
        assert gx[i] == pytest.approx(fd_loss, abs=1e-8, rel=1e-5)
        assert gs[i] == pytest.approx(fd_score, abs=1e-8, rel=1e-5)
