"""Spectral diagnostics of the closure network: the maths (kernels, what TL changed, activations).

The netCDF datasets built from it (``base_kernels.nc``, ``tl_kernels.nc``, ``activations.nc``,
``system_spectra.nc``) are made in :mod:`turbtl.diagnostics_files`.

Conventions (see docs/DESIGN.md): wavenumbers are integers on the 2*pi-periodic LES grid,
2D spectra are in the full ``numpy.fft.fft2`` layout (ky along axis -2, kx along axis -1,
``fftfreq`` order) unless said otherwise, layers are numbered 1..depth, and every angle
average of a *field* goes through :func:`turbtl.spectra.power_spectrum`.  Shell statistics
of an array that already lives in spectral space (a kernel's transfer function) use the
same shells, :func:`turbtl.spectra.shell_index`, so ``radial_profile`` of a kernel equals
``power_spectrum`` of the zero-padded kernel divided by the number of modes per shell
(tested).

Kernel spectra
--------------
A kernel ``w`` (k x k, k odd) is zero-padded to n x n with its centre tap at index (0, 0)
(i.e. the padded array is rolled by ``-(k//2)`` on both axes), and ``K = |fft2(pad(w))|``.
The roll only changes the phase, so ``|K|`` is the magnitude of the transfer function of
the layer's convolution for that (out, in) channel pair.  (``torch.nn.Conv2d`` is a
cross-correlation, whose transfer function is ``conj(K)`` for a real kernel: same magnitude.)

Kernel labels (codes stored as ``flag_values`` in the netCDF files)
-------------------------------------------------------------------
With ``R(k)`` the radial RMS of ``|K|`` on shell k (k = 0 .. n//2) and ``k_p = argmax R``:

- ``0 low-pass``:  ``k_p == 0`` (the shell-RMS magnitude peaks at the mean, k = 0);
- ``1 high-pass``: ``k_p >= HIGH_PASS_FRACTION * (n//2)``, with ``HIGH_PASS_FRACTION = 1``:
  the maximum at the largest |k| of the radial profile, the Nyquist shell (the brief's
  definition).  Until 2026-11-29 the fraction was 0.75 (peak in the outermost quarter of the
  shells), which also called most interior-peaked, strongly anisotropic kernels high-pass:
  of 4096 random 5x5 kernels on 32^2, 1342 high-pass at 0.75 and 558 at 1, the other 784
  are now band-pass (85) or Gabor (699);
- otherwise the peak is interior; with ``A`` the coefficient of variation (std / mean) of
  ``|K|`` over the modes of shell ``k_p`` (0 for a perfectly isotropic ring, about 1 or
  more for two opposite lobes of an oriented filter):
  ``2 band-pass`` if ``A <= ANISOTROPY_THRESHOLD`` else ``3 gabor`` (oriented).

A kernel whose spectrum is identically zero (a dead kernel) is labelled low-pass (k_p = 0).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from .arrays import as_float64_numpy
from .spectra import power_spectrum, rfft_column_weights, shell_index

__all__ = [
    "LABELS", "LABEL_CODES", "HIGH_PASS_FRACTION", "ANISOTROPY_THRESHOLD",
    "pad_kernels", "kernel_spectra", "kernel_shell_stats", "radial_profile", "shell_stats", "classify_kernels",
    "label_counts", "layer_kernel_summary", "tl_change", "tl_changes", "classify_weights", "channel_spectra",
    "activation_spectra", "fftshift_k",
]

LABELS = ("low-pass", "high-pass", "band-pass", "gabor")
LABEL_CODES = {name: i for i, name in enumerate(LABELS)}
#: peak shell at or beyond this fraction of the Nyquist wavenumber n//2 -> high-pass (1: the
#: maximum at the largest |k|, the brief's definition; module doc)
HIGH_PASS_FRACTION = 1.0
#: coefficient of variation of |K| on the peak shell above which an interior peak is "gabor"
ANISOTROPY_THRESHOLD = 0.35


def _checked_kernels(weight, n: int) -> np.ndarray:
    w = as_float64_numpy(weight)
    k = w.shape[-1]
    if w.shape[-2] != k:
        raise ValueError(f"kernels must be square, got {w.shape[-2:]}")
    if k > n:
        raise ValueError(f"kernel size {k} exceeds the grid size {n}")
    return w


def pad_kernels(weight, n: int) -> np.ndarray:
    """Zero-pad kernels (..., k, k) to (..., n, n) with the centre tap at index (0, 0): tap
    (i, j) goes to ((i - k//2) mod n, (j - k//2) mod n), written in place (no roll of the
    padded array)."""
    w = _checked_kernels(weight, n)
    k = w.shape[-1]
    pad = np.zeros(w.shape[:-2] + (n, n))
    idx = (np.arange(k) - k // 2) % n
    pad[..., idx[:, None], idx[None, :]] = w
    return pad


def kernel_spectra(weight, n: int) -> np.ndarray:
    """|FFT2| of every kernel of ``weight`` (out, in, k, k) zero-padded to n x n.

    Returns float64 (out, in, n, n) in the full fft2 layout (k = 0 at index (0, 0)).  One
    batched real FFT over all kernels (torch's, float64); the columns kx > n/2 follow from
    the symmetry of a real kernel, |K(ky, kx)| = |K(-ky, -kx)|.  Measured 64 x 64 kernels at
    n = 128 on one CPU thread: 7.6 s with numpy's complex fft2, 2.3 s this way; the values
    agree to 1e-15 relative.
    """
    import torch

    pad = pad_kernels(weight, n)
    c = torch.view_as_real(torch.fft.rfft2(torch.from_numpy(pad)))
    r = torch.sqrt(c[..., 0] ** 2 + c[..., 1] ** 2).numpy()  # (..., n, n//2+1); faster than complex abs
    out = np.empty(pad.shape)
    h = n // 2 + 1
    out[..., :h] = r
    if h < n:  # column kx = h + c comes from column n - kx, row ky from row -ky (mod n)
        m = r[..., 1:n - h + 1][..., ::-1]
        out[..., 0, h:] = m[..., 0, :]
        out[..., 1:, h:] = m[..., :0:-1, :]
    return out


def _shell_matrix(n: int):
    """One-hot (n*n, nk) shell membership (shells 0..n//2) and mode counts per shell."""
    idx = shell_index(n).ravel()
    nk = n // 2 + 1
    keep = idx < nk
    m = np.zeros((n * n, nk))
    m[np.nonzero(keep)[0], idx[keep]] = 1.0
    return m, m.sum(axis=0)


def shell_stats(spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shell mean of |K|, shell mean of |K|^2, for spectra (..., n, n); plus the mode counts."""
    s = as_float64_numpy(spec)
    n = s.shape[-1]
    m, cnt = _shell_matrix(n)
    flat = s.reshape(-1, n * n)
    mean1 = (flat @ m) / cnt
    mean2 = ((flat**2) @ m) / cnt
    lead = s.shape[:-2]
    return mean1.reshape(*lead, -1), mean2.reshape(*lead, -1), cnt


class _HalfPlane(NamedTuple):
    """A k x k kernel's transfer function on the half plane kx >= 0 (the rfft2 columns), the
    points sorted by shell: ``K = w_flat @ (cos - i sin)``, so that shell sums are contiguous
    segments (``starts``) of the first ``inside`` points; ``weight`` is each point's
    multiplicity in the full plane (2 where its mirror (-ky, -kx) lies outside the half)."""
    cos: np.ndarray      # (k*k, P)
    sin: np.ndarray      # (k*k, P)
    weight: np.ndarray   # (P,)
    starts: np.ndarray   # (nk,) first point of shells 0 .. n//2
    inside: int          # points in shells 0 .. n//2 (the rest are the corners)
    count: np.ndarray    # (nk,) full-plane modes per shell


@functools.lru_cache(maxsize=8)
def _half_plane(n: int, k: int) -> _HalfPlane:
    h = n // 2 + 1
    nk = n // 2 + 1
    ky = np.broadcast_to(np.fft.fftfreq(n, d=1.0 / n)[:, None], (n, h)).ravel()
    kx = np.broadcast_to(np.arange(h, dtype=np.float64)[None, :], (n, h)).ravel()
    wc = np.broadcast_to(rfft_column_weights(n)[None, :], (n, h)).ravel()
    shell = shell_index(n)[:, :h].ravel()
    order = np.argsort(shell, kind="stable")
    shell, ky, kx, wc = shell[order], ky[order], kx[order], np.ascontiguousarray(wc[order])
    d = np.arange(k) - k // 2  # tap (i, j) sits at (d_i, d_j) after the centring roll
    phase = (2 * np.pi / n) * (np.repeat(d, k)[:, None] * ky[None, :] + np.tile(d, k)[:, None] * kx[None, :])
    count = np.bincount(shell, weights=wc)[:nk]
    return _HalfPlane(np.cos(phase), np.sin(phase), wc, np.searchsorted(shell, np.arange(nk)),
                      int(np.searchsorted(shell, nk)), count)


def _kernel_power(wflat: np.ndarray, hp: _HalfPlane) -> np.ndarray:
    """|K|^2 (K, P) on the half plane's sorted points for kernels ``wflat`` (K, k*k)."""
    re = wflat @ hp.cos
    im = wflat @ hp.sin
    re *= re
    im *= im
    re += im
    return re


def _shell_means(x: np.ndarray, hp: _HalfPlane) -> np.ndarray:
    """Full-plane shell means (K, nk) of a quantity given on the half plane's points (K, P)."""
    m = hp.inside
    return np.add.reduceat(x[:, :m] * hp.weight[:m], hp.starts, axis=1) / hp.count


def _flat_kernels(weight, n: int) -> tuple[np.ndarray, tuple]:
    w = _checked_kernels(weight, n)
    k = w.shape[-1]
    return w.reshape(-1, k * k), w.shape[:-2]


def _chunk(n: int) -> int:
    return max(1, (1 << 21) // (n * (n // 2 + 1)))  # ~16 MB float64 per (chunk, P) array


def kernel_shell_stats(weight, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shell mean of |K| and of |K|^2 (..., n//2+1) of kernels ``weight`` (..., k, k) padded to n.

    Equal to :func:`shell_stats` of :func:`kernel_spectra` (to 1e-15 relative, tested) without
    making the (..., n, n) spectra: each kernel's transfer function is evaluated as a k*k-term
    sum (one matrix product) on the half plane kx >= 0 only (|K(-k)| = |K(k)| for a real
    kernel), in chunks that stay in cache.  All 11 layers of the 64-channel net at n = 128 on
    one CPU thread: 1.4 s, against 12.9 s for their full spectra alone (benchmarks/README.md).
    """
    wf, lead = _flat_kernels(weight, n)
    hp = _half_plane(n, int(round(np.sqrt(wf.shape[1]))))
    nk = n // 2 + 1
    m1 = np.empty((wf.shape[0], nk))
    m2 = np.empty((wf.shape[0], nk))
    c = _chunk(n)
    for a in range(0, wf.shape[0], c):
        p = _kernel_power(wf[a:a + c], hp)
        m2[a:a + c] = _shell_means(p, hp)
        m1[a:a + c] = _shell_means(np.sqrt(p, out=p), hp)
    return m1.reshape(*lead, nk), m2.reshape(*lead, nk)


def radial_profile(spec) -> np.ndarray:
    """Radial RMS magnitude R(k) = sqrt(shell mean of |K|^2), k = 0..n//2, for (..., n, n)."""
    _, m2, _ = shell_stats(spec)
    return np.sqrt(m2)


def _classify_stats(m1, m2, n: int, high_pass_fraction: float, anisotropy_threshold: float,
                    return_details: bool):
    r = np.sqrt(m2)
    kp = np.argmax(r, axis=-1)
    mean_p = np.take_along_axis(m1, kp[..., None], axis=-1)[..., 0]
    sq_p = np.take_along_axis(m2, kp[..., None], axis=-1)[..., 0]
    var_p = np.clip(sq_p - mean_p**2, 0.0, None)
    aniso = np.sqrt(var_p) / np.where(mean_p > 0, mean_p, 1.0)
    k_hi = high_pass_fraction * (n // 2)
    lab = np.where(aniso > anisotropy_threshold, LABEL_CODES["gabor"], LABEL_CODES["band-pass"])
    lab = np.where(kp >= k_hi, LABEL_CODES["high-pass"], lab)
    lab = np.where(kp == 0, LABEL_CODES["low-pass"], lab).astype(np.int8)
    if return_details:
        return lab, {"peak_k": kp, "anisotropy": aniso, "radial": r}
    return lab


def classify_kernels(spectra, *, high_pass_fraction: float = HIGH_PASS_FRACTION,
                     anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
                     return_details: bool = False):
    """Label kernel spectra (..., n, n) with codes 0..3 (see :data:`LABELS` and the module doc).

    With ``return_details`` also returns ``{"peak_k": k_p, "anisotropy": A}`` (same leading
    shape), A being the coefficient of variation of |K| on the peak shell, and ``"radial"``
    (the radial RMS profile R, shape (..., n//2+1)).  :func:`classify_weights` gives the
    same from the kernels themselves, without the spectra.
    """
    s = as_float64_numpy(spectra)
    m1, m2, _ = shell_stats(s)
    return _classify_stats(m1, m2, s.shape[-1], high_pass_fraction, anisotropy_threshold, return_details)


def classify_weights(weight, n: int, *, return_details: bool = False):
    """:func:`classify_kernels` of ``kernel_spectra(weight, n)``, via :func:`kernel_shell_stats`."""
    m1, m2 = kernel_shell_stats(weight, n)
    return _classify_stats(m1, m2, n, HIGH_PASS_FRACTION, ANISOTROPY_THRESHOLD, return_details)


def label_counts(labels) -> np.ndarray:
    """Number of kernels per label code (length len(LABELS))."""
    return np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=len(LABELS))


def layer_kernel_summary(weight, n: int) -> dict:
    """Spectra-derived quantities of one layer's kernels (out, in, k, k)."""
    lab, det = classify_weights(weight, n, return_details=True)
    return {"labels": lab, "counts": label_counts(lab), "radial": det["radial"].reshape(-1, n // 2 + 1).mean(0),
            "peak_k": det["peak_k"], "anisotropy": det["anisotropy"]}


def fftshift_k(n: int) -> np.ndarray:
    """Integer wavenumbers in fftshift order (-n/2 .. n/2-1), for centred 2D spectra."""
    return np.fft.fftshift(np.fft.fftfreq(n, d=1.0 / n))


def tl_change(base_w, tl_w, n: int, *, percentile: float = 99.9, max_kernels: int | None = 8) -> dict:
    """What transfer learning changed in one layer.

    Per kernel (out, in): ``dw_norm = ||W_TL - W_base||_F`` (physical space) and
    ``dspec_norm = || |K_TL| - |K_base| ||_F / n`` (over the full n x n spectrum; the 1/n
    makes it comparable with dw_norm: by Parseval and the triangle inequality
    ``dspec_norm <= dw_norm``).  The most-changed kernels are those with ``dw_norm`` above
    its ``percentile``-th percentile (at least the single largest), sorted by decreasing
    change and capped at ``max_kernels``; their spectra before and after (full fft2 layout).
    Also the labels and the shell-RMS profiles (out, in, n//2+1) before and after.
    """
    return tl_changes(base_w, [tl_w], n, percentile=percentile, max_kernels=max_kernels)[0]


def tl_changes(base_w, tl_ws, n: int, *, percentile: float = 99.9, max_kernels: int | None = 8) -> list[dict]:
    """:func:`tl_change` for several re-trainings (seeds) of one layer, the base's transfer
    functions evaluated once.  No (out, in, n, n) spectra are made: everything but the few
    most-changed kernels' spectra is reduced chunk by chunk on the half plane
    (:func:`kernel_shell_stats`)."""
    bf, lead = _flat_kernels(base_w, n)
    tfs = []
    for tw in tl_ws:
        tf, tl_lead = _flat_kernels(tw, n)
        if tf.shape != bf.shape or tl_lead != lead:
            raise ValueError(f"base and TL weights differ in shape: {as_float64_numpy(base_w).shape} vs "
                             f"{as_float64_numpy(tw).shape}")
        tfs.append(tf)
    k = int(round(np.sqrt(bf.shape[1])))
    hp = _half_plane(n, k)
    nk = n // 2 + 1
    nb = bf.shape[0]
    mb1, mb2 = np.empty((nb, nk)), np.empty((nb, nk))
    mt1, mt2 = np.empty((len(tfs), nb, nk)), np.empty((len(tfs), nb, nk))
    dspec = np.empty((len(tfs), nb))
    c = _chunk(n)
    for a in range(0, nb, c):
        sl = slice(a, a + c)
        pb = _kernel_power(bf[sl], hp)
        mb2[sl] = _shell_means(pb, hp)
        kb = np.sqrt(pb, out=pb)
        mb1[sl] = _shell_means(kb, hp)
        for j, tf in enumerate(tfs):
            pt = _kernel_power(tf[sl], hp)
            mt2[j, sl] = _shell_means(pt, hp)
            kt = np.sqrt(pt, out=pt)
            mt1[j, sl] = _shell_means(kt, hp)
            kt -= kb
            kt *= kt
            dspec[j, sl] = kt @ hp.weight
    dspec = np.sqrt(dspec) / n
    lab_b = _classify_stats(mb1, mb2, n, HIGH_PASS_FRACTION, ANISOTROPY_THRESHOLD, False).reshape(lead)
    rad_b = np.sqrt(mb2).reshape(*lead, nk)
    out = []
    for j, tf in enumerate(tfs):
        dw = np.sqrt(((tf - bf) ** 2).sum(axis=-1)).reshape(lead)
        thr = float(np.percentile(dw, percentile))
        flat = dw.ravel()
        order = np.argsort(-flat, kind="stable")
        sel = [i for i in order if flat[i] > thr]
        if not sel:
            sel = [int(order[0])]
        if max_kernels is not None:
            sel = sel[:max_kernels]
        sel = np.asarray(sel, dtype=np.int64)
        oi, ii = np.unravel_index(sel, dw.shape)
        out.append({
            "dw_norm": dw, "dspec_norm": dspec[j].reshape(lead), "threshold": thr,
            "top_out": oi, "top_in": ii,
            "spec_before": kernel_spectra(bf[sel].reshape(-1, k, k), n),
            "spec_after": kernel_spectra(tf[sel].reshape(-1, k, k), n),
            "labels_before": lab_b,
            "labels_after": _classify_stats(mt1[j], mt2[j], n, HIGH_PASS_FRACTION, ANISOTROPY_THRESHOLD,
                                            False).reshape(lead),
            "radial_before": rad_b,
            "radial_after": np.sqrt(mt2[j]).reshape(*lead, nk),
        })
    return out


def _batches(x: torch.Tensor, batch_size: int):
    for i in range(0, x.shape[0], batch_size):
        yield x[i:i + batch_size]


def channel_spectra(model, x: torch.Tensor, layers, *, batch_size: int = 8) -> dict:
    """Per layer, per channel, sample-mean power spectra of the pre- and post-activations.

    Returns ``{"k": k, L: {"pre": (C, nk), "post": (C, nk)}}`` for each L in ``layers``
    (1-based).  Spectra from :func:`turbtl.spectra.power_spectrum`.
    """
    layers = [int(L) for L in layers]
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    acc: dict = {}
    total = 0
    k = None
    model.eval()
    for xb in _batches(x, batch_size):
        acts = model.activations(xb.to(dev, dtype))
        nb = xb.shape[0]
        for L in layers:
            pre, post = acts[L - 1]
            for stage, a in (("pre", pre), ("post", post)):
                k, p = power_spectrum(a, average=False)  # (B, C, nk)
                s = p.sum(axis=0)
                key = (L, stage)
                acc[key] = acc[key] + s if key in acc else s
        total += nb
    out = {"k": k}
    for L in layers:
        out[L] = {st: acc[(L, st)] / total for st in ("pre", "post")}
    return out


def activation_spectra(model, x_normalised: torch.Tensor, layers, *, batch_size: int = 8):
    """Per layer, pre- and post-activation power spectra averaged over channels and samples.

    Returns ``(k, S)`` with ``S`` of shape (len(layers), 2, nk): stage 0 = pre, 1 = post.
    """
    cs = channel_spectra(model, x_normalised, layers, batch_size=batch_size)
    s = np.stack([[cs[int(L)]["pre"].mean(0), cs[int(L)]["post"].mean(0)] for L in layers])
    return cs["k"], s
