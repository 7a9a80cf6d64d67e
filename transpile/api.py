"""The user-facing API: @differentiate, grad, value_and_grad, vjp, jvp.

`wrt` names the parameters to differentiate with respect to: an index, a name, or a tuple
of them (then a tuple of gradients comes back). Default: the first parameter.
`jit=True` runs the generated gradient compiled by numba (see jit.py).

transpile reads the source of the function it differentiates: define it in a file (or a
doctest, whose runner provides the source). A function typed at the interactive prompt has
no source and is refused with a `TranspileError`.
"""
from __future__ import annotations

import fractions
import decimal
import functools
import inspect
import numbers
from typing import Any, Callable, List, Literal, Protocol, Sequence, Tuple, TypeVar, Union
from typing import cast, overload

from . import pipeline
from .checkpoint import check_option
from .errors import TranspileError
from .analysis import join, value_kind
from .emit import annotate
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
        raise TranspileError(
            f"{f!r} is a functools.partial object, which transpile does not differentiate "
            "yet: differentiate a def or lambda that calls it (e.g. lambda x: f(x, y=1))")
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
    def entry(f: Callable[..., Any], wrt: Wrt = 0, *args: Any, **kwargs: Any) -> _Entry:
        try:
            fn, _ = _differentiable(f)
            names, _ = _wrt_names(fn, wrt)
            return _Entry(maker(f, wrt, *args, **kwargs), fn, names)
        except TranspileError as exc:
            raise _trimmed(exc) from None
    setattr(entry, "__transpile_derivative__", True)
    return cast(_F, entry)


# --- what can be differentiated ------------------------------------------------------------

def _not_differentiable(value: Any) -> str | None:
    """Why a value cannot be differentiated with respect to (None when it can)."""
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, (float, int, np.floating, np.integer)):
        return None                 # numpy integers: refused below with their own advice
    if isinstance(value, (complex, np.complexfloating)):
        return "a complex number (complex differentiation is not supported yet)"
    if isinstance(value, np.matrix):
        return ("an np.matrix (its * is a matrix product); pass an array, "
                "np.asarray(x)")
    if isinstance(value, np.ma.MaskedArray):
        return "a masked array; pass an array (np.ma.filled(x) or x.data)"
    if isinstance(value, (fractions.Fraction, decimal.Decimal)):
        return (f"a {type(value).__name__} (exact arithmetic has no derivative code); "
                "pass a float")
    if isinstance(value, (list, tuple)):
        for v in value:
            why = _not_differentiable(v)
            if why is not None:
                return f"a {type(value).__name__} holding {why}"
        return None
    if isinstance(value, dict):
        return "a dict (gradients with respect to dicts and other pytrees are not " \
               "supported yet; pass its values as separate arguments)"
    dtype = getattr(value, "dtype", None)
    if dtype is not None and hasattr(value, "shape") and (
            isinstance(value, np.ndarray) or hasattr(value, "__array_namespace__")):
        kind = getattr(dtype, "kind", "f")
        if kind == "c":
            return "a complex array (complex differentiation is not supported yet)"
        if kind not in "fiub":
            return f"an array of dtype {dtype}"
        return None                 # integer arrays: refused below with their own advice
    if isinstance(value, numbers.Number):
        return f"a number of type {type(value).__name__}; pass a float"
    if isinstance(value, str):
        return "a str (strings have no derivative)"
    return f"an object of class {type(value).__qualname__} (gradients with respect to " \
           "objects are not supported yet; pass its numbers as separate arguments)"


