"""Structured arguments and results at the API boundary (pytrees: transpile.tree).

grad, value_and_grad, vjp, jvp, hvp, hessian, jacobian and check_grads take nested lists,
tuples, dicts, NamedTuples, dataclasses and objects as arguments and results; gradients
come back in the structure of their argument. has_aux and argnums (JAX's conventions).
Every gradient is checked against central differences over every leaf.
"""
import dataclasses
import fractions
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import transpile
from transpile import tree

P = namedtuple("P", "w b")
HERE = __file__


def numbers_of(value):
    """The leaves of a structure, its treedef, the places of the differentiable ones."""
    leaves, treedef = tree.flatten(value)
    return leaves, treedef, [i for i, x in enumerate(leaves)
                             if isinstance(x, float) and not isinstance(x, bool)
                             or isinstance(x, np.ndarray) and x.dtype.kind == "f"]


def fd_tree(f, args, i=0, eps=1e-6):
    """Central differences of scalar f(*args) with respect to every differentiable leaf of
    args[i], in args[i]'s structure (None at the other leaves)."""
    leaves, treedef, places = numbers_of(args[i])
    out = [None] * len(leaves)

    def at(k, idx, step):
        moved = list(leaves)
        if isinstance(moved[k], np.ndarray):
            moved[k] = moved[k].astype(float).copy()
            moved[k][idx] += step
        else:
            moved[k] = moved[k] + step
        a = list(args)
        a[i] = tree.unflatten(treedef, moved)
        return f(*a)
    for k in places:
        x = leaves[k]
        if isinstance(x, np.ndarray):
            g = np.zeros(x.shape)
            for idx in np.ndindex(*x.shape):
                g[idx] = (at(k, idx, eps) - at(k, idx, -eps)) / (2 * eps)
        else:
            g = (at(k, None, eps) - at(k, None, -eps)) / (2 * eps)
        out[k] = g
    return out


def _children(value):
    if isinstance(value, dict):
        return list(value), list(value.values())
    if isinstance(value, (list, tuple)):
        return len(value), list(value)
    return list(vars(value)), list(vars(value).values())


def leaf_pairs(g, value):
    """(gradient leaf, value leaf) pairs; g must have value's structure: the same class of
    node everywhere (a tuple for a tuple...), the same keys in the same order."""
    if value is None:
        assert g is None
        return []
    if not tree.is_node(value):
        return [(g, value)]
    assert type(g) is type(value), (type(g), type(value))
    keys, children = _children(value)
    gkeys, gchildren = _children(g)
    assert gkeys == keys
    return [p for gc, c in zip(gchildren, children) for p in leaf_pairs(gc, c)]


def assert_gradient_like(g, value, expected_leaves, rtol=1e-6, atol=1e-8):
    """g has value's structure and its leaves match the expected ones (None where expected
    is None); expected_leaves in tree.flatten's order of value."""
    pairs = leaf_pairs(g, value)
    assert len(pairs) == len(expected_leaves)
    for (got, _), want in zip(pairs, expected_leaves):
        if want is None:
            assert got is None
        else:
            assert np.shape(got) == np.shape(want)
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# --- gradients in the structure of their argument ----------------------------------------

def mlp(params, x):
    for W, b in params[:-1]:
        x = np.tanh(W @ x + b)
    W, b = params[-1]
    return np.sum(W @ x + b) ** 2


def mlp_params(rng):
    return [(rng.standard_normal((3, 2)), rng.standard_normal(3)),
            (rng.standard_normal((1, 3)), rng.standard_normal(1))]


def test_list_of_tuples_gradient_keeps_tuples():
    rng = np.random.default_rng(0)
    params, x = mlp_params(rng), rng.standard_normal(2)
    g = transpile.grad(mlp)(params, x)
    assert type(g) is list and all(type(layer) is tuple for layer in g)
    assert_gradient_like(g, params, fd_tree(mlp, (params, x)))
    value, g2 = transpile.value_and_grad(mlp)(params, x)
    assert value == pytest.approx(mlp(params, x))
    assert_gradient_like(g2, params, fd_tree(mlp, (params, x)))


def namedtuple_loss(p, x):
    return np.sum((p[0] * x + p[1]) ** 2)


