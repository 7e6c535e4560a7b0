"""Snakemake script of rule sweep_summary: sweep.csv and summary.json of one target (no torch device)."""
from turbtl.runtime import log_to_rule_log
from turbtl.transfer import summarise

smk = snakemake  # noqa: F821
log = log_to_rule_log(smk)
out = summarise(list(smk.input.layers), list(smk.input.baselines), smk.wildcards.target,
                smk.output.table, smk.output.summary, alpha=float(smk.params.alpha))
log.info("best layer %s (runner-up %s, margin %s, paired p %s, resolved %s)", out["best_layer"], out["runner_up"],
         out["margin"], out["p_value"], out["resolved"])
