"""The Slurm profile (slurm/config.yaml): a fast dry-run check that always runs, and the
end-to-end run on a one-node cluster (tests/slurm/run_e2e.sh) when TURBTL_SLURM_TEST=1.

The dry run needs no cluster: Slurm's commands are replaced by stubs that fail and
record every call, and the test checks that nothing was submitted.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = "tests/config.tiny.yaml"
# the rules that get a GPU: the training rules (pairs included) and the a-posteriori LES
GPU_RULES = {"train_base", "transfer_layer", "transfer_pair", "transfer_layer_size", "transfer_baseline",
             "transfer_baseline_size", "aposteriori"}
SLURM_COMMANDS = ("sbatch", "srun", "sacct", "squeue", "sinfo", "scontrol", "sacctmgr", "sshare", "scancel")
PROFILE_ENV = ("TURBTL_SLURM_ACCOUNT", "TURBTL_SLURM_PARTITION", "TURBTL_SLURM_GPU_PARTITION",
               "TURBTL_SLURM_GPUS", "TURBTL_SLURM_GPU_MODEL", "TURBTL_SLURM_DNS_GPU")


def _stub_path(tmp_path: Path) -> tuple[str, Path]:
    """A PATH whose Slurm commands fail and append their command line to calls.log."""
    bindir = tmp_path / "slurm-stubs"
    bindir.mkdir(parents=True)
    calls = tmp_path / "calls.log"
    for name in SLURM_COMMANDS:
        f = bindir / name
        f.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\necho "{name}: stub, no cluster" >&2\nexit 1\n')
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", calls


def _jobs(output: str) -> list[dict]:
    """Parse the job blocks of a dry run: rule, wildcards, threads, resources."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        m = re.match(r"(local)?rule (\w+):", block)
        if not m:
            continue
        job = {"rule": m.group(2), "local": bool(m.group(1)), "threads": 1, "resources": {}}
        t = re.search(r"^\s+threads: (\d+)$", block, re.M)
        if t:
            job["threads"] = int(t.group(1))
        r = re.search(r"^\s+resources: (.*)$", block, re.M)
        if r:
            for item in r.group(1).split(", "):
                k, _, v = item.partition("=")
                job["resources"][k] = v
        w = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        job["wildcards"] = w.group(1) if w else ""
        jobs.append(job)
    return jobs


