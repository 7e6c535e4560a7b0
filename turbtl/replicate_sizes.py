"""The size study (``transfer.fractions``) pooled over replicates: does the best layer at a
small-set size, and each predictor's choice there, survive new DNS trajectories, a new base
network and new draws?

    snakemake --cores 2 --config replicate=1 'transfer={fractions: [0.02, 0.05, 0.3]}'
    python -m turbtl.replicates default default-rep1 default-rep2 --sizes-only --page NAME

One replicate's size study is :mod:`turbtl.sizes` (``sizes.json``, ``sizes.csv``); this module
pools those files exactly as :mod:`turbtl.replicates` pools the main sweep, per (target, size)
instead of per target:

- the relative error of layer L at size n in replicate r is the seed-mean TL nMSE at n
  (``sizes.csv``) over replicate r's zero-shot nMSE (``sizes.json``; the zero-shot error does
  not depend on the size), and :func:`turbtl.pooling.pool_layers` gives the pooled best with
  its interval and the paired test over replicates against the runner-up;
- the **main size's pooled best** at every other size: its mean relative error there, the
  regret (the share of that size's pooled TL gain it loses) and whether it is a hit (the
  size's pooled best, or not worse by the paired test over replicates): does "the best layer"
  found with the main small set hold with less or more data, over replicates;
- per predictor, from each replicate's per-size scores (``sizes.json``'s ``predictors``, each
  against that replicate's own sweep at that size): hits and mean regret with its interval
  over the (target, replicate) pairs of each size, over all sizes, and over the
  (target, size, replicate) cells where TL gains at least the threshold at that size in that
  replicate; and every pick.

Decided here: only sizes every replicate ran are pooled (keyed by the number of snapshots;
one config gives every replicate the same sizes), and only targets whose ``sizes.json`` is
current in every replicate (:func:`turbtl.report_studies._current`: newer than the sweep's
runs and the main size's prediction); others are named as left out.  Without a size study in
every replicate there is nothing to pool and the tables are left out.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import paths as P
from .io import read_json
from .pooling import fmt_p, pool_layers, score
from .report_cells import _fmt, baseline_diff, baseline_head, baseline_methods
from .report_studies import _current
from .verdict import ALPHA, hit, interval, paired_test, regret

__all__ = ["load_sizes", "pool_sizes", "render_sizes"]


def load_sizes(root, targets) -> dict:
    """Per target of ``targets`` whose ``sizes.json`` is current under ``root``: the size study's
    main size and per size its fraction, the relative error of every layer, the verdict, the TL
    gain and the predictors' scores (where the run had them)."""
    root = Path(root)
    out = {}
    for t in targets:
        if not _current(root, t, P.SIZES_SUMMARY, also=(P.PREDICTION,)):
            continue
        s = read_json(root / P.SIZES_SUMMARY.format(target=t))
        zs = s.get("zero_shot")
        if not zs or not float(zs) > 0:
            continue
        csv = pd.read_csv(root / P.SIZES_CSV.format(target=t))
        sizes = {}
        for z in s["sizes"]:
            n = int(z["n_small"])
            rows = csv[csv["n_small"] == n]
            sizes[n] = {"fraction": float(z["fraction"]), "main": bool(z["main"]),
                        "rel": {int(L): float(m) / float(zs) for L, m in zip(rows["layer"], rows["mean"])},
                        "best": int(z["best_layer"]), "resolved": bool(z["resolved"]), "p": z.get("p_value"),
                        "gain": z.get("tl_gain"),
                        "baselines": {m: b["rel_zero_shot"] for m, b in (z.get("baselines") or {}).items()
                                      if b.get("rel_zero_shot") is not None},
                        "predictors": {name: {"choice": int(c["choice"]), "hit": bool(c["hit"]),
                                              "regret": c["regret"]}
                                       for name, c in (z.get("predictors") or {}).items()}}
        out[t] = {"main_n": int(s["main_n_small"]), "sizes": sizes}
    return out


