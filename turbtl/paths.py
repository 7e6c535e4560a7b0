"""The one place that decides every path the pipeline writes.

Snakemake rules (workflow/rules/*.smk) and tests import from here.  All paths are relative
to the working directory the workflow runs in; nothing is written outside ``results/``
and ``logs/``.
"""
from __future__ import annotations

RESULTS = "results"
LOGS = "logs"

DNS = RESULTS + "/dns/{system}.nc"
FILTERED = RESULTS + "/filtered/{system}.nc"
FILTERED_SPECTRA = RESULTS + "/filtered/{system}_spectra.nc"

BASE_MODEL = RESULTS + "/models/base.pt"
BASE_METRICS = RESULTS + "/models/base_metrics.json"
BASE_HISTORY = RESULTS + "/models/base_history.csv"
# resume state of an interrupted training: deliberately not a Snakemake output, so that
# Snakemake does not delete it when it cleans up an incomplete job
BASE_RESUME = RESULTS + "/models/.resume/base.ckpt"

TRANSFER_DIR = RESULTS + "/transfer/{target}"
TL_LAYER_CSV = TRANSFER_DIR + "/runs/layer{layer}.csv"
TL_LAYER_WEIGHTS = TRANSFER_DIR + "/runs/layer{layer}.pt"
TL_BASELINE_CSV = TRANSFER_DIR + "/runs/baseline_{method}.csv"
TL_BASELINE_WEIGHTS = TRANSFER_DIR + "/runs/baseline_{method}.pt"  # every trained baseline's networks, per seed
SWEEP_CSV = TRANSFER_DIR + "/sweep.csv"
SWEEP_SUMMARY = TRANSFER_DIR + "/summary.json"
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

DIAG_DIR = RESULTS + "/diagnostics"
BASE_KERNELS = DIAG_DIR + "/base_kernels.nc"
SYSTEM_SPECTRA = DIAG_DIR + "/{target}/system_spectra.nc"
TL_KERNELS = DIAG_DIR + "/{target}/tl_kernels.nc"
ACTIVATIONS = DIAG_DIR + "/{target}/activations.nc"
PREDICTION = DIAG_DIR + "/{target}/prediction.json"
COMPARISON = DIAG_DIR + "/{target}/comparison.json"
# transfer.fractions: the predictors again at another small-set size n (read before that size's sweep)
SIZE_PREDICTION = DIAG_DIR + "/{target}/sizes/n{n}/prediction.json"

LES_DIR = RESULTS + "/les/{target}"
APOSTERIORI = LES_DIR + "/aposteriori.json"
LES_STATS = LES_DIR + "/les_stats.nc"

FIG_DIR = RESULTS + "/figures"
FIG_BEST_LAYER = FIG_DIR + "/{target}/best_layer.png"
FIG_KERNELS = FIG_DIR + "/{target}/kernels.png"
FIG_ACTIVATIONS = FIG_DIR + "/{target}/activations.png"
FIG_SYSTEM_SPECTRA = FIG_DIR + "/{target}/system_spectra.png"
FIG_APOSTERIORI = FIG_DIR + "/{target}/aposteriori.png"
FIG_PAIRS = FIG_DIR + "/{target}/pairs.png"
FIG_SIZES = FIG_DIR + "/{target}/sizes.png"
FIG_SUMMARY = FIG_DIR + "/summary.png"
SUMMARY_CSV = RESULTS + "/summary.csv"  # one row per predictor, over all targets
SUMMARY_BY_TARGET = RESULTS + "/summary_by_target.csv"  # one row per (target, predictor)

# the one list of baseline methods (zero_shot first: it is the one that trains nothing)
BASELINE_METHODS = ("zero_shot", "scratch", "finetune_all", "full_target")


def log(rule: str, pattern: str = "") -> str:
    """Log file of a rule; ``pattern`` carries the wildcards, e.g. '{system}'."""
    return f"{LOGS}/{rule}/{pattern or 'all'}.log"


def bench(rule: str, pattern: str = "") -> str:
    """Snakemake ``benchmark:`` file of a rule (resource use per job)."""
    return f"{RESULTS}/benchmarks/{rule}/{pattern or 'all'}.tsv"
