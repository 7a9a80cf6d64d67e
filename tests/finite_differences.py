"""Central finite differences, the reference the tests check derivatives against."""
import numpy as np


def central(f, x, eps=1e-6):
    """Central differences of scalar-valued f at x (a number or an array)."""
    if np.ndim(x) == 0:
        return (f(x + eps) - f(x - eps)) / (2 * eps)
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def central_wrt(f, args, i=0, eps=1e-6):
    """Central differences of scalar f(*args) with respect to argument i (the other
    array arguments copied for every call, so in-place writes cannot leak between calls)."""
    args = list(args)

    def at(v):
        a = list(args)
        a[i] = v
        return float(f(*[b.copy() if isinstance(b, np.ndarray) and k != i else b
                         for k, b in enumerate(a)]))
    return central(at, args[i], eps)


def check_gradient(f, args, wrt, atol=1e-6):
    """transpile.grad(f, wrt=wrt) at args against central differences of every argument
    it names (shapes too), the arguments left as they were; the gradient function."""
    import transpile
    g = transpile.grad(f, wrt=wrt)
    before = [np.copy(a) for a in args]
    got = g(*args)
    for a, b in zip(args, before):
        assert np.array_equal(a, b), "the gradient changed an argument"
    got = got if isinstance(wrt, tuple) else (got,)
    for i, gi in zip(wrt if isinstance(wrt, tuple) else (wrt,), got):
        expected = central_wrt(f, args, i)
        assert np.shape(gi) == np.shape(expected), (i, np.shape(gi), np.shape(expected))
        assert np.allclose(gi, expected, atol=atol, rtol=1e-5), (i, gi, expected)
    return g


def check(value, expected, atol=1e-6):
    """value is a number or array of expected's shape, close to it."""
    expected = np.asarray(expected, float)
    assert isinstance(value, (float, np.ndarray, np.floating)), type(value)
    assert np.shape(value) == expected.shape, (np.shape(value), expected.shape)
    assert np.allclose(np.asarray(value, float), expected, atol=atol, rtol=1e-6), \
        (value, expected)


def along(g, args, i, v, eps=1e-5):
    """Central differences of g(*args) (a gradient: any array) along v in argument i: the
    reference for a Hessian-vector product."""
    def at(s):
        a = list(args)
        a[i] = args[i] + s * v
        return np.asarray(g(*a), float)
    return (at(eps) - at(-eps)) / (2 * eps)


def central_complex_wrt(f, args, i=0, eps=1e-6):
    """The gradient of real-valued f(*args) in argument i in autograd's convention for
    complex values: df/dx - i df/dy per element of a complex argument x + iy (df/dx alone
    for a real one), by central differences along both axes."""
    x = args[i]
    cplx = np.iscomplexobj(x)
    arr = np.array(x, dtype=complex if cplx else float)
    out = np.zeros(arr.shape, dtype=arr.dtype)

    def at(v):
        a = list(args)
        a[i] = v if np.ndim(x) else v[()]
        if not np.ndim(x) and not isinstance(x, np.generic):
            a[i] = complex(v) if cplx else float(v)
        return f(*a)
    for k in np.ndindex(arr.shape):
        e = np.zeros(arr.shape, dtype=arr.dtype)
        e[k] = eps
        d = (at(arr + e) - at(arr - e)) / (2 * eps)
        if cplx:
            d = d - 1j * (at(arr + 1j * e) - at(arr - 1j * e)) / (2 * eps)
        out[k] = d
    return out if np.ndim(x) else out[()]
