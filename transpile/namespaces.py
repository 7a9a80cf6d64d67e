"""Array namespaces: the arrays of other libraries than NumPy, as derivative code meets them.

Generated code and the rules' vjps are written with NumPy calls. An array of a library
NumPy dispatches to (`__array_function__` / `__array_ufunc__`: Dask, CuPy) goes through
those calls as itself: `np.sum` of a Dask array is Dask's sum, lazy. What must not happen
is a conversion: `np.asarray` of a Dask array computes it whole, so derivative code and
rules convert with `as_array`, which leaves such arrays as they are.

`namespace(*values)` is the Array API namespace of the arrays among values
(`array_api_compat.array_namespace`, imported only when an array that is not NumPy's
appears), `backend(value)` the library's name for messages ("Dask", "CuPy", ...).
"""
import sys

_NUMPY_TYPES = ()


def _numpy_types():
    global _NUMPY_TYPES
    if not _NUMPY_TYPES:
        import numpy
        _NUMPY_TYPES = (numpy.ndarray, numpy.generic)
    return _NUMPY_TYPES


#: the libraries whose arrays NumPy's functions dispatch to, by top-level module
DISPATCHED = {"dask": "Dask", "cupy": "CuPy"}
#: the others array_api_compat knows (their arrays need their own namespace's functions)
OTHERS = {"torch": "PyTorch", "jax": "JAX", "jaxlib": "JAX",
          "array_api_strict": "array-api-strict", "sparse": "pydata/sparse",
          "ndonnx": "ndonnx"}


def library(value):
    """The top-level module of value's class (``"dask"`` for a Dask array)."""
    from .tree import type_module
    return type_module(value).partition(".")[0]


def is_foreign(value):
    """Is value an array of another library than NumPy (a Dask, CuPy, PyTorch or JAX
    array, an array-api-strict array, anything with ``__array_namespace__``)?"""
    cls = value.__class__
    if cls is float or cls is int or cls is list or cls is tuple or cls is dict:
        return False
    if isinstance(value, _NUMPY_TYPES or _numpy_types()):
        return False
    if isinstance(value, type) or not (
            library(value) in DISPATCHED or library(value) in OTHERS
            or hasattr(type(value), "__array_namespace__")):      # (the class's, not a
        return False                                              # __getattr__'s answer)
    try:
        return hasattr(value, "shape") and hasattr(value, "dtype")
    except Exception:            # a property that fails: not an array
        return False


def is_dispatched(value):
    """Is value an array NumPy's functions dispatch to (Dask, CuPy): derivative code
    written with NumPy calls computes with it as itself."""
    return library(value) in DISPATCHED and is_foreign(value)


def standard_only(*values):
    """Is one of values an array NumPy's functions do not dispatch to (PyTorch, JAX,
    array-api-strict): derivative code computes with it through its Array API namespace
    (rules/array_api.py), never through NumPy, which would convert it."""
    for v in values:
        if is_foreign(v) and not is_dispatched(v):
            return True
    return False


def dtype_kind(x):
    """NumPy's one-letter kind of x's dtype ("f", "c", "i", "u", "b"), for the arrays
    of any library (a PyTorch dtype has no .kind)."""
    dtype = getattr(x, "dtype", None)
    kind = getattr(dtype, "kind", None)
    if isinstance(kind, str) or dtype is None:
        return kind
    xp = namespace(x)
    for k, name in (("b", "bool"), ("c", "complex floating"), ("f", "real floating"),
                    ("i", "signed integer"), ("u", "unsigned integer")):
        if xp.isdtype(dtype, name):
            return k
    return "O"


def is_immutable(value):
    """Is value an array that cannot be written in place (JAX: `x.at[i].set(v)`)?"""
    return library(value) in ("jax", "jaxlib") and is_foreign(value)


def is_lazy(value):
    """Is value a lazy array (Dask): its elements are not known until computed, so code
    that branches on them cannot be traced without computing it."""
    return library(value) == "dask" and is_foreign(value)


