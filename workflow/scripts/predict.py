"""Snakemake script of rule predict: per-layer scores from the base model and the small target set only."""
import turbtl.runtime
from turbtl.data import load_xy, small_subset
from turbtl.io import open_netcdf, write_json
from turbtl.predict import evenly, predict_layers
from turbtl.training import load_checkpoint
from turbtl.transfer import subset_seed

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, norm, _ = load_checkpoint(smk.input.model, device)
xb = norm.x(evenly(load_xy(smk.input.base, "train")[0], int(smk.params.samples)))
xs, ys = small_subset(smk.input.target, int(smk.params.n_small), seed=subset_seed(smk.params.transfer))
with open_netcdf(smk.input.base_spectra) as b, open_netcdf(smk.input.target_spectra) as t:
    b, t = b.load(), t.load()
pred = predict_layers(model, xb, norm.x(xs), norm.y(ys), b, t, smk.params.layers,
                      batch_size=int(smk.params.transfer.get("batch_size", 8)),
                      inputs=[smk.input.model, smk.input.base, smk.input.target,
                              smk.input.base_spectra, smk.input.target_spectra])
pred["target"] = str(smk.wildcards.target)
for name, p in pred["predictors"].items():
    log.info("%s: choice %d, scores %s", name, p["choice"], p["scores"])
write_json(pred, smk.output[0])
