"""scipy.signal convolutions: every mode (full, same, valid), 1-d to 3-d, inputs of either
size first, against central finite differences in reverse mode, forward mode and both
Hessian-vector-product routes; boundaries other than zero fill are refused."""
import numpy as np
import pytest

signal = pytest.importorskip("scipy.signal")

import transpile                                         # noqa: E402
from transpile import TranspileError                     # noqa: E402
from finite_differences import along, central_wrt        # noqa: E402

rng = np.random.default_rng(5)


def conv(x, y, w, mode, method):
    return np.sum(np.sin(signal.convolve(x, y, mode=mode, method=method)) * w)


def corr(x, y, w, mode, method):
    return np.sum(np.sin(signal.correlate(x, y, mode, method)) * w)


def conv2(x, y, w, mode, method):
    return np.sum(np.sin(signal.convolve2d(x, y, mode)) * w)


def corr2(x, y, w, mode, method):
    return np.sum(np.sin(signal.correlate2d(x, y, mode=mode)) * w)


SHAPES = [((5,), (3,)), ((3,), (6,)), ((4, 3), (2, 2)), ((2, 3), (3, 4)),
          ((3, 2, 2), (2, 2, 2))]
CASES = [(f, a, b, mode, method)
         for f in (conv, corr) for a, b in SHAPES for mode in ("full", "same", "valid")
         for method in ("direct", "fft")]
CASES += [(f, a, b, mode, "auto") for f in (conv2, corr2) for a, b in SHAPES
          if len(a) == 2 for mode in ("full", "same", "valid")]


def _id(case):
    f, a, b, mode, method = case
    return f"{f.__name__}-{len(a)}d-{a[0]}x{b[0]}-{mode}-{method}"


def _close(a, b, tol=1e-5):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_against_finite_differences(case):
    f, a, b, mode, method = case
    x, y = rng.normal(size=a), rng.normal(size=b)
    if mode == "valid" and not (all(p >= q for p, q in zip(a, b)) or
                                all(p <= q for p, q in zip(a, b))):
        pytest.skip("valid needs one input at least as large as the other on every axis")
    w = rng.normal(size=np.shape(signal.convolve(x, y, mode=mode)))
    args = [x, y, w, mode, method]
    for i in range(2):
        g = transpile.grad(f, wrt=i)(*args)
        _close(g, central_wrt(f, args, i))
        v = rng.normal(size=np.shape(args[i]))
        ts = [None] * 5
        ts[i] = v
        _close(transpile.jvp(f, args, ts)[1], np.sum(g * v))
        expected = along(transpile.grad(f, wrt=i), args, i, v)
        for route in ("forward-over-reverse", "reverse-over-forward"):
            _close(transpile.hvp(f, wrt=i, mode=route)(*args, v=v), expected, 1e-4)


def wrapped(x, y):
    return np.sum(signal.convolve2d(x, y, boundary="wrap"))


def test_other_boundaries_are_refused():
    with pytest.raises(TranspileError, match="boundary='fill'"):
        transpile.grad(wrapped)(rng.normal(size=(3, 3)), rng.normal(size=(2, 2)))
