"""Loops over arrays, the way people write layers by hand (CS231n-style convolutions and
pools, recurrences writing h[t], running sums into out[i]): gradients checked against
central differences on shapes where slices have length 1, windows cover the whole
input, elements are read back after they were written and maxima tie.

The derivative code of such loops is specialised on shapes (shapes.py): integer indices
by loop variables drop a dimension, slices keep a length that may be 1, the shape of an
array made by np.zeros((N, F, ...)) is followed, the adjoint guards and sums of values
that are provably arrays go. These tests hold it to the numbers.
"""
import numpy as np
import pytest

import transpile
from finite_differences import central_wrt, check_gradient as check

RNG = np.random.default_rng(11)


def arr(*shape):
    return RNG.normal(size=shape)


def conv(x, w, b, stride=1):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout = (H - HH) // stride + 1
    Wout = (W - WW) // stride + 1
    out = np.zeros((N, F, Hout, Wout))
    for n in range(N):
        for f in range(F):
            for i in range(Hout):
                for j in range(Wout):
                    window = x[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def conv_loss(x, w, b, dout):
    return np.sum(conv(x, w, b) * dout)


def strided_conv_loss(x, w, b, dout):
    return np.sum(conv(x, w, b, 2) ** 2 * dout)


@pytest.mark.parametrize("N, C, H, W, F, HH, WW", [
    (2, 3, 5, 6, 2, 3, 2),
    (1, 1, 3, 3, 1, 3, 3),          # one output pixel: the window is the whole input
    (2, 2, 4, 4, 3, 1, 1),          # 1x1 kernels: slices of length 1
    (1, 3, 2, 5, 2, 2, 1),
])
def test_naive_convolution(N, C, H, W, F, HH, WW):
    x, w, b = arr(N, C, H, W), arr(F, C, HH, WW), arr(F)
    dout = arr(N, F, H - HH + 1, W - WW + 1)
    check(conv_loss, (x, w, b, dout), (0, 1, 2))


def test_naive_convolution_with_stride_and_a_second_call():
    """The same loss with stride 2 (a square of the output); the gradient made for one
    shape serves another of the same kind."""
    g = transpile.grad(strided_conv_loss, wrt=(0, 1, 2))
    for shape in ((2, 2, 5, 5), (1, 3, 7, 6)):
        x, w, b = arr(*shape), arr(2, shape[1], 3, 3), arr(2)
        Ho, Wo = (shape[2] - 3) // 2 + 1, (shape[3] - 3) // 2 + 1
        dout = arr(shape[0], 2, Ho, Wo)
        got = g(x, w, b, dout)
        for i in (0, 1, 2):
            assert np.allclose(got[i], central_wrt(strided_conv_loss, (x, w, b, dout), i),
                               atol=1e-6)


def max_pool(x, p, s):
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


def pool_loss(x, dout):
    return np.sum(max_pool(x, 2, 2) * dout)


def overlapping_pool_loss(x, dout):
    return np.sum(max_pool(x, 3, 1) * dout)


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 1, 2, 2), (2, 1, 5, 3)])
def test_naive_max_pool(shape):
    x = arr(*shape)
    dout = arr(shape[0], shape[1], (shape[2] - 2) // 2 + 1, (shape[3] - 2) // 2 + 1)
    check(pool_loss, (x, dout), 0)
    x = arr(shape[0], shape[1], shape[2] + 2, shape[3] + 2)
    dout = arr(shape[0], shape[1], shape[2], shape[3])
    check(overlapping_pool_loss, (x, dout), 0)       # windows share elements


def test_naive_max_pool_splits_ties_as_np_max_does():
    """Tied maxima share the window's adjoint equally (the rule of np.max)."""
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 1.0
    dout = np.ones((1, 1, 1, 1))
    g = transpile.grad(pool_loss)(x, dout)
    assert np.allclose(g[0, 0], [[0.0, 0.5], [0.5, 0.0]])


def rnn(h0, Wx, Wh, xs):
    T = xs.shape[0]
    hs = np.zeros((T + 1, h0.shape[0]))
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = np.tanh(xs[t] @ Wx + hs[t] @ Wh)
    return np.sum(hs[1:] ** 2) + np.sum(hs[-1])


@pytest.mark.parametrize("T, D, H", [(4, 3, 2), (1, 1, 1), (3, 2, 1)])
def test_recurrence_reads_back_rows_it_wrote(T, D, H):
    args = (arr(H), arr(D, H) * 0.5, arr(H, H) * 0.5, arr(T, D))
    check(rnn, args, (0, 1, 2, 3))


def running(x, w):
    n = x.shape[0]
    out = np.zeros(n)
    acc = 0.0
    for i in range(n):
        acc = acc * w + x[i]
        out[i] = acc
    for i in range(1, n):
        out[i] += out[i - 1] * 0.5
    return np.sum(out * out)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_running_sums_and_in_place_updates(n):
    check(running, (arr(n), 0.7), (0, 1))


def columns(X, v):
    n, k = X.shape
    Y = np.zeros((n, k))
    for j in range(k):
        Y[:, j] = X[:, j] * v[j] + np.sum(X[:, :j + 1], axis=1)
    for i in range(n):
        Y[i, :] = Y[i, :] - np.mean(Y[i, :])
    return np.sum(Y ** 3)


@pytest.mark.parametrize("shape", [(3, 4), (1, 3), (4, 1)])
def test_column_and_row_writes(shape):
    check(columns, (arr(*shape), arr(shape[1])), (0, 1))


def windows(x, k):
    n = x.shape[0]
    total = 0.0
    for i in range(n - k + 1):
        seg = x[i:i + k]
        total = total + np.sum(seg * seg[::-1]) * np.max(seg)
    return total


@pytest.mark.parametrize("n, k", [(5, 2), (3, 3), (4, 1)])
def test_sliding_windows_with_steps(n, k):
    check(windows, (arr(n), k), 0)


def pool_and_loss(x, dout):
    N, C, H, W = x.shape
    out = np.zeros((N, C, H // 2, W // 2))
    for n in range(N):
        for c in range(C):
            for i in range(H // 2):
                for j in range(W // 2):
                    out[n, c, i, j] = np.max(x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2])
    return np.sum(out * dout)


def test_loop_adjoints_are_element_updates_of_owned_arrays():
    """The adjoint loop reads and writes elements itself, as a backward pass written by
    hand does: dx starts as zeros and gets `dx[...] += g`, the element of the output's
    adjoint is read and zeroed in place, with no helper calls and no guards."""
    x, dout = arr(2, 2, 4, 6), arr(2, 2, 2, 3)
    g = check(pool_and_loss, (x, dout), 0)
    src = g.source
    assert "dx = np.zeros(x.shape)" in src and "dx[n, c, " in src, src
    for absent in ("add_at", "take_item", "is_zero", "max_vjp"):
        assert absent not in src, src


def test_second_derivatives_through_loops_over_arrays():
    """Hessians of loops with element writes (derivative code differentiated again keeps
    its helpers, which copy what they update) against central differences of the
    gradient."""
    x, w = arr(4), 0.7
    H = transpile.hessian(running, wrt=0)(x, w)
    grad = transpile.grad(running, wrt=0)
    expected = np.stack([central_wrt(lambda x: grad(x, w)[k], (x,), 0) for k in range(4)])
    assert np.allclose(H, expected, atol=1e-5)
    X, v = arr(3, 2), arr(2)
    g2 = transpile.grad(lambda v: np.sum(transpile.grad(columns, wrt=0)(X, v) ** 2))
    expected = central_wrt(lambda v: np.sum(transpile.grad(columns, wrt=0)(X, v) ** 2),
                           (v,), 0)
    assert np.allclose(g2(v), expected, atol=1e-5)
