"""checkpoint=: loops re-run in segments give the gradients of the plain tape (to ~1e-12),
which match sympy or central finite differences; the tape grows like sqrt(n), not n."""
import ast
import inspect
import math
import os
import sys
import textwrap

import numpy as np
import pytest

import transpile
from transpile.runtime import Checkpoints
from oracle import assert_close, fd_grad, sympy_grad

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "scripts"))
from bench_memory import peak_bytes  # noqa: E402  (tracemalloc peak of one warm call)

SETTINGS = ["sqrt", 1, 3, 4, 100]
COUNTS = [0, 1, 2, 7, 12, 25]          # 7, 25: not divisible by 3 or 4; 0, 1, 2: n < k


# --- programs ------------------------------------------------------------------------

def recurrence(x, w, n):
    y = x
    for i in range(n):
        y = math.sin(y) * w + 0.5 * y
    return y


def euler(k, x0, v0, n):
    x = x0
    v = v0
    dt = 0.01
    for i in range(n):
        a = -k * x - 0.1 * v
        x = x + dt * v
        v = v + dt * a
    return x * v + x


def branches(x, w, n):
    y = x
    for i in range(n):
        if y > 0.5:
            y = math.sin(y) * w
        elif i % 3 == 0:
            y = y * y + w
        else:
            y = math.cos(y) - 0.3 * w
    return y


def carried_temporary(x, w, n):
    y = x
    p = 0.0
    for i in range(n):
        if i > 0:
            y = y + 0.1 * p            # p from the previous iteration
        p = math.sin(y) * w
        y = p * y + 0.2
    return y + p


def inner_loop(x, w, n):
    y = x
    for i in range(n):
        for j in range(3):
            y = math.sin(y) * w + 0.1 * j
            if y > 0.9:
                break
    return y


def helper(a, w):
    b = a * w
    b = math.sin(b) + a
    return b


def calls(x, w, n):
    y = x
    for i in range(n):
        y = helper(y, w) * 0.5
    return y


def two_loops(x, w, n):
    y = x
    for i in range(n):
        y = math.sin(y) * w          # reads w, which the next loop overwrites
    for i in range(n):
        w = math.cos(w) * y
    return w + y


def overwritten_after(x, w, n):
    y = x
    for i in range(n):
        y = math.sin(y * w) + y
    w = w * y                        # the loop's input changes after it
    y = y * w
    return y


def with_break(x, w, n):
    y = x
    for i in range(n):
        y = math.sin(y) * w + 0.9
        if y > 1.5:
            break
    return y


def with_while(x, w, n):
    y = x
    t = 0
    while t < n:
        y = math.sin(y) * w + 0.5 * y
        t += 1
    return y


def with_return(x, w, n):
    y = x
    for i in range(n):
        y = y * w + 0.3
        if y > 3.0:
            return y * y
    return y


SCALAR = [
    (recurrence, (0.3, 0.7), (0, 1)),
    (euler, (2.0, 1.0, 0.5), (0, 1, 2)),
    (branches, (0.3, 0.9), (0, 1)),
    (carried_temporary, (0.3, 0.9), (0, 1)),
    (inner_loop, (0.3, 1.3), (0, 1)),
    (calls, (0.3, 0.7), (0, 1)),
    (two_loops, (0.3, 0.7), (0, 1)),
    (overwritten_after, (0.3, 0.7), (0, 1)),
    (with_break, (0.3, 1.2), (0, 1)),
    (with_while, (0.3, 0.7), (0, 1)),
    (with_return, (0.3, 1.4), (0, 1)),
]


