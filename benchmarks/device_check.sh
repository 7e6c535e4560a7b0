#!/usr/bin/env bash
# One-off checks and measurements of issue 10 on a GPU machine (H100/H200 class, 16 cores,
# no internet; torch with CUDA, numpy, scipy, xarray, pandas, seaborn and pytest installed;
# snakemake and netCDF4 come from the wheelhouse .device/wheels, see below).
#
#   OUT=/some/dir bash benchmarks/device_check.sh            # on the GPU machine, ~10 min
#   OUT=/tmp/dc bash benchmarks/device_check.sh --dry-run    # anywhere: tiny sizes, CPU
#   PARTS="gpu_quick tests" ...      # only these parts, in this order (setup always first)
#   BENCH_DNS_GRIDS=1024x12,2048x4 ... # the grids of the compiled bench_dns variants
#
# Parts (each under `timeout`, each logged to $OUT/<part>.log with its exit status and wall
# time in $OUT/parts.tsv; a failed part does not stop the others):
#   setup      install the wheels of .device/wheels whose distribution is missing here (or
#              older than the wheel) into .device/site, with pip --no-index --no-deps, and
#              put .device/site and the repository on PYTHONPATH
#   tests      python -m pytest -q tests/test_device.py (the CUDA tests: GPU = CPU, CUDA
#              graph = eager, compiled = eager, a DNS that resumes on the GPU; the DNS ones
#              in both forms of dns.nonlinear, hence 110 s, with the compilations)
#   bench_dns  benchmarks/bench_dns.py: step / FFT ratio at 128^2 x 8, 1024^2 x 12 and
#              2048^2 x 4, float32, eager / graph / graph+band(+prune_inv, +prune), then
#              compiled+graph and compiled+graph+band(+prune_inv, +prune), each beside the
#              advective form of the tendency (+advective: 5 FFTs a step, the basdevant default
#              4; never measured on a GPU before) -> bench_dns.json,
#              bench_dns_compiled.json (prune: dns.prune inverse / both, never measured on a GPU
#              before; if it pays there, set fused.PRUNE_AUTO["cuda"])
#   gpu_quick  snakemake --cores 16 --configfile presets/gpu-quick.yaml in a fresh directory;
#              copies results/gpu-quick/summary.csv, its benchmarks/ and the Snakemake log to $OUT
#   les        benchmarks/bench_les.py: one LES step of the default batch and of the reference
#              preset's, against its CNN forward passes and FFTs -> les_*.json
#   reference  benchmarks/bench_reference.py: short runs of each reference stage (DNS of
#              the base and high_re shapes, filter, fit at 64 channels with amp none, tf32,
#              bf16), extrapolated -> reference.json
#
# The wheelhouse (made on a machine with internet for CPython 3.12 on manylinux x86_64, by
# benchmarks/make_wheelhouse.py; docs/cluster.md "Measuring on a GPU machine"):
#   python benchmarks/make_wheelhouse.py --check /path/to/python3.12
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python}
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; fi
OUT=${OUT:-$ROOT/.device/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SITE=$ROOT/.device/site
T0=$(date +%s%N)
: > "$OUT/parts.tsv"
export OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1

elapsed() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }   # ms since $1

# part NAME LIMIT_S FUNCTION: run FUNCTION under `timeout`, log, record exit status and wall time
part() {
    local name=$1 limit=$2 fn=$3 t rc
    t=$(date +%s%N)
    echo "=== $name (limit ${limit} s) ==="
    timeout --kill-after=15 "$limit" bash -c "$(declare -f "$fn"); $(declare -p ROOT PY DRY OUT SITE); $fn" \
        > "$OUT/$name.log" 2>&1
    rc=$?
    local ms; ms=$(elapsed "$t")
    printf '%s\t%d\t%d.%03d\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) >> "$OUT/parts.tsv"
    tail -n 25 "$OUT/$name.log"
    local why=""
    [ "$rc" = 124 ] && why=" (timed out)"
    printf '=== %s: exit %d%s, %d.%03d s; total so far %d s\n\n' "$name" "$rc" "$why" $((ms / 1000)) $((ms % 1000)) \
        $(( $(elapsed "$T0") / 1000 ))
}

