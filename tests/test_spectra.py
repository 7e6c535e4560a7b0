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


def test_shell_index_rounds_to_the_nearest_integer():
    """round(|k|), not floor: (kx, ky) = (2, 2), |k| = 2.83 -> 3; (1, 1), 1.41 -> 1; (2, 3),
    3.61 -> 4; (1, 2), 2.24 -> 2; negative wavenumbers of the FFT layout alike."""
    from turbtl.spectra import shell_index

    n = 16
    idx = shell_index(n)
    assert idx.shape == (n, n)
    for kx, ky, shell in [(2, 2, 3), (1, 1, 1), (2, 3, 4), (3, 2, 4), (1, 2, 2), (0, 5, 5), (4, 4, 6), (5, 5, 7)]:
        for sx, sy in [(1, 1), (-1, 1), (1, -1), (-1, -1)]:
            assert idx[(sy * ky) % n, (sx * kx) % n] == shell, (kx, ky, sx, sy)
    k = np.fft.fftfreq(n, d=1.0 / n)
    kk = np.hypot(k[None, :], k[:, None])
    assert np.all(np.abs(idx - kk) <= 0.5)  # the nearest integer shell, everywhere


@pytest.mark.parametrize("kx, ky, shell", [(2, 2, 3), (1, 1, 1), (2, 3, 4), (1, 2, 2)])
def test_non_integer_mode_lands_in_the_nearest_shell(kx, ky, shell):
    X, Y = _grid(16)
    k, p = power_spectrum(2.0 * np.cos(kx * X + ky * Y))
    assert np.argmax(p) == shell and np.isclose(p[shell], 2.0) and np.isclose(p.sum(), 2.0)
    _, e, z = energy_enstrophy_spectra(np.cos(kx * X + ky * Y))
    assert np.argmax(e) == shell and np.isclose(z.sum(), 0.25)


def test_parseval_for_a_random_field_with_every_shell():
    """Every mode up to the shell n/2 (all but the corners |k| > n/2 + 1/2): the spectrum
    sums to mean(f^2) computed directly, for each sample."""
    rng = np.random.default_rng(3)
    n = 24
    f = rng.standard_normal((2, n, n))
    fh = np.fft.fft2(f)
    k = np.fft.fftfreq(n, d=1.0 / n)
    corner = np.hypot(k[None, :], k[:, None]) >= n // 2 + 0.5
    fh[:, corner] = 0
    f = np.fft.ifft2(fh).real
    _, p = power_spectrum(f, average=False)
    assert np.allclose(p.sum(-1), (f**2).mean(axis=(-2, -1)), rtol=1e-12)
    assert p[:, -1].min() > 0  # the Nyquist shell is populated: the whole range is covered
