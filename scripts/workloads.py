"""Benchmark workloads: plain Python functions with their arguments and wrt.

Each program is written once against a module parameter (math / numpy, or a peer's
drop-in replacement: autograd.numpy, jax.numpy, or `torch_modules()` below, PyTorch
functions under the NumPy names), so every tool differentiates the same code.
"""


def scalar_programs(math):
    """The scalar workloads, written against the math-like module `math` (math itself, or
    a peer's drop-in such as autograd.numpy)."""

    def recurrence(x, w):
        """200-step scalar recurrence with math functions."""
        y = x
        for i in range(200):
            y = math.sin(y) * w + 0.5 * y
        return y

    def euler(k, x0, v0):
        """500-step explicit Euler integration of a damped spring; final position."""
        x = x0
        v = v0
        dt = 0.01
        for i in range(500):
            a = -k * x - 0.1 * v
            x = x + dt * v
            v = v + dt * a
        return x

    return recurrence, euler


def recurrence_steps_program(math):
    """The recurrence with its number of steps as a parameter (memory against length)."""

    def recurrence_steps(x, w, n):
        y = x
        for i in range(n):
            y = math.sin(y) * w + 0.5 * y
        return y

    return recurrence_steps


def scalar_workloads(math_module):
    recurrence, euler = scalar_programs(math_module)
    return [
        ("recurrence-200", recurrence, (0.3, 0.7), (0, 1)),
        ("euler-500", euler, (2.0, 1.0, 0.0), (0, 1, 2)),
    ]


def numpy_programs(np):
    """The array workloads, written against the NumPy-like module `np` (numpy itself, or a
    peer's drop-in such as autograd.numpy)."""

    def rosenbrock(x):
        """Vectorised Rosenbrock."""
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def mlp(W1, b1, W2, b2, X, Y):
        """Two-layer tanh MLP, softmax cross-entropy (Y one-hot)."""
        h = np.tanh(np.dot(X, W1) + b1)
        logits = np.dot(h, W2) + b2
        logits = logits - np.max(logits, axis=1, keepdims=True)
        logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        return -np.sum(logp * Y) / X.shape[0]

    def logistic(w, b, X, y):
        """Logistic regression, mean log-loss (y in {0, 1}); log sigmoid written stably:
        log s(z) = min(z, 0) - log1p(exp(-|z|)), and log(1 - s(z)) = log s(z) - z."""
        z = np.dot(X, w) + b
        log_p = np.minimum(z, 0.0) - np.log1p(np.exp(-np.abs(z)))
        return -np.mean(y * log_p + (1.0 - y) * (log_p - z))

    return rosenbrock, mlp, logistic


def array_workloads(np):
    import numpy
    rng = numpy.random.default_rng(0)
    rosenbrock, mlp, logistic = numpy_programs(np)
    x = rng.normal(size=10_000)
    n_in, n_hidden, n_out, batch = 64, 128, 10, 64
    W1 = rng.normal(size=(n_in, n_hidden)) * 0.1
    b1 = numpy.zeros(n_hidden)
    W2 = rng.normal(size=(n_hidden, n_out)) * 0.1
    b2 = numpy.zeros(n_out)
    X = rng.normal(size=(batch, n_in))
    Y = numpy.eye(n_out)[rng.integers(0, n_out, size=batch)]
    n_samples, n_features = 1000, 20
    Xl = rng.normal(size=(n_samples, n_features))
    w_true = rng.normal(size=n_features)
    yl = (Xl @ w_true + 0.5 * rng.normal(size=n_samples) > 0).astype(float)
    wl = rng.normal(size=n_features) * 0.1
    return [
        ("rosenbrock-1e4", rosenbrock, (x,), (0,)),
        ("mlp-batch64", mlp, (W1, b1, W2, b2, X, Y), (0, 1, 2, 3)),
        ("logistic-1000x20", logistic, (wl, 0.1, Xl, yl), (0, 1)),
    ]


def torch_modules():
    """(math-like, numpy-like) namespaces of PyTorch functions under the names the programs
    above use, so PyTorch runs the same operations; None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    import types

    def sum_(x, axis=None, keepdims=False):
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis, keepdim=keepdims)

    def max_(x, axis=None, keepdims=False):
        return torch.amax(x) if axis is None else torch.amax(x, dim=axis, keepdim=keepdims)

    def minimum(a, b):
        return torch.minimum(torch.as_tensor(a, dtype=torch.float64),
                             torch.as_tensor(b, dtype=torch.float64))

    tmath = types.SimpleNamespace(sin=torch.sin, cos=torch.cos, exp=torch.exp,
                                  log=torch.log, tanh=torch.tanh)
    tnp = types.SimpleNamespace(sum=sum_, max=max_, minimum=minimum, mean=torch.mean,
                                dot=torch.matmul, tanh=torch.tanh, exp=torch.exp,
                                log=torch.log, log1p=torch.log1p, abs=torch.abs)
    return tmath, tnp
