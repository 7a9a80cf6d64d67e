"""The optional numba backend (jit=True).

Every program of test_programs_sympy.py runs through jit=True: those that compile must
give the plain gradient and sympy's; those that do not (listed below, with the reason)
must raise one TranspileError naming the user's line, never give numbers. The tests of
the jit path are skipped when numba is not installed; the error for a missing numba is
tested without it.
"""
import math

import numpy as np
import os
import re
import sys

import pytest

import transpile
from oracle import assert_close, fd_grad, sympy_grad
from test_programs_sympy import PROGRAMS, _pid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "scripts"))
from workloads import scalar_programs  # noqa: E402  (the benchmark's scalar workloads)

recurrence, euler = scalar_programs(math)

RTOL = 1e-9

# programs whose derivative code numba cannot compile, and why
UNSUPPORTED = {
    # adjoints of lists and tuples go through transpile's Python-object helpers
    "p_min_max_list", "p_sum_list", "p_nested_unpack", "p_range_len", "p_for_list_tuple",
    "p_enumerate_zip", "p_enumerate_of_zip", "p_loop_var_reused_list_then_range",
    "p_helper_tuple", "p_list_append", "p_list_comprehension", "p_generator_sum",
    "p_list_param", "p_list_param_mixed", "p_list_element_assign", "p_list_of_lists",
    # recursive derivative code: numba cannot type a recursive tape
    "p_recursive_power", "p_recursive_series",
}


def _numba():
    return pytest.importorskip("numba", reason="jit=True needs numba (the [jit] extra)")


@pytest.mark.parametrize("fn,wrt,points", PROGRAMS, ids=[_pid(e) for e in PROGRAMS])
def test_jit_program_matches_plain_and_sympy(fn, wrt, points):
    _numba()
    g = transpile.grad(fn, wrt=wrt, jit=True)
    plain = transpile.grad(fn, wrt=wrt)
    if fn.__name__ in UNSUPPORTED:
        with pytest.raises(transpile.TranspileError) as info:
            g(*points[0])
        msg = str(info.value)
        assert "jit=True" in msg and "use jit=False" in msg
        assert re.search(r"test_programs_sympy\.py:\d+", msg), msg
        return
    for k, args in enumerate(points):
        got = g(*args)
        assert_close(got, plain(*args), rtol=1e-12, path="plain %s%r" % (fn.__name__, args))
        if k == 0:          # (the plain gradient is checked at every point elsewhere)
            assert_close(got, sympy_grad(fn, args, wrt), rtol=RTOL,
                         path="sympy %s%r" % (fn.__name__, args))


def test_jit_program_count():
    names = {e[0].__name__ for e in PROGRAMS}
    assert UNSUPPORTED <= names
    assert len(names - UNSUPPORTED) >= 60


def branchy_while(x, w):
    y = x
    n = 0
    while y < 50.0 and n < 100:
        if y > 2.0:
            y = y * w + math.cos(y)
        else:
            y = y * 1.5 + math.exp(-y) * w
        n += 1
    return y * math.tanh(w)


def helper_steps(y, w):
    for i in range(4):
        if y > 1.0:
            y = y * w - math.sin(y)
        else:
            y = y + w * i
    return y


def calls_helper_in_loop(x, w):
    s = x
    for k in range(3):
        s = helper_steps(s, w) * 0.5
    return s


def calls_helper_twice(x, w):
    return helper_steps(x, w) * helper_steps(w, x)


@pytest.mark.parametrize("fn,args,wrt,exact", [
    (calls_helper_in_loop, (0.4, 0.9), (0, 1), True),     # points away from the jumps
    (calls_helper_in_loop, (1.5, 1.2), (0, 1), True),     # of the branch
    (calls_helper_twice, (0.3, 1.7), (0, 1), True),
    (recurrence, (0.3, 0.7), (0, 1), True),
    (euler, (2.0, 1.0, 0.0), (0, 1, 2), False),    # linear: differences are accurate
    (branchy_while, (0.4, 1.2), (0, 1), True),
    (branchy_while, (3.0, 0.9), (0, 1), True),
], ids=["helper_in_loop-a", "helper_in_loop-b", "helper_twice", "recurrence", "euler",
        "branchy_while-a", "branchy_while-b"])