def test_namedtuple_gradient_is_a_namedtuple():
    p, x = P(np.array([0.5, -1.0]), 0.25), np.array([1.0, 2.0])
    g = transpile.grad(namedtuple_loss)(p, x)
    assert type(g) is P and isinstance(g.b, float)
    assert_gradient_like(g, p, fd_tree(namedtuple_loss, (p, x)))


def dict_loss(params, x):
    h = np.tanh(params["W1"] @ x + params["b1"])
    out = params["layers"][0][0] * h
    return np.sum(out * out) + params["scale"] * params["n"]


def test_nested_dict_keeps_keys_order_and_kinds_of_nodes():
    rng = np.random.default_rng(1)
    params = OrderedDict(W1=rng.standard_normal((2, 3)), b1=rng.standard_normal(2),
                         layers=[P(rng.standard_normal(2), "relu")], scale=0.5, n=3)
    x = rng.standard_normal(3)
    g = transpile.grad(dict_loss)(params, x)
    assert type(g) is OrderedDict and list(g) == list(params)
    assert type(g["layers"]) is list and type(g["layers"][0]) is P
    assert g["layers"][0].b is None                  # a str has no derivative
    assert type(g["n"]) is float                     # a Python int is a number
    expected = fd_tree(dict_loss, (params, x))
    expected[-1] = params["scale"]                   # d/dn of scale * n (an int leaf)
    assert_gradient_like(g, params, expected)


def leaves_without_derivative(d, x):
    y = np.tanh(x * d["w"])
    if d["flag"]:
        y = y * 2.0
    return np.sum(y[d["index"]]) * len(d["name"])


def test_leaves_without_derivative_get_none():
    d = {"w": np.array([0.3, -0.2, 0.1]), "act": np.tanh, "flag": True,
         "index": np.array([0, 2]), "name": "mlp", "nothing": None}
    x = np.array([1.0, 2.0, 3.0])
    g = transpile.grad(leaves_without_derivative)(d, x)
    assert list(g) == list(d)
    assert g["act"] is None and g["flag"] is None and g["index"] is None
    assert g["name"] is None and g["nothing"] is None
    np.testing.assert_allclose(g["w"], fd_tree(leaves_without_derivative, (d, x))[0],
                               rtol=1e-6)


@dataclasses.dataclass
class Layer:
    W: np.ndarray
    b: float
    name: str = "dense"


class Model:
    def __init__(self):
        raise AssertionError("a gradient is built without calling __init__")


def unused_model(model, x):
    return x * 2.0


def test_objects_and_dataclasses_come_back_as_instances():
    m = Model.__new__(Model)
    m.layers = [Layer(np.ones(2, dtype=np.float32), 1.0)]
    m.act = np.tanh
    m.name = "mlp"
    g = transpile.grad(unused_model)(m, 3.0)
    assert type(g) is Model and type(g.layers[0]) is Layer
    assert g.layers[0].W.dtype == np.float32 and not g.layers[0].W.any()
    assert g.layers[0].b == 0.0 and g.layers[0].name is None
    assert g.act is None and g.name is None
    gm, gx = transpile.grad(unused_model, wrt=(0, 1))(m, 3.0)
    assert type(gm) is Model and gx == pytest.approx(2.0)


def float32_leaves(p):
    return np.sum(p[0] * p[0]) * 0.1 + p[1] * p[1]


def test_float32_leaves_keep_their_dtype():
    p = (np.array([1.0, 2.0], dtype=np.float32), np.float32(3.0))
    g = transpile.grad(float32_leaves)(p)
    assert type(g) is tuple and g[0].dtype == np.float32
    assert isinstance(g[1], np.float32)
    np.testing.assert_allclose(g[0], 0.2 * p[0], rtol=1e-6)
    assert float(g[1]) == pytest.approx(6.0)


# --- what is refused ----------------------------------------------------------------------

def first_leaf(p):
    return 2.0


def test_refused_leaves_are_named_by_their_path():
    with pytest.warns(PendingDeprecationWarning):
        matrix = np.matrix([[1.0]])
    cases = [([(1.0, fractions.Fraction(1, 2))], "p[0][1] is a Fraction"),
             (P(matrix, 1.0), "p.w is an np.matrix"),
             ({"layers": [Layer(np.ma.masked_array([1.0]), 1.0)]},
              "p['layers'][0].W is a masked array")]      # (complex leaves: differentiated)
    for value, message in cases:
        for call in (lambda: transpile.grad(first_leaf)(value),
                     lambda: transpile.vjp(first_leaf, value),
                     lambda: transpile.jvp(first_leaf, (value,), (value,)),
                     lambda: transpile.hessian(first_leaf)(value)):
            with pytest.raises(transpile.TranspileError) as info:
                call()
            assert f"with respect to 'p': {message}" in str(info.value)
            assert info.value.filename == HERE
            assert info.value.lineno == first_leaf.__code__.co_firstlineno