def _check_arguments(fn: Callable[..., Any], names: Sequence[str],
                     values: Sequence[Any]) -> None:
    """A TranspileError naming the parameter and its type if a wrt argument cannot be
    differentiated with respect to."""
    for name, value in zip(names, values):
        why = _not_differentiable(value)
        if why is None and getattr(getattr(value, "dtype", None), "kind", "f") in "biu":
            why = (f"an integer or boolean array (pass floats, e.g. {name}.astype(float))")
        if why is not None:
            code = getattr(fn, "__code__", None)
            raise TranspileError(
                f"cannot differentiate with respect to '{name}': it is {why}", getattr(code, "co_filename", None),
                getattr(code, "co_firstlineno", None), fn.__qualname__)


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
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise TranspileError(f"cannot read the parameters of {fn!r}") from None
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TranspileError("unsupported construct '*args/**kwargs' in the signature",
                                 getattr(fn.__code__, "co_filename", None),
                                 getattr(fn.__code__, "co_firstlineno", None),
                                 fn.__qualname__)
    return list(sig.parameters)


def _wrt_names(fn: Callable[..., Any], wrt: Wrt) -> tuple[tuple[str, ...], bool]:
    """(names tuple, whether the caller asked for a tuple)."""
    params = _param_names(fn)
    many = isinstance(wrt, (tuple, list))
    items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
    names = []
    for w in items:
        if isinstance(w, int) and not isinstance(w, bool):
            if not -len(params) <= w < len(params):
                raise TranspileError(f"wrt={w} but {fn.__qualname__} has {len(params)} "
                                     "parameters")
            names.append(params[w])
        elif isinstance(w, str):
            if w not in params:
                raise TranspileError(f"wrt={w!r}: {fn.__qualname__} has no such parameter")
            names.append(w)
        else:
            raise TypeError(f"wrt must be an int, a str or a tuple of them, not {w!r}")
    return tuple(names), many


def _bind(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
          names: Sequence[str]) -> list[Any]:
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return [bound.arguments[n] for n in names]


def _is_scalar(value):
    if isinstance(value, (int, float, complex)):
        return True
    shape = getattr(value, "shape", None)
    return shape == ()


def _own(value):
    """A private copy of a cotangent's containers (the adjoint sweep updates them)."""
    if isinstance(value, (list, tuple)):
        return [_own(v) for v in value]
    return value


def _finish(grads, inputs):
    """Zero adjoints of container inputs become zero containers of the right shape; the
    gradient with respect to a Python int is a float, as for a float."""
    return tuple(zeros_like(x) if _is_zero(g) and not isinstance(x, (int, float)) else
                 float(g) if g.__class__ is int else g
                 for g, x in zip(grads, inputs))


def _match_dtypes(grads, inputs):
    """Each gradient with the floating dtype of its input (a float32 input gets a float32
    gradient even where the function mixes in float64 constants), as NumPy arrays keep."""
    out = None
    for i, (g, x) in enumerate(zip(grads, inputs)):
        if x.__class__ is float:
            continue
        dt = getattr(x, "dtype", None)
        if dt is None or dt.kind != "f":
            continue
        gdt = getattr(g, "dtype", None)
        if gdt == dt:
            continue
        if gdt is None and not isinstance(g, (int, float)):
            continue
        out = list(grads) if out is None else out
        out[i] = g.astype(dt) if gdt is not None and np.ndim(g) else dt.type(g)
    return grads if out is None else tuple(out)


def _type_key(args, kwargs):
    """Cheap key of the argument types the generated code is specialized on (for an
    array also its number of dimensions and which of them have size 1: shapes.py)."""
    key: Tuple[Any, ...] = tuple([
        (a.dtype, a.ndim, 1 in a.shape and tuple([d == 1 for d in a.shape]))
        if type(a) is np.ndarray else type(a)
        if type(a) not in (list, tuple) or not a else (type(a), type(a[0]))
        for a in args])
    if kwargs:
        key += tuple(sorted((k, type(v), value_mask(v)) for k, v in kwargs.items()))
    return key