def _close(a, b, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


@pytest.mark.parametrize("f,args,wrt", SCALAR, ids=[p[0].__name__ for p in SCALAR])
def test_scalar_programs_match_plain_tape_and_sympy(f, args, wrt):
    plain = transpile.value_and_grad(f, wrt=wrt)
    for n in COUNTS:
        a = args + (n,)
        value, expected = plain(*a)
        if n in (7, 12):
            assert_close(list(expected), list(sympy_grad(f, a, wrt=wrt)), rtol=1e-9)
        for k in SETTINGS:
            v, g = transpile.value_and_grad(f, wrt=wrt, checkpoint=k)(*a)
            assert v == value
            _close(g, expected)


# --- loops inside loops and branches -------------------------------------------------------

def epochs(x, w, m, n):
    y = x
    for e in range(m):
        for t in range(n):
            y = math.sin(y) * w + 0.5 * y
        y = y * 0.9 + 0.01 * e
    return y


def nested_while(x, w, m, n):
    y = x
    for e in range(m):
        t = 0
        while t < n:
            y = math.sin(y) * w + 0.1 * y
            t += 1
            if y > 0.6:
                break
        y = y + 0.1
    return y


def inner_break(x, w, m, n):
    y = x
    s = 0.0
    for e in range(m):
        for t in range(n):
            y = math.cos(y) * w + 0.3
            if y > 0.95:
                break
        s = s + y * y
    return s


def loop_in_branch(x, w, m, n):
    y = x
    if x > 0:
        for t in range(n):
            y = math.sin(y) * w + 0.5 * y
    else:
        for t in range(m):
            y = y * w
    return y


def inside_list_loop(x, w, m, n):
    ys = []                              # the outer loop keeps its tape (list appends),
    y = x                                # the inner one is checkpointed
    for e in range(m):
        for t in range(n):
            y = math.sin(y) * w + 0.5 * y
        ys.append(y)
    return sum(ys)


NESTED = [(epochs, (0.3, 0.7)), (nested_while, (0.3, 0.9)), (inner_break, (0.3, 1.1)),
          (loop_in_branch, (0.3, 0.7)), (loop_in_branch, (-0.3, 0.7)),
          (inside_list_loop, (0.3, 0.7))]


@pytest.mark.parametrize("f,args", NESTED, ids=[f"{p[0].__name__}-{i}"
                                                for i, p in enumerate(NESTED)])
def test_nested_loops(f, args):
    for m, n in ((0, 3), (1, 1), (3, 0), (3, 5), (4, 9)):
        a = args + (m, n)
        value, expected = transpile.value_and_grad(f, wrt=(0, 1))(*a)
        if (m, n) == (3, 5):
            assert_close(list(expected), list(sympy_grad(f, a, wrt=(0, 1))), rtol=1e-9)
        for k in ("sqrt", 1, 2, 4):
            v, g = transpile.value_and_grad(f, wrt=(0, 1), checkpoint=k)(*a)
            assert v == value
            _close(g, expected)
            _close(transpile.vjp(f, *a, wrt=(0, 1), checkpoint=k)[1](1.0), expected)
    src = transpile.grad(f, wrt=(0, 1), checkpoint="sqrt").source
    assert src.count("_checkpoints") >= 3


@pytest.mark.parametrize("k", ["sqrt", 3])
def test_long_recurrence_and_finite_differences(k):
    a = (0.3, 0.7, 1000)
    g = transpile.grad(recurrence, wrt=(0, 1), checkpoint=k)(*a)
    _close(g, transpile.grad(recurrence, wrt=(0, 1))(*a))
    _close(g, fd_grad(recurrence, a, wrt=(0, 1)), rtol=1e-6, atol=1e-8)


def test_checkpointed_form_in_source():
    src = transpile.grad(recurrence, wrt=(0, 1), checkpoint="sqrt").source
    assert "_checkpoints1.append(y)" in src and "sqrt_interval(len(" in src
    assert "y = _checkpoints1.pop()" in src
    src = transpile.grad(recurrence, wrt=(0, 1), checkpoint=10).source
    assert "range(0, len(_range1), 10)" in src
    src = transpile.grad(with_while, wrt=(0, 1), checkpoint="sqrt").source
    assert "Checkpoints(None)" in src and ".segments(" in src
    assert "_checkpoints" not in transpile.grad(recurrence, wrt=(0, 1)).source


# --- NumPy state -----------------------------------------------------------------------

def rnn(h, W, U, xs):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U * xs[t])
    return np.sum(h * h)


def rnn_in_place(h, W, n):
    h = h.copy()
    for t in range(n):
        h[0] = h[0] * 0.9 + 0.1            # the state array is written in place
        if h[1] > 0.0:
            h = np.tanh(W @ h)
        else:
            h = np.sin(W @ h) + 0.5 * h
    return np.sum(h)


def central(f, args, i, h=1e-6):
    g = np.zeros(args[i].shape)
    for idx in np.ndindex(*args[i].shape):
        lo = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        hi = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        lo[i][idx] -= h
        hi[i][idx] += h
        g[idx] = (f(*hi) - f(*lo)) / (2 * h)
    return g


