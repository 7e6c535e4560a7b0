"""Which layer to re-train, predicted BEFORE any re-training, and the check against the sweep.

Every score here uses only the base network, base data and the target's *small training
set* (the same data TL would get): never a TL run.  Higher score = predicted better to
re-train.  Layers are 1-based.

Predictors
----------
**spectral** (data-weighted activation-spectrum shift).  Data weights first: with
``P_f^b(k)``, ``P_f^t(k)`` the shell power spectra of the base and target data for the
fields f in {filtered psi, filtered omega, Pi} (``*_spectra.nc``), k = 1 .. n//2 - 1
(the mean k = 0 and the incomplete Nyquist shell are left out)::

    d(k) = (1/3) sum_f |log10 P_f^t(k) - log10 P_f^b(k)|,      w(k) = d(k) / sum_k d(k)

Every layer works on the LES grid (stride 1, no pooling), so the map from data
wavenumbers to a layer's wavenumbers is the identity.  Then, for each layer L, with
``S_{L,c}^b(k)`` / ``S_{L,c}^t(k)`` the sample-mean power spectrum of channel c of the
**pre-activation** output of layer L (the linear response of the kernels TL would change)
for base inputs / target inputs (normalised by the base normaliser)::

    D_L(k) = (1/C_L) sum_c |log10(S_{L,c}^t(k) + eps_{L,c}) - log10(S_{L,c}^b(k) + eps_{L,c})|
    score_spectral(L) = sum_k w(k) D_L(k)

with ``eps_{L,c} = 1e-12 * max_k max(S^b_{L,c}, S^t_{L,c}) + 1e-30`` (a floor for dead
channels).  It reads: how many decades, on average over channels, layer L's activation
spectra move between base and target inputs, at the wavenumbers where the two systems'
data differ most.

**gradient** (per-parameter RMS gradient).  ``g_L = || dLoss/d theta_L ||_2 / sqrt(n_L)``,
theta_L the weight and bias of layer L (the parameters TL re-trains), n_L their number,
Loss the MSE on normalised Pi over the whole small target set (what TL minimises), at the
base network.  Dividing by sqrt(n_L) turns the norm into an RMS gradient per parameter, so
that the 2-channel first layer and the 1-channel last layer are not penalised for having
fewer parameters.  The weight-norm-relative variant ``||grad||/||theta||`` is stored as
extra detail (``gradient_relative``), not as a predictor.

**deepest** (common ML wisdom): ``score(L) = L``.

Comparison with the sweep
-------------------------
Spearman rank correlation between a predictor's scores and the NEGATIVE empirical
per-layer mean test nmse (so +1 = the scores order the layers exactly as the sweep does),
its p-value, the predictor's choice (argmax score; ties go to the shallowest layer), the
empirical best (argmin mean nmse), and ``within_spread``:
``mean(choice) - mean(best) <= max(std(best), std(choice))`` (stds over seeds; a NaN std,
from a single seed, counts as 0).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy import stats

from .diagnostics import channel_spectra

__all__ = [
    "SPECTRA_FIELDS", "data_weights", "layer_spectral_shift", "spectral_scores",
    "gradient_scores", "deepest_scores", "choice", "predict_layers", "empirical_table", "compare",
    "SUMMARY_COLUMNS", "summary_rows", "evenly",
]

SPECTRA_FIELDS = ("P_psi", "P_omega", "P_pi")
_TINY = 1e-30


def data_weights(base_spectra: xr.Dataset, target_spectra: xr.Dataset, *,
                 fields=SPECTRA_FIELDS, kmin: int = 1, kmax: int | None = None):
    """Wavenumber weights w(k) from the base/target data spectra (module doc).

    Returns ``(k, w, d)`` with k the integer shells 0..n//2 of the LES grid, w zero outside
    [kmin, kmax] (kmax defaults to n//2 - 1) and summing to 1, d the raw mean |log10 ratio|.
    """
    b = base_spectra[list(fields)]
    t = target_spectra[list(fields)]
    b, t = xr.align(b, t, join="inner")
    k = b["k_les"].values.astype(np.float64)
    nyq = int(k.max())
    kmax = nyq - 1 if kmax is None else kmax
    d = np.zeros_like(k)
    for f in fields:
        bv = np.asarray(b[f].values, np.float64)
        tv = np.asarray(t[f].values, np.float64)
        d += np.abs(np.log10(tv + _TINY) - np.log10(bv + _TINY))
    d /= len(fields)
    sel = (k >= kmin) & (k <= kmax)
    w = np.where(sel, d, 0.0)
    tot = w.sum()
    w = w / tot if tot > 0 else np.where(sel, 1.0 / max(sel.sum(), 1), 0.0)
    return k, w, d


def layer_spectral_shift(s_base: np.ndarray, s_target: np.ndarray) -> np.ndarray:
    """D(k) = channel-mean |log10 S_t - log10 S_b| for per-channel spectra (C, nk)."""
    sb = np.asarray(s_base, np.float64)
    st = np.asarray(s_target, np.float64)
    eps = 1e-12 * np.maximum(sb.max(axis=-1, keepdims=True), st.max(axis=-1, keepdims=True)) + _TINY
    return np.abs(np.log10(st + eps) - np.log10(sb + eps)).mean(axis=0)


def spectral_scores(model, x_base: torch.Tensor, x_target: torch.Tensor, weights: np.ndarray,
                    layers, *, batch_size: int = 8, stage: str = "pre"):
    """score(L) = sum_k w(k) D_L(k) (module doc).  Returns (scores {L: s}, shifts {L: D_L(k)})."""
    layers = [int(L) for L in layers]
    cb = channel_spectra(model, x_base, layers, batch_size=batch_size)
    ct = channel_spectra(model, x_target, layers, batch_size=batch_size)
    w = np.asarray(weights, np.float64)
    scores, shifts = {}, {}
    for L in layers:
        dL = layer_spectral_shift(cb[L][stage], ct[L][stage])
        if dL.shape != w.shape:
            raise ValueError(f"layer {L}: activation spectra have {dL.shape[0]} shells, data weights {w.shape[0]}; "
                             "base and target must share the LES grid")
        shifts[L] = dL
        scores[L] = float(np.sum(w * dL))
    return scores, shifts


def gradient_scores(model, x_target: torch.Tensor, y_target: torch.Tensor, layers, *,
                    batch_size: int = 16):
    """Per-parameter RMS gradient of the target MSE loss at the base network (module doc).

    The loss is the mean over all samples and grid points; mini-batches are accumulated
    with weights B_i / N so the gradient is that of the full-set loss.  Returns
    ``(scores {L: ||g||/sqrt(n)}, relative {L: ||g||/||theta||})``.  The model's
    parameters and ``requires_grad`` flags are left as they were.
    """
    layers = [int(L) for L in layers]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    dev = params[0].device
    dtype = params[0].dtype
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for p in params:
        p.requires_grad_(True)
    n = x_target.shape[0]
    try:
        for i in range(0, n, batch_size):
            xb = x_target[i:i + batch_size].to(dev, dtype)
            yb = y_target[i:i + batch_size].to(dev, dtype)
            loss = torch.mean((model(xb) - yb) ** 2) * (xb.shape[0] / n)
            loss.backward()
        scores, rel = {}, {}
        for L in layers:
            ps = model.layer_parameters(L)
            g2 = sum(float((p.grad.double() ** 2).sum()) for p in ps)
            w2 = sum(float((p.detach().double() ** 2).sum()) for p in ps)
            npar = sum(p.numel() for p in ps)
            scores[L] = math.sqrt(g2) / math.sqrt(npar)
            rel[L] = math.sqrt(g2) / math.sqrt(w2) if w2 > 0 else float("inf")
    finally:
        model.zero_grad(set_to_none=True)
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        model.train(was_training)
    return scores, rel


def deepest_scores(layers) -> dict:
    return {int(L): float(L) for L in layers}


def choice(scores: dict) -> int:
    """argmax of the scores; ties go to the shallowest layer; NaN scores never win."""
    items = sorted((int(L), float(s)) for L, s in scores.items())
    best = None
    for L, s in items:
        if math.isnan(s):
            continue
        if best is None or s > best[1]:
            best = (L, s)
    if best is None:
        raise ValueError("every score is NaN: no choice possible")
    return best[0]


def predict_layers(model, x_base, x_target, y_target, base_spectra, target_spectra, layers, *,
                   batch_size: int = 8, inputs=()) -> dict:
    """All predictors in the ``prediction.json`` format (docs/DESIGN.md)."""
    layers = [int(L) for L in layers]
    k, w, d = data_weights(base_spectra, target_spectra)
    spec, shifts = spectral_scores(model, x_base, x_target, w, layers, batch_size=batch_size)
    grad, rel = gradient_scores(model, x_target, y_target, layers, batch_size=batch_size)
    deep = deepest_scores(layers)

    def entry(s):
        return {"scores": {str(L): v for L, v in s.items()}, "choice": choice(s)}

    return {
        "predictors": {"spectral": entry(spec), "gradient": entry(grad), "deepest": entry(deep)},
        "inputs": [str(p) for p in inputs],
        "details": {
            "k": k.tolist(),
            "data_weight": w.tolist(),
            # only the weighted shells: k = 0 of zero-mean fields is round-off, Nyquist incomplete
            "data_log_ratio": [float(v) if wv > 0 else None for v, wv in zip(d, w)],
            "activation_shift": {str(L): v.tolist() for L, v in shifts.items()},
            "gradient_relative": {str(L): v for L, v in rel.items()},
            "n_base_samples": int(x_base.shape[0]),
            "n_target_samples": int(x_target.shape[0]),
            "spectral_stage": "pre",
            "gradient_normalisation": "sqrt(number of parameters of the layer, weight + bias)",
        },
    }


def empirical_table(sweep_df: pd.DataFrame, summary: dict | None = None, metric: str = "nmse") -> pd.DataFrame:
    """Per-layer mean and std (over seeds) of the TL test metric, indexed by layer.

    Uses the sweep summary's per-layer numbers where it has them (so that the spread is the
    one the sweep used to call a best layer), else computes them from the sweep rows
    (``method == 'tl_layer'``; sample std, ddof=1).
    """
    rows = sweep_df[sweep_df["method"] == "tl_layer"] if "method" in sweep_df else sweep_df
    g = rows.groupby("layer")[metric]
    tab = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.size()})
    if summary and metric == summary.get("metric", "nmse") and summary.get("layers"):
        for L, v in summary["layers"].items():
            for col in ("mean", "std"):
                if v.get(col) is not None:
                    tab.loc[int(L), col] = float(v[col])
    tab.index = tab.index.astype(int)
    return tab.sort_index()


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def compare(prediction: dict, sweep_df: pd.DataFrame, summary: dict | None = None) -> dict:
    """Each predictor against the empirical sweep (module doc).  ``comparison.json`` format."""
    tab = empirical_table(sweep_df, summary)
    best = int(tab["mean"].idxmin())
    out = {"target": (summary or {}).get("target"), "metric": "nmse", "empirical_best": best,
           "significant_best": bool((summary or {}).get("significant", False)),
           "empirical": {str(L): {"mean": _finite_or_none(r["mean"]), "std": _finite_or_none(r["std"])}
                         for L, r in tab.iterrows()},
           "predictors": {}}
    for name, pred in prediction["predictors"].items():
        scores = {int(L): float(s) for L, s in pred["scores"].items()}
        common = [L for L in tab.index if L in scores]
        sc = np.array([scores[L] for L in common])
        neg = -tab.loc[common, "mean"].to_numpy()
        if len(common) >= 2 and np.ptp(sc) > 0 and np.ptp(neg) > 0:
            res = stats.spearmanr(sc, neg)
            rho, p = float(res.statistic), float(res.pvalue)
        else:
            rho, p = float("nan"), float("nan")
        ch = int(pred.get("choice", choice(scores)))
        if ch in tab.index:
            sd_b = tab.loc[best, "std"]
            sd_c = tab.loc[ch, "std"]
            sd_b = 0.0 if not math.isfinite(sd_b) else float(sd_b)
            sd_c = 0.0 if not math.isfinite(sd_c) else float(sd_c)
            gap = float(tab.loc[ch, "mean"] - tab.loc[best, "mean"])
            within = bool(gap <= max(sd_b, sd_c))
            rank = int((tab["mean"] < tab.loc[ch, "mean"]).sum()) + 1
        else:  # the predictor chose a layer the sweep did not run
            gap, within, rank = float("nan"), False, None
        out["predictors"][name] = {
            "spearman": _finite_or_none(rho), "p_value": _finite_or_none(p), "n_layers": len(common),
            "choice": ch, "empirical_best": best, "within_spread": within,
            "gap": _finite_or_none(gap), "choice_rank": rank,
        }
    return out


SUMMARY_COLUMNS = ["target", "predictor", "predicted_layer", "empirical_best", "within_spread",
                   "spearman", "p_value", "significant_best"]


def summary_rows(target: str, comparison: dict, sweep_summary: dict | None = None) -> list[dict]:
    """Rows of ``summary.csv`` (columns :data:`SUMMARY_COLUMNS`) for one target."""
    sig = (sweep_summary or {}).get("significant", comparison.get("significant_best", False))
    rows = []
    for name, c in comparison["predictors"].items():
        rows.append({"target": target, "predictor": name, "predicted_layer": int(c["choice"]),
                     "empirical_best": int(c["empirical_best"]), "within_spread": bool(c["within_spread"]),
                     "spearman": c["spearman"] if c["spearman"] is not None else float("nan"),
                     "p_value": c["p_value"] if c["p_value"] is not None else float("nan"),
                     "significant_best": bool(sig)})
    return rows


def evenly(a, m: int):
    """``m`` evenly spaced samples of ``a`` along axis 0 (all of it if it has no more than m)."""
    n = len(a)
    if m is None or m >= n:
        return a
    idx = np.unique(np.linspace(0, n - 1, int(m)).round().astype(np.int64))
    return a[idx]
