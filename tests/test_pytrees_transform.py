"""Dicts and objects inside differentiated functions: dict parameters read by key, by loop
variable, through .get/.items()/.values(); dicts made inside (displays, dict(), dict
comprehensions, stores, update); writes into a dict the caller passed; attribute reads of
objects, NamedTuples and dataclasses, and attribute stores. Reverse mode, forward mode and
second order; every leaf of every structure is checked against central finite
differences, and the caller's dicts hold after a gradient what they hold after a plain
call."""
import copy
import dataclasses
import operator
from typing import NamedTuple

import numpy as np
import pytest

import transpile
from transpile import tree
from transpile.errors import TranspileError

from finite_differences import central


# --- checking every leaf ------------------------------------------------------------------

def _float_leaf(x):
    return isinstance(x, float) or isinstance(x, np.ndarray) and x.dtype.kind == "f"


def leaf_differences(f, args, i, eps=1e-6):
    """Central differences of scalar f(*args) with respect to each leaf of args[i] (None
    for leaves that carry no derivative); every call gets its own copy of the arguments,
    so writes into them cannot leak between calls."""
    leaves, structure = tree.flatten(args[i])
    out = []
    for j, leaf in enumerate(leaves):
        if not _float_leaf(leaf):
            out.append(None)
            continue

        def at(v, j=j):
            new = list(leaves)
            new[j] = v
            a = copy.deepcopy(list(args))
            a[i] = tree.unflatten(structure, copy.deepcopy(new))
            return float(f(*a))
        out.append(central(at, leaf, eps))
    return out


def gradient_leaves(value, adjoint):
    """The gradient of `value` from the adjoint the generated code returned, leaf by
    leaf (zeros where nothing flowed)."""
    shaped = tree.like(value, adjoint, lambda x, g: "none" if not _float_leaf(x) else (
        np.zeros_like(x) if g is None or (type(g) in (int, float) and g == 0 and
                                           not isinstance(x, float)) else g))
    return tree.leaves(shaped)


def check_leaves(got, expected, atol=1e-5):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e is None:
            continue
        assert np.shape(g) == np.shape(e), (g, e)
        assert np.allclose(g, e, atol=atol, rtol=1e-5), (g, e)


def check_grad(f, args, i):
    """grad of f with respect to argument i against central differences, leaf by leaf;
    the arguments hold after the gradient what they hold after a plain call."""
    plain = copy.deepcopy(list(args))
    value = f(*plain)
    given = copy.deepcopy(list(args))
    g = transpile.grad(f, i)(*given)
    assert _same(given, plain), (given, plain)
    expected = leaf_differences(f, args, i)
    check_leaves(gradient_leaves(args[i], g), expected)
    v2, _ = transpile.value_and_grad(f, i)(*copy.deepcopy(list(args)))
    assert np.allclose(v2, value)
    return g


def _same(a, b):
    la, da = tree.flatten(a)
    lb, db = tree.flatten(b)
    if da != db:
        return False
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
               for x, y in zip(la, lb))


def check_jvp(f, args, i, tangent):
    """jvp along `tangent` (a structure like args[i]) against central differences along
    that direction."""
    tangents = [None] * len(args)
    tangents[i] = tangent
    value, t = transpile.jvp(f, tuple(copy.deepcopy(list(args))), tuple(tangents))
    assert np.allclose(value, f(*copy.deepcopy(list(args))))

    def along(eps):
        a = copy.deepcopy(list(args))
        a[i] = tree.like(args[i], tangent, lambda x, d: x + eps * d if _float_leaf(x)
                         and d is not None else x)
        return float(f(*a))
    expected = central(along, 0.0)
    assert np.allclose(t, expected, atol=1e-5), (t, expected)


rng = np.random.default_rng(0)


# --- dict parameters read inside ----------------------------------------------------------

def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    loss = np.mean((out - y) ** 2)
    reg = 0.0
    for name in params:
        if name.startswith("W"):
            reg = reg + np.sum(params[name] ** 2)
    return loss + params.get("lam", 0.01) * reg


def _mlp_params():
    return {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4),
            "W2": rng.normal(size=4), "b2": 0.3}