# --- the variant cache --------------------------------------------------------------------

def product_of_two(a):
    return np.sum(a[0] * a[1])


def test_variants_specialise_on_the_kinds_of_leaves():
    g = transpile.grad(product_of_two)
    assert g([2.0, 3.0]) == [3.0, 2.0]
    for a in ([2.0, np.ones(3)], [np.ones(3), 2.0], (2.0, np.arange(3.0))):
        got = g(a)
        assert type(got) is type(a)
        assert_gradient_like(got, a, fd_tree(product_of_two, (a,)))
        assert np.shape(got[0]) == np.shape(a[0]) and np.shape(got[1]) == np.shape(a[1])


def total(xs):
    s = 0.0
    for x in xs:
        s = s + x * x
    return s


def test_variants_do_not_specialise_on_lengths_or_keys():
    g = transpile.grad(total)
    for n in range(1, 6):
        xs = [float(i) for i in range(n)]
        assert g(xs) == [2.0 * x for x in xs]
    assert len(g.variants.variants) == 1


# --- vjp, jvp with structures -------------------------------------------------------------

def pair_out(p, x):
    y = p[0] * x + p[1]
    return (np.sum(y * y), [y, "label"])


def test_vjp_takes_a_cotangent_of_the_output_structure():
    p, x = P(np.array([1.0, -2.0]), 0.5), np.array([0.3, 0.7])
    value, pullback = transpile.vjp(pair_out, p, x)
    assert type(value) is tuple and value[1][1] == "label"
    u = (0.7, [np.array([1.0, -1.0]), None])
    g = pullback(u)
    assert type(g) is P

    def scalar(p, x):
        s, (y, _) = pair_out(p, x)
        return u[0] * s + np.sum(u[1][0] * y)
    assert_gradient_like(g, p, fd_tree(scalar, (p, x)))
    assert_gradient_like(pullback([0.7, [np.array([1.0, -1.0]), 0.0]]), p,
                         fd_tree(scalar, (p, x)))
    only_y = fd_tree(lambda p, x: np.sum(u[1][0] * pair_out(p, x)[1][0]), (p, x))
    assert_gradient_like(pullback((None, [u[1][0], None])), p, only_y)   # None: zero
    for bad, message in [((1.0, 2.0, 3.0), "the cotangent has another structure"),
                         ((1.0, {"y": 1.0}), "the cotangent[1] has another structure"),
                         ((1.0, np.ones(2)), "the cotangent[1] is a ndarray")]:
        with pytest.raises(transpile.TranspileError, match=message.replace("[", r"\[")):
            pullback(bad)


def test_jvp_takes_tangents_of_the_argument_structure():
    p, x = P(np.array([1.0, -2.0]), 0.5), np.array([0.3, 0.7])
    t = P(np.array([0.1, 0.2]), None)                     # b held fixed
    value, tangent = transpile.jvp(pair_out, (p, x), (t, None))
    assert type(tangent) is tuple and type(tangent[1]) is list
    assert tangent[1][1] is None                          # the str of the output
    eps = 1e-6
    plus = pair_out(P(p.w + eps * t.w, p.b), x)
    minus = pair_out(P(p.w - eps * t.w, p.b), x)
    assert tangent[0] == pytest.approx((plus[0] - minus[0]) / (2 * eps), rel=1e-6)
    np.testing.assert_allclose(tangent[1][0], (plus[1][0] - minus[1][0]) / (2 * eps),
                               rtol=1e-6)
    with pytest.raises(transpile.TranspileError, match="the tangent of 'p'"):
        transpile.jvp(pair_out, (p, x), ((1.0, 2.0, 3.0), None))


# --- second order, Jacobians, check_grads -------------------------------------------------

def cubic(p):
    return p["a"] ** 3 * np.sum(p["b"]) + np.sum(p["b"] ** 3) * len(p["name"])