def test_jit_workloads_against_oracles(fn, args, wrt, exact):
    _numba()
    value, got = transpile.value_and_grad(fn, wrt=wrt, jit=True)(*args)
    assert value == pytest.approx(fn(*args), rel=1e-12)
    assert_close(got, transpile.grad(fn, wrt=wrt)(*args), rtol=1e-12)
    if exact:
        assert_close(got, sympy_grad(fn, args, wrt), rtol=RTOL)
    assert_close(got, fd_grad(fn, args, wrt), rtol=1e-5, atol=1e-8)


def test_jit_decorator_source_and_types():
    _numba()

    @transpile.differentiate(wrt=("x", "w"), jit=True)
    def f(x, w):
        y = x
        for i in range(20):
            y = math.sin(y) * w + 0.5 * y
        return y

    expected = sympy_grad(f.__wrapped__, (0.3, 0.7), (0, 1))
    assert_close(f.grad(0.3, 0.7), expected, rtol=RTOL)
    value, g = f.value_and_grad(0.3, 0.7)
    assert value == pytest.approx(f(0.3, 0.7), rel=1e-12)
    assert_close(g, expected, rtol=RTOL)
    # .source is the generated Python, not numba's rewrite of it
    assert "def grad_f(x, w):" in f.source and "_jit_" not in f.source
    # an int argument is another specialization (numba compiles it on first use)
    assert_close(f.grad(1, 0.7), transpile.grad(f, wrt=(0, 1))(1, 0.7), rtol=1e-12)
    assert_close(f.grad(1, 0.7), fd_grad(f.__wrapped__, (1.0, 0.7), (0, 1)), rtol=1e-6)
    assert transpile.grad(f, jit=True).source == transpile.grad(f).source


def test_jit_runtime_errors_are_the_programs_own():
    _numba()

    def f(x):
        return x / (x - 1.0)

    with pytest.raises(ZeroDivisionError):
        transpile.grad(f, jit=True)(1.0)


def test_jit_error_names_the_user_line():
    _numba()

    def f(x, y):
        vals = [x, y]
        return vals[0] * vals[1]  # list adjoint

    with pytest.raises(transpile.TranspileError) as info:
        transpile.grad(f, jit=True)(0.5, 2.0)
    lines = f.__code__.co_firstlineno + 1, f.__code__.co_firstlineno + 2
    assert re.search(r"test_jit\.py:(%d|%d)\b" % lines, str(info.value)), str(info.value)


def test_jit_numpy_rules_are_a_clear_error():
    _numba()
    np = pytest.importorskip("numpy")

    def f(x):
        return np.prod(np.sin(x) * x)  # NumPy rule

    with pytest.raises(transpile.TranspileError,
                       match=r"test_jit\.py:%d: .*prod_vjp\(\) \(NumPy derivative rule\)"
                             % (f.__code__.co_firstlineno + 1)):
        transpile.grad(f, jit=True)(np.ones(3))


def test_jit_through_inlined_numpy_templates():
    """Where a NumPy rule's template is inlined (sum, mean, matmul on float arrays of known
    dimensions), the derivative code is plain NumPy that numba compiles."""
    _numba()
    np = pytest.importorskip("numpy")
    from finite_differences import central_wrt

    def f(W, X):
        return np.mean(np.tanh(X @ W) ** 2) + np.sum(np.sin(W) * W)

    rng = np.random.default_rng(3)
    W, X = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))
    g = transpile.grad(f, wrt=0, jit=True)
    got = g(W, X)
    assert "matmul_vjp" not in g.source and "sum_vjp" not in g.source, g.source
    assert np.allclose(got, transpile.grad(f, wrt=0)(W, X), rtol=1e-12, atol=1e-14)
    assert np.allclose(got, central_wrt(f, (W, X), 0), rtol=1e-6, atol=1e-8)


def test_jit_defaults_and_keywords():
    _numba()

    def f(x, w=0.7, *, c=0.5):
        y = x
        for i in range(5):
            y = math.sin(y) * w + c * y
        return y

    g = transpile.grad(f, wrt=(0, 1), jit=True)
    plain = transpile.grad(f, wrt=(0, 1))
    assert_close(g(0.3), plain(0.3), rtol=1e-12)
    assert_close(g(0.3, w=0.9), plain(0.3, w=0.9), rtol=1e-12)
    assert_close(g(0.3), sympy_grad(f, (0.3, 0.7), (0, 1)), rtol=RTOL)


