"""Regression tests for wrong gradients (and crashes) found by randomized differential testing.

Each program lives at module level (transpile reads its source); every gradient is compared
with central finite differences.  Tests fail until the underlying bug is fixed.
"""
import functools
import math

import numpy as np
import pytest

import transpile


def _clear_error_or(fn, check):
    """Either the right numbers, or one clear TranspileError at the user's line that
    names what is unsupported (keyword arguments carrying derivatives, list + list)."""
    try:
        check()
    except transpile.TranspileError as exc:
        assert "test_regressions.py:" in str(exc)
        assert "keyword argument" in str(exc) or "on lists" in str(exc), str(exc)




def fd(f, args, i, h=1e-6, ct=None):
    """Central finite differences of f (contracted with ct if given) w.r.t. argument i."""
    def F(a):
        out = f(*a)
        if ct is None:
            return float(out)
        return float(sum(np.sum(np.asarray(o) * np.asarray(c)) for o, c in zip(out, ct)))

    x = args[i]
    if isinstance(x, np.ndarray):
        g = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            lo, hi = list(args), list(args)
            xl, xh = x.copy(), x.copy()
            xl[idx] -= h
            xh[idx] += h
            lo[i], hi[i] = xl, xh
            g[idx] = (F(hi) - F(lo)) / (2 * h)
        return g
    if isinstance(x, list):
        g = []
        for j in range(len(x)):
            lo, hi = list(args), list(args)
            xl, xh = list(x), list(x)
            xl[j] -= h
            xh[j] += h
            lo[i], hi[i] = xl, xh
            g.append((F(hi) - F(lo)) / (2 * h))
        return g
    lo, hi = list(args), list(args)
    lo[i], hi[i] = x - h, x + h
    return (F(hi) - F(lo)) / (2 * h)


def copy_args(args):
    return [a.copy() if isinstance(a, np.ndarray) else (list(a) if isinstance(a, list) else a)
            for a in args]


def check_grad(f, args, wrt):
    got = transpile.grad(f, wrt=tuple(wrt))(*copy_args(args))
    for k, i in enumerate(wrt):
        expected = fd(f, copy_args(args), i)
        assert np.shape(got[k]) == np.shape(expected), (i, got[k], expected)
        np.testing.assert_allclose(np.asarray(got[k], float), np.asarray(expected, float),
                                   rtol=1e-5, atol=1e-6, err_msg="d/darg%d" % i)


V = np.array([0.4, -0.7, 0.25, 0.9])
W = np.array([1.0, 2.0, 0.5, 1.5])


# --- 1. differentiable NumPy arguments passed by keyword get a zero gradient ------------------

def np_dot_kw(v, w):
    return np.dot(a=v, b=w)


def np_dot_second_kw(v, w):
    return np.dot(v, b=w)


def np_sum_kw(v, w):
    return np.sum(a=v * w)


def np_average_weights_kw(v, w):
    return np.average(v, weights=w)


def np_sort_kw(v, w):
    return np.sum(np.sort(a=v) * w)


@pytest.mark.parametrize("f", [np_dot_kw, np_dot_second_kw, np_sum_kw, np_average_weights_kw,
                               np_sort_kw])
def test_numpy_keyword_arguments_are_differentiated(f):
    # observed: gradient of the keyword-passed argument was all zeros. Now keywords naming
    # a positional parameter are moved into place; others (average's weights=) are a
    # clear error
    _clear_error_or(f, lambda: check_grad(f, [V, W], [0, 1]))


def np_sum_initial(v, w):
    return np.sum(v, initial=w[0])


def np_pad_constant_values(v, w):
    return np.sum(np.pad(w, 1, mode="constant", constant_values=v[0]))


@pytest.mark.parametrize("f", [np_sum_initial, np_pad_constant_values])
def test_numpy_value_keywords_are_differentiated(f):
    # observed: d/dw[0] of sum(v, initial=w[0]) was 0 (expected 1); now a clear error
    _clear_error_or(f, lambda: check_grad(f, [V, W], [0, 1]))


