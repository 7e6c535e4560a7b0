"""Snakemake script of rule pair_summary: pairs.csv, pairs.json and the pairs figure of one target (no torch device)."""
import pandas as pd

from turbtl import plots
from turbtl.runtime import log_to_rule_log
from turbtl.pairs import summarise_pairs

smk = snakemake  # noqa: F821
log = log_to_rule_log(smk)
out = summarise_pairs(list(smk.input.pairs), list(smk.input.layers), smk.wildcards.target, smk.output.table,
                      smk.output.summary, alpha=float(smk.params.alpha))
plots.pairs(pd.read_csv(smk.output.table), out, smk.output.figure, target=smk.wildcards.target)
log.info("best pair %s, best single layer %s: single minus pair %s, paired p %s, pair better: %s", out["best_pair"],
         out["best_single"], out["diff_single_minus_pair"], out["p_value"], out["pair_beats_single"])
