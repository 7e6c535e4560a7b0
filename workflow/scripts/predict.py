"""Snakemake script of rule predict: per-layer scores from the base model and the small target set only."""
import turbtl.runtime
from turbtl.data import load_xy, small_subset
from turbtl.io import write_json
from turbtl.predict import data_spectra, evenly, predict_layers
from turbtl.training import load_checkpoint
from turbtl.transfer import predictor_draw

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
model, norm, _ = load_checkpoint(smk.input.model, device)
tcfg, pcfg = smk.params.transfer, smk.params.predict
xb_all, yb_all = load_xy(smk.input.base, "train")
xb = norm.x(evenly(xb_all, int(smk.params.samples)))
xs, ys = small_subset(smk.input.target, int(smk.params.n_small), seed=predictor_draw(tcfg))
# the data weights from what the predictors may see: the base's training data and the small set
b, t = data_spectra(xb_all, yb_all), data_spectra(xs, ys)
probe = {"epochs": pcfg["probe_epochs"], "holdout": pcfg["probe_holdout"], "lr": tcfg["lr"],
         "batch_size": tcfg["batch_size"], "seed": 0}
pred = predict_layers(model, xb, norm.x(xs), norm.y(ys), b, t, smk.params.layers,
                      batch_size=int(tcfg.get("batch_size", 8)), probe=probe, device=device,
                      inputs=[smk.input.model, smk.input.base, smk.input.target])
pred["target"] = str(smk.wildcards.target)
pred["small_set_draw"] = list(predictor_draw(tcfg))
for name, p in pred["predictors"].items():
    log.info("%s: choice %d (%.2f s), scores %s", name, p["choice"], p["seconds"], p["scores"])
write_json(pred, smk.output[0])
