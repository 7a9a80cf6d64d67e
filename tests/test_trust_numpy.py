"""Regression tests for NumPy rules, forward mode and the higher-order functions: each
derivative checked against central finite differences, with exact expected shapes.

* No behaviour depends on CPython bytecode: vjp rules declare whether they read the result
  (`needs_ans`), user rules through `defvjp` (default: they do).
* NumPy constructs that gave wrong numbers or crashed, forward mode through in-place slice
  writes and list-taking primitives, non-finite partials in the branch `np.where` does not
  select, float32 inputs.
"""
import numpy as np
import pytest

import transpile as T
from transpile.rules import lookup


def fd_grad(f, x, eps=1e-6):
    """Central finite differences of scalar f at array (or number) x."""
    if np.ndim(x) == 0:
        return (f(x + eps) - f(x - eps)) / (2 * eps)
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def fd_jvp(f, args, tangents, eps=1e-6):
    """Central finite differences of f along the tangents (None: argument held fixed)."""
    def at(h):
        return np.asarray(f(*[a if t is None else a + h * np.asarray(t)
                              for a, t in zip(args, tangents)]), float)
    return (at(eps) - at(-eps)) / (2 * eps)


def check(value, expected, shape=None, atol=1e-6):
    expected = np.asarray(expected, float)
    assert np.shape(value) == (expected.shape if shape is None else shape), \
        (np.shape(value), expected.shape)
    assert np.allclose(np.asarray(value, float), expected, atol=atol, rtol=1e-6), \
        (value, expected)


# --- 1. rules declare whether they read the result ------------------------------------
def max_of_square(x):
    return np.sum(np.max(x * x, axis=0))


def min_of_square(x):
    return np.sum(np.min(x * x, axis=1))


def std_of(x):
    return np.std(x * 2.0)


def norm_of(x):
    return np.linalg.norm(x * 1.5)


def dot_self(x):
    y = x * 1.0
    return np.dot(y, y)


def partition_of(x):
    return np.sum(np.partition(x * x, 1)[:2])


def inv_of(a):
    return np.sum(np.linalg.inv(a * 1.0))


READS_ANS = [
    (max_of_square, np.array([[1.0, -3.0], [2.0, 1.0]])),
    (min_of_square, np.array([[1.0, -3.0], [2.0, 1.5]])),
    (std_of, np.array([1.0, 2.0, 4.0])),
    (norm_of, np.array([1.0, -2.0, 2.0])),
    (dot_self, np.array([1.0, 2.0, 3.0])),
    (partition_of, np.array([3.0, -1.0, 2.0, 0.5])),
    (inv_of, np.array([[2.0, 1.0], [0.5, 3.0]])),
]


@pytest.mark.parametrize("f, x", READS_ANS, ids=[f.__name__ for f, _ in READS_ANS])
def test_rules_reading_the_result(f, x):
    check(T.grad(f)(x), fd_grad(f, x))


def cube_root(x):
    return x ** (1.0 / 3.0)


def _cube_root_vjp(g, ans, x):
    return g / (3.0 * ans * ans)          # reads the result


T.defvjp(cube_root, _cube_root_vjp)


def uses_cube_root(x):
    return np.sum(cube_root(x * x + 1.0))


def test_user_rule_reading_ans_by_default():
    assert lookup(cube_root).needs_ans
    x = np.array([0.5, 2.0])
    check(T.grad(uses_cube_root)(x), fd_grad(uses_cube_root, x))


def scaled(x):
    return 3.0 * x


T.defvjp(scaled, lambda g, ans, x: 3.0 * g, needs_ans=False)


def uses_scaled(x):
    return np.sum(scaled(x * x))


def test_user_rule_declares_no_result():
    assert not lookup(scaled).needs_ans
    x = np.array([0.5, 2.0])
    check(T.grad(uses_scaled)(x), fd_grad(uses_scaled, x))
    assert "scaled_vjp0(" in T.grad(uses_scaled).source
