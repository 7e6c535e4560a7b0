"""Spectral grid: dealiasing mask, wavenumbers, derivatives, Jacobian, Parseval."""
import math

import numpy as np
import pytest
import torch

from turbtl.grid import SpectralGrid, dealias_mask


@pytest.mark.parametrize("n", [12, 16, 24, 32, 48, 64, 96, 128, 256, 30, 50])
def test_dealias_mask_conjugate_symmetric(n):
    m = dealias_mask(n, full=True)
    idx = (-np.arange(n)) % n
    # symmetric under k -> -k
    assert np.array_equal(m, m[idx][:, idx])
    # and under each reflection separately (|kx|, |ky| tests)
    assert np.array_equal(m, m[idx])
    assert np.array_equal(m, m[:, idx])
    # the rfft layout is the full mask restricted to kx >= 0
    assert np.array_equal(dealias_mask(n), m[:, : n // 2 + 1])


@pytest.mark.parametrize("n, kmax", [(12, 3), (32, 10), (48, 15), (96, 31), (128, 42), (256, 85)])
def test_dealias_mask_cuts_exactly_at_n_over_3(n, kmax):
    m = dealias_mask(n, full=True)
    k = np.rint(np.fft.fftfreq(n, 1.0 / n)).astype(int)
    kept = np.unique(np.abs(k[np.any(m, axis=1)]))
    assert kept.max() == kmax  # largest kept |ky| is the largest integer strictly below n/3
    assert 3 * kmax < n <= 3 * (kmax + 1)
    # a mode (k, 0) is kept iff 3|k| < n, on both signs
    for kk in range(-n // 2, n // 2):
        assert m[kk % n, 0] == (3 * abs(kk) < n)
        assert m[0, kk % n] == (3 * abs(kk) < n)
    # Nyquist row and column of the rfft layout are dropped
    mr = dealias_mask(n)
    assert not mr[n // 2].any() and not mr[:, -1].any()


def test_grid_tensors_match_numpy():
    g = SpectralGrid(32, dtype=torch.float64)
    assert g.mask.shape == (32, 17)
    assert np.array_equal(g.mask_bool.numpy(), dealias_mask(32))
    assert g.inv_lap[0, 0] == 0
    k2 = g.ky**2 + g.kx**2
    assert torch.allclose(g.k2, k2)
    assert torch.allclose(g.inv_lap[k2 > 0], 1 / k2[k2 > 0])
    assert g.ky[-1, 0] == -1 and g.ky[16, 0] == -16 and g.kx[0, -1] == 16


def test_mask_keeps_fields_real_and_roundtrips():
    g = SpectralGrid(24, dtype=torch.float64)
    f = torch.randn(3, 24, 24, dtype=torch.float64)
    fh = g.rfft(f) * g.mask
    f2 = g.irfft(fh)
    # a conjugate-symmetric mask: the masked field is real and its spectrum is exactly fh
    assert torch.allclose(g.rfft(f2), fh, atol=1e-10)
    full = np.fft.fft2(f2.numpy())
    assert np.abs(full[~dealias_mask(24, full=True)[None].repeat(3, 0)]).max() < 1e-10


def test_derivatives_and_velocity():
    n = 32
    g = SpectralGrid(n, dtype=torch.float64)
    x = g.x
    X, Y = x[None, :], x[:, None]
    psi = torch.sin(3 * X) * torch.cos(2 * Y)
    ph = g.rfft(psi)
    assert torch.allclose(g.irfft(g.ddx(ph)), 3 * torch.cos(3 * X) * torch.cos(2 * Y), atol=1e-12)
    assert torch.allclose(g.irfft(g.ddy(ph)), -2 * torch.sin(3 * X) * torch.sin(2 * Y), atol=1e-12)
    omega = 13 * psi  # omega = -lap psi
    assert torch.allclose(g.irfft(g.laplacian(ph)), -omega, atol=1e-11)
    assert torch.allclose(g.irfft(g.psi_hat(g.rfft(omega))), psi, atol=1e-12)
    uh, vh = g.velocity_hat(g.rfft(omega))
    assert torch.allclose(g.irfft(uh), -2 * torch.sin(3 * X) * torch.sin(2 * Y), atol=1e-12)  # u = psi_y
    assert torch.allclose(g.irfft(vh), -3 * torch.cos(3 * X) * torch.cos(2 * Y), atol=1e-12)  # v = -psi_x


def test_jacobian_analytic():
    n = 32
    g = SpectralGrid(n, dtype=torch.float64)
    X, Y = g.x[None, :], g.x[:, None]
    psi = torch.sin(2 * Y) + 0 * X
    omega = torch.cos(3 * X) + 0 * Y
    J = g.irfft(g.jacobian_hat(g.rfft(psi), g.rfft(omega)))
    # u = psi_y = 2 cos 2y, v = 0, omega_x = -3 sin 3x
    assert torch.allclose(J, -6 * torch.cos(2 * Y) * torch.sin(3 * X), atol=1e-11)
    # antisymmetry J(a, b) = -J(b, a)
    a = torch.randn(n, n, dtype=torch.float64)
    b = torch.randn(n, n, dtype=torch.float64)
    jab = g.jacobian_hat(g.rfft(a), g.rfft(b))
    jba = g.jacobian_hat(g.rfft(b), g.rfft(a))
    assert torch.allclose(jab, -jba, atol=1e-8 * jab.abs().max())


def test_inner_is_parseval():
    g = SpectralGrid(16, dtype=torch.float64)
    a = torch.randn(2, 16, 16, dtype=torch.float64)
    b = torch.randn(2, 16, 16, dtype=torch.float64)
    got = g.inner(g.rfft(a), g.rfft(b))
    assert torch.allclose(got, (a * b).mean(dim=(-2, -1)), rtol=1e-12)
    assert math.isclose(float(g.dx), 2 * math.pi / 16)
