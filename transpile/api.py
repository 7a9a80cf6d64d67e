"""The user-facing API: @differentiate, grad, value_and_grad, vjp, jvp.

`wrt` (or `argnums`, its JAX and autograd name) names the parameters to differentiate
with respect to: an index, a name, or a tuple of them (then a tuple of gradients comes
back). Default: the first parameter. `jit=True` runs the generated gradient compiled by
numba (see jit.py). `has_aux=True`: the function returns (out, aux), JAX's convention.

Arguments and results may be structures (pytrees, tree.py): nested lists, tuples, dicts,
NamedTuples, dataclasses and objects holding numbers and arrays. A gradient (a tangent,
a Hessian-vector product) comes back in the structure of its argument; see "what can be
differentiated" below for the leaves that carry no derivative.

transpile reads the source of the function it differentiates: define it in a file (or a
doctest, whose runner provides the source). A function typed at the interactive prompt has
no source and is refused with a `TranspileError`.
"""
from __future__ import annotations

import copy
import functools
import inspect
import numbers
import sys
import types
from collections import OrderedDict
from typing import Any, Callable, List, Literal, Protocol, Sequence, Tuple, TypeVar, Union
from typing import cast, overload

from . import pipeline, tree
from .checkpoint import check_option
from .errors import TranspileError
from .seed import is_bool, not_a_number, not_real, result_seed
from .namespaces import is_immutable, iscomplexobj, match_array, standard_only, value_namespace
from .analysis import (IMMUTABLE_SUFFIX, LAZY_SUFFIX, STRUCTURES, complex_key, element_kind, elements_key, is_complex_value,
                       lazy_backend, lazy_key)
from .analysis import value_kind
from .emit import annotate, locate
from .runtime import zeros_like, _is_zero
from .shapes import value_mask

import numpy as np

# --- the types of the public API ------------------------------------------------------------

#: which parameters to differentiate with respect to: an index, a name, or several of them
#: (a tuple or a list; then a tuple of gradients comes back)
Wrt = Union[int, str, Tuple[Union[int, str], ...], List[Union[int, str]]]
#: ``checkpoint=``: None (every iteration saved), "sqrt" or a snapshot every k iterations
Checkpoint = Union[None, Literal["sqrt"], int]
#: ``mode=`` of differentiate
Mode = Literal["reverse", "forward"]
#: a pullback: cotangent of the result -> gradient(s) of the wrt parameters
Pullback = Callable[[Any], Any]

_F = TypeVar("_F", bound=Callable[..., Any])


class Derivative(Protocol):
    """What the derivative makers return (``grad``, ``hessian``, ``hvp``,
    ``grad(grad(f))``): call it with the arguments of ``f``; ``.source`` is the generated
    Python it runs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    @property
    def source(self) -> str: ...


def _function(f: Any) -> Callable[..., Any]:
    """The user's function behind f (a Differentiable's own function)."""
    f = getattr(f, "__transpile_function__", f)
    if not callable(f):
        raise TypeError(f"{f!r} is not callable")
    if isinstance(f, functools.partial):
        from .calls import partial_function
        f = partial_function(f)
    if inspect.isgeneratorfunction(f):
        import ast
        unit = pipeline.unit_of(f)
        where = next((n for n in ast.walk(unit.node)
                      if isinstance(n, (ast.Yield, ast.YieldFrom))), None)
        raise unit.error("unsupported construct 'yield': a generator function is "
                         "differentiated only where a differentiated function loops over "
                         "what it yields", where)
    if getattr(f, "__transpile_derivative__", False) is True:
        name = getattr(f, "__name__", repr(f))
        raise TranspileError(
            f"{name} is a derivative made by transpile; its derivative comes from "
            "transpile.hessian, transpile.hvp or transpile.grad(transpile.grad(f)), not "
            "from differentiating it again with vjp, jvp or value_and_grad")
    return f


def _code_of(f: Any) -> Callable[[dict[str, str]], Callable[..., Any]] | None:
    """For a derivative made by transpile that can be differentiated again (a gradient,
    grad of a gradient...): ``kinds -> its generated code``, a plain Python function of
    the parameters of the user's function computing what the derivative returns (built
    to be differentiated again). None for anything else."""
    code = getattr(f, "__transpile_code__", None)
    return code if callable(code) and getattr(f, "fn", None) is not None else None


def _differentiable(f: Any) -> tuple[Callable[..., Any], Callable[[dict[str, str]], Any]]:
    """(the user's function, whose parameters a derivative has; kinds -> the function to
    transform): the function itself, or for a derivative its generated code (so any
    derivative maker works on derivatives, to any order)."""
    code = _code_of(f)
    if code is not None:
        return cast(Callable[..., Any], f.fn), code
    fn = _function(f)
    return fn, lambda kinds: fn


# --- the API boundary: a TranspileError reaches the user as one short message -------------
#
# Errors are raised deep in the passes; what the user needs is the message (which already
# starts with their file:line) and their own frames. At every public entry point the
# error's traceback and its chain of internal exceptions are dropped, so the traceback
# holds the user's frames and one frame of transpile's (the entry point).

def _trimmed(exc: TranspileError) -> TranspileError:
    locate(exc)                  # a rule's refusal at run time: at the user's line
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return exc


def _entry_point(fn: _F) -> _F:
    """Decorate a public function: TranspileErrors leave it trimmed (see above)."""
    @functools.wraps(fn)
    def entry(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TranspileError as exc:
            raise _trimmed(exc) from None
    setattr(entry, "__transpile_derivative__", True)
    return cast(_F, entry)


class _Entry:
    """A derivative function from higher.py (hvp, hessian, jacobian, grad of grad) as the
    user receives it: the arguments checked, TranspileErrors trimmed; ``.source`` and
    the other attributes are the wrapped object's."""

    __transpile_derivative__ = True

    def __init__(self, wrapped: Callable[..., Any], fn: Callable[..., Any] | None = None,
                 names: tuple[str, ...] = ()) -> None:
        self._wrapped, self._fn, self._names = wrapped, fn, names
        self.__name__ = getattr(wrapped, "__name__", "derivative")

    def __repr__(self) -> str:
        return f"<transpile derivative {self.__name__}>"

    @property
    def source(self) -> str:
        """The generated Python this derivative runs."""
        try:
            return cast(str, getattr(self._wrapped, "source"))
        except TranspileError as exc:
            raise _trimmed(exc) from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._fn is not None:
                _check_arguments(self._fn, self._names, _bind(self._fn, args, {},
                                                              self._names))
            return self._wrapped(*args, **kwargs)
        except TranspileError as exc:
            raise _trimmed(exc) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__transpile_code__":
            raise AttributeError(name)
        return getattr(self._wrapped, name)


def entry_for(maker: _F) -> _F:
    """A higher-order derivative maker (hvp, hessian, jacobian) made a public entry point:
    what it returns checks its arguments and trims errors like grad's functions (and has
    the type the maker declares: an ``_Entry`` is a `Derivative` where the maker's result
    is one)."""
    @functools.wraps(maker)
    def entry(f: Callable[..., Any], wrt: Wrt | None = None, *args: Any,
              argnums: Wrt | None = None, **kwargs: Any) -> _Entry:
        try:
            fn, _ = _differentiable(f)
            wrt = _resolve_wrt(wrt, argnums)
            names, _ = _wrt_names(fn, wrt)
            return _Entry(maker(f, wrt, *args, **kwargs), fn, names)
        except TranspileError as exc:
            raise _trimmed(exc) from None
    setattr(entry, "__transpile_derivative__", True)
    return cast(_F, entry)


# --- what can be differentiated ------------------------------------------------------------
#
# An argument is a number, an array, or a structure of them (tree.py: lists, tuples, dicts,
# NamedTuples, dataclasses, objects of your classes). Inside a structure, leaves that carry
# no derivative (strings, bools, None, integer arrays and NumPy integers, functions,
# modules, classes...) are allowed: their gradient is None. Python ints are numbers, at
# the top level and inside structures alike (their gradient is a float). Leaves whose
# derivative transpile cannot give (complex, Fraction, np.matrix...) are refused, naming
# their path (``params['W1']``, ``model.layers[0].W``).

