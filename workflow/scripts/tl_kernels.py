"""Snakemake script of rule tl_kernels: what TL changed in each re-trained layer's kernels."""
import turbtl.runtime
from turbtl.diagnostics_files import centroids_of, tl_kernels_dataset
from turbtl.io import open_netcdf, write_netcdf
from turbtl.training import load_checkpoint
from turbtl.transfer import load_layer_weights

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, _, _ = load_checkpoint(smk.input.model, "cpu")
weights = dict(load_layer_weights(p) for p in smk.input.weights)
with open_netcdf(smk.input.base_kernels) as bk:
    centroids = centroids_of(bk)
ds = tl_kernels_dataset(model, weights, int(smk.params.n_les), percentile=float(smk.params.percentile),
                        centroids=centroids)
ds.attrs["target"] = str(smk.wildcards.target)
log.info("most-changed kernels per layer: %s", ds["top_dw_norm"].max("rank").to_series().to_dict())
log.info("kernels per base cluster, before -> after TL: %s",
         {int(L): (ds["cluster_count_before"].sel(tl_layer=L).values.tolist(),
                   ds["cluster_count_after"].sel(tl_layer=L).values.tolist()) for L in ds["tl_layer"].values})
write_netcdf(ds, smk.output[0])
