"""Table cells of the README blocks (:mod:`turbtl.report`, :mod:`turbtl.report_studies`,
:mod:`turbtl.replicates`): numbers with ``n/a`` for missing ones, and a predictor's regret row."""
from __future__ import annotations

import math

__all__ = ["_fmt", "_regret_cells"]


def _fmt(x, nd=3):
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.{nd}f}"


def _regret_cells(r) -> str:
    """``| predictor | hit rate (k/n) | mean regret | worst regret |`` of an aggregate row."""
    hits = int(round(r["hit_rate"] * r["n_targets"]))
    return (f"| {r['predictor']} | {r['hit_rate']:.0%} ({hits}/{int(r['n_targets'])}) | "
            f"{_fmt(r['mean_regret'], 2)} | {_fmt(r['worst_regret'], 2)} |")
