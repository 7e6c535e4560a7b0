"""Pairs of layers (``transfer.pairs``, off by default): layers a < b re-trained together.

The same re-training as a single layer (:func:`turbtl.transfer.retrain_layer` with a tuple:
two layers free at once, the cached prefix ending before a), on the same seeds and the same
paired draws of the small target set, for every pair of ``transfer.layers`` (55 at depth 11).
The question: does a pair beat the best single layer by more than the seed-to-seed spread?
``run_pair_job`` is one pair's job, ``summarise_pairs`` the verdict of a target; the figure is
:func:`turbtl.plots.pairs`.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from . import TurbtlError
from .io import write_csv, write_json
from .transfer import retrain_every_seed
from .verdict import ALPHA, best_layer, layer_stats, paired_test, per_seed

__all__ = ["PAIR_COLUMNS", "run_pair_job", "summarise_pairs"]

_log = logging.getLogger("turbtl.pairs")

#: a pair's rows (``runs/pair{a}_{b}.csv``): the layer column split in two
PAIR_COLUMNS = ["target", "method", "layer_a", "layer_b", "seed", "n_train", "epochs", "mse", "nmse", "cc",
                "spec_err", "seconds"]


def run_pair_job(model_path, data_path, a: int, b: int, out_csv, *, transfer_cfg: dict, n_small: int, device,
                 log=None) -> pd.DataFrame:
    """Re-train layers ``a`` < ``b`` together for every seed, on the draws of
    :func:`turbtl.transfer.run_layer_job` (paired with the single layers); the networks are not kept (no
    closure or diagnostic reads them)."""
    a, b = int(a), int(b)
    if not a < b:
        raise TurbtlError(f"a pair of layers needs a < b, got {a}, {b}")
    rows = []
    for target, seed, n_train, m, secs, _ in retrain_every_seed(
            model_path, data_path, (a, b), transfer_cfg=transfer_cfg, n_small=n_small, device=device, log=log or _log):
        rows.append({"target": target, "method": "tl_pair", "layer_a": a, "layer_b": b, "seed": int(seed),
                     "n_train": int(n_train), "epochs": int(transfer_cfg["epochs"]),
                     **{k: m[k] for k in ("mse", "nmse", "cc", "spec_err")}, "seconds": float(secs)})
    return write_csv(pd.DataFrame(rows, columns=PAIR_COLUMNS), out_csv)


def summarise_pairs(pair_csvs, layer_csvs, target: str, out_csv, out_json, *, alpha: float = ALPHA) -> dict:
    """``pairs.csv`` and ``pairs.json`` of ``transfer.pairs``.

    ``pairs.csv``: one row per pair a < b and per single layer (a = b, from the sweep's layer
    runs), with the test-nmse statistics over seeds (:func:`turbtl.verdict.layer_stats`).
    ``pairs.json``: the best pair (lowest mean), the best single layer, and the paired test
    over seeds of the best single layer against the best pair (``diff`` > 0: the pair is
    better); ``pair_beats_single`` when that difference is positive with p < alpha.
    """
    pairs = pd.concat([pd.read_csv(p) for p in pair_csvs], ignore_index=True) if pair_csvs else None
    singles = pd.concat([pd.read_csv(p) for p in layer_csvs], ignore_index=True)
    singles = singles[singles["method"] == "tl_layer"]
    if pairs is None or pairs.empty:
        raise TurbtlError(f"no pair runs for {target}; fix: transfer.pairs needs at least two layers in "
                          "transfer.layers")
    rows = [{"layer_a": int(a), "layer_b": int(b), **layer_stats(g)} for (a, b), g in pairs.groupby(["layer_a", "layer_b"])]
    rows += [{"layer_a": int(L), "layer_b": int(L), **layer_stats(g)} for L, g in singles.groupby("layer")]
    table = pd.DataFrame(rows).sort_values(["layer_a", "layer_b"], kind="stable")
    means = pairs.groupby(["layer_a", "layer_b"])["nmse"].mean()
    finite = [ab for ab in means.index if np.isfinite(means[ab])]
    if not finite:
        raise TurbtlError(f"every pair run of {target} has a non-finite test nmse; fix: check the pair jobs' logs")
    a, b = min(finite, key=lambda ab: (float(means[ab]), ab))
    best_rows = pairs[(pairs["layer_a"] == a) & (pairs["layer_b"] == b)]
    single = best_layer(singles, alpha)["best_layer"]
    t = paired_test(per_seed(singles, single), best_rows.groupby("seed")["nmse"].mean())
    out = {"target": target, "metric": "nmse", "best_pair": [int(a), int(b)],
           "best_pair_stats": layer_stats(best_rows),
           "best_single": int(single), "best_single_stats": layer_stats(singles[singles["layer"] == single]),
           "diff_single_minus_pair": t["diff"], "p_value": t["p"], "test": t["test"], "alpha": float(alpha),
           "pair_beats_single": bool(t["diff"] is not None and t["diff"] > 0 and t["p"] is not None and t["p"] < alpha),
           "n_pairs": int(len(means)), "n_seeds": int(pairs["seed"].nunique())}
    write_csv(table, out_csv)
    write_json(out, out_json)
    return out
