"""A PyTorch-style model written as classes, trained by transpile.value_and_grad and Adam.

    python examples/class_mlp.py [--quick]

The model is plain Python: `Linear` layers store their weights in `self`, `MLP` holds a
list of layers and calls them in `__call__`, the loss calls the model. No parameter
registration, no `.backward()`: `transpile.value_and_grad(loss)(model, X, y)` returns the
loss and a gradient that is itself an `MLP` (built without calling `__init__`), so
`grads.layers[0].W` is the gradient of `model.layers[0].W`. Adam walks the two structures
together with `transpile.tree.map`.

The data: two interleaved spirals (made here, no download), a 2-32-32-2 tanh network.
Prints a finite-difference check of every weight array, the training progress and the
accuracy.
"""
import os
import sys

import numpy as np

import transpile
from transpile import tree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plotting import quick_from_argv  # noqa: E402


class Linear:
    def __init__(self, n_in, n_out, rng):
        self.W = rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
        self.b = np.zeros(n_out)

    def __call__(self, x):
        return x @ self.W + self.b


class MLP:
    def __init__(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        self.layers = [Linear(a, b, rng) for a, b in zip(sizes[:-1], sizes[1:])]

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = np.tanh(layer(x))
        return self.layers[-1](x)


def loss(model, X, y):
    """Mean cross-entropy of the model's logits against integer labels y."""
    logits = model(X)
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(log_probs[np.arange(len(y)), y])


loss_and_grad = transpile.value_and_grad(loss)


class Adam:
    """Adam over any structure of arrays (a model object here), by tree.map."""

    def __init__(self, params, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = tree.map(np.zeros_like, params)
        self.v = tree.map(np.zeros_like, params)

    def step(self, params, grads):
        self.t += 1
        self.m = tree.map(lambda m, g: self.b1 * m + (1 - self.b1) * g, self.m, grads)
        self.v = tree.map(lambda v, g: self.b2 * v + (1 - self.b2) * g * g, self.v, grads)
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        return tree.map(lambda p, m, v: p - self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps),
                        params, self.m, self.v)


def spirals(n=200, noise=0.1, seed=1):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(size=n)) * 3 * np.pi
    arm = rng.integers(0, 2, size=n)
    r = t / (3 * np.pi)
    angle = t + np.pi * arm
    X = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return X + noise * rng.normal(size=X.shape) * r[:, None], arm


def finite_difference_check(model, X, y, h=1e-6):
    """Largest |transpile - central difference| over every entry of every weight."""
    _, grads = loss_and_grad(model, X, y)
    leaves, structure = tree.flatten(model)
    worst = 0.0
    for k, (p, g) in enumerate(zip(leaves, tree.leaves(grads))):
        for i in np.ndindex(p.shape):
            plus, minus = [q.copy() for q in leaves], [q.copy() for q in leaves]
            plus[k][i] += h
            minus[k][i] -= h
            fd = (loss(tree.unflatten(structure, plus), X, y)
                  - loss(tree.unflatten(structure, minus), X, y)) / (2 * h)
            worst = max(worst, abs(float(g[i]) - fd))
    return worst


def accuracy(model, X, y):
    return float(np.mean(np.argmax(model(X), axis=1) == y))


def main(quick=False):
    X, y = spirals()
    model = MLP([2, 32, 32, 2]) if not quick else MLP([2, 16, 16, 2])
    fd_err = finite_difference_check(MLP([2, 3, 2]), X[:10], y[:10])
    print(f"finite-difference check, every weight of a 2-3-2 model: max |error| = "
          f"{fd_err:.1e}")
    value, grads = loss_and_grad(model, X, y)
    print(f"the gradient is a {type(grads).__name__}: grads.layers[0].W has shape "
          f"{grads.layers[0].W.shape}")
    opt = Adam(model, lr=2e-2)
    steps = 150 if quick else 1500
    first = value
    for step in range(steps):
        value, grads = loss_and_grad(model, X, y)
        model = opt.step(model, grads)
        if step % (steps // 5) == 0:
            print(f"step {step:5d}  loss {value:.4f}  accuracy {accuracy(model, X, y):.3f}")
    acc = accuracy(model, X, y)
    print(f"final loss {value:.4f} (from {first:.4f}), training accuracy {acc:.3f}")
    return {"fd_max_error": fd_err, "first_loss": first, "final_loss": value,
            "accuracy": acc, "gradient_type": type(grads).__name__}


if __name__ == "__main__":
    main(quick=quick_from_argv(__doc__.splitlines()[0]))
