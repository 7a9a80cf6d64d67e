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
* `grad(grad(f))`: for a function of one scalar, the second derivative, reverse over
  reverse (the gradient of the generated gradient code, built with copying helpers so the
  outer adjoint sweep sees every inner adjoint as it was); where an inner reverse rule has
  no reverse rule of its own, forward over reverse.
"""
import numpy as np

from . import pipeline
from .api import _function, _kinds, _param_names, _wrt_names, grad as _grad, vjp as _vjp
from .api import jvp as _jvp
from .errors import TranspileError
from .runtime import _is_zero, zeros_like

HVP_MODES = ("forward-over-reverse", "reverse-over-forward")


def hvp(f, wrt=0, mode="forward-over-reverse"):
    """Return hvp(*args, v=...) -> H v, H the Hessian of scalar f w.r.t. `wrt` (one
    parameter, or a tuple of them with v a tuple of matching tangents)."""
    if mode not in HVP_MODES:
        raise ValueError(f"mode must be one of {HVP_MODES}")
    fn = _function(f)
    names, many = _wrt_names(fn, wrt)
    variants = {}                  # argument kinds -> (derivative function, its sources)

    def build(kinds):
        if mode == "reverse-over-forward":
            tangent = pipeline.jvp_function(fn, names, kinds, tangent_only=True)
            g = _grad(tangent.function, wrt=names if many else names[0])
            keywords = pipeline.tangent_names(fn, names)

            def product(args, vs):
                return g(*args, **{keywords[p]: t for p, t in zip(names, vs)})
            return product, lambda: tangent.source + "\n\n" + g.source
        gradient = pipeline.gradient_function(fn, names, kinds, gradient_only=True)
        outer = pipeline.jvp_function(gradient.function, names, kinds, tangent_only=True)
        keywords = pipeline.tangent_names(gradient.function, names)

        def product(args, vs):
            return outer.function(*args, **{keywords[p]: t for p, t in zip(names, vs)})
        return product, lambda: gradient.source + "\n\n" + outer.source

    def run(*args, v):
        vs = tuple(v) if many else (v,)
        kinds = _kinds(fn, args, {})
        key = tuple(sorted(kinds.items()))
        if key not in variants:
            variants[key] = build(kinds)
        run.last = variants[key]
        out = variants[key][0](args, vs)
        if many:
            if len(names) == 1:
                return (out,)
            if _is_zero(out):            # the gradient does not depend on the inputs
                return tuple(zeros_like(t) for t in vs)
            return tuple(out)
        return out

    def source():
        if run.last is None:         # nothing run yet: show the all-scalar version
            run.last = build({p: "scalar" for p in _param_names(fn)})
        return run.last[1]()

    run.last = None
    run.__name__ = f"hvp_{fn.__name__}"
    return _with_source(run, source)


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


def hessian(f, wrt=0, mode="forward-over-reverse"):
    """Return a function computing the Hessian of scalar f w.r.t. one parameter (a number
    -> a number, an array of shape s -> an array of shape s + s) or a tuple of parameters
    (-> a nested list of blocks: H[i][j] has shape s_i + s_j, a number for two numbers).
    Column by column: one Hessian-vector product per input element."""
    fn = _function(f)
    names, many = _wrt_names(fn, wrt)
    product = hvp(fn, wrt, mode=mode)
    params = _param_names(fn)

    def run(*args):
        xs = [args[params.index(n)] for n in names]
        shapes = [np.shape(x) if hasattr(x, "shape") else () for x in xs]
        blocks = [[np.zeros(si + sj) for sj in shapes] for si in shapes]
        for j, sj in enumerate(shapes):
            for idx in np.ndindex(*sj):
                v = [np.zeros(sk) if hasattr(x, "shape") else 0.0
                     for sk, x in zip(shapes, xs)]
                if sj:
                    v[j][idx] = 1.0
                else:
                    v[j] = 1.0
                column = product(*args, v=tuple(v)) if many else (product(*args, v=v[0]),)
                for i in range(len(names)):
                    blocks[i][j][(Ellipsis,) + idx] = column[i]
        out = [[b if b.shape else float(b) for b in row] for row in blocks]
        return out if many else out[0][0]

    run.__name__ = f"hessian_{fn.__name__}"
    return _with_source(run, lambda: product.source)


def jacobian(f, wrt=0, mode="auto"):
    """Return a function computing the Jacobian of f w.r.t. one parameter: shape
    output.shape + input.shape (outputs may be numbers, arrays, tuples or lists of
    numbers; inputs numbers or arrays). mode: "forward", "reverse" or "auto"."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError("mode must be 'auto', 'forward' or 'reverse'")
    fn = _function(f)
    names, many = _wrt_names(fn, wrt)
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
    """grad(grad(f)) for f of one scalar parameter: d^2 f / dx^2 at the arguments, reverse
    mode over the generated gradient code (forward over reverse where a rule inside has
    no reverse rule of its own)."""
    fn = gradient_function.fn
    names = gradient_function.names
    if len(names) != 1 or gradient_function.with_value:
        raise TranspileError("grad of a gradient needs a gradient with respect to one "
                             "parameter (use transpile.hessian for several)")
    fallback = hvp(fn, names[0])
    variants = {}

    def build(kinds):
        inner = pipeline.gradient_function(fn, names, kinds, gradient_only=True,
                                           options={"copy_adjoints": True})
        outer = _grad(inner.function, wrt=names[0])
        return outer, lambda: inner.source + "\n\n" + outer.source

    def run(*args):
        kinds = _kinds(fn, args, {})
        if kinds.get(names[0]) != "scalar":
            raise TranspileError(f"grad(grad({fn.__qualname__})): '{names[0]}' must be a "
                                 "number; use transpile.hessian for arrays")
        key = tuple(sorted(kinds.items()))
        if key not in variants:
            try:
                variants[key] = build(kinds)
                variants[key][0](*args)
            except TranspileError as exc:
                if not getattr(exc, "no_reverse_rule", False):
                    raise
                variants[key] = (lambda *a: fallback(*a, v=1.0), lambda: fallback.source)
        run.last = variants[key]
        return variants[key][0](*args)

    def source():
        if run.last is None:
            run.last = build({p: "scalar" for p in _param_names(fn)})
        return run.last[1]()

    run.last = None
    run.__name__ = f"grad_grad_{fn.__name__}"
    return _with_source(run, source)