def _dry_run(tmp_path: Path, **env_settings: str) -> tuple[list[dict], str, str]:
    pytest.importorskip("snakemake_executor_plugin_slurm",
                        reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    path, calls = _stub_path(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV}
    env.update(env_settings, PATH=path)
    # --cores only makes the dry run print the threads a job gets (without it a dry run
    # caps them at 1); --forceall lists every job even if results/ exists in the checkout.
    # transfer.pairs and the size study on: the pair and size jobs get their resources too
    cmd = [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "--forceall", "--cores", "64",
           "--configfile", TINY, "--config", "transfer={pairs: true, fractions: [0.25]}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"`snakemake --profile slurm -n` failed:\n{out[-4000:]}"
    assert "Using profile slurm" in out or "Using profiles slurm" in out  # + profiles/default
    log = calls.read_text() if calls.exists() else ""
    assert "sbatch" not in log and "srun" not in log, f"a dry run submitted a job:\n{log}"
    return _jobs(proc.stdout), out, log


def test_profile_dry_run_defaults(tmp_path):
    """`snakemake --profile slurm -n` from the repo root: every job, with the profile's resources."""
    jobs, out, _ = _dry_run(tmp_path)
    rules = {j["rule"] for j in jobs}
    expected = {"dns", "filter", "train_base", "transfer_layer", "transfer_pair", "pair_summary", "transfer_layer_size",
                "size_summary", "transfer_baseline", "transfer_baseline_size",
                "sweep_summary",
                "base_kernels", "system_spectra", "tl_kernels", "activations", "predict", "predict_size", "compare",
                "figures_target", "summary", "aposteriori"}
    assert expected <= rules, f"missing rules in the dry run: {expected - rules}"
    for j in jobs:
        if j["rule"] == "all":
            continue
        res = j["resources"]
        assert not j["local"], f"{j['rule']} would run on the submit host"
        # every job has a memory request (from the rule) and a wall time in minutes
        assert int(res["mem_mb"]) >= 500, j
        assert int(res["runtime"]) >= 5, j
        assert "slurm_account" not in res and "slurm_partition" not in res, \
            f"account/partition set although TURBTL_SLURM_ACCOUNT/PARTITION are unset: {j}"
        if j["rule"] in GPU_RULES:
            assert res.get("gpu") == "1", f"{j['rule']} should ask for one GPU: {res}"
        else:
            assert "gpu" not in res, f"{j['rule']} should be CPU-only: {res}"
    by_rule = {j["rule"]: j for j in jobs}
    assert by_rule["dns"]["threads"] == 16 and by_rule["filter"]["threads"] == 4
    assert by_rule["train_base"]["threads"] == 4
    # wall times with units in the profile: 48h DNS, 12h base training, 2h a-posteriori LES (minutes here)
    assert by_rule["dns"]["resources"]["runtime"] == str(48 * 60)
    assert by_rule["train_base"]["resources"]["runtime"] == str(12 * 60)
    assert by_rule["aposteriori"]["resources"]["runtime"] == str(2 * 60)
    assert by_rule["aposteriori"]["threads"] == 4
    # rules the profile does not list keep their own wall time
    assert by_rule["compare"]["resources"]["runtime"] == "10"


def test_profile_settings_from_environment(tmp_path):
    """Account, partitions and GPU count come from the clearly marked settings (env vars)."""
    jobs, _, _ = _dry_run(tmp_path, TURBTL_SLURM_ACCOUNT="myproj", TURBTL_SLURM_PARTITION="cpuq",
                          TURBTL_SLURM_GPU_PARTITION="gpuq", TURBTL_SLURM_GPU_MODEL="a100",
                          TURBTL_SLURM_DNS_GPU="1")
    for j in jobs:
        if j["rule"] == "all":
            continue
        res = j["resources"]
        assert res["slurm_account"] == "myproj", j
        if j["rule"] == "dns":  # TURBTL_SLURM_DNS_GPU=1: the DNS on a GPU, 4 threads, 8 h
            assert res["gpu"] == "1" and res["slurm_partition"] == "gpuq" and j["threads"] == 4, j
            assert res["runtime"] == str(8 * 60), j
        elif j["rule"] in GPU_RULES:
            assert res["slurm_partition"] == "gpuq" and res["gpu"] == "1" and res["gpu_model"] == "a100", j
        else:
            assert res["slurm_partition"] == "cpuq" and "gpu" not in res, j

    jobs, _, _ = _dry_run(tmp_path / "nogpu", TURBTL_SLURM_GPUS="0", TURBTL_SLURM_PARTITION="cpuq")
    for j in jobs:
        if j["rule"] != "all":
            assert "gpu" not in j["resources"] and j["resources"]["slurm_partition"] == "cpuq", j


#: the rules of seconds that read small tables and draw figures: they run on the submit host
LOCAL_RULES = {"system_spectra", "sweep_summary", "pair_summary", "size_summary", "compare", "figures_target",
               "figure_aposteriori", "summary"}


@pytest.mark.slow
def test_light_rules_run_on_the_submit_host(tiny_run, tmp_path):
    """Under `--profile slurm` the light rules run where Snakemake runs (localrules), and the
    others go to sbatch: forced on a finished tiny run with Slurm's commands stubbed out, the
    light jobs finish without a call to sbatch; a heavy one calls it."""
    import shutil

    pytest.importorskip("snakemake_executor_plugin_slurm")
    work = tmp_path / "w"
    shutil.copytree(tiny_run[0], work, symlinks=True)
    path, calls = _stub_path(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV} | {"PATH": path}
    base = [sys.executable, "-m", "snakemake", "--profile", "slurm", "--directory", str(work), "--configfile",
            str(tiny_run[1]), "--retries", "0"]
    r = subprocess.run([*base, "--forcerun", *sorted(LOCAL_RULES - {"pair_summary", "size_summary"}), "--",
                        "results/tiny/summary.csv"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert not calls.exists() or "sbatch" not in calls.read_text(), calls.read_text()
    assert {m for m in re.findall(r"^localrule (\w+):", out, re.M)} >= {"sweep_summary", "compare", "summary"}, out[-3000:]
    calls.unlink(missing_ok=True)
    r = subprocess.run([*base, "--forcerun", "predict", "--", "results/tiny/diagnostics/high_re/prediction.json"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    # the plugin lists the partitions (sinfo) before it submits (sbatch): either is the job going to Slurm
    assert r.returncode != 0 and re.search(r"^(sbatch|sinfo) ", calls.read_text(), re.M), calls.read_text()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TURBTL_SLURM_TEST") != "1",
                    reason="the Slurm end-to-end test installs and starts a one-node cluster (root, apt): "
                           "run it with TURBTL_SLURM_TEST=1 (see docs/cluster.md)")
def test_slurm_end_to_end():
    """The tiny config through `snakemake --profile slurm` on a real one-node cluster
    equals a local run of the same config (tests/slurm/run_e2e.sh)."""
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail("TURBTL_SLURM_TEST=1 needs root or password-less sudo (it installs Slurm with apt)")
    script = REPO / "tests" / "slurm" / "run_e2e.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=3600)
    out = proc.stdout + proc.stderr
    print(out[-6000:])
    assert proc.returncode == 0, f"run_e2e.sh failed (exit {proc.returncode}):\n{out[-6000:]}"
    assert "MATCH:" in out
