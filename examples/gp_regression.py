"""Gaussian-process regression: fit the kernel's hyper-parameters by gradient ascent of the
log marginal likelihood, differentiated by transpile through scipy.stats.

    python examples/gp_regression.py [--quick]

The model: y = f(x) + noise, f ~ GP(0, k) with the squared-exponential kernel
k(a, b) = sf2 exp(-(a - b)^2 / (2 ell^2)) and noise variance sn2. The hyper-parameters are
theta = (log ell, log sf2, log sn2), so every value of theta is allowed. The log marginal
likelihood is

    log p(y | x, theta) = scipy.stats.multivariate_normal.logpdf(y, 0, K(theta)),
    K = k(x, x) + sn2 I,

and `transpile.value_and_grad` gives it with its gradient in theta (through the kernel,
the covariance matrix and SciPy's density). The same function written with
np.linalg.cholesky and np.linalg.solve gives the same number and gradient. At the start
the gradient is checked against central finite differences (the error is printed); then
gradient ascent (Adam steps) fits theta, and the posterior mean +/- 2 sd is plotted.

Writes examples/figures/gp_regression.png when matplotlib is installed. `main(quick=False)`
returns the numbers.
"""
import os
import sys
import time

import numpy as np
import scipy.stats
from plotting import figure_path, quick_from_argv, save_figure

import transpile

FIGURE = figure_path("gp_regression")


def kernel(a, b, log_ell, log_sf2):
    """Squared-exponential covariances between the points a and b (1-d arrays)."""
    d = a[:, None] - b[None, :]
    return np.exp(log_sf2) * np.exp(-0.5 * d * d / np.exp(2.0 * log_ell))


def log_marginal_likelihood(theta, x, y):
    """log N(y; 0, K(theta) + sn2 I), by SciPy's multivariate normal density."""
    log_ell, log_sf2, log_sn2 = theta[0], theta[1], theta[2]
    K = kernel(x, x, log_ell, log_sf2) + np.exp(log_sn2) * np.eye(len(x))
    return scipy.stats.multivariate_normal.logpdf(y, np.zeros(len(x)), K)


def log_marginal_likelihood_cholesky(theta, x, y):
    """The same number by a Cholesky factor: -y^T K^-1 y / 2 - log|L| - n log(2 pi) / 2."""
    log_ell, log_sf2, log_sn2 = theta[0], theta[1], theta[2]
    K = kernel(x, x, log_ell, log_sf2) + np.exp(log_sn2) * np.eye(len(x))
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(K, y)
    return (-0.5 * np.dot(y, alpha) - np.sum(np.log(np.diag(L)))
            - 0.5 * len(x) * np.log(2.0 * np.pi))


def posterior(theta, x, y, xs):
    """Posterior mean and standard deviation of f at the points xs (of f, plus noise)."""
    log_ell, log_sf2, log_sn2 = theta
    K = kernel(x, x, log_ell, log_sf2) + np.exp(log_sn2) * np.eye(len(x))
    Ks = kernel(x, xs, log_ell, log_sf2)
    mean = Ks.T @ np.linalg.solve(K, y)
    var = np.exp(log_sf2) - np.sum(Ks * np.linalg.solve(K, Ks), axis=0)
    return mean, np.sqrt(np.maximum(var, 0.0)), np.sqrt(np.maximum(var, 0.0)
                                                       + np.exp(log_sn2))


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 10.0, n))
    y = np.sin(x) + 0.3 * np.cos(2.3 * x) + 0.2 * rng.normal(size=n)
    return x, y


def central_gradient(f, theta, eps=1e-6):
    g = np.zeros_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = eps
        g[i] = (f(theta + e) - f(theta - e)) / (2 * eps)
    return g


