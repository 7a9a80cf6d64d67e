"""Wrong numbers that are now right, or one clear error at the user's line.

* Reverse mode through a branch `np.where` does not select (and other masks: maximum,
  minimum, clip, indexing): that branch contributes exactly zero, even where its partial
  derivatives are infinite or nan.
* `np.r_` and `np.c_` (their concatenate equivalents); a subscript of a constant object
  by a value carrying a derivative is refused unless it is plain indexing of an array,
  list, tuple, dict or string.
* `x ** y` with an array x, differentiated with respect to the exponent.
* Builtin `sum` over a 2-d array, with a start value, over a list of arrays.
* The gradient leaves every argument as f leaves it (in-place writes, appends).
* A float input's gradient has the input's dtype.

Every derivative is checked against central finite differences, with exact shapes.
Programs are module-level defs (transpile reads their source).
"""
import inspect
import types

import numpy as np
import pytest

import transpile as T
from finite_differences import central_wrt as fd_grad, check


def marked_line(f, mark="# refused"):
    lines, first = inspect.getsourcelines(f)
    return first + next(k for k, text in enumerate(lines) if mark in text)


def refused_at(f, args, match, wrt=0):
    with pytest.raises(T.TranspileError, match=match) as info:
        T.grad(f, wrt=wrt)(*args)
    assert f"{__file__}:{marked_line(f)}" in str(info.value), str(info.value)


