"""Which layer to re-train, predicted BEFORE any re-training, and the check against the sweep.

Every score here uses only the base network, base data and the target's *small training
set* (the same data TL would get): never a TL run.  Higher score = predicted better to
re-train.  Layers are 1-based.

Predictors
----------
**spectral** (data-weighted activation-spectrum shift).  Data weights first: with
``P_f^b(k)``, ``P_f^t(k)`` the sample-mean shell power spectra of the base data (its
training members) and of the target's small set for the fields f in {filtered psi,
filtered omega, Pi} (:func:`data_spectra`), k = 1 .. n//2 - 1 (the mean k = 0 and the
incomplete Nyquist shell are left out)::

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

**gradient** (the loss one gradient step on layer L can remove).  With ``ell`` the MSE on
normalised Pi over the whole small target set (what TL minimises) at the base network,
``g_L`` its gradient w.r.t. layer L's weight and bias (the parameters TL re-trains) and
``H_L = (2/M) J_L^T J_L`` the Gauss-Newton curvature of ``ell`` in those parameters (M the
number of terms of the mean, J_L the Jacobian of the output)::

    score(L) = (g_L . g_L)^2 / (2 g_L^T H_L g_L) / ell

the share of the loss removed by the best step along ``-g_L`` in the linearised model
(``g^T H g`` needs one forward-mode Jacobian-vector product per layer).  It is invariant to
a rescaling of the layer's Jacobian.  Until issue 8 the gradient predictor was the
per-parameter RMS ``||g_L|| / sqrt(n_L)``; that one grows with the Jacobian's scale, which
grows towards the output, and on a constructed case (a base net with one layer perturbed,
target = the unperturbed net's output) it pointed at a deeper layer in 4 of 5 tries, where
this score pointed at the perturbed layer in 6 of 7 (tests/test_predict.py).  The RMS and
``||g|| / ||theta||`` are kept in ``details`` (``gradient_rms``, ``gradient_relative``).
The definition was fixed on that constructed case, before the predictor study ran.

**deepest** (common ML wisdom): ``score(L) = L``.  **shallowest** (the other naive rule,
and the study's empirical finding): ``score(L) = -L``.

**marginal** (where the mismatch *enters*, not where it is largest).  The spectral shift
``D_L`` above is cumulative: whatever mismatch enters at layer 2 is carried to every later
layer, so it grows with depth by construction.  The marginal predictor scores the
increment that layer L's own kernels add::

    M_L = sum_k w(k) D_L^pre(k) - sum_k w(k) D_{L-1}^post(k)

with ``D^pre``/``D^post`` the channel-mean |log10| shift (as above) of the pre-activation
output of L and of the post-activation output of L-1 (its input), and ``D_0^post`` the shift
of the normalised network input (psi, omega).  Choice: the layer with the largest increment.

**framework** (the study's framework, as far as its text specifies it).  What the text says
(Subel et al. 2023, abstract and significance statement; Darman et al. 2025, abstract): the
framework *combines spectral analyses of the systems' data with spectral analyses of the
network's kernels and activations* and names the best layer(s) before re-training; TL learns
filters *consistent with the spectral differences of base and target data*; the base net
under-estimates out-of-distribution activation spectra as they pass through the network.
The steps and the decision rule were not readable (only abstracts were reachable), so the
following is turbtl's choice, fixed before the predictor study was run: a layer is a good
place to re-train where (1) the systems' data differ (``w(k)``), (2) the layer's INPUT
already carries that difference (the activation shift ``D_{L-1}^post(k)``, D_0 the network
input), and (3) the layer's kernels can act on those wavenumbers (the radial RMS kernel
transfer magnitude ``R_L(k)`` over all (out, in) kernels of layer L, normalised to max 1)::

    score_framework(L) = sum_k w(k) R_L(k) D_{L-1}^post(k) / sum_k w(k) R_L(k)

i.e. the kernel-weighted mean input mismatch of layer L at the wavenumbers where the systems
differ.

**probe** (a short re-training, priced).  The predictors' small set is split at random into
a fit part and a held-out part (``predict.probe_holdout``, default 1/3, at least one
snapshot each).  Every layer is re-trained alone (``transfer.retrain_layer``, same batch
size and lr as TL, one seed) for ``predict.probe_epochs`` epochs on the fit part, and::

    score_probe(L) = -(held-out MSE of normalised Pi after the probe)

It never reads the target's validation or test members.  Its cost is the sweep's times
``probe_epochs (1 - holdout) / (seeds x epochs)`` plus the prefix and evaluation passes
(5 seeds x 50 epochs and 10 probe epochs: about 3%); ``prediction.json`` records the
measured seconds.  On a set of a few snapshots a step costs about the same whatever the
batch holds (per-call overheads dominate), so the ratio is then that of the steps,
``probe_epochs ceil(n_fit / b) / (seeds x epochs ceil(n / b))``: 4% at 4 snapshots.

Data: every predictor reads the small set of the FIRST TL seed's draw
(``transfer.predictor_draw``): the one small set a user would have.  Until 2026-11-29 the data
weights came from the filter's ``{system}_spectra.nc``, which sums over every member of a
flow, the target's validation and test members included: the spectral, marginal and
framework predictors then saw data that TL never gets and that the sweep is scored on.  They
now come from the small set itself (and the base's training members).

Cost: each predictor's ``seconds`` in ``prediction.json`` is the wall time of everything it
needs (shared work, e.g. the activation spectra, is counted for each predictor that uses
it), measured on the predict job's device and threads.  The one-off import that the first
optimiser of a process does (``training.preload_optimiser``, about 1-2 s) is done before any
timer, here and in the TL and baseline jobs, as job start-up; until 2026-12-07 the probe and
the first seed of every layer job paid it inside their seconds.

Comparison with the sweep (``compare``; statistics in ``turbtl.verdict``)
------------------------------------------------------------------------
Per predictor: its choice (argmax score; ties go to the shallowest layer), the empirical
best (argmin of the seed-mean test nmse), ``regret`` (the share of the TL gain lost by the
choice), ``hit`` (the choice is not significantly worse than the best: paired two-sided
t-test over seeds, p >= alpha), the paired test's p-value, Spearman rank correlation of the
scores with the NEGATIVE per-layer mean test nmse (secondary; +1 = the exact order), and
the cost: ``seconds`` and ``cost_fraction`` = seconds / the sweep's total re-training time
(the ``seconds`` of every ``tl_layer`` row).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import xarray as xr

from .diagnostics import channel_spectra, kernel_shell_stats
from .gradient_predictor import gradient_scores
from .probe import probe_scores, probe_split
from .spectra import power_spectrum
from .training import preload_optimiser

__all__ = [
    "SPECTRA_FIELDS", "PREDICTORS", "data_spectra", "data_weights", "layer_spectral_shift", "spectral_scores",
    "marginal_scores", "framework_scores", "gradient_scores", "probe_scores", "deepest_scores",
    "shallowest_scores", "choice", "predict_layers", "evenly", "probe_split",
]

SPECTRA_FIELDS = ("P_psi", "P_omega", "P_pi")
#: every predictor, in the order of the tables and figures
PREDICTORS = ("spectral", "marginal", "framework", "gradient", "probe", "deepest", "shallowest")
_TINY = 1e-30


def data_spectra(x, y) -> xr.Dataset:
    """Sample-mean shell power spectra ``P_psi``, ``P_omega``, ``P_pi`` (coordinate ``k_les``)
    of raw (not normalised) samples ``x`` (S, 2, n, n) = (psi, omega) and ``y`` (S, 1, n, n) =
    Pi, as the filter job's ``*_spectra.nc`` gives them over a whole flow."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    k, p_psi = power_spectrum(x[:, 0])
    return xr.Dataset({"P_psi": ("k_les", p_psi), "P_omega": ("k_les", power_spectrum(x[:, 1])[1]),
                       "P_pi": ("k_les", power_spectrum(y[:, 0])[1])}, coords={"k_les": k.astype(np.int64)})


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


