"""Snakemake script of rule activations: activation spectra of base and TL nets on base and target data."""
import torch

import turbtl.runtime
from turbtl.data import load_xy
from turbtl.diagnostics_files import activations_dataset
from turbtl.io import write_netcdf
from turbtl.predict import evenly
from turbtl.training import load_checkpoint
from turbtl.transfer import load_layer_weights

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, norm, _ = load_checkpoint(smk.input.model, device)
m = int(smk.params.samples)
xb = norm.x(evenly(load_xy(smk.input.base, "test")[0], m))
xt = norm.x(evenly(load_xy(smk.input.target, "test")[0], m))
weights = dict(load_layer_weights(p) for p in smk.input.weights)
with torch.no_grad():
    ds = activations_dataset(model, xb, xt, weights)
ds.attrs.update(target=str(smk.wildcards.target), data_split="test")
write_netcdf(ds, smk.output[0])
