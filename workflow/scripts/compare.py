"""Snakemake script of rule compare: each predictor against the empirical sweep."""
import pandas as pd

import turbtl.runtime
from turbtl.io import read_json, write_json
from turbtl.predict import compare

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
summary = read_json(smk.input.summary)
res = compare(read_json(smk.input.prediction), pd.read_csv(smk.input.sweep), summary)
res["target"] = str(smk.wildcards.target)
for name, c in res["predictors"].items():
    log.info("%s: choice %s, best %s, spearman %s, within spread %s", name, c["choice"],
             c["empirical_best"], c["spearman"], c["within_spread"])
write_json(res, smk.output[0])