def scaled(p, x):
    return np.sum(p["w"] * p["b"] * x) + p["b"]


def test_one_gradient_for_dicts_of_numbers_and_of_arrays():
    g = transpile.grad(scaled)
    for p in ({"w": 0.5, "b": 1.0}, {"w": rng.normal(size=3), "b": 1.0},
              {"w": 0.5, "b": 1.0}):
        out = g(p, np.arange(3.0))
        assert np.shape(out["w"]) == np.shape(p["w"]) and np.shape(out["b"]) == ()
        check_leaves(gradient_leaves(p, out), leaf_differences(scaled, (p, np.arange(3.0)),
                                                               0))


def scaled_fields(p, x):
    return np.sum(p.w * p.b * x) + p.b


def test_one_gradient_for_namedtuples_of_numbers_and_of_arrays():
    g = transpile.grad(scaled_fields)
    for p in (Params(0.5, 1.0), Params(rng.normal(size=3), 1.0)):
        out = g(p, np.arange(3.0))
        check_leaves(gradient_leaves(p, out), leaf_differences(
            scaled_fields, (p, np.arange(3.0)), 0))
        assert np.shape(out[1]) == ()


def test_dict_of_weights_mlp_loss():
    p = _mlp_params()
    x, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    g = check_grad(mlp_loss, (p, x, y), 0)
    assert set(g) == set(p)
    check_grad(mlp_loss, (p, x, y), 1)


def test_dict_get_with_default_present_and_missing():
    p = _mlp_params()
    p["lam"] = 0.5
    x, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    check_grad(mlp_loss, (p, x, y), 0)           # lam is there: its gradient too


def items_values_keys(d, x):
    s = 0.0
    for k, v in d.items():
        s = s + v * x
    for v in d.values():
        s = s + v * v
    for k in d.keys():
        s = s + d[k] * 2.0
    for k in sorted(d):
        s = s + len(d) * d[k]
    if "b" in d and isinstance(d, dict):
        s = s + d["b"] ** 3
    return s


def test_items_values_keys_sorted_len_in_isinstance():
    d = {"b": 1.5, "a": -0.7, "c": 2.0}
    check_grad(items_values_keys, (d, 0.9), 0)
    check_grad(items_values_keys, (d, 0.9), 1)


def nested(params, x):
    s = 0.0
    for i in range(len(params["layers"])):
        layer = params["layers"][i]
        x = np.tanh(layer["W"] @ x + layer["b"])
    return np.sum(x) * params["scale"]


