"""Snakemake script of rule summary: predicted vs empirical best layer for every target and predictor."""
import pandas as pd

import turbtl.runtime
from turbtl import plots
from turbtl.io import atomic_path, read_json
from turbtl.predict import SUMMARY_COLUMNS, summary_rows

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
rows = []
for target, cpath, spath in zip(smk.params.targets, smk.input.comparisons, smk.input.summaries):
    rows += summary_rows(str(target), read_json(cpath), read_json(spath))
table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
log.info("\n%s", table.to_string())
with atomic_path(smk.output.table) as tmp:
    table.to_csv(tmp, index=False)
plots.summary(table, smk.output.figure)
