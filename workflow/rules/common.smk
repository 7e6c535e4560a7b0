# Helpers shared by the rules: config validation (before any job starts), paths,
# resources and the lists of expected outputs.
import math
import os
import sys
from pathlib import Path

# the package turbtl is importable here and in every job's script, also without pip install
sys.path.insert(0, str(Path(workflow.basedir)))
# (set, not required: so no `envvars:` directive)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (str(Path(workflow.basedir)), os.environ.get("PYTHONPATH", "")) if p))
# OpenMP threads that spin while waiting steal the cores of the other jobs: measured here,
# a 2-thread 256^2 DNS on a loaded 2-core machine ran at 6.7 steps/s spinning and 77 passive.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from turbtl import paths as P
from turbtl.config import (
    validate_config,
    base_train_snapshots,
    name_run,
    overlay_flows,
    own_flows,
    small_set_size,
    small_set_sizes,
    tl_layers,
    replicated,
    write_run_config,
    DEFAULT_CONFIG,
    REPLICATED_SEEDS,
)
from turbtl import ConfigError
from turbtl.config_checks import config_warnings, device_problems, dns_params

# the overlay files (--configfile; config.yaml, always read first, is not one): a flow they
# define replaces config.yaml's of that name (turbtl.config.overlay_flows), and they name the
# run unless --config does (turbtl.config.name_run)
OVERLAYS = [f for f in workflow.config_settings.configfiles if Path(f).resolve() != DEFAULT_CONFIG.resolve()]
overlay_flows(config, OVERLAYS, workflow.config_settings.config)
name_run(config, OVERLAYS, workflow.config_settings.config)
validate_config(
    config,
    Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
    config_files=workflow.configfiles,
)
# what the machine that starts the jobs cannot do (device: cuda without CUDA), and what a valid
# config may not mean (idle flows, shared seeds, ...): by the main process only (a cluster job
# parses this file again, on its own machine)
if workflow.is_main_process:
    if _problems := device_problems(config):
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(_problems))
    for _w in config_warnings(config, own=own_flows(OVERLAYS)):
        print(f"turbtl warning: {_w}", file=sys.stderr)

# every path of this run, under its own folder results/<run>/ (turbtl.paths)
P = P.rooted(P.run_dir(config))

BASE = config["base"]
TARGETS = list(config["targets"])
SYSTEMS = [BASE] + TARGETS
LAYERS = tl_layers(config)
METHODS = [m for m in P.BASELINE_METHODS if m == "zero_shot" or config["transfer"]["baselines"][m]]
N_SMALL = small_set_size(config)
# the a-posteriori LES runs the trained baselines that the issue's comparison names (scratch is
# the a-priori floor only: it is not run inside the LES)
LES = bool(config["les"]["enabled"])
LES_BASELINES = [m for m in ("finetune_all", "full_target") if config["transfer"]["baselines"][m]]
# transfer.pairs: every pair a < b of the sweep's layers, re-trained together
PAIRS = [(a, b) for i, a in enumerate(LAYERS) for b in LAYERS[i + 1 :]] if config["transfer"]["pairs"] else []
# transfer.fractions (the size study): {n: fraction} of every small-set size, the main one
# included ({} when off); the main size's runs are the sweep's, the others get their own jobs
SIZES = small_set_sizes(config)
EXTRA_SIZES = [n for n in SIZES if n != N_SMALL]
# ... and the baselines that depend on the small set, at every size (zero shot and full target do not)
SIZE_BASELINES = [m for m in ("scratch", "finetune_all") if m in METHODS]


wildcard_constraints:
    system="|".join(map(str, SYSTEMS)),
    target="|".join(map(str, TARGETS)),
    layer=r"\d+",
    a=r"\d+",
    b=r"\d+",
    n=r"\d+",
    method="|".join(P.BASELINE_METHODS),


def keys(section, *names):
    """Only the keys of ``config[section]`` that a job reads: a change of any other key of the
    section then leaves that job complete (Snakemake's params trigger compares values).  A
    seed comes shifted for the replicate (turbtl.config.replicated), so that a job's params
    hold the seed it uses."""
    return {k: seeded(section, k) for k in names}


def seeded(section, key):
    """``config[section][key]``, shifted for the replicate if it is a seed."""
    v = config[section][key]
    return replicated(config, v) if (section, key) in REPLICATED_SEEDS else v


def sys_cfg(wc):
    name = wc.system if hasattr(wc, "system") else wc.target
    s = config["systems"][name]
    return dict(s, name=name, seed=replicated(config, s["seed"]))


def dns_sys_cfg(wc):
    # what the DNS job reads of a flow (turbtl.config_checks.dns_params), with its name
    return dns_params(sys_cfg(wc), extra=("name",))


