"""Angle-averaged spectra, shared by the solver's resolution check, the filtering stage,
the training metrics and the diagnostics, so that every stage means the same thing.

Convention: fields are real arrays whose last two axes are (y, x) on a doubly periodic
square of side L = 2*pi sampled on an n x n grid, so wavenumbers are integers.  The shell
spectrum P(k) of a field f sums |f_hat(kx, ky)|^2 / n^4 over the shell
k - 1/2 <= |k| < k + 1/2 (integer k = 0 .. n//2), over the *full* 2D spectrum, so that
Parseval holds: sum_k P(k) = mean(f^2) up to the corner modes beyond |k| = n/2 + 1/2, which
are left out.  Leading axes are averaged.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .arrays import as_float64_numpy

__all__ = ["shell_index", "rfft_column_weights", "power_spectrum", "energy_enstrophy_spectra", "log_spectrum_error", "log_rmse"]


def shell_index(n: int) -> np.ndarray:
    """Integer shell index round(|k|) for the full n x n FFT layout (ky along axis 0)."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    return np.rint(kk).astype(np.int64)


def rfft_column_weights(n: int) -> np.ndarray:
    """Multiplicity in the full n x n spectrum of each column kx = 0 .. n//2 of the rfft
    layout: 1 for kx = 0 and (n even) the Nyquist column kx = n/2, which are their own
    mirrors, else 2 (the mode (-ky, -kx) is the conjugate of (ky, kx) for a real field and
    sits in the same shell)."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


@functools.lru_cache(maxsize=16)
def _rfft_shell_matrix(n: int, device: str) -> torch.Tensor:
    """(n*(n//2+1), n//2+1) float64: each rfft mode's column multiplicity in its shell's
    column (shells 0 .. n//2; the corner modes beyond get none)."""
    h = n // 2 + 1
    idx = shell_index(n)[:, :h].ravel()
    wts = np.broadcast_to(rfft_column_weights(n)[None, :], (n, h)).ravel()
    keep = np.nonzero(idx < h)[0]
    m = np.zeros((n * h, h))
    m[keep, idx[keep]] = wts[keep]
    return torch.from_numpy(m).to(device)


def power_spectrum(f, *, average: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Shell-summed power spectrum of real field(s) ``f`` (..., n, n).

    Returns ``(k, P)`` with ``k = 0 .. n//2``.  With ``average`` the leading axes are
    averaged (P has shape (n//2+1,)); otherwise P keeps them (..., n//2+1).

    A tensor is transformed where it lives (a GPU's activations stay on the GPU until only
    the shell sums are left), in float64: the real FFT's half plane with each column's
    multiplicity (:func:`rfft_column_weights`), summed into shells by one matrix product.
    The same numbers as a full complex FFT and a per-shell sum, to 1e-15 relative (tested).
    All activations of the 64-channel net at n = 128 (16 samples) on one CPU thread: 17.1 s
    that way, 5.4 s this way (benchmarks/README.md).
    """
    t = f.detach() if isinstance(f, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(as_float64_numpy(f)))
    n = t.shape[-1]
    if t.dim() < 2 or t.shape[-2] != n:
        raise ValueError(f"power_spectrum needs a square grid, got {tuple(t.shape[-2:])}")
    lead = tuple(t.shape[:-2])
    c = torch.view_as_real(torch.fft.rfft2(t.to(torch.float64)))
    p2 = c.square_().sum(dim=-1).reshape(-1, n * (n // 2 + 1))
    out = (p2 @ _rfft_shell_matrix(n, str(t.device))).div_(float(n) ** 4).cpu().numpy().reshape(*lead, -1)
    if average and lead:
        out = out.reshape(-1, out.shape[-1]).mean(axis=0)
    return np.arange(n // 2 + 1, dtype=np.float64), out


def energy_enstrophy_spectra(omega, *, average: bool = True):
    """Kinetic-energy and enstrophy spectra of vorticity field(s) on the 2*pi square.

    E(k) = P_omega(k) / (2 k^2) (for k > 0; E(0) = 0) and Z(k) = P_omega(k) / 2, so that
    sum E = mean(|u|^2)/2 and sum Z = mean(omega^2)/2.
    """
    k, p = power_spectrum(omega, average=average)
    z = 0.5 * p
    e = np.zeros_like(z)
    e[..., 1:] = z[..., 1:] / k[1:] ** 2
    return k, e, z


def log_spectrum_error(pred, true, *, kmin: int = 1, kmax: int | None = None, eps: float = 1e-30) -> float:
    """RMSE of log10 of the mean shell spectra of ``pred`` and ``true`` over k in [kmin, kmax].

    Both spectra are averaged over the leading (sample) axes first; kmax defaults to n//2 - 1
    (the Nyquist shell is left out: it is incomplete on an even grid).
    """
    k, pp = power_spectrum(pred)
    _, pt = power_spectrum(true)
    return log_rmse(pp, pt, kmin=kmin, kmax=kmax, eps=eps)


def log_rmse(pp, pt, *, kmin: int = 1, kmax: int | None = None, eps: float = 1e-30) -> float:
    """RMSE of log10(pp) - log10(pt) over the shells k in [kmin, kmax] of two shell spectra
    (k = 0 .. n//2; kmax defaults to n//2 - 1): the a-priori ``spec_err`` and the a-posteriori
    spectrum errors are this one number."""
    pp, pt = np.asarray(pp, dtype=np.float64), np.asarray(pt, dtype=np.float64)
    k = np.arange(pt.shape[-1])
    kmax = pt.shape[-1] - 2 if kmax is None else kmax
    sel = (k >= kmin) & (k <= kmax)
    d = np.log10(pp[..., sel] + eps) - np.log10(pt[..., sel] + eps)
    return float(np.sqrt(np.mean(d**2)))