def test_jit_not_for_second_derivatives():
    _numba()
    with pytest.raises(transpile.TranspileError, match="grad\\(grad"):
        transpile.grad(transpile.grad(recurrence), jit=True)


def test_missing_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)     # import numba -> ImportError
    for make in (lambda: transpile.grad(recurrence, jit=True),
                 lambda: transpile.value_and_grad(recurrence, jit=True),
                 lambda: transpile.differentiate(jit=True)(recurrence)):
        with pytest.raises(transpile.TranspileError,
                           match=r"jit=True needs the optional package numba.*"
                                 r"pip install 'transpile\[jit\]'"):
            make()
    # without jit nothing needs numba
    assert_close(transpile.grad(branchy_while, wrt=1)(0.4, 1.2),
                 sympy_grad(branchy_while, (0.4, 1.2), 1), rtol=RTOL)


# --- NumPy array code ------------------------------------------------------------------------

def _np():
    _numba()
    return pytest.importorskip("numpy")


def _check_arrays(f, args, wrt, fd_rtol=1e-6, fd_atol=1e-7):
    """jit=True against the plain gradient (same value, same numbers to rounding) and
    central differences, for every argument of wrt."""
    import numpy as np
    from finite_differences import central_wrt
    value, got = transpile.value_and_grad(f, wrt=wrt, jit=True)(*args)
    want_value, want = transpile.value_and_grad(f, wrt=wrt)(*args)
    assert value == pytest.approx(want_value, rel=1e-12, abs=1e-14)
    several = isinstance(wrt, tuple)
    got, want = (got, want) if several else ((got,), (want,))
    for i, g, w in zip(wrt if several else (wrt,), got, want):
        assert np.shape(g) == np.shape(args[i]), (i, np.shape(g))
        assert np.allclose(g, w, rtol=1e-11, atol=1e-13), (i, g, w)
        fd = central_wrt(f, args, i)
        assert np.allclose(g, fd, rtol=fd_rtol, atol=fd_atol), (i, g, fd)
    return got


def test_jit_array_workloads():
    """The array workloads of scripts/bench.py compile and match."""
    np = _np()
    from workloads import array_workloads
    for name, f, args, wrt in array_workloads(np):
        value = transpile.value_and_grad(f, wrt=wrt, jit=True)(*args)[0]
        assert value == f(*args), name          # the primal's very number (NumPy's sums,
        if name == "rosenbrock-1e4":            # products and ufuncs)
            args = (args[0][:50],)
        _check_arrays(f, args, wrt, fd_rtol=1e-5, fd_atol=1e-6)


def reduce_axes(x, w):
    a = np.sum(x * w, axis=0)
    b = np.mean(np.sin(x), axis=1, keepdims=True)
    c = np.max(x * w, axis=-1)
    d = np.min(x, 0, keepdims=True)
    e = np.sum(np.cos(x), keepdims=True)
    return np.sum(a ** 2) + np.sum(b * x) + np.sum(c) * np.mean(d) + np.sum(e) * np.max(x)


def reduce_3d(t):
    s = np.sum(t, axis=1)                   # (2, 4)
    m = np.max(t, axis=2, keepdims=True)    # (2, 3, 1)
    n = np.mean(t * m, axis=0)              # (3, 4)
    return np.sum(s * np.tanh(s)) + np.sum(n ** 2) + np.sum(np.min(t, axis=1))


def broadcasts(X, b, c, s):
    y = np.tanh(X * b + c) * s             # (5, 3) with (3,), (5, 1) and a number
    return np.sum(y ** 2) + np.sum(y / (1.0 + b ** 2))


def slices_and_indices(x, idx):
    y = x[1:] * x[:-1] + x[::2].sum() * x[0] + x[-1] ** 2
    z = x[idx] * x[2]                      # idx repeats an element
    return np.sum(y ** 2) + np.sum(z)


def grid_indices(A):
    row = A[1]
    col = A[:, 2]
    blk = A[1:3, 0:2]
    return np.sum(row[:4] * col) + np.sum(blk ** 3) + A[0, 0] * A[2, 3]


def products(A, B, v, u, s):
    M = np.dot(A, B)                       # 2-D @ 2-D
    p = M @ v                              # 2-D @ 1-D
    q = u @ A                              # 1-D @ 2-D
    r = np.dot(p, p)                       # 1-D . 1-D
    return r + np.sum(np.matmul(q, B) * s) + np.dot(s, np.sum(v))