def test_hvp_and_hessian_nest_the_structure():
    p = {"a": 0.5, "b": np.array([1.0, -2.0]), "name": "xy"}
    v = {"a": 1.0, "b": np.array([0.5, 0.25]), "name": None}
    hv = transpile.hvp(cubic)(p, v=v)
    assert list(hv) == ["a", "b", "name"] and hv["name"] is None
    grad = transpile.grad(cubic)
    eps = 1e-6

    def moved(s):
        return {"a": p["a"] + s * v["a"], "b": p["b"] + s * v["b"], "name": "xy"}
    plus, minus = grad(moved(eps)), grad(moved(-eps))
    for k in ("a", "b"):
        np.testing.assert_allclose(hv[k], (plus[k] - minus[k]) / (2 * eps), rtol=1e-5)
    H = transpile.hessian(cubic)(p)
    assert list(H) == ["a", "b", "name"] and list(H["a"]) == ["a", "b", "name"]
    assert H["name"]["a"] is None and H["a"]["name"] is None
    assert np.shape(H["b"]["b"]) == (2, 2) and isinstance(H["a"]["a"], float)
    # H applied to v, block by block, is hvp
    Hv_a = H["a"]["a"] * v["a"] + H["a"]["b"] @ v["b"]
    Hv_b = H["b"]["a"] * v["a"] + H["b"]["b"] @ v["b"]
    assert Hv_a == pytest.approx(hv["a"], rel=1e-6)
    np.testing.assert_allclose(Hv_b, hv["b"], rtol=1e-6)


def scaled(p):
    return p["W"] * p["b"]


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_with_respect_to_a_structure(mode):
    p = {"W": np.array([1.0, 2.0]), "b": 3.0, "n": "x"}
    J = transpile.jacobian(scaled, mode=mode)(p)
    assert list(J) == ["W", "b", "n"] and J["n"] is None
    eps = 1e-6
    for k in ("W", "b"):
        leaf = p[k]
        cols = []
        for idx in np.ndindex(*np.shape(leaf)):
            e = np.zeros(np.shape(leaf))
            e[idx] = eps
            hi, lo = dict(p), dict(p)
            hi[k], lo[k] = leaf + e, leaf - e
            cols.append((scaled(hi) - scaled(lo)) / (2 * eps))
        want = np.stack(cols, axis=-1).reshape((2,) + np.shape(leaf))
        np.testing.assert_allclose(J[k], want, rtol=1e-6)


def test_check_grads_checks_every_leaf():
    rng = np.random.default_rng(2)
    transpile.check_grads(mlp, mlp_params(rng), rng.standard_normal(2), wrt=(0, 1))
    transpile.check_grads(cubic, {"a": 0.5, "b": np.array([1.0, -2.0]), "name": "xy"})
    transpile.check_grads(pair_out, P(np.array([1.0, -2.0]), 0.5), np.ones(2), order=1)


def wrongly(x):
    return 2.0 * x


transpile.defvjp(wrongly, "3.0")                      # deliberately wrong: should be 2.0


def uses_wrong_rule(p):
    return p[0] * wrongly(p[1][0])


def test_check_grads_catches_a_wrong_leaf():
    with pytest.raises(AssertionError, match="reverse mode"):
        transpile.check_grads(uses_wrong_rule, (1.5, [0.5, "s"]), order=1)


# --- has_aux, argnums ---------------------------------------------------------------------

def loss_and_stats(p, x):
    y = p[0] * x + p[1]
    loss = np.sum(y * y)
    return loss, (y, "batch", np.max(y))


def test_has_aux_follows_jax_conventions():
    p, x = (np.array([0.5, -1.0]), 0.25), np.array([1.0, 2.0])
    want_out, want_aux = loss_and_stats(p, x)
    want_g = fd_tree(lambda p, x: loss_and_stats(p, x)[0], (p, x))

    g, aux = transpile.grad(loss_and_stats, has_aux=True)(p, x)
    assert type(g) is tuple
    assert_gradient_like(g, p, want_g)
    np.testing.assert_allclose(aux[0], want_aux[0])
    assert aux[1] == "batch" and aux[2] == pytest.approx(want_aux[2])

    (value, aux), g = transpile.value_and_grad(loss_and_stats, has_aux=True)(p, x)
    assert value == pytest.approx(want_out) and aux[1] == "batch"
    assert_gradient_like(g, p, want_g)

    out, pullback, aux = transpile.vjp(loss_and_stats, p, x, has_aux=True)
    assert out == pytest.approx(want_out) and aux[1] == "batch"
    assert_gradient_like(pullback(2.0), p, [2.0 * w for w in want_g])

    t = (np.array([1.0, 0.0]), 0.0)
    out, tangent, aux = transpile.jvp(loss_and_stats, (p, x), (t, None), has_aux=True)
    assert out == pytest.approx(want_out) and aux[1] == "batch"
    assert tangent == pytest.approx(want_g[0][0])

    gp, gx = transpile.grad(loss_and_stats, argnums=(0, 1), has_aux=True)(p, x)[0]
    np.testing.assert_allclose(gx, fd_tree(lambda p, x: loss_and_stats(p, x)[0],
                                           (p, x), i=1)[0], rtol=1e-6)


