"""Saliency maps: the gradient of a class score with respect to the input image.

    python examples/saliency.py [--quick]

Trains the MLP of examples/digits_model.py (a few seconds), then asks transpile for
d score_c(x) / d x, where score_c is the logit of the true class c. One gradient call over
a batch gives every image's map (images do not interact). Red pixels would raise the
score if brightened, blue ones lower it. Grid of inputs and maps:
examples/figures/saliency.png.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import digits_model as dm  # noqa: E402
from plotting import save_figure  # noqa: E402


def saliency_maps(params, images, classes):
    """Gradient of each image's class score w.r.t. that image; images (n, 8, 8) -> (n, 8, 8)."""
    return dm.input_grad_of_scores(images, *dm.param_args(params), classes)


def main(quick=False):
    quick = dm.quick_mode(quick)
    print("training the MLP ...")
    params, (X_train, X_test, y_train, y_test), hist = dm.trained_model(quick, verbose=False)
    print(f"  {hist['epoch'][-1]} epochs, test accuracy {hist['test_acc'][-1]:.4f}")

    # the first test image of each class
    idx = np.array([int(np.flatnonzero(y_test == c)[0]) for c in range(dm.N_CLASSES)])
    X, y = X_test[idx], y_test[idx]
    images = X.reshape((-1,) + dm.IMAGE_SHAPE)
    maps = saliency_maps(params, images, y)
    print("\nGenerated gradient of the class score w.r.t. the images:\n")
    print(dm.input_grad_of_scores.source)

    # checks: the batched map equals the one-image gradient; one pixel against a central
    # difference
    single = saliency_maps(params, images[3:4], y[3:4])[0]
    batch_vs_single = float(np.max(np.abs(single - maps[3])))
    h, (r, c) = 1e-6, (4, 3)
    xp, xm = images[3:4].copy(), images[3:4].copy()
    xp[0, r, c] += h
    xm[0, r, c] -= h
    args = dm.param_args(params)
    fd = (dm.class_scores(xp, *args, y[3:4]) - dm.class_scores(xm, *args, y[3:4])) / (2 * h)
    fd_err = abs(float(fd) - float(maps[3, r, c]))
    print(f"images {images.shape} -> saliency maps {maps.shape}")
    print(f"batched map vs single-image gradient: max |diff| = {batch_vs_single:.1e}")
    print(f"pixel ({r},{c}) of digit {y[3]}: transpile {maps[3, r, c]:.8f}   "
          f"central difference {float(fd):.8f}")

    logits = dm.logits(*args, X)
    pred = np.argmax(logits, axis=1)
    print("\ndigit  predicted  score   max|grad|  most influential pixel (row, col, sign)")
    for k in range(len(idx)):
        m = maps[k]
        rr, cc = np.unravel_index(np.argmax(np.abs(m)), m.shape)
        sign = "+" if m[rr, cc] > 0 else "-"
        print(f"  {y[k]}        {pred[k]}     {logits[k, y[k]]:6.2f}   {np.max(np.abs(m)):.3f}"
              f"      ({rr}, {cc}, {sign})")

    path = dm.figure_path("saliency")
    plot(path, X, y, pred, maps)
    print(f"plot saved to {path}")
    return {"saliency": maps, "images": images, "labels": y,
            "predicted": pred, "batch_vs_single": batch_vs_single, "fd_error": fd_err,
            "test_accuracy": hist["test_acc"][-1], "figure": path}


def plot(path, X, y, pred, maps):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(y)
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.2))
    for k in range(n):
        axes[0, k].imshow(X[k].reshape(dm.IMAGE_SHAPE), cmap="gray_r", vmin=0, vmax=1)
        axes[0, k].set_title(f"{y[k]} (pred {pred[k]})", fontsize=8)
        lim = np.max(np.abs(maps[k])) or 1.0
        axes[1, k].imshow(maps[k], cmap="bwr", vmin=-lim, vmax=lim)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("d score / d x", fontsize=9)
    fig.suptitle("saliency: gradient of the true class's logit w.r.t. the pixels", fontsize=10)
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