def _kinds(fn: Callable[..., Any], args: Sequence[Any],
           kwargs: dict[str, Any]) -> dict[str, str]:
    """Kind of every parameter's value (scalar, array, seq + element kind, unknown)."""
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    kinds = {}
    for name, value in bound.arguments.items():
        kinds[name] = value_kind(value)
        mask = value_mask(value)
        if mask is not None:
            kinds[name + ".shape"] = mask
        if kinds[name] == "seq":
            elem = None
            for v in value:
                elem = join(elem, value_kind(v))
            kinds[name + "[]"] = elem or "unknown"
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
            from . import jit as numba_backend
            compiled = numba_backend.compiled_for(compiled)
        return compiled

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
                 checkpoint: Checkpoint = None) -> None:
        fn, self._target = _differentiable(f)
        code = _code_of(f)
        if code is not None and jit:
            raise TranspileError("jit=True is not available for grad(grad(f)); "
                                 "use jit=False")
        inner: tuple[str, ...] = getattr(f, "names", ())
        if code is not None and wrt == 0 and len(inner) == 1:
            wrt = inner[0]         # grad(grad(f, wrt=p)): the second derivative in p
        names, many = _wrt_names(fn, wrt)
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        self.fn, self.names, self.many, self.with_value = fn, names, many, with_value
        self.jit = bool(jit)
        checkpoint = check_option(checkpoint)
        self._options = {"checkpoint": checkpoint} if checkpoint else None
        self.variants = _gradient_variants(fn, names, self.jit, self._options, code)
        functools.update_wrapper(self, fn, updated=())   # not fn.__dict__ over ours
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + fn.__name__
        self._lookup = self.variants.variants.get
        self._several = len(names) > 1
        params = _param_names(fn)
        self._positions = [params.index(n) for n in names]   # wrt parameters' positions
        self._last_position = max(self._positions)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._lookup(_type_key(args, kwargs))
        if compiled is None:
            try:
                compiled = self.variants.get(args, kwargs)
            except TranspileError as exc:
                raise _trimmed(exc) from None
        try:
            value, g = compiled.function(*args, **kwargs)
        except Exception as exc:
            if self.jit:
                from .jit import call_failure
                failure = call_failure(exc, self.fn)
                if failure is not None:
                    raise _trimmed(failure) from None
            raise annotate(exc)
        if value.__class__ is not float and not _is_scalar(value):
            code = self.fn.__code__
            raise TranspileError(f"grad needs a function returning a number, and this call "
                                 f"returned a {type(value).__name__}; use transpile.vjp "
                                 "(or transpile.jacobian) for other results",
                                 code.co_filename, code.co_firstlineno, self.fn.__qualname__)
        gs = g if self._several else (g,)
        for x in gs:
            if x.__class__ is float and x == 0.0 or x is None or x.__class__ is int:
                gs = _finish(gs, _bind(self.fn, args, kwargs, self.names))
                break
        if kwargs or len(args) <= self._last_position:
            gs = _match_dtypes(gs, _bind(self.fn, args, kwargs, self.names))
        else:
            for i in self._positions:
                if args[i].__class__ is not float:     # a float input: nothing to match
                    gs = _match_dtypes(gs, [args[i] for i in self._positions])
                    break
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
def value_and_grad(f: Callable[..., Any], wrt: Wrt = 0, jit: bool = False,
                   checkpoint: Checkpoint = None) -> GradientFunction:
    """Make a function that returns both ``f(*args)`` and its gradient.

    The same as `grad`, but calling the result returns ``(value, gradient)``: the value
    comes from the forward sweep of the generated code, at no extra cost.

    Parameters
    ----------
    f : callable
        A Python function defined in a file, returning a number.
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to: an index, a name, or several
        (the gradient is then a tuple, in that order). Default: the first parameter.
    jit : bool, optional
        Compile the generated code with numba (the ``jit`` extra); scalar code only.
    checkpoint : None, "sqrt" or int, optional
        None (default): loops keep every iteration's saved values. ``"sqrt"`` or ``k``:
        long loops keep a snapshot every ``ceil(sqrt(n))`` or ``k`` iterations and re-run
        one segment at a time in the adjoint sweep (tape memory O(sqrt n) for one extra
        forward pass).

    Returns
    -------
    GradientFunction
        ``value_and_grad(f)(*args, **kwargs) -> (f(*args, **kwargs), gradient)``;
        ``.source`` shows the generated code.

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
    return GradientFunction(f, wrt, True, jit, checkpoint)


@_entry_point
def grad(f: Callable[..., Any], wrt: Wrt = 0, jit: bool = False,
         checkpoint: Checkpoint = None) -> Derivative:
    """Make a function that computes the gradient of ``f``.

    transpile reads the source of ``f``, writes a Python function holding its primal
    statements and the adjoint statements (reverse mode), compiles and caches it. The
    transform runs on the first call for each kind of arguments (numbers, arrays, lists);
    later calls run the generated code directly.

    Parameters
    ----------
    f : callable
        A Python function defined in a file (its source is read), returning a number.
        A gradient made by ``grad`` gives the second derivative (see Notes).
    wrt : int, str, or tuple or list of them, optional
        The parameters to differentiate with respect to: an index, a name, or several
        (the gradient is then a tuple, in that order). Default: the first parameter.
    jit : bool, optional
        Compile the generated code with numba (the ``jit`` extra); scalar code only.
    checkpoint : None, "sqrt" or int, optional
        Trade memory for time in long loops, as for `value_and_grad`.

    Returns
    -------
    GradientFunction
        ``grad(f)(*args, **kwargs)`` returns the gradient with respect to ``wrt``: a
        number for a number, an array of the argument's shape and dtype for an array, a
        list for a list. ``.source`` shows the generated code. (For ``grad(grad(f))``, a
        `Derivative` with the same call and ``.source``.)

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
    return GradientFunction(f, wrt, False, jit, checkpoint)


