"""Jacobians, Hessian-vector products and Hessians, from generated code only.

Generated derivative code is plain Python, so it is valid input to the compiler again: the
runtime helpers it calls carry rules of their own (rules/derivative_code.py).

* `jacobian(f, wrt, mode)`: forward mode builds it a column per input element (one
  tangent function run each), reverse mode a row per output element (one pullback each);
  "auto" picks the mode with fewer runs.
* `hvp(f, wrt)`: H v, forward over reverse by default: the forward-mode derivative of the
  *generated* gradient code, in direction v. mode="reverse-over-forward" takes the gradient
  of the generated tangent function x -> <grad f(x), v> instead.
* `hessian(f, wrt)`: n Hessian-vector products with the unit vectors.

Each maker takes a derivative as well as a function (`api._differentiable`): a gradient
(and the gradient of a gradient, to any order) has generated code of its own, built with
copying helpers so an outer adjoint sweep sees every inner adjoint as it was, and that code
is what is differentiated. So `grad(grad(grad(f)))` is reverse mode over the generated
second-derivative code (where an inner reverse rule has no reverse rule of its own and the
parameters are numbers, forward mode over it: `api._ForwardGradient`), and
`hessian(grad(f))`, `jvp(grad(grad(f)), ...)` or `value_and_grad(grad(f))` work the same way.

The public `hvp`, `hessian` and `jacobian` are these makers wrapped by `api.entry_for`
(arguments checked, errors trimmed to the user's frames).
"""
from __future__ import annotations

from typing import Any, Callable, Literal, cast

import numpy as np

from . import pipeline
from .api import Derivative, Wrt
from .api import Variants, _bind, _differentiable, _param_names, _wrt_names
from .api import grad as _grad
from .api import vjp as _vjp
from .api import jvp as _jvp
from .api import _leaf_gradient, _no_derivative, _node, _own
from . import tree
from .errors import TranspileError
from .runtime import _is_zero

HVP_MODES = ("forward-over-reverse", "reverse-over-forward")
#: ``mode=`` of hvp and hessian
HvpMode = Literal["forward-over-reverse", "reverse-over-forward"]
#: ``mode=`` of jacobian
JacobianMode = Literal["auto", "forward", "reverse"]


def _second_order_names(fn: Callable[..., Any], wrt: Wrt) -> tuple[tuple[str, ...], bool]:
    """_wrt_names, refusing an argument of `*args` (first order only)."""
    names, many = _wrt_names(fn, wrt)
    if any(pipeline.element_of(n) for n in names):
        code = getattr(fn, "__code__", None)
        raise TranspileError("second derivatives with respect to an argument passed to "
                             "*args are not supported; give the function a named "
                             "parameter for it", getattr(code, "co_filename", None),
                             getattr(code, "co_firstlineno", None), fn.__qualname__)
    return names, many


