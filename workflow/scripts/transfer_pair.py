"""Snakemake script of rule transfer_pair: re-train layers a < b together on the small target set, every seed."""
import turbtl.runtime
from turbtl.pairs import run_pair_job

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
run_pair_job(smk.input.model, smk.input.data, int(smk.wildcards.a), int(smk.wildcards.b), smk.output.table,
             transfer_cfg=smk.params.transfer, n_small=int(smk.params.n_small), device=device, log=log)
