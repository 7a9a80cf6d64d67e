"""Aliasing, in-place writes, containers and iteration: exact, or one clear error.

Every program here either gives the primal value of calling it and a gradient equal to
central finite differences, or raises one TranspileError pointing at the line marked
`# refused` in this file. Programs are module-level defs (transpile reads their source).
"""
import inspect

import numpy as np
import pytest

import transpile


def fd(f, args, i, h=1e-6):
    """Central differences of the scalar f w.r.t. argument i (a number, list or array)."""
    def at(value):
        a = [list(x) if isinstance(x, list) else x.copy() if isinstance(x, np.ndarray) else x
             for x in args]
        a[i] = value
        return float(f(*a))

    x = args[i]
    if isinstance(x, np.ndarray):
        g = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            hi, lo = x.copy(), x.copy()
            hi[idx] += h
            lo[idx] -= h
            g[idx] = (at(hi) - at(lo)) / (2 * h)
        return g
    if isinstance(x, list):
        g = []
        for j in range(len(x)):
            hi, lo = list(x), list(x)
            hi[j] += h
            lo[j] -= h
            g.append((at(hi) - at(lo)) / (2 * h))
        return g
    return (at(x + h) - at(x - h)) / (2 * h)


def copies(args):
    return [list(a) if isinstance(a, list) else a.copy() if isinstance(a, np.ndarray) else a
            for a in args]


def exact(f, *args, wrt=0):
    """value_and_grad equals (f(*args), finite differences)."""
    value, grad = transpile.value_and_grad(f, wrt=wrt)(*copies(args))
    assert np.allclose(value, f(*copies(args)), atol=1e-9), (value, f(*copies(args)))
    expected = fd(f, args, wrt)
    assert np.allclose(np.asarray(grad, float), np.asarray(expected, float), atol=1e-5), \
        (grad, expected)
    assert np.shape(grad) == np.shape(expected)
    return grad


def refused(f, *args, wrt=0, mode="reverse"):
    """One TranspileError at the line marked `# refused` in f."""
    lines, first = inspect.getsourcelines(f)
    marked = [first + k for k, text in enumerate(lines) if "# refused" in text]
    with pytest.raises(transpile.TranspileError) as err:
        if mode == "reverse":
            transpile.grad(f, wrt=wrt)(*copies(args))
        else:
            transpile.jvp(f, tuple(copies(args)), tuple(
                np.ones_like(a) if isinstance(a, np.ndarray) else 1.0 for a in args))
    assert f"test_trust_aliasing.py:{marked[0]}:" in str(err.value), str(err.value)
    return str(err.value)


# --- a list passed to a callee twice: its adjoint is summed elementwise ------------------

def inner(ws, x):
    return ws[0] * x + ws[1] * x


def twice(ws, x):
    return inner(ws, x) + inner(ws, 2.0 * x)


def mlp_l2(ws, x):
    h = np.tanh(ws[0] @ x)
    out = np.sum(ws[1] @ h)
    return out + 0.1 * l2(ws) + 0.01 * l2(ws)


def l2(ws):
    return np.sum(ws[0] * ws[0]) + np.sum(ws[1] * ws[1])


def test_list_argument_passed_twice():
    exact(twice, [1.0, 2.0], 3.0)


def test_weight_list_used_by_two_callees():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 2)), rng.normal(size=(2, 3))]
    x = rng.normal(size=2)
    grad = transpile.grad(mlp_l2)(ws, x)
    for k in range(2):
        def part(w, k=k):
            v = list(ws)
            v[k] = w
            return mlp_l2(v, x)
        assert np.allclose(grad[k], fd(part, [ws[k]], 0), atol=1e-5)


# --- aliases and views written in place ----------------------------------------------------

def alias_write(a):
    b = a
    b[0] = b[0] * 3.0
    return np.sum(a * a)


def alias_list_append(x):
    xs = [x]
    ys = xs
    ys.append(x * x)
    return xs[0] + xs[1]


def alias_augassign(x):
    x = x * 1.0
    y = x
    y += 1
    return np.sum(x * x)


def test_plain_alias_written_through():
    exact(alias_write, np.array([1.0, 2.0]))
    exact(alias_list_append, 3.0)
    exact(alias_augassign, np.array([1.0, 2.0]))


def view_write(a):
    v = a[1:]
    v[0] = v[0] * 3.0   # refused
    return np.sum(a * a)


def view_augassign(a):
    a = a * 1.0
    v = a[1:]
    v *= 2   # refused
    return np.sum(a * a)


def transpose_write(a):
    a = a * 1.0
    a.T[0, 1] = 0.0   # refused
    return np.sum(a * a)


def reshape_write(a):
    a = a * 1.0
    a.reshape(4)[0] = 0.0   # refused
    return np.sum(a * a)


def ravel_write(a):
    a = a * 1.0
    r = a.ravel()
    r[0] = 0.0   # refused
    return np.sum(a * a)


def asarray_write(a):
    b = np.asarray(a)
    b[0] = 0.0   # refused
    return np.sum(a * a)


def view_read_after_base_write(a):
    a = a * 1.0
    v = a[1:]
    a[1] = 5.0 * a[0]   # refused
    return np.sum(v * v)


def shared_cells(x):
    c = [x, 1.0]
    L = [c, c]
    L[0][0] = 0.0   # refused
    return L[1][0] + x


