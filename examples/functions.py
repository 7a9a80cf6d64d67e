"""Functions to feed the command-line tool:  transpile-ad examples/functions.py

Nothing here runs when transpile-ad reads the file; each function gets a printed
derivative `grad_<name>` (value and gradient w.r.t. the first parameter)."""
import math

import numpy as np


def f(x):
    return math.sin(x ** 2 + 2 * x + 1)


def recurrence(w, x):
    y = x
    for i in range(200):
        y = math.sin(y) * w + 0.5 * y
    return y


def softplus_loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.01 * np.sum(w * w)
