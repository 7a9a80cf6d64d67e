"""The few helpers generated derivative code calls.

Kept tiny and plain so that generated code stays readable and itself differentiable:
`sign` and `digamma` appear in rules; `add`, `add_at`, `item`, `zeros_like`,
`add_to_each`, `pop_adjoint` handle the adjoints of lists and tuples (an adjoint is 0.0 until
something flows into it, then a list shaped like its value) and of dicts and objects (a
dict keyed by key or attribute name; `field` reads an object's, `entry`/`put_entry` and
`attribute`/`put_attribute` save and restore what a store into a dict or object
overwrites, a key or attribute that was new removed again).
"""
import math
from .namespaces import (as_array, copied, dtype_kind, is_foreign, is_immutable, is_lazy,
                         known_finite, like, numpy_for, same_shape, standard_only)


def sign(x):
    """Derivative of abs; 0 at 0 (the documented convention). Builtin abs of an array is
    elementwise: its derivative is NumPy's sign."""
    if getattr(x, "ndim", 0) or hasattr(x, "dtype"):
        return numpy_for(x).sign(x)
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


def digamma(x):
    """psi(x) = d/dx lgamma(x), by recurrence to x >= 6 then the asymptotic series."""
    if x <= 0 and x == int(x):
        return math.nan
    if x < 0.5:                      # reflection: psi(1-x) - psi(x) = pi cot(pi x)
        return digamma(1.0 - x) - math.pi / math.tan(math.pi * x)
    acc = 0.0
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return acc + math.log(x) - 0.5 * inv - inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))


def pow_log(a, b, k):
    """``a ** b * log(a) ** k`` where a > 0, else 0: with k = 1 the derivative of ``a ** b``
    in the exponent (taken as 0 where a <= 0), with other k its derivatives. Numbers or
    arrays (elementwise); only ever reached with k < 0 multiplied by 0 (then 0)."""
    if _is_complex(a) or _is_complex(b):       # the principal branch of log, everywhere
        numpy = numpy_for(a, b)
        return numpy.power(a, b) * numpy.log(a) ** k if k >= 0 else 0.0 * a
    if hasattr(a, "shape") or hasattr(b, "shape"):
        numpy = numpy_for(a, b)
        a = as_array(a)
        positive = a > 0
        safe = numpy.where(positive, a, 1)
        if k < 0:
            out = numpy.zeros(numpy.broadcast_shapes(numpy.shape(safe), numpy.shape(b)),
                              numpy.result_type(safe, b, 1.0))
        else:
            out = numpy.where(positive, safe ** b * numpy.log(safe) ** k, 0 * safe)
        return out if out.ndim else out[()]
    if a > 0 and k >= 0:
        return a ** b * math.log(a) ** k
    return 0.0


def pow_deriv(a, b, c):
    """``c * a ** b``, and exactly 0 where c is 0: the derivative ``b * a ** (b - 1)`` of
    ``a ** b`` (c = b), 0 for ``a ** 0`` even at a = 0 (where ``a ** -1`` is infinite),
    and its higher derivatives (c collects the falling factorial). Numbers or arrays."""
    if not (hasattr(a, "shape") or hasattr(b, "shape") or hasattr(c, "shape")):
        if c == 0:
            return 0.0 * a if not isinstance(a, complex) else 0j
        try:
            return c * a ** b
        except ZeroDivisionError:               # 0.0 ** -1: infinite, as NumPy says
            import numpy
            with numpy.errstate(divide="ignore", invalid="ignore"):
                return float(c * numpy.float64(a) ** b)
    numpy = numpy_for(a, b, c)
    a = as_array(a)
    if dtype_kind(a) in "biu":
        a = numpy.asarray(a, dtype=float)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        out = c * a ** b
        zero = as_array(c) == 0 if not hasattr(c, "shape") else c == 0
        if not hasattr(zero, "shape") or not zero.shape:      # one c for every element
            zero = bool(zero)
            if zero:
                out = numpy.zeros(numpy.shape(out), numpy.result_type(out))
        elif is_lazy(out) or numpy.any(zero):
            out = numpy.where(zero, numpy.zeros((), numpy.result_type(out)), out)
    return out if out.ndim else out[()]


