# turbtl: the physics of transfer learning in data-driven 2D turbulence closures.
#
#   snakemake --cores 8                     # default config (config.yaml)
#   snakemake --cores 8 --configfile presets/reference.yaml
#   snakemake --profile slurm               # on a Slurm cluster (see README)
#
# The Snakefile only loads and validates the config, includes one .smk per stage and
# declares `rule all`.  Physics and learning live in the package `turbtl`.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the package turbtl, importable here also without pip install (common.smk sets it up for the jobs)
sys.path.insert(0, str(Path(workflow.basedir)))
from turbtl.config import check_yaml_file

# config.yaml is the default.  A file given with --configfile REPLACES it (it must be a
# complete config; schema defaults fill optional keys), so a preset or a test config never
# inherits flows from config.yaml.  --config key=value still overrides single values.
# check_yaml_file first: on a YAML syntax error Snakemake's own message names neither the
# file nor the line.  (A --configfile is read by Snakemake before this file runs: for its
# syntax errors see README, "Adding a target flow": python -m turbtl.config FILE.)
if not workflow.overwrite_configfiles:
    check_yaml_file("config.yaml")

    configfile: "config.yaml"


include: "workflow/rules/common.smk"


# not in another replicate's directory (turbtl.config.check_replicate_directory): a run that
# would redo and overwrite that run stops before its first job; a dry run only warns
onstart:
    check_replicate_directory(config)


include: "workflow/rules/dns.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/les.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