def test_nested_dicts_in_lists():
    params = {"layers": [{"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)},
                         {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}],
              "scale": 1.3}
    check_grad(nested, (params, rng.normal(size=3)), 0)
    check_grad(nested, (params, rng.normal(size=3)), 1)


def direct_nested(params, x):
    return np.sum(params["layers"][0]["W"] @ x) + params["layers"][1]["b"] * x[0]


def test_nested_subscripts_in_one_expression():
    params = {"layers": [{"W": rng.normal(size=(2, 2))}, {"b": 0.4}]}
    check_grad(direct_nested, (params, rng.normal(size=2)), 0)


def entries_as_values(d, x):
    total = sum(d.values()) * x
    for i, (k, v) in enumerate(sorted(d.items(), key=operator.itemgetter(0))):
        total = total + v * (i + 1.0)
    for k, v in sorted(d.items(), reverse=True):
        total = total * 0.5 + v
    pairs = list(d.items())
    return total + pairs[0][1] * len(list(d.values()))


def test_items_and_values_as_values_sorted_by_key():
    d = {"b": 1.5, "a": -0.7, "c": 2.0}
    check_grad(entries_as_values, (d, 0.9), 0)
    check_grad(entries_as_values, (d, 0.9), 1)
    check_jvp(entries_as_values, (d, 0.9), 0, {"b": 1.0, "a": -2.0, "c": 0.5})


def get_or_default(d, x):
    return d.get("a", x) ** 2 + d.get("b", 1.0) * x


@pytest.mark.parametrize("d", [{"a": 3.0}, {"b": 4.0}, {}, {"a": 1.5, "b": -2.0}])
def test_get_present_missing_and_empty(d):
    check_grad(get_or_default, (d, 2.0), 0)
    check_grad(get_or_default, (d, 2.0), 1)
    if d:
        check_jvp(get_or_default, (d, 2.0), 0, {k: 1.0 for k in d})


# --- dicts made inside --------------------------------------------------------------------

def displays(x, y):
    d = {"a": x * y, "b": np.sin(x)}
    e = dict(a=d["a"], c=y)
    f = dict(zip(["u", "v"], [x, e["c"] * 2.0]))
    return d["a"] * d["b"] + e["c"] * f["u"] + f["v"] ** 2


def more_dict_calls(x):
    a = dict([("a", x), ("b", 2.0 * x)], c=x * x)
    b = dict({"u": np.sin(x)})
    c = dict(a)
    c["a"] = c["a"] * 3.0
    empty = dict()
    empty["z"] = b["u"]
    return a["a"] * a["b"] + a["c"] + c["a"] * empty["z"] + len(dict(()))


def test_dict_calls_of_pairs_displays_and_copies():
    check_grad(more_dict_calls, (0.6,), 0)
    check_jvp(more_dict_calls, (0.6,), 0, 1.0)


def test_displays_dict_calls_and_zip():
    check_grad(displays, (0.7, -1.2), 0)
    check_grad(displays, (0.7, -1.2), 1)


def comprehension(d, x):
    doubled = {k: v * 2.0 * x for k, v in d.items()}
    squares = {k: doubled[k] ** 2 for k in doubled if k != "skip"}
    return sum([squares[k] for k in squares]) + doubled["skip"]


def test_dict_comprehensions():
    d = {"a": 0.5, "b": -1.5, "skip": 2.0}
    check_grad(comprehension, (d, 1.1), 0)
    check_grad(comprehension, (d, 1.1), 1)


def built_in_loop(x, n):
    cache = {}
    for i in range(n):
        cache[i] = x[i] * x[i + 1]
    for i in range(n):
        if i > 0:
            cache[i] = cache[i] * cache[i - 1]       # overwrite of an active entry
    total = 0.0
    for k in cache:
        total = total + cache[k]
    return total


def test_dict_built_in_a_loop_with_overwrites():
    check_grad(built_in_loop, (rng.normal(size=5), 4), 0)


def update_and_overwrite(x, w):
    d = {"a": x}
    d["a"] = d["a"] * w                           # overwrite
    d.update({"b": x * x}, c=w)
    other = {"c": x + w}
    d.update(other)
    d["new"] = d["b"] + d["c"]
    return d["a"] * d["new"]


def test_update_and_overwrite_of_active_entries():
    check_grad(update_and_overwrite, (0.8, 1.7), 0)
    check_grad(update_and_overwrite, (0.8, 1.7), 1)


def returns_dict(x, w):
    return {"y": x * w, "z": np.sin(x)}


def overwritten_result(x):
    d = {"a": x, "b": x * x}
    d["a"] = d["a"] * 2.0
    return d


def test_dict_cotangent_is_not_changed_and_pullback_repeats():
    value, pullback = transpile.vjp(overwritten_result, 0.5)
    cotangent = {"a": 1.0, "b": -2.0}
    first = pullback(cotangent)
    assert cotangent == {"a": 1.0, "b": -2.0}
    assert pullback(cotangent) == first
    expected = central(lambda x: overwritten_result(x)["a"] - 2.0 * overwritten_result(
        x)["b"], 0.5)
    assert np.allclose(first, expected)
    _, t = transpile.jvp(overwritten_result, (0.5,), (1.0,))
    assert np.allclose(t["a"], 2.0) and np.allclose(t["b"], 1.0)


def test_returned_dict_takes_a_dict_cotangent():
    value, pullback = transpile.vjp(returns_dict, 0.5, 2.0)
    assert value == returns_dict(0.5, 2.0)
    g = pullback({"y": 1.0, "z": 3.0})
    expected = central(lambda x: returns_dict(x, 2.0)["y"] + 3.0 * returns_dict(
        x, 2.0)["z"], 0.5)
    assert np.allclose(g, expected)


# --- writing into the caller's dict (batch norm) ------------------------------------------

def batchnorm_forward(x, gamma, beta, bn_param):
    """CS231n's batch norm in train mode: running statistics go into bn_param."""
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    sample_mean = np.mean(x, axis=0)
    sample_var = np.var(x, axis=0)
    x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
    out = gamma * x_hat + beta
    bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * sample_mean
    bn_param["running_var"] = momentum * running_var + (1 - momentum) * sample_var
    return np.sum(out * np.arange(1.0, D + 1))


@pytest.mark.parametrize("fresh", [True, False])
def test_batchnorm_writes_running_stats_into_callers_dict(fresh):
    x = rng.normal(size=(4, 3))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    bn = {"momentum": 0.8} if fresh else {"momentum": 0.8, "running_mean": np.ones(3),
                                          "running_var": np.full(3, 2.0)}
    for i in range(3):
        check_grad(batchnorm_forward, (x, gamma, beta, bn), i)
    plain, given = copy.deepcopy(bn), copy.deepcopy(bn)
    batchnorm_forward(x, gamma, beta, plain)
    transpile.grad(batchnorm_forward, (0, 1, 2))(x, gamma, beta, given)
    assert set(given) == set(plain)
    for k in plain:
        assert np.array_equal(given[k], plain[k])


def reads_back(x, state):
    state["h"] = np.tanh(x) * state["scale"]
    y = state["h"] * x
    state["h"] = y * 2.0
    return np.sum(state["h"] ** 2)


def test_written_entry_read_back_carries_its_derivative():
    x = rng.normal(size=3)
    state = {"scale": 1.5}
    check_grad(reads_back, (x, state), 0)
    check_grad(reads_back, (x, state), 1)
    plain, given = dict(state), dict(state)
    reads_back(x, plain)
    transpile.grad(reads_back)(x, given)
    assert np.array_equal(plain["h"], given["h"]) and set(plain) == set(given)


# --- objects ------------------------------------------------------------------------------

class Linear:
    def __init__(self, n_in, n_out):
        self.W = rng.normal(size=(n_in, n_out))
        self.b = rng.normal(size=n_out)
        self.name = "linear"


class Model:
    def __init__(self):
        self.layers = [Linear(3, 4), Linear(4, 2)]
        self.scale = 0.7


def object_loss(model, x):
    h = x
    for layer in model.layers:
        h = np.tanh(h @ layer.W + layer.b)
    return np.sum(h ** 2) * model.scale + np.sum(model.layers[0].W) * 0.1


def test_object_model_reads_its_weights():
    m = Model()
    x = rng.normal(size=(2, 3))
    g = check_grad(object_loss, (m, x), 0)
    assert type(g) is Model and set(vars(g)) == {"layers", "scale"}
    check_grad(object_loss, (m, x), 1)


def linear_forward(self, x):
    return np.sum(np.tanh(x @ self.W + self.b))


def test_function_of_self():
    lin = Linear(3, 2)
    check_grad(linear_forward, (lin, rng.normal(size=(4, 3))), 0)


class Params(NamedTuple):
    w: float
    b: np.ndarray


@dataclasses.dataclass
class Layer:
    W: np.ndarray
    b: float
    name: str = "dense"


def namedtuple_loss(p, x):
    return np.sum((p.w * x + p.b) ** 2)


def dataclass_loss(layer, x):
    return np.sum(np.sin(layer.W @ x) * layer.b)


def test_namedtuple_and_dataclass_fields():
    p = Params(0.5, rng.normal(size=3))
    check_grad(namedtuple_loss, (p, rng.normal(size=3)), 0)
    layer = Layer(rng.normal(size=(2, 3)), 1.5)
    check_grad(dataclass_loss, (layer, rng.normal(size=3)), 0)
    check_grad(dataclass_loss, (layer, rng.normal(size=3)), 1)


class Cell:
    def __init__(self):
        self.W = rng.normal(size=(2, 2))
        self.calls = 0


def stateful(cell, x):
    cell.h = np.tanh(cell.W @ x)             # an attribute store on an active object
    cell.calls = cell.calls + 1              # a store carrying no derivative
    cell.h = cell.h * x
    return np.sum(cell.h) + cell.calls


def test_attribute_stores_then_read_back():
    c = Cell()
    x = rng.normal(size=2)
    check_grad(stateful, (c, x), 1)
    check_grad(stateful, (c, x), 0)
    plain, given = copy.deepcopy(c), copy.deepcopy(c)
    stateful(plain, x)
    transpile.grad(stateful, 1)(given, x)
    assert given.calls == plain.calls == 1 and np.array_equal(given.h, plain.h)


def nested_stores(m, x):
    m.layers[0].h = np.tanh(x * m.scale)
    m.layers[1].b[0] = m.layers[0].h * 2.0
    p = {"inner": {"h": 1.0}}
    p["inner"]["h"] = x * m.layers[1].b[0]
    return np.sum(m.layers[0].h * x + m.layers[1].b) + p["inner"]["h"]


def test_stores_through_fields_and_entries_of_held_values():
    m = Model()
    check_grad(nested_stores, (m, 0.7), 1)
    check_grad(nested_stores, (m, 0.7), 0)
    check_jvp(nested_stores, (Model(), 0.7), 1, 1.0)
    plain, given = copy.deepcopy(m), copy.deepcopy(m)
    nested_stores(plain, 0.7)
    transpile.grad(nested_stores, 1)(given, 0.7)
    assert _same(plain, given)


def aliased_entry_store(p, x):
    q = p["inner"]
    q["h"] = x * 2.0
    return p["inner"]["h"] * x


def test_store_through_an_alias_read_afterwards_is_refused():
    with pytest.raises(TranspileError, match="aliasing"):
        transpile.grad(aliased_entry_store, 1)({"inner": {"h": 1.0}}, 0.7)


class Config:
    def __init__(self):
        self.steps = 3


def inactive_object_store(x, config):
    config.last = 2
    y = x
    for i in range(config.steps):
        y = np.sin(y) * config.last
    return y


def test_attribute_store_on_object_without_derivative():
    config = Config()
    check_grad(inactive_object_store, (0.4, config), 0)


# --- Tangent's dict functions -------------------------------------------------------------

def dict_saxpy(val):
    return val["a"] * val["b"] + val["c"]


def dict_wrapper(abc):
    a, b, c = abc
    return dict_saxpy(dict(a=a, b=b, c=c))


def test_tangent_dict_saxpy_and_dict_wrapper():
    check_grad(dict_saxpy, ({"a": 1.5, "b": -0.5, "c": 2.0},), 0)
    check_grad(dict_wrapper, ((1.5, -0.5, 2.0),), 0)
    check_grad(lambda val: np.sum(dict_saxpy(val)), ({"a": rng.normal(size=3),
                                                      "b": rng.normal(size=3),
                                                      "c": rng.normal(size=3)},), 0)


# --- forward mode -------------------------------------------------------------------------

def test_forward_mode_through_dicts_and_objects():
    p = _mlp_params()
    x, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    check_jvp(mlp_loss, (p, x, y), 0, tree.map(lambda v: rng.normal(size=np.shape(v)) if
                                               np.ndim(v) else 0.7, p))
    check_jvp(displays, (0.7, -1.2), 0, 1.0)
    check_jvp(comprehension, ({"a": 0.5, "b": -1.5, "skip": 2.0}, 1.1), 0,
              {"a": 1.0, "b": 0.5, "skip": -2.0})
    check_jvp(update_and_overwrite, (0.8, 1.7), 1, 1.0)
    check_jvp(built_in_loop, (rng.normal(size=5), 4), 0, rng.normal(size=5))
    lin = Linear(3, 2)
    check_jvp(linear_forward, (lin, rng.normal(size=(4, 3))), 0,
              {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2), "name": None})
    check_jvp(stateful, (Cell(), rng.normal(size=2)), 1, rng.normal(size=2))


