"""Vanishing and exploding gradients, measured layer by layer with transpile.

    python examples/vanishing_gradients.py [--quick]

Part 1: a deep sigmoid net and a deep ReLU net (np.maximum(x, 0)) on random data. The
gradient of the loss with respect to the list of weight matrices comes back as a list, one
array per layer, so the per-layer gradient norms are one line. Sigmoid's derivative is at
most 1/4: the gradient shrinks by a roughly constant factor per layer on its way back to
the first layer. ReLU with He initialisation keeps it about level.

Part 2: a deep tanh net with a large initialisation (std 4/sqrt(width)) has the opposite
problem: the backward signal grows by a constant factor per layer. Clipping it *inside*
the function with

    h = transpile.grad_hook(h, lambda g: clip_norm(g, clip))

(identity on the forward pass; the gradient flowing back through h becomes clip_norm(g))
keeps the backward signal at every layer within the clip value. The backward signal
dL/dh at every layer is read off as the gradient with respect to zero "probe" arrays
added to each layer's output.

Writes examples/figures/vanishing_gradients.png. `main(quick=False)` returns the numbers.
"""
import os
import sys
import time

import numpy as np
from plotting import figure_path, quick_from_argv, save_figure

import transpile

FIGURE = figure_path("vanishing_gradients")


# ----------------------------------------------------------------------------- models

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_net(weights, X, Y):
    """Deep sigmoid MLP, mean squared error against targets Y."""
    h = X
    for W in weights[:-1]:
        h = sigmoid(h @ W)          # a helper called in the loop: differentiated too
    out = h @ weights[-1]
    return 0.5 * np.sum((out - Y) ** 2) / X.shape[0]


def relu_net(weights, X, Y):
    """The same MLP with ReLU activations."""
    h = X
    for W in weights[:-1]:
        h = np.maximum(h @ W, 0.0)
    out = h @ weights[-1]
    return 0.5 * np.sum((out - Y) ** 2) / X.shape[0]


def clip_norm(g, clip):
    """Rescale g so that its Frobenius norm is at most `clip`."""
    norm = np.sqrt(np.sum(g * g))
    return g * min(1.0, clip / (norm + 1e-30))


def tanh_net(weights, probes, X, Y, clip):
    """Deep tanh net; the backward signal is clipped to norm `clip` after every layer.

    probes are zero arrays: d loss / d probes[l] is the backward signal d loss / d h_l
    (after clipping, since the probe sits before the hook).
    """
    h = X
    for W, p in zip(weights, probes):
        h = np.tanh(h @ W) + p
        if clip > 0:
            h = transpile.grad_hook(h, lambda g: clip_norm(g, clip))
    return 0.5 * np.sum((h - Y) ** 2) / X.shape[0]


# ----------------------------------------------------------------------------- helpers

def norms(arrays):
    return np.array([float(np.linalg.norm(a)) for a in arrays])


def init(rng, depth, width, std):
    return [std * rng.standard_normal((width, width)) for _ in range(depth)]


def check_against_fd(f, weights, args, grads, rng, layer, eps=1e-6):
    """Relative error of the gradient of one layer against a central difference of f
    along a random unit direction in that layer's weights."""
    V = rng.standard_normal(weights[layer].shape)
    V /= np.linalg.norm(V)

    def shifted(t):
        ws = list(weights)
        ws[layer] = weights[layer] + t * V
        return ws

    fd = (f(shifted(eps), *args) - f(shifted(-eps), *args)) / (2 * eps)
    ad = float(np.sum(grads[layer] * V))
    return abs(fd - ad) / max(abs(fd), abs(ad), 1e-300)


# ----------------------------------------------------------------------------- main

