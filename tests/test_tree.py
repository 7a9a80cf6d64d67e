"""transpile.tree: flatten/unflatten/map/register, and gradients shaped like their
arguments (tree.like) from the adjoints derivative code keeps (runtime helpers)."""
import dataclasses
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

from transpile import tree
from transpile import runtime

P = namedtuple("P", "w b")


@dataclasses.dataclass
class Layer:
    W: np.ndarray
    b: float
    name: str = "dense"


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: float


class Model:
    def __init__(self, layers):
        self.layers = layers
        self.calls = 0
        raise_on_init.append(1)


raise_on_init = []


def _model():
    m = Model.__new__(Model)
    m.layers = [Layer(np.ones((2, 2)), 1.0), Layer(np.zeros(2), 2.0, "out")]
    m.calls = 3
    return m


def test_flatten_orders_and_round_trips():
    t = {"b": (1.0, [2.0, np.arange(3.0)]), "a": P(3.0, None), "c": OrderedDict(z=4.0)}
    leaves, d = tree.flatten(t)
    assert leaves[:2] == [1.0, 2.0] and leaves[3:] == [3.0, 4.0]   # insertion order
    back = tree.unflatten(d, leaves)
    assert list(back) == ["b", "a", "c"] and isinstance(back["b"], tuple)
    assert isinstance(back["a"], P) and back["a"].b is None
    assert type(back["c"]) is OrderedDict
    hash(d)                                                  # a key for variants


def test_objects_and_dataclasses_rebuilt_without_init():
    m = _model()
    leaves, d = tree.flatten(m)
    assert [type(x).__name__ for x in leaves] == ["ndarray", "float", "str", "ndarray",
                                                  "float", "str", "int"]
    out = tree.unflatten(d, leaves)
    assert type(out) is Model and not raise_on_init
    assert out.layers[1].name == "out" and out.calls == 3
    f = tree.map(lambda x: x * 2, Frozen(1.5))
    assert isinstance(f, Frozen) and f.a == 3.0


def test_map_several_trees_and_structure_mismatch():
    a = {"x": 1.0, "y": [2.0, 3.0]}
    assert tree.map(lambda u, v: u + v, a, a) == {"x": 2.0, "y": [4.0, 6.0]}
    with pytest.raises(ValueError):
        tree.map(lambda u, v: u, a, {"x": 1.0, "y": [2.0]})
    with pytest.raises(ValueError):
        tree.unflatten(tree.structure([1.0]), [1.0, 2.0])


def test_register_own_class():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b
    tree.register(Pair, lambda p: ((p.a, p.b), "pair"), lambda aux, ch: Pair(*ch))
    leaves, d = tree.flatten([Pair(1.0, 2.0)])
    assert leaves == [1.0, 2.0] and d[1][0][0] == ("registered", Pair, "pair")
    q = tree.map(lambda x: -x, Pair(1.0, 2.0))
    assert (q.a, q.b) == (-1.0, -2.0)
    with pytest.raises(TypeError):
        tree.register("Pair", None, None)


def test_leaves_are_not_nodes():
    for leaf in (1.0, 2, "s", np.ones(2), np.float64(1), np.sin, len, Model, np):
        assert not tree.is_node(leaf), leaf


def test_adjoint_zeros_and_add_of_dicts_and_objects():
    m = _model()
    z = runtime.zeros_like(m)
    assert set(z) == {"layers", "calls"} and set(z["layers"][0]) == {"W", "b", "name"}
    assert np.array_equal(z["layers"][0]["W"], np.zeros((2, 2)))
    d = runtime.add_at(0.0, {"k": np.ones(2), "s": "x"}, "k", np.full(2, 3.0))
    assert np.array_equal(d["k"], np.full(2, 3.0)) and d["s"] == 0.0
    e = runtime.add({"k": 1.0}, {"k": 2.0, "j": 5.0})
    assert e == {"k": 3.0, "j": 5.0}
    assert runtime.item({"k": 1.0}, "new") == 0.0


def test_like_shapes_the_gradient_as_the_value():
    m = _model()
    adj = runtime.add_at(runtime.zeros_like(m), m, "calls", 7.0)
    g = tree.like(m, adj, lambda x, a: None if isinstance(x, str) else a)
    assert type(g) is Model and type(g.layers[0]) is Layer
    assert g.calls == 7.0 and g.layers[0].name is None
    t = tree.like((1.0, P(2.0, 3.0)), [5.0, [6.0, 0.0]], lambda x, a: a)
    assert t == (5.0, P(6.0, 0.0)) and isinstance(t[1], P)
    assert tree.like({"a": 1.0, "b": 2.0}, 0.0, lambda x, a: a) == {"a": None, "b": None}