def test_forward_mode_keeps_callers_dict():
    x = rng.normal(size=(4, 3))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    bn = {"momentum": 0.8}
    check_jvp(batchnorm_forward, (x, gamma, beta, bn), 0, rng.normal(size=(4, 3)))
    plain, given = {"momentum": 0.8}, {"momentum": 0.8}
    batchnorm_forward(x, gamma, beta, plain)
    transpile.jvp(batchnorm_forward, (x, gamma, beta, given), (np.ones((4, 3)), None,
                                                               None, None))
    assert set(given) == set(plain)
    for k in plain:
        assert np.allclose(given[k], plain[k])


def scales_entries(d, x):
    q = d["a"]
    d["a"] = q * x
    for k in d:
        d[k] = d[k] * x
    return q * d["a"] + d["b"]


def test_forward_mode_writes_into_a_dict_argument_leave_callers_tangent():
    d = {"a": 1.2, "b": -0.4}
    tangent = {"a": 0.6, "b": 0.3}
    check_jvp(scales_entries, (d, 0.7), 0, tangent)
    check_jvp(scales_entries, (d, 0.7), 1, 1.0)
    assert tangent == {"a": 0.6, "b": 0.3}
    check_grad(scales_entries, (d, 0.7), 0)
    y, ty = np.array([1.0, 2.0, 3.0]), np.ones(3)
    transpile.jvp(writes_first, (y, ), (ty, ))
    assert np.array_equal(ty, np.ones(3))