@_entry_point
def vjp(f: Callable[..., Any], *args: Any, wrt: Wrt = 0, checkpoint: Checkpoint = None,
        **kwargs: Any) -> tuple[Any, Pullback]:
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

    Returns
    -------
    value
        ``f(*args, **kwargs)`` (a copy no pullback call changes).
    pullback : callable
        ``pullback(cotangent) -> gradient`` (a tuple of them when ``wrt`` names several);
        the cotangent has the structure of ``value``. It may be called any number of
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
    names, many = _wrt_names(fn, wrt)
    _check_arguments(fn, names, _bind(fn, args, kwargs, names))
    kinds = _kinds(fn, args, kwargs)
    compiled = pipeline.vjp_pair(target(kinds), names, kinds, check_option(checkpoint))
    # arguments f writes into: the adjoint sweep restores them, so each pullback puts back
    # what f left in them (and a repeated forward sweep starts from what f was given)
    from .analysis import mutated_params
    from .runtime import final_state, write_back
    written = sorted(mutated_params(pipeline.unit_of(fn).node))
    written = _bind(fn, args, kwargs, written) if written else []
    initial = [final_state(a) for a in written]
    try:
        value, tape = compiled.forward(*args, **kwargs)
    except Exception as exc:
        raise annotate(exc)
    final = [final_state(a) for a in written]
    inputs = _bind(fn, args, kwargs, names)
    state = {"tape": tape}

    def pullback(cotangent: Any) -> Any:
        tape = state.pop("tape", None)
        cotangent = _own(cotangent)
        try:
            if tape is None:
                for a, s in zip(written, initial):
                    write_back(a, s)
                _, tape = compiled.forward(*args, **kwargs)
            grads = _match_dtypes(_finish(compiled.backward(tape, cotangent), inputs),
                                  inputs)
            for a, s in zip(written, final):
                write_back(a, s)
        except TranspileError as exc:
            raise _trimmed(exc) from None
        except Exception as exc:
            raise annotate(exc)
        return grads if many else grads[0]

    return _own_value(value), pullback


def _own_value(value: Any) -> Any:
    """A copy of a returned value's lists and arrays (numbers are returned as they are)."""
    if isinstance(value, (list, tuple)):
        copied = [_own_value(v) for v in value]
        return copied if isinstance(value, list) else tuple(copied)
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
    active = tuple(params[i] for i, t in enumerate(tangents) if t is not None)
    _check_arguments(fn, active, [a for a, t in zip(args, tangents) if t is not None])
    code = target(_kinds(fn, args, {}))
    compiled = pipeline.jvp_function(code, active, _kinds(fn, args, {}))
    return compiled, params, pipeline.tangent_names(code, active)