setup() {
    "$PY" - <<'EOF'
import platform, sys
print("python", platform.python_version(), sys.executable)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
    if torch.cuda.is_available():
        print("gpu", torch.cuda.get_device_name(0))
except Exception as e:
    print("torch import failed:", e)
EOF
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
    nproc; free -g 2>/dev/null | head -2
    rm -rf "$SITE"
    mkdir -p "$SITE"
    # the wheels whose distribution is missing, or older than the wheel (never shadow a newer one)
    "$PY" - "$ROOT/.device/wheels" > "$ROOT/.device/to_install.txt" <<'EOF'
import importlib.metadata as md, pathlib, sys
try:
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename
    from packaging.version import Version
except ImportError:  # pip's own copy
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import parse_wheel_filename
    from pip._vendor.packaging.version import Version
supported = set(sys_tags())
for w in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name, version, _, tags = parse_wheel_filename(w.name)
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if not tags & supported:
        print(f"{name} {version}: SKIPPED, the wheel does not fit this Python ({sorted(map(str, tags))[0]})", file=sys.stderr)
    elif have is None or Version(have) < version:
        print(w)
        print(f"{name} {version}: install ({'installed ' + have if have else 'missing'})", file=sys.stderr)
    else:
        print(f"{name} {version}: keep installed {have}", file=sys.stderr)
EOF
    echo "installing $(wc -l < "$ROOT/.device/to_install.txt") of $(ls "$ROOT"/.device/wheels/*.whl | wc -l) wheels"
    if [ -s "$ROOT/.device/to_install.txt" ]; then
        "$PY" -m pip install --no-index --no-deps --no-compile --target "$SITE" $(cat "$ROOT/.device/to_install.txt")
    fi
    PYTHONPATH=$SITE:$ROOT "$PY" -c "import snakemake, netCDF4, yaml, jsonschema, tqdm; print('snakemake', snakemake.__version__, 'netCDF4', netCDF4.__version__)"
}

tests() {
    "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py
}

bench_dns() {
    if [ "$DRY" = 1 ]; then
        "$PY" benchmarks/bench_dns.py --threads 1 --no-memory --gpu-code-on-cpu --cpu-grids 32x2 --gpu-grids 32x2,64x2 \
            --seconds 0.05 --repeats 1 --json "$OUT/bench_dns.json"
    else
        # eager and CUDA graph on every grid first; then the compiled variants (each shape compiles
        # for tens of seconds) on the grid that matters most, the reference DNS's
        "$PY" benchmarks/bench_dns.py --threads 1 --no-memory --no-cpu --gpu-grids 1024x12,2048x4,128x8 --precisions float32 \
            --variants eager,graph,graph+band,graph+band+prune_inv,graph+band+prune,graph+advective,graph+band+advective \
            --seconds 0.15 --repeats 3 \
            --json "$OUT/bench_dns.json"
        "$PY" benchmarks/bench_dns.py --threads 1 --no-memory --no-cpu --gpu-grids "${BENCH_DNS_GRIDS:-1024x12,2048x4}" \
            --precisions float32 \
            --variants compiled+graph,compiled+graph+band,compiled+graph+band+prune_inv,compiled+graph+band+prune,compiled+graph+band+advective \
            --seconds 0.15 --repeats 2 --json "$OUT/bench_dns_compiled.json"
    fi
}

