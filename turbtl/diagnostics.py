"""Spectral diagnostics of the closure network: kernels, what TL changed, activations, systems.

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
- ``1 high-pass``: ``k_p >= HIGH_PASS_FRACTION * (n//2)`` (peak in the outermost quarter of
  the shells, up to the Nyquist shell);
- otherwise the peak is interior; with ``A`` the coefficient of variation (std / mean) of
  ``|K|`` over the modes of shell ``k_p`` (0 for a perfectly isotropic ring, about 1 or
  more for two opposite lobes of an oriented filter):
  ``2 band-pass`` if ``A <= ANISOTROPY_THRESHOLD`` else ``3 gabor`` (oriented).

A kernel whose spectrum is identically zero (a dead kernel) is labelled low-pass (k_p = 0).
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from .spectra import power_spectrum, shell_index

__all__ = [
    "LABELS", "LABEL_CODES", "HIGH_PASS_FRACTION", "ANISOTROPY_THRESHOLD",
    "pad_kernels", "kernel_spectra", "radial_profile", "shell_stats", "classify_kernels",
    "label_counts", "layer_kernel_summary", "tl_change", "channel_spectra",
    "activation_spectra", "system_spectra", "fftshift_k", "with_layer",
    "base_kernels_dataset", "tl_kernels_dataset", "activations_dataset",
]

LABELS = ("low-pass", "high-pass", "band-pass", "gabor")
LABEL_CODES = {name: i for i, name in enumerate(LABELS)}
#: peak shell at or beyond this fraction of the Nyquist wavenumber n//2 -> high-pass
HIGH_PASS_FRACTION = 0.75
#: coefficient of variation of |K| on the peak shell above which an interior peak is "gabor"
ANISOTROPY_THRESHOLD = 0.35


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def pad_kernels(weight, n: int) -> np.ndarray:
    """Zero-pad kernels (..., k, k) to (..., n, n) with the centre tap at index (0, 0)."""
    w = _np(weight)
    k = w.shape[-1]
    if w.shape[-2] != k:
        raise ValueError(f"kernels must be square, got {w.shape[-2:]}")
    if k > n:
        raise ValueError(f"kernel size {k} exceeds the grid size {n}")
    pad = np.zeros(w.shape[:-2] + (n, n))
    pad[..., :k, :k] = w
    return np.roll(pad, (-(k // 2), -(k // 2)), axis=(-2, -1))


def kernel_spectra(weight, n: int) -> np.ndarray:
    """|FFT2| of every kernel of ``weight`` (out, in, k, k) zero-padded to n x n.

    Returns float64 (out, in, n, n) in the full fft2 layout (k = 0 at index (0, 0)).
    One batched FFT over all kernels.
    """
    return np.abs(np.fft.fft2(pad_kernels(weight, n), axes=(-2, -1)))


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
    s = _np(spec)
    n = s.shape[-1]
    m, cnt = _shell_matrix(n)
    flat = s.reshape(-1, n * n)
    mean1 = (flat @ m) / cnt
    mean2 = ((flat**2) @ m) / cnt
    lead = s.shape[:-2]
    return mean1.reshape(*lead, -1), mean2.reshape(*lead, -1), cnt


def radial_profile(spec) -> np.ndarray:
    """Radial RMS magnitude R(k) = sqrt(shell mean of |K|^2), k = 0..n//2, for (..., n, n)."""
    _, m2, _ = shell_stats(spec)
    return np.sqrt(m2)


def classify_kernels(spectra, *, high_pass_fraction: float = HIGH_PASS_FRACTION,
                     anisotropy_threshold: float = ANISOTROPY_THRESHOLD,
                     return_details: bool = False):
    """Label kernel spectra (..., n, n) with codes 0..3 (see :data:`LABELS` and the module doc).

    With ``return_details`` also returns ``{"peak_k": k_p, "anisotropy": A}`` (same leading
    shape), A being the coefficient of variation of |K| on the peak shell, and ``"radial"``
    (the radial RMS profile R, shape (..., n//2+1)).
    """
    s = _np(spectra)
    n = s.shape[-1]
    m1, m2, _ = shell_stats(s)
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