def _leaf_refusal(value: Any) -> str | None:
    """Why a leaf cannot be differentiated with respect to (None when it can, or when it
    is a leaf without derivative: see `_no_derivative`)."""
    if isinstance(value, (float, int, np.floating, np.integer, np.bool_)):
        return None                 # bools and numpy integers: refused by the callers
    if isinstance(value, (complex, np.complexfloating)):
        return None                 # autograd's convention: registry.COMPLEX
    if isinstance(value, np.matrix):
        return ("an np.matrix (its * is a matrix product); pass an array, "
                "np.asarray(x)")
    if isinstance(value, np.ma.MaskedArray):
        return "a masked array; pass an array (np.ma.filled(x) or x.data)"
    exact: tuple[type, ...] = tuple(
        getattr(sys.modules[m], c) for m, c in (("fractions", "Fraction"),
                                                ("decimal", "Decimal")) if m in sys.modules)
    if exact and isinstance(value, exact):     # (a module not imported made none of them)
        return (f"a {type(value).__name__} (exact arithmetic has no derivative code); "
                "pass a float")
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "shape") and (
            isinstance(value, np.ndarray) or hasattr(value, "__array_namespace__")):
        kind = getattr(dtype, "kind", "f")
        if kind not in "fiubc":
            return f"an array of dtype {dtype}"
        return None                 # integer arrays: refused by the callers
    if isinstance(value, numbers.Number):
        return f"a number of type {type(value).__name__}; pass a float"
    return None


def _no_derivative(value: Any) -> bool:
    """Is this leaf of a structure one without derivative (its gradient None): a str, a
    bool, None, an integer or boolean array or NumPy integer, a function, a module, a
    class, any other object that is no number and no array?"""
    cls = value.__class__
    if cls is float or cls is int:
        return False
    if cls is bool or isinstance(value, (np.bool_, np.integer)):
        return True
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "shape"):
        return getattr(dtype, "kind", "f") in "biu"
    return not isinstance(value, (numbers.Number, np.generic))


def _node(value: Any) -> tuple[list[Any], Any]:
    """(children, aux) of a node of a structure (tree.py's description of it: aux[0] its
    kind, for dicts, dataclasses and objects aux[2] their keys)."""
    return cast(Tuple[List[Any], Any], tree._children(value))


def _child_path(path: str, aux: Any, i: int) -> str:
    """The path of child i of a node (``p['k']``, ``p[0]``, ``p.attr``)."""
    kind = aux[0]
    if kind == "dict":
        return f"{path}[{aux[2][i]!r}]"
    if kind in ("dataclass", "object"):
        return f"{path}.{aux[2][i]}"
    if kind == "namedtuple":
        return f"{path}.{aux[1]._fields[i]}"
    return f"{path}[{i}]"


def _refused_leaf(value: Any, path: str) -> tuple[str, str] | None:
    """(path, why) of the first leaf of a structure that cannot be differentiated."""
    if value is None or not tree.is_node(value):
        why = _leaf_refusal(value)
        return None if why is None else (path, why)
    children, aux = _node(value)
    for i, child in enumerate(children):
        found = _refused_leaf(child, _child_path(path, aux, i))
        if found is not None:
            return found
    return None


def _not_differentiable(value: Any, name: str = "it") -> str | None:
    """Why a value cannot be differentiated with respect to (None when it can)."""
    if isinstance(value, (bool, np.bool_)):
        return "it is a bool"
    if isinstance(value, str):
        return "it is a str (strings have no derivative)"
    if value is not None and tree.is_node(value):
        found = _refused_leaf(value, name)
        if found is not None:
            return f"{found[0]} is {found[1]}"
        leaves = tree.leaves(value)
        if leaves and all(_no_derivative(leaf) for leaf in leaves):
            kinds = sorted({type(leaf).__name__ for leaf in leaves})
            return (f"it is a {type(value).__name__} holding no number and no float array "
                    f"(only leaves without derivative: {', '.join(kinds)})")
        return None
    why = _leaf_refusal(value)
    if why is None and not isinstance(value, (numbers.Number, np.generic)) and \
            getattr(value, "dtype", None) is None:
        why = (f"an object of class {type(value).__qualname__}, which holds nothing "
               "transpile can see (register its class with transpile.tree.register)")
    return None if why is None else f"it is {why}"


def _check_arguments(fn: Callable[..., Any], names: Sequence[str],
                     values: Sequence[Any]) -> None:
    """A TranspileError naming the parameter (and the path inside it) if a wrt argument
    cannot be differentiated with respect to."""
    for name, value in zip(names, values):
        why = _not_differentiable(value, name)
        if why is None and getattr(getattr(value, "dtype", None), "kind", "f") in "biu":
            why = (f"it is an integer or boolean array (pass floats, e.g. "
                   f"{name}.astype(float))")
        if why is not None:
            code = getattr(fn, "__code__", None)
            raise TranspileError(
                f"cannot differentiate with respect to '{name}': {why}",
                getattr(code, "co_filename", None), getattr(code, "co_firstlineno", None),
                fn.__qualname__)


def _returns_nothing(fn: Callable[..., Any]) -> bool:
    """Does fn (statically) return None on every path: no `return <value>` at all?"""
    import ast
    node = pipeline.unit_of(fn).node
    stack = list(node.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                          ast.ClassDef)):
            continue
        if isinstance(n, ast.Return) and n.value is not None and not (
                isinstance(n.value, ast.Constant) and n.value.value is None):
            return False
        stack.extend(ast.iter_child_nodes(n))
    return True


def _param_names(fn: Callable[..., Any]) -> list[str]:
    """The parameter names of fn (`*args` and `**kwargs` by their names)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise TranspileError(f"cannot read the parameters of {fn!r}") from None
    return list(sig.parameters)


def _position(params: list[str], name: str) -> int:
    """The position of the argument a wrt name is (for `**kw[key]`: of **kw, which is
    passed by keyword anyway)."""
    element = pipeline.element_of(name)
    if element is None:
        return params.index(name)
    base = params.index(element[0])
    return base + element[1] if isinstance(element[1], int) else base


def _varkw(fn: Callable[..., Any]) -> str | None:
    """The name of fn's `**kwargs` parameter, or None."""
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return p.name
    return None


def _vararg(fn: Callable[..., Any]) -> tuple[str, int] | None:
    """(name, position) of fn's `*args` parameter, or None."""
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if p.kind is p.VAR_POSITIONAL:
            return p.name, i
    return None


def _wrt_names(fn: Callable[..., Any], wrt: Wrt) -> tuple[tuple[str, ...], bool]:
    """(names tuple, whether the caller asked for a tuple)."""
    params = _param_names(fn)
    many = isinstance(wrt, (tuple, list))
    items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
    names = []
    star = _vararg(fn)
    for w in items:
        if isinstance(w, int) and not isinstance(w, bool) and star is not None and (
                w >= star[1] or w < 0):
            if w < 0:
                raise TranspileError(f"wrt={w}: {fn.__qualname__} takes *{star[0]}, so "
                                     "count its arguments from the start")
            names.append(f"{star[0]}[{w - star[1]}]")     # argument w: an element of *xs
        elif isinstance(w, int) and not isinstance(w, bool):
            if not -len(params) <= w < len(params):
                raise TranspileError(f"wrt={w} but {fn.__qualname__} has {len(params)} "
                                     "parameters")
            names.append(params[w])
        elif isinstance(w, str) and w not in params and _varkw(fn) is not None:
            names.append(f"{_varkw(fn)}[{w}]")      # a keyword argument into **kw
        elif isinstance(w, str):
            if w not in params:
                raise TranspileError(f"wrt={w!r}: {fn.__qualname__} has no such parameter")
            names.append(w)
        else:
            raise TypeError(f"wrt must be an int, a str or a tuple of them, not {w!r}")
    return tuple(names), many


def _resolve_wrt(wrt: Wrt | None, argnums: Wrt | None) -> Wrt:
    """``argnums=`` (JAX's and autograd's spelling) is ``wrt=``; both at once is an error;
    neither: the first parameter."""
    if argnums is not None:
        if wrt is not None:
            raise TranspileError("give wrt= or argnums= (the same thing), not both")
        return argnums
    return 0 if wrt is None else wrt


def _bind(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
          names: Sequence[str]) -> list[Any]:
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    out = []
    for n in names:
        element = pipeline.element_of(n)
        if element is None:
            out.append(bound.arguments[n])
            continue
        given = bound.arguments[element[0]]
        if isinstance(element[1], str):
            if element[1] not in given:
                raise TranspileError(f"wrt={element[1]!r}: the call passes no keyword "
                                     f"argument {element[1]}= into **{element[0]}")
            out.append(given[element[1]])
            continue
        if element[1] >= len(given):
            raise TranspileError(f"cannot differentiate with respect to argument "
                                 f"{n}: the call passes {len(given)} to *{element[0]}")
        out.append(given[element[1]])
    return out