# --- 2. builtin sum with start= keyword -------------------------------------------------------

def sum_start_kw(x, xs):
    return sum(xs, start=x * x)


def test_sum_start_keyword():
    # observed dx = 0, expected 2x
    check_grad(sum_start_kw, [0.37, [0.4, -0.2, 0.8]], [0, 1])


# --- 3. list concatenation and repetition -----------------------------------------------------

def list_concat(x, xs):
    L = xs + [x]
    return L[2] * L[0]


def list_concat_front(x, xs):
    L = [x] + xs
    return L[0] * L[1]


def list_repeat(x, xs):
    return sum([x] * 3) + sum(xs * 2)


@pytest.mark.parametrize("f", [list_concat, list_concat_front, list_repeat])
def test_list_concatenation_and_repetition(f):
    # observed e.g. list_concat: (0.0, [0.0, 0.0, 1.0]); now a clear error
    _clear_error_or(f, lambda: check_grad(f, [2.0, [3.0, 4.0]], [0, 1]))


# --- 4. vjp pullback called twice after in-place writes ---------------------------------------

def inplace_row(A, v):
    B = A.copy()
    B[0] = v
    return B * B


def inplace_list(x, xs):
    ys = list(xs)
    ys[-1] = x * 2.0
    b = min(ys)
    return [b + sum(ys), x]