def _is_complex(a):
    kind = getattr(getattr(a, "dtype", None), "kind", None)     # (NumPy's, first)
    return isinstance(a, complex) or kind == "c" or (
        kind is None and hasattr(a, "dtype") and dtype_kind(a) == "c")


def real_part(g):
    """The real part of an adjoint contribution to a real value (autograd's convention:
    registry.COMPLEX); g itself where it is real."""
    return g.real if _is_complex(g) else g


def abs_partial(x):
    """The derivative of abs at x, in autograd's convention (registry.COMPLEX): sign(x) for
    real x (0 at 0), conj(x) / |x| for complex x (0 at 0)."""
    if not _is_complex(x):
        return sign(x)
    numpy = numpy_for(x)
    r = numpy.abs(x)
    return numpy.conj(x) / numpy.where(r == 0, 1.0, r) * (r != 0)


def angle_partial(x, deg=False):
    """The derivative of np.angle at x: 0 for real x (the angle is 0 or pi), -1j conj(x) /
    |x|^2 for complex x (0 at 0); times 180/pi with `deg`."""
    import numpy
    scale = 180.0 / math.pi if deg else 1.0
    if not _is_complex(x):
        return 0.0 * numpy.real(x)
    r2 = numpy.abs(x) ** 2
    return -1j * scale * numpy.conj(x) / numpy.where(r2 == 0, 1.0, r2) * (r2 != 0)


def imag_partial(x):
    """The derivative of np.imag at x: -1j for complex x (its imaginary part is -i times the
    adjoint in autograd's convention), 0 for real x (whose imaginary part is 0)."""
    return -1j if _is_complex(x) else 0.0


def mul_masked(p, g):
    """p * g, and exactly 0 where g is 0 even where p is inf or nan: the product of a
    partial derivative with an adjoint a selection (np.where's other branch, an index)
    set to 0 for a value that does not reach the result. Plain p * g when finite."""
    out = p * g
    if isinstance(g, float) and g != 0:         # one number (Python or NumPy float64)
        return out                              # for every element, not 0: the product
    if isinstance(out, float):                  # Python and NumPy float64 numbers
        return out if out - out == 0.0 or g != 0 else 0.0
    numpy = numpy_for(out, g)
    if not getattr(g, "ndim", 0) and not isinstance(g, (list, tuple)):
        # one number g for every element: the product where it is not 0 (no test of
        # each element), else exact zeros
        if g != 0:
            return out
        zero = numpy.zeros(numpy.shape(out), numpy.result_type(out))
        return zero if isinstance(out, numpy.ndarray) else zero[()]
    if known_finite(out):
        return out
    kept = numpy.where(as_array(g) == 0, numpy.zeros((), numpy.result_type(out)), out)
    return kept if getattr(out, "ndim", 0) else kept[()]


def indicator(condition):
    """A comparison's result as a factor: itself for NumPy (booleans multiply as 0 and
    1), a 0/1 float array for libraries that multiply no booleans (array-api-strict)."""
    if not standard_only(condition) or not hasattr(condition, "dtype"):
        return condition
    numpy = numpy_for(condition)
    return numpy.astype(condition, numpy.float64)