def main(quick=False):
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    depth = 12 if quick else 20           # weight matrices (depth - 1 hidden layers)
    width = 32 if quick else 64
    batch = 64 if quick else 256
    X = rng.standard_normal((batch, width))
    Y = rng.standard_normal((batch, width))

    # Part 1: sigmoid (Glorot std 1/sqrt(width)) vs ReLU (He std sqrt(2/width))
    W_sig = init(rng, depth, width, 1.0 / np.sqrt(width))
    W_relu = init(rng, depth, width, np.sqrt(2.0 / width))
    g_sig = transpile.grad(sigmoid_net)(W_sig, X, Y)
    g_relu = transpile.grad(relu_net)(W_relu, X, Y)
    n_sig, n_relu = norms(g_sig), norms(g_relu)
    # (the first sigmoid layer's gradient, ~1e-12, is below what a difference of the loss
    # can resolve in float64; check the last hidden layer there)
    fd_err_sig = check_against_fd(sigmoid_net, W_sig, (X, Y), g_sig, rng, depth - 2)
    fd_err_relu = check_against_fd(relu_net, W_relu, (X, Y), g_relu, rng, 0)
    decay = (n_sig[-2] / n_sig[0]) ** (1.0 / (depth - 2))

    print(f"Part 1: {depth}-layer nets, width {width}, batch {batch}")
    print(f"  {'layer':>5} {'sigmoid |dW|':>14} {'ReLU |dW|':>12}")
    for i, (a, b) in enumerate(zip(n_sig, n_relu)):
        print(f"  {i + 1:5d} {a:14.3e} {b:12.3e}")
    print(f"  sigmoid: first/last layer gradient norm {n_sig[0] / n_sig[-1]:.2e}, "
          f"about x{decay:.2f} per layer going back")
    print(f"  ReLU:    first/last layer gradient norm {n_relu[0] / n_relu[-1]:.2e}")
    print(f"  finite-difference checks (rel. err.): sigmoid layer {depth - 1} "
          f"{fd_err_sig:.1e}, ReLU layer 1 {fd_err_relu:.1e}")

    # Part 2: exploding gradients in a deep tanh net, clipped inside the function
    tdepth = 12 if quick else 20
    clip = 1.0
    W_tanh = init(rng, tdepth, width, 4.0 / np.sqrt(width))
    probes = [np.zeros((batch, width)) for _ in range(tdepth)]
    Yt = np.tanh(rng.standard_normal((batch, width)))
    g = transpile.grad(tanh_net, wrt=(0, 1))
    gW_raw, gh_raw = g(W_tanh, probes, X, Yt, 0.0)
    gW_clip, gh_clip = g(W_tanh, probes, X, Yt, clip)
    nW_raw, nh_raw = norms(gW_raw), norms(gh_raw)
    nW_clip, nh_clip = norms(gW_clip), norms(gh_clip)
    fd_err_tanh = check_against_fd(tanh_net, W_tanh,
                                   (probes, X, Yt, 0.0), gW_raw, rng, 0)
    # |dW_l| = |h_{l-1}^T (tanh' * g_l)| <= |h_{l-1}|_2 * |g_l|: bounded once g_l is clipped
    hs, h = [], X
    for W in W_tanh:
        hs.append(h)
        h = np.tanh(h @ W)
    w_bound = np.array([np.linalg.norm(a, 2) for a in hs]) * clip

    print(f"\nPart 2: {tdepth}-layer tanh net, init std 4/sqrt({width}), "
          f"clip value {clip}")
    print(f"  {'layer':>5} {'|dL/dh|':>10} {'clipped':>9} {'|dW|':>10} {'clipped':>9}")
    for i in range(tdepth):
        print(f"  {i + 1:5d} {nh_raw[i]:10.3e} {nh_clip[i]:9.3f} {nW_raw[i]:10.3e} "
              f"{nW_clip[i]:9.3f}")
    print(f"  without the hook: backward signal grows x{nh_raw[0] / nh_raw[-1]:.3g} from "
          f"the last layer to the first; max |dW| {nW_raw.max():.3g}")
    print(f"  with the hook:    max |dL/dh| {nh_clip.max():.6f} (<= {clip}); "
          f"max |dW| {nW_clip.max():.3g}")
    print(f"  finite-difference check of the unclipped layer-1 gradient: {fd_err_tanh:.1e}")

    _plot(n_sig, n_relu, nh_raw, nh_clip, nW_raw, nW_clip, clip)
    elapsed = time.perf_counter() - t0
    print(f"\nwrote {os.path.relpath(FIGURE)}  ({elapsed:.1f} s)")
    return {
        "depth": depth,
        "sigmoid_norms": n_sig, "relu_norms": n_relu,
        "sigmoid_first": float(n_sig[0]), "sigmoid_last": float(n_sig[-1]),
        "relu_first": float(n_relu[0]), "relu_last": float(n_relu[-1]),
        "sigmoid_decay_per_layer": float(decay),
        "fd_rel_err": max(fd_err_sig, fd_err_relu, fd_err_tanh),
        "clip": clip,
        "tanh_signal_norms": nh_raw, "tanh_signal_norms_clipped": nh_clip,
        "tanh_weight_norms": nW_raw, "tanh_weight_norms_clipped": nW_clip,
        "tanh_weight_bound_clipped": w_bound,
        "max_signal_norm": float(nh_raw.max()),
        "max_signal_norm_clipped": float(nh_clip.max()),
        "max_weight_norm": float(nW_raw.max()),
        "max_weight_norm_clipped": float(nW_clip.max()),
        "figure": FIGURE, "seconds": elapsed,
    }


def _plot(n_sig, n_relu, nh_raw, nh_clip, nW_raw, nW_clip, clip):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    layers = np.arange(1, len(n_sig) + 1)
    ax1.semilogy(layers, n_sig, "o-", label="sigmoid (Glorot init)")
    ax1.semilogy(layers, n_relu, "s-", label="ReLU (He init)")
    ax1.set_xlabel("layer (1 = input side)")
    ax1.set_ylabel("‖dL/dW‖ (Frobenius)")
    ax1.set_title("Vanishing gradients")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)

    layers = np.arange(1, len(nh_raw) + 1)
    ax2.semilogy(layers, nh_raw, "o-", color="C3", label="‖dL/dh‖, no hook")
    ax2.semilogy(layers, nW_raw, "o--", color="C3", alpha=0.5, label="‖dL/dW‖, no hook")
    ax2.semilogy(layers, nh_clip, "s-", color="C2", label="‖dL/dh‖, grad_hook clip")
    ax2.semilogy(layers, nW_clip, "s--", color="C2", alpha=0.5,
                 label="‖dL/dW‖, grad_hook clip")
    ax2.axhline(clip, color="gray", lw=0.8, ls=":")
    ax2.set_xlabel("layer (1 = input side)")
    ax2.set_title("Exploding gradients (tanh, std 4/√width)")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    save_figure(fig, FIGURE, dpi=110)


if __name__ == "__main__":
    main(quick=quick_from_argv(__doc__.splitlines()[0]))
    sys.exit(0)
