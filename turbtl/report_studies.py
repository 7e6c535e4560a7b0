"""The results page's tables of the optional studies, where a run has them: pairs of layers
(``transfer.pairs``, ``pairs.json``) and small-set sizes (``transfer.fractions``,
``sizes.json``, the predictors at every size included).  A study's summary older than what it
compares with (:func:`_current`) is left out.  :func:`turbtl.report.build` puts them between
the predictors' tables and the a-posteriori ones."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import paths as P
from .io import read_json
from .report_cells import _fmt, _regret_cells, baseline_diff, baseline_head, baseline_methods
from .verdict import aggregate

__all__ = ["pairs_section", "sizes_section"]


def pairs_section(root: Path, targets: list[str]) -> list[str]:
    """The best pair of layers against the best single layer (``pairs.json``), if the run had
    ``transfer.pairs``."""
    pj = {t: read_json(root / P.PAIRS_SUMMARY.format(target=t)) for t in targets
          if _current(root, t, P.PAIRS_SUMMARY)}
    if not pj:
        return []
    out = ["", "**Pairs of layers** (`transfer.pairs`: every pair re-trained together on the same paired draws):",
           "", "| target | best single layer: nMSE | best pair: nMSE | single minus pair | paired p | pair better |",
           "|---|---|---|---|---|---|"]
    for t, s in pj.items():
        out.append(f"| {t} | {s['best_single']}: {_fmt(s['best_single_stats']['mean'])} | "
                   f"{'+'.join(map(str, s['best_pair']))}: {_fmt(s['best_pair_stats']['mean'])} | "
                   f"{_fmt(s['diff_single_minus_pair'], 4)} | {_fmt(s['p_value'], 3)} | "
                   f"{'yes' if s['pair_beats_single'] else 'no'} |")
    alphas = ", ".join(f"{a:g}" for a in sorted({float(s["alpha"]) for s in pj.values()}))
    n_pairs = next(iter(pj.values()))["n_pairs"]
    out += ["", f"Pair better: the best pair's nMSE is lower than the best single layer's in the paired two-sided "
            f"t-test over seeds at {alphas} (`transfer.alpha`); the pair is picked from {n_pairs} on the same "
            "data, so its p is optimistic."]
    return out


def sizes_section(root: Path, targets: list[str], alone: bool = False) -> list[str]:
    """The best layer at every small-set size (``sizes.json``), if the run had ``transfer.fractions``;
    ``alone``: without the sweep's tables before it (``--sizes-only``)."""
    sj = {t: read_json(root / P.SIZES_SUMMARY.format(target=t)) for t in targets
          if _current(root, t, P.SIZES_SUMMARY, also=(P.PREDICTION,))}
    if not sj:
        return []
    out = ["", "**Small-set sizes** (`transfer.fractions`: every single layer re-trained at each size, same seeds "
           "and epochs; the main size's rows are the sweep's" + (")" if alone else " above)") + ":", "",
           "| target | small set (fraction) | best layer | nMSE best [95% CI] | runner-up | paired p | resolved | "
           "TL gain | main size's best: regret (hit) | shallowest: regret (hit) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for t, s in sj.items():
        for z in s["sizes"]:
            b = z["best_stats"]
            out.append(f"| {t} | {z['n_small']} ({z['fraction']:.3g}){' main' if z['main'] else ''} | "
                       f"{z['best_layer']} | {_fmt(b['mean'])} [{_fmt(b['ci95_low'])}, {_fmt(b['ci95_high'])}] | "
                       f"{z['runner_up']} | {_fmt(z['p_value'], 3)} | {'yes' if z['resolved'] else 'no'} | "
                       f"{_fmt(None if z['tl_gain'] is None else 100 * z['tl_gain'], 1)}% | "
                       f"{s['main_best_layer']}: {_fmt(z['main_best']['regret'], 2)} "
                       f"({'yes' if z['main_best']['hit'] else 'no'}) | {z['shallowest']['layer']}: "
                       f"{_fmt(z['shallowest']['regret'], 2)} ({'yes' if z['shallowest']['hit'] else 'no'}) |")
    held = [t for t, s in sj.items() if s["main_best_hit_everywhere"]]
    alphas = ", ".join(f"{a:g}" for a in sorted({float(s["alpha"]) for s in sj.values()}))
    out += ["", "Regret at a size: the share of that size's TL gain lost by re-training the layer named (the main "
            "size's best, or the shallowest); hit: that layer is the size's best or not significantly worse (paired "
            f"two-sided t-test over seeds at {alphas}). The main size's best layer is a hit at every size on "
            f"{len(held)} of {len(sj)} target(s){' (' + ', '.join(held) + ')' if held else ''}. Draws of different "
            "sizes are independent, and the epochs are the same at every size (fewer optimiser steps on a "
            "smaller set)."]
    return out + _size_baselines_section(sj) + _size_predictors_section(sj, alone)


def _size_baselines_section(sj: dict) -> list[str]:
    """The small-set baselines at every size (``sizes.json``'s per-size ``baselines``, where the
    run has them) against that size's best single layer."""
    sj = {t: s for t, s in sj.items() if all(z.get("baselines") for z in s["sizes"])}
    if not sj:
        return []
    methods = baseline_methods(z["baselines"] for s in sj.values() for z in s["sizes"])
    if not methods:
        return []
    out = ["", "**Baselines at every small-set size** (on the same draws as that size's layers; nMSE / zero shot's, "
           "and the best layer minus the baseline, paired over seeds):", "",
           *baseline_head("best layer: nMSE / zero shot", "nMSE / zero shot", "best layer minus", methods)]
    for t, s in sj.items():
        zs = s.get("zero_shot")
        for z in s["sizes"]:
            cells = []
            for m in methods:
                b = z["baselines"][m]
                cells += [_fmt(b["rel_zero_shot"]), baseline_diff(b, m, _fmt(b["p_value"], 3))]
            best = None if not zs else z["best_stats"]["mean"] / zs
            out.append(f"| {t} | {z['n_small']}{' main' if z['main'] else ''} | {z['best_layer']}: {_fmt(best)} | "
                       + " | ".join(cells) + " |")
    out += ["", "TL better / baseline better: the paired two-sided t-test over seeds at `transfer.alpha` resolves the "
            "difference. The best layer is picked after the sweep, so its side of the test is optimistic; zero shot "
            "and full target do not depend on the size and are the sweep's."]
    return out


def _size_predictors_section(sj: dict, alone: bool = False) -> list[str]:
    """Each predictor at every small-set size (``sizes.json``'s per-size ``predictors``, where
    the run has them): hit rate and regret per size and over all, and every choice."""
    sj = {t: s for t, s in sj.items() if all("predictors" in z for z in s["sizes"])}
    if not sj:
        return []
    rows = [{"target": t, "n_small": z["n_small"], "predictor": name, "hit": c["hit"], "regret": c["regret"],
             "spearman": c["spearman"], "seconds": c["seconds"], "cost_fraction": c["cost_fraction"],
             "ap_hit": None, "ap_regret": None}
            for t, s in sj.items() for z in s["sizes"] for name, c in z["predictors"].items()]
    df = pd.DataFrame(rows)
    sizes = {z["n_small"]: z for s in sj.values() for z in s["sizes"]}  # one config: the same sizes everywhere
    ns = sorted(sizes)
    head = " | ".join(f"{n} ({sizes[n]['fraction']:.3g}){' main' if sizes[n]['main'] else ''}" for n in ns)
    out = ["", "**Predictors at every small-set size** (each predictor exactly as at the main size, on the first "
           "seed's draw of that many snapshots, scored against that size's sweep; per size, hits k/n and mean "
           "regret over the targets; cost: the predictor's time over its size's sweep's):", "",
           f"| predictor | hit rate (all sizes) | mean regret | worst regret | cost / sweep (mean, max) | {head} |",
           "|---|---|---|---|---|" + "---|" * len(ns)]
    per_n = {n: aggregate(df[df["n_small"] == n]).set_index("predictor") for n in ns}
    for _, r in aggregate(df).iterrows():
        cells = []
        for n in ns:
            a = per_n[n].loc[r["predictor"]]
            cells.append(f"{int(round(a['hit_rate'] * a['n_targets']))}/{int(a['n_targets'])}, "
                         f"{_fmt(a['mean_regret'], 2)}")
        cost = f"{_fmt(100 * r['mean_cost_fraction'], 2)}%, {_fmt(100 * r['max_cost_fraction'], 2)}%"
        out.append(_regret_cells(r) + f" {cost} | " + " | ".join(cells) + " |")
    names = list(dict.fromkeys(df["predictor"]))
    out += ["", f"| target: small set | best layer | {' | '.join(names)} |", "|---|---|" + "---|" * len(names)]
    for t, s in sj.items():
        for z in s["sizes"]:
            cells = [f"{c['choice']}{'' if c['hit'] else '*'} ({_fmt(c['regret'], 2)})"
                     for c in (z["predictors"][name] for name in names)]
            out.append(f"| {t}: {z['n_small']}{' main' if z['main'] else ''} | {z['best_layer']}"
                       f"{'' if z['resolved'] else ' (unresolved)'} | " + " | ".join(cells) + " |")
    out += ["", "Choice (regret) of each predictor; `*`: a miss at that size (paired test as above). The "
            "predictors' definitions are the main size's, unchanged; at the main size these are the choices of the "
            "predictors' table" + ("" if alone else " above") + "."]
    return out


def _current(root: Path, target: str, summary: str, also: tuple[str, ...] = ()) -> bool:
    """A target's summary (``pairs.json``, ``sizes.json``) exists and is newer than every
    single-layer run of the sweep it compares with and than the files ``also`` names (path
    patterns, where they exist; ``sizes.json``: the main size's ``prediction.json``, whose
    predictors it scores).  A rerun of those with pairs or sizes off leaves an old summary
    behind: not reported."""
    pj = root / summary.format(target=target)
    if not pj.exists():
        return False
    inputs = list((root / P.TL_LAYER_CSV.format(target=target, layer=0)).parent.glob("layer*.csv"))
    inputs += [f for f in (root / a.format(target=target) for a in also) if f.exists()]
    return all(pj.stat().st_mtime >= f.stat().st_mtime for f in inputs)
