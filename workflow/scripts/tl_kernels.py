"""Snakemake script of rule tl_kernels: what TL changed in each re-trained layer's kernels."""
import turbtl.runtime
from turbtl.diagnostics_files import tl_kernels_dataset
from turbtl.io import write_netcdf
from turbtl.training import load_checkpoint
from turbtl.transfer import load_layer_weights

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, _, _ = load_checkpoint(smk.input.model, "cpu")
weights = dict(load_layer_weights(p) for p in smk.input.weights)
ds = tl_kernels_dataset(model, weights, int(smk.params.n_les), percentile=float(smk.params.percentile))
ds.attrs["target"] = str(smk.wildcards.target)
log.info("most-changed kernels per layer: %s", ds["top_dw_norm"].max("rank").to_series().to_dict())
write_netcdf(ds, smk.output[0])