def _is_scalar(value):
    if isinstance(value, (int, float, complex)):
        return True
    shape = getattr(value, "shape", None)
    return shape == ()


def _own(value: Any, like: Any = None, path: str = "the cotangent",
         tangent: bool = False) -> Any:
    """A cotangent (or tangent) as derivative code keeps adjoints of structures (tree.py):
    fresh lists for lists, tuples and NamedTuples, fresh dicts for dicts, dataclasses and
    objects (the adjoint sweep updates them), leaves as they are. With `like`, the value it
    belongs to, a structure of another kind, length or keys is a TranspileError naming the
    path (a list for a tuple is fine; 0.0 or None is a zero of any structure, and so is a
    key of a dict or an attribute left out). For a `tangent`, zeros are made shaped like
    `like` (tangent code reads every part of a tangent) and arrays are copied (tangent
    code writes into the tangents of the arguments it writes into)."""
    if value is None or _is_zero(value):        # None: the zero placeholder, 0.0
        return zeros_like(like) if tangent and like is not None else 0.0
    if not tree.is_node(value):
        if like is not None and tree.is_node(like):
            raise TranspileError(f"{path} is a {type(value).__name__}, but the value it "
                                 f"belongs to is a {type(like).__name__}")
        return value.copy() if tangent and isinstance(value, np.ndarray) else value
    children, aux = _node(value)
    if like is None or not tree.is_node(like):
        if like is not None and not _no_derivative(like):
            raise TranspileError(f"{path} is a {type(value).__name__}, but the value it "
                                 f"belongs to is a {type(like).__name__}")
        return tree.adjoint_zeros(value, lambda leaf: leaf.copy() if tangent and isinstance(
            leaf, np.ndarray) else leaf)
    like_children, like_aux = _node(like)
    keyed = ("dict", "dataclass", "object")
    if like_aux[0] in keyed:
        names = like_aux[2]
        if aux[0] not in keyed or not set(aux[2]) <= set(names) or (
                aux[0] != "dict" and aux[1] is not like_aux[1]):
            raise TranspileError(f"{path} has another structure than the value it belongs "
                                 f"to: a {type(value).__name__} with keys "
                                 f"{list(aux[2]) if aux[0] in keyed else len(children)}, "
                                 f"for a {type(like).__name__} with keys {list(names)}")
        got = dict(zip(aux[2], children))
        return {k: _own(got.get(k), c, _child_path(path, like_aux, i), tangent)
                for i, (k, c) in enumerate(zip(names, like_children))}
    if aux[0] in keyed or len(children) != len(like_children):
        raise TranspileError(f"{path} has another structure than the value it belongs to: "
                             f"a {type(value).__name__} of {len(children)} items, for a "
                             f"{type(like).__name__} of {len(like_children)}")
    return [_own(v, c, _child_path(path, like_aux, i), tangent)
            for i, (v, c) in enumerate(zip(children, like_children))]


def _match_dtype(g: Any, x: Any) -> Any:
    """g with the floating dtype of x (a float32 input gets a float32 gradient even where
    the function mixes in float64 constants), as NumPy arrays keep."""
    if x.__class__ is not np.ndarray and standard_only(x):   # a PyTorch, JAX... array:
        return match_array(g, x)                             # its library, its dtype
    dt = getattr(x, "dtype", None)
    if x.__class__ is complex:     # a Python complex gets a Python complex
        return complex(g) if isinstance(g, (np.generic, int, float)) else g
    if dt is not None and dt.kind == "c" and not np.iscomplexobj(g):
        return np.asarray(g, dtype=dt) if np.ndim(g) else dt.type(g)
    if dt is None or dt.kind != "f":
        return g
    gdt = getattr(g, "dtype", None)
    if gdt == dt or gdt is None and not isinstance(g, (int, float)):
        return g
    return g.astype(dt) if gdt is not None and np.ndim(g) else dt.type(g)


def _leaf_gradient(x: Any, g: Any) -> Any:
    """The gradient of one leaf x from its adjoint g: None for a leaf without derivative
    (a str, a bool, an integer array, a function: `_no_derivative`); zeros shaped like an
    array where nothing flowed; a float for a Python int; x's floating dtype."""
    cls = x.__class__
    if cls is float or cls is int:
        return 0.0 if g is None else float(g) if g.__class__ is int else g
    if _no_derivative(x):
        return None
    if _is_zero(g):
        g = zeros_like(x)
    elif g.__class__ is int:
        g = float(g)
    return _match_dtype(g, x)


_FLOAT = {float}


def _shaped(x: Any, g: Any) -> Any:
    """The gradient of x in its structure, from the adjoint g derivative code kept:
    `tree.like` with `_leaf_gradient` at the leaves (a tuple stays a tuple, a dict keeps
    its keys, an object comes back as an instance of its class). Lists and tuples of
    floats and arrays, the common case, take a shorter way to the same result."""
    cls = x.__class__
    if cls is float and g.__class__ is float:
        return g
    if cls is np.ndarray and g.__class__ is np.ndarray and g.dtype == x.dtype:
        return g
    if (cls is list or cls is tuple) and g.__class__ is list and len(g) == len(x):
        if cls is list and set(map(type, x)) == _FLOAT and set(map(type, g)) == _FLOAT:
            return g
        out = [_shaped(a, b) for a, b in zip(x, g)]
        return out if cls is list else tuple(out)
    return tree.like(x, g, _leaf_gradient)


def _finish(grads, inputs):
    """The gradients in the structures of their inputs (`_shaped`)."""
    return tuple(_shaped(x, g) for g, x in zip(grads, inputs))


def _match_dtypes(grads, inputs):
    """Each gradient with the floating dtype of its input (`_match_dtype`)."""
    out = None
    for i, (g, x) in enumerate(zip(grads, inputs)):
        if x.__class__ is float:
            continue
        m = _match_dtype(g, x)
        if m is not g:
            out = list(grads) if out is None else out
            out[i] = m
    return grads if out is None else tuple(out)


#: argument types whose type alone keys the generated code
_PLAIN_TYPES = frozenset({float, int, bool, str, type(None), np.float64})


def _structure_key(value: Any) -> Any:
    """The key of a structured argument: its classes of nodes, nested, with the set of
    the keys of what each holds (dtype for an array, type for any other leaf). Neither a
    list's length nor a dict's keys: the generated code is specialised on the kinds of
    what a structure holds (`_kinds`), not on how many there are, and the gradient takes
    its structure from the argument at each call (`_finish`)."""
    cls = value.__class__
    if cls is np.ndarray:
        return value.dtype
    if cls is list or cls is tuple:          # (the common case, without tree's walk)
        children = value
        classes = set(map(type, value))
        if classes <= _PLAIN_TYPES:
            return cls, frozenset(classes)
    elif cls in _PLAIN_TYPES or value is None or not tree.is_node(value):
        return cls
    else:
        children = _node(value)[0]
    return cls, frozenset([_structure_key(c) for c in children])


def _type_key(args, kwargs):
    """Cheap key of the argument types the generated code is specialized on (for an
    array also its number of dimensions and which of them have size 1: shapes.py; for a
    structure `_structure_key`)."""
    key: Tuple[Any, ...] = tuple([
        (a.dtype, a.ndim, 1 in a.shape and tuple([d == 1 for d in a.shape]))
        if type(a) is np.ndarray else type(a)
        if type(a) in _PLAIN_TYPES else _structure_key(a)
        for a in args])
    if kwargs:
        key += tuple(sorted((k, _structure_key(v), value_mask(v))
                            for k, v in kwargs.items()))
    for values in (args, kwargs.values()):
        for a in values:
            cls = a.__class__
            if cls in _PLAIN_TYPES or cls in _CONTAINER_TYPES:
                continue            # (the common case: neither test below can hold)
            if static_callable(a):  # a function argument: the code calls it by its rule
                key += (a,)
            elif _user_class(a):    # an object: which attributes its own dict holds
                key += (tuple(getattr(a, "__dict__", ())),)    # (one may hide a method)
            elif isinstance(a, types.ModuleType):              # an array namespace
                key += (a,)
    return key


