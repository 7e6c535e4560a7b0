"""Snakemake script of rule summary: every predictor over every target (hit rate, regret, cost)."""
import pandas as pd

import turbtl.runtime
from turbtl import plots
from turbtl.html_tables import write_html_tables
from turbtl.io import read_json, write_csv
from turbtl.verdict import SUMMARY_COLUMNS, aggregate, summary_rows

smk = snakemake  # noqa: F821
log = turbtl.runtime.log_to_rule_log(smk)
rows = []
aps = list(getattr(smk.input, "aposteriori", [])) or [None] * len(smk.params.targets)  # none with les.enabled false
for target, cpath, apath in zip(smk.params.targets, smk.input.comparisons, aps, strict=True):
    rows += summary_rows(str(target), read_json(cpath), read_json(apath) if apath else None)
by_target = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
table = aggregate(by_target)
log.info("\n%s\n%s", by_target.to_string(), table.to_string())
write_csv(by_target, smk.output.by_target)
write_csv(table, smk.output.table)
plots.summary(by_target, table, smk.output.figure)
write_html_tables(smk.output.html, "Every predictor over every target",
                  [("Per predictor (summary.csv)", table), ("Per target and predictor (summary_by_target.csv)", by_target)])
