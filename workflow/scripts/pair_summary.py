"""Snakemake script of rule pair_summary: pairs.csv, pairs.json and the pairs figure of one target (no torch device)."""
import logging
import os
import sys

import pandas as pd

from turbtl import plots
from turbtl.transfer import summarise_pairs

smk = snakemake  # noqa: F821
if smk.log:
    os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
    sys.stdout = sys.stderr = open(str(smk.log[0]), "w", buffering=1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
out = summarise_pairs(list(smk.input.pairs), list(smk.input.layers), smk.wildcards.target, smk.output.table,
                      smk.output.summary, alpha=float(smk.params.alpha))
plots.pairs(pd.read_csv(smk.output.table), out, smk.output.figure, target=smk.wildcards.target)
logging.getLogger("turbtl.pair_summary").info(
    "best pair %s, best single layer %s: single minus pair %s, paired p %s, pair better: %s", out["best_pair"],
    out["best_single"], out["diff_single_minus_pair"], out["p_value"], out["pair_beats_single"])
