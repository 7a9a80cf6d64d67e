"""The last pass before printing (transpile/in_place.py): temporaries of an elementwise
expression written into one new array (`out=`, `*=`), and np.sum / max / min called as
their ufunc's reduce, where shapes and float64 dtypes are proven.

Each program's gradient is checked three ways: against central differences, with the
arguments left unchanged; bit for bit against the same gradient built without the pass
(the value too); and, where the pass applies, for the in-place forms in its source. The
numba backend folds the pass back (in_place.unlower), checked on the printed code.
"""
import ast

import numpy as np
import pytest

import transpile
from finite_differences import check_gradient
from transpile import in_place, pipeline

RNG = np.random.default_rng(11)


def arr(*shape):
    return RNG.normal(size=shape)


def without_pass(fn, wrt, args, monkeypatch):
    """The gradient (value, grads) and source built with the pass turned off."""
    with monkeypatch.context() as m:
        m.setattr(in_place, "lower", lambda body, rt, env: body)
        pipeline._CACHE.pop(fn, None)
        pipeline._UNITS.pop(fn, None)
        g = transpile.value_and_grad(fn, wrt=wrt)
        out = g(*args)
        source = g.source
    pipeline._CACHE.pop(fn, None)
    pipeline._UNITS.pop(fn, None)
    return out, source


def flat(x):
    return x if isinstance(x, tuple) else (x,)


def check(fn, args, wrt, monkeypatch, lowered=True):
    """Right, the same bits as without the pass, and lowered (or not) as expected."""
    check_gradient(fn, args, wrt)
    (v0, g0), src0 = without_pass(fn, wrt, args, monkeypatch)
    before = [np.copy(a) for a in args]
    g = transpile.value_and_grad(fn, wrt=wrt)
    v1, g1 = g(*args)
    for a, b in zip(args, before):
        assert np.array_equal(a, b)
    assert np.array_equal(v0, v1) and type(v0) is type(v1)
    for a, b in zip(flat(g0), flat(g1)):
        assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype
    src = g.source
    if lowered:
        assert src != src0 and ("out=" in src or "= " in src and ".reduce(" in src), src
    elif lowered is not None:
        assert src == src0, src
    return src


