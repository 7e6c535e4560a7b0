# turbtl: the physics of transfer learning in data-driven 2D turbulence closures.
#
#   snakemake --cores 8                     # default config (config.yaml) -> results/default/
#   snakemake --cores 8 --configfile presets/reference.yaml    # a preset -> results/reference/
#   snakemake --profile slurm               # on a Slurm cluster (docs/cluster.md)
#
# The Snakefile only loads and validates the config, includes one .smk per stage and
# declares `rule all`.  Physics and learning live in the package `turbtl`.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the package turbtl, importable here also without pip install (common.smk sets it up for the jobs)
sys.path.insert(0, str(Path(workflow.basedir)))
from turbtl.config import DEFAULT_CONFIG, check_yaml_file

# config.yaml is the default config.  A file given with --configfile EXTENDS it, as Snakemake
# documents (a mapping merges key by key, any other value replaces), so a preset states only
# what it changes; --config key=value overrides single values.  check_yaml_file first: on a
# YAML syntax error Snakemake's own message names neither the file nor the line (a
# --configfile is read by Snakemake before this file runs: docs/troubleshooting.md).
check_yaml_file(DEFAULT_CONFIG)


configfile: str(DEFAULT_CONFIG)


include: "workflow/rules/common.smk"


# the resolved config beside the run's outputs (results/<run>/config.yaml): what this run is
onstart:
    write_run_config(config, P.RUN_CONFIG)


include: "workflow/rules/dns.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/les.smk"


# the report's front page (snakemake --report report.html)
report: "workflow/report/workflow.rst"


# jobs of seconds that only read small tables and draw figures: on a cluster they run on the
# node that runs Snakemake instead of each waiting in the queue as an sbatch job
localrules:
    system_spectra,
    sweep_summary,
    pair_summary,
    size_summary,
    compare,
    figures_target,
    figure_aposteriori,
    summary,


rule all:
    default_target: True
    input:
        all_outputs(),