gpu_quick() {
    local work=$ROOT/.device/gpu-quick cfg=$ROOT/presets/gpu-quick.yaml run=gpu-quick rc
    rm -rf "$work"
    mkdir -p "$work"
    if [ "$DRY" = 1 ]; then   # plan the GPU preset, then run the tiny config for real
        "$PY" -m snakemake -n --snakefile "$ROOT/Snakefile" --directory "$work" --configfile "$cfg" --quiet rules \
            || echo "gpu-quick dry run FAILED"
        cfg=$ROOT/tests/config.tiny.yaml run=tiny
    fi
    local t; t=$(date +%s)
    # (-j is --cores' alias in a local run: 16 cores, jobs side by side on the one GPU);
    # --keep-going: one failed job does not hide the cost of the others.  GPU_QUICK_CONFIG:
    # extra --config overrides (e.g. "les={...}")
    timeout --kill-after=15 "${GPU_QUICK_LIMIT:-330}" "$PY" -m snakemake --snakefile "$ROOT/Snakefile" --directory "$work" \
        --configfile "$cfg" --cores 16 --rerun-incomplete --keep-going ${GPU_QUICK_CONFIG:+--config "$GPU_QUICK_CONFIG"}
    rc=$?
    echo "snakemake exit $rc after $(( $(date +%s) - t )) s"
    # the logs of failed jobs (their last lines), so that the reason comes back in the output
    for f in $(grep -l -E "Traceback|Error" "$work/results/$run"/logs/*/*.log 2>/dev/null | head -n 4); do
        echo "--- ${f#$work/}"; tail -n 15 "$f"
    done
    # few files come back from a device machine: the tables, the Snakemake log and one archive
    mkdir -p "$OUT/gpu_quick"
    cp "$work/results/$run/summary.csv" "$work/results/$run/summary_by_target.csv" "$OUT/gpu_quick/" 2>/dev/null
    cp "$work"/.snakemake/log/*.snakemake.log "$OUT/gpu_quick/" 2>/dev/null
    (cd "$work/results/$run" && tar czf "$OUT/gpu_quick/logs_benchmarks_json.tgz" logs benchmarks \
        $(find . -name "*.json" -size -200k 2>/dev/null) 2>/dev/null)
    ls -la "$work/results/$run/dns" "$OUT/gpu_quick" 2>/dev/null
    return $rc
}

reference() {
    if [ "$DRY" = 1 ]; then
        "$PY" benchmarks/bench_reference.py --quick --json "$OUT/reference.json"
    else
        "$PY" benchmarks/bench_reference.py --variants default --amp none,tf32,bf16 --json "$OUT/reference.json"
    fi
}

les() {   # the a-posteriori LES step against its CNN forward passes and FFTs (benchmarks/bench_les.py)
    local dev=cuda ref="--n 128 --starts 4 --channels 64 --repeats 5" reps=10
    # dry run on a CPU: the reference batch's shape cut to what one core steps in seconds
    [ "$DRY" = 1 ] && { dev=cpu; ref="--n 64 --starts 2 --channels 16 --repeats 2"; reps=3; }
    "$PY" benchmarks/bench_les.py --device $dev --repeats $reps --json "$OUT/les_default.json"
    # the reference preset's batch: 128^2, 16 closures x 4 starts, 64-channel networks
    "$PY" benchmarks/bench_les.py --device $dev $ref --json "$OUT/les_reference.json"
}

declare -A LIMIT=([tests]=110 [bench_dns]=${BENCH_DNS_PART:-200} [les]=45 [reference]=75 [gpu_quick]=${GPU_QUICK_PART:-350})

echo "device check: $ROOT -> $OUT (dry run: $DRY), $(date -Is)"
if [ -d "$ROOT/.device/wheels" ]; then
    part setup 90 setup
else
    echo "no .device/wheels: using the packages installed here" | tee "$OUT/setup.log"
fi
export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
# by default what issue 10 still needs first (one device session is 15 min in all, one call at
# most 10): the whole gpu-quick DAG (item 5, estimated ~4.5 min, cut at 5.5), the CUDA tests
# (the pruned transforms' one has never run), the step (item 3); then the LES and the
# reference stages, measured before.  Setup, gpu_quick and tests fit one 600-s call; bench_dns
# may need a second (PARTS="bench_dns").  PARTS gives its own order
for p in ${PARTS:-gpu_quick tests bench_dns les reference}; do
    [ -n "${LIMIT[$p]:-}" ] || { echo "unknown part $p (choose among ${!LIMIT[*]})"; continue; }
    part "$p" "${LIMIT[$p]}" "$p"
done
echo "device check done in $(( $(elapsed "$T0") / 1000 )) s; parts (name, exit, seconds):"
cat "$OUT/parts.tsv"