def test_vjp_pullback_repeatable_after_array_write():
    A = np.arange(6.0).reshape(2, 3)
    v = np.array([1.0, 2.0, 3.0])
    ct = np.ones((2, 3))
    _, pullback = transpile.vjp(inplace_row, A.copy(), v.copy(), wrt=(0, 1))
    first = pullback(ct)
    second = pullback(ct)        # observed dv = [0, 2, 4] instead of [2, 4, 6]
    for k, i in enumerate((0, 1)):
        expected = fd(lambda a, b: np.sum(inplace_row(a, b) * ct), [A, v], i)
        np.testing.assert_allclose(first[k], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(second[k], expected, rtol=1e-5, atol=1e-6)


def test_vjp_pullback_repeatable_after_list_write():
    args = [0.7, [0.3, -0.4]]
    ct = [1.0, 0.5]
    _, pullback = transpile.vjp(inplace_list, *copy_args(args), wrt=(0, 1))
    first = pullback(list(ct))
    second = pullback(list(ct))  # observed (4.5, [1.0, 0.0]); first call gives (2.5, [2.0, 0.0])
    for k, i in enumerate((0, 1)):
        expected = fd(inplace_list, copy_args(args), i, ct=ct)
        np.testing.assert_allclose(np.asarray(first[k]), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(second[k]), expected, rtol=1e-5, atol=1e-6)


def hm(u, v):
    L = [u, v]
    L[0] = L[0] * v
    return L


def calls_list_mutating_helper(x, y):
    a = sum(hm(x, y))
    return [a, x]


def test_vjp_pullback_repeatable_with_helper_that_writes_a_list():
    # observed: the second pullback call raises IndexError('pop from empty list') in hm_backward
    _, pullback = transpile.vjp(calls_list_mutating_helper, 0.3, 0.7, wrt=(0, 1))
    first = pullback([1.0, 0.0])
    second = pullback([1.0, 0.0])
    expected = (fd(calls_list_mutating_helper, [0.3, 0.7], 0, ct=[1.0, 0.0]),
                fd(calls_list_mutating_helper, [0.3, 0.7], 1, ct=[1.0, 0.0]))
    np.testing.assert_allclose(first, expected, rtol=1e-5)
    np.testing.assert_allclose(second, expected, rtol=1e-5)


# --- 5. vjp value is changed by the pullback (returned list aliases restored state) -----------

def returns_written_list(x, xs):
    ys = list(xs)
    ys[0] = x * ys[0]
    return ys


def test_vjp_value_unchanged_by_pullback():
    value, pullback = transpile.vjp(returns_written_list, 2.0, [3.0, 4.0], wrt=(0, 1))
    assert value == [6.0, 4.0]
    pullback([1.0, 1.0])
    assert value == [6.0, 4.0]   # observed [3.0, 4.0]


# --- 6. duplicate indices in fancy-index assignment (last write wins in NumPy) -----------------

def fancy_dup_set(v):
    y = v * 1.0
    y[[0, 0]] = v[2:]
    return np.sum(y * v)


def fancy_dup_iadd(v):
    y = v * 1.0
    y[[0, 0, 1]] += v[:3] * 2.0
    return np.sum(y * y)


@pytest.mark.parametrize("f", [fancy_dup_set, fancy_dup_iadd])
def test_fancy_index_assignment_with_duplicates(f):
    check_grad(f, [V], [0])


# --- 7. crashes on valid programs --------------------------------------------------------------

def lambda_default(x):
    g = lambda u, v=0.5: u * v  # noqa: E731
    return g(x) * x


def closure_over_inactive(x, y):
    a = math.sin(y)
    g = lambda u: math.cos(a) * u  # noqa: E731
    return g(0.7) * x


def negated_where_with_array_condition(v, c):
    return -np.where(c.mean() > 0, 1.0, np.sum(v * v))


def dead_array_statement(A, s):
    t = np.sum(A)
    unused = A * t  # noqa: F841
    return s * t


def mask_write_depends_on_itself(A):
    B = A * 1.0
    B[B > 0.5] = 0.5
    return np.sum(B * A)


def max_default(x, xs):
    return max([t for t in xs if t > 5.0], default=x * 2.0)


def list_truthiness_then_append(x, y):
    hs = []
    a = y
    if hs:
        a = a * 2.0
    hs.append(x)
    return a * x


@pytest.mark.parametrize("f,args,wrt", [
    (lambda_default, [0.7], [0]),                                    # TypeError: missing 'v'
    (closure_over_inactive, [-0.7, 0.3], [0]),                       # unexpected keyword 'a'
    (negated_where_with_array_condition, [V, np.array([-0.5, 0.2])], [0]),  # -np.bool_
    (dead_array_statement, [np.arange(6.0).reshape(2, 3) / 7, 0.5], [0, 1]),  # unbroadcast
    (mask_write_depends_on_itself, [np.array([[0.3, 0.9], [0.7, -0.2]])], [0]),  # mask size
    (max_default, [0.37, [0.4, -0.2, 0.8]], [0]),                    # IndexError
    (list_truthiness_then_append, [0.3, 0.5], [0, 1]),               # pop from empty list
])
def test_valid_programs_do_not_crash(f, args, wrt):
    _clear_error_or(f, lambda: check_grad(f, args, wrt))


def int_array_input(x):
    return np.sum(x * 2.0)


def test_integer_array_wrt_is_a_clear_error():
    # observed: TypeError int * None deep in generated code
    with pytest.raises(transpile.TranspileError, match="integer or boolean array"):
        transpile.grad(int_array_input)(np.arange(3))
    np.testing.assert_allclose(transpile.grad(int_array_input)(np.arange(3.0)), [2.0] * 3)


def module_argument(m, x):
    return m.sin(x) * x


def test_a_module_passed_as_an_argument_is_differentiated_through():
    # observed: "the rule for numpy.sin has no derivative for 2 arguments" at file.py:?;
    # now m.sin is called through the value (calls.py): the rule of math.sin / np.sin
    import math
    from finite_differences import central
    g = transpile.grad(module_argument, wrt=1)(math, 0.5)
    assert abs(g - central(lambda v: module_argument(math, v), 0.5)) < 1e-6
    x = np.array([0.5, 1.0])
    _, pullback = transpile.vjp(module_argument, np, x, wrt=1)
    for i in range(2):
        e = np.eye(2)[i]
        np.testing.assert_allclose(pullback(e), central(
            lambda v: module_argument(np, v) @ e, x), atol=1e-6)


def test_user_variable_named_like_a_template_helper():
    """A variable called `sign` (the name of abs's derivative helper) passed to a rule's
    template is the user's value, not the helper."""
    from finite_differences import central

    def f(x):
        sign = np.sum(x)
        return np.sin(x[0]) * sign

    x = np.array([0.4, -1.3])
    g = transpile.grad(f)(x)
    assert np.allclose(g, central(f, x), atol=1e-6)
    _, t = transpile.jvp(f, [x], [np.array([1.0, 0.5])])
    assert np.allclose(t, central(f, x) @ np.array([1.0, 0.5]), atol=1e-6)


def _scaled(a, b):
    return a * b


def partial_then_reassigned(x, m):
    h = functools.partial(_scaled, m)
    m = m * 2.0                       # h keeps the m it was made with
    return h(x) * m


def test_a_partial_keeps_the_arguments_it_was_made_with():
    # observed: the gradient read the later m inside h (d/dx 1.96 instead of 0.98, a
    # wrong number): the partial's argument is now held in a name of its own
    from finite_differences import central_wrt
    args = (1.5, 0.7)
    g = transpile.grad(partial_then_reassigned, wrt=(0, 1))(*args)
    for i in range(2):
        assert abs(g[i] - central_wrt(partial_then_reassigned, args, i)) < 1e-6


class _CompiledLikeMeta(type):
    pass


# a class whose `__module__` attribute, read on the class, is a descriptor and not a string,
# as on Cython's function type (NumPy's `default_rng` on NumPy 2.2)
_CompiledLike = _CompiledLikeMeta("_CompiledLike", (), {
    "__module__": property(lambda self: "numpy.random"),
    "__call__": lambda self: 0.5})


def test_a_type_whose_module_is_a_descriptor():
    """Reading the module of a compiled type was an internal AttributeError
    (`'member_descriptor' object has no attribute 'startswith'`) wherever a call or an
    argument was classified: now the instance's module is used."""
    from finite_differences import central
    from transpile import tree

    draw = _CompiledLike()
    assert tree.type_module(draw) == "numpy.random"
    assert tree.type_module(3.0) == "builtins"

    def f(x):
        return np.sin(x) * draw().conjugate()     # the call of a method of a call's value

    assert abs(transpile.grad(f)(0.3) - central(f, 0.3)) < 1e-6

    def g(x, d):
        return x * x * d()

    assert abs(transpile.grad(g)(0.3, draw) - 0.3) < 1e-12


def cholesky_sum(a):
    return np.sum(np.sin(np.linalg.cholesky(a)))


def cholesky_upper_sum(a):
    return np.sum(np.sin(np.linalg.cholesky(a, upper=True)))


@pytest.mark.parametrize("f, upper", [(cholesky_sum, False), (cholesky_upper_sum, True)])
def test_cholesky_tangent_reads_one_triangle(f, upper):
    """np.linalg.cholesky reads one triangle of its input: forward mode along a tangent
    that is not symmetric was a wrong number (the whole tangent was used)."""
    rng = np.random.default_rng(4)
    b = rng.normal(size=(3, 3))
    a = b @ b.T + 3 * np.eye(3)
    t = rng.normal(size=(3, 3))                      # not symmetric
    _, got = transpile.jvp(f, [a], [t])
    eps = 1e-6
    ref = (f(a + eps * t) - f(a - eps * t)) / (2 * eps)
    assert abs(got - ref) < 1e-6 * (1 + abs(ref))
    g = transpile.grad(f)(a)
    assert abs(np.sum(g * t) - ref) < 1e-6 * (1 + abs(ref))