def fit(value_and_grad, theta, x, y, steps, rate=0.05):
    """Gradient ascent with Adam steps; returns theta and the history of the objective."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    history = []
    for k in range(1, steps + 1):
        value, g = value_and_grad(theta, x, y)
        history.append(value)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta + rate * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    history.append(value_and_grad(theta, x, y)[0])
    return theta, np.array(history)


def main(quick=False):
    t_start = time.perf_counter()
    n, steps = (25, 150) if quick else (40, 400)
    x, y = data(n)
    theta0 = np.array([np.log(3.0), np.log(0.5), np.log(0.5)])
    vg = transpile.value_and_grad(log_marginal_likelihood)
    vg_chol = transpile.value_and_grad(log_marginal_likelihood_cholesky)

    value0, grad0 = vg(theta0, x, y)
    fd0 = central_gradient(lambda t: log_marginal_likelihood(t, x, y), theta0)
    grad_err = float(np.max(np.abs(grad0 - fd0)))
    value_c, grad_c = vg_chol(theta0, x, y)
    chol_err = max(abs(value_c - value0), float(np.max(np.abs(grad_c - grad0))))
    print(f"log marginal likelihood at the start: {value0:.4f}")
    print(f"  gradient (log ell, log sf2, log sn2): {np.array2string(grad0, precision=4)}")
    print(f"  max |transpile - central differences| = {grad_err:.1e}")
    print(f"  max |multivariate_normal.logpdf - Cholesky version| (value, gradient) = "
          f"{chol_err:.1e}")

    t0 = time.perf_counter()
    theta, history = fit(vg, theta0, x, y, steps)
    fit_s = time.perf_counter() - t0
    ell, sf2, sn2 = np.exp(theta)
    print(f"\n{steps} Adam steps ({fit_s:.2f} s): log marginal likelihood "
          f"{history[0]:.3f} -> {history[-1]:.3f}")
    print(f"  length-scale {ell:.3f}, signal variance {sf2:.3f}, noise sd {np.sqrt(sn2):.3f}"
          f" (data made with noise sd 0.2)")
    final_grad = vg(theta, x, y)[1]
    print(f"  |gradient| at the end: {np.linalg.norm(final_grad):.2e}")

    xs = np.linspace(-1.0, 11.0, 200)
    mean, sd, _ = posterior(theta, x, y, xs)
    truth = np.sin(xs) + 0.3 * np.cos(2.3 * xs)
    inside = (xs >= 0) & (xs <= 10)
    rmse = float(np.sqrt(np.mean((mean[inside] - truth[inside]) ** 2)))
    print(f"  posterior mean vs the noise-free function on [0, 10]: rmse {rmse:.3f}")

    plotted = _plot(x, y, xs, mean, sd, truth, history, theta)
    elapsed = time.perf_counter() - t_start
    if plotted:
        print(f"\nwrote {os.path.relpath(FIGURE)}  ({elapsed:.1f} s)")
    return {"theta0": theta0, "value0": value0, "grad0": grad0, "fd0": fd0,
            "grad_err": grad_err, "cholesky_err": chol_err, "theta": theta,
            "history": history, "final_grad": final_grad, "rmse": rmse,
            "figure": FIGURE if plotted else None, "seconds": elapsed}


def _plot(x, y, xs, mean, sd, truth, history, theta):
    try:
        import matplotlib
    except ImportError:
        print("(matplotlib is not installed: no figure)")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    ax = axes[0]
    ax.fill_between(xs, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25,
                    label="posterior mean +/- 2 sd")
    ax.plot(xs, mean, "C0", label="posterior mean")
    ax.plot(xs, truth, "k--", lw=1, label="noise-free function")
    ax.plot(x, y, "o", color="C3", ms=4, label="data")
    ell, sf2, sn2 = np.exp(theta)
    ax.set_title(f"GP regression: ell = {ell:.2f}, sf2 = {sf2:.2f}, sn = {np.sqrt(sn2):.2f}")
    ax.set_xlabel("x")
    ax.legend(fontsize=8, loc="lower left")
    ax = axes[1]
    ax.plot(history)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("log marginal likelihood")
    ax.set_title("fit by transpile.value_and_grad")
    ax.grid(True, alpha=0.3)
    save_figure(fig, FIGURE, dpi=110)
    return True


if __name__ == "__main__":
    main(quick=quick_from_argv(__doc__.splitlines()[0]))
    sys.exit(0)