def pool_sizes(replicates: list[dict], targets: list[str], alpha: float = ALPHA,
               gain_threshold: float = 0.05) -> dict:
    """The pooled size study of :func:`turbtl.replicates.load_replicate` results (their
    ``sizes``) over ``targets`` (those the main sweep pools); ``{}`` if no target has a size
    study in every replicate."""
    have = [t for t in targets if all(t in r.get("sizes", {}) for r in replicates)]
    if not have:
        return {}
    ns = sorted(set.intersection(*(set(r["sizes"][t]["sizes"]) for r in replicates for t in have)))
    first = replicates[0]["sizes"][have[0]]
    main_n = first["main_n"]
    out = {"sizes": ns, "fractions": {n: first["sizes"][n]["fraction"] for n in ns}, "main_n": main_n,
           "left_out": [t for t in targets if t not in have], "alpha": alpha, "gain_threshold": gain_threshold,
           "cells": {}, "predictors": {}}
    for t in have:
        out["cells"][t] = {}
        for n in ns:
            cells = [r["sizes"][t]["sizes"][n] for r in replicates]
            v = pool_layers([c["rel"] for c in cells], [c["best"] for c in cells],
                            [c["resolved"] for c in cells], [c["p"] for c in cells], alpha)
            v["gain"] = 1.0 - v["layers"][v["best"]]["mean"]
            v["baselines"] = {}
            best = pd.Series(v["layers"][v["best"]]["per_replicate"])
            for m in ("finetune_all", "scratch"):  # on each replicate's draws, against the pooled best
                if all(m in c["baselines"] for c in cells):
                    rel = pd.Series([c["baselines"][m] for c in cells])
                    mean, _, lo, hi = interval(rel.to_numpy())
                    test = paired_test(best, rel)
                    sig = test["p"] is not None and test["p"] < alpha
                    v["baselines"][m] = {"mean": mean, "lo": lo, "hi": hi, "per_replicate": rel.tolist(),
                                         "best_minus_baseline": test["diff"], "p": test["p"],
                                         "tl_better": bool(sig and test["diff"] < 0),
                                         "baseline_better": bool(sig and test["diff"] > 0)}
            out["cells"][t][n] = v
        if main_n in ns:  # the main size's pooled best, judged at every size
            mb = out["cells"][t][main_n]["best"]
            for n in ns:
                v = out["cells"][t][n]
                if mb not in v["layers"]:
                    continue
                lay = v["layers"]
                test = paired_test(pd.Series(lay[mb]["per_replicate"]), pd.Series(lay[v["best"]]["per_replicate"])) \
                    if mb != v["best"] else {"p": None}
                v["main_best"] = {"layer": mb, "mean": lay[mb]["mean"], "p": test["p"],
                                  "regret": regret(lay[mb]["mean"], lay[v["best"]]["mean"], 1.0),
                                  "hit": hit(mb, v["best"], test, alpha)}
    cells = [(t, n, r["sizes"][t]["sizes"][n]) for t in have for n in ns for r in replicates]
    names = [name for name in first["sizes"][ns[0]]["predictors"] if all(name in c["predictors"] for *_, c in cells)]
    for name in names:
        rows = [(t, n, c["gain"], c["predictors"][name]) for t, n, c in cells]
        out["predictors"][name] = {
            **score([x for *_, x in rows]),
            "per_size": {n: score([x for _, m, _, x in rows if m == n]) for n in ns},
            "gain": score([x for _, _, g, x in rows if g is not None and g >= gain_threshold]),
            "picks": {t: {n: [x["choice"] for u, m, _, x in rows if (u, m) == (t, n)] for n in ns} for t in have},
            "hit_picks": {t: {n: sum(x["hit"] for u, m, _, x in rows if (u, m) == (t, n)) for n in ns} for t in have},
        }
    return out


def _size_label(pooled: dict, n: int) -> str:
    return f"{n} ({pooled['fractions'][n]:.3g}){' main' if n == pooled['main_n'] else ''}"


def _render_baselines(pooled: dict) -> list[str]:
    """The small-set baselines at every size against the pooled best layer, over replicates."""
    methods = baseline_methods(v["baselines"] for by_n in pooled["cells"].values() for v in by_n.values())
    if not methods:
        return []
    out = ["", "**Baselines at every small-set size over replicates** (relative error, nMSE / zero shot's: mean and "
           "95% t-interval over replicates; the pooled best layer minus the baseline, paired over replicates):", "",
           *baseline_head("pooled best: relative error", "relative error", "best minus", methods)]
    for t, by_n in pooled["cells"].items():
        for n, v in by_n.items():
            row = []
            for m in methods:
                b = v["baselines"][m]
                row += [f"{_fmt(b['mean'])} [{_fmt(b['lo'])}, {_fmt(b['hi'])}]", baseline_diff(b, m, fmt_p(b["p"]))]
            out.append(f"| {t} | {n}{' main' if n == pooled['main_n'] else ''} | {v['best']}: "
                       f"{_fmt(v['layers'][v['best']]['mean'])} | " + " | ".join(row) + " |")
    return out


