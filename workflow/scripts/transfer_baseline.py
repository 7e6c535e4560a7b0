"""Snakemake script of rule transfer_baseline: one baseline (zero_shot, scratch, finetune_all, full_target)."""
import turbtl.runtime
from turbtl.transfer import run_baseline_job

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
run_baseline_job(smk.input.model, smk.input.data, smk.wildcards.method, smk.output.table,
                 transfer_cfg=smk.params.transfer, training_cfg=smk.params.training,
                 network_cfg=smk.params.network, n_small=int(smk.params.n_small),
                 device=device, log=log, out_weights=smk.output.weights)
