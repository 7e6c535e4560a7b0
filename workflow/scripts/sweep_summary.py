"""Snakemake script of rule sweep_summary: sweep.csv and summary.json of one target (no torch device)."""
import logging
import os
import sys

from turbtl.transfer import summarise

smk = snakemake  # noqa: F821
if smk.log:
    os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
    sys.stdout = sys.stderr = open(str(smk.log[0]), "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
out = summarise(list(smk.input.layers), list(smk.input.baselines), smk.wildcards.target,
                smk.output.table, smk.output.summary, alpha=float(smk.params.alpha))
logging.getLogger("turbtl.sweep_summary").info("best layer %s (runner-up %s, margin %s, paired p %s, resolved %s)",
                                                out["best_layer"], out["runner_up"], out["margin"],
                                                out["p_value"], out["resolved"])