def not_a_pair(x):
    return x, x, x


def test_has_aux_errors():
    with pytest.raises(transpile.TranspileError, match="returning a pair") as info:
        transpile.grad(not_a_pair, has_aux=True)(1.0)
    assert info.value.lineno == not_a_pair.__code__.co_firstlineno
    with pytest.raises(transpile.TranspileError, match="jit=True"):
        transpile.grad(not_a_pair, has_aux=True, jit=True)
    with pytest.raises(transpile.TranspileError, match="grad of a gradient"):
        transpile.grad(transpile.grad(not_a_pair, has_aux=True))


def two(x, w):
    return x * x * w


def test_argnums_is_wrt():
    assert transpile.grad(two, argnums=1)(3.0, 2.0) == pytest.approx(9.0)
    assert transpile.value_and_grad(two, argnums=(0, 1))(3.0, 2.0)[1] == \
        pytest.approx((12.0, 9.0))
    assert transpile.vjp(two, 3.0, 2.0, argnums=1)[1](1.0) == pytest.approx(9.0)
    assert transpile.hessian(two, argnums=0)(3.0, 2.0) == pytest.approx(4.0)
    transpile.check_grads(two, 3.0, 2.0, argnums=(0, 1))
    for make in (lambda: transpile.grad(two, wrt=0, argnums=1),
                 lambda: transpile.vjp(two, 3.0, 2.0, wrt=0, argnums=1),
                 lambda: transpile.differentiate(two, wrt=0, argnums=1)):
        with pytest.raises(transpile.TranspileError, match="not both"):
            make()


@transpile.differentiate(argnums=0, has_aux=True)
def decorated(p, x):
    y = p[0] * x
    return y * p[1], y


def test_differentiate_with_has_aux_and_argnums():
    p = (2.0, 3.0)
    g, aux = decorated.grad(p, 1.5)
    assert type(g) is tuple and aux == pytest.approx(3.0)
    assert_gradient_like(g, p, fd_tree(lambda p, x: decorated(p, x)[0], (p, 1.5)))
    (value, aux), g2 = decorated.value_and_grad(p, 1.5)
    assert value == pytest.approx(9.0) and g2 == g
    out, pullback, aux = decorated.vjp(p, 1.5)
    assert pullback(1.0) == g


def kw_structure(x, p=None):
    return np.sum(x * p[0]) + p[1]


def test_structured_keyword_arguments():
    g = transpile.grad(kw_structure, wrt="p")
    x = np.array([1.0, 2.0])
    for p in ((2.0, 3.0), (np.array([0.5, 1.0]), 3.0), [np.array([0.5, 1.0]), 3.0]):
        got = g(x, p=p)
        assert type(got) is type(p)
        assert_gradient_like(got, p, fd_tree(lambda p: kw_structure(x, p=p), (p,)))


# --- models: objects and dataclasses whose attributes are read ------------------------------

class Linear:
    def __init__(self, n_in, n_out, rng):
        self.W = rng.standard_normal((n_out, n_in))
        self.b = np.zeros(n_out)
        self.name = "linear"
        self.act = np.tanh


def model_loss(model, x, y):
    return np.sum((np.tanh(model.W @ x + model.b) - y) ** 2)


def test_gradient_with_respect_to_a_model_object():
    model = Linear(3, 2, np.random.default_rng(3))
    x, y = np.array([0.5, -1.0, 2.0]), np.array([0.1, -0.2])
    g = transpile.grad(model_loss)(model, x, y)
    assert type(g) is Linear and list(vars(g)) == ["W", "b", "name", "act"]
    assert g.name is None and g.act is None
    assert_gradient_like(g, model, fd_tree(model_loss, (model, x, y)))
    transpile.check_grads(model_loss, model, x, y)


