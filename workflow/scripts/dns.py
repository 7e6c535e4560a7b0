"""Snakemake script of rule dns: one flow's batched DNS, snapshots streamed to netCDF."""
from turbtl.runtime import script_setup
from turbtl.solver import run_dns

log, device = script_setup(snakemake)  # noqa: F821 (injected by Snakemake)
run_dns(dict(snakemake.params.system), snakemake.output[0], dns_cfg=dict(snakemake.params.dns),  # noqa: F821
        device=device, progress=True, log=log)
