"""CS231n-style naive layers: loops over arrays with element writes into ``out[n, f, i, j]``,
and their backward passes written by hand in plain Python (the baselines of
bench_naive_layers.py; the tests differentiate the forward passes with transpile)."""
import numpy as np


def conv_forward_naive(x, w, b):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout = H - HH + 1
    Wout = W - WW + 1
    out = np.zeros((N, F, Hout, Wout))
    for n in range(N):
        for f in range(F):
            for i in range(Hout):
                for j in range(Wout):
                    out[n, f, i, j] = np.sum(x[n, :, i:i + HH, j:j + WW] * w[f]) + b[f]
    return out


def conv_backward_naive(dout, x, w, b):
    """Hand-written adjoint of conv_forward_naive: (dx, dw, db)."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Hout, Wout = dout.shape
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            for i in range(Hout):
                for j in range(Wout):
                    g = dout[n, f, i, j]
                    db[f] += g
                    dw[f] += x[n, :, i:i + HH, j:j + WW] * g
                    dx[n, :, i:i + HH, j:j + WW] += w[f] * g
    return dx, dw, db


def max_pool_forward_naive(x, p, s):
    N, C, H, W = x.shape
    Hout = (H - p) // s + 1
    Wout = (W - p) // s + 1
    out = np.zeros((N, C, Hout, Wout))
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    out[n, c, i, j] = np.max(x[n, c, i * s:i * s + p, j * s:j * s + p])
    return out


def max_pool_backward_naive(dout, x, p, s):
    """Hand-written adjoint of max_pool_forward_naive (the window's maximum gets dout;
    the inputs have no ties)."""
    N, C, Hout, Wout = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    window = x[n, c, i * s:i * s + p, j * s:j * s + p]
                    mask = window == np.max(window)
                    dx[n, c, i * s:i * s + p, j * s:j * s + p] += mask * dout[n, c, i, j]
    return dx


def conv_loss(x, w, b, dout):
    return np.sum(conv_forward_naive(x, w, b) * dout)


def pool_loss(x, dout):
    return np.sum(max_pool_forward_naive(x, 2, 2) * dout)


def conv_data(rng, N=4, C=3, H=16, W=16, F=8, HH=3, WW=3):
    x = rng.normal(size=(N, C, H, W))
    w = rng.normal(size=(F, C, HH, WW))
    b = rng.normal(size=F)
    dout = rng.normal(size=(N, F, H - HH + 1, W - WW + 1))
    return x, w, b, dout


def pool_data(rng, N=4, C=3, H=16, W=16, p=2, s=2):
    x = rng.normal(size=(N, C, H, W))
    dout = rng.normal(size=(N, C, (H - p) // s + 1, (W - p) // s + 1))
    return x, dout
