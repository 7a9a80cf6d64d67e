"""The user-facing API: @differentiate, grad, value_and_grad, vjp.

`wrt` names the parameters to differentiate with respect to: an index, a name, or a tuple
of them (then a tuple of gradients comes back). Default: the first parameter.
`jit=True` runs the generated gradient compiled by numba (see jit.py).
"""
import fractions
import decimal
import functools
import inspect
import numbers

from . import pipeline
from .checkpoint import check_option
from .errors import TranspileError
from .analysis import join, value_kind
from .emit import annotate
from .runtime import zeros_like, _is_zero

import numpy as np


def _function(f):
    f = getattr(f, "__transpile_function__", f)
    if not callable(f):
        raise TypeError(f"{f!r} is not callable")
    if getattr(f, "__transpile_derivative__", False) is True:
        name = getattr(f, "__name__", repr(f))
        raise TranspileError(
            f"{name} is a derivative made by transpile; its derivative comes from "
            "transpile.hessian, transpile.hvp or transpile.grad(transpile.grad(f)), not "
            "from differentiating it again with vjp, jvp or value_and_grad")
    return f


# --- the API boundary: a TranspileError reaches the user as one short message -------------
#
# Errors are raised deep in the passes; what the user needs is the message (which already
# starts with their file:line) and their own frames. At every public entry point the
# error's traceback and its chain of internal exceptions are dropped, so the traceback
# holds the user's frames and one frame of transpile's (the entry point).

def _trimmed(exc):
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    return exc


def _entry_point(fn):
    """Decorate a public function: TranspileErrors leave it trimmed (see above)."""
    @functools.wraps(fn)
    def entry(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TranspileError as exc:
            raise _trimmed(exc) from None
    entry.__transpile_derivative__ = True
    return entry


class _Entry:
    """A derivative function from higher.py (hvp, hessian, jacobian, grad of grad) as the
    user receives it: the arguments checked, TranspileErrors trimmed; other attributes
    (``.source``) are the wrapped object's."""

    __transpile_derivative__ = True

    def __init__(self, wrapped, fn=None, names=()):
        self._wrapped, self._fn, self._names = wrapped, fn, names
        self.__name__ = getattr(wrapped, "__name__", "derivative")

    def __call__(self, *args, **kwargs):
        try:
            if self._fn is not None:
                _check_arguments(self._fn, self._names, _bind(self._fn, args, {},
                                                              self._names))
            return self._wrapped(*args, **kwargs)
        except TranspileError as exc:
            raise _trimmed(exc) from None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._wrapped, name)


def entry_for(maker):
    """A higher-order derivative maker (hvp, hessian, jacobian) made a public entry point:
    what it returns checks its arguments and trims errors like grad's functions."""
    @functools.wraps(maker)
    def entry(f, wrt=0, *args, **kwargs):
        try:
            fn = _function(f)
            names, _ = _wrt_names(fn, wrt)
            return _Entry(maker(f, wrt, *args, **kwargs), fn, names)
        except TranspileError as exc:
            raise _trimmed(exc) from None
    entry.__transpile_derivative__ = True
    return entry


# --- what can be differentiated ------------------------------------------------------------

def _not_differentiable(value):
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


def _check_arguments(fn, names, values):
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


def _returns_nothing(fn):
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


def _param_names(fn):
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


def _wrt_names(fn, wrt):
    """(names tuple, whether the caller asked for a tuple)."""
    params = _param_names(fn)
    many = isinstance(wrt, (tuple, list))
    items = list(wrt) if many else [wrt]
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


def _bind(fn, args, kwargs, names):
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


def _type_key(args, kwargs):
    """Cheap key of the argument types the generated code is specialized on."""
    key = tuple([(type(a), a.dtype.kind) if type(a) is np.ndarray else type(a)
                 if type(a) not in (list, tuple) or not a else (type(a), type(a[0]))
                 for a in args])
    if kwargs:
        key += tuple(sorted((k, type(v)) for k, v in kwargs.items()))
    return key


def _kinds(fn, args, kwargs):
    """Kind of every parameter's value (scalar, array, seq + element kind, unknown)."""
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    kinds = {}
    for name, value in bound.arguments.items():
        kinds[name] = value_kind(value)
        if kinds[name] == "seq":
            elem = None
            for v in value:
                elem = join(elem, value_kind(v))
            kinds[name + "[]"] = elem or "unknown"
    return kinds