def zeros_like(value):
    """A zero adjoint shaped like ``value`` (lists and tuples become lists; float32 arrays
    get float32 adjoints, integer arrays float64 ones; dicts, dataclasses and objects
    become dicts: tree.adjoint_zeros)."""
    if isinstance(value, (list, tuple)):
        return [zeros_like(v) for v in value]
    if isinstance(value, range):            # a loop's range saved on a stack
        return [0.0] * len(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        numpy = numpy_for(value)
        dtype = value.dtype if dtype_kind(value) in "fc" else float
        if is_foreign(value):       # a Dask, CuPy, PyTorch... array's zeros: its own kind
            return numpy.zeros_like(value, dtype=dtype)
        return numpy.zeros(value.shape, dtype=dtype)
    if value.__class__ in _LEAVES:
        return 0.0
    from . import tree
    if tree.is_node(value):
        return tree.adjoint_zeros(value, zeros_like)
    return 0.0


_LEAVES = frozenset({float, int, bool, str, type(None)})


def _is_zero(a):
    return a is None or (type(a) in (float, int) and a == 0)


def finished(g, x):
    """The gradient g with respect to x as transpile.grad returns it: a zero adjoint of an
    array or list is zeros shaped like x (for derivative code called inside a
    differentiated function, which computes what the plain call computes)."""
    if _is_zero(g) and not isinstance(x, (int, float)):
        return zeros_like(x)
    if _is_complex(g) and not _is_complex(x):
        g = g.real                 # a real argument's gradient is real
    return float(g) if g.__class__ is int else g


def is_zero(g):
    """Is the adjoint g the zero placeholder (the 0.0 it holds before anything flows in)?
    The adjoint sweep skips a rule's adjoint for such a g (its shape is unknown)."""
    return _is_zero(g)


def add(a, b):
    """a + b for adjoints: numbers and arrays add, lists add elementwise, 0.0 is neutral."""
    if _is_zero(a):
        return copied(b) if hasattr(b, "shape") else b
    if _is_zero(b):
        return a
    if isinstance(a, list) or isinstance(b, list) or isinstance(a, tuple):
        # lists of different lengths: the adjoint of a stack made from its value at another
        # time (a tape popped by the code that reads it); the missing entries are zeros
        from itertools import zip_longest
        return [add(x, y) for x, y in zip_longest(a, b, fillvalue=0.0)]
    if isinstance(a, dict) or isinstance(b, dict):
        # adjoints of dicts and objects, keyed alike; a key only one of them has is zero
        # in the other
        out = dict(a)
        for k, v in b.items():
            out[k] = add(out.get(k), v)
        return out
    return a + b


def add_at(adj, value, index, g):
    """Adjoint of ``t = value[index]``: add g into adj[index] (adj made on first use)."""
    if _is_zero(g):
        return adj
    if _is_zero(adj):
        adj = zeros_like(value)
    elif isinstance(adj, tuple):
        adj = list(adj)
    if hasattr(adj, "shape"):
        if is_immutable(adj):                  # a JAX array: a new one
            adj = adj.at[index].add(g)
        elif _basic_index(index):
            adj[index] += g
        elif is_foreign(adj):                  # (a Dask array has no add.at)
            adj = adj + _scattered(adj, index, g)
        else:                                  # integer arrays may repeat an index
            import numpy
            numpy.add.at(adj, index, g)
        return adj
    if isinstance(index, str) and isinstance(adj, list):   # a NamedTuple's field
        index = type(value)._fields.index(index)
    if isinstance(index, slice):
        idx = range(*index.indices(len(adj)))
        for k, gk in zip(idx, g):
            adj[k] = add(adj[k], gk)
    elif isinstance(adj, dict):              # a dict's key or an object's attribute
        adj[index] = add(adj.get(index), g)
    else:
        adj[index] = add(adj[index], g)
    return adj


def _scattered(adj, index, g):
    """Zeros shaped like adj with g added at adj[index], an index that may repeat
    elements, for arrays of other libraries (Dask): element positions gathered by the
    index, g summed by position (`np.bincount`), all in adj's library."""
    import numpy
    pos = numpy.arange(1, adj.size + 1).reshape(adj.shape)[index]
    g = numpy.broadcast_to(g, pos.shape)
    pos = like(pos, g)
    out = numpy.bincount(pos.ravel(), weights=g.ravel(), minlength=adj.size + 1)[1:]
    return out.reshape(adj.shape)


def _basic_index(index):
    """True for indices that select each element at most once (ints, slices, masks)."""
    if isinstance(index, tuple):
        return all(i.__class__ in _BASIC or _basic_index(i) for i in index)
    if index is None or index is Ellipsis or isinstance(index, (int, slice)):
        return True
    dtype = getattr(index, "dtype", None)
    return dtype is not None and dtype == bool or (dtype is not None and index.ndim == 0)


_BASIC = frozenset({int, slice, type(None), type(Ellipsis)})


def item(adj, index):
    """adj[index], or 0.0 while adj is still the zero adjoint."""
    if _is_zero(adj):
        return 0.0
    if isinstance(adj, dict):               # a key the adjoint has not met yet
        return adj.get(index, 0.0)
    return adj[index]


def field(t, value, name):
    """The tangent (or adjoint) of the field ``value.name`` of an object, a dataclass or a
    NamedTuple: t[name] (t[position] for a NamedTuple), 0.0 while t is zero."""
    if isinstance(t, list):
        return t[type(value)._fields.index(name)]
    return item(t, name)


def take_item(adj, index):
    """Read adj[index] and zero it there (adjoint of an overwritten element, dict entry
    or attribute: a dict adjoint forgets the entry)."""
    if _is_zero(adj):
        return 0.0, adj
    if isinstance(adj, dict):
        return adj.pop(index, 0.0), adj
    g = adj[index]
    if g.__class__ is not float and hasattr(g, "shape") and (
            hasattr(g, "copy") or is_foreign(g)) and \
            not _numpy_number(g):                 # a view into the array adjoint
        g = copied(g)
        if is_immutable(adj):                  # a JAX array: a new one
            adj = adj.at[index].set(0)
        else:
            adj[index] = 0
        g = _keep_last_writes(g, index, adj)
    else:
        adj[index] = 0.0 if not isinstance(g, list) else zeros_like(g)
    return g, adj


def _numpy_number(g):
    import numpy
    return isinstance(g, numpy.generic)


def _keep_last_writes(g, index, adj):
    """`y[[0, 0]] = v` keeps the last write to each element: positions of g (the
    selection adj[index], a copy) whose element is written again later get no gradient.
    The positions are found by selecting element numbers with the same index, so integer
    arrays in any dimension, lists and masks mixed with slices all follow NumPy."""
    import numpy
    if _basic_index(index):
        return g
    ids = numpy.arange(adj.size).reshape(adj.shape)[index]
    flat = as_array(ids).reshape(-1)
    if flat.size == len(numpy.unique(flat)):
        return g
    _, first_from_end = numpy.unique(flat[::-1], return_index=True)
    last = numpy.zeros(flat.size, dtype=bool)
    last[flat.size - 1 - first_from_end] = True
    if is_foreign(g):                      # (another library's array: masked, not set)
        return g * like(last.reshape(g.shape).astype(float), g)
    g.reshape(-1)[~last] = 0
    return g


def add_to_each(adj, value, g):
    """Adjoint of ``s = sum(value)``: every element receives g, summed back to the
    element's own shape (a scalar element of a sum that broadcast gets g's total). An
    array's elements are its rows: its adjoint is an array of its own shape."""
    if _is_zero(g):
        return adj
    if hasattr(value, "shape") and not isinstance(value, (list, tuple)):
        if not len(value):
            return adj
        each = zeros_like(value) + unbroadcast(g, value[0])
        return each if _is_zero(adj) else adj + each
    if _is_zero(adj):
        return [unbroadcast(g, v) for v in value]
    return [add(a, unbroadcast(g, v)) for a, v in zip(adj, value)]


def pop_adjoint(adj, value):
    """Adjoint of ``xs.append(v)``: the last element's adjoint, removed from adj.

    The primal list is left as it is; its adjoint is made full length on first use and
    shrinks as appends are undone, so indices stay aligned with the list as it was.
    """
    if _is_zero(adj):
        adj = zeros_like(value)
    return adj.pop(), adj


def push_adjoint(adj, value, g):
    """Adjoint of ``v = xs.pop()``: v's adjoint goes back on top of xs's adjoint.

    Always materialized (even for a zero g), so the adjoint list stays as long as the
    list was before the pop and later (earlier-in-time) appends find their entry."""
    if _is_zero(adj):
        adj = zeros_like(value)
    elif isinstance(adj, tuple):
        adj = list(adj)
    adj.append(g)
    return adj


# --- the same helpers without in-place updates --------------------------------------------
# Derivative code that is going to be differentiated again in reverse mode uses these: the
# outer adjoint sweep reads values of the inner adjoints as they were at each step, which an
# in-place update would change after the fact.

def _own_copy(adj):
    if isinstance(adj, (list, tuple)):
        return list(adj)
    if isinstance(adj, dict):
        return dict(adj)
    if hasattr(adj, "shape") and (hasattr(adj, "copy") or is_foreign(adj)):
        return copied(adj)
    return adj


def owned(adj):
    """A copy of the adjoint a caller passed to derivative code that updates it in place
    (element by element: the caller's array, which may be one of its values, stays as it
    was)."""
    return _own_copy(adj)


def add_at_copy(adj, value, index, g):
    """add_at on a copy of adj."""
    return add_at(_own_copy(adj), value, index, g)


def take_item_copy(adj, index):
    """take_item on a copy of adj."""
    return take_item(_own_copy(adj), index)


def pop_adjoint_copy(adj, value):
    """pop_adjoint on a copy of adj."""
    return pop_adjoint(_own_copy(adj), value)


def push_adjoint_copy(adj, value, g):
    """push_adjoint on a copy of adj."""
    return push_adjoint(_own_copy(adj), value, g)


COPYING = {"add_at": add_at_copy, "take_item": take_item_copy,
           "pop_adjoint": pop_adjoint_copy, "push_adjoint": push_adjoint_copy}

# helpers whose result may be a list (an adjoint of a list): when derivative code is
# differentiated again, accumulating into their results goes through `add`, never `+`
LIST_RESULTS = frozenset({add, add_at, add_at_copy, add_to_each, push_adjoint,
                          push_adjoint_copy, zeros_like})


def argbest(values, better):
    """Index of the first extremum (Python's max/min tie rule)."""
    best = 0
    for k in range(1, len(values)):
        if better(values[k], values[best]):
            best = k
    return best


def argmax(values):
    return argbest(values, lambda a, b: a > b)


def argmin(values):
    return argbest(values, lambda a, b: a < b)



def unbroadcast(g, like):
    """Sum g down to the shape of ``like`` (the adjoint of an implicit broadcast).

    ``like`` is the value the adjoint belongs to: a Python scalar gets a Python float back,
    an array gets an array of its own shape."""
    shape = getattr(like, "shape", None)
    gshape = getattr(g, "shape", None)
    if gshape == shape and gshape is not None and getattr(g, "dtype", None) is getattr(
            like, "dtype", None):
        return g                    # (the common case first: an array of like's kind)
    if _is_complex(g) and not _is_complex(like):
        g = g.real                 # the adjoint of a real value is real (registry.COMPLEX)
    if gshape is None or same_shape(gshape, shape):
        return g
    if shape is None:                       # a Python number: everything sums into it
        if is_foreign(g):           # a Dask array's 0-d sum stays lazy (namespaces.py)
            return numpy_for(g).sum(g) if g.ndim else g
        if isinstance(like, complex):
            return complex(g.sum()) if g.ndim else complex(g)
        return float(g.sum()) if g.ndim else float(g)
    if gshape == shape:
        return g
    numpy = numpy_for(g)
    # a partial times the 0.0 placeholder (the adjoint of a value nothing reads) has the
    # partial's shape: it stands for itself spread over the result's, which is its
    # shape and like's broadcast ((3,) for a (2, 1) operand of a (2, 3) product)
    full = _broadcast_shape(gshape, shape)
    if full is not None and full != gshape and full != shape:
        g, gshape = numpy.broadcast_to(g, full), full
    if len(gshape) < len(shape):               # a lower-rank adjoint (e.g. a zero one)
        return numpy.broadcast_to(g, shape)
    extra = len(gshape) - len(shape)
    if extra > 0:
        g = numpy.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, g.shape)) if a == 1 and b != 1)
    if axes:
        g = numpy.sum(g, axis=axes, keepdims=True)
    if g.shape != shape:
        # a partial times the 0.0 placeholder: zeros shaped like the partial (a mask of
        # np.where), broadcast like the value it stands for
        return numpy.broadcast_to(g, shape)
    return numpy.reshape(g, shape)


