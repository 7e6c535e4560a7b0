"""The size study (``transfer.fractions``, off by default): the single-layer sweep again at
other sizes of the small target set.

The science brief's question: is "the best layer" a property of the flow pair, or does it
move with the amount of target data (the follow-up study's unpublished runs hint that at 2%
a middle layer beats the shallowest one)?  Each extra size ``n`` re-trains every swept layer
with :func:`turbtl.transfer.run_layer_job` exactly as the main sweep does: the same seeds, the
same epochs, batch size and learning rate, each seed on its own draw of ``n`` snapshots
(``draw_seed``), so that a size's rows are the rows the main sweep would give with
``transfer.fraction`` set to that size (``tests/test_workflow.py`` checks it at the main
size).  Decided here:

- the epochs stay ``transfer.epochs`` at every size, as a user who changes
  ``transfer.fraction`` gets; a smaller set then also takes fewer optimiser steps, which is
  part of what having less data means in this protocol (the TL gain's fall at small sizes
  mixes both);
- draws of different sizes are independent (a draw of 6 is not a subset of the draw of 18):
  layers are paired within a size, not across sizes, so sizes are compared by their verdicts;
- only the sweep: no baselines but zero shot (which needs no data), no predictors, no
  a-posteriori LES, no pairs at the extra sizes; the main size keeps all of them.

``summarise_sizes`` writes per target ``sizes.csv`` (per size and layer: the nmse statistics
over seeds) and ``sizes.json`` (per size: the verdict of :func:`turbtl.verdict.best_layer`,
the TL gain, and the regret and hit of the main size's best layer and of the shallowest
layer at that size); the figure is :func:`turbtl.plots.sizes`.
"""
from __future__ import annotations

import pandas as pd

from . import TurbtlError
from .io import write_csv, write_json
from .verdict import ALPHA, best_layer, hit, layer_stats, paired_test, per_seed, regret

__all__ = ["summarise_sizes", "SIZE_COLUMNS"]

#: ``sizes.csv``: one row per (size, layer)
SIZE_COLUMNS = ["n_small", "fraction", "main", "layer", "mean", "std", "ci95_low", "ci95_high", "min", "max", "n",
                "cc_mean", "cc_std", "spec_err_mean"]


def _choice(tl: pd.DataFrame, layer: int, best: int, means: dict, zero_shot: float | None, alpha: float) -> dict:
    """Regret and hit of re-training ``layer`` at one size, against that size's ``best`` (``means``: the
    size's seed-mean nmse per layer; no test of the best against itself: p None)."""
    t = paired_test(per_seed(tl, layer), per_seed(tl, best)) if layer != best else {"p": None}
    return {"layer": int(layer), "regret": regret(means[layer], means[best], zero_shot),
            "hit": hit(layer, best, t, alpha), "p_value": t["p"]}


def summarise_sizes(layer_csvs: dict, fractions: dict, main_n: int, zero_shot_csv, target: str, out_csv, out_json,
                    *, alpha: float = ALPHA) -> dict:
    """``sizes.csv`` and ``sizes.json`` of one target.

    ``layer_csvs``: ``{n_small: [runs/layer{L}.csv, ...]}`` (the main size's are the sweep's);
    ``fractions``: ``{n_small: fraction}``; ``main_n``: the size of ``transfer.fraction``;
    ``zero_shot_csv``: the sweep's ``baseline_zero_shot.csv`` (the base net needs no data).
    """
    if set(layer_csvs) != set(fractions) or main_n not in layer_csvs:
        raise TurbtlError(f"{target}: the size study's runs ({sorted(layer_csvs)}) do not match its sizes "
                          f"({sorted(fractions)}, main {main_n})")
    zs = pd.read_csv(zero_shot_csv)["nmse"]
    zero_shot = float(zs.mean()) if len(zs) else None
    tls = {}
    for n, csvs in layer_csvs.items():
        df = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
        df = df[df["method"] == "tl_layer"]
        bad = sorted(set(df["n_train"]) - {int(n)})
        if bad:
            raise TurbtlError(f"{target}: runs of size {n} re-trained on {bad} snapshots; fix: delete "
                              f"results/transfer/{target}/ of that size and rerun")
        tls[int(n)] = df
    verdicts = {n: best_layer(tl, alpha) for n, tl in tls.items()}
    main_best = verdicts[main_n]["best_layer"]
    rows, sizes = [], []
    for n in sorted(tls):
        tl, verdict = tls[n], verdicts[n]
        best = verdict["best_layer"]
        stats = {int(L): layer_stats(g) for L, g in tl.groupby("layer")}
        rows += [{"n_small": n, "fraction": float(fractions[n]), "main": n == main_n, "layer": L, **st}
                 for L, st in stats.items()]
        means = {int(L): float(m) for L, m in tl.groupby("layer")["nmse"].mean().items()}
        sizes.append({"n_small": n, "fraction": float(fractions[n]), "main": n == main_n, **verdict,
                      "best_stats": stats[best],
                      "tl_gain": None if not zero_shot else (zero_shot - means[best]) / zero_shot,
                      "main_best": _choice(tl, main_best, best, means, zero_shot, alpha),
                      "shallowest": _choice(tl, min(stats), best, means, zero_shot, alpha),
                      "n_seeds": int(tl["seed"].nunique())})
    out = {"target": target, "metric": "nmse", "alpha": float(alpha), "zero_shot": zero_shot, "main_n_small": int(main_n),
           "main_best_layer": int(main_best), "best_layers": [s["best_layer"] for s in sizes],
           "same_best_layer": len({s["best_layer"] for s in sizes}) == 1,
           "main_best_hit_everywhere": all(s["main_best"]["hit"] for s in sizes), "sizes": sizes}
    write_csv(pd.DataFrame(rows, columns=SIZE_COLUMNS), out_csv)
    write_json(out, out_json)
    return out
