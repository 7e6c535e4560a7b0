"""A target's sweep in two files: ``sweep.csv`` (every run's row) and ``summary.json`` (per
layer and baseline the statistics over seeds, the best layer and its verdict).  Kept apart
from :mod:`turbtl.transfer` so that the job that writes them (``sweep_summary``) does not
import torch."""
from __future__ import annotations

import pandas as pd

from . import TurbtlError
from .io import write_csv, write_json
from .verdict import ALPHA, best_layer, layer_stats

__all__ = ["CSV_COLUMNS", "summarise"]

#: the columns of every TL and baseline run's table (docs/DESIGN.md)
CSV_COLUMNS = ["target", "method", "layer", "seed", "n_train", "epochs", "mse", "nmse", "cc",
               "spec_err", "seconds"]


def summarise(layer_csvs, baseline_csvs, target: str, out_csv, out_json, *,
              alpha: float = ALPHA) -> dict:
    """sweep.csv (all rows) and summary.json (docs/DESIGN.md).

    Metric: test ``nmse``.  Per layer and per baseline (``turbtl.verdict.layer_stats``): mean,
    sample std, 95% t-interval over seeds, min, max.  ``best_layer``: lowest mean;
    ``runner_up``: second lowest; ``margin`` = mean(runner_up) - mean(best); ``p_value``: the
    paired two-sided t-test of runner-up minus best over seeds; ``resolved`` = p < alpha.
    With a single layer or a single seed there is no test: p null, resolved false.
    """
    frames = [pd.read_csv(p) for p in list(layer_csvs) + list(baseline_csvs)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CSV_COLUMNS)
    df = df[CSV_COLUMNS].sort_values(["method", "layer", "seed"], kind="stable")
    tl = df[df["method"] == "tl_layer"]
    layers = {str(int(L)): layer_stats(g) for L, g in tl.groupby("layer")}
    baselines = {str(m): layer_stats(g) for m, g in df[df["method"] != "tl_layer"].groupby("method")}
    if not layers:
        raise TurbtlError(f"no per-layer TL results for {target}; fix: transfer.layers must "
                          "name at least one layer")
    v = best_layer(tl, alpha)
    out = {"target": target, "metric": "nmse", "layers": layers, "baselines": baselines,
           "best_layer": v["best_layer"], "runner_up": v["runner_up"], "margin": v["margin"],
           "p_value": v["p_value"], "resolved": v["resolved"], "alpha": float(alpha),
           "n_seeds": int(tl["seed"].nunique()), "test": v["test"]}
    write_csv(df, out_csv)
    write_json(out, out_json)
    return out