def hvp(f: Callable[..., Any], wrt: Wrt = 0,
        mode: HvpMode = "forward-over-reverse") -> Derivative:
    """Make a function computing Hessian-vector products ``H v`` of ``f``.

    ``H`` is the Hessian of the number ``f`` returns with respect to ``wrt``, built
    from generated code only: by default the forward-mode derivative of the generated
    gradient code along ``v`` (forward over reverse). No Hessian is formed.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number.
    wrt : int, str, or tuple or list of them, optional
        The parameters, as for `transpile.grad`. Default: the first.
    mode : {"forward-over-reverse", "reverse-over-forward"}, optional
        The route: the tangent of the gradient code (default), or the gradient of the
        tangent code ``x -> <grad f(x), v>``. Both give the same numbers.

    Returns
    -------
    Derivative
        ``hvp(f, wrt)(*args, v=v) -> H v``, of the shape of the ``wrt`` argument (for a
        structure, ``v`` and ``H v`` have its structure, as a gradient does: None or 0.0
        for a part of ``v`` that is zero); with several parameters ``v`` is a tuple of
        matching directions and the result a tuple.
        ``.source`` shows both generated functions (the gradient and its tangent).

    Raises
    ------
    TranspileError
        When ``f`` (or its generated gradient) cannot be differentiated: for instance a
        NumPy function with no second-order rule, named with the user's line.
    ValueError
        For an unknown ``mode``.

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * x * x * w
    >>> transpile.hvp(f)(2.0, 3.0, v=1.0)            # d2f/dx2 = 6 x w
    36.0
    >>> transpile.hvp(f, wrt=(0, 1))(2.0, 3.0, v=(1.0, 0.0))   # first column of H
    (36.0, 12.0)
    """
    if mode not in HVP_MODES:
        raise ValueError(f"mode must be one of {HVP_MODES}")
    fn, target = _differentiable(f)
    names, many = _second_order_names(fn, wrt)
    def build(kinds: dict[str, str]) -> tuple[Callable[..., Any], Callable[[], str]]:
        code = target(kinds)
        if mode == "reverse-over-forward":
            tangent = pipeline.jvp_function(code, names, kinds, tangent_only=True,
                                            options={"number_result": True})
            g = _grad(tangent.function, wrt=names if many else names[0])
            keywords = pipeline.tangent_names(code, names)

            def gradient_of_tangent(args: Any, vs: Any) -> Any:
                return g(*args, **{keywords[p]: t for p, t in zip(names, vs)})
            return gradient_of_tangent, lambda: tangent.source + "\n\n" + g.source
        gradient = pipeline.gradient_function(code, names, kinds, gradient_only=True)
        outer = pipeline.jvp_function(gradient.function, names, kinds, tangent_only=True)
        keywords = pipeline.tangent_names(gradient.function, names)

        def product(args, vs):
            return outer.function(*args, **{keywords[p]: t for p, t in zip(names, vs)})
        return product, lambda: gradient.source + "\n\n" + outer.source

    variants = Variants(fn, build)   # argument kinds -> (derivative function, sources)

    def run(*args, v):
        xs = _bind(fn, args, {}, names)
        vs = tuple(v) if many else (v,)
        # directions of structures as derivative code keeps them (zeros where v has None)
        vs = tuple(_own(t, x, f"v for '{n}'", tangent=True)
                   for t, x, n in zip(vs, xs, names))
        out = variants.get(args, {})[0](args, vs)
        outs = (out,) if len(names) == 1 else (
            (out,) * len(vs) if _is_zero(out) else tuple(out))
        # H v in the structures of the inputs; a part that does not depend on the inputs:
        # zeros shaped like its input
        outs = tuple(tree.like(x, o, _leaf_gradient) for o, x in zip(outs, xs))
        return outs if many else outs[0]

    def source():
        return variants.default()[1]()

    run.__name__ = f"hvp_{fn.__name__}"
    return _with_source(run, source)


class _with_source:
    """A derivative function plus `.source`, the generated code it runs."""

    def __init__(self, fn: Callable[..., Any], source: Callable[[], str]) -> None:
        self._fn, self._source = fn, source
        self.__name__ = fn.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    @property
    def source(self) -> str:
        return self._source()


