"""Snakemake script of rule train_base: train the CNN closure on the base flow."""
import turbtl.runtime
from turbtl.training import train_base

log, device = turbtl.runtime.script_setup(snakemake)  # noqa: F821
train_base(snakemake.input.data, snakemake.output.model, snakemake.output.metrics,  # noqa: F821
           snakemake.output.history, network_cfg=snakemake.params.network,  # noqa: F821
           training_cfg=snakemake.params.training, device=device,  # noqa: F821
           resume_path=snakemake.params.resume, log=log)  # noqa: F821