#: argument types that are never a function or an object of the user's (`_type_key`)
_CONTAINER_TYPES = frozenset({np.ndarray, list, tuple, dict})


def static_callable(value: Any) -> bool:
    """Is value a function the generated code can be specialised on (a Python function,
    or a function with a derivative rule such as np.tanh): `nl(x)` with nl that argument
    is then the call of that function itself (its rule, or its derivative code)."""
    cls = value.__class__
    if cls is float or cls is np.ndarray or cls is int or cls is list or cls is tuple:
        return False
    if inspect.isfunction(value):
        return not _is_derivative(value)
    if isinstance(value, (np.ufunc, types.BuiltinFunctionType)) or (
            callable(value) and not isinstance(value, type) and
            type(value).__name__ == "_ArrayFunctionDispatcher"):     # np.fft.fft, np.sum
        from .rules import lookup
        try:
            return any(lookup(value, n) is not None for n in (None, 1, 2, 3))
        except TypeError:
            return False
    return False


def _user_class(value: Any) -> bool:
    """Is value an instance of a class of the user's (not a number, array, container,
    module, function or class): the variant is specialised on its class (`_type_key`
    holds it), so `value.method(x)` is the call of that class's function."""
    cls = type(value)
    return (tree.type_module(value) not in ("builtins", "numpy") and not isinstance(
        value, (np.ndarray, np.generic, types.ModuleType, type, functools.partial,
                types.FunctionType, types.MethodType, types.BuiltinFunctionType))
        and inspect.isclass(cls))


def _is_derivative(value: Any) -> bool:
    return getattr(value, "__transpile_derivative__", False) is True


def _kinds(fn: Callable[..., Any], args: Sequence[Any],
           kwargs: dict[str, Any]) -> dict[str, str]:
    """Kind of every parameter's value (scalar, array, a structure + the join of the kinds
    of what it holds under elements_key, unknown)."""
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    kinds: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kinds[name] = value_kind(value)
        if static_callable(value):
            kinds[name + ".callable"] = value      # see static_callable
        elif _user_class(value) and not any(
                inspect.isfunction(inspect.getattr_static(type(value), k, None))
                for k in getattr(value, "__dict__", ())):
            kinds[name + ".class"] = type(value)   # its methods' calls: pipeline.static
        mask = value_mask(value)
        if mask is not None:
            kinds[name + ".shape"] = mask
        if is_complex_value(value):
            kinds[complex_key(name)] = True        # see analysis: complex values
        lazy = lazy_backend(value) if not isinstance(value, (int, float)) else None
        if lazy:
            kinds[lazy_key(name)] = lazy           # see analysis: lazy values
        if any(map(is_immutable, tree.leaves(value) if tree.is_node(value) else [value])):
            kinds[name + IMMUTABLE_SUFFIX] = "JAX"     # analysis: no element writes
        if kinds[name] in STRUCTURES:          # lists, dicts, objects: what they hold
            kinds[elements_key(name)] = element_kind(value) or "unknown"
        ns = value_namespace(value) if value.__class__ not in _PLAIN_TYPES else None
        if ns is not None:       # `xp.sum(x)`: normalize.Flattener.namespaces, array_api
            kinds[name + (".namespace" if ns is value else ".xp")] = ns.__name__
            from .rules.array_api import register
            register(ns)
    return kinds


