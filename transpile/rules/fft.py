"""Rules for numpy.fft.

Every transform is linear, so its tangent is the transform of the tangent (declared
``linear=``: forward mode and the second-order routes follow) and its vjp is the transposed
map applied to the adjoint. In autograd's convention for complex values (registry.COMPLEX:
the adjoint of y is dL/dRe y - i dL/dIm y, and a vjp carries no conjugate), the DFT matrix
is symmetric, so

* fft, ifft, fftn, ifftn, fft2, ifft2 (complex-linear): the vjp is the same transform of the
  adjoint, with the same ``norm``, then cut or zero-padded back to the input's length along
  each transformed axis (the transpose of the transform's own padding or cutting to ``n``);
* rfft, rfftn, rfft2 (real input, the half spectrum out): the adjoint zero-padded to the full
  spectrum, the complex transform, its real part;
* irfft, irfftn, irfft2 (half spectrum in, real output): the inverse transform of the
  (real) adjoint, its first ``n // 2 + 1`` entries along the last axis, doubled where a
  half-spectrum entry stands for two (all but the zero frequency and, for even ``n``, the
  Nyquist one), cut or padded back to the input's length;
* fftshift and ifftshift: permutations, undone by the other shift.

* hfft and ihfft: irfft of the conjugate and the conjugate of rfft, with the other
  normalization.
"""
import numpy as np

from .numpy_ import _def, _fit
from ..namespaces import as_array

F = np.fft


def _fit_length(g, lengths, axes):
    """g cut or zero-padded to `lengths` along `axes` (the transpose of the same cut or
    padding the other way)."""
    g = as_array(g)
    for n, ax in zip(lengths, axes):
        have = g.shape[ax]
        if have > n:
            g = np.take(g, np.arange(n), axis=ax)
        elif have < n:
            pad = [(0, 0)] * g.ndim
            pad[ax] = (0, n - have)
            g = np.pad(g, pad)
    return g


def _axes_of(x, s, axes, default):
    """The transformed axes (normalized, non-negative) and their transform lengths."""
    nd = np.ndim(x)
    if axes is None:
        axes = list(range(nd))[-len(s):] if s is not None else list(range(nd))[default]
    axes = [int(a) % nd for a in np.atleast_1d(axes)]
    lengths = [np.shape(x)[a] for a in axes] if s is None else list(s)
    return axes, lengths


ALL, LAST_TWO = slice(None), slice(-2, None)     # the default axes of fftn, fft2


def _complex_vjp(transform, many):
    """vjp of a complex-linear transform (fft, ifft and their n-dimensional versions;
    `many`: the default axes of the n-dimensional one)."""
    if many:
        def vjp(g, ans, a, s=None, axes=None, norm=None):
            ax, lengths = _axes_of(a, s, axes, many)
            out = transform(g, s=lengths, axes=ax, norm=norm)
            return _fit(_fit_length(out, [np.shape(a)[k] for k in ax], ax), a)
    else:
        def vjp(g, ans, a, n=None, axis=-1, norm=None):
            ax = int(axis) % np.ndim(a)
            length = np.shape(a)[ax] if n is None else n
            out = transform(g, n=length, axis=ax, norm=norm)
            return _fit(_fit_length(out, [np.shape(a)[ax]], [ax]), a)
    return vjp


_SWAPPED = {None: "forward", "backward": "forward", "forward": "backward",
            "ortho": "ortho"}


def _rfft_vjp(many, hermitian=False):
    """vjp of rfft / rfftn (`many`: the default axes of the n-dimensional one): the
    half-spectrum adjoint padded to the full length of the last transformed axis,
    transformed back by the complex transform, its real part. `hermitian`: of ihfft,
    which is conj(rfft(a)) with the other normalization."""
    def vjp_axes(g, a, ax, lengths, norm):
        if hermitian:
            g, norm = np.conj(g), _SWAPPED[norm]
        g = _fit_length(g, [lengths[-1]], [ax[-1]])          # zeros for the other half
        out = np.real(F.fftn(g, s=lengths, axes=ax, norm=norm))
        return _fit(_fit_length(out, [np.shape(a)[k] for k in ax], ax), a)
    if many:
        def vjp(g, ans, a, s=None, axes=None, norm=None):
            ax, lengths = _axes_of(a, s, axes, many)
            return vjp_axes(g, a, ax, lengths, norm)
    else:
        def vjp(g, ans, a, n=None, axis=-1, norm=None):
            ax = int(axis) % np.ndim(a)
            return vjp_axes(g, a, [ax], [np.shape(a)[ax] if n is None else n], norm)
    return vjp


