"""Jacobians, Hessian-vector products and Hessians, from generated code only.

* `jacobian(f, wrt, mode)`: forward mode builds it a column per input element (one
  tangent function run each), reverse mode a row per output element (one pullback each);
  "auto" picks the mode with fewer runs.
* `hvp(f, wrt)`: H v = d/dx <grad f(x), v> computed as the gradient of the *generated*
  tangent function x -> J(x) v (reverse over forward): the forward-mode code is ordinary
  Python, so reverse mode differentiates it like any user function.
* `hessian(f, wrt)`: n Hessian-vector products with the unit vectors.
* `grad(grad(f))`: for a function of one scalar, the second derivative (the same route).
"""
import numpy as np

from . import pipeline
from .api import _function, _kinds, _param_names, _wrt_names, grad as _grad, vjp as _vjp
from .api import jvp as _jvp
from .errors import TranspileError


def _single(fn, wrt):
    names, many = _wrt_names(fn, wrt)
    return names, many


def hvp(f, wrt=0):
    """Return hvp(*args, v=...) -> H v, H the Hessian of scalar f w.r.t. `wrt` (one
    parameter, or a tuple of them with v a tuple of matching tangents)."""
    fn = _function(f)
    names, many = _single(fn, wrt)
    tangent_names = pipeline.tangent_names(fn, names)
    gradients = {}

    def run(*args, v):
        vs = tuple(v) if many else (v,)
        kinds = _kinds(fn, args, {})
        key = tuple(sorted(kinds.items()))
        g = gradients.get(key)
        if g is None:
            tangent_fn = pipeline.jvp_function(fn, names, kinds, tangent_only=True).function
            g = gradients[key] = _grad(tangent_fn, wrt=names if many else names[0])
        return g(*args, **{tangent_names[p]: t for p, t in zip(names, vs)})

    run.__name__ = f"hvp_{fn.__name__}"
    run.gradients = gradients
    return _with_source(run, lambda: _hvp_source(fn, names, gradients))


class _with_source:
    """A derivative function plus `.source`, the generated code it runs."""

    def __init__(self, fn, source):
        self._fn, self._source = fn, source
        self.__name__ = fn.__name__

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    @property
    def source(self):
        return self._source()


def _hvp_source(fn, names, gradients):
    """Generated code of an HVP: the tangent function and the gradient taken of it."""
    if not gradients:               # nothing run yet: show the all-scalar version
        params = _param_names(fn)
        tangent = pipeline.jvp_function(fn, names, {p: "scalar" for p in params},
                                        tangent_only=True)
        g = _grad(tangent.function, wrt=names if len(names) > 1 else names[0])
    else:
        g = list(gradients.values())[-1]
        tangent = None
    parts = []
    if tangent is not None:
        parts.append(tangent.source)
    parts.append(g.source)
    return "\n\n".join(parts)


def hessian(f, wrt=0):
    """Return a function computing the Hessian of scalar f w.r.t. one parameter (a number
    -> a number, an array of shape s -> an array of shape s + s) or a tuple of scalar
    parameters (-> a nested list)."""
    fn = _function(f)
    names, many = _single(fn, wrt)
    product = hvp(fn, wrt)
    params = _param_names(fn)

    def run(*args):
        if many:
            rows = []
            for i in range(len(names)):
                e = tuple(1.0 if j == i else 0.0 for j in range(len(names)))
                rows.append(list(product(*args, v=e)))
            return [[rows[j][i] for j in range(len(names))] for i in range(len(names))]
        x = args[params.index(names[0])]
        if not hasattr(x, "shape"):
            return product(*args, v=1.0)
        x = np.asarray(x)
        out = np.zeros(x.shape + x.shape)
        for idx in np.ndindex(*x.shape):
            e = np.zeros(x.shape)
            e[idx] = 1.0
            out[(Ellipsis,) + idx] = product(*args, v=e)
        return out

    run.__name__ = f"hessian_{fn.__name__}"
    return _with_source(run, lambda: product.source)


def jacobian(f, wrt=0, mode="auto"):
    """Return a function computing the Jacobian of f w.r.t. one parameter: shape
    output.shape + input.shape (outputs may be numbers, arrays, tuples or lists of
    numbers; inputs numbers or arrays). mode: "forward", "reverse" or "auto"."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError("mode must be 'auto', 'forward' or 'reverse'")
    fn = _function(f)
    names, many = _single(fn, wrt)
    if many:
        raise TranspileError("jacobian: give one parameter in wrt")
    params = _param_names(fn)
    index = params.index(names[0])

    def run(*args):
        x = args[index]
        xa = np.asarray(x, dtype=float)
        value = fn(*args)
        ya = np.asarray(value, dtype=float)
        use = mode
        if use == "auto":
            use = "forward" if xa.size <= ya.size else "reverse"
        out = np.zeros(ya.shape + xa.shape)
        if use == "forward":
            for idx in np.ndindex(*xa.shape):
                e = np.zeros(xa.shape)
                e[idx] = 1.0
                tangents = [None] * len(args)
                tangents[index] = e if hasattr(x, "shape") else 1.0
                _, t = _jvp(fn, args, tangents)
                out[(Ellipsis,) + idx] = np.asarray(t, dtype=float)
        else:
            _, pullback = _vjp(fn, *args, wrt=index)
            for idx in np.ndindex(*ya.shape):
                e = np.zeros(ya.shape)
                e[idx] = 1.0
                ct = _like(value, e)
                out[idx] = np.asarray(pullback(ct), dtype=float)
        return out if out.shape else float(out)

    run.__name__ = f"jacobian_{fn.__name__}"
    return run


def _like(value, e):
    """A cotangent shaped like the output value (number, array, tuple or list)."""
    if isinstance(value, (tuple, list)):
        return [float(v) for v in e]
    if hasattr(value, "shape"):
        return e
    return float(e)


def second_derivative(gradient_function):
    """grad(grad(f)) for f of one scalar parameter: d^2 f / dx^2 at the arguments."""
    fn = gradient_function.fn
    names = gradient_function.names
    if len(names) != 1 or gradient_function.with_value:
        raise TranspileError("grad of a gradient needs a gradient with respect to one "
                             "parameter (use transpile.hessian for several)")
    product = hvp(fn, names[0])

    def run(*args):
        return product(*args, v=1.0)

    run.__name__ = f"grad_grad_{fn.__name__}"
    return run