def _broadcast_shape(a, b):
    """The broadcast of shapes a and b, or None (incompatible, or sizes not known)."""
    import numpy
    try:
        return tuple(numpy.broadcast_shapes(a, b))
    except (ValueError, TypeError):
        return None


def final_state(value):
    """What an argument holds, to put back later with `write_back`: an array's contents,
    a list's or dict's items and, recursively, what those hold."""
    if isinstance(value, list):
        return list(value), [final_state(v) for v in value]
    if isinstance(value, tuple):
        return None, [final_state(v) for v in value]
    if isinstance(value, dict):
        return dict(value), {k: final_state(v) for k, v in value.items()}
    if hasattr(value, "shape") and hasattr(value, "copy") and getattr(
            getattr(value, "flags", None), "writeable", False):
        return value.copy()
    from . import tree
    if tree.is_node(value) and hasattr(value, "__dict__") and not isinstance(value, type):
        attrs = vars(value)                 # an object: its attributes, and what they hold
        return _Attributes(dict(attrs)), {k: final_state(v) for k, v in attrs.items()}
    return None


class _Attributes(dict):
    """The attributes of an object, as `final_state` keeps them."""


def write_back(value, state):
    """Put `final_state(value)` back into value (the same objects, so the caller sees
    it): the gradient leaves an argument as the function leaves it, after the adjoint
    sweep restored what the function overwrote."""
    if state is None:
        return
    if isinstance(value, (list, tuple)):
        items, inner = state
        if items is not None:
            value[:] = items
        for v, s in zip(value, inner):
            write_back(v, s)
    elif isinstance(value, dict):
        items, inner = state
        value.clear()
        value.update(items)
        for k, s in inner.items():
            write_back(items[k], s)
    elif isinstance(state, tuple) and isinstance(state[0], _Attributes):
        items, inner = state
        attrs = vars(value)
        attrs.clear()
        attrs.update(items)
        for k, s in inner.items():
            write_back(items[k], s)
    else:
        value[...] = state