def masked(z, w):
    a = np.minimum(z, 0.0) * w
    b = np.where(z > 0.1, z ** 2, -z)
    c = np.abs(z - 0.3) * np.maximum(w, 0.5)
    return np.sum(a + b) + np.mean(c)


def softmax_loss(W, X, Y):
    logits = X @ W
    logits = logits - np.max(logits, axis=1, keepdims=True)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.sum(logp * Y) / X.shape[0]


def loop_over_rows(X, w):
    total = 0.0
    for i in range(X.shape[0]):
        total = total + np.tanh(np.dot(X[i], w)) ** 2
    return total


def elementwise_loop(x):
    y = x
    for k in range(4):
        y = np.sin(y) * 0.9 + 0.1 * y
    return np.sum(y * x)


def _data(seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng


@pytest.mark.parametrize("case", ["reduce_axes", "reduce_3d", "broadcasts", "slices",
                                  "grid", "products", "masked", "softmax", "loop_rows",
                                  "elementwise_loop"])
def test_jit_array_cases(case):
    np_ = _np()
    globals()["np"] = np_
    rng = _data()
    if case == "reduce_axes":
        _check_arrays(reduce_axes, (rng.normal(size=(4, 3)), rng.normal(size=3)), (0, 1))
    elif case == "reduce_3d":
        _check_arrays(reduce_3d, (rng.normal(size=(2, 3, 4)),), 0)
    elif case == "broadcasts":
        _check_arrays(broadcasts, (rng.normal(size=(5, 3)), rng.normal(size=3),
                                   rng.normal(size=(5, 1)), 0.7), (0, 1, 2, 3))
    elif case == "slices":
        _check_arrays(slices_and_indices, (rng.normal(size=7), np_.array([0, 3, 3, 5])), 0)
    elif case == "grid":
        _check_arrays(grid_indices, (rng.normal(size=(4, 5)),), 0)
    elif case == "products":
        _check_arrays(products, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)),
                                 rng.normal(size=2), rng.normal(size=3), 1.3),
                      (0, 1, 2, 3, 4))
    elif case == "masked":
        _check_arrays(masked, (np_.array([-1.0, -0.2, 0.4, 1.5, 2.0]),
                               np_.array([0.3, 0.9, -0.4, 0.7, 1.1])), (0, 1))
    elif case == "softmax":
        Y = np_.eye(3)[[0, 2, 1, 1]]
        _check_arrays(softmax_loss, (rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), Y),
                      0)
    elif case == "loop_rows":
        _check_arrays(loop_over_rows, (rng.normal(size=(4, 3)), rng.normal(size=3)),
                      (0, 1))
    elif case == "elementwise_loop":
        _check_arrays(elementwise_loop, (rng.normal(size=6),), 0)


def test_jit_array_specializations():
    """Other shapes, dtypes and layouts are other numba specializations of one gradient."""
    np = _np()
    g = transpile.grad(softmax_loss, wrt=0, jit=True)
    plain = transpile.grad(softmax_loss, wrt=0)
    rng = _data(1)
    for n, m, k in [(5, 3, 4), (2, 6, 1), (7, 2, 3)]:
        W, X = rng.normal(size=(m, k)), rng.normal(size=(n, m))
        Y = np.eye(k)[rng.integers(0, k, size=n)]
        assert np.allclose(g(W, X, Y), plain(W, X, Y), rtol=1e-11, atol=1e-13)
        Xf = np.asfortranarray(X)
        assert np.allclose(g(W, Xf, Y), plain(W, X, Y), rtol=1e-11, atol=1e-13)


def test_jit_array_result_not_a_number():
    np = _np()

    def f(x):
        return np.sin(x) * 2.0

    with pytest.raises(transpile.TranspileError, match="returning a number"):
        transpile.grad(f, jit=True)(np.ones(3))
    # an array of one element is taken for its number (seed.py)

    def h(x):
        return np.sum(np.sin(x), keepdims=True)

    x = np.array([0.3, 0.8])
    assert np.allclose(transpile.grad(h, jit=True)(x), np.cos(x), rtol=1e-12)


