"""The user-facing API: @differentiate, grad, value_and_grad, vjp.

`wrt` names the parameters to differentiate with respect to: an index, a name, or a tuple
of them (then a tuple of gradients comes back). Default: the first parameter.
`jit=True` runs the generated gradient compiled by numba (see jit.py).
"""
import functools
import inspect

from . import pipeline
from .checkpoint import check_option
from .errors import TranspileError
from .analysis import join, value_kind
from .emit import annotate
from .runtime import zeros_like, _is_zero


def _function(f):
    f = getattr(f, "__transpile_function__", f)
    if not callable(f):
        raise TypeError(f"{f!r} is not callable")
    return f


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
    """Zero adjoints of container inputs become zero containers of the right shape."""
    return tuple(zeros_like(x) if _is_zero(g) and not isinstance(x, (int, float)) else g
                 for g, x in zip(grads, inputs))


def _type_key(args, kwargs):
    """Cheap key of the argument types the generated code is specialized on."""
    key = tuple([type(a) if type(a) not in (list, tuple) or not a else (type(a), type(a[0]))
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
            for name, value in zip(self.names, _bind(self.fn, args, kwargs, self.names)):
                if getattr(getattr(value, "dtype", None), "kind", "f") in "biu":
                    raise TranspileError(
                        f"cannot differentiate {self.fn.__qualname__} with respect to "
                        f"'{name}': it is an integer or boolean array (pass floats, e.g. "
                        f"{name}.astype(float))")
            compiled = pipeline.gradient_function(self.fn, self.names,
                                                  _kinds(self.fn, args, kwargs), self.options)
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
        functools.update_wrapper(self, fn)
        self.__name__ = ("value_and_grad_" if with_value else "grad_") + fn.__name__
        self._lookup = self.variants.variants.get
        self._several = len(names) > 1

    def __call__(self, *args, **kwargs):
        compiled = self._lookup(_type_key(args, kwargs)) or self.variants.get(args, kwargs)
        try:
            value, g = compiled.function(*args, **kwargs)
        except Exception as exc:
            if self.jit:
                from .jit import call_failure
                failure = call_failure(exc, self.fn)
                if failure is not None:
                    raise failure from None
            raise annotate(exc)
        if value.__class__ is not float and not _is_scalar(value):
            raise TypeError(f"grad of {self.fn.__qualname__}: the function returned a "
                            f"{type(value).__name__}, not a scalar; use transpile.vjp")
        gs = g if self._several else (g,)
        for x in gs:
            if x.__class__ is float and x == 0.0 or x is None:   # untouched: shape it
                gs = _finish(gs, _bind(self.fn, args, kwargs, self.names))
                break
        out = gs if self.many else gs[0]
        return (value, out) if self.with_value else out

    @property
    def source(self):
        """Generated source of the most recently used variant (all-scalar before a call);
        with jit=True too, the Python that numba compiles (before its numba pass)."""
        return self.variants.default_source()

    @property
    def generated(self):
        self.variants.default_source()
        return self.variants.last.function


def value_and_grad(f, wrt=0, jit=False, checkpoint=None):
    """Return a function computing ``(f(*args), df/dwrt)`` from generated code.

    ``jit=True``: the generated code is compiled with numba (the ``jit`` extra).
    ``checkpoint``: None (loops save every iteration), "sqrt" or an int k: long loops
    keep a snapshot every ceil(sqrt(n)) or k iterations and re-run one segment at a
    time in the adjoint sweep (tape memory O(sqrt n), one extra forward pass)."""
    return GradientFunction(f, wrt, True, jit, checkpoint)


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
        return second_derivative(f)
    return GradientFunction(f, wrt, False, jit, checkpoint)


def vjp(f, *args, wrt=0, checkpoint=None, **kwargs):
    """Run f forward; return ``(value, pullback)``, pullback(cotangent) -> gradient(s).

    The pullback may be called any number of times: the first call uses the tape of the
    forward run; an adjoint sweep restores what the forward sweep overwrote (in-place
    writes included), so later calls run the forward sweep again for a fresh tape. The
    value returned is a copy that no pullback call changes. ``checkpoint`` as for
    value_and_grad."""
    fn = _function(f)
    names, many = _wrt_names(fn, wrt)
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
    compiled = pipeline.jvp_function(fn, active, _kinds(fn, args, {}))
    return compiled, params, pipeline.tangent_names(fn, active)


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

    def grad(self, *args, **kwargs):
        return self._value_and_grad()(*args, **kwargs)[1]

    def value_and_grad(self, *args, **kwargs):
        return self._value_and_grad()(*args, **kwargs)

    def vjp(self, *args, **kwargs):
        return vjp(self.__transpile_function__, *args, wrt=self.wrt,
                   checkpoint=self.checkpoint, **kwargs)

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


def differentiate(fn=None, *, wrt=0, mode="reverse", jit=False, checkpoint=None):
    """Decorator: ``@differentiate`` or ``@differentiate(wrt=("x", "w"))``.

    ``jit=True``: ``.grad`` and ``.value_and_grad`` run the generated code compiled with
    numba (``.source`` still shows the generated Python; vjp/jvp stay plain Python).
    ``checkpoint`` as for value_and_grad."""
    if fn is None:
        return lambda f: Differentiable(f, wrt=wrt, mode=mode, jit=jit,
                                        checkpoint=checkpoint)
    return Differentiable(fn, wrt=wrt, mode=mode, jit=jit, checkpoint=checkpoint)