class Variants:
    """The compiled variants of one derivative, one per kind of arguments: generated code
    is specialised on whether each argument is a number, an array or a list (and of
    what), so a call picks the variant for its arguments' kinds, building it the first
    time (`build(kinds)`). Used by gradients, Hessian-vector products and grad of grad.

    `last` is the variant used last, shown by ``.source``; before any call `default()`
    builds the all-scalar one to show."""

    def __init__(self, fn: Callable[..., Any], build: Callable[[dict[str, str]], Any],
                 check: Callable[[Sequence[Any], dict[str, Any]], None] | None = None):
        self.fn, self.build, self.check = fn, build, check
        self.variants: dict[Any, Any] = {}
        self.last: Any = None

    def get(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        key = _type_key(args, kwargs)
        variant = self.variants.get(key)
        if variant is None:
            if self.check is not None:         # the arguments, before the first build
                self.check(args, kwargs)
            variant = self.variants[key] = self.build(_kinds(self.fn, args, kwargs))
        self.last = variant
        return variant

    def default(self) -> Any:
        if self.last is None:
            self.last = self.build({p: "scalar" for p in _param_names(self.fn)})
        return self.last


def _gradient_variants(fn, names, jit=False, options=None, derivative=None):
    """Variants of the gradient of fn (the compiled code of `pipeline.gradient_function`,
    through numba with `jit`). With `code` (kinds -> generated code of a derivative of
    fn), the gradient of that code: reverse mode, or where a rule inside has no reverse
    rule of its own and the parameters are numbers, forward mode (one tangent per
    parameter)."""
    def build(kinds):
        if derivative is not None:
            return _derivative_gradient(derivative(kinds), names, kinds, options)
        compiled = pipeline.gradient_function(fn, names, kinds, options)
        if _returns_nothing(fn):
            code = fn.__code__
            raise TranspileError("the function returns None: a gradient needs a "
                                 "function returning a number", code.co_filename,
                                 code.co_firstlineno, fn.__qualname__)
        if jit:
            foreign = sorted(v for k, v in kinds.items() if k.endswith(".xp")
                             and v != "array_api_compat.numpy") or sorted(
                v for k, v in kinds.items() if k.endswith(LAZY_SUFFIX))
            if foreign:
                code = fn.__code__
                raise TranspileError(f"jit=True compiles derivative code for NumPy arrays; "
                                     f"this call passes arrays of {foreign[0]}: use "
                                     "jit=False for them", code.co_filename,
                                     code.co_firstlineno, fn.__qualname__)
            from . import jit as numba_backend
            compiled = numba_backend.compiled_for(compiled)
        return compiled

    def check(args, kwargs):
        _check_arguments(fn, names, _bind(fn, args, kwargs, names))
    return Variants(fn, build, check)


def _written_structures(fn: Callable[..., Any], names: Sequence[str]) -> bool:
    """Does fn change a parameter of `names` in place (a list it appends to...)?"""
    from .analysis import mutated_deep
    return bool(mutated_deep(pipeline.unit_of(fn)) & set(names))


def _skeleton(x: Any) -> Any:
    """A copy of a structure's containers (its leaves shared): its shape as given, kept
    while the function changes the original."""
    if x is None or not tree.is_node(x):
        return x
    leaves, treedef = tree.flatten(x)
    return tree.unflatten(treedef, leaves)


def _aux_variants(fn, names, checkpoint=None):
    """Variants of the forward and adjoint sweeps of fn (`pipeline.vjp_pair`), for
    gradients of functions returning (out, aux)."""
    def build(kinds):
        return pipeline.vjp_pair(fn, names, kinds, checkpoint)

    def check(args, kwargs):
        _check_arguments(fn, names, _bind(fn, args, kwargs, names))
    return Variants(fn, build, check)


def _derivative_gradient(target, names, kinds, options, gradient_only=False):
    """The gradient of generated derivative code `target` (see `_gradient_variants`)."""
    try:
        return pipeline.gradient_function(target, names, kinds, options, gradient_only)
    except TranspileError as exc:
        if not getattr(exc, "no_reverse_rule", False) or any(
                kinds.get(n) != "scalar" for n in names):
            raise
    return _ForwardGradient(target, names, kinds, gradient_only)


class _ForwardGradient:
    """The gradient of a function of numbers by forward mode: one tangent function per
    parameter, its tangent fixed to 1.0 (``seed``); shaped like a `pipeline.Compiled`
    gradient: ``.function(*args) -> (value, gradients)`` (or the gradients alone)."""

    def __init__(self, target, names, kinds, gradient_only=False):
        self.gradient_only = gradient_only
        self.parts = [pipeline.jvp_function(target, (n,), kinds, {"seed": 1.0},
                                            tangent_only=gradient_only) for n in names]

    @property
    def function(self) -> Callable[..., Any]:
        if len(self.parts) == 1:        # the generated tangent function itself
            return cast(Callable[..., Any], self.parts[0].function)
        return self._combined

    def _combined(self, *args: Any, **kwargs: Any) -> Any:
        outs = [part.function(*args, **kwargs) for part in self.parts]
        grads = tuple(outs) if self.gradient_only else tuple(o[1] for o in outs)
        return grads if self.gradient_only else (outs[0][0], grads)

    @property
    def source(self) -> str:
        return "\n\n".join(part.source for part in self.parts)


class GradientFunction:
    """A gradient made by `grad` or `value_and_grad`: call it like ``f``.

    Calling it runs generated derivative code (transformed on the first call for each
    kind of arguments: numbers, arrays, lists; compiled by numba with ``jit=True``) and
    returns the gradient, or ``(value, gradient)`` for `value_and_grad`.

    Attributes
    ----------
    source : str
        The generated Python source of the most recently used variant (the all-scalar
        one before a call).
    fn : callable
        The function being differentiated.
    names : tuple of str
        The parameters differentiated with respect to.
    """

    __transpile_derivative__ = True

    def __init__(self, f: Callable[..., Any], wrt: Wrt, with_value: bool, jit: bool = False,
                 checkpoint: Checkpoint = None, has_aux: bool = False) -> None:
        fn, self._target = _differentiable(f)
        code = _code_of(f)
        if code is not None and jit:
            raise TranspileError("jit=True is not available for grad(grad(f)); "
                                 "use jit=False")
        if code is not None and (has_aux or getattr(f, "has_aux", False)):
            raise TranspileError("grad of a gradient: has_aux=True is not available there")
        inner: tuple[str, ...] = getattr(f, "names", ())
        if code is not None and wrt == 0 and len(inner) == 1:
            wrt = inner[0]         # grad(grad(f, wrt=p)): the second derivative in p
        names, many = _wrt_names(fn, wrt)
        if jit and has_aux:
            raise TranspileError("has_aux=True is not available with jit=True; "
                                 "use jit=False")
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        self.fn, self.names, self.many, self.with_value = fn, names, many, with_value
        self.jit = bool(jit)
        self.has_aux = bool(has_aux)
        checkpoint = check_option(checkpoint)
        self._options = {"checkpoint": checkpoint} if checkpoint else None
        if has_aux:
            self.variants = _aux_variants(fn, names, checkpoint)
        else:
            self.variants = _gradient_variants(fn, names, self.jit, self._options, code)
        functools.update_wrapper(self, fn, updated=())   # not fn.__dict__ over ours
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + fn.__name__
        self._lookup = self.variants.variants.get
        self._several = len(names) > 1
        params = _param_names(fn)
        self._positions = [_position(params, n) for n in names]   # wrt parameters
        self._last_position = max(self._positions)
        self._written: bool | None = None     # known at the first call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._lookup(_type_key(args, kwargs))
        if compiled is None:
            try:
                compiled = self.variants.get(args, kwargs)
                if self._written is None:
                    self._written = _written_structures(self.fn, self.names)
            except TranspileError as exc:
                raise _trimmed(exc) from None
        if self.has_aux:
            return self._call_with_aux(compiled, args, kwargs)
        given = None
        if self._written:            # structures f changes: the gradient has them as given
            given = [_skeleton(x) for x in _bind(self.fn, args, kwargs, self.names)]
        try:
            value, g = compiled.function(*args, **kwargs)
        except Exception as exc:
            if self.jit:
                from .jit import call_failure
                failure = call_failure(exc, self.fn)
                if failure is not None:
                    raise _trimmed(failure) from None
            raise annotate(exc)
        if value.__class__ is not float and (not _is_scalar(value) or iscomplexobj(value)
                                             or is_bool(value)):
            self._check_number(value)
        gs = g if self._several else (g,)
        for x in gs:
            cls = x.__class__
            if cls is float and x == 0.0 or x is None or cls is int or cls is list or \
                    cls is dict:     # structures: in their inputs' (tree.like)
                return self._out(value, _finish(
                    gs, given or _bind(self.fn, args, kwargs, self.names)))
        if kwargs or len(args) <= self._last_position:
            gs = _match_dtypes(gs, _bind(self.fn, args, kwargs, self.names))
        else:
            for i in self._positions:
                if args[i].__class__ is not float:     # a float input: nothing to match
                    gs = _match_dtypes(gs, [args[i] for i in self._positions])
                    break
        return self._out(value, gs)

    def _call_with_aux(self, compiled: Any, args: Sequence[Any], kwargs: dict[str, Any]
                       ) -> Any:
        """has_aux=True: f returns (out, aux); the gradient of out, aux as f returned it
        (a pullback of the cotangent 1 of out: aux carries no derivative)."""
        try:
            value, pullback = _sweeps(self.fn, compiled, self.names, self.many, args,
                                      kwargs, has_aux=True)
            out, aux = value
            self._check_number(out)
            g = pullback(result_seed(out))
        except TranspileError as exc:
            raise _trimmed(exc) from None
        aux = _own_value(aux)
        return ((out, aux), g) if self.with_value else (g, aux)

    def _check_number(self, value: Any) -> None:
        """A real number, or an array of one element (taken for it: seed.py)."""
        if value.__class__ is not float and iscomplexobj(value):
            code = self.fn.__code__
            raise not_real(where=(code.co_filename, code.co_firstlineno, self.fn.__qualname__))
        if value.__class__ is not float and (is_bool(value) or not _is_scalar(value) and not (
                isinstance(value, np.ndarray) and value.size == 1)):
            code = self.fn.__code__
            raise not_a_number(value, where=(code.co_filename, code.co_firstlineno,
                                             self.fn.__qualname__))

    def _out(self, value: Any, gs: tuple[Any, ...]) -> Any:
        out = gs if self.many else gs[0]
        return (value, out) if self.with_value else out

    def __repr__(self) -> str:
        return f"<transpile {self.__name__} wrt {', '.join(self.names)}>"

    @property
    def source(self) -> str:
        """Generated source of the most recently used variant (all-scalar before a call);
        with jit=True too, the Python that numba compiles (before its numba pass)."""
        try:
            return self.variants.default().source
        except TranspileError as exc:
            raise _trimmed(exc) from None

    def __transpile_code__(self, kinds: dict[str, str]) -> Callable[..., Any]:
        """The generated code of this gradient for arguments of these kinds, built to be
        differentiated again (copying helpers): a function of ``f``'s parameters
        returning the gradient (``(value, gradient)`` for value_and_grad)."""
        if self.many and len(self.names) == 1:
            raise TranspileError(f"{self.__name__} returns a tuple of one gradient; to "
                                 "differentiate it again give wrt as one parameter")
        options = dict(self._options or {}, copy_adjoints=True, finished=True)
        code = _derivative_gradient(self._target(kinds), self.names, kinds, options,
                                    gradient_only=not self.with_value).function
        if not hasattr(code, "__transpile_source__"):
            raise TranspileError(f"{self.__name__} is computed by forward mode, one "
                                 "parameter at a time: to differentiate it again, give "
                                 "wrt as one parameter")
        return cast(Callable[..., Any], code)

    @property
    def generated(self) -> Callable[..., Any]:
        """The generated gradient function itself (``(value, gradient)`` from the
        arguments of ``f``)."""
        return self.variants.default().function


@_entry_point
def value_and_grad(f: Callable[..., Any], wrt: Wrt | None = None, jit: bool = False,
                   checkpoint: Checkpoint = None, *, has_aux: bool = False,
                   argnums: Wrt | None = None) -> GradientFunction:
    """Make a function that returns both ``f(*args)`` and its gradient.

    The same as `grad`, but calling the result returns ``(value, gradient)``: the value
    comes from the forward sweep of the generated code, at no extra cost.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number (an array of one
        element, shape (1,) or (1, 1), is taken for the number it holds).
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to: an index, a name, or several
        (the gradient is then a tuple, in that order). Default: the first parameter.
    jit : bool, optional
        Compile the generated code with numba (the ``jit`` extra): numbers and NumPy
        arrays (what numba cannot compile is a TranspileError, see jit.py).
    checkpoint : None, "sqrt" or int, optional
        None (default): loops keep every iteration's saved values. ``"sqrt"`` or ``k``:
        long loops keep a snapshot every ``ceil(sqrt(n))`` or ``k`` iterations and re-run
        one segment at a time in the adjoint sweep (tape memory O(sqrt n) for one extra
        forward pass).
    has_aux : bool, optional
        ``f`` returns a pair ``(out, aux)``: out is differentiated, aux (any value, any
        structure) is returned as ``f`` computed it; the call then returns
        ``((out, aux), gradient)`` (JAX's convention).
    argnums : int, str, or tuple or list of them, optional
        Another name of ``wrt`` (JAX's and autograd's); give one of the two.

    Returns
    -------
    GradientFunction
        ``value_and_grad(f)(*args, **kwargs) -> (f(*args, **kwargs), gradient)``;
        ``.source`` shows the generated code. The gradient has the structure of its
        argument (see `grad`).

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated (an unsupported construct, a call with no
        rule, no source, a ``wrt`` naming no parameter, ``jit=True`` without numba, a bad
        ``checkpoint``), raised when the result is made or first called, naming the
        user's file:line. Also when a call returns something other than a number.

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * x * w
    >>> transpile.value_and_grad(f)(3.0, 2.0)
    (18.0, 12.0)
    >>> transpile.value_and_grad(f, wrt=("x", "w"))(3.0, 2.0)
    (18.0, (12.0, 9.0))
    """
    return GradientFunction(f, _resolve_wrt(wrt, argnums), True, jit, checkpoint, has_aux)


@_entry_point
def grad(f: Callable[..., Any], wrt: Wrt | None = None, jit: bool = False,
         checkpoint: Checkpoint = None, *, has_aux: bool = False,
         argnums: Wrt | None = None) -> Derivative:
    """Make a function that computes the gradient of ``f``.

    transpile reads the source of ``f``, writes a Python function holding its primal
    statements and the adjoint statements (reverse mode), compiles and caches it. The
    transform runs on the first call for each kind of arguments (numbers, arrays, lists);
    later calls run the generated code directly.

    Parameters
    ----------
    f : callable
        A Python function defined in a file (its source is read), returning a number
        (an array of one element is taken for the number it holds). A gradient made
        by ``grad`` gives the second derivative (see Notes).
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to: an index, a name, or several
        (the gradient is then a tuple, in that order). Default: the first parameter.
    jit : bool, optional
        Compile the generated code with numba (the ``jit`` extra): numbers and NumPy
        arrays (what numba cannot compile is a TranspileError, see jit.py).
    checkpoint : None, "sqrt" or int, optional
        Trade memory for time in long loops, as for `value_and_grad`.
    has_aux : bool, optional
        ``f`` returns a pair ``(out, aux)``; the call returns ``(gradient of out, aux)``
        (JAX's convention), aux as ``f`` computed it.
    argnums : int, str, or tuple or list of them, optional
        Another name of ``wrt`` (JAX's and autograd's); give one of the two.

    Returns
    -------
    GradientFunction
        ``grad(f)(*args, **kwargs)`` returns the gradient with respect to ``wrt``: a
        number for a number, an array of the argument's shape and dtype for an array,
        and for a structure (lists, tuples, dicts, NamedTuples, dataclasses, objects of
        your classes: `transpile.tree`) the same structure: a tuple stays a tuple, a dict
        keeps its keys and their order, an object comes back as an instance of its class
        (built without calling ``__init__``) holding the gradients of its attributes.
        Leaves without derivative (strings, bools, None, integer arrays, functions) get
        None; a Python int, as a number, gets a float. ``.source`` shows the generated
        code. (For ``grad(grad(f))``, a `Derivative` with the same call and
        ``.source``.)

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated (an unsupported construct, a call with no
        rule, no source, a ``wrt`` naming no parameter, an argument that is not a number,
        float array or list of them), raised when the gradient is made or first called,
        with a message starting with the user's file:line. Also when a call returns
        something other than a number (use `vjp` or `jacobian` for other results).

    Notes
    -----
    ``grad(grad(f))`` of a function of one number is its second derivative (reverse
    mode over the generated gradient code), and so on to any order: every derivative
    maker takes a gradient and differentiates its generated code (without ``wrt`` of its
    own, the outer grad differentiates in the inner one's parameter; name another to
    get mixed partials). ``transpile.grad`` and ``value_and_grad`` may be called inside a
    function being differentiated, on a def or lambda that closes over its variables:
    the inner gradient's generated code takes those variables as parameters and is
    differentiated like any called function. A function typed at the interactive prompt
    has no source: define it in a file (the examples here run under doctest, which
    provides their source).

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * x * w
    >>> df = transpile.grad(f)
    >>> df(3.0, 2.0)                          # df/dx = 2 x w
    12.0
    >>> transpile.grad(f, wrt=(0, "w"))(3.0, 2.0)
    (12.0, 9.0)
    >>> transpile.grad(transpile.grad(f))(3.0, 2.0)   # d2f/dx2 = 2 w
    4.0
    >>> def loss(p, x):                       # a structure: the gradient has its shape
    ...     return p["w"] * x + p["b"][0] * p["b"][1]
    >>> transpile.grad(loss)({"w": 2.0, "b": (1.0, 0.5), "name": "lin"}, 3.0)
    {'w': 3.0, 'b': (0.5, 1.0), 'name': None}
    >>> def with_aux(x):
    ...     y = x * x
    ...     return y * 3.0, (y, "squared")
    >>> transpile.grad(with_aux, has_aux=True)(2.0)     # (gradient, aux)
    (12.0, (4.0, 'squared'))
    >>> transpile.grad(transpile.grad(f), wrt="w")(3.0, 2.0)   # d2f/dw dx = 2 x
    6.0
    >>> def g(x):
    ...     return x * transpile.grad(lambda y: x * y * y)(3.0)   # x * (2 x y) at y = 3
    >>> transpile.grad(g)(2.0)                # d/dx 6 x^2 = 12 x
    24.0
    >>> print(df.source)                      # doctest: +ELLIPSIS
    def grad_f(x, w):
        ...
        return _result, dx
    <BLANKLINE>
    """
    wrt = _resolve_wrt(wrt, argnums)
    return GradientFunction(f, wrt, False, jit, checkpoint, has_aux)


@_entry_point
def vjp(f: Callable[..., Any], *args: Any, wrt: Wrt | None = None,
        checkpoint: Checkpoint = None, has_aux: bool = False, argnums: Wrt | None = None,
        **kwargs: Any) -> Any:
    """Run ``f(*args, **kwargs)`` forward; return its value and a pullback.

    Reverse mode for any result: ``pullback(cotangent)`` returns the vector-Jacobian
    product, the gradient of ``<cotangent, f(...)>`` with respect to ``wrt``.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number, an array, or a tuple
        or list of them.
    *args, **kwargs
        The arguments of ``f``.
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to, as for `grad`.
    checkpoint : None, "sqrt" or int, optional
        As for `value_and_grad`.
    has_aux : bool, optional
        ``f`` returns a pair ``(out, aux)``: then ``vjp`` returns ``(out, pullback,
        aux)`` and the pullback takes a cotangent of out (JAX's convention).
    argnums : int, str, or tuple or list of them, optional
        Another name of ``wrt``; give one of the two.

    Returns
    -------
    value
        ``f(*args, **kwargs)`` (a copy no pullback call changes).
    pullback : callable
        ``pullback(cotangent) -> gradient`` (a tuple of them when ``wrt`` names several);
        the cotangent has the structure of ``value`` (a list or a tuple for a tuple; 0.0
        or None for a part that gets no cotangent), the gradient that of the argument
        (as for `grad`). It may be called any number of
        times: later calls run the forward sweep again for a fresh tape.

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated (as for `grad`).

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * w, x + w
    >>> value, pullback = transpile.vjp(f, 3.0, 2.0)
    >>> value
    (6.0, 5.0)
    >>> pullback((1.0, 0.0))                 # d(x * w)/dx
    2.0
    >>> pullback((1.0, 10.0))                # d(x * w + 10 (x + w))/dx
    12.0
    """
    fn, target = _differentiable(f)
    names, many = _wrt_names(fn, _resolve_wrt(wrt, argnums))
    _check_arguments(fn, names, _bind(fn, args, kwargs, names))
    kinds = _kinds(fn, args, kwargs)
    compiled = pipeline.vjp_pair(target(kinds), names, kinds, check_option(checkpoint))
    value, pullback = _sweeps(fn, compiled, names, many, args, kwargs, has_aux)
    if has_aux:
        return _own_value(value[0]), pullback, _own_value(value[1])
    return _own_value(value), pullback


def _aux_pair(fn: Callable[..., Any], value: Any) -> None:
    """A TranspileError unless a has_aux function returned a pair (out, aux)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        code = fn.__code__
        raise TranspileError(f"has_aux=True needs a function returning a pair (out, aux), "
                             f"and this call returned a {type(value).__name__}"
                             + (f" of {len(value)} items"
                                if isinstance(value, (tuple, list)) else ""),
                             code.co_filename, code.co_firstlineno, fn.__qualname__)


def _sweeps(fn: Callable[..., Any], compiled: Any, names: Sequence[str], many: bool,
            args: Sequence[Any], kwargs: dict[str, Any], has_aux: bool = False
            ) -> tuple[Any, Pullback]:
    """Run the forward sweep of a vjp pair: (value, pullback). With `has_aux` the value
    is a pair (out, aux) and the pullback takes a cotangent of out alone (aux gets none)."""
    # arguments f writes into: the adjoint sweep restores them, so each pullback puts back
    # what f left in them (and a repeated forward sweep starts from what f was given)
    from .analysis import mutated_deep
    from .runtime import final_state, write_back
    written = sorted(mutated_deep(pipeline.unit_of(fn)))
    written = _bind(fn, args, kwargs, written) if written else []
    initial = [final_state(a) for a in written]
    inputs = _bind(fn, args, kwargs, names)
    if written:                   # structures f changes: the gradient has them as given
        inputs = [_skeleton(x) for x in inputs]
    try:
        value, tape = compiled.forward(*args, **kwargs)
    except Exception as exc:
        raise annotate(exc)
    if has_aux:
        _aux_pair(fn, value)
    final = [final_state(a) for a in written]
    state = {"tape": tape}

    def pullback(cotangent: Any) -> Any:
        tape = state.pop("tape", None)
        try:
            if has_aux:
                cotangent = [_own(cotangent, value[0]), 0.0]
            else:
                cotangent = _own(cotangent, value)
            if tape is None:
                for a, s in zip(written, initial):
                    write_back(a, s)
                _, tape = compiled.forward(*args, **kwargs)
            grads = _finish(compiled.backward(tape, cotangent), inputs)
            for a, s in zip(written, final):
                write_back(a, s)
        except TranspileError as exc:
            raise _trimmed(exc) from None
        except Exception as exc:
            raise annotate(exc)
        return grads if many else grads[0]

    return value, pullback


def _own_value(value: Any) -> Any:
    """A copy of a returned value's lists, dicts and arrays (numbers are returned as they
    are; a NamedTuple stays one)."""
    if isinstance(value, (list, tuple)):
        copied = [_own_value(v) for v in value]
        if isinstance(value, list) or type(value) is tuple:
            return copied if isinstance(value, list) else tuple(copied)
        return tree._build(_node(value)[1], copied)
    if isinstance(value, dict) and type(value) in (dict, OrderedDict):
        return type(value)((k, _own_value(v)) for k, v in value.items())
    if hasattr(value, "shape") and hasattr(value, "copy"):
        return value.copy()
    return value


def _jvp_compiled(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any]
                  ) -> tuple[Any, list[str], dict[str, str]]:
    """(compiled tangent code, parameter names, tangent keyword per parameter) for jvp."""
    fn, target = _differentiable(f)
    args, tangents = tuple(args), tuple(tangents)
    if len(args) != len(tangents):
        raise TypeError("jvp: give one tangent (or None) per argument")
    params = _param_names(fn)
    star = _vararg(fn)
    if star is not None:        # an argument beyond the named ones: an element of *xs
        params = params[:star[1]] + [f"{star[0]}[{k}]" for k in range(len(args) - star[1])]
    active = tuple(params[i] for i, t in enumerate(tangents) if t is not None)
    _check_arguments(fn, active, [a for a, t in zip(args, tangents) if t is not None])
    whole = pipeline._whole(active)
    code = target(_kinds(fn, args, {}))
    compiled = pipeline.jvp_function(code, whole, _kinds(fn, args, {}))
    return compiled, params, pipeline.tangent_names(code, whole)


@_entry_point
def jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> Any:
    """Forward mode: ``f(*args)`` and its derivative along ``tangents``.

    transpile writes tangent code interleaved with the primal (no tape) and runs it:
    the Jacobian-vector product ``J(args) @ tangents``.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number, an array, or a tuple
        or list of them.
    args : sequence
        The positional arguments of ``f``.
    tangents : sequence
        One entry per argument: a tangent of the argument's shape (of its structure for
        a structure, as a gradient is: None or 0.0 where a part is held fixed), or None
        to hold that argument fixed.
    has_aux : bool, optional
        ``f`` returns a pair ``(out, aux)``: then ``jvp`` returns ``(out, tangent of out,
        aux)`` (JAX's convention).

    Returns
    -------
    value
        ``f(*args)``.
    tangent
        The directional derivative, of the structure of ``value``.

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated (as for `grad`).
    TypeError
        When ``args`` and ``tangents`` differ in length.

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * x * w
    >>> transpile.jvp(f, (3.0, 2.0), (1.0, None))    # df/dx = 2 x w
    (18.0, 12.0)
    >>> transpile.jvp(f, (3.0, 2.0), (1.0, 1.0))     # df/dx + df/dw = 12 + 9
    (18.0, 21.0)
    """
    compiled, params, names = _jvp_compiled(f, args, tangents)
    # tangent code writes into the tangents of values it writes into: its own copies
    keywords = {names[params[i]]: _own(t, args[i], f"the tangent of '{params[i]}'",
                                       tangent=True)
                for i, t in enumerate(tangents)
                if t is not None and pipeline.element_of(params[i]) is None}
    star = _vararg(_differentiable(f)[0])
    if star is not None and any(t is not None for t in tangents[star[1]:]):
        keywords[names[star[0]]] = tuple(0.0 if t is None else copy.deepcopy(t)
                                         for t in tangents[star[1]:])
    try:
        value, tangent = compiled.function(*args, **keywords)
    except Exception as exc:
        raise annotate(exc)
    if value is not None and tree.is_node(value):    # the tangent in value's structure
        tangent = tree.like(value, tangent, _leaf_gradient)
    if has_aux:
        _aux_pair(_differentiable(f)[0], value)
        return value[0], tangent[0], value[1]
    return value, tangent


@_entry_point
def jvp_source(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any]) -> str:
    """The generated forward-mode source `jvp` runs for ``jvp(f, args, tangents)``."""
    return cast(str, _jvp_compiled(f, args, tangents)[0].source)


class Differentiable:
    """A function with derivative methods, made by `differentiate`.

    Calling it calls the function unchanged; ``.grad``, ``.value_and_grad``, ``.vjp``
    and ``.jvp`` take the function's arguments and differentiate with respect to the
    ``wrt`` it was made with.

    Parameters
    ----------
    fn : callable
        A Python function defined in a file (or a Differentiable: its function).
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to, as for `grad`.
    mode : {"reverse", "forward"}, optional
        Which derivative code ``.source`` shows: the gradient (reverse mode, default) or
        the tangent code of forward mode.
    jit : bool, optional
        ``.grad`` and ``.value_and_grad`` run the generated code compiled with numba.
    checkpoint : None, "sqrt" or int, optional
        As for `value_and_grad`.
    has_aux : bool, optional
        ``fn`` returns ``(out, aux)``; the methods return aux beside the derivatives of
        out, as `grad`, `value_and_grad`, `vjp` and `jvp` do with ``has_aux=True``.
    argnums : optional
        Another name of ``wrt``; give one of the two.

    Attributes
    ----------
    wrt, mode, jit, checkpoint, has_aux
        As given.
    source : str
        The generated Python source (see the property).
    """

    def __init__(self, fn: Callable[..., Any], wrt: Wrt | None = None,
                 mode: Mode = "reverse", jit: bool = False, checkpoint: Checkpoint = None,
                 has_aux: bool = False, argnums: Wrt | None = None) -> None:
        if mode not in ("reverse", "forward"):
            raise TranspileError(f"mode={mode!r}: use 'reverse' or 'forward'")
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        fn = getattr(fn, "__transpile_function__", fn)     # a Differentiable: its function
        functools.update_wrapper(self, fn, updated=())     # not fn.__dict__ over ours
        self.__transpile_function__ = fn
        self.wrt = _resolve_wrt(wrt, argnums)
        self.has_aux = bool(has_aux)
        self.checkpoint = check_option(checkpoint)
        self.mode = mode
        self.jit = bool(jit)
        self._vg: GradientFunction | None = None
        self._last_jvp: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__transpile_function__(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """A Differentiable that is a class attribute (``@differentiate`` on a method):
        read from an instance it is that instance's method, `BoundDifferentiable`."""
        if obj is None:
            return self
        return BoundDifferentiable(self, obj)

    def _value_and_grad(self) -> GradientFunction:
        if self._vg is None:
            self._vg = value_and_grad(self.__transpile_function__, self.wrt, self.jit,
                                      self.checkpoint, has_aux=self.has_aux)
        return self._vg

    @_entry_point
    def grad(self, *args: Any, **kwargs: Any) -> Any:
        """The gradient at these arguments: ``transpile.grad(fn, wrt)(*args, **kwargs)``
        (``(gradient, aux)`` with has_aux)."""
        value, g = self._value_and_grad()(*args, **kwargs)
        return (g, value[1]) if self.has_aux else g

    @_entry_point
    def value_and_grad(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(value, gradient)`` at these arguments, as `transpile.value_and_grad`."""
        return cast(Tuple[Any, Any], self._value_and_grad()(*args, **kwargs))

    @_entry_point
    def vjp(self, *args: Any, **kwargs: Any) -> Any:
        """``(value, pullback)`` at these arguments, as `transpile.vjp` (``(out, pullback,
        aux)`` with has_aux)."""
        return vjp(self.__transpile_function__, *args, wrt=self.wrt,
                   checkpoint=self.checkpoint, has_aux=self.has_aux, **kwargs)

    @_entry_point
    def jvp(self, args: Sequence[Any], tangents: Sequence[Any]) -> Any:
        """Forward mode: ``(value, directional derivative along tangents)``, as
        `transpile.jvp` (one tangent or None per positional argument; ``(out, tangent,
        aux)`` with has_aux)."""
        self._last_jvp = (tuple(args), tuple(tangents))
        return jvp(self.__transpile_function__, args, tangents, has_aux=self.has_aux)

    @property
    def source(self) -> str:
        """The generated Python source: the gradient function, or with mode="forward" the
        tangent function (for the arguments of the last .jvp call; all scalars before)."""
        fn = self.__transpile_function__
        try:
            if self.mode == "forward":
                if self._last_jvp is not None:
                    return jvp_source(fn, *self._last_jvp)
                names, _ = _wrt_names(fn, self.wrt)
                params = _param_names(fn)
                return cast(str, pipeline.jvp_function(
                    fn, names, {p: "scalar" for p in params}).source)
            return self._value_and_grad().source
        except TranspileError as exc:
            raise _trimmed(exc) from None

    def __repr__(self) -> str:
        return f"<differentiable {self.__transpile_function__.__qualname__}>"


class BoundDifferentiable:
    """``obj.method`` for a method made with `differentiate`: calling it runs the method
    with ``obj`` as ``self``; ``.grad``, ``.value_and_grad``, ``.vjp``, ``.jvp`` and
    ``.source`` differentiate the method with ``obj`` passed as ``self`` (a constant), and
    ``wrt`` counts the parameters after ``self`` (``wrt=0`` is the first argument of the
    call ``obj.method(x)``; names are names). Read through the class
    (``Model.method.grad(obj, x)``) the method is the plain Differentiable, its ``wrt``
    counting ``self`` as parameter 0."""

    def __init__(self, owner: Differentiable, obj: Any) -> None:
        self.__self__, self.__func__ = obj, owner
        functools.update_wrapper(self, owner.__transpile_function__, updated=())
        self.__transpile_function__ = types.MethodType(owner.__transpile_function__, obj)

    def _inner(self) -> Differentiable:
        owner = self.__func__
        inner = owner.__dict__.get("_bound_inner")
        if inner is None:
            wrt = owner.wrt
            shift = (lambda w: w + 1 if isinstance(w, int) and not isinstance(w, bool)
                     and w >= 0 else w)
            wrt = type(wrt)(shift(w) for w in wrt) if isinstance(wrt, (tuple, list)) \
                else shift(wrt)
            inner = Differentiable(owner.__transpile_function__, wrt=wrt, mode=owner.mode,
                                   jit=owner.jit, checkpoint=owner.checkpoint)
            owner.__dict__["_bound_inner"] = inner
        return inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.__transpile_function__(self.__self__, *args, **kwargs)

    def grad(self, *args: Any, **kwargs: Any) -> Any:
        """The gradient at these arguments (``self`` the bound object)."""
        return self._inner().grad(self.__self__, *args, **kwargs)

    def value_and_grad(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(value, gradient)`` at these arguments (``self`` the bound object)."""
        return self._inner().value_and_grad(self.__self__, *args, **kwargs)

    def vjp(self, *args: Any, **kwargs: Any) -> tuple[Any, Pullback]:
        """``(value, pullback)`` at these arguments (``self`` the bound object)."""
        return self._inner().vjp(self.__self__, *args, **kwargs)

    def jvp(self, args: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
        """Forward mode along tangents (one per argument after ``self``)."""
        return self._inner().jvp((self.__self__,) + tuple(args), (None,) + tuple(tangents))

    @property
    def source(self) -> str:
        """The generated source, as `Differentiable.source`."""
        return self._inner().source

    def __repr__(self) -> str:
        return f"<bound differentiable {self.__func__.__transpile_function__.__qualname__}>"


@overload
def differentiate(fn: Callable[..., Any], *, wrt: Wrt | None = None,
                  mode: Mode = "reverse", jit: bool = False, checkpoint: Checkpoint = None,
                  has_aux: bool = False, argnums: Wrt | None = None) -> Differentiable: ...


@overload
def differentiate(fn: None = None, *, wrt: Wrt | None = None, mode: Mode = "reverse",
                  jit: bool = False, checkpoint: Checkpoint = None, has_aux: bool = False,
                  argnums: Wrt | None = None
                  ) -> Callable[[Callable[..., Any]], Differentiable]: ...


@_entry_point
def differentiate(fn: Callable[..., Any] | None = None, *, wrt: Wrt | None = None,
                  mode: Mode = "reverse", jit: bool = False, checkpoint: Checkpoint = None,
                  has_aux: bool = False, argnums: Wrt | None = None
                  ) -> Differentiable | Callable[[Callable[..., Any]], Differentiable]:
    """Decorator: give a function derivative methods.

    ``@differentiate`` or ``@differentiate(wrt=("x", "w"), ...)`` above a ``def``, or
    ``differentiate(f, ...)``. The function keeps working as before; ``f.grad(...)``,
    ``f.value_and_grad(...)``, ``f.vjp(...)`` and ``f.jvp(args, tangents)`` compute
    derivatives at the arguments given, and ``f.source`` shows the generated code.

    Parameters
    ----------
    fn : callable, optional
        The function (defined in a file). Without it, a decorator is returned.
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to, as for `grad`.
    mode : {"reverse", "forward"}, optional
        What ``.source`` shows: the gradient code (default) or forward-mode tangent code.
    jit : bool, optional
        ``.grad`` and ``.value_and_grad`` run the generated code compiled with numba
        (``.source`` still shows the generated Python; ``.vjp`` and ``.jvp`` stay plain
        Python).
    checkpoint : None, "sqrt" or int, optional
        As for `value_and_grad`.
    has_aux, argnums : optional
        As for `grad`.

    Returns
    -------
    Differentiable
        The function with derivative methods (or, without ``fn``, a decorator making
        one).

    Raises
    ------
    TranspileError
        For a bad ``mode`` or ``checkpoint``, or ``jit=True`` without numba; errors of
        the transform itself are raised by the first derivative call (as for `grad`).

    Examples
    --------
    >>> import transpile
    >>> @transpile.differentiate(wrt=("x", "w"))
    ... def f(x, w):
    ...     return x * x * w
    >>> f(3.0, 2.0)
    18.0
    >>> f.grad(3.0, 2.0)
    (12.0, 9.0)
    >>> f.jvp((3.0, 2.0), (1.0, 0.0))
    (18.0, 12.0)
    """
    def make(f: Callable[..., Any]) -> Differentiable:
        try:
            return Differentiable(f, wrt=wrt, mode=mode, jit=jit, checkpoint=checkpoint,
                                  has_aux=has_aux, argnums=argnums)
        except TranspileError as exc:
            raise _trimmed(exc) from None

    if fn is None:
        check_option(checkpoint)             # bad options are an error here already
        _resolve_wrt(wrt, argnums)
        if mode not in ("reverse", "forward"):
            raise TranspileError(f"mode={mode!r}: use 'reverse' or 'forward'")
        return make
    return make(fn)
