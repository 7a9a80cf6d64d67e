"""The optional numba backend (jit=True).

Every program of test_programs_sympy.py runs through jit=True: those that compile must
give the plain gradient and sympy's; those that do not (listed below, with the reason)
must raise one TranspileError naming the user's line, never give numbers. The tests of
the jit path are skipped when numba is not installed; the error for a missing numba is
tested without it.
"""
import math
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
    line = f.__code__.co_firstlineno + 2
    assert re.search(r"test_jit\.py:%d\b" % line, str(info.value)), str(info.value)


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
