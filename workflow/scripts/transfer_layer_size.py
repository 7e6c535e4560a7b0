"""Snakemake script of rule transfer_layer_size: the sweep's re-training of one layer at small-set size n."""
import turbtl.runtime
from turbtl.transfer import run_layer_job

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
run_layer_job(smk.input.model, smk.input.data, int(smk.wildcards.layer), smk.output.table, None,
              transfer_cfg=smk.params.transfer, n_small=int(smk.wildcards.n), device=device, log=log)
