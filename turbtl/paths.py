"""The one place that decides every path the pipeline writes.

Every run writes into its own folder, ``results/<run>/`` (:func:`run_dir`: the config's
``run`` name, and ``-rep<r>`` for replicate r > 0), so that two configs never write the same
file.  The patterns below are relative to that folder: the rules get them rooted there
(:func:`rooted`, in workflow/rules/common.smk), and tools that read a finished run join them
to its folder (``Path("results/default") / DNS``).  Nothing is written outside the run's
folder: its logs are in ``logs/`` and Snakemake's resource records in ``benchmarks/`` there.
"""
from __future__ import annotations

from types import SimpleNamespace

#: the folder that holds every run's folder
RESULTS = "results"
#: the suffix of replicate r's folder (r > 0): results/<run>-rep<r>
REPLICATE_SUFFIX = "-rep"

#: the resolved config a run started with (written when its jobs start, docs/outputs.md)
RUN_CONFIG = "config.yaml"
DNS = "dns/{system}.nc"
FILTERED = "filtered/{system}.nc"
FILTERED_SPECTRA = "filtered/{system}_spectra.nc"

BASE_MODEL = "models/base.pt"
BASE_METRICS = "models/base_metrics.json"
BASE_HISTORY = "models/base_history.csv"
# resume state of an interrupted training: deliberately not a Snakemake output, so that
# Snakemake does not delete it when it cleans up an incomplete job
BASE_RESUME = "models/.resume/base.ckpt"

TRANSFER_DIR = "transfer/{target}"
TL_LAYER_CSV = TRANSFER_DIR + "/runs/layer{layer}.csv"
TL_LAYER_WEIGHTS = TRANSFER_DIR + "/runs/layer{layer}.pt"
TL_BASELINE_CSV = TRANSFER_DIR + "/runs/baseline_{method}.csv"
TL_BASELINE_WEIGHTS = TRANSFER_DIR + "/runs/baseline_{method}.pt"  # every trained baseline's networks, per seed
SWEEP_CSV = TRANSFER_DIR + "/sweep.csv"
SWEEP_SUMMARY = TRANSFER_DIR + "/summary.json"
SWEEP_HTML = TRANSFER_DIR + "/sweep.html"  # the per-layer table of summary.json, for the Snakemake report
# transfer.pairs: two layers re-trained together (a < b), and their summary
TL_PAIR_CSV = TRANSFER_DIR + "/runs/pair{a}_{b}.csv"
PAIRS_CSV = TRANSFER_DIR + "/pairs.csv"
PAIRS_SUMMARY = TRANSFER_DIR + "/pairs.json"

# transfer.fractions (the size study): the single-layer sweep at another small-set size n, and its summary
TL_SIZE_LAYER_CSV = TRANSFER_DIR + "/sizes/n{n}/layer{layer}.csv"
# ... and the small-set baselines (scratch, finetune_all) at n; their networks are temporary (no LES runs them)
TL_SIZE_BASELINE_CSV = TRANSFER_DIR + "/sizes/n{n}/baseline_{method}.csv"
TL_SIZE_BASELINE_WEIGHTS = TRANSFER_DIR + "/sizes/n{n}/baseline_{method}.pt"
SIZES_CSV = TRANSFER_DIR + "/sizes.csv"
SIZES_SUMMARY = TRANSFER_DIR + "/sizes.json"
SIZE_PREDICTORS_CSV = TRANSFER_DIR + "/size_predictors.csv"  # per size and predictor: choice, regret, hit

DIAG_DIR = "diagnostics"
BASE_KERNELS = DIAG_DIR + "/base_kernels.nc"
SYSTEM_SPECTRA = DIAG_DIR + "/{target}/system_spectra.nc"
TL_KERNELS = DIAG_DIR + "/{target}/tl_kernels.nc"
ACTIVATIONS = DIAG_DIR + "/{target}/activations.nc"
PREDICTION = DIAG_DIR + "/{target}/prediction.json"
COMPARISON = DIAG_DIR + "/{target}/comparison.json"
# transfer.fractions: the predictors again at another small-set size n (read before that size's sweep)
SIZE_PREDICTION = DIAG_DIR + "/{target}/sizes/n{n}/prediction.json"

LES_DIR = "les/{target}"
APOSTERIORI = LES_DIR + "/aposteriori.json"
LES_STATS = LES_DIR + "/les_stats.nc"

FIG_DIR = "figures"
FIG_BEST_LAYER = FIG_DIR + "/{target}/best_layer.png"
FIG_KERNELS = FIG_DIR + "/{target}/kernels.png"
FIG_ACTIVATIONS = FIG_DIR + "/{target}/activations.png"
FIG_SYSTEM_SPECTRA = FIG_DIR + "/{target}/system_spectra.png"
FIG_APOSTERIORI = FIG_DIR + "/{target}/aposteriori.png"
FIG_PAIRS = FIG_DIR + "/{target}/pairs.png"
FIG_SIZES = FIG_DIR + "/{target}/sizes.png"
FIG_SUMMARY = FIG_DIR + "/summary.png"
SUMMARY_CSV = "summary.csv"  # one row per predictor, over all targets
SUMMARY_BY_TARGET = "summary_by_target.csv"  # one row per (target, predictor)
SUMMARY_HTML = "summary.html"  # both tables, for the Snakemake report

# the one list of baseline methods (zero_shot first: it is the one that trains nothing)
BASELINE_METHODS = ("zero_shot", "scratch", "finetune_all", "full_target")


def log(rule: str, pattern: str = "") -> str:
    """Log file of a rule; ``pattern`` carries the wildcards, e.g. '{system}'."""
    return f"logs/{rule}/{pattern or 'all'}.log"


def bench(rule: str, pattern: str = "") -> str:
    """Snakemake ``benchmark:`` file of a rule (resource use per job)."""
    return f"benchmarks/{rule}/{pattern or 'all'}.tsv"


def run_dir(cfg: dict) -> str:
    """The folder of the run of a validated config: ``results/<run>``, ``results/<run>-rep<r>``
    for replicate r > 0 (a replicate is a run of its own)."""
    r = int(cfg.get("replicate", 0))
    return f"{RESULTS}/{cfg['run']}" + (f"{REPLICATE_SUFFIX}{r}" if r else "")


def rooted(root: str) -> SimpleNamespace:
    """This module's patterns and path helpers with ``root/`` in front: what the rules use."""
    out = {k: f"{root}/{v}" for k, v in globals().items()
           if k.isupper() and isinstance(v, str) and k not in ("RESULTS", "REPLICATE_SUFFIX")}
    return SimpleNamespace(**out, BASELINE_METHODS=BASELINE_METHODS, ROOT=root,
                           log=lambda rule, pattern="": f"{root}/{log(rule, pattern)}",
                           bench=lambda rule, pattern="": f"{root}/{bench(rule, pattern)}")
