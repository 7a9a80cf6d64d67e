"""Programs that once gave a wrong number or an internal error, now right (or refused
with one clear error at the user's line).

* A slice whose bounds are computed (`x[i:i + len(w)]`, steps, open ends, 2-d) in loops
  and comprehensions.
* Element writes with integer-array indices that repeat an element (`x2[idx] += 1.0`,
  `a[idx] = v`, 2-d index pairs): NumPy keeps the last write to each element, and the
  adjoint follows it; a value read before such a write keeps the value it had.

Every derivative is checked against central finite differences, with exact shapes.
Programs are module-level defs (transpile reads their source).
"""
import inspect

import numpy as np
import pytest

import transpile as T


def fd_grad(f, args, i=0, eps=1e-6):
    """Central finite differences of scalar f with respect to argument i."""
    args = list(args)
    x = args[i]

    def at(v):
        a = list(args)
        a[i] = v
        return float(f(*[b.copy() if isinstance(b, np.ndarray) and k != i else b
                         for k, b in enumerate(a)]))
    if np.ndim(x) == 0:
        return (at(x + eps) - at(x - eps)) / (2 * eps)
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (at(xp) - at(xm)) / (2 * eps)
    return g


def check(value, expected, atol=1e-6):
    expected = np.asarray(expected, float)
    assert isinstance(value, (float, np.ndarray, np.floating)), type(value)
    assert np.shape(value) == expected.shape, (np.shape(value), expected.shape)
    assert np.allclose(np.asarray(value, float), expected, atol=atol, rtol=1e-6), \
        (value, expected)


def marked_line(f, mark="# refused"):
    lines, first = inspect.getsourcelines(f)
    return first + next(k for k, text in enumerate(lines) if mark in text)


def check_all(f, args):
    for i in range(len(args)):
        check(T.grad(f, wrt=i)(*[np.copy(a) for a in args]), fd_grad(f, args, i))


# --- 1. slices with computed bounds -----------------------------------------------------
def conv1d(x, w):
    n = len(x) - len(w) + 1
    out = np.array([np.dot(x[i:i+len(w)], w) for i in range(n)])
    return np.sum(out**2)


def strided_slices(x, w):
    s = 0.0
    for i in range(len(w)):
        s = s + np.sum(x[i:len(x) - 1:len(w)] * w[i]) + np.sum(x[i:] ** 2) * w[i]
    return s


def column_windows(x, w):
    return sum(np.sum(x[:, i:i + len(w)] @ w) for i in range(x.shape[1] - len(w) + 1))


def reversed_slices(x, w):
    return np.sum(x[::-len(w)] ** 2) + np.sum(x[len(w)::-1] * w[0])


def slice_write(x, w):
    y = x * 1.0
    for i in range(len(w)):
        y[i:i + len(w)] = y[i:i + len(w)] * w
    return np.sum(y ** 2)


@pytest.mark.parametrize("f, args", [
    (conv1d, (np.arange(6.) - 2.0, np.array([1.0, -2.0, 0.5]))),
    (conv1d, (np.ones(6), np.ones(3))),
    (strided_slices, (np.arange(7.) * 0.3, np.array([1.0, 2.0, 3.0]))),
    (column_windows, (np.arange(12.).reshape(2, 6) * 0.1, np.array([1.0, -1.0, 2.0]))),
    (reversed_slices, (np.arange(6.) - 1.5, np.array([0.5, 2.0, 3.0]))),
    (slice_write, (np.arange(6.) * 0.2 + 0.1, np.array([1.5, -0.5, 2.0]))),
], ids=lambda v: getattr(v, "__name__", ""))
def test_computed_slice_bounds(f, args):
    check_all(f, args)


# --- 2. repeated indices in element writes ----------------------------------------------
def fancy(x):
    idx = np.array([0, 2, 2]); y = x[idx]; x2 = x.copy(); x2[idx] += 1.0
    return np.sum(y * x2)


def fancy_set(x, v):
    idx = np.array([0, 2, 2]); x2 = x.copy(); x2[idx] = v * x[1]
    return np.sum(x2 * x)


def fancy_mul(x, v):
    idx = np.array([1, 0, 1]); x2 = x * 1.0; x2[idx] *= v
    return np.sum(x2 ** 2)


def fancy_list(x, v):
    x2 = x * 2.0; x2[[0, 0, 3]] -= v
    return np.sum(np.sin(x2))


def fancy_2d_pairs(x, v):
    r = np.array([0, 1, 0]); c = np.array([1, 2, 1])
    x2 = x.copy(); x2[r, c] += v
    return np.sum(x2 ** 2)


def fancy_2d_pairs_set(x, v):
    r = np.array([[0, 1], [0, 0]]); c = np.array([[1, 2], [1, 1]])
    x2 = x * 1.0; x2[r, c] = v * x[0, 0]
    return np.sum(x2 ** 3)


def fancy_rows(x, v):
    r = np.array([0, 1, 0])
    x2 = x.copy(); x2[r] = v
    return np.sum(x2 ** 3)


def fancy_rows_and_slice(x, v):
    r = np.array([2, 0, 2])
    x2 = x.copy(); x2[r, 1:] += v
    return np.sum(np.cos(x2) * x)


def masked_add(x, v):
    x2 = x.copy(); x2[x > 2.0] += v[0]
    return np.sum(x2 ** 2)


@pytest.mark.parametrize("f, args", [
    (fancy, (np.array([0.5, 1.5, 2.5]),)),
    (fancy_set, (np.arange(4.) + 0.5, np.array([1.5, 2.0, 3.0]))),
    (fancy_mul, (np.arange(4.) + 0.5, np.array([1.5, 2.0, 3.0]))),
    (fancy_list, (np.arange(4.) + 0.5, np.array([1.5, 2.0, 3.0]))),
    (fancy_2d_pairs, (np.arange(6.).reshape(2, 3), np.array([1.5, 2.0, 3.0]))),
    (fancy_2d_pairs_set, (np.arange(6.).reshape(2, 3) + 1.0,
                          np.array([[1.5, 2.0], [3.0, -1.0]]))),
    (fancy_rows, (np.arange(6.).reshape(2, 3), np.arange(9.).reshape(3, 3))),
    (fancy_rows_and_slice, (np.arange(12.).reshape(3, 4) * 0.3,
                            np.arange(9.).reshape(3, 3) * 0.1)),
    (masked_add, (np.arange(4.) + 0.5, np.array([1.5, 2.0, 3.0]))),
], ids=lambda v: getattr(v, "__name__", ""))
def test_repeated_index_writes(f, args):
    check_all(f, args)
    # the primal is NumPy's, and the arguments are left as f leaves them
    a = [np.copy(b) for b in args]
    value, _ = T.value_and_grad(f)(*a)
    assert value == f(*[np.copy(b) for b in args])
    for b, c in zip(a, args):
        assert np.array_equal(b, c)
