"""Table cells of the results pages (:mod:`turbtl.report`, :mod:`turbtl.report_studies`,
:mod:`turbtl.replicates`): numbers with ``n/a`` for missing ones, a predictor's regret row, and
the head and difference cell of the small-set baselines' tables (one run's and the replicates')."""
from __future__ import annotations

import math

__all__ = ["_fmt", "_regret_cells", "baseline_methods", "baseline_head", "baseline_diff"]


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


def baseline_methods(records) -> list[str]:
    """The small-set baselines (in table order) that every record, a size's ``baselines`` dict, holds."""
    records = list(records)
    return [m for m in ("finetune_all", "scratch") if records and all(m in r for r in records)]


def baseline_head(best: str, value: str, minus: str, methods) -> list[str]:
    """Header and rule of a baselines table: per method its ``value`` and ``minus`` it (p)."""
    return ["| target | small set | " + best + " | "
            + " | ".join(f"{m}: {value} | {minus} {m} (p)" for m in methods) + " |",
            "|---|---|---|" + "---|---|" * len(methods)]


def baseline_diff(b: dict, m: str, p_text: str) -> str:
    """``best minus baseline (p)`` and which side the paired test resolves, if it does."""
    mark = " TL better" if b["tl_better"] else (f" {m} better" if b["baseline_better"] else "")
    return f"{_fmt(b['best_minus_baseline'], 4)} ({p_text}){mark}"