def writes_first(y):
    y[0] = y[1] * 2.0
    return np.sum(y)


class Accumulator:
    def __init__(self):
        self.h = 1.5
        self.W = 0.3


def attribute_updates(o, x):
    for i in range(3):
        o.h = o.h * x + o.W
        o.h += x
    return o.h


def test_attribute_updates_in_a_loop():
    check_grad(attribute_updates, (Accumulator(), 0.7), 0)
    check_grad(attribute_updates, (Accumulator(), 0.7), 1)
    check_jvp(attribute_updates, (Accumulator(), 0.7), 1, 1.0)


def copies(d, x):
    e = d.copy()
    e["a"] = e["a"] * x
    return e["a"] + d["a"]


def test_dict_copy_is_a_new_dict():
    check_grad(copies, ({"a": 1.2}, 0.7), 0)
    check_jvp(copies, ({"a": 1.2}, 0.7), 0, {"a": 1.0})


# --- second order -------------------------------------------------------------------------

def second(x, w):
    d = {"a": x * w, "b": np.sin(x)}
    d["c"] = d["a"] * d["b"]
    e = {k: v * x for k, v in d.items()}
    return e["c"] + e["a"] ** 2


def test_second_order_through_dicts():
    for x, w in ((0.6, 1.3), (-0.4, 0.9)):
        h = transpile.hessian(second)(x, w)
        g = lambda x: transpile.grad(second)(x, w)
        assert np.allclose(h, central(g, x), atol=1e-5)
        gg = transpile.grad(transpile.grad(second))(x, w)
        assert np.allclose(gg, central(g, x), atol=1e-5)


def object_and_dict_inside(x, model, p):
    model.h = np.tanh(model.W * x)
    d = {"u": model.h * p["w"]}
    d["u"] = d["u"] * x + model.b
    return np.sum(d["u"] ** 2)


def test_second_order_with_object_and_dict_inside():
    m = Linear(1, 3)
    m.W, m.b = rng.normal(size=3), rng.normal(size=3)
    p = {"w": 0.7}
    for x in (0.4, -1.1):
        g = lambda x: transpile.grad(object_and_dict_inside)(x, copy.deepcopy(m), p)
        expected = central(g, x)
        assert np.allclose(transpile.hessian(object_and_dict_inside)(
            x, copy.deepcopy(m), p), expected, atol=1e-5)
        assert np.allclose(transpile.grad(transpile.grad(object_and_dict_inside))(
            x, copy.deepcopy(m), p), expected, atol=1e-5)


# --- refused, clearly ---------------------------------------------------------------------

def test_dict_display_with_unpacking_is_refused_when_active():
    def f(x, d):
        e = {**d, "x": x}
        return e["x"]
    with pytest.raises(TranspileError, match="unpacking"):
        transpile.grad(f)(1.0, {"a": 1.0})