def test_jit_array_refusals_name_the_construct():
    """What the stand-ins do not cover is one TranspileError at the user's line."""
    np = _np()

    def tuple_axis(x):
        return np.sum(np.sum(x ** 2, axis=(0, 1)))  # tuple axis

    def cumulative(x):
        return np.sum(np.cumsum(x) * x)  # cumsum

    line = tuple_axis.__code__.co_firstlineno + 1
    with pytest.raises(transpile.TranspileError,
                       match=r"test_jit\.py:%d: .*jit=True.*use jit=False" % line):
        transpile.grad(tuple_axis, jit=True)(np.ones((2, 3)))
    line = cumulative.__code__.co_firstlineno + 1
    with pytest.raises(transpile.TranspileError,
                       match=r"test_jit\.py:%d: .*cumsum_vjp\(\)" % line):
        transpile.grad(cumulative, jit=True)(np.ones(3))


def test_jit_naive_layers():
    """Loops over arrays with element writes, a called function's forward and backward
    passing their tape (CS231n-style layers of scripts/naive_layers.py)."""
    np = _np()
    from naive_layers import conv_data, conv_loss, pool_data, pool_loss
    rng = _data(2)
    _check_arrays(conv_loss, conv_data(rng, N=2, C=2, H=5, W=6, F=3, HH=2, WW=3), (0, 1, 2))
    _check_arrays(pool_loss, pool_data(rng, N=2, C=2, H=6, W=4), 0)


def test_jit_tape_stacks_split_only_when_both_sides_agree():
    """The forward and backward of a call share a stack through the tape: split into one
    stack per variable only where both name the same variables."""
    _numba()
    import ast
    from transpile import jit
    fwd = ast.parse("def f_forward(x):\n    _stack = []\n    _push = _stack.append\n"
                    "    _push(a)\n    _push(b)\n    return x, (_stack, x)\n").body[0]
    bwd = ast.parse("def f_backward(_tape, g):\n    _stack, x = _tape\n"
                    "    _pop = _stack.pop\n    b = _pop()\n    a = _pop()\n"
                    "    return g\n").body[0]
    assert jit.tape_stack_variables(fwd) == jit.tape_stack_variables(bwd) == ["a", "b"]
    odd = ast.parse("def f_backward(_tape, g):\n    _stack, x = _tape\n"
                    "    _pop = _stack.pop\n    b = _pop()\n    _pop()\n"
                    "    return g\n").body[0]
    assert jit.tape_stack_variables(odd) is None


# --- elementwise statements lowered to fused loops ------------------------------------------

def fused_offsets(x):
    a = x[2:] - x[:-2] * x[1:-1]            # three offsets of one array
    b = x[::2] * 0.5 + x[1::2] ** 2         # constant steps (7 and 7 elements for 14)
    c = (x[1:] - x[:-1]) / (1.0 + x[1:] ** 2)
    return np.sum(a ** 2) + np.sum(b * a[:7]) + np.sum(c)


def fused_scalars(x, s, k):
    y = s * x - 2.0 / (1.0 + x ** 2) + k    # a float and an int broadcast
    z = -y * s + 3 * x
    return np.sum(y * z) + s * np.sum(x)


def fused_where(x, w):
    m = x > w                               # comparison of two arrays
    a = np.where(m, x * w, -x)
    b = np.where(x <= 0.2, 1.5, w ** 2)     # a number on one side
    c = (w >= x) * x                        # a bool array in arithmetic: left to numba
    return np.sum(a * b) + np.sum(c * w)


def fused_2d(A, B, r):
    C = A * B - A[1:2, :] * 0.5             # (4, 5) with a (1, 5) row: not one shape
    D = A[1:, :-1] * B[:-1, 1:] + C[1:, 1:] / (2.0 + B[1:, 1:] ** 2)
    E = C * r                               # (4, 5) with (5,): broadcast
    return np.sum(D ** 2) + np.sum(E * A)


def fused_in_place(x):
    a = x[1:] * x[:-1]                      # the adjoint of x: in-place writes through
    b = x[2:] - a[:-1]                      # overlapping slices after the fused group
    return np.sum(a[1:] * b) + np.sum(x[1:-1] * b)


def fused_names(x, _jf_np):
    _shape = x * _jf_np                     # names like the generated function's own
    _jf1 = _shape - x ** 2
    return np.sum(_jf1 * _shape)