def render_sizes(pooled: dict, n_replicates: int) -> list[str]:
    """Markdown lines of :func:`pool_sizes` (none if it is empty)."""
    if not pooled:
        return []
    R, ns, alpha = n_replicates, pooled["sizes"], pooled["alpha"]
    out = ["", f"**Small-set sizes over replicates** (`transfer.fractions`; per target and size: each replicate's "
           f"own best layer, * resolved within it at p < {alpha}; the pooled best by the mean over replicates of "
           "the relative error, TL nMSE at that size over zero-shot nMSE, 95% t-interval over replicates, tested "
           "against the runner-up over replicates, paired; the pooled TL gain is 1 minus the pooled best's mean "
           "relative error; the main size's pooled best judged at each size: regret (hit), the hit by the paired "
           "test over replicates):", "",
           "| target | small set (fraction) | best per replicate | same in all | pooled best | its relative error | "
           "runner-up | its relative error | p (replicates) | pooled TL gain | main size's pooled best: regret (hit) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t, by_n in pooled["cells"].items():
        for n, v in by_n.items():
            per = ", ".join(f"{b}{'*' if ok else ''}" for b, ok in zip(v["replicate_best"], v["replicate_resolved"]))
            b, ru = v["layers"][v["best"]], v["layers"].get(v["runner_up"])
            ru_s = f"{_fmt(ru['mean'])} [{_fmt(ru['lo'])}, {_fmt(ru['hi'])}]" if ru else "n/a"
            mb = v.get("main_best")
            mb_s = f"{mb['layer']}: {_fmt(mb['regret'], 2)} ({'yes' if mb['hit'] else 'no'})" if mb else "n/a"
            out.append(f"| {t} | {_size_label(pooled, n)} | {per} | {'yes' if v['agree'] else 'no'} | {v['best']} | "
                       f"{_fmt(b['mean'])} [{_fmt(b['lo'])}, {_fmt(b['hi'])}] | {v['runner_up']} | {ru_s} | "
                       f"{fmt_p(v['p'])} | {_fmt(100 * v['gain'], 1)}% | {mb_s} |")
    out += _render_baselines(pooled)
    if pooled["left_out"]:
        out += ["", f"Left out of the size tables (no current size study in every replicate): "
                f"{', '.join(pooled['left_out'])}."]
    if not pooled["predictors"]:
        return out
    T = len(pooled["cells"])
    thr = pooled["gain_threshold"]
    out += ["", f"**Predictors at every small-set size over replicates** (each judged in each replicate against "
            f"that replicate's sweep at that size; hits out of the (target, replicate) pairs, {R} x {T} per size, "
            "and the mean regret with its 95% interval over them; the gain column takes only the (target, size, "
            f"replicate) cells where TL gains at least {thr:.0%} over zero shot at that size in that replicate):",
            "", f"| predictor | hits (all sizes) | mean regret | hits, gain >= {thr:.0%} | mean regret there | "
            + " | ".join(_size_label(pooled, n) for n in ns) + " |", "|---|---|---|---|---|" + "---|" * len(ns)]
    for name, v in pooled["predictors"].items():
        g = v["gain"]
        cells = " | ".join(f"{v['per_size'][n]['hits']}/{v['per_size'][n]['n']}, {_fmt(v['per_size'][n]['mean_regret'], 2)}"
                           for n in ns)
        out.append(f"| {name} | {v['hits']}/{v['n']} | {_fmt(v['mean_regret'])} [{_fmt(v['regret_lo'])}, "
                   f"{_fmt(v['regret_hi'])}] | {g['hits']}/{g['n']} | {_fmt(g['mean_regret'])} "
                   f"[{_fmt(g['regret_lo'])}, {_fmt(g['regret_hi'])}] | {cells} |")
    names = list(pooled["predictors"])
    out += ["", f"| target: small set | best per replicate | {' | '.join(names)} |", "|---|---|" + "---|" * len(names)]
    for t, by_n in pooled["cells"].items():
        for n, v in by_n.items():
            picks = [f"{', '.join(map(str, pooled['predictors'][m]['picks'][t][n]))} "
                     f"({pooled['predictors'][m]['hit_picks'][t][n]}/{R})" for m in names]
            out.append(f"| {t}: {n}{' main' if n == pooled['main_n'] else ''} | {', '.join(map(str, v['replicate_best']))} | "
                       + " | ".join(picks) + " |")
    out += ["", "Picks of each predictor, one per replicate (hits among them); the predictors' definitions are "
            "the main size's, unchanged at every size and in every replicate."]
    return out