class _Specialized:
    """Compiled variants of one gradient, one per kind of arguments (scalar/array/list)."""

    def __init__(self, fn, names, jit=False, options=None):
        self.fn, self.names, self.jit, self.options = fn, names, jit, options
        self.variants = {}
        self.last = None

    def get(self, args, kwargs):
        key = _type_key(args, kwargs)
        compiled = self.variants.get(key)
        if compiled is None:
            _check_arguments(self.fn, self.names, _bind(self.fn, args, kwargs, self.names))
            compiled = pipeline.gradient_function(self.fn, self.names,
                                                  _kinds(self.fn, args, kwargs), self.options)
            if _returns_nothing(self.fn):
                code = self.fn.__code__
                raise TranspileError("the function returns None: a gradient needs a "
                                     "function returning a number", code.co_filename,
                                     code.co_firstlineno, self.fn.__qualname__)
            if self.jit:
                from . import jit
                compiled = jit.compiled_for(compiled)
            self.variants[key] = compiled
        self.last = compiled
        return compiled

    def default_source(self):
        if self.last is None:        # nothing called yet: show the all-scalar version
            params = _param_names(self.fn)
            self.last = pipeline.gradient_function(self.fn, self.names,
                                                   {p: "scalar" for p in params}, self.options)
        return self.last.source


class GradientFunction:
    """What grad / value_and_grad return: call it like f; `.source` shows generated code."""

    __transpile_derivative__ = True

    def __init__(self, f, wrt, with_value, jit=False, checkpoint=None):
        fn = _function(f)
        names, many = _wrt_names(fn, wrt)
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        self.fn, self.names, self.many, self.with_value = fn, names, many, with_value
        self.jit = bool(jit)
        checkpoint = check_option(checkpoint)
        self.variants = _Specialized(fn, names, self.jit,
                                     {"checkpoint": checkpoint} if checkpoint else None)
        functools.update_wrapper(self, fn, updated=())   # not fn.__dict__ over ours
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + fn.__name__
        self._lookup = self.variants.variants.get
        self._several = len(names) > 1

    def __call__(self, *args, **kwargs):
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
        out = gs if self.many else gs[0]
        return (value, out) if self.with_value else out

    @property
    def source(self):
        """Generated source of the most recently used variant (all-scalar before a call);
        with jit=True too, the Python that numba compiles (before its numba pass)."""
        try:
            return self.variants.default_source()
        except TranspileError as exc:
            raise _trimmed(exc) from None

    @property
    def generated(self):
        self.variants.default_source()
        return self.variants.last.function


@_entry_point
def value_and_grad(f, wrt=0, jit=False, checkpoint=None):
    """Return a function computing ``(f(*args), df/dwrt)`` from generated code.

    ``jit=True``: the generated code is compiled with numba (the ``jit`` extra).
    ``checkpoint``: None (loops save every iteration), "sqrt" or an int k: long loops
    keep a snapshot every ceil(sqrt(n)) or k iterations and re-run one segment at a
    time in the adjoint sweep (tape memory O(sqrt n), one extra forward pass)."""
    return GradientFunction(f, wrt, True, jit, checkpoint)


@_entry_point
def grad(f, wrt=0, jit=False, checkpoint=None):
    """Return a function computing the gradient of scalar-valued f w.r.t. ``wrt``
    (``jit`` and ``checkpoint`` as for value_and_grad).

    ``grad(grad(f))`` of a function of one scalar gives its second derivative.
    ``jit=True``: the generated code is compiled with numba (the ``jit`` extra)."""
    if isinstance(f, GradientFunction):
        if jit:
            raise TranspileError("jit=True is not available for grad(grad(f)); "
                                 "use jit=False")
        from .higher import second_derivative
        return _Entry(second_derivative(f), f.fn, f.names)
    return GradientFunction(f, wrt, False, jit, checkpoint)


@_entry_point
def vjp(f, *args, wrt=0, checkpoint=None, **kwargs):
    """Run f forward; return ``(value, pullback)``, pullback(cotangent) -> gradient(s).

    The pullback may be called any number of times: the first call uses the tape of the
    forward run; an adjoint sweep restores what the forward sweep overwrote (in-place
    writes included), so later calls run the forward sweep again for a fresh tape. The
    value returned is a copy that no pullback call changes. ``checkpoint`` as for
    value_and_grad."""
    fn = _function(f)
    names, many = _wrt_names(fn, wrt)
    _check_arguments(fn, names, _bind(fn, args, kwargs, names))
    compiled = pipeline.vjp_pair(fn, names, _kinds(fn, args, kwargs),
                                 check_option(checkpoint))
    try:
        value, tape = compiled.forward(*args, **kwargs)
    except Exception as exc:
        raise annotate(exc)
    inputs = _bind(fn, args, kwargs, names)
    state = {"tape": tape}

    def pullback(cotangent):
        tape = state.pop("tape", None)
        cotangent = _own(cotangent)
        try:
            if tape is None:
                _, tape = compiled.forward(*args, **kwargs)
            grads = _finish(compiled.backward(tape, cotangent), inputs)
        except TranspileError as exc:
            raise _trimmed(exc) from None
        except Exception as exc:
            raise annotate(exc)
        return grads if many else grads[0]

    return _own_value(value), pullback


