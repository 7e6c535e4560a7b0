#!/usr/bin/env bash
# End-to-end test of the Slurm profile on a one-node cluster on this machine.
#
#   sudo tests/slurm/run_e2e.sh            # from anywhere; Debian/Ubuntu; ~10 min on 2 cores
#   TURBTL_SLURM_TEST=1 python -m pytest tests/test_slurm.py     # the same, from pytest
#
# 1. tests/slurm/setup_cluster.sh: installs Slurm + munge + slurmdbd + MariaDB (first time)
#    and starts a one-node cluster with accounting;
# 2. copies the repository (its working tree: tracked and untracked, not ignored files) to
#    two fresh temporary directories;
# 3. runs the tiny config through `snakemake --profile slurm` in the first copy (every job
#    an sbatch job, polled with sacct) and through a plain local `snakemake --cores N` in
#    the second, at the same time;
# 4. compares the two results/ trees (the run's folder, its logs included): the same set of files; netCDF variables, CSV tables,
#    JSON values and torch tensors equal within a float tolerance (wall-clock fields
#    excepted; figures and benchmark records are compared by presence only).
# Exit status 0 only if both runs succeed and the results match.
#
# The test cluster has no GPU: the run sets TURBTL_SLURM_GPUS=0 (the profile then asks for
# no GPUs), TURBTL_SLURM_ACCOUNT / TURBTL_SLURM_PARTITION to the test account and partition
# (so that the profile's account and partition settings are exercised), and
# --max-threads 1 in both runs (the profile asks for up to 16 threads per job; see THREADS).
#
# Environment: TURBTL_E2E_CONFIG (default tests/config.tiny.yaml), TURBTL_E2E_KEEP=1 keeps
# the temporary copies, TURBTL_E2E_THREADS (default 1) threads per job in both runs,
# TURBTL_E2E_SEQUENTIAL=1 runs the local run after the Slurm run,
# TURBTL_E2E_RTOL / TURBTL_E2E_ATOL (default 1e-4 / 1e-6, the atol relative to the
# largest magnitude of each compared array), TURBTL_E2E_SKIP_SETUP=1 uses a cluster that
# is already running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CONFIG=${TURBTL_E2E_CONFIG:-tests/config.tiny.yaml}
NCPU=$(nproc)
# Threads per job, the same in both runs: torch's CPU results depend (in the last bits) on
# the thread count, and a few outputs amplify that (ratios of spectra that are zero up to
# round-off).  1 also lets the one-node cluster run NCPU jobs at once.
THREADS=${TURBTL_E2E_THREADS:-1}
T0=$(date +%s)
say() { printf '[run_e2e %5ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

# --------------------------------------------------------------------------- 1. cluster
if [ "${TURBTL_E2E_SKIP_SETUP:-0}" != 1 ]; then
    if [ "$(id -u)" -eq 0 ]; then "$HERE/setup_cluster.sh"
    else sudo -E "$HERE/setup_cluster.sh"; fi
fi
T_SETUP=$(( $(date +%s) - T0 ))
say "cluster up after ${T_SETUP}s"
sinfo -h -o '%P %a %D %T %c CPUs %m MB' | sed 's/^/    /'
python -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || { say "ERROR: snakemake-executor-plugin-slurm is not installed; fix: pip install -e '.[slurm]'"; exit 1; }

# --------------------------------------------------------------------------- 2. copies
WORK=$(mktemp -d "${TMPDIR:-/tmp}/turbtl-e2e.XXXXXX")
SLURM_DIR=$WORK/slurm_run
LOCAL_DIR=$WORK/local_run
mkdir -p "$SLURM_DIR" "$LOCAL_DIR"
cleanup() {
    local rc=$?
    if [ $rc -eq 0 ] && [ "${TURBTL_E2E_KEEP:-0}" != 1 ]; then rm -rf "$WORK"
    else say "kept the run directories in $WORK"; fi
}
trap cleanup EXIT
( cd "$REPO" && git ls-files -z --cached --others --exclude-standard ) > "$WORK/files"
for d in "$SLURM_DIR" "$LOCAL_DIR"; do
    ( cd "$REPO" && tar --null -T "$WORK/files" --ignore-failed-read -cf - 2>/dev/null ) | tar -xf - -C "$d"
done
say "copied $(tr -cd '\0' < "$WORK/files" | wc -c) files of $REPO to $SLURM_DIR and $LOCAL_DIR"

# --------------------------------------------------------------------------- 3. runs
run_slurm() {
    cd "$SLURM_DIR"
    local t rc=0; t=$(date +%s)
    env TURBTL_SLURM_GPUS=0 \
        TURBTL_SLURM_ACCOUNT="${TURBTL_TEST_ACCOUNT:-turbtl}" \
        TURBTL_SLURM_PARTITION="${TURBTL_TEST_PARTITION:-debug}" \
        TURBTL_SLURM_GPU_PARTITION= TURBTL_SLURM_GPU_MODEL= TURBTL_SLURM_DNS_GPU=0 \
        snakemake --profile slurm --configfile "$CONFIG" --max-threads "$THREADS" \
            --slurm-init-seconds-before-status-checks 5 --latency-wait 30 --verbose \
        > "$WORK/slurm_run.log" 2>&1 || rc=$?
    echo $(( $(date +%s) - t )) > "$WORK/slurm_run.seconds"
    return $rc
}
run_local() {
    cd "$LOCAL_DIR"
    local t rc=0; t=$(date +%s)
    snakemake --cores "$NCPU" --max-threads "$THREADS" --configfile "$CONFIG" > "$WORK/local_run.log" 2>&1 || rc=$?
    echo $(( $(date +%s) - t )) > "$WORK/local_run.seconds"
    return $rc
}

say "snakemake --profile slurm --configfile $CONFIG --max-threads $THREADS  (log: $WORK/slurm_run.log)"
rc_slurm=0; rc_local=0
if [ "${TURBTL_E2E_SEQUENTIAL:-0}" = 1 ]; then
    run_slurm || rc_slurm=$?
    say "local: snakemake --cores $NCPU --max-threads $THREADS --configfile $CONFIG  (log: $WORK/local_run.log)"
    run_local || rc_local=$?
else
    say "local: snakemake --cores $NCPU --max-threads $THREADS --configfile $CONFIG, at the same time  (log: $WORK/local_run.log)"
    run_slurm & pid_slurm=$!
    run_local & pid_local=$!
    wait $pid_slurm || rc_slurm=$?
    wait $pid_local || rc_local=$?
fi
say "Slurm run: exit $rc_slurm in $(cat "$WORK/slurm_run.seconds" 2>/dev/null || echo '?')s; local run: exit $rc_local in $(cat "$WORK/local_run.seconds" 2>/dev/null || echo '?')s"
if [ $rc_slurm -ne 0 ]; then
    say "ERROR: the Slurm run failed; the end of its log:"; tail -40 "$WORK/slurm_run.log"
    if [ -d "$SLURM_DIR/logs/slurm" ]; then
        say "sbatch logs of failed jobs:"; find "$SLURM_DIR/logs/slurm" -name '*.log' -exec tail -n 20 {} +
    fi
    exit 1
fi
[ $rc_local -eq 0 ] || { say "ERROR: the local run failed; the end of its log:"; tail -40 "$WORK/local_run.log"; exit 1; }

njobs=$(sacct -X -n -P -S "$(date -d "@$T0" +%Y-%m-%dT%H:%M:%S)" -o JobID,State | grep -c COMPLETED || true)
say "sacct: $njobs Slurm jobs COMPLETED since the test started"
grep -q "Finished jobid" "$WORK/slurm_run.log" || { say "ERROR: no job finished in the Slurm run"; exit 1; }
grep -q "Status query timing.*command=sacct" "$WORK/slurm_run.log" \
    || { say "ERROR: the executor did not poll the job states with sacct"; exit 1; }
if grep -q "^localrule \(dns\|filter\|train_base\|transfer_layer\)" "$WORK/slurm_run.log"; then
    say "ERROR: a heavy rule ran on the submit host instead of as a Slurm job"; exit 1
fi

# --------------------------------------------------------------------------- 4. compare
say "comparing $SLURM_DIR/results with $LOCAL_DIR/results"
python - "$SLURM_DIR" "$LOCAL_DIR" "${TURBTL_E2E_RTOL:-1e-4}" "${TURBTL_E2E_ATOL:-1e-6}" <<'PY'
import json, math, sys
from pathlib import Path

import numpy as np

a_root, b_root = Path(sys.argv[1]), Path(sys.argv[2])
RTOL, ATOL = float(sys.argv[3]), float(sys.argv[4])
# wall-clock and machine-dependent fields: compared by presence, not value ("cost": the
# predictors' cost_fraction, mean_ and max_cost_fraction, ratios of two jobs' wall times)
VOLATILE = ("second", "elapsed", "wall", "duration", "date", "created", "history",
            "host", "timestamp", "runtime", "time_s", "path", "device", "cost")
problems, checked, worst = [], 0, (0.0, "")


def volatile(name):
    n = str(name).lower()
    return any(v in n for v in VOLATILE)


def files(root, sub):
    base = root / sub
    return {p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()} if base.exists() else set()


def close(x, y, where):
    """Arrays (or scalars) equal within rtol and an atol relative to their magnitude."""
    global checked, worst
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        problems.append(f"{where}: shape {x.shape} != {y.shape}")
        return
    if x.dtype.kind in "fciu" and y.dtype.kind in "fciu":
        x = x.astype(np.complex128 if "c" in (x.dtype.kind, y.dtype.kind) else np.float64)
        y = y.astype(x.dtype)
        fin = np.isfinite(x) & np.isfinite(y)
        if not np.array_equal(np.isfinite(x), np.isfinite(y)) or \
                not np.array_equal(x[~fin], y[~fin], equal_nan=True):
            problems.append(f"{where}: NaN/inf at different places")
            return
        if fin.any():
            scale = float(np.max(np.abs(y[fin])))
            atol = ATOL * max(scale, 1e-30)
            diff = np.abs(x[fin] - y[fin])
            rel = float(np.max(diff / (atol + RTOL * np.abs(y[fin]))))
            if rel > worst[0]:
                worst = (rel, where)
            if rel > 1.0:
                i = int(np.argmax(diff))
                problems.append(f"{where}: differs beyond tolerance: max |a-b| = {diff.max():.3g} "
                                f"(a={x[fin].ravel()[i]!r}, b={y[fin].ravel()[i]!r}, scale {scale:.3g})")
    elif not np.array_equal(x, y):
        problems.append(f"{where}: values differ")
    checked += 1


def cmp_tree(x, y, where):
    if isinstance(x, dict) and isinstance(y, dict):
        if set(x) != set(y):
            problems.append(f"{where}: keys differ: {sorted(set(x) ^ set(y), key=str)}")
        for k in set(x) & set(y):
            if not volatile(k):
                cmp_tree(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        if len(x) != len(y):
            problems.append(f"{where}: lengths {len(x)} != {len(y)}")
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in list(x) + list(y)):
            close(x, y, where)
        else:
            for i, (u, v) in enumerate(zip(x, y)):
                cmp_tree(u, v, f"{where}[{i}]")
    elif isinstance(x, bool) or isinstance(y, bool) or x is None or y is None or isinstance(x, str):
        if x != y:
            problems.append(f"{where}: {x!r} != {y!r}")
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
        close(x, y, where)
    elif type(x).__module__.startswith("torch"):
        import torch
        if isinstance(x, torch.Tensor):
            close(x.detach().cpu().numpy(), y.detach().cpu().numpy(), where)
        elif x != y:
            problems.append(f"{where}: {x!r} != {y!r}")
    elif isinstance(x, np.ndarray):
        close(x, y, where)
    elif x != y:
        problems.append(f"{where}: {x!r} != {y!r}")


def cmp_netcdf(pa, pb, rel):
    import xarray as xr
    with xr.open_dataset(pa, engine="netcdf4") as da, xr.open_dataset(pb, engine="netcdf4") as db:
        names_a, names_b = set(da.variables), set(db.variables)
        if names_a != names_b:
            problems.append(f"{rel}: variables differ: {sorted(names_a ^ names_b)}")
        for v in sorted(names_a & names_b):
            if da[v].dims != db[v].dims:
                problems.append(f"{rel}:{v}: dims {da[v].dims} != {db[v].dims}")
                continue
            close(da[v].values, db[v].values, f"{rel}:{v}")
        cmp_tree({k: v for k, v in da.attrs.items()}, {k: v for k, v in db.attrs.items()}, f"{rel}:attrs")


def cmp_csv(pa, pb, rel):
    import pandas as pd
    ta, tb = pd.read_csv(pa), pd.read_csv(pb)
    if list(ta.columns) != list(tb.columns) or len(ta) != len(tb):
        problems.append(f"{rel}: columns/rows differ: {list(ta.columns)} x {len(ta)} vs {list(tb.columns)} x {len(tb)}")
        return
    for c in ta.columns:
        if volatile(c):
            continue
        if ta[c].dtype.kind in "fiub" and tb[c].dtype.kind in "fiub":
            close(ta[c].to_numpy(), tb[c].to_numpy(), f"{rel}:{c}")
        elif not ta[c].astype(str).equals(tb[c].astype(str)):
            problems.append(f"{rel}:{c}: values differ")


def cmp_torch(pa, pb, rel):
    import torch
    cmp_tree(torch.load(pa, map_location="cpu", weights_only=False),
             torch.load(pb, map_location="cpu", weights_only=False), rel)


fa, fb = files(a_root, "results"), files(b_root, "results")  # the run's folder: its logs and records too
for what, x, y in (("results", fa, fb),):
    if x != y:
        problems.append(f"{what}: file sets differ: only in the Slurm run {sorted(x - y)}, "
                        f"only in the local run {sorted(y - x)}")
counts = {}
for rel in sorted(fa & fb):
    pa, pb = a_root / rel, b_root / rel
    suf = pa.suffix
    try:
        if "/benchmarks/" in rel or suf in (".png", ".pdf", ".svg", ".html", ".log"):
            kind = "presence"
        elif suf == ".nc":
            kind = "netcdf"; cmp_netcdf(pa, pb, rel)
        elif suf in (".csv", ".tsv"):
            kind = "table"; cmp_csv(pa, pb, rel)
        elif suf == ".json":
            kind = "json"; cmp_tree(json.loads(pa.read_text()), json.loads(pb.read_text()), rel)
        elif suf in (".pt", ".ckpt"):
            kind = "torch"; cmp_torch(pa, pb, rel)
        else:
            kind = "bytes"
            if pa.read_bytes() != pb.read_bytes():
                problems.append(f"{rel}: contents differ")
    except Exception as e:  # an unreadable file is a mismatch, not a crash
        kind = "error"; problems.append(f"{rel}: could not compare: {type(e).__name__}: {e}")
    counts[kind] = counts.get(kind, 0) + 1

print(f"compared {len(fa & fb)} result files ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}), "
      f"{checked} arrays/values; largest difference {worst[0]:.3g} x tolerance at {worst[1] or '-'} "
      f"(rtol {RTOL:g}, atol {ATOL:g} x magnitude)")
if not fa:
    problems.append("no result files at all")
if problems:
    print(f"MISMATCH: {len(problems)} problem(s):")
    for p in problems[:60]:
        print("  -", p)
    sys.exit(1)
print("MATCH: the Slurm run and the local run produced the same results")
PY
say "PASS: total ${SECONDS}s (cluster setup ${T_SETUP}s, Slurm run $(cat "$WORK/slurm_run.seconds")s, local run $(cat "$WORK/local_run.seconds")s)"
