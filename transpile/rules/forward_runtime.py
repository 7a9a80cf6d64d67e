"""What forward-mode (tangent) code calls besides the runtime helpers.

* `dense(t, like)`: a tangent with its zero placeholders (0.0) made into zeros shaped like
  the primal value, for linear primitives that take lists of arrays (concatenate, stack)
  or several arrays jointly (where, append): `np.concatenate([da, 0.0])` would be wrong.
* `broadcast_tangent(t, value)`: the tangent of an elementwise operation spread to the
  shape of its value (the tangent of `x + c` with scalar x and array c is an array).
* `result_tangent(t, value)`: the tangent a jvp returns: the result's structure, shape and
  floating dtype, also when it is identically zero (never a bare 0.0 for an array).
* `jvp_by_vjps(vjps, fn, args, tangents)`: J v from a reverse rule, one vjp per output
  element; the fallback for primitives (user rules) with vjp functions only.

Each has a rule in derivative_code.py, so tangent code can be differentiated again.
"""
import numpy as np

from ..runtime import _is_zero
from ..namespaces import as_array, copied, is_foreign, numpy_for, standard_only


def dense(t, like):
    """t with zero placeholders replaced by zeros shaped like `like` (recursively)."""
    if isinstance(like, (list, tuple)):
        if _is_zero(t):
            return [dense(0.0, v) for v in like]
        return [dense(tk, v) for tk, v in zip(t, like)]
    if _is_zero(t):
        if isinstance(like, np.ndarray) or isinstance(like, np.generic):
            return np.zeros(np.shape(like), dtype=np.result_type(like, np.float32)
                            if as_array(like).dtype.kind == "f" else float)
        return 0.0
    return t


def broadcast_tangent(t, value):
    """The tangent of an elementwise result spread to the value's shape (zero stays 0.0)."""
    shape = getattr(value, "shape", None)
    if shape is None or _is_zero(t) or getattr(t, "shape", None) == shape:
        return t
    if standard_only(t, value):
        numpy = numpy_for(t, value)
        return copied(numpy.broadcast_to(numpy.asarray(t), shape))
    return np.array(np.broadcast_to(t, shape))


def _floating(value):
    dt = getattr(value, "dtype", None)
    if dt is not None and dt.kind in "fc":
        return dt
    return np.dtype(float)


def result_tangent(t, value):
    """The tangent of a returned value: its structure, shape and floating dtype."""
    if isinstance(value, (list, tuple)):
        parts = [result_tangent(0.0 if _is_zero(t) else tk, v)
                 for tk, v in zip(t if not _is_zero(t) else value, value)]
        return tuple(parts) if isinstance(value, tuple) else parts
    if isinstance(value, (np.ndarray, np.generic)):
        dt = _floating(value)
        if _is_zero(t):
            out = np.zeros(np.shape(value), dtype=dt)
        else:
            out = as_array(t)
            if out.dtype.kind == "c" and dt.kind != "c":
                out = out.real       # a real value's tangent is real (registry.COMPLEX)
            if out.shape != np.shape(value):
                out = np.array(np.broadcast_to(out, np.shape(value)))
            if out.dtype != dt and out.dtype.kind in "fiub":
                out = out.astype(dt)
        return out if isinstance(value, np.ndarray) else dt.type(out)
    if isinstance(value, (bool, int, float)) or value is None:
        if _is_zero(t):
            return 0.0
        return float(np.real(t)) if np.ndim(t) == 0 else t
    return t


def _inner(c, t):
    """<c, t> for nested contributions and tangents (None and 0.0 entries give 0)."""
    if c is None or _is_zero(c) or t is None or _is_zero(t):
        return 0.0
    if isinstance(c, (list, tuple)) or isinstance(t, (list, tuple)):
        return sum(_inner(ck, tk) for ck, tk in zip(c, t))
    return number(np.sum(as_array(c) * as_array(t)))  # (no conjugate: registry.COMPLEX)


def number(t):
    """A 0-d value as a Python number: complex where it is complex. A 0-d array of
    another library stays one (a Dask array would be computed: namespaces.py)."""
    if is_foreign(t):
        return t
    return complex(t) if np.iscomplexobj(t) else float(t)


def jvp_by_vjps(vjps, fn, args, tangents, **kwargs):
    """J v for a primitive known by its reverse rule: exact, one vjp per output element.
    Arguments and results may be nested lists and tuples; several outputs give a tuple."""
    ans = fn(*args, **kwargs)
    several = isinstance(ans, (tuple, list))
    parts = list(ans) if several else [ans]
    results = []
    for j, part in enumerate(parts):
        shape = np.shape(part)
        out = np.zeros(shape, dtype=_floating(part) if hasattr(part, "dtype") else float)
        for k in range(out.size):
            e = np.zeros(shape)
            e.flat[k] = 1.0
            seed = e if out.ndim else 1.0
            if several:
                seed = tuple(seed if i == j else 0.0 for i in range(len(parts)))
            total = 0.0
            for vjp, t in zip(vjps, tangents):
                if vjp is None or t is None or _is_zero(t):
                    continue
                total += _inner(vjp(seed, ans, *args, **kwargs), t)
            # (a real output's tangent is the real part: registry.COMPLEX)
            out.flat[k] = total if out.dtype.kind == "c" else np.real(total)
        results.append(out if out.ndim else out[()].item())
    return tuple(results) if several else results[0]
