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
- the baselines that depend on the small set (``scratch`` and ``finetune_all``, where
  ``transfer.baselines`` enables them) run at every size on the same draws as that size's
  layers (``transfer_baseline_size``), so that "does re-training one layer beat re-training
  everything, or training from scratch, with this little data?" is a paired test over seeds
  at each size; zero shot needs no data and full target all of it, so neither depends on
  the size; no a-posteriori LES and no pairs at the extra sizes (the main size keeps them);
- the predictors run at every size as they are defined (``predict_size``: the predict job's
  script, on the first seed's draw of ``n`` snapshots, the one small set a user with ``n``
  snapshots would have), and are scored against that size's sweep by
  :func:`turbtl.verdict.compare`, the function that scores them at the main size: the
  question "which layer, decided before re-training?" asked again with less (or more) data.
  Nothing of a predictor is changed per size.

``summarise_sizes`` writes per target ``sizes.csv`` (per size and layer: the nmse statistics
over seeds), ``sizes.json`` (per size: the verdict of :func:`turbtl.verdict.best_layer`,
the TL gain, the regret and hit of the main size's best layer and of the shallowest layer
at that size, each baseline's nmse against the best layer there, and each predictor's
choice, regret and hit there) and
``size_predictors.csv`` (one row per size and predictor); the figure is
:func:`turbtl.plots.sizes`.
"""
from __future__ import annotations

import pandas as pd

from . import TurbtlError
from .io import read_json, write_csv, write_json
from .verdict import ALPHA, best_layer, compare, hit, layer_stats, paired_test, per_seed, regret

__all__ = ["summarise_sizes", "SIZE_COLUMNS", "SIZE_PREDICTOR_COLUMNS"]

#: ``sizes.csv``: one row per (size, layer)
SIZE_COLUMNS = ["n_small", "fraction", "main", "layer", "mean", "std", "ci95_low", "ci95_high", "min", "max", "n",
                "cc_mean", "cc_std", "spec_err_mean"]
#: ``size_predictors.csv``: one row per (size, predictor), as :func:`turbtl.verdict.compare` scores it
SIZE_PREDICTOR_COLUMNS = ["n_small", "fraction", "main", "predictor", "choice", "best_layer", "resolved", "hit",
                          "regret", "p_value", "spearman", "seconds", "cost_fraction"]


def _choice(tl: pd.DataFrame, layer: int, best: int, means: dict, zero_shot: float | None, alpha: float) -> dict:
    """Regret and hit of re-training ``layer`` at one size, against that size's ``best`` (``means``: the
    size's seed-mean nmse per layer; no test of the best against itself: p None)."""
    t = paired_test(per_seed(tl, layer), per_seed(tl, best)) if layer != best else {"p": None}
    return {"layer": int(layer), "regret": regret(means[layer], means[best], zero_shot),
            "hit": hit(layer, best, t, alpha), "p_value": t["p"]}


def _baseline_row(rows: pd.DataFrame, tl: pd.DataFrame, best: int, zero_shot: float | None, alpha: float) -> dict:
    """One small-set baseline at one size against that size's best layer: its statistics over
    seeds, its nmse over zero shot's, and the paired test over seeds (the same draws) of the best
    layer minus the baseline; ``tl_better``/``baseline_better``: significant at ``alpha``."""
    t = paired_test(per_seed(tl, best), rows.groupby("seed")["nmse"].mean())
    sig = t["p"] is not None and t["p"] < alpha
    st = layer_stats(rows)
    return {**{k: st[k] for k in ("mean", "ci95_low", "ci95_high", "n")},
            "rel_zero_shot": None if not zero_shot else st["mean"] / zero_shot,
            "best_minus_baseline": t["diff"], "p_value": t["p"],
            "tl_better": bool(sig and t["diff"] < 0), "baseline_better": bool(sig and t["diff"] > 0)}


def _predictor_rows(prediction: dict, tl: pd.DataFrame, zero_shot_rows: pd.DataFrame, alpha: float,
                    target: str) -> dict:
    """Each predictor of ``prediction`` (``prediction.json`` at one size) against that size's
    sweep ``tl``: :func:`turbtl.verdict.compare`'s entry, the cost against that size's sweep."""
    res = compare(prediction, pd.concat([tl, zero_shot_rows], ignore_index=True), alpha=alpha, target=target)
    keep = ("choice", "hit", "regret", "p_value", "spearman", "seconds", "cost_fraction")
    return {name: {k: c[k] for k in keep} for name, c in res["predictors"].items()}


