"""The costs a finished run recorded: the sweep's seconds per small-set size, seed 0 against
the other seeds, and the probe's seconds and cost fraction (from ``size_predictors.csv``, or
``comparison.json`` without a size study).

Seed 0 is the first re-training of every layer job; a seed-0 sum well above the other seeds'
is a one-off cost inside the timings (before 45a35f2: the first optimiser's import).

    python benchmarks/pipeline_costs.py [LABEL=]RUN_FOLDER ...   # a run's folder: results/<run>
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from turbtl import paths as P


def _sweep(csvs) -> dict:
    d = pd.concat([pd.read_csv(f) for f in csvs])
    d = d[d["method"] == "tl_layer"]
    per_seed = d.groupby("seed")["seconds"].sum()
    others = per_seed.drop(index=0, errors="ignore")
    return {"layers": int(d["layer"].nunique()), "seconds": float(d["seconds"].sum()),
            "seed0": float(per_seed.get(0, float("nan"))),
            "other_seed": float(others.mean()) if len(others) else float("nan")}


def rows(workdir: Path, label: str | None = None) -> list[dict]:
    """One row per (target, small-set size) of the run whose folder is ``workdir`` (``results/<run>``;
    paths: ``turbtl.paths``)."""
    workdir = Path(workdir)
    out = []
    for tdir in sorted(workdir.glob(P.TRANSFER_DIR.format(target="*"))):
        t = tdir.name
        main = sorted(workdir.glob(P.TL_LAYER_CSV.format(target=t, layer="*")))
        if not main:
            continue
        sizes = {"main": (None, main, math.nan, math.nan)}  # key: (n, layer CSVs, probe s, fraction)
        sp = workdir / P.SIZE_PREDICTORS_CSV.format(target=t)
        cj = workdir / P.COMPARISON.format(target=t)
        if sp.exists():
            for _, r in pd.read_csv(sp).query("predictor == 'probe'").iterrows():
                n = int(r["n_small"])
                csvs = main if bool(r["main"]) else sorted(
                    workdir.glob(P.TL_SIZE_LAYER_CSV.format(target=t, n=n, layer="*")))
                sizes["main" if bool(r["main"]) else n] = (n, csvs, float(r["seconds"]), float(r["cost_fraction"]))
        elif cj.exists() and "probe" in (c := json.loads(cj.read_text())["predictors"]):
            sizes["main"] = (None, main, float(c["probe"]["seconds"]), float(c["probe"]["cost_fraction"]))
        for key, (n, csvs, sec, frac) in sizes.items():
            if csvs:
                out.append({"run": label or str(workdir), "target": t, "small set": n if n is not None else key,
                            **_sweep(csvs), "probe_seconds": sec, "probe_fraction": frac})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdirs", nargs="+", metavar="RUN_FOLDER", help="a run's folder (results/<run>), or LABEL=FOLDER")
    a = ap.parse_args(argv)
    print("| run | target | small set | sweep (s) | seed 0 (s) | other seeds, mean (s) | probe (s) | probe / sweep |")
    print("|---|---|---|---|---|---|---|---|")
    for w in a.workdirs:
        label, _, path = w.rpartition("=")
        for r in rows(Path(path), label or None):
            print(f"| {r['run']} | {r['target']} | {r['small set']} | {r['seconds']:.1f} | {r['seed0']:.1f} | "
                  f"{r['other_seed']:.1f} | {r['probe_seconds']:.2f} | {100 * r['probe_fraction']:.2f}% |")


if __name__ == "__main__":
    main()
