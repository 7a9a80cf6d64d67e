"""Benchmark workloads: plain Python functions with their arguments and wrt.

Each program is written once against a module parameter (math / numpy, or a peer's
drop-in replacement), so every tool differentiates the same code.
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

    return rosenbrock, mlp


def array_workloads(np):
    import numpy
    rng = numpy.random.default_rng(0)
    rosenbrock, mlp = numpy_programs(np)
    x = rng.normal(size=10_000)
    n_in, n_hidden, n_out, batch = 64, 128, 10, 64
    W1 = rng.normal(size=(n_in, n_hidden)) * 0.1
    b1 = numpy.zeros(n_hidden)
    W2 = rng.normal(size=(n_hidden, n_out)) * 0.1
    b2 = numpy.zeros(n_out)
    X = rng.normal(size=(batch, n_in))
    Y = numpy.eye(n_out)[rng.integers(0, n_out, size=batch)]
    return [
        ("rosenbrock-1e4", rosenbrock, (x,), (0,)),
        ("mlp-batch64", mlp, (W1, b1, W2, b2, X, Y), (0, 1, 2, 3)),
    ]
