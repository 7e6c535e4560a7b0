"""Spectral grid of the doubly periodic 2*pi square: wavenumbers, dealiasing, derivatives.

Conventions (docs/DESIGN.md): real fields are (..., y, x); the real FFT is
``torch.fft.rfft2`` over the last two axes, giving (..., n, n//2+1) with
``ky = fftfreq(n)*n`` along axis -2 and ``kx = rfftfreq(n)*n`` along axis -1.  The FFT is
unnormalised (torch's default ``norm="backward"``): ``f_hat = sum_x f exp(-i k.x)``.

Streamfunction / velocity: ``omega = -lap(psi)`` so ``psi_hat = omega_hat / |k|^2`` (0 at
k = 0), ``u = d(psi)/dy``, ``v = -d(psi)/dx``.

The 2/3 dealiasing mask keeps the modes with ``|kx| < n/3`` AND ``|ky| < n/3`` (strict, on
both signs), so it is symmetric under k -> -k: the mask of the full FFT layout is
conjugate-symmetric and applying it to the spectrum of a real field gives a real field.
The Nyquist row (ky = -n/2) and column (kx = n/2) of the rfft layout have |k| = n/2 >= n/3
and are always dropped.
"""
from __future__ import annotations

import numpy as np
import torch

from .spectra import rfft_column_weights

__all__ = ["SpectralGrid", "band_mask", "dealias_mask", "wavenumbers", "complex_dtype", "advective_product"]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def wavenumbers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ky, kx) integer wavenumbers of the rfft layout: ky of length n, kx of length n//2+1."""
    ky = np.fft.fftfreq(n, d=1.0 / n)
    kx = np.fft.rfftfreq(n, d=1.0 / n)
    return ky, kx


def band_mask(n: int, divisor: int, *, full: bool = False) -> np.ndarray:
    """Boolean mask of the modes with ``divisor*|kx| < n`` and ``divisor*|ky| < n`` (strict,
    tested in integers, so the cut-off is exact for every n).  ``full=False``: rfft layout
    (n, n//2+1); ``full=True``: full FFT layout (n, n), symmetric under k -> -k.  Divisor 3 is
    the 2/3 rule (:func:`dealias_mask`); divisor 2 drops only the Nyquist modes (the LES)."""
    ky = np.rint(np.fft.fftfreq(n, d=1.0 / n)).astype(np.int64)
    kx = ky if full else np.rint(np.fft.rfftfreq(n, d=1.0 / n)).astype(np.int64)
    return (divisor * np.abs(ky)[:, None] < n) & (divisor * np.abs(kx)[None, :] < n)


def dealias_mask(n: int, *, full: bool = False) -> np.ndarray:
    """Boolean 2/3-rule mask: True where ``|kx| < n/3`` and ``|ky| < n/3`` (strict).

    ``full=False``: rfft layout (n, n//2+1); ``full=True``: full FFT layout (n, n), which is
    symmetric under k -> -k (conjugate-symmetric).  See :func:`band_mask`.
    """
    return band_mask(n, 3, full=full)