def hessian(f: Callable[..., Any], wrt: Wrt = 0,
            mode: HvpMode = "forward-over-reverse") -> Derivative:
    """Make a function computing the Hessian of ``f``.

    Column by column: one Hessian-vector product (`hvp`) per input element, from
    generated code only.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number.
    wrt : int, str, or tuple or list of them, optional
        One parameter, or several (as for `transpile.grad`). Default: the first.
    mode : {"forward-over-reverse", "reverse-over-forward"}, optional
        The route of the Hessian-vector products, as for `hvp`.

    Returns
    -------
    Derivative
        ``hessian(f, wrt)(*args)``: for one parameter a number (for a number) or an
        array of shape ``s + s`` (for an array of shape ``s``); for several, nested lists
        of blocks ``H[i][j]`` of shape ``s_i + s_j`` (numbers for two numbers). For a
        structure (a dict of arrays, a list of tuples...) the blocks nest as in JAX: the
        structure holding, for each leaf, the structure of its blocks with every leaf
        (``hessian(f)(params)["W"]["b"]`` of shape ``W.shape + b.shape``; None for leaves
        without derivative).
        ``.source`` shows the generated code.

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated twice (as for `hvp`).

    Examples
    --------
    >>> import transpile
    >>> def f(x, w):
    ...     return x * x * x * w
    >>> transpile.hessian(f)(2.0, 3.0)                # 6 x w
    36.0
    >>> transpile.hessian(f, wrt=(0, 1))(2.0, 3.0)    # [[6 x w, 3 x^2], [3 x^2, 0]]
    [[36.0, 12.0], [12.0, 0.0]]
    """
    fn, _ = _differentiable(f)
    names, many = _second_order_names(fn, wrt)
    product = hvp(f, wrt, mode=mode)

    def run(*args):
        xs = _bind(fn, args, {}, names)
        # each argument's leaves (one for a number or an array): H is made of blocks
        # H[i][j][a][b] between leaf a of argument i and leaf b of argument j, of shape
        # s_ia + s_jb; None for a leaf without derivative (a str, an integer array...)
        shapes, defs = zip(*[_leaf_shapes(x) for x in xs])
        blocks = [[[[None if si is None or sj is None else np.zeros(si + sj)
                     for sj in shapes[j]] for si in shapes[i]]
                   for j in range(len(xs))] for i in range(len(xs))]

        def direction(k, b=None, idx=()):
            return _direction(defs[k], shapes[k], b, idx)

        for j in range(len(xs)):
            for b, sb in enumerate(shapes[j]):
                if sb is None:
                    continue
                for idx in np.ndindex(*sb):
                    v = [direction(k, b, idx) if k == j else direction(k)
                         for k in range(len(xs))]
                    column = product(*args, v=tuple(v)) if many else \
                        (product(*args, v=v[0]),)
                    for i, (x, c) in enumerate(zip(xs, column)):
                        for a, h in enumerate(_leaves_like(x, c)):
                            target = blocks[i][j][a][b]
                            if target is not None:
                                target[(Ellipsis,) + idx] = h

        def block(i, j):
            """H[i][j] nested as the arguments: i's structure of j's structures."""
            return tree.unflatten(defs[i], [
                tree.unflatten(defs[j], [_number(h) for h in row])
                for row in blocks[i][j]])
        out = [[block(i, j) for j in range(len(xs))] for i in range(len(xs))]
        return out if many else out[0][0]

    run.__name__ = f"hessian_{fn.__name__}"
    return _with_source(run, lambda: product.source)