def dns_mem_mb(wc):
    s = config["systems"][wc.system]
    state = s["members"] * s["n_dns"] ** 2 * 8  # one complex64/float64 field per member
    return int(600 + 40 * state / 1e6)


def filter_mem_mb(wc):
    s = config["systems"][wc.system]
    return int(800 + 60 * s["members"] * s["n_dns"] ** 2 * 8 / 1e6)


def les_snapshots(name):
    s = config["systems"][name]
    return s["members"] * s["snapshots_per_member"] * s["n_les"] ** 2


def train_mem_mb(wc=None):
    return int(1500 + 40 * les_snapshots(BASE) * 4 / 1e6)


def size_layer_csvs(wc):
    """transfer.fractions: every size's layer runs of a target, the main size's from the sweep itself."""
    return {
        n: expand(
            P.TL_LAYER_CSV if n == N_SMALL else P.TL_SIZE_LAYER_CSV,
            target=wc.target,
            n=n,
            layer=LAYERS,
        )
        for n in SIZES
    }


def size_baseline_csvs(wc):
    """transfer.fractions: every size's small-set baselines (SIZE_BASELINES) of a target, the main size's the sweep's."""
    return {
        n: expand(P.TL_BASELINE_CSV if n == N_SMALL else P.TL_SIZE_BASELINE_CSV, target=wc.target, n=n, method=SIZE_BASELINES)
        for n in SIZES
    }


def size_predictions(wc):
    """transfer.fractions: every size's prediction of a target, the main size's the predict job's."""
    return {n: (P.PREDICTION if n == N_SMALL else P.SIZE_PREDICTION).format(target=wc.target, n=n) for n in SIZES}


def all_outputs():
    # EVERY job's outputs, the intermediate ones too (DNS, filtered data, each TL run): Snakemake
    # does not remake a missing intermediate file whose consumers exist, so a job that was
    # rerunning for a changed setting (e.g. a `dns` key only the dns rule reads), interrupted
    # after Snakemake deleted its old output, would otherwise be skipped by the same command
    # (found by an interruption audit).  Listed here, a missing file is always remade, and
    # everything downstream of it after it.
    out = [P.BASE_MODEL, P.BASE_METRICS, P.BASE_HISTORY, P.BASE_KERNELS, P.FIG_SUMMARY, P.SUMMARY_CSV, P.SUMMARY_BY_TARGET]
    out += [P.SUMMARY_HTML]
    for s in SYSTEMS:
        out += [P.DNS.format(system=s), P.FILTERED.format(system=s), P.FILTERED_SPECTRA.format(system=s)]
    for t in TARGETS:
        out += expand(P.TL_LAYER_CSV, target=t, layer=LAYERS) + expand(P.TL_LAYER_WEIGHTS, target=t, layer=LAYERS)
        out += expand(P.TL_BASELINE_CSV, target=t, method=METHODS)
        out += expand(P.TL_BASELINE_WEIGHTS, target=t, method=METHODS)
        out += [P.SYSTEM_SPECTRA.format(target=t), P.TL_KERNELS.format(target=t), P.ACTIVATIONS.format(target=t)]
        if LES:
            out += [P.LES_STATS.format(target=t)]
        out += [
            P.SWEEP_CSV.format(target=t),
            P.SWEEP_SUMMARY.format(target=t),
            P.SWEEP_HTML.format(target=t),
            P.PREDICTION.format(target=t),
            P.COMPARISON.format(target=t),
            P.FIG_BEST_LAYER.format(target=t),
            P.FIG_KERNELS.format(target=t),
            P.FIG_ACTIVATIONS.format(target=t),
            P.FIG_SYSTEM_SPECTRA.format(target=t),
        ]
        if LES:
            out += [P.APOSTERIORI.format(target=t), P.FIG_APOSTERIORI.format(target=t)]
        out += [P.TL_PAIR_CSV.format(target=t, a=a, b=b) for a, b in PAIRS]
        if PAIRS:
            out += [P.PAIRS_CSV.format(target=t), P.PAIRS_SUMMARY.format(target=t), P.FIG_PAIRS.format(target=t)]
        out += expand(P.TL_SIZE_LAYER_CSV, target=t, n=EXTRA_SIZES, layer=LAYERS)
        out += expand(P.TL_SIZE_BASELINE_CSV, target=t, n=EXTRA_SIZES, method=SIZE_BASELINES)
        out += expand(P.SIZE_PREDICTION, target=t, n=EXTRA_SIZES)
        if SIZES:
            out += [P.SIZES_CSV.format(target=t), P.SIZES_SUMMARY.format(target=t), P.SIZE_PREDICTORS_CSV.format(target=t)]
            out += [P.FIG_SIZES.format(target=t)]
    return out
