"""Snakemake script of rule transfer_layer: re-train one layer on the small target set, every seed."""
import turbtl.runtime
from turbtl.transfer import run_layer_job

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
run_layer_job(smk.input.model, smk.input.data, int(smk.wildcards.layer), smk.output.table,
              smk.output.weights, transfer_cfg=smk.params.transfer, n_small=int(smk.params.n_small),
              device=device, log=log)