def backend(value):
    """The library of a foreign array, for messages: "Dask", "PyTorch", ..."""
    name = library(value)
    return DISPATCHED.get(name) or OTHERS.get(name) or name


def as_array(x, dtype=None):
    """`np.asarray(x, dtype)`, except that an array of another library stays one (of
    `dtype` where given): converting a Dask array would compute it, a CuPy one would copy
    it off the GPU."""
    import numpy
    if x.__class__ is numpy.ndarray:
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    if is_foreign(x):
        if dtype is None or x.dtype == dtype:
            return x
        return x.astype(dtype)
    return numpy.asarray(x, dtype=dtype)


def same_shape(a, b):
    """Are shapes a and b the same, a size Dask does not know yet (nan) matching itself?"""
    return a == b or a is not None and b is not None and len(a) == len(b) and all(
        m == n or m != m and n != n for m, n in zip(a, b))


def iscomplexobj(x):
    """`np.iscomplexobj` for the arrays of any library."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind.__class__ is str:                   # (NumPy's dtypes, Dask's, CuPy's)
        return kind == "c"
    if is_foreign(x):
        return dtype_kind(x) == "c"
    import numpy
    return numpy.iscomplexobj(x)


def match_array(g, x):
    """The gradient g of the array x (of a library NumPy does not dispatch to) as an
    array of x's library, of x's floating dtype."""
    g = like(g, x)
    if hasattr(g, "dtype") and g.dtype != x.dtype and dtype_kind(x) == "f":
        g = namespace(x).astype(g, x.dtype)
    return g


def copied(x):
    """A copy of the array x, of any library (a PyTorch tensor has no .copy())."""
    if hasattr(x, "copy"):
        return x.copy()
    if is_foreign(x):
        return namespace(x).asarray(x, copy=True)
    return x


def known_finite(x):
    """Are all elements of x known to be finite? False for a lazy array (its elements
    are not known; a shortcut taken where they are finite must not compute it)."""
    import numpy
    if standard_only(x):
        xp = namespace(x)
        return bool(xp.all(xp.isfinite(x)))
    return not is_lazy(x) and bool(numpy.isfinite(x).all())


def known_nonzero(x):
    """Are all elements of x known to be nonzero? False for a lazy array."""
    import numpy
    if standard_only(x):
        return bool(namespace(x).all(x != 0))
    return not is_lazy(x) and bool(numpy.all(x != 0))


def like(value, x):
    """value (a NumPy array or number) as an array of x's library: a Dask array chunked
    like x where it has x's shape, an array on x's device. A constant adjoint (the
    gradient of a sum is ones) comes back as the kind of array it belongs to."""
    import numpy
    if is_foreign(value) or not is_foreign(x):
        return value
    if is_lazy(x):
        import dask.array
        value = numpy.asarray(value)
        chunks = x.chunks if value.shape == tuple(x.shape) else "auto"
        if 0 in value.strides and value.size:   # a broadcast view: sent as its one row
            small = value[tuple(slice(0, 1) if st == 0 else slice(None)
                                for st in value.strides)].copy()
            return dask.array.broadcast_to(dask.array.from_array(small), value.shape,
                                           chunks=chunks)
        return dask.array.from_array(value, chunks=chunks)
    import array_api_compat
    return namespace(x).asarray(value, device=array_api_compat.device(x))


def is_namespace(obj):
    """Is obj an Array API namespace (a module with `__array_api_version__`: NumPy 2,
    array_api_compat's namespaces, jax.numpy, array-api-strict)?"""
    import types
    return isinstance(obj, types.ModuleType) and hasattr(obj, "__array_api_version__")


def is_namespace_getter(obj):
    """Is obj a function returning the namespace of its array arguments
    (`array_api_compat.array_namespace`, `get_namespace`)?"""
    compat = sys.modules.get("array_api_compat")
    return compat is not None and obj is not None and any(
        obj is getattr(compat, n, None) for n in ("array_namespace", "get_namespace"))


def value_namespace(value):
    """The Array API namespace of an argument: a namespace passed itself, the namespace
    of an array (NumPy's only where array_api_compat is in use), of a list's first
    array; None for anything else."""
    import numpy
    if is_namespace(value):
        return value
    if isinstance(value, (list, tuple)):
        return next((ns for ns in map(value_namespace, value) if ns is not None), None)
    if is_foreign(value) or (isinstance(value, numpy.ndarray)
                             and "array_api_compat" in sys.modules):
        try:
            return namespace(value)
        except Exception:          # (a library array_api_compat does not know)
            return None
    return None


def namespace(*values):
    """The Array API namespace of the arrays among values (NumPy's for none)."""
    import array_api_compat
    arrays = [v for v in values if is_foreign(v) or isinstance(v, _numpy_types())]
    return array_api_compat.array_namespace(*arrays) if arrays else \
        array_api_compat.array_namespace(__import__("numpy").empty(0))


def numpy_for(*values):
    """What derivative code computes with for these values: NumPy itself, or, where one
    is an array NumPy does not dispatch to, NumPy's names over that array's Array API
    namespace (`NumPyNames`), so that a helper written with NumPy calls computes with
    PyTorch or JAX arrays as themselves."""
    for v in values:
        if is_foreign(v) and not is_dispatched(v):
            import array_api_compat
            key = (id(namespace(v)), str(array_api_compat.device(v)))
            names = _FACADES.get(key)
            if names is None:
                names = _FACADES[key] = NumPyNames(namespace(v), array_api_compat.device(v))
            return names
    import numpy
    return numpy


_FACADES = {}
#: NumPy's names of functions the Array API standard names otherwise -> the standard's
STANDARD_NAMES = {"arccos": "acos", "arccosh": "acosh", "arcsin": "asin", "arcsinh": "asinh",
             "arctan": "atan", "arctan2": "atan2", "arctanh": "atanh", "power": "pow",
             "absolute": "abs", "concatenate": "concat", "transpose": "permute_dims"}


class NumPyNames:
    """NumPy's functions by NumPy's names, computed by an Array API namespace on one
    device: `where`, `zeros`, `sum(g, axis=..., keepdims=...)`, `arctan` (atan), `shape`,
    `ndim`, `errstate` (a no-op), ... what transpile's helpers call."""

    def __init__(self, xp, device):
        self.xp, self.device = xp, device

    def __getattr__(self, name):
        return getattr(self.xp, STANDARD_NAMES.get(name, name))

    def zeros(self, shape, dtype=None):
        return self.xp.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def ones(self, shape, dtype=None):
        return self.xp.ones(shape, dtype=self._dtype(dtype), device=self.device)

    def full(self, shape, fill, dtype=None):
        return self.xp.full(shape, fill, dtype=self._dtype(dtype), device=self.device)

    def asarray(self, x, dtype=None):
        if is_foreign(x) and (dtype is None or x.dtype == self._dtype(dtype)):
            return x
        return self.xp.asarray(x, dtype=self._dtype(dtype), device=self.device)

    def _dtype(self, dtype):
        if dtype is float:
            return self.xp.float64
        if dtype is bool:
            return self.xp.bool
        return dtype

    def zeros_like(self, x, dtype=None):
        return self.xp.zeros_like(x, dtype=self._dtype(dtype))

    def shape(self, x):
        return tuple(getattr(x, "shape", ()))

    def ndim(self, x):
        return getattr(x, "ndim", 0)

    def result_type(self, *values):
        arrays = [v for v in values if hasattr(v, "dtype")]
        return self.xp.result_type(*arrays) if arrays else self.xp.float64

    def broadcast_shapes(self, *shapes):
        import numpy
        return numpy.broadcast_shapes(*shapes)

    def errstate(self, **kwargs):
        import contextlib
        return contextlib.nullcontext()