class _Missing:
    """What `entry` saves for a dict key or attribute that does not exist yet."""

    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


def entry(container, key):
    """What ``container[key]`` holds before a store into a dict (a snapshot), or MISSING
    for a new key; `put_entry` puts it back."""
    if isinstance(container, dict):
        return snapshot(container[key]) if key in container else MISSING
    return snapshot(container[key])


def put_entry(container, key, saved):
    """Undo a store: ``container[key] = saved``, or remove a key that was new (if a
    restore of derivative code differentiated again has not removed it already)."""
    if saved is MISSING:
        container.pop(key, None)
    else:
        container[key] = saved


def attribute(obj, name):
    """``obj.name`` before an attribute store (a snapshot), MISSING for a new one."""
    return snapshot(getattr(obj, name)) if hasattr(obj, name) else MISSING


def put_attribute(obj, name, saved):
    """Undo an attribute store (object.__setattr__: a frozen dataclass too)."""
    if saved is MISSING:
        if name in getattr(obj, "__dict__", ()):
            object.__delattr__(obj, name)
    else:
        object.__setattr__(obj, name, saved)


def snapshot(value):
    """A copy that later in-place writes cannot change (arrays and array views)."""
    copy = getattr(value, "copy", None)
    if copy is not None and hasattr(value, "shape"):
        return copy()
    return value


