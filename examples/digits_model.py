"""The MLP digit classifier shared by mlp_digits.py, saliency.py and adversarial.py.

Everything the model does is plain NumPy; transpile generates the gradients:

* ``loss(W1, b1, W2, b2, X, labels)``: mean cross-entropy of a one-hidden-layer tanh MLP,
  differentiated with respect to the four parameter arrays (training, by hand-written Adam);
* ``class_scores(images, ...)``: the logit of a chosen class per image, differentiated
  with respect to the input images (saliency maps, returned in the images' 8x8 shape);
* the same ``loss`` differentiated with respect to ``X`` (adversarial examples, FGSM).

Data: scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to 0..1,
a fixed stratified train/test split. Nothing is cached on disk: each script trains its own
model (a few seconds).
"""
import os
import time

import numpy as np

import transpile

IMAGE_SHAPE = (8, 8)
N_CLASSES = 10


def quick_mode(quick=False):
    return bool(quick) or os.environ.get("TRANSPILE_EXAMPLES_QUICK") == "1"


def figure_path(name):
    from plotting import figure_path as path
    return path(name)


# ----------------------------------------------------------------------------- data

def load_data(test_size=0.25, seed=0):
    """(X_train, X_test, y_train, y_test); X rows are flattened 8x8 images in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


# ----------------------------------------------------------------------------- model

def init_params(n_in=64, n_hidden=64, n_out=N_CLASSES, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in, n_hidden)),
        "b1": np.zeros(n_hidden),
        "W2": rng.normal(0.0, 1.0 / np.sqrt(n_hidden), size=(n_hidden, n_out)),
        "b2": np.zeros(n_out),
    }


PARAM_NAMES = ("W1", "b1", "W2", "b2")


def logits(W1, b1, W2, b2, X):
    h = np.tanh(X @ W1 + b1)
    return h @ W2 + b2


def log_softmax(z):
    z = z - np.max(z, axis=1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def loss(W1, b1, W2, b2, X, labels):
    """Mean cross-entropy; labels are integer class indices."""
    logp = log_softmax(logits(W1, b1, W2, b2, X))
    n = X.shape[0]
    return -np.mean(logp[np.arange(n), labels])


def class_scores(images, W1, b1, W2, b2, classes):
    """Sum over images of the logit of classes[i] for image i; images has shape (n, 8, 8)
    (or (n, 64)). Images do not interact, so the gradient's slice i is
    d score_i / d image_i, in the images' own shape: one call gives every saliency map."""
    X = images.reshape(images.shape[0], -1)
    z = logits(W1, b1, W2, b2, X)
    return np.sum(z[np.arange(X.shape[0]), classes])


loss_and_param_grads = transpile.value_and_grad(loss, wrt=PARAM_NAMES)
input_grad_of_loss = transpile.grad(loss, wrt="X")
input_grad_of_scores = transpile.grad(class_scores, wrt="images")


def predict(params, X):
    return np.argmax(logits(params["W1"], params["b1"], params["W2"], params["b2"], X), axis=1)


def accuracy(params, X, y):
    return float(np.mean(predict(params, X) == y))


def param_args(params):
    return tuple(params[k] for k in PARAM_NAMES)


# ----------------------------------------------------------------------------- training

def train(X_train, y_train, X_test=None, y_test=None, epochs=40, batch_size=64, lr=3e-3,
          hidden=64, seed=0, verbose=True):
    """Minibatch Adam on the generated gradients. Returns (params, history)."""
    params = init_params(X_train.shape[1], hidden, N_CLASSES, seed=seed)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    rng = np.random.default_rng(seed + 1)
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_acc": []}
    n, t, start = X_train.shape[0], 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            value, grads = loss_and_param_grads(*param_args(params), X_train[idx], y_train[idx])
            total += float(value) * len(idx)
            t += 1
            for k, g in zip(PARAM_NAMES, grads):
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                m_hat = m[k] / (1 - beta1 ** t)
                v_hat = v[k] / (1 - beta2 ** t)
                params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history["epoch"].append(epoch)
        history["train_loss"].append(total / n)
        history["train_acc"].append(accuracy(params, X_train, y_train))
        if X_test is not None:
            history["test_acc"].append(accuracy(params, X_test, y_test))
        if verbose and (epoch == 1 or epoch % 5 == 0 or epoch == epochs):
            test = f"   test acc {history['test_acc'][-1]:.4f}" if X_test is not None else ""
            print(f"  epoch {epoch:3d}   loss {total / n:.4f}   "
                  f"train acc {history['train_acc'][-1]:.4f}{test}")
    history["seconds"] = time.perf_counter() - start
    return params, history


def trained_model(quick=False, verbose=True):
    """Load the data and train (fewer epochs in quick mode). Returns (params, data, history)."""
    data = load_data()
    X_train, X_test, y_train, y_test = data
    epochs = 8 if quick_mode(quick) else 40
    params, history = train(X_train, y_train, X_test, y_test, epochs=epochs, verbose=verbose)
    return params, data, history
