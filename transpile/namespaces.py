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
    if isinstance(value, type) or not (library(value) in DISPATCHED or library(value) in OTHERS
                                       or hasattr(value, "__array_namespace__")):
        return False
    try:
        return hasattr(value, "shape") and hasattr(value, "dtype")
    except Exception:            # a property that fails: not an array
        return False


def is_dispatched(value):
    """Is value an array NumPy's functions dispatch to (Dask, CuPy): derivative code
    written with NumPy calls computes with it as itself."""
    return library(value) in DISPATCHED and is_foreign(value)


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


def known_finite(x):
    """Are all elements of x known to be finite? False for a lazy array (its elements
    are not known; a shortcut taken where they are finite must not compute it)."""
    import numpy
    return not is_lazy(x) and bool(numpy.isfinite(x).all())


def known_nonzero(x):
    """Are all elements of x known to be nonzero? False for a lazy array."""
    import numpy
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


def namespace(*values):
    """The Array API namespace of the arrays among values (NumPy's for none)."""
    import array_api_compat
    arrays = [v for v in values if is_foreign(v) or isinstance(v, _numpy_types())]
    return array_api_compat.array_namespace(*arrays) if arrays else \
        array_api_compat.array_namespace(__import__("numpy").empty(0))