def advective_product(phys4: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """u omega_x + v omega_y from the physical stack (u, v, omega_x, omega_y) on axis 0."""
    if out is None:
        return phys4[0] * phys4[2] + phys4[1] * phys4[3]
    torch.mul(phys4[0], phys4[2], out=out)
    return out.addcmul_(phys4[1], phys4[3])


class SpectralGrid:
    """Wavenumber arrays and FFT helpers for an n x n grid on the 2*pi square.

    Attributes (tensors on ``device``; real ones in ``dtype``, shape broadcastable to the
    rfft layout (n, n//2+1)): ``kx`` (1, n//2+1), ``ky`` (n, 1), ``k2`` (n, n//2+1),
    ``inv_lap`` (= 1/k2, 0 at k = 0), ``mask`` (the 2/3 dealiasing mask, real 0/1),
    ``mask_bool``.  ``dx = 2*pi/n``; ``x`` (n,) the grid coordinates.
    """

    def __init__(self, n: int, *, device="cpu", dtype: torch.dtype = torch.float32):
        if n < 4 or n % 2:
            raise ValueError(f"SpectralGrid needs an even n >= 4, got {n}")
        self.n = int(n)
        self.device = torch.device(device)
        self.dtype = dtype
        self.cdtype = complex_dtype(dtype)
        self.L = 2.0 * np.pi
        self.dx = self.L / n
        ky, kx = wavenumbers(n)
        kw = dict(device=self.device, dtype=dtype)
        self.ky = torch.tensor(ky, **kw).reshape(n, 1)
        self.kx = torch.tensor(kx, **kw).reshape(1, n // 2 + 1)
        k2 = ky[:, None] ** 2 + kx[None, :] ** 2
        inv = np.zeros_like(k2)
        inv[k2 > 0] = 1.0 / k2[k2 > 0]
        self.k2 = torch.tensor(k2, **kw)
        self.inv_lap = torch.tensor(inv, **kw)  # psi_hat = inv_lap * omega_hat
        m = dealias_mask(n)
        self.mask_bool = torch.tensor(m, device=self.device)
        self.mask = torch.tensor(m.astype(np.float64), **kw)
        self.x = torch.arange(n, device=self.device, dtype=dtype) * self.dx

    # --- transforms -------------------------------------------------------------------
    def rfft(self, f: torch.Tensor, out=None) -> torch.Tensor:
        """Unnormalised real FFT over the last two axes."""
        return torch.fft.rfft2(f, out=out)

    def irfft(self, f_hat: torch.Tensor, out=None) -> torch.Tensor:
        """Inverse of :meth:`rfft` (real output of size n x n)."""
        return torch.fft.irfft2(f_hat, s=(self.n, self.n), out=out)

    def dealias(self, f_hat: torch.Tensor) -> torch.Tensor:
        return f_hat * self.mask

    # --- derivatives (spectral in, spectral out) --------------------------------------
    def ddx(self, f_hat: torch.Tensor) -> torch.Tensor:
        return f_hat * (1j * self.kx)

    def ddy(self, f_hat: torch.Tensor) -> torch.Tensor:
        return f_hat * (1j * self.ky)

    def laplacian(self, f_hat: torch.Tensor) -> torch.Tensor:
        return -self.k2 * f_hat

    def psi_hat(self, omega_hat: torch.Tensor) -> torch.Tensor:
        """Streamfunction from vorticity: omega = -lap(psi)."""
        return omega_hat * self.inv_lap

    def velocity_hat(self, omega_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u_hat, v_hat) with u = d(psi)/dy, v = -d(psi)/dx."""
        psi = self.psi_hat(omega_hat)
        return self.ddy(psi), -self.ddx(psi)

    def jacobian_hat(self, psi_hat: torch.Tensor, omega_hat: torch.Tensor) -> torch.Tensor:
        """Dealiased J(psi, omega) = u d(omega)/dx + v d(omega)/dy (advective form).

        The inputs are masked by the 2/3 rule before the product and the result is masked
        again, so for band-limited inputs this is the exact product on the kept modes.
        """
        stack = self.jacobian_stack(psi_hat * self.mask, omega_hat * self.mask)
        return self.rfft(advective_product(self.irfft(stack))) * self.mask

    def jacobian_stack(self, psi_hat: torch.Tensor, omega_hat: torch.Tensor) -> torch.Tensor:
        """The four fields of the advective Jacobian, spectral, stacked on a new first axis:
        (u, v, omega_x, omega_y) = (psi_y, -psi_x, omega_x, omega_y).  The one place turbtl
        builds them: the DNS (its precomputed factors, :mod:`turbtl.stepper`), the filter's
        Pi and the LES (:func:`turbtl.filters.jacobian_les_hat`) all go through it."""
        return torch.stack([self.ddy(psi_hat), -self.ddx(psi_hat), self.ddx(omega_hat), self.ddy(omega_hat)])

    def real_field(self, f_hat: torch.Tensor) -> torch.Tensor:
        return self.irfft(f_hat)

    def rfft_weights(self) -> torch.Tensor:
        """Multiplicity of each rfft mode in the full spectrum: 2, except 1 on kx = 0 and
        on the Nyquist column kx = n/2."""
        return torch.tensor(rfft_column_weights(self.n), device=self.device, dtype=self.dtype).reshape(1, -1)

    def inner(self, a_hat: torch.Tensor, b_hat: torch.Tensor) -> torch.Tensor:
        """Grid mean of a*b for real fields a, b given by their rfft (Parseval), summed over
        the last two axes: ``sum_k Re(conj(a_hat) b_hat) / n^4`` over the full spectrum."""
        p = (a_hat.conj() * b_hat).real * self.rfft_weights()
        return p.sum(dim=(-2, -1)) / float(self.n) ** 4