def _shifts(model, x_base, x_target, layers, batch_size):
    """Channel-mean shifts per layer and stage, plus the network input's: {(L, stage): D(k)}."""
    cb = channel_spectra(model, x_base, layers, batch_size=batch_size)
    ct = channel_spectra(model, x_target, layers, batch_size=batch_size)
    out = {}
    for L in layers:
        for st in ("pre", "post"):
            out[(L, st)] = layer_spectral_shift(cb[L][st], ct[L][st])
    _, pb = power_spectrum(x_base, average=False)  # converts tensors itself (arrays.as_float64_numpy)
    _, pt = power_spectrum(x_target, average=False)
    out[(0, "post")] = layer_spectral_shift(pb.mean(axis=0), pt.mean(axis=0))
    return out


def _check_shells(d, w, L):
    if d.shape != w.shape:
        raise ValueError(f"layer {L}: activation spectra have {d.shape[0]} shells, data weights "
                         f"{w.shape[0]}; base and target must share the LES grid")


def spectral_scores(model, x_base: torch.Tensor, x_target: torch.Tensor, weights: np.ndarray,
                    layers, *, batch_size: int = 8, stage: str = "pre", shifts=None):
    """score(L) = sum_k w(k) D_L(k) (module doc).  Returns (scores {L: s}, shifts {L: D_L(k)})."""
    layers = [int(L) for L in layers]
    sh = shifts if shifts is not None else _shifts(model, x_base, x_target, layers, batch_size)
    w = np.asarray(weights, np.float64)
    scores, out = {}, {}
    for L in layers:
        dL = sh[(L, stage)]
        _check_shells(dL, w, L)
        out[L] = dL
        scores[L] = float(np.sum(w * dL))
    return scores, out


def _input_shift(sh, L):
    """Shift of the input of layer L: post-activation of L-1 (the network input for L = 1)."""
    key = (L - 1, "post")
    if key not in sh:
        raise ValueError(f"layer {L}: the shift of its input (layer {L - 1}) was not computed; "
                         "the marginal and framework predictors need every layer")
    return sh[key]


