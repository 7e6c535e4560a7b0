"""Angle-averaged spectra, shared by the solver's resolution check, the filtering stage,
the training metrics and the diagnostics, so that every stage means the same thing.

Convention: fields are real arrays whose last two axes are (y, x) on a doubly periodic
square of side L = 2*pi sampled on an n x n grid, so wavenumbers are integers.  The shell
spectrum P(k) of a field f sums |f_hat(kx, ky)|^2 / n^4 over the shell
k - 1/2 <= |k| < k + 1/2 (integer k = 0 .. n//2), using the *full* 2D FFT, so that
Parseval holds: sum_k P(k) = mean(f^2) up to the corner modes beyond |k| = n/2 + 1/2, which
are left out.  Leading axes are averaged.
"""
from __future__ import annotations

import numpy as np

from .arrays import as_float64_numpy

__all__ = ["shell_index", "power_spectrum", "energy_enstrophy_spectra", "log_spectrum_error", "log_rmse"]


def shell_index(n: int) -> np.ndarray:
    """Integer shell index round(|k|) for the full n x n FFT layout (ky along axis 0)."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    return np.rint(kk).astype(np.int64)


def power_spectrum(f, *, average: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Shell-summed power spectrum of real field(s) ``f`` (..., n, n).

    Returns ``(k, P)`` with ``k = 0 .. n//2``.  With ``average`` the leading axes are
    averaged (P has shape (n//2+1,)); otherwise P keeps them (..., n//2+1).
    """
    f = as_float64_numpy(f)
    n = f.shape[-1]
    if f.shape[-2] != n:
        raise ValueError(f"power_spectrum needs a square grid, got {f.shape[-2:]}")
    fh = np.fft.fft2(f, axes=(-2, -1))
    p2 = (fh.real**2 + fh.imag**2) / float(n) ** 4
    idx = shell_index(n)
    nk = n // 2 + 1
    keep = idx < nk
    lead = p2.shape[:-2]
    flat = p2.reshape(-1, n * n)[:, keep.ravel()]
    rows = flat.shape[0]
    # one bincount for all rows: row r's shell k goes to bin r * nk + k
    bins = (idx[keep][None, :] + nk * np.arange(rows)[:, None]).ravel()
    out = np.bincount(bins, weights=flat.ravel(), minlength=rows * nk).reshape(*lead, nk)
    if average and lead:
        out = out.reshape(-1, nk).mean(axis=0)
    return np.arange(nk, dtype=np.float64), out


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
