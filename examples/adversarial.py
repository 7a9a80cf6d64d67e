"""Adversarial digits with the fast gradient sign method (FGSM).

    python examples/adversarial.py [--quick]

Trains the MLP of examples/digits_model.py (a few seconds), then asks transpile for the
gradient of the cross-entropy loss with respect to the input images (the same `loss`
function used for training, differentiated w.r.t. X instead of the weights) and perturbs

    x_adv = clip(x + eps * sign(d loss / d x), 0, 1)

on the 0..1-scaled pixels. Prints before/after predictions for a few digits and the test
accuracy for eps in 0..0.5, beside a random-sign perturbation of the same size (which
barely hurts). Plot: examples/figures/adversarial.png.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digits_model as dm  # noqa: E402
from plotting import save_figure  # noqa: E402

SHOW_EPS = 0.2


def fgsm(params, X, y, eps):
    """One signed-gradient step of size eps, clipped to the valid pixel range."""
    g = dm.input_grad_of_loss(*dm.param_args(params), X, y)
    return np.clip(X + eps * np.sign(g), 0.0, 1.0), g


def main(quick=False):
    quick = dm.quick_mode(quick)
    print("training the MLP ...")
    params, (X_train, X_test, y_train, y_test), hist = dm.trained_model(quick, verbose=False)
    print(f"  {hist['epoch'][-1]} epochs, test accuracy {hist['test_acc'][-1]:.4f}")

    dm.input_grad_of_loss(*dm.param_args(params), X_test[:2], y_test[:2])
    print("\nGenerated gradient of the loss w.r.t. the images X:\n")
    print(dm.input_grad_of_loss.source)

    eps_values = np.linspace(0.0, 0.5, 6 if quick else 11)
    rng = np.random.default_rng(0)
    random_sign = rng.choice([-1.0, 1.0], size=X_test.shape)
    acc_fgsm, acc_random = [], []
    g = dm.input_grad_of_loss(*dm.param_args(params), X_test, y_test)
    for eps in eps_values:
        X_adv = np.clip(X_test + eps * np.sign(g), 0.0, 1.0)
        X_rnd = np.clip(X_test + eps * random_sign, 0.0, 1.0)
        acc_fgsm.append(dm.accuracy(params, X_adv, y_test))
        acc_random.append(dm.accuracy(params, X_rnd, y_test))
    print("  eps    FGSM accuracy   random-sign accuracy")
    for eps, a, r in zip(eps_values, acc_fgsm, acc_random):
        print(f"  {eps:.2f}   {a:.4f}          {r:.4f}")

    # a few correctly classified digits, before and after, at SHOW_EPS
    correct = dm.predict(params, X_test) == y_test
    idx = np.array([int(np.flatnonzero((y_test == c) & correct)[0]) for c in range(0, 10, 2)])
    X, y = X_test[idx], y_test[idx]
    X_adv, _ = fgsm(params, X, y, SHOW_EPS)
    before, after = dm.predict(params, X), dm.predict(params, X_adv)
    p_before = softmax(dm.logits(*dm.param_args(params), X))
    p_after = softmax(dm.logits(*dm.param_args(params), X_adv))
    print(f"\nbefore/after FGSM with eps = {SHOW_EPS}:")
    for k in range(len(y)):
        print(f"  true {y[k]}:  predicted {before[k]} (p {p_before[k, before[k]]:.3f})  ->  "
              f"{after[k]} (p {p_after[k, after[k]]:.3f})")

    path = dm.figure_path("adversarial")
    plot(path, eps_values, acc_fgsm, acc_random, X, X_adv, y, before, after)
    print(f"plot saved to {path}")
    return {"eps": eps_values, "accuracy": np.array(acc_fgsm),
            "random_accuracy": np.array(acc_random), "labels": y, "before": before,
            "after": after, "test_accuracy": hist["test_acc"][-1], "figure": path}


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def plot(path, eps_values, acc_fgsm, acc_random, X, X_adv, y, before, after):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(y)
    fig = plt.figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(3, n + 3)
    ax = fig.add_subplot(grid[:, :3])
    ax.plot(eps_values, acc_fgsm, "o-", label="FGSM")
    ax.plot(eps_values, acc_random, "s--", label="random sign")
    ax.set_xlabel("eps (pixels in 0..1)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("accuracy against eps")
    rows = [(X, "original", before), (X_adv - X, "perturbation", None),
            (X_adv, f"eps = {SHOW_EPS}", after)]
    for r, (images, label, pred) in enumerate(rows):
        for k in range(n):
            a = fig.add_subplot(grid[r, 3 + k])
            if pred is None:
                a.imshow(images[k].reshape(dm.IMAGE_SHAPE), cmap="bwr",
                         vmin=-SHOW_EPS, vmax=SHOW_EPS)
            else:
                a.imshow(images[k].reshape(dm.IMAGE_SHAPE), cmap="gray_r", vmin=0, vmax=1)
                a.set_title(f"pred {pred[k]}", fontsize=8,
                            color="black" if pred[k] == y[k] else "red")
            a.set_xticks([])
            a.set_yticks([])
            if k == 0:
                a.set_ylabel(label, fontsize=8)
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