@pytest.mark.parametrize("steps", [0, 1, 5, 17])
def test_rnn_array_state(steps):
    rng = np.random.default_rng(3)
    h, W, U = rng.normal(size=4), rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4)
    xs = rng.normal(size=(steps, 4))
    args = (h, W, U, xs)
    expected = transpile.grad(rnn, wrt=(0, 1, 2))(*args)
    for k in ("sqrt", 2, 5):
        got = transpile.grad(rnn, wrt=(0, 1, 2), checkpoint=k)(*args)
        for g, e in zip(got, expected):
            _close(g, e)
    for i, g in enumerate(expected):
        _close(g, central(rnn, args, i), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("steps", [1, 6, 10])
def test_array_state_written_in_place(steps):
    rng = np.random.default_rng(5)
    h, W = rng.normal(size=3), rng.normal(size=(3, 3)) * 0.7
    args = (h, W, steps)
    expected = transpile.grad(rnn_in_place, wrt=(0, 1))(*args)
    for k in ("sqrt", 1, 4):
        got = transpile.grad(rnn_in_place, wrt=(0, 1), checkpoint=k)(*args)
        for g, e in zip(got, expected):
            _close(g, e)
    for i, g in enumerate(expected):
        _close(g, central(rnn_in_place, list(args), i), rtol=1e-6, atol=1e-8)
    gf = transpile.grad(rnn_in_place, wrt=(0, 1), checkpoint=4)
    gf(*args)
    assert "keep(h)" in gf.source and "h = restore(h)" in gf.source    # kept with a copy


def writes_input(x, w, n):
    for i in range(n):
        x[0] = np.sin(x[0]) * w + x[1]
        x[1] = x[1] * 0.9
    return np.sum(x * x)


def test_input_array_written_in_place_ends_as_without_checkpointing():
    x0 = np.array([0.3, 0.5, 0.7])
    after = x0.copy()
    writes_input(after, 0.8, 7)
    x = x0.copy()
    expected = transpile.grad(writes_input, wrt=(0, 1))(x, 0.8, 7)
    assert np.array_equal(x, after)               # left as the function leaves it
    for k in ("sqrt", 2, 3):
        x = x0.copy()
        got = transpile.grad(writes_input, wrt=(0, 1), checkpoint=k)(x, 0.8, 7)
        assert np.array_equal(x, after)
        for g, e in zip(got, expected):
            _close(g, e)
    _close(expected[0], central(writes_input, [x0.copy(), 0.8, 7], 0), rtol=1e-6, atol=1e-8)
    step = 1e-6
    fd_w = (writes_input(x0.copy(), 0.8 + step, 7) - writes_input(x0.copy(), 0.8 - step, 7)) / (
        2 * step)
    _close(expected[1], fd_w, rtol=1e-6)


# --- the other entry points ----------------------------------------------------------------

def test_vjp_and_decorator():
    a = (0.3, 0.7, 23)
    expected = transpile.grad(branches, wrt=(0, 1))(*a)
    value, pullback = transpile.vjp(branches, *a, wrt=(0, 1), checkpoint="sqrt")
    assert value == branches(*a)
    _close(pullback(1.0), expected)
    _close(pullback(2.0), [2 * g for g in expected])     # a second call: a fresh tape
    f = transpile.differentiate(branches, wrt=(0, 1), checkpoint=4)
    _close(f.grad(*a), expected)
    _close(f.vjp(*a)[1](1.0), expected)
    assert "_checkpoints1" in f.source


def test_bad_settings_raise_one_clear_error():
    for bad in (0, -2, 2.5, True, "log"):
        with pytest.raises(transpile.TranspileError, match="checkpoint="):
            transpile.grad(recurrence, checkpoint=bad)
        with pytest.raises(transpile.TranspileError, match="checkpoint="):
            transpile.vjp(recurrence, 0.3, 0.7, 5, checkpoint=bad)


# --- loops that keep their full tape ----------------------------------------------------

def appends(x, w, n):
    ys = []
    y = x
    for i in range(n):
        y = math.sin(y) * w
        ys.append(y)
    return sum(ys)


def test_list_changed_in_place_keeps_full_tape_and_says_so():
    a = (0.3, 0.7, 9)
    gf = transpile.grad(appends, wrt=(0, 1), checkpoint="sqrt")
    _close(gf(*a), transpile.grad(appends, wrt=(0, 1))(*a))
    assert "keeps a full tape (it changes the list 'ys' in place)" in gf.source
    assert "_checkpoints" not in gf.source


# --- memory: structural, not timed ----------------------------------------------------------

@pytest.mark.parametrize("f", [recurrence, with_while], ids=["for", "while"])
def test_peak_memory_grows_like_sqrt_n(f):
    small, large = 10000, 160000          # 16 times the iterations
    plain = transpile.grad(f, wrt=(0, 1))
    ckpt = transpile.grad(f, wrt=(0, 1), checkpoint="sqrt")
    p_small, p_large = peak_bytes(plain, (0.3, 0.7, small)), peak_bytes(plain, (0.3, 0.7, large))
    c_small, c_large = peak_bytes(ckpt, (0.3, 0.7, small)), peak_bytes(ckpt, (0.3, 0.7, large))
    assert p_large / p_small > 12                 # the plain tape: ~n
    assert c_large / c_small < 7                  # checkpointed: ~sqrt(n) (16 -> 4)
    assert c_large * 20 < p_large


def test_peak_memory_of_nested_loops_grows_like_sqrt_n():
    plain = transpile.grad(epochs, wrt=(0, 1))
    ckpt = transpile.grad(epochs, wrt=(0, 1), checkpoint="sqrt")
    small, large = peak_bytes(ckpt, (0.3, 0.7, 2, 5000)), peak_bytes(ckpt, (0.3, 0.7, 2, 40000))
    assert large / small < 5.5                    # 8 times the inner steps: ~2.8, not 8
    assert small * 20 < peak_bytes(plain, (0.3, 0.7, 2, 5000))


def test_snapshots_of_a_range_loop():
    from transpile import pipeline
    kinds = {"x": "scalar", "w": "scalar", "n": "scalar"}
    for n, k, count in ((1000, "sqrt", 32), (1000, 7, 143), (5, 7, 1), (0, "sqrt", 0)):
        compiled = pipeline.vjp_pair(recurrence, ("x", "w"), kinds, k)
        _, tape = compiled.forward(0.3, 0.7, n)
        lists = [v for v in tape if isinstance(v, list)]
        assert [len(v) for v in lists] == [count]      # the only thing kept per iteration
        assert all(isinstance(v, float) for v in lists[0])


def test_snapshot_counts():
    # fixed k: ceil(n / k) snapshots; thinning (while loops, "sqrt"): O(sqrt n) of them
    for n, k in ((10, 3), (12, 3), (1, 5), (100, 1)):
        ck, due = Checkpoints(k), 0
        for i in range(n):
            if i == due:
                due = ck.save(i, i)
        assert len(ck.states) == -(-n // k)
    for n in (1, 2, 10, 99, 1000, 12345):
        ck, due = Checkpoints(None), 0
        most = 0
        for i in range(n):
            if i == due:
                due = ck.save(i, i)
            most = max(most, len(ck.states))
        segments = ck.segments(n)
        assert segments[-1][0] == 0 and segments[0][1] == n
        assert all(a < b for a, b in segments)
        assert most <= 2 * math.sqrt(2 * n) + 2
        assert max(b - a for a, b in segments) <= 2 * math.sqrt(2 * n) + 2
        starts = [a for a, _ in segments][::-1]
        assert [ck.pop() for _ in segments] == starts[::-1]    # states match their starts


# --- the other test files' programs, checkpointed -----------------------------------------

import test_numpy_programs  # noqa: E402
import test_programs_sympy  # noqa: E402


LOOPING = [e for e in test_programs_sympy.PROGRAMS
           if any(isinstance(n, (ast.For, ast.While)) for n in ast.walk(
               ast.parse(textwrap.dedent(inspect.getsource(e[0])))))]


@pytest.mark.parametrize("fn,wrt,points", LOOPING,
                         ids=[test_programs_sympy._pid(e) for e in LOOPING])
def test_sympy_programs_checkpointed(fn, wrt, points):
    for args in points:
        plain = transpile.grad(fn, wrt=wrt)(*args)
        expected = sympy_grad(fn, args, wrt)
        for k in ("sqrt", 2):
            got = transpile.grad(fn, wrt=wrt, checkpoint=k)(*args)
            assert_close(got, plain, rtol=1e-12)
            assert_close(got, expected, rtol=1e-9)


@pytest.mark.parametrize("f,make,wrt", test_numpy_programs.CASES,
                         ids=[c[0].__name__ for c in test_numpy_programs.CASES])
def test_numpy_programs_checkpointed(f, make, wrt):
    args = make()
    expected = test_numpy_programs.check(f, args, wrt)         # vs finite differences
    for k in ("sqrt", 2):
        got = transpile.grad(f, wrt=wrt, checkpoint=k)(
            *[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        for g, e in zip(got, expected):
            _close(g, e)


# --- random programs (the generator of test_random_programs) -------------------------------

from hypothesis import assume, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from oracle import sympy_value_and_grad  # noqa: E402
from test_random_programs import _plain_value_ok, load, points, programs  # noqa: E402


@pytest.fixture(scope="module")
def progdir(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoint_programs")


@settings(max_examples=40, deadline=None)
@given(source=programs(), x=points, y=points, k=st.sampled_from(["sqrt", 1, 2, 3]))
def test_random_programs_checkpointed(progdir, source, x, y, k):
    f = load(source, progdir)
    note(source)
    assume(_plain_value_ok(f, x, y))
    _, expected = sympy_value_and_grad(f, (x, y), wrt=(0, 1))
    assume(all(math.isfinite(g) and abs(g) < 1e8 for g in expected))
    plain = transpile.grad(f, wrt=(0, 1))(x, y)
    value, got = transpile.value_and_grad(f, wrt=(0, 1), checkpoint=k)(x, y)
    assert value == f(x, y)
    scale = 1.0 + max(abs(g) for g in expected)
    assert_close(got, plain, rtol=1e-12, atol=1e-12 * scale)
    assert_close(got, expected, rtol=1e-8, atol=1e-10 * scale)
    _, pullback = transpile.vjp(f, x, y, wrt=(0, 1), checkpoint=k)
    assert_close(pullback(1.0), plain, rtol=1e-12, atol=1e-12 * scale)


# --- random numbers in a checkpointed loop: the re-run draws the same numbers ----------

import random as _random                     # noqa: E402

RNG = np.random.default_rng(7)


def legacy_draws(x):
    np.random.seed(0)
    s = x
    for i in range(20):
        s = s + x * np.random.rand()
    return s


def legacy_draws_unseeded(x):
    s = x
    for i in range(20):
        s = s * 0.9 + math.sin(x * np.random.normal())
    return s


def python_random_draws(x):
    s = x
    for i in range(17):
        s = s * 0.8 + x * _random.random()
    return s


def generator_argument(x, rng):
    s = x
    for i in range(15):
        s = math.sin(s) + x * rng.normal()
    return s


def module_generator(x):
    s = x
    for i in range(15):
        s = s * 0.5 + x * RNG.uniform()
    return s


def _noise():
    return np.random.rand()


def draws_in_a_callee(x):
    s = x
    for i in range(12):
        s = s * 0.7 + x * _noise()
    return s


def while_draws(x):
    s = x
    n = 0
    while n < 13:
        s = s + x * np.random.rand() * s
        n = n + 1
    return s


def unseeded_generator(x):
    s = x
    for i in range(6):
        s = s + x * np.random.default_rng().random()
    return s


def _rng_snapshot():
    return (np.random.get_state()[1].copy(), _random.getstate(), RNG.bit_generator.state)


def _same_state(a, b):
    return np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


@pytest.mark.parametrize("f", [legacy_draws, legacy_draws_unseeded, python_random_draws,
                               module_generator, draws_in_a_callee, while_draws])
@pytest.mark.parametrize("k", [1, 4, "sqrt"])
def test_random_draws_in_a_rerun_segment_are_the_same(f, k):
    # the same draws as the plain run: reseed before each evaluation
    def at(seed, fn):
        np.random.seed(seed)
        _random.seed(seed)
        RNG.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        return fn()

    g = transpile.grad(f, checkpoint=k)
    h = 1e-6
    expected = (at(3, lambda: f(0.7 + h)) - at(3, lambda: f(0.7 - h))) / (2 * h)
    got = at(3, lambda: g(0.7))
    assert abs(got - expected) < 1e-6 * (1 + abs(expected))
    plain = at(3, lambda: transpile.grad(f)(0.7))
    assert abs(got - plain) < 1e-12 * (1 + abs(plain))
    # the generators end as after one call of f
    at(3, lambda: f(0.7))
    after_f = _rng_snapshot()
    at(3, lambda: g(0.7))
    assert _same_state(_rng_snapshot(), after_f)


def test_generator_argument_is_restored():
    g = transpile.grad(generator_argument, checkpoint=4)
    h = 1e-6
    fdv = (generator_argument(0.4 + h, np.random.default_rng(5))
           - generator_argument(0.4 - h, np.random.default_rng(5))) / (2 * h)
    rng = np.random.default_rng(5)
    got = g(0.4, rng)
    assert abs(got - fdv) < 1e-6 * (1 + abs(fdv))
    twin = np.random.default_rng(5)
    generator_argument(0.4, twin)
    assert rng.bit_generator.state == twin.bit_generator.state


def test_unseeded_generator_in_a_checkpointed_loop_is_refused():
    with pytest.raises(transpile.TranspileError) as err:
        transpile.grad(unseeded_generator, checkpoint=2)(0.5)
    assert "without a seed" in str(err.value)
