"""Snakemake script of rule figure_aposteriori: spectra, PDFs and a-posteriori error per layer of one target."""
import turbtl.runtime
from turbtl.io import open_netcdf, read_json
from turbtl.plots_les import aposteriori

smk = snakemake  # noqa: F821
log = turbtl.runtime.log_to_rule_log(smk)
with open_netcdf(smk.input.stats) as ds:
    aposteriori(ds.load(), read_json(smk.input.aposteriori), read_json(smk.input.summary), read_json(smk.input.comparison),
                smk.output[0], target=str(smk.wildcards.target))