@_entry_point
def jvp(f: Callable[..., Any], args: Sequence[Any], tangents: Sequence[Any]
        ) -> tuple[Any, Any]:
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
        One entry per argument: a tangent of the argument's shape, or None to hold that
        argument fixed.

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
    keywords = {names[params[i]]: t for i, t in enumerate(tangents) if t is not None}
    try:
        return cast(Tuple[Any, Any], compiled.function(*args, **keywords))
    except Exception as exc:
        raise annotate(exc)


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

    Attributes
    ----------
    wrt, mode, jit, checkpoint
        As given.
    source : str
        The generated Python source (see the property).
    """

    def __init__(self, fn: Callable[..., Any], wrt: Wrt = 0, mode: Mode = "reverse",
                 jit: bool = False, checkpoint: Checkpoint = None) -> None:
        if mode not in ("reverse", "forward"):
            raise TranspileError(f"mode={mode!r}: use 'reverse' or 'forward'")
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        fn = getattr(fn, "__transpile_function__", fn)     # a Differentiable: its function
        functools.update_wrapper(self, fn, updated=())     # not fn.__dict__ over ours
        self.__transpile_function__ = fn
        self.wrt = wrt
        self.checkpoint = check_option(checkpoint)
        self.mode = mode
        self.jit = bool(jit)
        self._vg: GradientFunction | None = None
        self._last_jvp: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__transpile_function__(*args, **kwargs)

    def _value_and_grad(self) -> GradientFunction:
        if self._vg is None:
            self._vg = value_and_grad(self.__transpile_function__, self.wrt, self.jit,
                                      self.checkpoint)
        return self._vg

    @_entry_point
    def grad(self, *args: Any, **kwargs: Any) -> Any:
        """The gradient at these arguments: ``transpile.grad(fn, wrt)(*args, **kwargs)``."""
        return self._value_and_grad()(*args, **kwargs)[1]

    @_entry_point
    def value_and_grad(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(value, gradient)`` at these arguments, as `transpile.value_and_grad`."""
        return cast(Tuple[Any, Any], self._value_and_grad()(*args, **kwargs))

    @_entry_point
    def vjp(self, *args: Any, **kwargs: Any) -> tuple[Any, Pullback]:
        """``(value, pullback)`` at these arguments, as `transpile.vjp`."""
        return vjp(self.__transpile_function__, *args, wrt=self.wrt,
                   checkpoint=self.checkpoint, **kwargs)

    @_entry_point
    def jvp(self, args: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
        """Forward mode: ``(value, directional derivative along tangents)``, as
        `transpile.jvp` (one tangent or None per positional argument)."""
        self._last_jvp = (tuple(args), tuple(tangents))
        return jvp(self.__transpile_function__, args, tangents)

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


@overload
def differentiate(fn: Callable[..., Any], *, wrt: Wrt = 0, mode: Mode = "reverse",
                  jit: bool = False, checkpoint: Checkpoint = None) -> Differentiable: ...


@overload
def differentiate(fn: None = None, *, wrt: Wrt = 0, mode: Mode = "reverse",
                  jit: bool = False, checkpoint: Checkpoint = None
                  ) -> Callable[[Callable[..., Any]], Differentiable]: ...


@_entry_point
def differentiate(fn: Callable[..., Any] | None = None, *, wrt: Wrt = 0,
                  mode: Mode = "reverse", jit: bool = False, checkpoint: Checkpoint = None
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
            return Differentiable(f, wrt=wrt, mode=mode, jit=jit, checkpoint=checkpoint)
        except TranspileError as exc:
            raise _trimmed(exc) from None

    if fn is None:
        check_option(checkpoint)             # bad options are an error here already
        if mode not in ("reverse", "forward"):
            raise TranspileError(f"mode={mode!r}: use 'reverse' or 'forward'")
        return make
    return make(fn)
