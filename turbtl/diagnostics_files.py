"""The diagnostics' netCDF datasets: what ``rule base_kernels``, ``tl_kernels``, ``activations``
and ``system_spectra`` write (formats in docs/DESIGN.md).  The maths is in
:mod:`turbtl.diagnostics`; this module only arranges its results as CF-style xarray datasets.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from . import kernel_clusters as KC
from .diagnostics import (
    ANISOTROPY_THRESHOLD,
    HIGH_PASS_FRACTION,
    LABELS,
    activation_spectra,
    fftshift_k,
    label_counts,
    layer_kernel_summary,
    tl_changes,
)

__all__ = ["SYSTEM_FIELDS", "system_spectra", "with_layer", "base_kernels_dataset", "centroids_of", "tl_kernels_dataset",
           "activations_dataset"]


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


def _centroid_coords(clusters: int, pad: int) -> dict:
    kc = fftshift_k(pad)
    return {"cluster": ("cluster", np.arange(clusters), {"long_name": "k-means kernel cluster "
                                                             "(0: lowest spectral centre of mass)", "units": "1"}),
            "ky_pad": ("ky_pad", kc, {"long_name": "wavenumber y of the padded kernel (centred)", "units": "1"}),
            "kx_pad": ("kx_pad", kc, {"long_name": "wavenumber x of the padded kernel (centred)", "units": "1"})}


def _centroid_var(centroids: np.ndarray):
    return (("cluster", "ky_pad", "kx_pad"), np.fft.fftshift(centroids, axes=(-2, -1)),
            {"long_name": "cluster centroid: z-scored |FFT2| of the zero-padded kernel (centred)", "units": "1"})


def centroids_of(ds: xr.Dataset) -> np.ndarray:
    """The k-means centroids of a ``base_kernels.nc`` dataset in the full fft layout (the
    layout :func:`turbtl.kernel_clusters.assign` takes)."""
    return np.fft.ifftshift(ds["cluster_centroid"].values, axes=(-2, -1))


def base_kernels_dataset(model, n: int) -> xr.Dataset:
    """``base_kernels.nc``: labels, label counts, mean radial spectrum per layer; the k-means
    clusters of every kernel's spectrum (:mod:`turbtl.kernel_clusters`), their centroids,
    counts per layer and their mix of rule-based labels."""
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
    clu = np.full((depth, co, ci), -1, np.int8)
    fitted = KC.fit([w.detach() for w in ws])
    ccount = np.zeros((depth, KC.CLUSTERS), np.int64)
    start = 0
    for j, w in enumerate(ws):
        s = layer_kernel_summary(w, n)
        o, i = w.shape[:2]
        lab[j, :o, :i] = s["labels"]
        cnt[j] = s["counts"]
        rad[j] = s["radial"]
        pk[j, :o, :i] = s["peak_k"]
        an[j, :o, :i] = s["anisotropy"]
        clu[j, :o, :i] = fitted.labels[start:start + o * i].reshape(o, i)
        ccount[j] = fitted.counts(clu[j, :o, :i])
        start += o * i
    valid = lab >= 0
    mix = np.zeros((KC.CLUSTERS, len(LABELS)), np.int64)
    np.add.at(mix, (clu[valid], lab[valid]), 1)
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
            "kernel_cluster": (("layer", "out", "in"), clu, {"long_name": "k-means cluster of the kernel's z-scored spectrum",
                                                       "units": "1", "_FillValue": np.int8(-1)}),
            "cluster_count": (("layer", "cluster"), ccount, {"long_name": "number of kernels per cluster", "units": "1"}),
            "cluster_label_count": (("cluster", "label_code"), mix,
                                    {"long_name": "kernels per cluster and rule-based class", "units": "1"}),
            "cluster_centroid": _centroid_var(fitted.centroids),
        },
        coords={
            "layer": ("layer", np.arange(1, depth + 1), {"long_name": "layer (1-based)", "units": "1"}),
            "out": ("out", np.arange(co), {"long_name": "output channel", "units": "1"}),
            "in": ("in", np.arange(ci), {"long_name": "input channel", "units": "1"}),
            "label_code": ("label_code", np.arange(len(LABELS), dtype=np.int8),
                      {"long_name": "kernel class code", "units": "1", **_LABEL_ATTRS}),
            "k": ("k", np.arange(nk, dtype=np.float64), {"long_name": "wavenumber magnitude (shell)", "units": "1"}),
            **_centroid_coords(len(fitted.centroids), fitted.pad),
        },
        attrs={"n": int(n), "kernel_size": int(ws[0].shape[-1]),
               "clusters": KC.CLUSTERS, "cluster_pad": fitted.pad, "cluster_inertia": fitted.inertia,
               "cluster_purity": KC.purity(clu[valid], lab[valid]),
               "cluster_method": f"k-means (k-means++, best of {KC.RESTARTS} seeded restarts) on the z-scored |FFT2| "
                                 "of each kernel "
                                 "zero-padded to cluster_pad^2; clusters numbered by the centroid's spectral centre of "
                                 "mass; cluster_purity: share of kernels whose rule-based class is their cluster's "
                                 "commonest",
               "high_pass_fraction": HIGH_PASS_FRACTION, "anisotropy_threshold": ANISOTROPY_THRESHOLD,
               "labels": " ".join(LABELS),
               "classification": "peak shell k_p of the shell-RMS |K|: 0 -> low-pass; "
                                 ">= high_pass_fraction*(n//2) -> high-pass; else anisotropy > threshold -> "
                                 "gabor, otherwise band-pass"},
    )
    return ds


def tl_kernels_dataset(model, layer_weights: dict, n: int, *, percentile: float = 99.9,
                       max_kernels: int = 8, centroids: np.ndarray | None = None) -> xr.Dataset:
    """``tl_kernels.nc`` from the base model and ``{L: {seed: {"weight", "bias"}}}``.

    Per re-trained layer and seed: ``dw_norm``, ``dspec_norm`` (NaN-padded to the widest
    layer) and the percentile threshold; for the first seed (``spectra_seed``): the
    most-changed kernels' centred 2D spectra before/after, their labels, and the class
    counts of the layer's kernels before/after.  With ``centroids`` (the base network's k-means
    centroids, :func:`centroids_of`): the same for the clusters, every kernel assigned to its
    nearest base centroid (:func:`turbtl.kernel_clusters.assign`), and the centroids.
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
    ncl = 0 if centroids is None else len(centroids)
    kb, ka = np.zeros((nL, ncl), np.int64), np.zeros((nL, ncl), np.int64)
    top_cb = np.full((nL, max_kernels), -1, np.int8)
    top_ca = np.full((nL, max_kernels), -1, np.int8)
    for a, L in enumerate(tls):
        bw = model.layer(L).weight.detach()
        o, i = bw.shape[:2]
        have = [s for s in seeds if s in layer_weights[L]]
        changes = tl_changes(bw, [layer_weights[L][s]["weight"] for s in have], n, percentile=percentile,
                             max_kernels=max_kernels)
        for s, ch in zip(have, changes):
            b = seeds.index(s)
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
                rb[a] = ch["radial_before"].reshape(-1, nk).mean(0)
                ra[a] = ch["radial_after"].reshape(-1, nk).mean(0)
                if centroids is not None:
                    before = KC.assign(bw, centroids).reshape(o, i)
                    after = KC.assign(layer_weights[L][s]["weight"], centroids).reshape(o, i)
                    kb[a], ka[a] = KC.counts(before, ncl), KC.counts(after, ncl)
                    top_cb[a, :m] = before[ch["top_out"], ch["top_in"]]
                    top_ca[a, :m] = after[ch["top_out"], ch["top_in"]]
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
    if centroids is not None:
        ds = ds.assign_coords(_centroid_coords(ncl, np.asarray(centroids).shape[-1]))
        ds["cluster_count_before"] = (("tl_layer", "cluster"), kb,
                                      {"long_name": "kernels per base k-means cluster, base", **one})
        ds["cluster_count_after"] = (("tl_layer", "cluster"), ka,
                                     {"long_name": "kernels per base k-means cluster (nearest centroid), after TL", **one})
        ds["top_cluster_before"] = (("tl_layer", "rank"), top_cb,
                                    {"long_name": "cluster of the most-changed kernels, base", **one, "_FillValue": np.int8(-1)})
        ds["top_cluster_after"] = (("tl_layer", "rank"), top_ca,
                                   {"long_name": "cluster of the most-changed kernels, after TL", **one,
                                    "_FillValue": np.int8(-1)})
        ds["cluster_centroid"] = _centroid_var(np.asarray(centroids))
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
