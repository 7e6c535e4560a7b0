"""Snakemake script of rule size_summary: sizes.csv, sizes.json, size_predictors.csv and the sizes figure of one
target (no torch device)."""
import pandas as pd

from turbtl import plots
from turbtl.runtime import log_to_rule_log
from turbtl.sizes import summarise_sizes

smk = snakemake  # noqa: F821
log = log_to_rule_log(smk)
out = summarise_sizes({int(n): v for n, v in smk.params.layer_csvs.items()},
                      {int(n): float(f) for n, f in smk.params.fractions.items()}, int(smk.params.main_n),
                      smk.input.zero_shot, smk.wildcards.target, smk.output.table, smk.output.summary,
                      predictions={int(n): p for n, p in smk.params.predictions.items()},
                      baselines={int(n): v for n, v in smk.params.baseline_csvs.items()},
                      out_predictors_csv=smk.output.predictors, alpha=float(smk.params.alpha))
plots.sizes(pd.read_csv(smk.output.table), out, smk.output.figure, target=smk.wildcards.target)
for s in out["sizes"]:
    log.info("small set of %d (fraction %.3g): best layer %d, runner-up %s, paired p %s, resolved %s; main size's "
             "best %d: regret %s", s["n_small"], s["fraction"], s["best_layer"], s["runner_up"], s["p_value"],
             s["resolved"], out["main_best_layer"], s["main_best"]["regret"])
for name, hits in out["predictor_hits"].items():
    log.info("predictor %s: a hit at %d of %d sizes (choices %s)", name, hits, len(out["sizes"]),
             [s["predictors"][name]["choice"] for s in out["sizes"]])
