"""numpy.fft: every transform against central differences (complex inputs in autograd's
convention, see test_complex.py), in reverse and forward mode, with n / s, axis / axes and
norm, and both Hessian-vector routes."""
import numpy as np
import pytest

import transpile
from test_complex import close, fd_grad

rng = np.random.default_rng(11)


def R(*shape):
    return rng.normal(size=shape)


def C(*shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def f_fft(x):
    return np.sum(np.abs(np.fft.fft(x, n=6, norm="ortho")) ** 2 * np.arange(6))


def f_fft_axis(x):
    return np.sum(np.abs(np.fft.fft(x, 2, 0)) * np.array([1.0, 2.0, 3.0]))


def f_ifft(z):
    return np.real(np.sum(np.fft.ifft(z, n=3) * np.array([1, 2j, 3])))


def f_rfft(x):
    return np.sum(np.abs(np.fft.rfft(x, n=7) * (1 + np.arange(4))))


def f_irfft_even(z):
    return np.sum(np.sin(np.fft.irfft(z, n=8)))


def f_irfft_odd(z):
    return np.sum(np.sin(np.fft.irfft(z, n=5, norm="forward")) * np.arange(5))


def f_fft2(x):
    return np.sum(np.abs(np.fft.fft2(x)) * np.arange(4))


def f_ifftn(z):
    return np.sum(np.abs(np.fft.ifftn(z, s=(2, 4), axes=(0, 2))))


def f_rfftn(x):
    return np.sum(np.abs(np.fft.rfftn(x, s=(3, 4), axes=(0, 1))))


def f_irfftn(z):
    return np.sum(np.cos(np.fft.irfftn(z, axes=(0, 1))) * np.arange(4))


def f_irfft2(z):
    return np.sum(np.cos(np.fft.irfft2(z, s=(2, 5))))


def f_shift(z):
    return np.real(np.sum(np.fft.fftshift(z) * np.arange(5) + np.fft.ifftshift(z) ** 2))


def f_hfft(z):
    return np.sum(np.sin(np.fft.hfft(z, n=6, norm="ortho")) * np.arange(6))


def f_hfft_default(z):
    return np.sum(np.cos(np.fft.hfft(z)))


def f_ihfft(x):
    return np.sum(np.abs(np.fft.ihfft(x, n=5)) * np.arange(3) + np.imag(np.fft.ihfft(x)))


def f_spectral_filter(x):
    """A low-pass filter written with rfft/irfft, as people write it."""
    spectrum = np.fft.rfft(x)
    keep = np.arange(spectrum.shape[0]) < 3
    smooth = np.fft.irfft(spectrum * keep, n=x.shape[0])
    return np.sum((smooth - x) ** 2)


CASES = [(f_fft, R(5)), (f_fft, C(5)), (f_fft_axis, R(3, 3)), (f_ifft, C(4)),
         (f_rfft, R(6)), (f_irfft_even, C(5)), (f_irfft_odd, C(3)), (f_fft2, R(2, 3, 4)),
         (f_ifftn, C(3, 2, 3)), (f_rfftn, R(2, 5)), (f_irfftn, C(3, 3)), (f_irfft2, C(3, 3)),
         (f_shift, C(5)), (f_spectral_filter, R(8)), (f_hfft, C(4)),
         (f_hfft_default, C(3)), (f_ihfft, R(4))]


@pytest.mark.parametrize("f, x", CASES, ids=[f"{f.__name__}-{np.asarray(x).dtype}"
                                               for f, x in CASES])
def test_gradient_and_tangent(f, x):
    close(transpile.grad(f)(x), fd_grad(f, [x], 0), 1e-5)
    t = R(*x.shape) + (1j * R(*x.shape) if np.iscomplexobj(x) else 0)
    value, tangent = transpile.jvp(f, [x], [t])
    close(value, f(x))
    close(tangent, (f(x + 1e-6 * t) - f(x - 1e-6 * t)) / 2e-6, 1e-5)


@pytest.mark.parametrize("mode", ["forward-over-reverse", "reverse-over-forward"])
@pytest.mark.parametrize("f, x", CASES, ids=[f"{f.__name__}-{np.asarray(x).dtype}"
                                               for f, x in CASES])
def test_hessian_vector_product(f, x, mode):
    v = R(*x.shape) + (1j * R(*x.shape) if np.iscomplexobj(x) else 0)
    grad = transpile.grad(f)
    close(transpile.hvp(f, mode=mode)(x, v=v),
          (grad(x + 1e-5 * v) - grad(x - 1e-5 * v)) / 2e-5, 1e-5)


