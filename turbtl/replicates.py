"""Pool the verdicts of replicate runs: is the best layer a property of the flow, or of one run?

    snakemake --cores 8 --config replicate=1          # -> results/default-rep1/
    snakemake --cores 8 --config replicate=2          # -> results/default-rep2/
    python -m turbtl.replicates default default-rep1 default-rep2 --page default-replicates

Why.  The sweep's seed intervals (:mod:`turbtl.verdict`) hold fixed the DNS trajectories and
the base network: TL seed s re-trains one base network on its own draw of one run's data.  A
replicate (config key ``replicate``, :func:`turbtl.config.replicated`) repeats the whole
experiment with every seed shifted: new DNS trajectories of the same flows, a new base
network, new small-set draws.  The spread over replicates is what a claim about the *flow*
("re-train layer 2 for a kf = 25 target") has to survive.

What is pooled, per target, over R replicates (each a run, named by its folder under ``results/``):

- **relative error** of layer L in replicate r: the seed-mean test nMSE of TL at L divided by
  replicate r's zero-shot nMSE (each replicate has its own base network, so raw nMSEs are
  not comparable; the ratio is the share of the zero-shot error left after re-training L);
- its mean over replicates with the 95% Student-t interval (``verdict.interval``; at R = 3
  the t factor is 4.3: only large differences resolve);
- the **pooled best layer** (lowest mean relative error) and the paired two-sided t-test over
  replicates against the runner-up (``verdict.paired_test``, paired by replicate);
- how many replicates' own sweeps named each layer best, and whether those verdicts were
  resolved within their replicate;
- per predictor: its pick, hit and regret in each replicate (from each run's
  ``summary_by_target.csv``, so each against that replicate's own sweep); the hits and the
  mean regret with its interval over all (target, replicate) pairs; and each replicate's own
  mean regret over its targets, with whether it meets the goal of that run's report
  (:func:`turbtl.report.meets_goal`); and the hits and mean regret over only the pairs where
  TL gains at least ``--gain-threshold`` (default 5%, the report's post hoc threshold) in
  that replicate, the gain being 1 minus the relative error of the replicate's own best layer.

Where every replicate also ran the size study (``transfer.fractions``), the same pooling per
(target, size) follows (:mod:`turbtl.replicate_sizes`); ``--sizes-only`` writes only those
tables (and the replicates' table, with the wall time of the run that made the size jobs).

The replicates must differ: two runs whose base flow has the same DNS seed are the same
replicate (an error names them).  Targets missing from a replicate are left out of the pooled
tables (a warning names them).  A replicate's targets are those of its
``summary_by_target.csv``, i.e. of the config it last ran to the end; without that file every
target sweep under its ``transfer/`` counts.  The tables name the runs and their base DNS
seeds; with ``--page NAME`` they become the results page ``docs/results/NAME.md``, which names
the commit and the machine (:mod:`turbtl.results_pages`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from . import TurbtlError
from . import paths as P
from .cli import ArgumentParser, one_line_errors
from .io import read_json
from .pooling import fmt_p, pool_layers, score
from .replicate_sizes import load_sizes, pool_sizes, render_sizes
from .report import GAIN_THRESHOLD, meets_goal
from .report_cells import _fmt
from .results_pages import PAGES, wall_time, write_page
from .verdict import ALPHA

__all__ = ["load_replicate", "pool", "render", "main"]


def _attrs_seed(path: Path) -> int | None:
    import xarray as xr

    if not path.exists():
        return None
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return int(ds.attrs["seed"]) if "seed" in ds.attrs else None


def load_replicate(root) -> dict:
    """One replicate's numbers from its run folder ``root`` (``results/<run>``): base flow and its
    DNS seed, base test CC, and per target the seed-mean relative error of every layer, the
    sweep's verdict and the predictors' rows of ``summary_by_target.csv``."""
    root = Path(root)
    metrics_path = root / P.BASE_METRICS
    if not metrics_path.exists():
        raise TurbtlError(f"{metrics_path} is missing: {root} holds no finished run; fix: name runs that ran to "
                          f"the end (folders in {root.parent})")
    metrics = read_json(metrics_path)
    base = str(metrics["system"])
    by_path = root / P.SUMMARY_BY_TARGET
    by_target = pd.read_csv(by_path) if by_path.exists() else None
    targets = {}
    order = list(dict.fromkeys(by_target["target"])) if by_target is not None else []
    found = sorted(d.parent.name for d in root.glob(P.SWEEP_SUMMARY.format(target="*")))
    if order:  # the targets of the run's last config; sweeps of other configs in the same results/ stay out
        found = [t for t in order if t in found]
    for t in found:  # the run's order
        summary = read_json(root / P.SWEEP_SUMMARY.format(target=t))
        sweep = pd.read_csv(root / P.SWEEP_CSV.format(target=t))
        zs = sweep.loc[sweep["method"] == "zero_shot", "nmse"]
        if zs.empty or not float(zs.mean()) > 0:
            continue
        zs = float(zs.mean())
        tl = sweep[sweep["method"] == "tl_layer"]
        rel = {int(L): float(g["nmse"].mean()) / zs for L, g in tl.groupby("layer")}
        preds = {}
        if by_target is not None:
            for _, row in by_target[by_target["target"] == t].iterrows():
                preds[str(row["predictor"])] = {"choice": int(row["predicted_layer"]), "hit": bool(row["hit"]),
                                                "regret": None if pd.isna(row["regret"]) else float(row["regret"])}
        best = int(summary["best_layer"])
        targets[t] = {"zero_shot": zs, "rel": rel, "best": best, "gain": 1.0 - rel.get(best, float("nan")),
                      "p": summary.get("p_value"), "resolved": bool(summary.get("resolved")),
                      "seed": _attrs_seed(root / P.FILTERED.format(system=t)), "predictors": preds}
    if not targets:
        raise TurbtlError(f"{root}/transfer holds no target sweep; fix: run that run to the end")
    agg = {}
    if (root / P.SUMMARY_CSV).exists():
        for _, row in pd.read_csv(root / P.SUMMARY_CSV).iterrows():
            agg[str(row["predictor"])] = {"mean_regret": float(row["mean_regret"]),
                                          "goal": meets_goal(row["mean_regret"], row["max_cost_fraction"])}
    return {"root": str(root), "base": base, "seed": _attrs_seed(root / P.FILTERED.format(system=base)),
            "base_test_cc": metrics.get("test_cc"), "wall_s": wall_time(root, needs="rule transfer_layer")[0], "targets": targets,
            "predictors": agg, "sizes": load_sizes(root, list(targets)),
            "wall_sizes_s": wall_time(root, needs="rule transfer_layer_size")[0]}


def pool(replicates: list[dict], alpha: float = ALPHA, gain_threshold: float = GAIN_THRESHOLD) -> dict:
    """The pooled verdict of :func:`load_replicate` results (module docstring)."""
    if len(replicates) < 2:
        raise TurbtlError("pooling needs at least 2 replicates; fix: run the pipeline with --config replicate=1 "
                          "(and 2, ...), and name those runs (RUN-rep1, ...)")
    seen = {}
    for r in replicates:
        key = (r["base"], r["seed"])
        if key in seen:
            raise TurbtlError(f"{seen[key]} and {r['root']} are the same replicate (base flow {r['base']!r}, DNS "
                              f"seed {r['seed']}); fix: name each replicate's run once (each ran with its own "
                              "--config replicate=r)")
        seen[key] = r["root"]
    common = [t for t in replicates[0]["targets"] if all(t in r["targets"] for r in replicates)]
    left_out = sorted(set.union(*(set(r["targets"]) for r in replicates)) - set(common))
    keep = ("root", "base", "seed", "base_test_cc", "wall_s", "wall_sizes_s")
    out = {"replicates": [{k: r.get(k) for k in keep} for r in replicates],
           "alpha": alpha, "gain_threshold": gain_threshold, "left_out": left_out, "targets": {}, "predictors": {}}
    for t in common:
        cells = [r["targets"][t] for r in replicates]
        out["targets"][t] = pool_layers([c["rel"] for c in cells], [c["best"] for c in cells],
                                        [c["resolved"] for c in cells], [c["p"] for c in cells], alpha)
    names = [n for n in (replicates[0]["targets"][common[0]]["predictors"] if common else [])
             if all(n in r["targets"][t]["predictors"] for r in replicates for t in common)]  # the run's order
    for name in names:
        per_target, pairs = {}, []  # pairs: (that replicate's TL gain on t, the predictor's row)
        for t in common:
            rows = [r["targets"][t]["predictors"][name] for r in replicates]
            per_target[t] = {"choices": [x["choice"] for x in rows], "hits": sum(x["hit"] for x in rows),
                             "regrets": [x["regret"] for x in rows]}
            pairs += [(r["targets"][t]["gain"], x) for r, x in zip(replicates, rows)]
        own = [r.get("predictors", {}).get(name, {}) for r in replicates]
        out["predictors"][name] = {**score([x for _, x in pairs]), "targets": per_target,
                                   "replicate_mean_regret": [x.get("mean_regret") for x in own],
                                   "replicate_goal": [x.get("goal") for x in own],
                                   "gain": score([x for g, x in pairs if g >= gain_threshold])}
    out["sizes"] = pool_sizes(replicates, common, alpha, gain_threshold)
    return out


def render(pooled: dict, header: str = "", sizes_only: bool = False) -> str:
    """Markdown tables of :func:`pool`; with ``sizes_only`` the replicates and the
    size study's tables only (:mod:`turbtl.replicate_sizes`)."""
    reps = pooled["replicates"]
    R = len(reps)
    wall, made = ("wall_sizes_s", "its size study") if sizes_only else ("wall_s", "its sweep")
    lines = [header] if header else []
    lines += ["Replicates (each a whole run: its own DNS trajectories, base network and small-set draws):", "",
              f"| # | run | base DNS seed | base test CC | wall time of the run that made {made} (min) |",
              "|---|---|---|---|---|"]
    lines += [f"| {i} | `{Path(r['root']).name}` | {r['seed']} | {_fmt(r['base_test_cc'])} | "
              f"{_fmt(r[wall] / 60, 1) if r.get(wall) else 'n/a'} |" for i, r in enumerate(reps)]
    if sizes_only:
        return "\n".join(lines + render_sizes(pooled.get("sizes", {}), R)) + "\n"
    if pooled["left_out"]:
        lines += ["", f"Left out (not in every replicate): {', '.join(pooled['left_out'])}."]
    lines += ["", f"Per target: each replicate's own best layer (* resolved within it at p < {pooled['alpha']}), "
              "and the pooled best by the mean over replicates of the relative error (TL nMSE / zero-shot "
              "nMSE, 95% t-interval over replicates), tested against the runner-up over replicates (paired):", "",
              "| target | best per replicate | same in all | pooled best | its relative error | runner-up | "
              "its relative error | p (replicates) |", "|---|---|---|---|---|---|---|---|"]
    for t, v in pooled["targets"].items():
        per = ", ".join(f"{b}{'*' if ok else ''}" for b, ok in zip(v["replicate_best"], v["replicate_resolved"]))
        b, ru = v["layers"][v["best"]], v["layers"].get(v["runner_up"])
        ru_s = f"{_fmt(ru['mean'])} [{_fmt(ru['lo'])}, {_fmt(ru['hi'])}]" if ru else "n/a"
        lines.append(f"| {t} | {per} | {'yes' if v['agree'] else 'no'} | {v['best']} | "
                     f"{_fmt(b['mean'])} [{_fmt(b['lo'])}, {_fmt(b['hi'])}] | {v['runner_up']} | {ru_s} | {fmt_p(v['p'])} |")
    targets = list(pooled["targets"])
    if targets:
        layers = sorted(set.union(*(set(v["layers"]) for v in pooled["targets"].values())))
        lines += ["", "Relative error per layer, mean over replicates (times named best by a replicate's own sweep):",
                  "", "| layer | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
        for L in layers:
            cells = []
            for t in targets:
                x = pooled["targets"][t]["layers"].get(L)
                cells.append("n/a" if x is None else f"{_fmt(x['mean'])} ({x['times_best']})")
            lines.append(f"| {L} | " + " | ".join(cells) + " |")
    if pooled["predictors"]:
        lines += ["", f"Predictors, each judged in each replicate against that replicate's sweep: hits out of "
                  f"{R} x {len(targets)} (target, replicate) pairs, mean regret with its 95% interval over them, "
                  "each replicate's own mean regret over its targets (+ where it meets the goal of the run's "
                  "report: mean regret <= 0.10 at <= 5% of the sweep's cost), and the picks per target (one "
                  f"per replicate). The last two columns take only the pairs where TL gains at least "
                  f"{pooled['gain_threshold']:.0%} over zero shot in that replicate (the report's post hoc "
                  "threshold, `--gain-threshold`): hits out of those pairs and the mean regret over them.", "",
                  "| predictor | hits | mean regret | per replicate | " + " | ".join(f"picks {t}" for t in targets)
                  + f" | hits, gain >= {pooled['gain_threshold']:.0%} | mean regret there |",
                  "|---|---|---|---|" + "---|" * len(targets) + "---|---|"]
        for name, v in pooled["predictors"].items():
            picks = " | ".join(", ".join(map(str, v["targets"][t]["choices"])) for t in targets)
            own = ", ".join("n/a" if m is None else f"{_fmt(m, 2)}{'+' if g else ''}"
                            for m, g in zip(v["replicate_mean_regret"], v["replicate_goal"]))
            g = v["gain"]
            lines.append(f"| {name} | {v['hits']}/{v['n']} | {_fmt(v['mean_regret'])} "
                         f"[{_fmt(v['regret_lo'])}, {_fmt(v['regret_hi'])}] | {own} | {picks} | {g['hits']}/{g['n']} | "
                         f"{_fmt(g['mean_regret'])} [{_fmt(g['regret_lo'])}, {_fmt(g['regret_hi'])}] |")
    lines += render_sizes(pooled.get("sizes", {}), R)
    return "\n".join(lines) + "\n"


@one_line_errors("python -m turbtl.replicates")
def main(argv=None) -> None:
    ap = ArgumentParser(prog="python -m turbtl.replicates", description=__doc__.split("\n\n")[1])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="the replicate runs, by name: their folders results/RUN "
                    "(replicate r of the run `default` is `default-rep<r>`)")
    ap.add_argument("--workdir", default=".", help="the directory snakemake ran in, which holds results/ (default: .)")
    ap.add_argument("--page", default=None, metavar="NAME",
                    help="also write the results page docs/results/NAME.md (and the index); without it the tables "
                         "are only printed")
    ap.add_argument("--pages-dir", default=str(PAGES), help=argparse.SUPPRESS)  # the tests' own folder
    ap.add_argument("--json", default=None, help="also write the pooled numbers to this JSON file")
    ap.add_argument("--gain-threshold", type=float, default=GAIN_THRESHOLD,
                    help="also score the predictors on the (target, replicate) pairs whose TL gain over zero shot "
                    f"is at least this share (default {GAIN_THRESHOLD}, as turbtl.report)")
    ap.add_argument("--sizes-only", action="store_true",
                    help="only the replicates and the size study's tables (each replicate ran transfer.fractions)")
    a = ap.parse_args(argv)
    pooled = pool([load_replicate(Path(a.workdir) / P.RESULTS / r) for r in a.runs], gain_threshold=a.gain_threshold)
    if a.sizes_only and not pooled["sizes"]:
        raise TurbtlError("no target has a current size study (sizes.json) in every replicate; fix: run each "
                          "replicate with --config 'transfer={fractions: [...]}' to the end, or leave out "
                          "--sizes-only")
    if pooled["left_out"]:
        print(f"warning: targets not in every replicate, left out: {pooled['left_out']}", file=sys.stderr)
    if pooled["sizes"] and pooled["sizes"]["left_out"]:
        print(f"warning: targets without a current size study in every replicate, left out of the size tables: "
              f"{pooled['sizes']['left_out']}", file=sys.stderr)
    block = render(pooled, sizes_only=a.sizes_only)
    if a.json:
        Path(a.json).write_text(json.dumps(pooled, indent=1, default=float))
    if a.page:
        flags = " --sizes-only" if a.sizes_only else ""
        title = f"Replicates {', '.join(a.runs)}" + (": small-set sizes" if a.sizes_only else "")
        print(write_page(a.page, title, f"python -m turbtl.replicates {' '.join(a.runs)} --page {a.page}{flags}",
                         f"the runs {', '.join(f'`results/{r}/`' for r in a.runs)}", block, pages=a.pages_dir),
              file=sys.stderr)
    print(block)


if __name__ == "__main__":
    main()