def _irfft_vjp(many, hermitian=False):
    """vjp of irfft / irfftn (`many` as for _rfft_vjp): the inverse transform of the
    real adjoint, its first n // 2 + 1 entries on the last axis, doubled where an entry
    stands for two. `hermitian`: of hfft, which is irfft(conj(a)) with the other
    normalization."""
    def vjp_axes(g, a, ax, lengths, norm):
        if hermitian:
            norm = _SWAPPED[norm]
        out = F.ifftn(np.real(g), s=lengths, axes=ax, norm=norm)
        n = lengths[-1]
        half = n // 2 + 1
        out = np.take(out, np.arange(half), axis=ax[-1])
        weight = np.full(half, 2.0)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        shape = [1] * out.ndim
        shape[ax[-1]] = half
        out = out * weight.reshape(shape)
        if hermitian:
            out = np.conj(out)
        return _fit(_fit_length(out, [np.shape(a)[k] for k in ax], ax), a)
    if many:
        def vjp(g, ans, a, s=None, axes=None, norm=None):
            ax, _ = _axes_of(a, s, axes, many)
            lengths = list(s) if s is not None else [np.shape(a)[k] for k in ax[:-1]] + [
                2 * (np.shape(a)[ax[-1]] - 1)]
            return vjp_axes(g, a, ax, lengths, norm)
    else:
        def vjp(g, ans, a, n=None, axis=-1, norm=None):
            ax = int(axis) % np.ndim(a)
            return vjp_axes(g, a, [ax], [2 * (np.shape(a)[ax] - 1) if n is None else n],
                            norm)
    return vjp


_ONE = "a, n, axis, norm"
_MANY = "a, s, axes, norm"
for _fn, _back in ((F.fft, F.fft), (F.ifft, F.ifft)):
    _def(_fn, _complex_vjp(_back, False), None, None, None, params=_ONE, linear=(0,),
         complex="holomorphic", result="complex")
for _fn, _back, _axes in ((F.fftn, F.fftn, ALL), (F.ifftn, F.ifftn, ALL),
                          (F.fft2, F.fftn, LAST_TWO), (F.ifft2, F.ifftn, LAST_TWO)):
    _def(_fn, _complex_vjp(_back, _axes), None, None, None, params=_MANY, linear=(0,),
         complex="holomorphic", result="complex")
_def(F.rfft, _rfft_vjp(False), None, None, None, params=_ONE, linear=(0,),
     complex="explicit", result="complex")
for _fn, _axes in ((F.rfftn, ALL), (F.rfft2, LAST_TWO)):
    _def(_fn, _rfft_vjp(_axes), None, None, None, params=_MANY, linear=(0,),
         complex="explicit", result="complex")
_def(F.irfft, _irfft_vjp(False), None, None, None, params=_ONE, linear=(0,),
     complex="explicit", result="real")
for _fn, _axes in ((F.irfftn, ALL), (F.irfft2, LAST_TWO)):
    _def(_fn, _irfft_vjp(_axes), None, None, None, params=_MANY, linear=(0,),
         complex="explicit", result="real")
_def(F.hfft, _irfft_vjp(False, hermitian=True), None, None, None, params=_ONE, linear=(0,),
     complex="explicit", result="real")
_def(F.ihfft, _rfft_vjp(False, hermitian=True), None, None, None, params=_ONE, linear=(0,),
     complex="explicit", result="complex")
_def(F.fftshift, lambda g, ans, x, axes=None: _fit(F.ifftshift(g, axes), x), None,
     params="x, axes", linear=(0,), complex="holomorphic")
_def(F.ifftshift, lambda g, ans, x, axes=None: _fit(F.fftshift(g, axes), x), None,
     params="x, axes", linear=(0,), complex="holomorphic")
