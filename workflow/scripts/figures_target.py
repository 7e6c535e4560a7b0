"""Snakemake script of rule figures_target: the leaf figures of one target."""
import pandas as pd

import turbtl.runtime
from turbtl import plots, plots_kernels
from turbtl.io import open_netcdf, read_json

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
target = str(smk.wildcards.target)
summary = read_json(smk.input.summary)
best = int(summary["best_layer"])
plots.best_layer(pd.read_csv(smk.input.sweep), summary, read_json(smk.input.prediction),
                 read_json(smk.input.comparison), smk.output.best_layer, target=target)
with open_netcdf(smk.input.tl_kernels) as ds:
    plots_kernels.kernels(ds.load(), smk.output.kernels, layer=best, target=target)
with open_netcdf(smk.input.activations) as ds:
    plots.activations(ds.load(), smk.output.activations, tl_layer=best, target=target)
with open_netcdf(smk.input.system_spectra) as ds:
    plots.system_spectra(ds.load(), smk.output.system_spectra, base=str(smk.params.base), target=target)
