"""Structured values (pytrees): what a nested argument is made of, and how its gradient
is shaped like it.

A *tree* is a value made of *nodes* holding other trees, down to *leaves*. The nodes:

* ``list``, ``tuple``, ``dict`` (and ``OrderedDict``), ``None`` (a node with no children);
* NamedTuples (by field), dataclasses (by field), and plain objects: instances of a class
  of yours whose attributes live in ``__dict__`` (a model storing its weights in ``self``);
* any class given its own treatment with `register`.

Everything else is a leaf: numbers, arrays, strings, functions, modules. The idea is JAX's
``tree_util`` (``flatten``, ``unflatten``, ``map``, ``register``), in the same spirit but
not its API object for object: a treedef here is a plain hashable value.

A gradient has the structure of its argument (`like`): a tuple stays a tuple, a dict keeps
its keys and their order, a NamedTuple, dataclass or object comes back as an instance of the
same class, built without calling ``__init__``, with each differentiable leaf replaced by its
gradient. Leaves that carry no derivative (strings, bools, integer arrays, functions,
``None``...) are ``None`` in a gradient.

Inside derivative code an adjoint of a structure is kept mutable: lists for lists, tuples
and NamedTuples, dicts for dicts, dataclasses and objects (keyed by attribute name); see
`adjoint_zeros` (runtime.zeros_like) and `like`.
"""
from __future__ import annotations

import dataclasses
import types
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterable, List, Tuple

__all__ = ["register", "flatten", "unflatten", "map", "leaves", "structure", "is_node",
           "like"]

#: class -> (flatten: value -> (children, aux), unflatten: (aux, children) -> value)
_REGISTERED: dict = {}

# classes whose instances are leaves even though they have a __dict__
_LEAF_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
               types.ModuleType, type, str, bytes, int, float, complex, bool, range,
               slice)


def register(cls: type, flatten: Callable[[Any], Tuple[Iterable[Any], Hashable]],
             unflatten: Callable[[Hashable, List[Any]], Any]) -> None:
    """Give instances of `cls` their own treatment: ``flatten(value)`` returns
    ``(children, aux)`` (aux hashable: what besides the children rebuilds the value) and
    ``unflatten(aux, children)`` rebuilds a value from them. Registered classes take
    precedence over the built-in kinds of node."""
    if not isinstance(cls, type):
        raise TypeError(f"register needs a class, not {cls!r}")
    _REGISTERED[cls] = (flatten, unflatten)


def type_module(value: Any) -> str:
    """The module that defines ``type(value)``, as a string. Compiled types (Cython's
    function type, which NumPy's ``default_rng`` has on some versions) hold a descriptor
    there instead: their instances' own ``__module__`` is used then, or ``""``."""
    module = getattr(type(value), "__module__", None)
    if not isinstance(module, str):
        module = getattr(value, "__module__", None)
    return module if isinstance(module, str) else ""


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _is_object(value: Any) -> bool:
    """A plain object of a user class: attributes in __dict__, not an array, number,
    function, module or class."""
    if isinstance(value, _LEAF_TYPES) or not hasattr(value, "__dict__"):
        return False
    cls = type(value)
    if type_module(value) in ("builtins", "numpy") or hasattr(value, "__array__") or \
            hasattr(value, "__array_namespace__"):
        return False
    return not callable(getattr(cls, "__get__", None))     # not a descriptor (property...)


def is_node(value: Any) -> bool:
    """Does `value` hold children (is it not a leaf)?"""
    cls = type(value)
    if cls in _REGISTERED or value is None:
        return True
    if isinstance(value, (list, tuple, dict)):
        return True
    return dataclasses.is_dataclass(value) or _is_object(value)


def _children(value: Any) -> Tuple[list, Hashable]:
    """(children, aux) of a node; aux names the kind of node and what rebuilds it."""
    cls = type(value)
    if cls in _REGISTERED:
        children, aux = _REGISTERED[cls][0](value)
        return list(children), ("registered", cls, aux)
    if value is None:
        return [], ("none",)
    if cls is list:
        return list(value), ("list", len(value))
    if cls is tuple:
        return list(value), ("tuple", len(value))
    if _is_namedtuple(value):
        return list(value), ("namedtuple", cls)
    if isinstance(value, dict):
        return list(value.values()), ("dict", cls, tuple(value.keys()))
    if isinstance(value, (list, tuple)):                   # subclasses of list or tuple
        return list(value), ("sequence", cls, len(value))
    if dataclasses.is_dataclass(value):
        names = tuple(f.name for f in dataclasses.fields(value))
        return [getattr(value, n) for n in names], ("dataclass", cls, names)
    attrs = vars(value)
    return list(attrs.values()), ("object", cls, tuple(attrs.keys()))


