# turbtl: the physics of transfer learning in data-driven 2D turbulence closures.
#
#   snakemake --cores 8                     # default config (config.yaml)
#   snakemake --cores 8 --configfile presets/reference.yaml
#   snakemake --profile slurm               # on a Slurm cluster (see README)
#
# The Snakefile only loads and validates the config, includes one .smk per stage and
# declares `rule all`.  Physics and learning live in the package `turbtl`.

from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default.  A file given with --configfile REPLACES it (it must be a
# complete config; schema defaults fill optional keys), so a preset or a test config never
# inherits flows from config.yaml.  --config key=value still overrides single values.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/dns.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/diagnostics.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
