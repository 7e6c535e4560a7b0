"""Snakemake script of rule compare: each predictor against the empirical sweep."""
import pandas as pd

import turbtl.runtime
from turbtl.io import read_json, write_json
from turbtl.verdict import compare

smk = snakemake  # noqa: F821
log = turbtl.runtime.log_to_rule_log(smk)
res = compare(read_json(smk.input.prediction), pd.read_csv(smk.input.sweep),
              alpha=float(smk.params.alpha), target=str(smk.wildcards.target))
for name, c in res["predictors"].items():
    log.info("%s: choice %s, best %s, regret %s, hit %s, spearman %s, cost %s of the sweep", name,
             c["choice"], c["empirical_best"], c["regret"], c["hit"], c["spearman"], c["cost_fraction"])
write_json(res, smk.output[0])