def _own_value(value):
    """A copy of a returned value's lists and arrays (numbers are returned as they are)."""
    if isinstance(value, (list, tuple)):
        copied = [_own_value(v) for v in value]
        return copied if isinstance(value, list) else tuple(copied)
    if hasattr(value, "shape") and hasattr(value, "copy"):
        return value.copy()
    return value


def _jvp_compiled(f, args, tangents):
    """(function, compiled tangent code, tangent keyword per parameter) for jvp."""
    fn = _function(f)
    args, tangents = tuple(args), tuple(tangents)
    if len(args) != len(tangents):
        raise TypeError("jvp: give one tangent (or None) per argument")
    params = _param_names(fn)
    active = tuple(params[i] for i, t in enumerate(tangents) if t is not None)
    _check_arguments(fn, active, [a for a, t in zip(args, tangents) if t is not None])
    compiled = pipeline.jvp_function(fn, active, _kinds(fn, args, {}))
    return compiled, params, pipeline.tangent_names(fn, active)


@_entry_point
def jvp(f, args, tangents):
    """Forward mode: ``(f(*args), J(args) @ tangents)`` from generated tangent code.

    ``tangents`` has one entry per positional argument (None: that argument is held
    fixed); each tangent has the shape of its argument."""
    compiled, params, names = _jvp_compiled(f, args, tangents)
    keywords = {names[params[i]]: t for i, t in enumerate(tangents) if t is not None}
    try:
        return compiled.function(*args, **keywords)
    except Exception as exc:
        raise annotate(exc)


@_entry_point
def jvp_source(f, args, tangents):
    """The generated forward-mode source jvp(f, args, tangents) runs."""
    return _jvp_compiled(f, args, tangents)[0].source


class Differentiable:
    """A function with derivative methods: ``f(x)``, ``f.grad(x)``, ``f.vjp(x)``, ``f.source``."""

    def __init__(self, fn, wrt=0, mode="reverse", jit=False, checkpoint=None):
        if mode not in ("reverse", "forward"):
            raise TranspileError(f"mode={mode!r}: use 'reverse' or 'forward'")
        if jit:
            from .jit import numba_module
            numba_module()                   # a clear error now when numba is missing
        self.__transpile_function__ = fn
        self.wrt = wrt
        self.checkpoint = check_option(checkpoint)
        self.mode = mode
        self.jit = bool(jit)
        functools.update_wrapper(self, fn)
        self._vg = None

    def __call__(self, *args, **kwargs):
        return self.__transpile_function__(*args, **kwargs)

    def _value_and_grad(self):
        if self._vg is None:
            self._vg = value_and_grad(self.__transpile_function__, self.wrt, self.jit,
                                      self.checkpoint)
        return self._vg

    @_entry_point
    def grad(self, *args, **kwargs):
        return self._value_and_grad()(*args, **kwargs)[1]

    @_entry_point
    def value_and_grad(self, *args, **kwargs):
        return self._value_and_grad()(*args, **kwargs)

    @_entry_point
    def vjp(self, *args, **kwargs):
        return vjp(self.__transpile_function__, *args, wrt=self.wrt,
                   checkpoint=self.checkpoint, **kwargs)

    @_entry_point
    def jvp(self, args, tangents):
        """Forward mode: (value, directional derivative along tangents)."""
        self._last_jvp = (tuple(args), tuple(tangents))
        return jvp(self.__transpile_function__, args, tangents)

    @property
    def source(self):
        """The generated Python source: the gradient function, or with mode="forward" the
        tangent function (for the arguments of the last .jvp call; all scalars before)."""
        if self.mode == "forward":
            fn = self.__transpile_function__
            if getattr(self, "_last_jvp", None) is not None:
                return jvp_source(fn, *self._last_jvp)
            names, _ = _wrt_names(fn, self.wrt)
            params = _param_names(fn)
            return pipeline.jvp_function(fn, names, {p: "scalar" for p in params}).source
        return self._value_and_grad().source

    def __repr__(self):
        return f"<differentiable {self.__transpile_function__.__qualname__}>"


@_entry_point
def differentiate(fn=None, *, wrt=0, mode="reverse", jit=False, checkpoint=None):
    """Decorator: ``@differentiate`` or ``@differentiate(wrt=("x", "w"))``.

    ``jit=True``: ``.grad`` and ``.value_and_grad`` run the generated code compiled with
    numba (``.source`` still shows the generated Python; vjp/jvp stay plain Python).
    ``checkpoint`` as for value_and_grad."""
    if fn is None:
        return lambda f: Differentiable(f, wrt=wrt, mode=mode, jit=jit,
                                        checkpoint=checkpoint)
    return Differentiable(fn, wrt=wrt, mode=mode, jit=jit, checkpoint=checkpoint)