def mlp(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    return np.mean((z - y) ** 2)


def test_an_mlp_writes_its_temporaries_in_place(monkeypatch):
    src = check(mlp, (arr(4, 3), arr(3), arr(3, 2), arr(2), arr(5, 4), arr(5, 2)),
                (0, 1, 2, 3), monkeypatch)
    for line in ("h = np.tanh(h, out=h)", "d_t2 = h ** 2",
                 "d_t2 = np.subtract(1, d_t2, out=d_t2)", "d_t2 *= dh",
                 "db1 = np.add.reduce(d_t2, axis=0)"):
        assert line in src, src


def test_a_target_read_by_its_expression_gets_a_new_buffer(monkeypatch):
    """`d = d + ...` (an adjoint accumulated): the old d is read after the new array is
    made, so the array is a new name, and d is assigned at the end."""
    def f(x, w):
        z = x * w
        return np.sum(np.sin(z) * z + np.cos(z) * x + np.exp(-z * z))
    src = check(f, (arr(6), arr(6)), (0, 1), monkeypatch)
    assert "_b1" in src or "+=" in src, src


@pytest.mark.parametrize("name, fn, shapes", [
    # broadcasting: a row times a column makes the buffer only where the shape is whole
    ("outer-product", lambda a, b: np.sum(np.tanh(a[:, None] * b + 1.0) * a[:, None]),
     [(4,), (3,)]),
    ("bias", lambda W, b, X: np.sum((np.tanh(X @ W + b) - 0.5) ** 2 * 3.0),
     [(3, 2), (2,), (5, 3)]),
    ("size-one-axis", lambda x, y: np.sum(np.exp(x * y - 1.0) / (1.0 + x * x)),
     [(4, 1), (1, 5)]),
    ("keepdims", lambda z: np.sum(z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
                                  * 2.0), [(3, 4)]),
    ("max-shift", lambda z: np.sum(np.exp(z - np.max(z, axis=1, keepdims=True)) * z),
     [(3, 4)]),
    ("minimum", lambda x: np.sum(np.minimum(x, 0.3) * np.maximum(x * 2.0, -0.2) - x),
     [(7,)]),
    ("mask-times-array", lambda x: np.sum((x > 0) * (x * x + 1.0) * 2.5 + x),
     [(6,)]),
    ("int-constants", lambda x: np.sum((2 * x - 1) * (3 - x) / 2), [(5,)]),

    ("unary-minus", lambda x: np.sum(-(x * x) * np.sin(x)), [(5,)]),
    ("matrix", lambda A, B: np.sum(np.tanh(A @ B) * (A @ B) - (A @ B) ** 2), [(3, 4),
                                                                           (4, 3)]),
])
def test_programs_give_the_same_bits_with_and_without_the_pass(name, fn, shapes,
                                                               monkeypatch):
    args = tuple(arr(*s) for s in shapes)
    check(fn, args, tuple(range(len(args))), monkeypatch)


def test_ufuncs_making_booleans_are_no_buffer(monkeypatch):
    """np.isnan, np.signbit of floats make booleans: no float result is written into
    them (nor is anything lowered that their unknown shapes touch)."""
    def f(x):
        return np.sum((np.isnan(x) * 2.0 + x) * (np.signbit(x) + x) * x)
    check(f, (arr(6),), 0, monkeypatch, lowered=None)


def test_booleans_and_integers_are_never_a_buffer(monkeypatch):
    """A product of masks is a boolean array, an int constant times a mask an integer
    one: none of them takes a float result in place (the float64 array is made first)."""
    def f(x):
        m = (x > 0) * (x < 1)
        k = 3 * m
        return np.sum(k * x * x + m * np.sin(x))
    src = check(f, (np.linspace(-1.0, 2.0, 8),), 0, monkeypatch)
    assert "m = (x > 0) * (x < 1)" in src, src      # (not `m = x > 0; m *= x < 1`)


def test_loops_and_branches(monkeypatch):
    def f(x, w):
        s = 0.0
        for i in range(3):
            y = np.tanh(x * w + i) * x
            if i > 0:
                s = s + np.sum(y * y * 0.5)
            else:
                s = s + np.sum(np.exp(-y) * w)
        return s
    check(f, (arr(5), arr(5)), (0, 1), monkeypatch)


def test_scalar_code_and_unknown_shapes_are_left_alone(monkeypatch):
    def scalar(x, w):
        return np.sin(x * w) * x + w
    check(scalar, (0.3, 0.7), (0, 1), monkeypatch, lowered=False)

    def float32(x):
        return np.sum(np.tanh(x) * x * x)
    x = np.linspace(0.1, 1.0, 5).astype(np.float32)
    g0 = transpile.grad(float32)(x)
    assert "out=" not in transpile.grad(float32).source
    assert g0.dtype == np.float32


def test_second_derivatives_do_not_see_the_pass():
    """Code differentiated again copies instead (the pass never runs on it): a Hessian
    of an MLP-like loss against central differences of its gradient."""
    def f(x):
        return np.sum(np.tanh(x * 2.0 + 0.5) * x * x)
    x = arr(4)
    H = transpile.hessian(f)(x)
    g = transpile.grad(f)
    eps = 1e-6
    fd = np.array([(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(4)])
    assert np.allclose(H, fd, atol=1e-5)


def test_unlower_folds_the_pass_back():
    """The numba backend's view: the lowered code folded back is the code before the
    pass, but for `t += a` where the expression had `a + t` (the same bits)."""
    args = (arr(4, 3), arr(3), arr(3, 2), arr(2), arr(5, 4), arr(5, 2))
    g = transpile.grad(mlp, wrt=(0, 1, 2, 3))
    g(*args)
    tree = ast.parse(g.source)
    in_place.unlower(tree.body[0], lambda name: np if name == "np" else None)
    text = ast.unparse(tree)
    assert "out=" not in text and ".reduce(" not in text and "*=" not in text, text
    assert "d_t2 = (1 - h ** 2) * dh" in text and "db1 = np.sum(d_t2, axis=0)" in text


def test_unlower_folds_only_runs_that_start_with_a_new_array():
    """`b = x; b *= 2` is no run (b starts as x's array); in generated code `lower` alone
    writes `d op= e`, on arrays only d holds, so each stays an update of d."""
    src = ("def f(x, y):\n    b = x\n    b *= 2\n    c = x * y\n    c += 1.0\n"
           "    d = helper(x)\n    d -= y\n    return b, c, d\n")
    tree = ast.parse(src)
    in_place.unlower(tree.body[0], lambda name: np if name == "np" else None)
    assert ast.unparse(tree) == ("def f(x, y):\n    b = x\n    b = b * 2\n"
                                 "    c = x * y + 1.0\n    d = helper(x)\n    d = d - y\n"
                                 "    return (b, c, d)")


@pytest.mark.parametrize("name, fn, shapes", [
    # a view of an adjoint taken before it is added into
    ("view", lambda x, w: np.sum(np.tanh(x * w)[1:] * (x * 2.0)[1:]) + np.sum(x * x * w),
     [(6,), (6,)]),
    # one value under two names, then both used
    ("alias", lambda x, w: np.sum((lambda y: y * y + y * w)(x * w)), [(5,), (5,)]),
    # element writes into a new array, then arithmetic on it
    ("element-writes", None, [(5,), (5,)]),
    # an adjoint accumulated in a loop and read by the next pass
    ("loop-accumulation", None, [(4,), (4,)]),
])
def test_arrays_other_names_hold_are_never_written_in_place(name, fn, shapes, monkeypatch):
    def element_writes(x, w):
        y = x * 2.0
        y[0] = 5.0
        z = y * w + x
        z[1:] = z[1:] * 3.0
        return np.sum(z * z + y * x)

    def loop_accumulation(x, w):
        acc = x * 0.0
        for i in range(3):
            acc = acc + np.sin(x * w + i) * x
            acc = acc * w
        return np.sum(acc * acc)
    fn = {"element-writes": element_writes, "loop-accumulation": loop_accumulation}.get(
        name, fn)
    args = tuple(arr(*s) for s in shapes)
    check(fn, args, (0, 1), monkeypatch, lowered=None)


def test_functions_with_complex_values_are_left_alone(monkeypatch):
    """A complex intermediate (its adjoint complex too) while shapes are known: no float64
    array would take the complex products, so nothing is lowered."""
    def f(x, w):
        z = np.exp(1j * x) * w
        return np.sum(np.abs(z * x + w) ** 2 * x)
    check(f, (arr(5), arr(5)), (0, 1), monkeypatch, lowered=False)