def summarise_sizes(layer_csvs: dict, fractions: dict, main_n: int, zero_shot_csv, target: str, out_csv, out_json,
                    *, predictions: dict | None = None, out_predictors_csv=None, baselines: dict | None = None,
                    alpha: float = ALPHA) -> dict:
    """``sizes.csv`` and ``sizes.json`` of one target, and ``size_predictors.csv`` with ``predictions``.

    ``layer_csvs``: ``{n_small: [runs/layer{L}.csv, ...]}`` (the main size's are the sweep's);
    ``fractions``: ``{n_small: fraction}``; ``main_n``: the size of ``transfer.fraction``;
    ``zero_shot_csv``: the sweep's ``baseline_zero_shot.csv`` (the base net needs no data);
    ``predictions``: ``{n_small: prediction.json path}`` (the main size's is the predict job's),
    each read from a small set of that size (its ``details.n_target_samples``, checked);
    ``baselines``: ``{n_small: [baseline_{method}.csv, ...]}`` of the small-set baselines (the
    main size's are the sweep's), each re-trained on that many snapshots (checked).
    """
    if set(layer_csvs) != set(fractions) or main_n not in layer_csvs:
        raise TurbtlError(f"{target}: the size study's runs ({sorted(layer_csvs)}) do not match its sizes "
                          f"({sorted(fractions)}, main {main_n})")
    if predictions is not None and out_predictors_csv is None:
        raise ValueError("summarise_sizes: predictions need out_predictors_csv, the table of their scores")
    if predictions is not None and set(predictions) != set(fractions):
        raise TurbtlError(f"{target}: the size study's predictions ({sorted(predictions)}) do not match its sizes "
                          f"({sorted(fractions)})")
    zs_rows = pd.read_csv(zero_shot_csv)
    zs_rows = zs_rows[zs_rows["method"] == "zero_shot"]
    zero_shot = float(zs_rows["nmse"].mean()) if len(zs_rows) else None
    preds = {}
    for n, path in (predictions or {}).items():
        pred = read_json(path)
        seen = pred.get("details", {}).get("n_target_samples")
        if seen != int(n):
            raise TurbtlError(f"{target}: the prediction {path} read a small set of {seen} snapshots, not {n}; fix: "
                              "delete it and rerun")
        preds[int(n)] = pred
    tls = {}
    for n, csvs in layer_csvs.items():
        df = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
        df = df[df["method"] == "tl_layer"]
        bad = sorted(set(df["n_train"]) - {int(n)})
        if bad:
            raise TurbtlError(f"{target}: runs of size {n} re-trained on {bad} snapshots; fix: delete "
                              f"results/transfer/{target}/ of that size and rerun")
        tls[int(n)] = df
    bls = {}
    for n, csvs in (baselines or {}).items():
        if int(n) not in tls:
            raise TurbtlError(f"{target}: baselines of size {n}, which the size study does not run ({sorted(tls)})")
        df = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True) if csvs else pd.DataFrame(columns=["method"])
        bad = sorted(set(df["n_train"]) - {int(n)}) if len(df) else []
        if bad:
            raise TurbtlError(f"{target}: baselines of size {n} trained on {bad} snapshots; fix: delete "
                              f"results/transfer/{target}/sizes/n{n}/baseline_*.csv (or, at the main size, "
                              "runs/baseline_*.csv) and rerun")
        bls[int(n)] = {str(m): g for m, g in df.groupby("method")}
    verdicts = {n: best_layer(tl, alpha) for n, tl in tls.items()}
    main_best = verdicts[main_n]["best_layer"]
    rows, sizes, prows = [], [], []
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
        if n in bls:
            sizes[-1]["baselines"] = {m: _baseline_row(g, tl, best, zero_shot, alpha) for m, g in bls[n].items()}
        if preds:
            sizes[-1]["predictors"] = _predictor_rows(preds[n], tl, zs_rows, alpha, target)
            prows += [{"n_small": n, "fraction": float(fractions[n]), "main": n == main_n, "predictor": name,
                       "best_layer": best, "resolved": verdict["resolved"], **c}
                      for name, c in sizes[-1]["predictors"].items()]
    out = {"target": target, "metric": "nmse", "alpha": float(alpha), "zero_shot": zero_shot, "main_n_small": int(main_n),
           "main_best_layer": int(main_best), "best_layers": [s["best_layer"] for s in sizes],
           "same_best_layer": len({s["best_layer"] for s in sizes}) == 1,
           "main_best_hit_everywhere": all(s["main_best"]["hit"] for s in sizes), "sizes": sizes}
    if preds:  # per predictor: at how many sizes its choice is a hit
        out["predictor_hits"] = {name: sum(bool(s["predictors"][name]["hit"]) for s in sizes)
                                 for name in sizes[0]["predictors"]}
        write_csv(pd.DataFrame(prows, columns=SIZE_PREDICTOR_COLUMNS), out_predictors_csv)
    write_csv(pd.DataFrame(rows, columns=SIZE_COLUMNS), out_csv)
    write_json(out, out_json)
    return out
