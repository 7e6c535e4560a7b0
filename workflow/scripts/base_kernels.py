"""Snakemake script of rule base_kernels: kernel spectra and labels of every base layer."""
import turbtl.runtime
from turbtl.diagnostics_files import base_kernels_dataset
from turbtl.io import write_netcdf
from turbtl.training import load_checkpoint

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, _, meta = load_checkpoint(smk.input.model, "cpu")
ds = base_kernels_dataset(model, int(smk.params.n_les))
ds.attrs["model"] = str(smk.input.model)
for L in ds["layer"].values:
    log.info("layer %d label counts %s", L, dict(zip(ds.attrs["labels"].split(), ds["label_count"].sel(layer=L).values.tolist())))
log.info("k-means clusters per layer %s; purity against the rule-based classes %.3f",
         ds["cluster_count"].values.tolist(), ds.attrs["cluster_purity"])
write_netcdf(ds, smk.output[0])
