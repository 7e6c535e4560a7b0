"""Snakemake script of rule filter: filtered psi, omega and the SGS term Pi on the LES grid."""
from turbtl.filters import filter_dns_file
from turbtl.runtime import script_setup

log, device = script_setup(snakemake)  # noqa: F821 (injected by Snakemake)
filter_dns_file(snakemake.input[0], snakemake.output.data, snakemake.output.spectra,  # noqa: F821
                dict(snakemake.params.system), dict(snakemake.params.filter), device,  # noqa: F821
                progress=True, log=log)