def _fused_cases():
    import numpy as np
    rng = _data(3)
    x = rng.normal(size=14)
    return [
        ("offsets", fused_offsets, (x,), 0),
        ("scalars", fused_scalars, (x, 0.7, 2), (0, 1)),
        ("where", fused_where, (x, rng.normal(size=14)), (0, 1)),
        ("where_ties", fused_where, (np.array([0.2, 0.5, -1.0, 0.3]),
                                     np.array([0.2, 0.5, 1.0, -0.3])), (0, 1)),
        ("2d", fused_2d, (rng.normal(size=(4, 5)), rng.normal(size=(4, 5)),
                          rng.normal(size=5)), (0, 1, 2)),
        ("2d_fortran", fused_2d, (np.asfortranarray(rng.normal(size=(4, 5))),
                                  rng.normal(size=(4, 5)), rng.normal(size=5)), (0, 1)),
        ("in_place", fused_in_place, (x,), 0),
        ("names", fused_names, (x, 1.5), (0, 1)),
    ]


@pytest.mark.parametrize("case", [c[0] for c in [
    ("offsets",), ("scalars",), ("where",), ("where_ties",), ("2d",), ("2d_fortran",),
    ("in_place",), ("names",)]])
def test_jit_fused_elementwise(case):
    """Runs of elementwise statements (numba pass, `_fuse`): the jitted primal is the
    plain one exactly, the gradient the plain one and central differences'."""
    np_ = _np()
    globals()["np"] = np_
    name, f, args, wrt = next(c for c in _fused_cases() if c[0] == case)
    value = transpile.value_and_grad(f, wrt=wrt, jit=True)(*args)[0]
    assert value == f(*args)
    if case == "where_ties":        # ties of the comparisons: no derivative there, so
        got = transpile.grad(f, wrt=wrt, jit=True)(*args)      # the plain gradient's
        want = transpile.grad(f, wrt=wrt)(*args)               # choice, to the bit
        assert all(np_.array_equal(g, w) for g, w in zip(got, want))
        return
    _check_arrays(f, args, wrt)


def fused_divisions(x, y, k):
    a = (x - 1.0) / y + x * (1 / k)         # y holds a zero: inf and nan as NumPy's
    return np.sum(a * x)


def test_jit_fused_division_by_zero():
    """Division of elements by zero gives NumPy's inf and nan (no exception); a division
    of numbers stays Python's (ZeroDivisionError, as the plain gradient)."""
    np_ = _np()
    globals()["np"] = np_
    x, y = np_.array([0.5, 2.0, 1.0, -3.0]), np_.array([1.0, 0.0, 0.0, -0.0])
    with np_.errstate(divide="ignore", invalid="ignore"):
        got = transpile.value_and_grad(fused_divisions, wrt=(0, 1), jit=True)(x, y, 3)
        want = transpile.value_and_grad(fused_divisions, wrt=(0, 1))(x, y, 3)
    assert np_.array_equal(got[0], want[0], equal_nan=True)
    for g, w in zip(got[1], want[1]):
        assert np_.array_equal(g, w, equal_nan=True), (g, w)
    with pytest.raises(ZeroDivisionError):
        transpile.grad(fused_divisions, wrt=0, jit=True)(x, y, 0)


def test_jit_fused_loops_are_made():
    """The lowering applies where it should: Rosenbrock's runs are loops (its primal's
    very number), a run of 2-D arrays a loop nest, a broadcast between arrays of
    different numbers of dimensions and transcendental functions are left as they are."""
    np_ = _np()
    globals()["np"] = np_
    from transpile import jit_fuse
    from workloads import array_workloads
    name, rosen, args, wrt = array_workloads(np_)[0]
    before = set(jit_fuse.SOURCES)
    assert transpile.value_and_grad(rosen, jit=True)(*args)[0] == rosen(*args)
    made = [s for n in set(jit_fuse.SOURCES) - before for s in jit_fuse.SOURCES[n]]
    assert sum(s.count("for _jf_i0 in range") for s in made) >= 3, made
    assert not any("_jit_np_" in s for s in made)

    def mixed(A, r):
        B = np.tanh(A) * 2.0 + A * A        # tanh: NumPy's, the rest a loop nest
        return np.sum(B * r)                # (4, 5) with (5,): numba's broadcast

    before = set(jit_fuse.SOURCES)
    rng = _data(4)
    _check_arrays(mixed, (rng.normal(size=(4, 5)), rng.normal(size=5)), (0, 1))
    made = [s for n in set(jit_fuse.SOURCES) - before for s in jit_fuse.SOURCES[n]]
    assert any("for _jf_i1 in range" in s for s in made), made
    assert not any("tanh" in s for s in made)