def label_counts(labels) -> np.ndarray:
    """Number of kernels per label code (length len(LABELS))."""
    return np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=len(LABELS))


def layer_kernel_summary(weight, n: int) -> dict:
    """Spectra-derived quantities of one layer's kernels (out, in, k, k)."""
    spec = kernel_spectra(weight, n)
    lab, det = classify_kernels(spec, return_details=True)
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
    """
    bw, tw = _np(base_w), _np(tl_w)
    if bw.shape != tw.shape:
        raise ValueError(f"base and TL weights differ in shape: {bw.shape} vs {tw.shape}")
    dw = np.sqrt(((tw - bw) ** 2).sum(axis=(-2, -1)))
    sb, st = kernel_spectra(bw, n), kernel_spectra(tw, n)
    dspec = np.sqrt(((st - sb) ** 2).sum(axis=(-2, -1))) / n
    thr = float(np.percentile(dw, percentile))
    flat = dw.ravel()
    order = np.argsort(-flat, kind="stable")
    sel = [i for i in order if flat[i] > thr]
    if not sel:
        sel = [int(order[0])]
    if max_kernels is not None:
        sel = sel[:max_kernels]
    oi, ii = np.unravel_index(np.asarray(sel, dtype=np.int64), dw.shape)
    return {
        "dw_norm": dw, "dspec_norm": dspec, "threshold": thr,
        "top_out": oi, "top_in": ii,
        "spec_before": sb[oi, ii], "spec_after": st[oi, ii],
        "labels_before": classify_kernels(sb), "labels_after": classify_kernels(st),
    }


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


SYSTEM_FIELDS = {
    "P_psi": "filtered streamfunction",
    "P_omega": "filtered vorticity",
    "P_pi": "SGS term Pi",
}


def system_spectra(base_spectra_ds: xr.Dataset, target_spectra_ds: xr.Dataset,
                   *, base_name: str = "base", target_name: str = "target") -> xr.Dataset:
    """Base and target P_psi, P_omega, P_pi (on k_les) and their ratio target / base.

    Variables ``{P}_base``, ``{P}_target``, ``{P}_ratio`` on a common coordinate ``k``
    (the wavenumbers both files share).
    """
    b = base_spectra_ds[list(SYSTEM_FIELDS)].rename(k_les="k")
    t = target_spectra_ds[list(SYSTEM_FIELDS)].rename(k_les="k")
    b, t = xr.align(b, t, join="inner")
    ds = xr.Dataset(coords={"k": ("k", b["k"].values.astype(np.float64),
                                  {"long_name": "wavenumber magnitude (shell)", "units": "1"})})
    for name, what in SYSTEM_FIELDS.items():
        bv = b[name].values.astype(np.float64)
        tv = t[name].values.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bv > 0, tv / np.where(bv > 0, bv, 1.0), np.nan)
        # the k = 0 shell of these zero-mean periodic fields is round-off: no ratio there
        ratio[ds["k"].values == 0] = np.nan
        ds[f"{name}_base"] = ("k", bv, {"long_name": f"power spectrum of the {what}, {base_name}", "units": "1"})
        ds[f"{name}_target"] = ("k", tv, {"long_name": f"power spectrum of the {what}, {target_name}", "units": "1"})
        ds[f"{name}_ratio"] = ("k", ratio, {"long_name": f"ratio target/base of the power spectrum of the {what}",
                                            "units": "1"})
    ds.attrs.update(base=base_name, target=target_name,
                    spectrum_convention="shell-summed, Parseval-normalised (turbtl.spectra.power_spectrum)")
    return ds


# --------------------------------------------------------------------------------------
# Dataset builders used by the workflow scripts (netCDF layout of docs/DESIGN.md)
# --------------------------------------------------------------------------------------

_LABEL_ATTRS = {"flag_values": np.arange(len(LABELS), dtype=np.int8),
                "flag_meanings": " ".join(name.replace("-", "_") for name in LABELS)}


def with_layer(model, layer: int, weight, bias=None):
    """A copy of ``model`` whose layer ``layer`` (1-based) has the given parameters."""
    import copy

    m = copy.deepcopy(model)
    conv = m.layer(int(layer))
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(weight, dtype=conv.weight.dtype))
        if bias is not None and conv.bias is not None:
            conv.bias.copy_(torch.as_tensor(bias, dtype=conv.bias.dtype))
    return m


def base_kernels_dataset(model, n: int) -> xr.Dataset:
    """``base_kernels.nc``: labels, label counts, mean radial spectrum per layer."""
    depth = model.depth
    ws = [model.layer(L).weight for L in range(1, depth + 1)]
    co = max(w.shape[0] for w in ws)
    ci = max(w.shape[1] for w in ws)
    nk = n // 2 + 1
    lab = np.full((depth, co, ci), -1, np.int8)
    cnt = np.zeros((depth, len(LABELS)), np.int64)
    rad = np.zeros((depth, nk))
    pk = np.full((depth, co, ci), -1, np.int16)
    an = np.full((depth, co, ci), np.nan)
    for j, w in enumerate(ws):
        s = layer_kernel_summary(w, n)
        o, i = w.shape[:2]
        lab[j, :o, :i] = s["labels"]
        cnt[j] = s["counts"]
        rad[j] = s["radial"]
        pk[j, :o, :i] = s["peak_k"]
        an[j, :o, :i] = s["anisotropy"]
    ds = xr.Dataset(
        {
            "label": (("layer", "out", "in"), lab, dict(_LABEL_ATTRS, long_name="kernel class", units="1",
                                                        _FillValue=np.int8(-1))),
            "label_count": (("layer", "label_code"), cnt, {"long_name": "number of kernels per class", "units": "1"}),
            "radial": (("layer", "k"), rad, {"long_name": "mean over the layer's kernels of the shell-RMS "
                                                          "magnitude of the kernel transfer function", "units": "1"}),
            "peak_k": (("layer", "out", "in"), pk, {"long_name": "shell of the radial maximum of |K|",
                                                     "units": "1", "_FillValue": np.int16(-1)}),
            "anisotropy": (("layer", "out", "in"), an, {"long_name": "coefficient of variation of |K| on the peak shell",
                                                         "units": "1"}),
        },
        coords={
            "layer": ("layer", np.arange(1, depth + 1), {"long_name": "layer (1-based)", "units": "1"}),
            "out": ("out", np.arange(co), {"long_name": "output channel", "units": "1"}),
            "in": ("in", np.arange(ci), {"long_name": "input channel", "units": "1"}),
            "label_code": ("label_code", np.arange(len(LABELS), dtype=np.int8),
                      {"long_name": "kernel class code", "units": "1", **_LABEL_ATTRS}),
            "k": ("k", np.arange(nk, dtype=np.float64), {"long_name": "wavenumber magnitude (shell)", "units": "1"}),
        },
        attrs={"n": int(n), "kernel_size": int(ws[0].shape[-1]),
               "high_pass_fraction": HIGH_PASS_FRACTION, "anisotropy_threshold": ANISOTROPY_THRESHOLD,
               "labels": " ".join(LABELS),
               "classification": "peak shell k_p of the shell-RMS |K|: 0 -> low-pass; "
                                 ">= high_pass_fraction*(n//2) -> high-pass; else anisotropy > threshold -> "
                                 "gabor, otherwise band-pass"},
    )
    return ds


def tl_kernels_dataset(model, layer_weights: dict, n: int, *, percentile: float = 99.9,
                       max_kernels: int = 8) -> xr.Dataset:
    """``tl_kernels.nc`` from the base model and ``{L: {seed: {"weight", "bias"}}}``.

    Per re-trained layer and seed: ``dw_norm``, ``dspec_norm`` (NaN-padded to the widest
    layer) and the percentile threshold; for the first seed (``spectra_seed``): the
    most-changed kernels' centred 2D spectra before/after, their labels, and the class
    counts of the layer's kernels before/after.
    """
    tls = sorted(int(L) for L in layer_weights)
    if not tls:
        from . import TurbtlError

        raise TurbtlError("no TL layer weights given; fix: run the transfer sweep first (rule transfer_layer)")
    seeds = sorted({int(s) for L in tls for s in layer_weights[L]})
    s0 = seeds[0]
    shapes = [tuple(model.layer(L).weight.shape) for L in tls]
    co = max(s[0] for s in shapes)
    ci = max(s[1] for s in shapes)
    nL, nS = len(tls), len(seeds)
    dw = np.full((nL, nS, co, ci), np.nan)
    dsp = np.full((nL, nS, co, ci), np.nan)
    thr = np.full((nL, nS), np.nan)
    top_o = np.full((nL, max_kernels), -1, np.int32)
    top_i = np.full((nL, max_kernels), -1, np.int32)
    top_dw = np.full((nL, max_kernels), np.nan)
    top_lb = np.full((nL, max_kernels), -1, np.int8)
    top_la = np.full((nL, max_kernels), -1, np.int8)
    sb = np.full((nL, max_kernels, n, n), np.nan)
    sa = np.full((nL, max_kernels, n, n), np.nan)
    cb = np.zeros((nL, len(LABELS)), np.int64)
    ca = np.zeros((nL, len(LABELS)), np.int64)
    nk = n // 2 + 1
    rb = np.zeros((nL, nk))
    ra = np.zeros((nL, nk))
    for a, L in enumerate(tls):
        bw = model.layer(L).weight.detach()
        o, i = bw.shape[:2]
        for b, s in enumerate(seeds):
            if s not in layer_weights[L]:
                continue
            ch = tl_change(bw, layer_weights[L][s]["weight"], n, percentile=percentile, max_kernels=max_kernels)
            dw[a, b, :o, :i] = ch["dw_norm"]
            dsp[a, b, :o, :i] = ch["dspec_norm"]
            thr[a, b] = ch["threshold"]
            if s == s0:
                m = len(ch["top_out"])
                top_o[a, :m] = ch["top_out"]
                top_i[a, :m] = ch["top_in"]
                top_dw[a, :m] = ch["dw_norm"][ch["top_out"], ch["top_in"]]
                top_lb[a, :m] = ch["labels_before"][ch["top_out"], ch["top_in"]]
                top_la[a, :m] = ch["labels_after"][ch["top_out"], ch["top_in"]]
                sb[a, :m] = np.fft.fftshift(ch["spec_before"], axes=(-2, -1))
                sa[a, :m] = np.fft.fftshift(ch["spec_after"], axes=(-2, -1))
                cb[a] = label_counts(ch["labels_before"])
                ca[a] = label_counts(ch["labels_after"])
                rb[a] = radial_profile(kernel_spectra(bw, n)).reshape(-1, nk).mean(0)
                ra[a] = radial_profile(kernel_spectra(layer_weights[L][s]["weight"], n)).reshape(-1, nk).mean(0)
    kc = fftshift_k(n)
    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "dw_norm": (("tl_layer", "seed", "out", "in"), dw,
                        {"long_name": "Frobenius norm of W_TL - W_base per kernel", **one}),
            "dspec_norm": (("tl_layer", "seed", "out", "in"), dsp,
                           {"long_name": "Frobenius norm of |K_TL| - |K_base| per kernel, divided by n", **one}),
            "threshold": (("tl_layer", "seed"), thr,
                          {"long_name": f"{percentile}th percentile of dw_norm over the layer's kernels", **one}),
            "top_out": (("tl_layer", "rank"), top_o, {"long_name": "output channel of the most-changed kernels "
                                                                  "(-1: none)", **one}),
            "top_in": (("tl_layer", "rank"), top_i, {"long_name": "input channel of the most-changed kernels "
                                                                "(-1: none)", **one}),
            "top_dw_norm": (("tl_layer", "rank"), top_dw, {"long_name": "dw_norm of the most-changed kernels", **one}),
            "top_label_before": (("tl_layer", "rank"), top_lb,
                                 dict(_LABEL_ATTRS, long_name="class of the most-changed kernels, base", units="1")),
            "top_label_after": (("tl_layer", "rank"), top_la,
                                dict(_LABEL_ATTRS, long_name="class of the most-changed kernels, after TL", units="1")),
            "spec_before": (("tl_layer", "rank", "ky", "kx"), sb,
                            {"long_name": "|FFT2| of the zero-padded base kernel (centred)", **one}),
            "spec_after": (("tl_layer", "rank", "ky", "kx"), sa,
                           {"long_name": "|FFT2| of the zero-padded re-trained kernel (centred)", **one}),
            "label_count_before": (("tl_layer", "label_code"), cb, {"long_name": "kernels per class, base", **one}),
            "label_count_after": (("tl_layer", "label_code"), ca, {"long_name": "kernels per class, after TL", **one}),
            "radial_before": (("tl_layer", "k"), rb, {"long_name": "mean shell-RMS |K| of the layer, base", **one}),
            "radial_after": (("tl_layer", "k"), ra, {"long_name": "mean shell-RMS |K| of the layer, after TL", **one}),
        },
        coords={
            "tl_layer": ("tl_layer", np.asarray(tls), {"long_name": "re-trained layer (1-based)", **one}),
            "seed": ("seed", np.asarray(seeds), {"long_name": "TL seed", **one}),
            "out": ("out", np.arange(co), {"long_name": "output channel", **one}),
            "in": ("in", np.arange(ci), {"long_name": "input channel", **one}),
            "rank": ("rank", np.arange(max_kernels), {"long_name": "rank by decreasing dw_norm", **one}),
            "ky": ("ky", kc, {"long_name": "wavenumber y (centred)", **one}),
            "kx": ("kx", kc, {"long_name": "wavenumber x (centred)", **one}),
            "k": ("k", np.arange(nk, dtype=np.float64), {"long_name": "wavenumber magnitude (shell)", **one}),
            "label_code": ("label_code", np.arange(len(LABELS), dtype=np.int8), dict(_LABEL_ATTRS, long_name="kernel class code",
                                                                           units="1")),
        },
        attrs={"n": int(n), "percentile": float(percentile), "spectra_seed": int(s0), "labels": " ".join(LABELS)},
    )
    return ds


def activations_dataset(model, x_base: torch.Tensor, x_target: torch.Tensor, layer_weights: dict,
                        *, batch_size: int = 8) -> xr.Dataset:
    """``activations.nc``: spectrum(case, layer, stage, k) and tl_on_target(tl_layer, layer, stage, k).

    ``layer_weights`` is ``{L: {seed: {"weight", "bias"}}}``; the TL net of layer L uses the
    first seed.  Inputs are already normalised.
    """
    layers = list(range(1, model.depth + 1))
    k, sbb = activation_spectra(model, x_base, layers, batch_size=batch_size)
    _, sbt = activation_spectra(model, x_target, layers, batch_size=batch_size)
    tls = sorted(int(L) for L in layer_weights)
    tl = np.zeros((len(tls), len(layers), 2, len(k)))
    seeds = []
    for a, L in enumerate(tls):
        s0 = sorted(int(s) for s in layer_weights[L])[0]
        seeds.append(s0)
        p = layer_weights[L][s0]
        m = with_layer(model, L, p["weight"], p.get("bias"))
        _, tl[a] = activation_spectra(m, x_target, layers, batch_size=batch_size)
    one = {"units": "1"}
    ds = xr.Dataset(
        {
            "spectrum": (("case", "layer", "stage", "k"), np.stack([sbb, sbt]),
                         {"long_name": "power spectrum of the layer's activations, mean over channels and samples",
                          **one}),
            "tl_on_target": (("tl_layer", "layer", "stage", "k"), tl,
                             {"long_name": "activation power spectrum of the TL network (re-trained layer tl_layer, "
                                           "first seed) on target data", **one}),
            "tl_seed": (("tl_layer",), np.asarray(seeds, np.int64), {"long_name": "TL seed used", **one}),
        },
        coords={
            "case": ("case", ["base_on_base", "base_on_target"], {"long_name": "network and data"}),
            "layer": ("layer", np.asarray(layers), {"long_name": "layer (1-based)", **one}),
            "stage": ("stage", ["pre", "post"], {"long_name": "before / after the activation function"}),
            "k": ("k", k, {"long_name": "wavenumber magnitude (shell)", **one}),
            "tl_layer": ("tl_layer", np.asarray(tls, np.int64), {"long_name": "re-trained layer (1-based)", **one}),
        },
        attrs={"n_base_samples": int(x_base.shape[0]), "n_target_samples": int(x_target.shape[0]),
               "spectrum_convention": "shell-summed, Parseval-normalised (turbtl.spectra.power_spectrum)"},
    )
    return ds
