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
from finite_differences import central_wrt as fd_grad, check


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


def test_computed_slice_bounds_second_order():
    """The adjoint's `slice(i, _index1, None)` is an index, not a differentiated value."""
    x, w = np.arange(6.) * 0.3 - 0.5, np.array([1.0, -2.0, 0.5])
    h = T.hessian(conv1d)(x, w)
    g = T.grad(conv1d)
    fd = np.array([(g(x + e, w) - g(x - e, w)) / 2e-6 for e in np.eye(6) * 1e-6])
    check(h, fd, atol=1e-5)


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


# --- 3. a function closing over a differentiated value, passed to what transpile cannot
# read: refused at the call (it was taken for a constant); direct calls still work ------
class Opaque:
    """A callable object: transpile has no rule for it and does not read its __call__."""
    def __call__(self, f):
        return lambda t: f(t)


OPAQUE = Opaque()


def apply_twice(f, t):
    return f(f(t))


def through_callable_object(x):
    inner = lambda y: x * y
    return x * OPAQUE(inner)(2.0)  # refused


def through_builtin(x):
    def inner(y):
        return np.sin(x) * y
    return sum(map(inner, [1.0, 2.0]))  # refused


def through_user_function(x):
    def inner(y):
        return np.sin(x) * y
    return apply_twice(inner, 3.0) + x  # refused


def through_alias(x):
    def inner(y):
        return x * y
    h = inner
    return OPAQUE(h)(2.0) + x  # refused


def through_nested_def(x):
    def f(t):
        return t * x
    def g(t):
        return f(t) * 2.0
    return OPAQUE(g)(1.5)  # refused


@pytest.mark.parametrize("f", [through_callable_object, through_builtin,
                               through_user_function, through_alias, through_nested_def],
                         ids=lambda f: f.__name__)
def test_closure_passed_to_unreadable_callable_is_refused(f):
    assert np.isfinite(f(1.3))                       # the primal itself runs
    with pytest.raises(T.TranspileError, match="passes a function that depends on 'x'") \
            as info:
        T.grad(f)(1.3)
    assert f"{__file__}:{marked_line(f)}" in str(info.value), str(info.value)


def closure_called_directly(x):
    inner = lambda y: x * y
    return x * inner(2.0)


def closure_calling_closure(x):
    def f(t):
        return t * np.cos(x)
    def g(t):
        return f(t) * 2.0 + x
    return g(1.5) * x


def constant_closure_to_callable_object(x):
    c = 3.0
    def f(t):
        return t * c
    return x * OPAQUE(f)(2.0)


def sorted_with_local_key(x):
    def key(t):
        return -t
    ys = sorted([3.0, 1.0, 2.0], key=key)
    return x * ys[0] + x * x


@pytest.mark.parametrize("f", [closure_called_directly, closure_calling_closure,
                               constant_closure_to_callable_object, sorted_with_local_key],
                         ids=lambda f: f.__name__)
def test_closures_that_work(f):
    check(T.grad(f)(1.3), fd_grad(f, (1.3,)))


# --- 4. crashes found by autograd's own tests -------------------------------------------
def power_zero(x):
    return np.power(x, 0.0)


def pow_op_zero(x):
    return x ** 0


def pow_op_one(x):
    return x ** 1


def pow_float_zero_sum(x):
    return np.sum(x ** 0.0 * 2.0 + np.power(x, 1.0))


def pow_variable(x, y):
    return np.sum(np.power(x, y) + x ** y)


def pow_negative(x):
    return np.sum(x ** -2)


def test_power_zero_exponent_at_zero():
    """d/dx x ** 0 = 0 (also at x = 0, where x ** -1 is infinite), d/dx x ** 1 = 1."""
    for f, want in ((power_zero, 0.0), (pow_op_zero, 0.0), (pow_op_one, 1.0)):
        for x in (0.0, 2.0):
            check(T.grad(f)(x), want)
            assert T.jvp(f, (x,), (1.0,))[1] == want
        x = np.array([0.0, 2.0, -1.5])
        check(T.jvp(f, (x,), (np.ones(3),))[1], np.full(3, want))
    x = np.array([0.0, 2.0, -1.5])
    check(T.grad(pow_float_zero_sum)(x), np.ones(3))
    assert T.grad(T.grad(pow_op_zero))(0.0) == 0.0
    assert T.grad(T.grad(pow_op_one))(0.0) == 0.0


def test_power_variable_exponent_at_zero():
    x, y = np.array([0.0, 0.0, 2.0, 1.5]), np.array([0.0, 1.0, 0.0, 2.5])
    got = T.grad(pow_variable)(x, y)
    # exact: 2 * y * x ** (y - 1), with 0 where y == 0
    check(got, [0.0, 2.0, 0.0, 2 * 2.5 * 1.5 ** 1.5])
    x2, y2 = np.array([0.5, 2.0]), np.array([0.0, 2.5])
    check(T.grad(pow_variable, wrt=1)(x2, y2), fd_grad(pow_variable, (x2, y2), 1))
    check(T.grad(pow_negative)(np.array([0.5, -2.0])),
          fd_grad(pow_negative, (np.array([0.5, -2.0]),)))


def column_stack_rows(x):
    return np.sum(np.column_stack(x) ** 2 * np.arange(1.0, 1.0 + x.size))


def column_stack_1d(x, y):
    return np.sum(np.column_stack((x, y * 2.0)) ** 2)


@pytest.mark.parametrize("f, args", [
    (column_stack_rows, (np.array([1.0, -2.0, 0.5]),)),
    (column_stack_1d, (np.array([1.0, -2.0]), np.array([0.5, 3.0]))),
], ids=lambda v: getattr(v, "__name__", ""))
def test_column_stack_of_1d_inputs(f, args):
    check_all(f, args)


def sum_rows_keepdims_false(x):
    return np.sum(np.sin(x), axis=1, keepdims=False)


def test_reduction_to_a_one_element_array():
    """A (1, 3) array summed over axis 1: the (1,) result's cotangent may come as a
    number (1.0), as autograd's grad seeds it."""
    x = np.array([[0.3, -1.2, 2.0]])
    value, vjp = T.vjp(sum_rows_keepdims_false, x)
    check(vjp(1.0), np.cos(x))
    check(vjp(np.array([2.0])), 2.0 * np.cos(x))
