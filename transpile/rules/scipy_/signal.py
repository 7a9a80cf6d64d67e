"""Rules for scipy.signal (real arguments).

convolve, correlate (n-d, modes full/valid/same, any ``method=``) and convolve2d,
correlate2d (``boundary='fill'`` with ``fillvalue=0``) are bilinear: declared multilinear
in their two inputs, so forward mode and the second-order routes follow. The adjoint of
each input of a full convolution is the correlation of the adjoint, placed in the full
result, with the other input ('valid' mode); a correlation is a convolution with the
second input reversed along every axis.
"""
import numpy as np
import scipy.signal as signal

from ..registry import defvjp
from ..numpy_ import _fit
from ...errors import TranspileError


def _full_adjoint(g, n, m, mode, late=False):
    """The adjoint of a convolution's full result from the adjoint g of its ``mode``
    part (shapes n and m of the inputs), as scipy.signal cuts it out of the full one
    (``late``: correlate2d's 'same' part starts half a step later on even sizes)."""
    full = tuple(a + b - 1 for a, b in zip(n, m))
    G = np.zeros(full)
    g = np.broadcast_to(np.asarray(g, dtype=float), _mode_shape(n, m, mode))
    if mode == "full":
        starts = (0,) * len(n)
    elif mode == "same":                                   # centered, in1's size
        starts = tuple((f - a + late) // 2 for f, a in zip(full, n))
    elif mode == "valid":
        starts = tuple(min(a, b) - 1 for a, b in zip(n, m))
    else:
        raise TranspileError(f"scipy.signal: no derivative rule for mode={mode!r}")
    G[tuple(slice(s, s + k) for s, k in zip(starts, g.shape))] = g
    return G


def _mode_shape(n, m, mode):
    if mode == "full":
        return tuple(a + b - 1 for a, b in zip(n, m))
    if mode == "same":
        return tuple(n)
    return tuple(max(a, b) - min(a, b) + 1 for a, b in zip(n, m))


def _flip(x):
    return np.flip(np.asarray(x), axis=tuple(range(np.ndim(x))))


def _check_2d(boundary, fillvalue, what):
    if boundary not in ("fill", "pad") or fillvalue != 0:
        raise TranspileError(f"scipy.signal.{what}: derivatives with boundary='fill' and "
                             "fillvalue=0 only")


def _conv_vjps(correlate_valid, reversed_second, check=None, late=False):
    """The two vjps of a convolution (reversed_second: of a correlation, the convolution
    with the second input reversed); correlate_valid(G, x) is the 'valid' correlation."""
    def vjp(i):
        def f(g, ans, in1, in2, mode="full", *rest, **kw):
            if check is not None:
                check(*rest, **kw)
            a = np.asarray(in1, dtype=float)
            b = np.asarray(in2, dtype=float)
            if reversed_second:
                b = _flip(b)
            if a.ndim != b.ndim:
                raise TranspileError("scipy.signal: the inputs must have the same number "
                                     "of dimensions")
            G = _full_adjoint(g, a.shape, b.shape, mode, late)
            if i == 0:
                return _fit(correlate_valid(G, b), in1)
            c = correlate_valid(G, a)
            return _fit(_flip(c) if reversed_second else c, in2)
        return f
    return vjp(0), vjp(1)


def _correlate_nd(G, x):
    return signal.correlate(G, x, mode="valid")


def _method_only(method="auto"):
    pass


def _fill_only(boundary="fill", fillvalue=0):
    _check_2d(boundary, fillvalue, "convolve2d/correlate2d")


def _correlate_2d(G, x):
    return signal.correlate2d(G, x, mode="valid")


for _fn, _valid, _rev, _check in (
        (signal.convolve, _correlate_nd, False, _method_only),
        (signal.correlate, _correlate_nd, True, _method_only),
        (signal.convolve2d, _correlate_2d, False, _fill_only),
        (signal.correlate2d, _correlate_2d, True, _fill_only)):
    _rule = defvjp(_fn, *_conv_vjps(_valid, _rev, _check, _fn is signal.correlate2d), None,
                   params="in1, in2, mode", name=f"scipy.signal.{_fn.__name__}",
                   env={"np": np, "signal": signal}, needs_ans=False,
                   multilinear=[(0,), (1,)])
    _rule.zero_tangent_ok = False        # SciPy's convolutions take no 0.0 for an array