@pytest.mark.parametrize("f, args", [
    (view_write, (np.array([1.0, 2.0, 3.0]),)),
    (view_augassign, (np.array([1.0, 2.0, 3.0]),)),
    (transpose_write, (np.ones((2, 2)),)),
    (reshape_write, (np.ones((2, 2)),)),
    (ravel_write, (np.ones((2, 2)),)),
    (asarray_write, (np.array([1.0, 2.0]),)),
    (view_read_after_base_write, (np.array([1.0, 2.0, 3.0]),)),
    (shared_cells, (3.0,)),
])
def test_write_through_a_view_or_shared_element_is_refused(f, args):
    msg = refused(f, *args)
    assert "aliasing" in msg
    msg = refused(f, *args, mode="forward")
    assert "aliasing" in msg


# --- in-place updates of arrays keep NumPy's meaning -------------------------------------

def augassign_parameter(x):
    x *= 2.0
    return np.sum(x * x)


def augassign_fresh(x):
    y = x * 1.0
    y += x * x
    y *= 3.0
    return np.sum(y)


def test_augmented_assignment_on_arrays():
    exact(augassign_parameter, np.array([1.0, 2.0]))
    exact(augassign_fresh, np.array([1.0, 2.0]))


def fresh_fill(x):
    y = np.zeros(3)
    for i in range(3):
        y[i] = x[i] * x[(i + 1) % 3]
    return np.sum(y * y)


def colon_store(a):
    b = np.zeros(2)
    b[:] = a * a
    b[...] += a
    return np.sum(b * a)


def test_writes_into_fresh_arrays():
    exact(fresh_fill, np.array([1.0, 2.0, 3.0]))
    exact(colon_store, np.array([1.0, 2.0]))


# --- nested element writes: the holder is stored back -------------------------------------

def nested_list_store(x):
    W = [[0.0, 0.0], [0.0, 0.0]]
    W[0][1] = x * x
    W[1][0] += 3.0 * x
    return W[0][1] * W[1][0] + W[1][1]


def nested_comprehension_rows(x):
    W = [[0.0 for j in range(2)] for i in range(2)]
    for i in range(2):
        for j in range(2):
            W[i][j] = x * (i + 1) + j * x * x
    return W[0][0] * W[1][1] + W[0][1]


def nested_array_store(a):
    b = a * 1.0
    b[0][1] = b[0][0] * b[1][1]
    return np.sum(b * b)


def test_nested_element_writes():
    exact(nested_list_store, 3.0)
    exact(nested_comprehension_rows, 1.5)
    exact(nested_array_store, np.array([[1.0, 2.0], [3.0, 4.0]]))


# --- callees and nested defs that change their arguments ------------------------------------

def appender(ys, v):
    ys.append(v)


def calls_appender(x):
    xs = [x]
    appender(xs, x * x)   # refused
    return xs[0] + xs[1]


def setter(ys, v):
    ys[0] = v
    return 0.0


def calls_setter(x):
    xs = [x, 1.0]
    z = setter(xs, x * x)   # refused
    return xs[0] + z


def nested_def_appends(x):
    out = []

    def add(v):
        out.append(v * v)   # refused
    add(x)
    return out[0]


def test_mutating_callees_are_refused():
    assert "in place" in refused(calls_appender, 3.0)
    assert "in place" in refused(calls_setter, 3.0)
    assert "nested function" in refused(nested_def_appends, 3.0)
    assert "nested function" in refused(nested_def_appends, 3.0, mode="forward")


# --- iteration: what Python iterates ---------------------------------------------------------

def grows_while_walked(x):
    xs = [x]
    for v in xs:
        if len(xs) < 3:
            xs.append(v * 2.0)
    return sum(xs)


def grows_with_enumerate(x):
    xs = [x]
    s = 0.0
    for i, v in enumerate(xs):
        s = s + v * (i + 1)
        if i < 2:
            xs.append(v * v)
    return s


def rebound_while_walked(x):
    xs = [x, 2.0 * x]
    total = 0.0
    for v in xs:
        total = total + v
        xs = [w * 3.0 for w in xs]
    return total + xs[0]


def test_loops_over_lists_that_change():
    exact(grows_while_walked, 1.0)
    exact(grows_with_enumerate, 1.3)
    exact(rebound_while_walked, 1.0)


def dict_keys(x):
    d = {"a": 1.0, "b": 2.0}
    s = 0.0
    for k in d:
        s = s + d[k] * x
    return s


def dict_items(x):
    d = {"a": 1.0, "b": 2.0}
    s = 0.0
    for k, v in d.items():
        s = s + v * x * x
    for v in d.values():
        s = s + v * x
    return s


def test_dicts_of_constants():
    exact(dict_keys, 1.0)
    exact(dict_items, 1.5)


def max_key(x):
    xs = [x, 2.0 * x, -3.0 * x]
    return max(xs, key=abs) + min(xs, key=abs) * x


def max_key_lambda(x):
    pairs = [x, x * x, 0.5 * x]
    return max(pairs, key=lambda v: -v) * 2.0


def test_max_min_with_key():
    exact(max_key, 1.0)
    exact(max_key, -0.7)
    exact(max_key_lambda, 1.5)
    value, tangent = transpile.jvp(max_key, (1.0,), (1.0,))
    assert np.isclose(tangent, fd(max_key, [1.0], 0), atol=1e-5)


def dict_argument(x, d):
    s = 0.0
    for k in d:
        s = s + d[k] * x
    for k, v in d.items():
        s = s + v * x * x
    return s + max(d.values(), key=abs) * x


def test_dict_argument_walked_by_keys():
    d = {"a": 1.0, "b": -2.0}
    value, grad = transpile.value_and_grad(dict_argument)(1.5, d)
    assert np.isclose(value, dict_argument(1.5, d))
    assert np.isclose(grad, fd(lambda x: dict_argument(x, d), [1.5], 0), atol=1e-5)
