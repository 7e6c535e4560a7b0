"""The costs a finished run recorded: the sweep's seconds per small-set size, seed 0 against
the other seeds, and the probe's seconds and cost fraction (from ``size_predictors.csv``, or
``comparison.json`` without a size study).

Seed 0 is the first re-training of every layer job; a seed-0 sum well above the other seeds'
is a one-off cost inside the timings (before 45a35f2: the first optimiser's import).

    python benchmarks/pipeline_costs.py [LABEL=]WORKDIR ...   # a workdir holds results/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def _sweep(csvs) -> dict:
    d = pd.concat([pd.read_csv(f) for f in csvs])
    d = d[d["method"] == "tl_layer"]
    per_seed = d.groupby("seed")["seconds"].sum()
    others = per_seed.drop(index=0, errors="ignore")
    return {"layers": int(d["layer"].nunique()), "seconds": float(d["seconds"].sum()),
            "seed0": float(per_seed.get(0, float("nan"))),
            "other_seed": float(others.mean()) if len(others) else float("nan")}


def rows(workdir: Path, label: str | None = None) -> list[dict]:
    workdir = Path(workdir)
    out = []
    for tdir in sorted((workdir / "results" / "transfer").iterdir()):
        if not (tdir / "runs").is_dir():
            continue
        sizes = {}
        main = sorted((tdir / "runs").glob("layer*.csv"))
        if main:
            sizes["main"] = main
        for nd in sorted((tdir / "sizes").glob("n*")) if (tdir / "sizes").is_dir() else []:
            sizes[nd.name] = sorted(nd.glob("layer*.csv"))
        probe = {}
        sp = tdir / "size_predictors.csv"
        if sp.exists():
            p = pd.read_csv(sp)
            for _, r in p[p["predictor"] == "probe"].iterrows():
                probe["main" if bool(r["main"]) else f"n{int(r['n_small'])}"] = (
                    int(r["n_small"]), float(r["seconds"]), float(r["cost_fraction"]))
        else:
            cj = workdir / "results" / "diagnostics" / tdir.name / "comparison.json"
            if cj.exists():
                c = json.loads(cj.read_text())["predictors"].get("probe")
                if c:
                    probe["main"] = (None, float(c["seconds"]), float(c["cost_fraction"]))
        for key, csvs in sizes.items():
            if not csvs:
                continue
            s = _sweep(csvs)
            n, sec, frac = probe.get(key, (None, float("nan"), float("nan")))
            n = n if n is not None else (int(key[1:]) if key.startswith("n") else None)
            out.append({"run": label or str(workdir), "target": tdir.name, "small set": n if n is not None else key,
                        **s, "probe_seconds": sec, "probe_fraction": frac})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdirs", nargs="+", help="a workdir (holding results/), or LABEL=WORKDIR")
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