def keep(value):
    """A checkpoint of a value the loop changes in place: (the object, a copy)."""
    return value, snapshot(value)


def restore(kept):
    """The object of a `keep`, its contents put back as they were (the same object, so
    other names holding it, the caller's array included, see them too)."""
    obj, saved = kept
    if saved is not obj:
        obj[...] = saved
    return obj


def sqrt_interval(n):
    """Iterations per checkpoint for checkpoint="sqrt": ceil(sqrt(n)), at least 1."""
    import math
    return math.isqrt(n - 1) + 1 if n > 1 else 1


class Checkpoints:
    """Snapshots of a loop's state taken as it runs, for a loop whose number of iterations
    is known only at its end (`while`, `break`): one every `every` iterations, or with
    every=None about sqrt(2n) of them for n iterations (when there are more than 2*every,
    every doubles and every other snapshot goes)."""

    def __init__(self, every=None):
        self.every, self.thin = every or 1, every is None
        self.starts, self.states = [], []

    def save(self, i, state):
        """Keep the state at the start of iteration i; the iteration to save next."""
        self.starts.append(i)
        self.states.append(state)
        if self.thin and len(self.states) > 2 * self.every:
            self.every *= 2
            keep = [j for j, start in enumerate(self.starts) if start % self.every == 0]
            self.starts = [self.starts[j] for j in keep]
            self.states = [self.states[j] for j in keep]
        return self.starts[-1] + self.every

    def segments(self, n):
        """(start, stop) of each segment of an n-iteration run, last segment first."""
        stops = self.starts[1:] + [n]
        return list(zip(self.starts, stops))[::-1]

    def pop(self):
        self.starts.pop()
        return self.states.pop()