def marginal_scores(weights, layers, shifts) -> dict:
    """M_L = sum_k w D_L^pre - sum_k w D_{L-1}^post (module doc)."""
    w = np.asarray(weights, np.float64)
    return {int(L): float(np.sum(w * shifts[(int(L), "pre")]) - np.sum(w * _input_shift(shifts, int(L))))
            for L in layers}


def framework_scores(model, weights, layers, shifts) -> dict:
    """sum_k w R_L D_{L-1}^post / sum_k w R_L, R_L the layer's kernel magnitude (module doc)."""
    w = np.asarray(weights, np.float64)
    n = 2 * (len(w) - 1)
    out = {}
    for L in layers:
        L = int(L)
        r = np.sqrt(kernel_shell_stats(model.layer(L).weight, n)[1])  # shell-RMS |K|, (out, in, nk)
        r = np.sqrt((r ** 2).reshape(-1, r.shape[-1]).mean(axis=0))
        r = r / r.max() if r.max() > 0 else r
        d = _input_shift(shifts, L)
        _check_shells(d, w, L)
        den = float(np.sum(w * r))
        out[L] = float(np.sum(w * r * d) / den) if den > 0 else 0.0
    return out


def deepest_scores(layers) -> dict:
    return {int(L): float(L) for L in layers}


def shallowest_scores(layers) -> dict:
    return {int(L): -float(L) for L in layers}


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
                   batch_size: int = 8, probe: dict | None = None, device=None, inputs=()) -> dict:
    """All predictors in the ``prediction.json`` format (docs/DESIGN.md), each with its cost.

    ``x_*``, ``y_target`` are normalised.  ``probe``: ``{"epochs", "holdout", "lr",
    "batch_size", "seed"}``; epochs 0 (or None) leaves the probe out.  The marginal and
    framework predictors need the activation spectra of EVERY layer up to the deepest scored
    one; they are computed for ``1..max(layers)`` and only ``layers`` are scored.
    """
    layers = sorted(int(L) for L in layers)
    device = device if device is not None else next(model.parameters()).device
    run_probe = bool(probe) and int(probe.get("epochs") or 0) > 0
    if run_probe:
        preload_optimiser(device=device)  # the job's start-up, not the probe's cost (its doc)
    t0 = time.perf_counter()
    k, w, d = data_weights(base_spectra, target_spectra)
    t_w = time.perf_counter() - t0
    t0 = time.perf_counter()
    shifts = _shifts(model, x_base, x_target, list(range(1, max(layers) + 1)), batch_size)
    t_act = time.perf_counter() - t0
    timed = {}

    def run(name, fn, shared=0.0):
        t = time.perf_counter()
        res = fn()
        timed[name] = (res, time.perf_counter() - t + shared)
        return res

    spec, spec_shift = run("spectral", lambda: spectral_scores(model, x_base, x_target, w, layers,
                                                                shifts=shifts), t_w + t_act)
    run("marginal", lambda: marginal_scores(w, layers, shifts), t_w + t_act)
    run("framework", lambda: framework_scores(model, w, layers, shifts), t_w + t_act)
    _, rel, rms = run("gradient", lambda: gradient_scores(model, x_target, y_target, layers,
                                                           batch_size=batch_size))
    probe_details = None
    if run_probe:
        _, probe_details = run("probe", lambda: probe_scores(
            model, x_target, y_target, layers, epochs=int(probe["epochs"]),
            batch_size=int(probe["batch_size"]), lr=float(probe["lr"]),
            holdout=float(probe["holdout"]), seed=int(probe.get("seed", 0)), device=device))
    run("deepest", lambda: deepest_scores(layers))
    run("shallowest", lambda: shallowest_scores(layers))
    preds = {}
    for name in PREDICTORS:
        if name not in timed:
            continue
        res, secs = timed[name]
        sc = res[0] if isinstance(res, tuple) else res
        preds[name] = {"scores": {str(L): float(v) for L, v in sc.items()}, "choice": choice(sc),
                       "seconds": float(secs)}
    return {
        "predictors": preds,
        "inputs": [str(p) for p in inputs],
        "details": {
            "k": k.tolist(),
            "data_weight": w.tolist(),
            # only the weighted shells: k = 0 of zero-mean fields is round-off, Nyquist incomplete
            "data_log_ratio": [float(v) if wv > 0 else None for v, wv in zip(d, w)],
            "activation_shift": {str(L): v.tolist() for L, v in spec_shift.items()},
            "input_shift": shifts[(0, "post")].tolist(),
            "gradient_relative": {str(L): v for L, v in rel.items()},
            "gradient_rms": {str(L): v for L, v in rms.items()},
            "probe": probe_details,
            "n_base_samples": int(x_base.shape[0]),
            "n_target_samples": int(x_target.shape[0]),
            "spectral_stage": "pre",
            "seconds_shared": {"data_weights": t_w, "activation_spectra": t_act},
        },
    }


def evenly(a, m: int):
    """``m`` evenly spaced samples of ``a`` along axis 0 (all of it if it has no more than m)."""
    n = len(a)
    if m is None or m >= n:
        return a
    idx = np.unique(np.linspace(0, n - 1, int(m)).round().astype(np.int64))
    return a[idx]
