"""Linear regression by gradient descent, gradients from transpile.

    python examples/linear_regression.py [--quick]

Noisy data y = 2x + 3 + noise (fixed seed). The mean squared error is written in plain
NumPy; transpile generates its gradient with respect to w and b. The first step's gradients
are printed beside the analytic formulas

    dL/dw = -2/n * sum((y - yhat) * x)      dL/db = -2/n * sum(y - yhat)

and gradient descent fits w, b. Loss curve and fitted line: examples/figures/linear_regression.png.
"""
import os
import sys

import numpy as np

import transpile
from plotting import figure_path, save_figure

TRUE_W, TRUE_B = 2.0, 3.0


def mse(w, b, x, y):
    yhat = w * x + b
    return np.mean((y - yhat) ** 2)


mse_value_and_grad = transpile.value_and_grad(mse, wrt=("w", "b"))


def analytic_grad(w, b, x, y):
    n = x.shape[0]
    r = y - (w * x + b)
    return -2.0 / n * np.sum(r * x), -2.0 / n * np.sum(r)


def make_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, size=n)
    y = TRUE_W * x + TRUE_B + rng.normal(0.0, 1.0, size=n)
    return x, y


def main(quick=False):
    quick = quick or os.environ.get("TRANSPILE_EXAMPLES_QUICK") == "1"
    x, y = make_data()
    steps, lr = (150 if quick else 500), 0.05
    w, b = 0.0, 0.0

    print("Generated gradient of the MSE (array variant):\n")
    loss, (dw, db) = mse_value_and_grad(w, b, x, y)
    print(mse_value_and_grad.source)
    aw, ab = analytic_grad(w, b, x, y)
    print("first step (w = 0, b = 0):")
    print(f"  dL/dw  transpile {dw: .15f}   analytic {aw: .15f}   |diff| {abs(dw - aw):.1e}")
    print(f"  dL/db  transpile {db: .15f}   analytic {ab: .15f}   |diff| {abs(db - ab):.1e}")
    assert abs(dw - aw) < 1e-12 and abs(db - ab) < 1e-12
    first = {"first_grad": (float(dw), float(db)), "first_grad_analytic": (float(aw), float(ab))}

    losses = []
    max_diff = 0.0
    for step in range(steps):
        loss, (dw, db) = mse_value_and_grad(w, b, x, y)
        aw, ab = analytic_grad(w, b, x, y)
        max_diff = max(max_diff, float(abs(dw - aw)), float(abs(db - ab)))
        losses.append(float(loss))
        w, b = w - lr * dw, b - lr * db
    final_loss = float(mse(w, b, x, y))
    # closed-form least squares, for reference
    ls_w, ls_b = np.polyfit(x, y, 1)
    print(f"\n{steps} steps of gradient descent (lr {lr}): "
          f"loss {losses[0]:.4f} -> {final_loss:.4f}")
    print(f"  max |transpile - analytic| over all steps: {max_diff:.1e}")
    print(f"  fitted  w = {w:.4f}   b = {b:.4f}")
    print(f"  lstsq   w = {ls_w:.4f}   b = {ls_b:.4f}   (true w = {TRUE_W}, b = {TRUE_B})")

    path = figure_path("linear_regression")
    plot(path, x, y, w, b, losses)
    print(f"plot saved to {path}")
    return {**first, "max_grad_diff": max_diff, "w": float(w), "b": float(b),
            "lstsq_w": float(ls_w), "lstsq_b": float(ls_b),
            "loss_first": losses[0], "loss_final": final_loss, "figure": path}


def plot(path, x, y, w, b, losses):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.semilogy(losses)
    ax1.set_xlabel("step")
    ax1.set_ylabel("MSE")
    ax1.set_title("training loss")
    ax2.scatter(x, y, s=8, alpha=0.5, label="data")
    xs = np.linspace(x.min(), x.max(), 2)
    ax2.plot(xs, w * xs + b, "r", label=f"fit  y = {w:.3f}x + {b:.3f}")
    ax2.plot(xs, TRUE_W * xs + TRUE_B, "k--", lw=1, label="true  y = 2x + 3")
    ax2.legend(fontsize=8)
    ax2.set_title("fitted line")
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