# --- forward mode: tangents of lists ------------------------------------------------------

def copy_tangent(t):
    """Tangent of list(xs) / xs.copy() / d.copy(): a new container, so later writes
    stay separate."""
    if isinstance(t, (list, tuple)):
        return list(t)
    if isinstance(t, dict):
        return dict(t)
    return snapshot(t)


def sum_tangent(t, value):
    """Tangent of sum(xs)."""
    if _is_zero(t):
        return 0.0
    total = 0.0
    for v in t:
        total = total + v
    return total


def set_tangent(t, value, index, dv):
    """Tangent of `xs[index] = v` (before the write), `d[key] = v` or `obj.name = v`
    (index the attribute's name: the tangent of an object is a dict)."""
    if _is_zero(t):
        t = zeros_like(value)
    elif isinstance(t, tuple):
        t = list(t)
    t[index] = dv
    return t


def append_tangent(t, value, dv):
    """Tangent of `xs.append(v)` (after the append)."""
    if _is_zero(t):
        t = zeros_like(value)
        t[-1] = dv
        return t
    t.append(dv)
    return t


def pop_tangent(t):
    """Tangent of ``v = xs.pop()``: removes and returns the top tangent (t is updated in
    place, like xs; a zero tangent stays zero)."""
    if _is_zero(t):
        return 0.0
    return t.pop()


def unless_zero(t, fn, *args, **kwargs):
    """fn(*args, **kwargs), or 0.0 when the tangent t it is linear in is the zero
    placeholder (a term of a product rule that vanishes)."""
    if _is_zero(t):
        return 0.0
    if standard_only(*args) and getattr(fn, "__module__", "").startswith("numpy"):
        fn = getattr(numpy_for(*args), fn.__name__)   # (np.matmul of torch tensors)
    return fn(*args, **kwargs)


def jvp_from_vjps(vjps, fn, args, tangents, **kwargs):
    """J v for a primitive that only has reverse rules: exact, one vjp per output element
    (forward mode through max, var, solve, det, ...; cost grows with the output size).
    Several outputs (slogdet, split) give a tuple of tangents."""
    import numpy
    ans = fn(*args, **kwargs)
    several = isinstance(ans, (tuple, list))
    parts = list(ans) if several else [ans]
    results = []
    for j, part in enumerate(parts):
        out = numpy.zeros(numpy.shape(part))
        for k in range(out.size):
            e = numpy.zeros(out.shape)
            e.flat[k] = 1.0
            seed = e if out.ndim else 1.0
            if several:
                seed = tuple(seed if i == j else 0.0 for i in range(len(parts)))
            total = 0.0
            for vjp, arg, t in zip(vjps, args, tangents):
                if t is None or vjp is None or _is_zero(t):
                    continue
                c = vjp(seed, ans, *args, **kwargs)
                if c is not None:
                    total += float(numpy.sum(as_array(c) * as_array(t)))
            out.flat[k] = total
        results.append(out if out.ndim else float(out))
    return tuple(results) if several else results[0]