def _build(aux: Hashable, children: list) -> Any:
    kind = aux[0]
    if kind == "registered":
        return _REGISTERED[aux[1]][1](aux[2], children)
    if kind == "none":
        return None
    if kind == "list":
        return list(children)
    if kind == "tuple":
        return tuple(children)
    if kind == "namedtuple":
        return aux[1](*children)
    if kind == "dict":
        cls = aux[1] if aux[1] in (dict, OrderedDict) else dict
        return cls(zip(aux[2], children))
    if kind == "sequence":
        try:
            return aux[1](children)
        except Exception:
            return list(children)
    cls, names = aux[1], aux[2]
    new = cls.__new__(cls)                                  # no __init__: no side effects
    for name, child in zip(names, children):
        object.__setattr__(new, name, child)                # frozen dataclasses too
    return new


def flatten(tree: Any) -> Tuple[List[Any], Hashable]:
    """``(leaves, treedef)``: the leaves of `tree`, depth first in its own order (a dict's
    in insertion order), and a hashable description of its structure."""
    leaves: list = []

    def walk(value):
        if not is_node(value):
            leaves.append(value)
            return None
        children, aux = _children(value)
        return (aux, tuple(walk(c) for c in children))
    return leaves, walk(tree)


def unflatten(treedef: Hashable, leaves: Iterable[Any]) -> Any:
    """The tree of structure `treedef` (from `flatten`) holding `leaves` in order."""
    it = iter(leaves)

    def build(node):
        if node is None:
            return next(it)
        aux, kids = node
        return _build(aux, [build(k) for k in kids])
    out = build(treedef)
    for _ in it:
        raise ValueError("unflatten: more leaves than the structure holds")
    return out


def leaves(tree: Any) -> List[Any]:
    """The leaves of `tree`, in `flatten`'s order."""
    return flatten(tree)[0]


def structure(tree: Any) -> Hashable:
    """The treedef of `tree` alone (hashable: a key for code specialised on it)."""
    return flatten(tree)[1]


def map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """`tree` with each leaf replaced by ``f(leaf, *leaves of rest at the same place)``;
    the other trees must have the structure of the first."""
    xs, treedef = flatten(tree)
    others = []
    for r in rest:
        ys, d = flatten(r)
        if d != treedef:
            raise ValueError("tree.map: the trees have different structures")
        others.append(ys)
    return unflatten(treedef, [f(*vs) for vs in zip(xs, *others)])


# --- adjoints of structures --------------------------------------------------------------

def adjoint_zeros(value: Any, leaf_zeros: Callable[[Any], Any]) -> Any:
    """The zero adjoint of `value` as derivative code keeps it: a list for a list, tuple
    or NamedTuple, a dict for a dict, dataclass or object (keyed by attribute), and
    ``leaf_zeros(leaf)`` for leaves."""
    if not is_node(value) or value is None:
        return leaf_zeros(value) if value is not None else None
    children, aux = _children(value)
    zs = [adjoint_zeros(c, leaf_zeros) for c in children]
    kind = aux[0]
    if kind == "dict":
        return dict(zip(aux[2], zs))
    if kind in ("dataclass", "object"):
        return dict(zip(aux[2], zs))
    return zs


def _adjoint_children(adjoint: Any, aux: Hashable, n: int) -> list:
    """The children of an adjoint kept as `adjoint_zeros` makes it (or already shaped
    like the value), in the order of the value's children."""
    kind = aux[0]
    if kind in ("dict", "dataclass", "object"):
        names = aux[2]
        if isinstance(adjoint, dict):
            return [adjoint.get(k) for k in names]
        return [getattr(adjoint, k, None) for k in names]
    if isinstance(adjoint, dict):
        return list(adjoint.values())
    out = list(adjoint) if adjoint is not None else []
    return out + [None] * (n - len(out))


def like(value: Any, adjoint: Any, leaf: Callable[[Any, Any], Any]) -> Any:
    """The gradient of `value` in its own structure, from an adjoint kept by derivative
    code (lists and dicts, or 0.0/None for "nothing flowed"): ``leaf(x, g)`` gives the
    gradient of each leaf x from its adjoint g (None where none flowed)."""
    if not is_node(value):
        return leaf(value, adjoint)
    if value is None:
        return None
    children, aux = _children(value)
    if adjoint is None or (type(adjoint) in (int, float) and adjoint == 0):
        adj: list = [None] * len(children)
    else:
        adj = _adjoint_children(adjoint, aux, len(children))
    return _build(aux, [like(c, a, leaf) for c, a in zip(children, adj)])
