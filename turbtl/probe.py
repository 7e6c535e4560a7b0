"""The probe predictor: every layer re-trained briefly on part of the small set, scored on the rest.

Definition, cost and the reasons are in the module doc of :mod:`turbtl.predict`.  It lives
here because it is the one predictor that trains (it calls ``transfer.retrain_layer``).
"""
from __future__ import annotations

import numpy as np
import torch

from .data import Normaliser, draw_indices
from .transfer import retrain_layer

__all__ = ["probe_split", "probe_scores"]


def probe_split(n: int, holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) indices of the small set: a random ``holdout`` share, >= 1 each."""
    if n < 2:
        raise ValueError(f"the probe needs a small set of at least 2 snapshots, got {n}; "
                         "fix: raise transfer.fraction or set predict.probe_epochs: 0")
    n_hold = min(n - 1, max(1, int(round(float(holdout) * n))))
    hold = draw_indices(n, n_hold, seed)
    fit = np.setdiff1d(np.arange(n), hold)
    return fit, hold


def probe_scores(model, x_target: torch.Tensor, y_target: torch.Tensor, layers, *, epochs: int,
                 batch_size: int, lr: float, holdout: float, seed: int = 0, device="cpu") -> tuple[dict, dict]:
    """-(held-out MSE) after re-training each layer briefly on the fit part (module doc).

    ``x_target``, ``y_target`` are NORMALISED.  Returns ``(scores, details)``; details hold
    the split sizes and the held-out MSE of the base network (no re-training).
    """
    layers = [int(L) for L in layers]
    fit, hold = probe_split(x_target.shape[0], holdout, seed)
    c = int(x_target.shape[1])
    ident = Normaliser(np.zeros(c), np.ones(c), np.zeros(1), np.ones(1))
    xf, yf = x_target[fit], y_target[fit]
    xh, yh = x_target[hold].to(device), y_target[hold].to(device)

    def held_out_mse(m):
        with torch.no_grad():
            return float(torch.mean((m(xh) - yh) ** 2))

    scores = {}
    for L in layers:
        m, _ = retrain_layer(model, L, xf, yf, ident, epochs=int(epochs), batch_size=int(batch_size),
                             lr=float(lr), seed=int(seed), device=device)
        scores[L] = -held_out_mse(m)
    details = {"n_fit": int(len(fit)), "n_holdout": int(len(hold)), "epochs": int(epochs),
               "holdout_mse_base": held_out_mse(model)}
    return scores, details