@dataclasses.dataclass
class Net:
    layers: list
    scale: float = 1.0


def net_loss(net, x):
    for layer in net.layers:
        x = np.tanh(layer.W @ x + layer.b)
    return net.scale * np.sum(x * x)


def test_dataclasses_nested_in_lists():
    rng = np.random.default_rng(4)
    net = Net([Layer(rng.standard_normal((3, 2)), 0.1),
               Layer(rng.standard_normal((2, 3)), -0.2, "out")], 0.5)
    x = np.array([1.0, -1.0])
    g = transpile.grad(net_loss)(net, x)
    assert type(g) is Net and type(g.layers[1]) is Layer and g.layers[1].name is None
    assert_gradient_like(g, net, fd_tree(net_loss, (net, x)))
    # (with respect to both: reverse over forward with x held fixed, whose tangent starts
    # as the zero placeholder in the loop, is refused by the rule of unless_zero's matmul)
    transpile.check_grads(net_loss, net, x, wrt=(0, 1))


def dict_out(p, x):
    y = p["w"] * x
    return {"loss": np.sum(y * y), "y": y, "tag": "t"}


def test_vjp_and_jvp_of_a_function_returning_a_dict():
    p, x = {"w": np.array([1.0, 2.0]), "n": "x"}, np.array([0.5, -1.0])
    value, pullback = transpile.vjp(dict_out, p, x)
    assert list(value) == ["loss", "y", "tag"]
    u = {"loss": 0.5, "y": np.array([1.0, 2.0]), "tag": None}
    g = pullback(u)

    def scalar(p, x):
        out = dict_out(p, x)
        return u["loss"] * out["loss"] + np.sum(u["y"] * out["y"])
    assert_gradient_like(g, p, fd_tree(scalar, (p, x)))
    assert_gradient_like(pullback({"loss": 0.5}), p,             # a key left out: zero
                         fd_tree(lambda p, x: 0.5 * dict_out(p, x)["loss"], (p, x)))
    with pytest.raises(transpile.TranspileError, match="keys"):
        pullback({"loss": 1.0, "los": 2.0})
    value, tangent = transpile.jvp(dict_out, (p, x), ({"w": np.array([1.0, 0.0])}, None))
    assert list(tangent) == ["loss", "y", "tag"] and tangent["tag"] is None
    transpile.check_grads(dict_out, p, x, order=1)


def loss_with_metrics(model, x, y):
    pred = model.W @ x + model.b
    err = pred - y
    return np.sum(err * err), {"pred": pred, "max": np.max(np.abs(err)), "n": 2}


def test_has_aux_with_a_dict_of_metrics():
    model = Linear(3, 2, np.random.default_rng(5))
    x, y = np.array([0.5, -1.0, 2.0]), np.array([0.1, -0.2])
    g, aux = transpile.grad(loss_with_metrics, has_aux=True)(model, x, y)
    assert type(g) is Linear and list(aux) == ["pred", "max", "n"] and aux["n"] == 2
    np.testing.assert_allclose(aux["pred"], model.W @ x + model.b)
    assert_gradient_like(g, model, fd_tree(lambda m, x, y: loss_with_metrics(m, x, y)[0],
                                           (model, x, y)))


def two_outputs(p):
    return p["W"] * p["b"], [np.sum(p["W"] ** 2), "label"]


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_of_a_structured_result(mode):
    p = {"W": np.array([1.0, 2.0]), "b": 3.0}
    J = transpile.jacobian(two_outputs, mode=mode)(p)
    assert type(J) is tuple and type(J[1]) is list and J[1][1] == {"W": None, "b": None}
    eps = 1e-6
    for k in ("W", "b"):
        for idx in np.ndindex(*np.shape(p[k])):
            e = np.zeros(np.shape(p[k]))
            e[idx] = eps
            hi, lo = dict(p), dict(p)
            hi[k], lo[k] = p[k] + e, p[k] - e
            (y_hi, (s_hi, _)), (y_lo, (s_lo, _)) = two_outputs(hi), two_outputs(lo)
            np.testing.assert_allclose(np.asarray(J[0][k])[(Ellipsis,) + idx],
                                       (y_hi - y_lo) / (2 * eps), rtol=1e-6)
            assert np.asarray(J[1][0][k])[idx] == pytest.approx((s_hi - s_lo) / (2 * eps),
                                                                rel=1e-6)
