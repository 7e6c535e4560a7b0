"""Snakemake script of rule aposteriori: every closure of one target inside one batched LES."""
import turbtl.runtime
from turbtl.aposteriori import run_aposteriori_job

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
run_aposteriori_job(smk.input.data, smk.input.model, dict(zip(smk.params.layers, smk.input.weights)),
                    dict(zip(smk.params.methods, smk.input.baselines)), smk.output.json, smk.output.stats,
                    les_cfg=smk.params.les, seed=0, cfl_max=float(smk.params.cfl_max), device=device, log=log)