def jacobian(f: Callable[..., Any], wrt: Wrt = 0,
             mode: JacobianMode = "auto") -> Callable[..., Any]:
    """Make a function computing the Jacobian of ``f`` with respect to one parameter.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number, an array, or a tuple
        or list of numbers.
    wrt : int or str, optional
        The one parameter (a number, an array, or a structure of them). Default: the
        first.
    mode : {"auto", "forward", "reverse"}, optional
        ``"forward"`` builds a column per input element (one run of the tangent code
        each), ``"reverse"`` a row per output element (one pullback each); ``"auto"``
        (default) picks the one with fewer runs.

    Returns
    -------
    callable
        ``jacobian(f, wrt)(*args)``: an array of shape ``output.shape + input.shape``
        (a float when both are numbers; a list or tuple of numbers is a vector). For a
        structured argument or result, nested as JAX nests it: the result's structure
        holding, for each of its leaves (shape r), the argument's structure holding an
        array of shape ``r + s`` for each leaf of shape s (None for leaves without
        derivative).

    Raises
    ------
    TranspileError
        When ``f`` cannot be differentiated (as for `transpile.grad`), or ``wrt``
        names several parameters.
    ValueError
        For an unknown ``mode``.

    Examples
    --------
    >>> import numpy as np, transpile
    >>> def f(x):
    ...     return x * x * x[0]
    >>> transpile.jacobian(f)(np.array([1.0, 2.0]))
    array([[3., 0.],
           [4., 4.]])
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError("mode must be 'auto', 'forward' or 'reverse'")
    fn, _ = _differentiable(f)
    names, many = _second_order_names(fn, wrt)
    if many:
        raise TranspileError("jacobian: give one parameter in wrt")
    params = _param_names(fn)
    index = params.index(names[0])

    def run(*args):
        x = args[index]
        value = f(*args)
        if x is not None and tree.is_node(x) or _nested(value):
            return structured(args, x, value)
        xa = np.asarray(x, dtype=float)
        ya = np.asarray(value, dtype=float)
        use = mode
        if use == "auto":
            use = "forward" if xa.size <= ya.size else "reverse"
        out = np.zeros(ya.shape + xa.shape)
        if use == "forward":
            for idx in np.ndindex(*xa.shape):
                e = np.zeros(xa.shape)
                e[idx] = 1.0
                tangents: list[Any] = [None] * len(args)
                tangents[index] = e if hasattr(x, "shape") else 1.0
                _, t = _jvp(f, args, tangents)
                out[(Ellipsis,) + idx] = np.asarray(t, dtype=float)
        else:
            _, pullback = _vjp(f, *args, wrt=index)
            for idx in np.ndindex(*ya.shape):
                e = np.zeros(ya.shape)
                e[idx] = 1.0
                ct = _like(value, e)
                out[idx] = np.asarray(pullback(ct), dtype=float)
        return out if out.shape else float(out)

    def structured(args, x, value):
        """The Jacobian of a structured output or with respect to a structure, nested as
        JAX nests it: the output's structure holding, for each output leaf of shape r,
        the input's structure holding for each input leaf of shape s an array of shape
        r + s (None where either leaf has no derivative)."""
        shapes, treedef = _leaf_shapes(x)
        out_shapes, out_def = _leaf_shapes(value)
        size = sum(int(np.prod(s)) for s in shapes if s is not None)
        out_size = sum(int(np.prod(r)) for r in out_shapes if r is not None)
        use = mode if mode != "auto" else "forward" if size <= out_size else "reverse"
        J: list[list[Any]] = [[None if r is None or s is None else np.zeros(r + s)
                               for s in shapes] for r in out_shapes]
        if use == "forward":
            for b, s in enumerate(shapes):
                for idx in np.ndindex(*s) if s is not None else ():
                    tangents: list[Any] = [None] * len(args)
                    tangents[index] = _direction(treedef, shapes, b, idx)
                    _, t = _jvp(fn, args, tangents)
                    for a, ta in enumerate(_leaves_like(value, t)):
                        if J[a][b] is not None:
                            J[a][b][(Ellipsis,) + idx] = np.asarray(ta, dtype=float)
        else:
            _, pullback = _vjp(fn, *args, wrt=index)
            for a, r in enumerate(out_shapes):
                for idx in np.ndindex(*r) if r is not None else ():
                    g = _leaves_like(x, pullback(_direction(out_def, out_shapes, a, idx)))
                    for b, gb in enumerate(g):
                        if J[a][b] is not None:
                            J[a][b][idx] = np.asarray(gb, dtype=float)
        return tree.unflatten(out_def, [tree.unflatten(treedef, [_number(j) for j in row])
                                        for row in J])

    run.__name__ = f"jacobian_{fn.__name__}"
    return run


def _nested(value: Any) -> bool:
    """Is a result a structure other than a list or tuple of numbers (which the Jacobian
    treats as a vector)?"""
    if isinstance(value, (list, tuple)):
        return any(v is None or tree.is_node(v) or _no_derivative(v) for v in value)
    return value is not None and tree.is_node(value)


def _like(value: Any, e: Any) -> Any:
    """A cotangent shaped like the output value (number, array, tuple or list)."""
    if isinstance(value, (tuple, list)):
        return [float(v) for v in e]
    if hasattr(value, "shape"):
        return e
    return float(e)


def _leaf_shapes(x: Any) -> tuple[list[Any], Any]:
    """(shape of each leaf of x, None for a leaf without derivative; x's treedef)."""
    leaves, treedef = tree.flatten(x)
    return [None if _no_derivative(leaf) else np.shape(leaf) for leaf in leaves], treedef


def _direction(treedef: Any, shapes: list[Any], b: int | None = None,
               idx: tuple[int, ...] = ()) -> Any:
    """A value of the structure `treedef` whose leaves have `shapes`: zero (None at
    leaves without derivative), or 1 at element idx of leaf b."""
    leaves: list[Any] = [None if s is None else np.zeros(s) if s else 0.0 for s in shapes]
    if b is not None:
        if idx:
            leaves[b][idx] = 1.0
        else:
            leaves[b] = 1.0
    return tree.unflatten(treedef, leaves)


def _number(h: Any) -> Any:
    """A 0-d block as a float."""
    return h if h is None or h.shape else float(h)


def _leaves_like(x: Any, g: Any) -> list[Any]:
    """The leaves of g, a derivative in x's structure (None where x's leaf has none), at
    the places of the leaves of x (`tree.flatten`'s order)."""
    if x is None:
        return []
    if not tree.is_node(x):
        return [g]
    children = _node(x)[0]
    parts = _node(g)[0] if g is not None and tree.is_node(g) else \
        [None] * len(children)
    return [leaf for c, p in zip(children, parts) for leaf in _leaves_like(c, p)]


# --- transpile.grad inside a function being differentiated ---------------------------------
#
# Closure conversion: `g = transpile.grad(lambda y: x * y ** 2)` in f is lambda-lifted
# (desugar.py: the lambda's free variables of f, here x, become keyword-only parameters)
# and every call `g(a)` becomes a call of the generated gradient code of the lifted
# function, `grad__lambda1(a, x=x)`: an ordinary callee with source, which f's own
# transform differentiates like any other (in x too, so d f/dx sees how g's result moves
# with x). Each level of derivative is its own generated function of explicit
# parameters, so a perturbation of one level cannot be confused with another's.

#: the makers a differentiated function may call, and whether they return the value too
def _makers() -> dict[Any, bool]:
    from . import api
    return {api.grad: False, api.value_and_grad: True}


def is_maker(obj: Any) -> bool:
    try:
        return obj in _makers()
    except TypeError:
        return False


class NestedDerivative:
    """What a call inside a differentiated function calls when it calls a derivative:
    ``grad`` or ``value_and_grad`` (``with_value``) of `base` with respect to `names`, or
    (``names`` None) a derivative made by transpile outside (its own code).

    `base` is a lifted local function (a `frontend.Unit` whose free variables of the
    enclosing function are keyword-only `extra_params`), a function, another
    NestedDerivative, or a derivative made by transpile. `code(kinds)` is the generated
    function the call runs (and the enclosing transform differentiates)."""

    def __init__(self, base: Any, names: tuple[str, ...] | None, with_value: bool = False,
                 where: Any = None, outer: Any = None) -> None:
        from . import api
        self.base, self.names, self.with_value, self.where = base, names, with_value, where
        self.outer = outer                # the Unit of the function calling it
        self.unit: Any
        if isinstance(base, NestedDerivative):
            self.unit = base.unit
        elif hasattr(base, "node"):                    # a lifted local function
            self.unit = base
        else:
            fn = base.fn if api._code_of(base) is not None else api._function(base)
            self.unit = pipeline.unit_of(fn)
        self.extra_params = tuple(getattr(self.unit, "extra_params", ()))
        self.name = self.unit.node.name

    def positional(self) -> list[str]:
        a = self.unit.node.args
        return [p.arg for p in a.posonlyargs + a.args]

    def inherited(self) -> tuple[str, ...] | None:
        """The parameters the derivative below differentiates with respect to."""
        base = self.base
        if isinstance(base, NestedDerivative):
            return base.names if base.names is not None else base.inherited()
        return getattr(base, "names", None)

    def base_code(self, kinds: dict[str, str]) -> Any:
        from . import api
        base = self.base
        if isinstance(base, NestedDerivative):
            return base.code(kinds)
        code = api._code_of(base)
        return code(kinds) if code is not None else base

    def nested_code(self, kinds: dict[str, str]) -> Callable[..., Any]:
        return self.code(kinds)

    def code(self, kinds: dict[str, str]) -> Callable[..., Any]:
        from . import api
        target = self.base_code(kinds)
        if self.names is None:
            return cast(Callable[..., Any], target)
        compiled = api._derivative_gradient(target, self.names, kinds,
                                            {"copy_adjoints": True, "finished": True},
                                            gradient_only=not self.with_value)
        fn = compiled.function
        if not hasattr(fn, "__transpile_source__"):
            message = ("a derivative computed one parameter at a time by forward mode "
                       "cannot be called inside a differentiated function: differentiate "
                       "with respect to one parameter")
            raise (self.outer.error(message, self.where) if self.outer is not None
                   else TranspileError(message))
        return cast(Callable[..., Any], fn)

    def resolve_wrt(self, wrt: Any, error: Callable[[str], Exception]) -> None:
        """names from a literal ``wrt`` (default 0: the parameter the derivative below
        differentiates in, as for grad(grad(f)) outside)."""
        params = self.positional()
        inherited = self.inherited()
        if wrt == 0 and inherited is not None and len(inherited) == 1:
            self.names = tuple(inherited)
            return
        items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
        names = []
        for w in items:
            if isinstance(w, int) and not isinstance(w, bool) and -len(params) <= w < len(
                    params):
                names.append(params[w])
            elif isinstance(w, str) and w in params:
                names.append(w)
            else:
                raise error(f"wrt={w!r}: {self.name} has no such parameter")
        if isinstance(wrt, (tuple, list)):
            raise error("inside a differentiated function, give transpile.grad one "
                        "parameter in wrt (not a tuple)")
        self.names = tuple(names)
