"""A run's results page from its ``results/<run>/`` (never by hand).

    python -m turbtl.report                          # the run `default` -> results/default/report.md
    python -m turbtl.report predictor-study          # the run of presets/predictor-study.yaml
    python -m turbtl.report default --page           # ... and docs/results/default.md (+ the index)
    python -m turbtl.report default --page default-les8 --aposteriori-only   # after a rerun of the LES stage
    python -m turbtl.report default --page default-sizes --sizes-only         # after adding transfer.fractions
    python -m turbtl.report --index                  # only rewrite docs/results/index.md

A rerun of the LES stage alone (``--config 'les={...}'`` with more starts) rewrites only the
``aposteriori`` outputs: ``--aposteriori-only`` then writes the LES tables, compared with the
a-priori results on disk.  Likewise ``--sizes-only`` after a run that added
``transfer.fractions`` to a finished run: the size study's tables.

It writes ``results/<run>/report.md``; with ``--page`` also the results page
``docs/results/<name>.md`` (name: the run's, or the one given), which names the commit, the
machine and the date (:mod:`turbtl.results_pages`), and with ``--readme`` the README's key
figure from this run.  The wall time is that of the newest complete Snakemake invocation of
the run (:func:`turbtl.results_pages.wall_time`); a run that was resumed reports the last part.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from . import TurbtlError
from . import paths as P
from .aposteriori import best_layer_per_start, per_start_errors
from .cli import ArgumentParser, one_line_errors
from .io import read_json
from .report_cells import _fmt, _regret_cells
from .report_studies import pairs_section, sizes_section
from .results_pages import PAGES, REPO, wall_time, write_index, write_page
from .verdict import ALPHA, aggregate, paired_test, tl_closure

__all__ = ["GAIN_THRESHOLD", "build", "key_figure", "replace_block", "meets_goal", "main"]


GAIN_THRESHOLD = 0.05
"""The post hoc table's threshold on TL gain over zero shot, fixed when the first predictor study
was read (commit 6328163) and kept since, so that later runs test it rather than tune it."""


def meets_goal(mean_regret, max_cost_fraction) -> bool:
    """The predictors' goal: mean regret <= 0.10 over the targets at <= 5% of the sweep's cost
    on every target."""
    return bool(mean_regret <= 0.10 and max_cost_fraction <= 0.05)


def build(root="results/default", gain_threshold: float | None = GAIN_THRESHOLD, *,
          aposteriori_only: bool = False, sizes_only: bool = False) -> str:
    """The markdown tables of the run in ``root`` (``results/<run>``) and its wall time; with
    ``aposteriori_only`` the header and the a-posteriori tables only (a rerun of the LES
    stage on a finished run's results), with ``sizes_only`` the header and the size study's
    table (``transfer.fractions`` added to a finished run)."""
    root = Path(root)
    agg = pd.read_csv(root / P.SUMMARY_CSV)
    by = pd.read_csv(root / P.SUMMARY_BY_TARGET)
    targets = list(dict.fromkeys(by["target"]))
    base = read_json(root / P.BASE_METRICS)
    wall, wall_src = wall_time(root)
    out = [f"Wall time of the run: {_fmt(wall / 60, 1) + ' min' if wall else 'n/a'} ({wall_src}).", ""]
    if aposteriori_only:
        return "\n".join(out + _aposteriori_section(root, targets, by, agg)[1:]) + "\n"
    if sizes_only:
        sizes = sizes_section(root, targets, alone=True)
        if not sizes:
            raise TurbtlError(f"{root}: no current sizes.json of any target; fix: run with transfer.fractions first")
        return "\n".join(out + sizes[1:]) + "\n"
    out += [f"Base network: test CC {_fmt(base.get('test_cc'))}, nMSE {_fmt(base.get('test_nmse'))} "
            "on held-out base members.", ""]
    # --- per target: the empirical verdict
    out += ["| target | data shift | best layer | nMSE best [95% CI] | runner-up | paired p | resolved | "
            "zero shot | TL gain | fine-tune all | full target | mean CI half-width | sweep job time (s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    gains = {}
    for t in targets:
        s = read_json(root / P.SWEEP_SUMMARY.format(target=t))
        b = s["layers"][str(s["best_layer"])]
        half = [(v["ci95_high"] - v["ci95_low"]) / 2 for v in s["layers"].values()
                if v.get("ci95_high") is not None and v.get("ci95_low") is not None]
        bl = s.get("baselines", {})
        sw = by[by.target == t]["sweep_seconds"].iloc[0] if (by.target == t).any() else None
        zs = bl.get("zero_shot", {}).get("mean")
        gains[t] = (zs - b["mean"]) / zs if zs else float("nan")
        out.append(f"| {t} | {_fmt(_data_shift(root, t))} | {s['best_layer']} | {_fmt(b['mean'])} "
                   f"[{_fmt(b['ci95_low'])}, {_fmt(b['ci95_high'])}] | "
                   f"{s.get('runner_up')} | {_fmt(s.get('p_value'), 3)} | {'yes' if s.get('resolved') else 'no'} | "
                   f"{_fmt(zs)} | {_fmt(100 * gains[t], 1)}% | {_fmt(bl.get('finetune_all', {}).get('mean'))} | "
                   f"{_fmt(bl.get('full_target', {}).get('mean'))} | "
                   f"{_fmt(sum(half) / len(half) if half else None, 4)} | {_fmt(sw, 0)} |")
    n_seeds = read_json(root / P.SWEEP_SUMMARY.format(target=targets[0])).get("n_seeds") if targets else None
    out += ["", f"Test nMSE over {n_seeds} seeds, each re-training on its own draw of the small target "
            "set (paired); `resolved`: the best layer beats the runner-up in the paired two-sided "
            "t-test at 5%. Data shift: mean over k of the |log10| ratio of the target's small set's to the "
            "base's training data's filtered psi, omega and Pi spectra (the predictors' data weights before "
            "normalising). "
            "TL gain: (zero shot - best) / zero shot.", ""]
    # --- per predictor: the headline
    out += ["| predictor | hit rate | mean regret | worst regret | mean Spearman | cost / sweep (mean) |",
            "|---|---|---|---|---|---|"]
    for _, r in agg.iterrows():
        out.append(_regret_cells(r) + f" {_fmt(r['mean_spearman'], 2)} | {_fmt(100 * r['mean_cost_fraction'], 2)}% |")
    ok = agg[[meets_goal(r["mean_regret"], r["max_cost_fraction"]) for _, r in agg.iterrows()]]
    goal = (", ".join(ok["predictor"]) + " reach" + ("es" if len(ok) == 1 else "")) if len(ok) else "no predictor reaches"
    out += ["", f"Goal (mean regret <= 0.10 at <= 5% of the sweep's cost on every target): **{goal} it** "
            f"on these {len(targets)} target(s).", ""]
    # --- choices per target
    cols = " | ".join(targets)
    out += [f"| choice (regret) | {cols} |", "|---|" + "---|" * len(targets)]
    emp = by.groupby("target").first()
    out.append("| empirical best | " + " | ".join(str(int(emp.loc[t, "empirical_best"])) for t in targets) + " |")
    for p in dict.fromkeys(by["predictor"]):
        cells = []
        for t in targets:
            r = by[(by.target == t) & (by.predictor == p)].iloc[0]
            mark = "" if bool(r["hit"]) else "*"
            cells.append(f"{int(r['predicted_layer'])}{mark} ({_fmt(r['regret'], 2)})")
        out.append(f"| {p} | " + " | ".join(cells) + " |")
    out += ["", "`*`: a miss (the choice is significantly worse than the best layer, paired test "
            "at 5%); regret n/a where re-training beats nothing (zero shot is as good)."]
    out += pairs_section(root, targets)
    out += sizes_section(root, targets)
    out += _aposteriori_section(root, targets, by, agg)
    if gain_threshold is not None and len(targets) > 1:
        big = [t for t in targets if gains.get(t, float("nan")) >= gain_threshold]
        sub = by[by.target.isin(big)]
        out += ["", f"**Post hoc, not a test of the goal**: the same predictors on the {len(big)} target(s) "
                f"where TL gains at least {gain_threshold:.0%} over zero shot ({', '.join(big) or 'none'}). "
                "The threshold was chosen after the results above were seen; read it as a hypothesis "
                "for the next study.", ""]
        if len(sub):
            agg2 = aggregate(sub)
            out += ["| predictor | hit rate | mean regret | worst regret |", "|---|---|---|---|"]
            out += [_regret_cells(r) for _, r in agg2.iterrows()]
    return "\n".join(out) + "\n"


def _aposteriori_section(root: Path, targets: list[str], by: pd.DataFrame, agg: pd.DataFrame) -> list[str]:
    """Every closure inside the LES (``results/les/{target}/aposteriori.json``), if that stage ran."""
    aps = {t: read_json(root / P.APOSTERIORI.format(target=t)) for t in targets
           if (root / P.APOSTERIORI.format(target=t)).exists()}
    if not aps:
        return []
    a0 = next(iter(aps.values()))["les"]
    out = ["", f"**A posteriori** (every closure inside an LES on the {a0['n']}^2 grid, {a0['time']:.3g} time units "
           f"with {a0['spinup']:.3g} dropped, {len(next(iter(aps.values()))['starts'])} starts from test members): "
           "energy-spectrum error spec_err (log-RMSE against the filtered DNS; per-start spread as +-std), "
           "time-mean energy over the DNS's, and whether the closure stayed stable. The dynamic closures' c is "
           "the time-mean constant the Germano procedure chose (cs for Smagorinsky, C_L for Leith, Delta the LES "
           "grid spacing, as for the constant Smagorinsky's cs).", ""]
    out += ["| target | turnovers / start | no closure | Smagorinsky | dynamic Smagorinsky | dynamic Leith | zero shot | "
            "TL a-priori best | fine-tune all | full target | a-posteriori best layer (each start's) | "
            "a-priori best's regret in the LES | paired p over starts |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(c):
        if c is None:
            return "n/a"
        if not c["stable"]:
            return f"blew up at t={_fmt(c['blowup_time'], 2)}"
        sd = f" +-{_fmt(c['spec_err_std'], 3)}" if c.get("spec_err_std") is not None else ""
        return f"{_fmt(c['spec_err'], 3)}{sd} (E {_fmt(c['energy_ratio'], 2)})"

    def dyn(ap, name):  # the score, then the time-mean constant the dynamic procedure chose
        c = ap["closures"].get(name)
        const = ap["les"].get("dynamic", {}).get(name, {}).get("constant")
        return cell(c) + (f", c {_fmt(const, 2)}" if c is not None and const is not None else "")

    tested = []  # (target, p) where the a-priori best is not the a-posteriori best
    for t, ap in aps.items():
        row = by[by.target == t].iloc[0]
        best = int(row["empirical_best"])
        cl = ap["closures"]
        stats = root / P.LES_STATS.format(target=t)
        err = per_start_errors(stats) if stats.exists() else {}
        each = best_layer_per_start(err)
        per = f" ({', '.join(_fmt(b, 0) for b in each)})" if each else ""
        p = None
        if err and pd.notna(row["ap_best"]) and int(row["ap_best"]) != best and best in err:
            p = paired_test(pd.Series(err[best]), pd.Series(err[int(row["ap_best"])]))["p"]
            tested.append((t, p))
        out.append(f"| {t} | {_fmt(ap['les']['turnovers_per_start'], 1)} | {cell(cl.get('no_closure'))} | "
                   f"{cell(cl.get('smagorinsky'))} | {dyn(ap, 'dynamic_smagorinsky')} | {dyn(ap, 'dynamic_leith')} | "
                   f"{cell(cl.get('zero_shot'))} | {best}: {cell(cl.get(tl_closure(best)))} | "
                   f"{cell(cl.get('finetune_all'))} | {cell(cl.get('full_target'))} | {_fmt(row['ap_best'], 0)}{per} | "
                   f"{_fmt(row['apriori_best_ap_regret'], 2)} | {_fmt(p, 3) if p is not None else '-'} |")
    sig = [t for t, p in tested if p is not None and p < ALPHA]
    out += ["", "Each start's own best layer is in brackets. Paired p: the a-priori best layer against the "
            "a-posteriori best, paired two-sided t-test of the per-start spec_err over the starts (the a-priori "
            "test's, `turbtl.verdict.paired_test`); '-' where they are the same layer. The a-priori best is "
            f"significantly worse inside the LES (p < {ALPHA:g}) on {len(sig)} of {len(aps)} target(s)"
            + (f" ({', '.join(sig)})" if sig else "") + "; where it is not, the LES does not contradict the "
            "a-priori verdict at this length and number of starts. The a-posteriori best is picked from the same "
            "starts, so these p are optimistic, as is the a-priori test against the runner-up."]
    out += ["", "| predictor | a-posteriori hit rate | mean a-posteriori regret |", "|---|---|---|"]
    for _, r in agg.iterrows():
        out.append(f"| {r['predictor']} | {_fmt(100 * r['ap_hit_rate'], 0)}% | {_fmt(r['mean_ap_regret'], 2)} |")
    out += ["", "A-posteriori regret: (e_choice - e_best) / (e_zero_shot - e_best) with e the LES's spec_err per "
            "re-trained layer; hit: the choice is the layer with the lowest e. No significance test: compare the "
            "differences with the per-start spread."]
    return out


def _data_shift(root: Path, target: str):
    """Mean |log10 ratio| of the data spectra over the weighted shells (prediction.json)."""
    p = root / P.PREDICTION.format(target=target)
    if not p.exists():
        return None
    d = [v for v in read_json(p).get("details", {}).get("data_log_ratio", []) if v is not None]
    return sum(d) / len(d) if d else None


def key_figure(root) -> str:
    """The README's key figure: per target, the share of the TL gain lost by re-training each
    single layer instead of the best one (its regret, bar height; 0 = the best layer, full =
    no better than zero shot), as a text bar chart of one row per target."""
    bars = " ▁▂▃▄▅▆▇█"
    root = Path(root)
    by = pd.read_csv(root / P.SUMMARY_BY_TARGET)
    rows, depth = [], 0
    for t in dict.fromkeys(by["target"]):
        s = read_json(root / P.SWEEP_SUMMARY.format(target=t))
        means = {int(L): v["mean"] for L, v in s["layers"].items()}
        zs = s.get("baselines", {}).get("zero_shot", {}).get("mean")
        best = means[int(s["best_layer"])]
        if not zs or zs <= best:
            continue
        depth = max(depth, max(means))
        cells = [bars[min(8, max(1, round(8 * (means[L] - best) / (zs - best))))] if L in means and means[L] > best
                 else ("*" if L in means else " ") for L in range(1, max(means) + 1)]
        verdict = "resolved" if s.get("resolved") else "not resolved"
        rows.append((t, f"TL gain {100 * (zs - best) / zs:4.1f}%", cells, f"best {s['best_layer']} ({verdict})"))
    if not rows:
        return ""
    w = max(len(r[0]) for r in rows)
    g = max(len(r[1]) for r in rows)
    head = f"{'layer':<{w + g + 4}}" + "".join(f"{L:>3}" for L in range(1, depth + 1))
    lines = [head] + [f"{t:<{w}}  {gain:<{g}}  " + "".join(f"{c:>3}" for c in cells) + f"   {b}" for t, gain, cells, b in rows]
    return "```\n" + "\n".join(lines) + "\n```\n"


def replace_block(text: str, name: str, block: str) -> str:
    start, end = f"<!-- report:{name}:start -->", f"<!-- report:{name}:end -->"
    if start not in text or end not in text:
        raise TurbtlError(f"the README has no block {start} ... {end}; fix: add the two markers where it "
                         "should go")
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + "\n" + block + text[j:]


@one_line_errors("python -m turbtl.report")
def main(argv=None) -> None:
    ap = ArgumentParser(prog="python -m turbtl.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", default="default", help="the run: its folder results/RUN (default: default; "
                    "replicate r of a run is RUN-rep<r>)")
    ap.add_argument("--workdir", default=".", help="the directory snakemake ran in, which holds results/ (default: .)")
    ap.add_argument("--page", nargs="?", const="", default=None, metavar="NAME",
                    help="also write the results page docs/results/NAME.md (default NAME: the run's) and the index")
    ap.add_argument("--readme", nargs="?", const=str(REPO / "README.md"), default=None, metavar="FILE",
                    help="also write the README's key figure from this run (default FILE: the repository's README.md)")
    ap.add_argument("--pages-dir", default=str(PAGES), help=argparse.SUPPRESS)  # the tests' own folder
    ap.add_argument("--index", action="store_true", help="only rewrite docs/results/index.md and the pages' status notes")
    ap.add_argument("--gain-threshold", type=float, default=GAIN_THRESHOLD,
                    help="also tabulate the predictors on targets whose TL gain over zero shot is at "
                         f"least this share (post hoc; default {GAIN_THRESHOLD})")
    ap.add_argument("--aposteriori-only", action="store_true",
                    help="only the a-posteriori tables (for a rerun of the LES stage with other les.* settings)")
    ap.add_argument("--sizes-only", action="store_true",
                    help="only the size study's table (for a run that added transfer.fractions)")
    a = ap.parse_args(argv)
    if a.index:
        print(write_index(a.pages_dir))
        return
    if a.aposteriori_only and a.sizes_only:
        ap.error("give one of --aposteriori-only and --sizes-only")
    root = Path(a.workdir) / P.RESULTS / a.run
    if not (root / P.SUMMARY_CSV).exists():
        raise TurbtlError(f"{root / P.SUMMARY_CSV} is missing: {root} holds no finished run; fix: name a run "
                 f"that ran to the end (folders in {Path(a.workdir) / P.RESULTS}), or run it first")
    block = build(root, a.gain_threshold, aposteriori_only=a.aposteriori_only, sizes_only=a.sizes_only)
    (root / "report.md").write_text(block)
    if a.page is not None:
        name = a.page or a.run
        flags = "".join(f" --{f}" for f in ("aposteriori-only", "sizes-only") if getattr(a, f.replace("-", "_")))
        what = {"aposteriori-only": "a-posteriori LES", "sizes-only": "small-set sizes"}.get(flags.strip(" -"), "")
        print(write_page(name, f"Run {a.run}" + (f": {what}" if what else ""),
                         f"python -m turbtl.report {a.run} --page {name}{flags}", f"`results/{a.run}/`", block,
                         pages=a.pages_dir), file=sys.stderr)
    if a.readme:
        readme = Path(a.readme)
        readme.write_text(replace_block(readme.read_text(), "figure", key_figure(root)))
    print(block)


if __name__ == "__main__":
    main()