# --- 1. the branch np.where does not select contributes zero ----------------------------
def sqrt_or_zero(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def log_or_zero(x):
    return np.sum(np.where(x > 0, np.log(x), 0))


def reciprocal_or_zero(x):
    return np.sum(np.where(x != 0, 1 / x, 0))


def zero_or_sqrt(x):
    return np.sum(np.where(x > 0, 0.0, np.sqrt(-x)) * 3.0)


def product_of_nans_or_x(x):
    # both factors are nan where x <= 0: the product rule meets nan * 0 on both sides
    return np.sum(np.where(x > 0, np.sqrt(x) * np.log(x), x))


def where_then_chain(x):
    y = np.where(x > 0, np.sqrt(x) + 1.0, 2.0 * x)
    return np.sum(np.exp(y) * x)


def where_of_where(x):
    inner = np.where(x > -2, np.log(x + 2), 0.0)
    return np.sum(np.where(x > 0, np.sqrt(x), inner))


def clipped_log(x):
    return np.sum(np.maximum(np.log(x), -5.0))


def index_after_sqrt(x):
    return np.sum(np.sqrt(x)[1:])


def mask_index_after_log(x):
    return np.sum(np.log(x)[x > 0])


def where_in_callee_helper(v):
    return np.sqrt(v)


def where_of_callee(x):
    return np.sum(np.where(x > 0, where_in_callee_helper(x), 0.0))


def scalar_where(x):
    return float(np.where(x > 0, np.sqrt(x), 0.0)) * 2.0


MASKED = [
    (sqrt_or_zero, np.array([-1.0, 4.0, 0.0, 2.0])),
    (log_or_zero, np.array([-1.0, 4.0, 0.0, 2.0])),
    (reciprocal_or_zero, np.array([0.0, 4.0, -2.0])),
    (zero_or_sqrt, np.array([-1.0, 4.0, -3.0])),
    (product_of_nans_or_x, np.array([-1.0, 4.0, 2.0, -0.5])),
    (where_then_chain, np.array([-1.0, 0.5, 2.0])),
    (where_of_where, np.array([-3.0, -1.0, 0.5, 2.0])),
    (clipped_log, np.array([0.0, 1e-3, 2.0])),
    (index_after_sqrt, np.array([-1.0, 4.0, 2.0])),
    (mask_index_after_log, np.array([-1.0, 4.0, 0.0, 2.0])),
]


@pytest.mark.parametrize("f, x", MASKED, ids=[f.__name__ for f, _ in MASKED])
def test_unselected_values_contribute_zero(f, x):
    with np.errstate(all="ignore"):
        value, g = T.value_and_grad(f)(x.copy())
        assert value == f(x.copy())
        assert np.all(np.isfinite(g)), g
        expected = fd_grad(f, [x], eps=1e-7)
    # finite differences away from the kinks at 0 (there: the convention, finite)
    away = np.abs(x) > 1e-2
    assert g.shape == x.shape
    check(g[away], expected[away], atol=1e-5)


def test_unselected_values_through_a_callee():
    x = np.array([-1.0, 4.0])
    with np.errstate(all="ignore"):
        check(T.grad(where_of_callee)(x), [0.0, 0.25])


def test_unselected_scalar_branch():
    with np.errstate(all="ignore"):
        check(T.grad(scalar_where)(-1.0), 0.0)
        check(T.grad(scalar_where)(4.0), 0.5)


def test_vjp_and_hvp_of_where():
    x = np.array([-1.0, 4.0, 2.0])
    with np.errstate(all="ignore"):
        value, pullback = T.vjp(sqrt_or_zero, x)
        check(pullback(1.0), [0.0, 0.25, 0.5 / np.sqrt(2.0)])
        v = np.array([1.0, 1.0, 1.0])
        h = T.hvp(sqrt_or_zero)(x, v=v)
    # d2/dx2 sqrt(x) = -1/4 x^-1.5 on the selected entries, 0 elsewhere
    check(h, [0.0, -0.25 * 4.0 ** -1.5, -0.25 * 2.0 ** -1.5])


@pytest.mark.parametrize("f", [sqrt_or_zero, product_of_nans_or_x, index_after_sqrt])
@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
def test_second_order_keeps_the_zeros(f, mode):
    x, v = np.array([-1.0, 4.0, 2.0]), np.array([1.0, 0.5, 2.0])
    eps = 1e-6
    with np.errstate(all="ignore"):
        h = T.hvp(f, mode=mode)(x, v=v)
        # central differences of the gradient along v (the gradient is checked above)
        expected = (T.grad(f)(x + eps * v) - T.grad(f)(x - eps * v)) / (2 * eps)
    check(h, expected, atol=1e-5)


def test_grad_of_grad_keeps_the_zeros():
    with np.errstate(all="ignore"):
        gg = T.grad(T.grad(scalar_where))
        check(gg(-1.0), 0.0)
        check(gg(4.0), fd_grad(T.grad(scalar_where), [4.0]), atol=1e-5)


def guarded_products_only_after_masks(x, w):
    return np.sum(np.tanh(x * w) / (1.0 + x * x))


def test_no_guard_without_a_mask():
    """The guarded product appears only where a mask can hide a non-finite partial."""
    x, w = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    src = T.value_and_grad(guarded_products_only_after_masks)
    check(src(x, w)[1], fd_grad(guarded_products_only_after_masks, [x, w]))
    assert "mul_masked" not in src.source
    g = T.value_and_grad(sqrt_or_zero)
    with np.errstate(invalid="ignore"):
        g(np.array([1.0, -1.0]))
    assert "mul_masked" in g.source


# --- 2. np.r_, np.c_, subscripts of constant objects -------------------------------------
def r_pair(x):
    return np.sum(np.r_[x, x] ** 2)


def r_with_scalars(x, s):
    return np.sum(np.r_[x, s, 2.0 * s] ** 3)


def c_pair(x):
    return np.sum(np.c_[x, 2.0 * x] ** 2 * np.arange(1.0, 3.0))


def c_two_d(x):
    return np.sum(np.c_[x, x * x] ** 2)


def test_r_and_c_concatenate():
    x = np.array([1.0, 2.0, -0.5])
    for f in (r_pair, c_pair):
        value, g = T.value_and_grad(f)(x)
        assert value == f(x)
        check(g, fd_grad(f, [x]))
    a = np.arange(6.0).reshape(2, 3) / 4
    value, g = T.value_and_grad(c_two_d)(a)
    assert value == c_two_d(a)
    check(g, fd_grad(c_two_d, [a]))
    for i in (0, 1):
        check(T.grad(r_with_scalars, wrt=i)(x, 1.5), fd_grad(r_with_scalars, [x, 1.5], i))
    _, t = T.jvp(r_pair, (x,), (np.ones(3),))
    check(t, fd_grad(r_pair, [x]) @ np.ones(3))


def r_with_ranges(x):
    return np.sum(np.r_[x, 1:4, x * x, 0:1:3j, 2:8:2] ** 2 * np.arange(1.0, 16.0))


def c_with_a_range(x):
    return np.sum(np.c_[x, 0:3] ** 3)


# a module re-exporting NumPy's functions (as autograd.numpy does)
reexport = types.ModuleType("reexport")
reexport.__dict__.update({k: getattr(np, k) for k in (
    "r_", "c_", "sum", "concatenate", "atleast_1d", "column_stack", "arange", "linspace")})


def r_of_a_reexport(x):
    return reexport.sum(reexport.r_[x, 2.0 * x, 0:2] ** 2) + np.sum(reexport.c_[x, x] ** 3)


def test_r_and_c_with_ranges_and_through_a_module_reexporting_numpy():
    """Slices in np.r_ / np.c_ are ranges (np.arange; an imaginary step np.linspace)."""
    x = np.array([1.0, 2.0, -0.5])
    for f in (r_with_ranges, c_with_a_range, r_of_a_reexport):
        value, g = T.value_and_grad(f)(x)
        assert value == pytest.approx(f(x), rel=1e-14)
        check(g, fd_grad(f, [x]))
        _, t = T.jvp(f, (x,), (np.ones(3),))
        check(t, fd_grad(f, [x]) @ np.ones(3))
    H = T.hessian(r_with_ranges)(x)
    check(H, np.array([fd_grad(lambda v: T.grad(r_with_ranges)(v)[k], [x])
                       for k in range(3)]))


def s_of(x):
    return np.sum(np.s_[x] * 2.0)  # refused


def mgrid_of(x):
    return np.sum(np.mgrid[0:x:3j])  # refused


TABLE = np.array([10.0, 20.0, 30.0])


def constant_table(x):
    i = int(x[0])
    return TABLE[i] * x[1] + np.sum(x)


def test_subscripts_of_constant_objects():
    refused_at(s_of, [np.array([1.0, 2.0])], "subscript")
    refused_at(mgrid_of, [2.0], "subscript")
    x = np.array([1.2, 3.0])
    check(T.grad(constant_table)(x), fd_grad(constant_table, [x]))


# --- 3. x ** y, differentiated in the exponent -------------------------------------------
def array_power(x, y):
    return np.sum(x ** y)


def scalar_power(x, y):
    return x ** y


def test_power_of_an_array_in_the_exponent():
    x = np.array([1.0, 2.0, 0.5])
    for i in (0, 1):
        check(T.grad(array_power, wrt=i)(x, 2.5), fd_grad(array_power, [x, 2.5], i))
    y = np.array([1.5, 2.0, 3.0])
    check(T.grad(array_power, wrt=1)(2.0, y), fd_grad(array_power, [2.0, y], 1))
    # at x <= 0 the exponent's partial is 0 (as for scalars)
    check(T.grad(array_power, wrt=1)(np.array([0.0, 2.0]), 2.0), 4.0 * np.log(2.0))
    check(T.grad(scalar_power, wrt=1)(2.0, 1.5), fd_grad(scalar_power, [2.0, 1.5], 1))
    _, t = T.jvp(array_power, (x, 2.5), (None, 1.0))
    check(t, fd_grad(array_power, [x, 2.5], 1))


def test_power_in_the_exponent_second_order():
    h = T.grad(T.grad(scalar_power, wrt=1), wrt=1)(2.0, 1.5)
    check(h, 2.0 ** 1.5 * np.log(2.0) ** 2)


def test_power_in_the_exponent_jit():
    pytest.importorskip("numba")
    g = T.grad(scalar_power, wrt=(0, 1), jit=True)(2.0, 1.5)
    check(g[1], fd_grad(scalar_power, [2.0, 1.5], 1))


# --- 4. builtin sum of arrays ----------------------------------------------------------
def sum_rows(x):
    return np.sum(sum(x) ** 2)


def sum_rows_start(x, s):
    return np.sum(sum(x, s) ** 2)


def sum_list_of_arrays(x, y):
    return np.sum(sum([x, 2.0 * y, x * x]) ** 2)


def sum_vector(x):
    return sum(x) ** 2


def test_builtin_sum_of_arrays():
    x = np.arange(6.0).reshape(2, 3) / 4
    g = T.grad(sum_rows)(x)
    assert isinstance(g, np.ndarray)
    check(g, fd_grad(sum_rows, [x]))
    for i, s in ((0, 1.5), (1, 1.5), (1, np.array([1.0, 2.0, 3.0]))):
        g = T.grad(sum_rows_start, wrt=i)(x, s)
        assert isinstance(g, (np.ndarray, float))
        check(g, fd_grad(sum_rows_start, [x, s], i))
    y = np.array([1.0, -2.0, 0.5])
    v = np.array([0.5, 1.0, 2.0])
    for i in (0, 1):
        check(T.grad(sum_list_of_arrays, wrt=i)(v, y), fd_grad(sum_list_of_arrays, [v, y], i))
    check(T.grad(sum_vector)(y), fd_grad(sum_vector, [y]))
    _, t = T.jvp(sum_rows, (x,), (np.ones((2, 3)),))
    check(t, np.sum(fd_grad(sum_rows, [x])))


# --- 5. the gradient leaves the arguments as f leaves them -------------------------------
def double_first(a):
    a[0] = a[0] * 2.0
    return np.sum(a * a)


def double_all(a):
    a *= 2
    return np.sum(a * a)


def write_in_loop(a):
    for i in range(3):
        a[i] = a[i] * a[(i + 1) % 3]
    return np.sum(np.sin(a))


def write_list(xs):
    xs[0] = xs[0] * 3.0
    xs.append(xs[1] * xs[0])
    return xs[0] * xs[1] + xs[2]


def write_scalar_array(a, s):
    a[1] = a[1] * s
    return np.sum(a) * s


def copy_then_write(a):
    a = a.copy()
    a[0] = a[0] * 2.0
    return np.sum(a * a)


def write_rebind_write(a):
    a[0] = a[0] * 3.0               # the caller's array
    b = a * 1.0
    a = b * a
    a[1] = a[1] * a[0]              # a new array
    return np.sum(np.sin(a))


MUTATING = [
    (double_first, (np.array([1.0, 2.0]),), 0),
    (copy_then_write, (np.array([1.0, 2.0]),), 0),
    (write_rebind_write, (np.array([0.5, 0.25]),), 0),
    (double_all, (np.array([1.0, 2.0]),), 0),
    (write_in_loop, (np.array([1.0, 2.0, 0.5]),), 0),
    (write_scalar_array, (np.array([1.0, 2.0]), 3.0), 0),
    (write_scalar_array, (np.array([1.0, 2.0]), 3.0), 1),
]


def _copied(args):
    return [a.copy() if isinstance(a, np.ndarray) else list(a) if isinstance(a, list) else a
            for a in args]


@pytest.mark.parametrize("f, args, wrt", MUTATING,
                         ids=[f"{f.__name__}-{w}" for f, _, w in MUTATING])
@pytest.mark.parametrize("how", ["grad", "value_and_grad", "checkpoint"])
def test_gradient_leaves_arguments_as_f_does(f, args, wrt, how):
    after_f = _copied(args)
    f(*after_f)
    mine = _copied(args)
    kw = {"checkpoint": 1} if how == "checkpoint" else {}
    out = (T.value_and_grad if how == "value_and_grad" else T.grad)(f, wrt=wrt, **kw)(*mine)
    g = out[1] if how == "value_and_grad" else out
    for a, b in zip(mine, after_f):
        assert np.array_equal(a, b), (a, b)
    check(g, fd_grad(f, args, wrt))


def test_gradient_leaves_a_list_argument_as_f_does():
    xs = [1.0, 2.0]
    after_f = list(xs)
    write_list(after_f)
    mine = list(xs)
    g = T.grad(write_list)(mine)
    assert mine == after_f
    expected = [fd_grad(lambda a, b: write_list([a, b]), [1.0, 2.0], i) for i in (0, 1)]
    assert np.allclose(g, expected)


def test_vjp_leaves_arguments_as_f_does():
    a = np.array([1.0, 2.0])
    after_f = a.copy()
    double_first(after_f)
    value, pullback = T.vjp(double_first, a)
    assert np.array_equal(a, after_f)
    for _ in range(3):
        check(pullback(1.0), fd_grad(double_first, [np.array([1.0, 2.0])]))
        assert np.array_equal(a, after_f), a


# --- 6. the gradient has the dtype of a float input --------------------------------------
def times_float64_array(x):
    return np.sum(x * np.array([0.1, 0.2]))


def times_float64_scalar(x):
    return np.sum(np.exp(x) * np.float64(0.1))


def float32_scalar(x):
    return x * np.float64(3.0)


def test_gradient_dtype_is_the_input_dtype():
    x = np.ones(2, np.float32)
    for f in (times_float64_array, times_float64_scalar):
        g = T.grad(f)(x)
        assert g.dtype == np.float32 and g.shape == (2,), (f.__name__, g.dtype)
        check(g, fd_grad(f, [x.astype(float)]), atol=1e-6)
        _, pullback = T.vjp(f, x)
        assert pullback(1.0).dtype == np.float32
    g = T.grad(times_float64_array)(np.ones(2))
    assert g.dtype == np.float64
    g = T.grad(float32_scalar)(np.float32(2.0))
    assert np.asarray(g).dtype == np.float32 and np.ndim(g) == 0


def two_args(x, y):
    return x * x * y


def test_a_partial_object_is_differentiated_not_a_crash():
    import functools
    p = functools.partial(two_args, y=1.5)
    expected = 2 * 2.0 * 1.5                        # d(x x y)/dx at x = 2
    assert T.grad(p)(2.0) == pytest.approx(expected)
    assert T.value_and_grad(p)(2.0) == pytest.approx((6.0, expected))
    assert T.vjp(p, 2.0)[1](1.0) == pytest.approx(expected)


CONST = np.ones((3, 2))


def constant_of_x(x):
    return np.sum(CONST * 2.0)


def piecewise_constant(x):
    return np.sum(np.ceil(x) * 3.0 + np.sign(x))


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
@pytest.mark.parametrize("f, x", [(constant_of_x, np.full((3, 2), 0.3)),
                                  (piecewise_constant, np.array([0.3, 1.4, -2.2]))])
def test_a_zero_hessian_vector_product_has_the_input_shape(f, x, mode):
    v = np.linspace(0.5, 1.5, x.size).reshape(x.shape)
    hv = T.hvp(f, mode=mode)(x, v=v)
    h = 1e-5                                # central differences of the gradient along v
    ref = (T.grad(f)(x + h * v) - T.grad(f)(x - h * v)) / (2 * h)
    assert isinstance(hv, np.ndarray) and hv.shape == x.shape
    assert np.allclose(hv, ref)
