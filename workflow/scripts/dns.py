"""Snakemake script of rule dns: one flow's batched DNS, snapshots streamed to netCDF.

The rule's ``params.dns`` holds the keys that decide the result; the speed and resume
settings (checkpoint_minutes, cuda_graph, compile, band, prune) come from the config directly, so that
changing them does not make Snakemake rerun a finished DNS (params are a rerun trigger).
A rerun of an interrupted job continues from its checkpoint (turbtl.solver, Resume)."""
from turbtl.runtime import script_setup
from turbtl.solver import run_dns

log, device = script_setup(snakemake)  # noqa: F821 (injected by Snakemake)
dns_cfg = {**snakemake.config.get("dns", {}), **snakemake.params.dns}  # noqa: F821
run_dns(dict(snakemake.params.system), snakemake.output[0], dns_cfg=dns_cfg,  # noqa: F821
        device=device, progress=True, log=log)
