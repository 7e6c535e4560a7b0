"""The shared shell spectrum: placement of a mode, Parseval, energy/enstrophy relations."""
import numpy as np

from turbtl.spectra import energy_enstrophy_spectra, log_spectrum_error, power_spectrum


def _grid(n):
    x = np.arange(n) * 2 * np.pi / n
    return np.meshgrid(x, x)  # X varies along axis -1, Y along axis -2


def test_single_mode_lands_in_its_shell():
    X, Y = _grid(32)
    k, p = power_spectrum(2.0 * np.cos(3 * X + 4 * Y))
    assert np.argmax(p) == 5
    assert np.isclose(p[5], 2.0)  # mean of (2 cos)^2
    assert np.isclose(p.sum(), 2.0)


def test_parseval_for_band_limited_fields():
    rng = np.random.default_rng(0)
    n = 32
    fh = np.fft.fft2(rng.standard_normal((3, n, n)))
    kk = np.sqrt(np.fft.fftfreq(n, 1 / n)[:, None] ** 2 + np.fft.fftfreq(n, 1 / n)[None, :] ** 2)
    fh[:, kk > 12] = 0
    f = np.fft.ifft2(fh).real
    _, p = power_spectrum(f, average=False)
    assert np.allclose(p.sum(-1), (f**2).mean(axis=(-2, -1)))


def test_energy_and_enstrophy_of_a_vortex_mode():
    X, Y = _grid(32)
    kf = 4
    omega = kf * np.cos(kf * X)  # psi = cos(kf x)/kf, v = sin(kf x), E = mean(v^2)/2 = 1/4
    k, e, z = energy_enstrophy_spectra(omega)
    assert np.isclose(e.sum(), 0.25) and np.argmax(e) == kf
    assert np.isclose(z.sum(), 0.25 * kf**2)


def test_log_spectrum_error():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 16, 16))
    assert log_spectrum_error(a, a) == 0.0
    assert np.isclose(log_spectrum_error(10 * a, a), 2.0)  # power x100 = 2 decades everywhere
