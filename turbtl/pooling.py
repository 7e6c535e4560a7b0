"""Pooling over replicates, shared by the sweep's and the size study's tables
(:mod:`turbtl.replicates`, :mod:`turbtl.replicate_sizes`): the pooled best layer of one
(target[, size]) and a predictor's score over (target, replicate) pairs."""
from __future__ import annotations

import pandas as pd

from .verdict import ALPHA, interval, paired_test

__all__ = ["pool_layers", "score", "fmt_p"]


def pool_layers(rels: list[dict], bests: list[int], resolved: list[bool], ps: list, alpha: float = ALPHA) -> dict:
    """The pooled verdict of one cell from R replicates: ``rels[r]`` maps each layer to replicate
    r's relative error (seed-mean TL nMSE over its zero-shot nMSE), ``bests``/``resolved``/``ps``
    are each replicate's own verdict.  Per layer (those every replicate swept) the mean over
    replicates with its 95% t-interval; the pooled best (lowest mean, ties to the shallower) and
    the paired two-sided t-test over replicates against the runner-up."""
    idx = pd.RangeIndex(len(rels))
    layers = sorted(set.intersection(*(set(r) for r in rels)))
    rel = {L: pd.Series([r[L] for r in rels], index=idx) for L in layers}
    stats = {L: interval(v.to_numpy()) for L, v in rel.items()}
    ranked = sorted(layers, key=lambda L: (stats[L][0], L))
    best = ranked[0]
    test = paired_test(rel[ranked[1]], rel[best]) if len(ranked) > 1 else {"p": None, "diff": None}
    return {
        "layers": {L: {"mean": stats[L][0], "lo": stats[L][2], "hi": stats[L][3],
                       "per_replicate": rel[L].tolist(), "times_best": list(bests).count(L)} for L in layers},
        "best": best, "runner_up": ranked[1] if len(ranked) > 1 else None, "p": test["p"],
        "resolved": bool(test["p"] is not None and test["p"] < alpha),
        "replicate_best": list(bests), "replicate_resolved": list(resolved), "replicate_p": list(ps),
        "agree": len(set(bests)) == 1,
    }


def score(rows: list[dict]) -> dict:
    """Hits out of the (target, replicate) pairs and the mean regret with its 95% interval over
    them (nan where no pair has a regret)."""
    m, _, lo, hi = interval([x["regret"] for x in rows if x["regret"] is not None])
    return {"hits": sum(bool(x["hit"]) for x in rows), "n": len(rows), "mean_regret": m, "regret_lo": lo,
            "regret_hi": hi}


def fmt_p(x) -> str:
    if x is None:
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"
