"""The shared shell spectrum: placement of a mode, Parseval, energy/enstrophy relations."""
import numpy as np
import pytest
import torch

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


@pytest.mark.parametrize("n", [16, 15])
def test_power_spectrum_equals_the_full_fft_shell_sum(n):
    """The half-plane (rfft) shell sum with column multiplicities is the full complex FFT's,
    on even and odd grids, for numpy arrays and (float32, non-contiguous) tensors alike."""
    from turbtl.spectra import shell_index

    f = np.random.default_rng(n).standard_normal((2, 3, n, n))
    p2 = np.abs(np.fft.fft2(f)) ** 2 / n**4
    idx = shell_index(n)
    ref = np.stack([[np.bincount(idx.ravel(), weights=p2[a, b].ravel())[: n // 2 + 1] for b in range(3)]
                    for a in range(2)])
    k, p = power_spectrum(f, average=False)
    np.testing.assert_array_equal(k, np.arange(n // 2 + 1))
    np.testing.assert_allclose(p, ref, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(power_spectrum(f)[1], ref.reshape(-1, n // 2 + 1).mean(0), rtol=1e-12)
    t = torch.from_numpy(f).float().transpose(-2, -1)  # a strided view
    np.testing.assert_allclose(power_spectrum(t, average=False)[1], power_spectrum(t.numpy(), average=False)[1],
                               rtol=1e-12)
    np.testing.assert_allclose(power_spectrum(f[0, 0])[1], ref[0, 0], rtol=1e-12, atol=1e-16)
    with pytest.raises(ValueError, match="square"):
        power_spectrum(f[..., :-1])
