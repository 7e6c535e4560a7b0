"""Shared pytest set-up.  Runs before any test module imports torch."""
import os
import sys
from pathlib import Path

# idle OpenMP threads sleep instead of spinning (see workflow/rules/common.smk): tests run
# beside each other and beside snakemake subprocesses on small machines
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The tests' Snakemake runs are local and never talk to a Slurm controller. But when Snakemake
# starts, snakemake-executor-plugin-slurm (the [slurm] extra; 2.8.0 measured) runs
# `scontrol show config` with a 10-s timeout, and on a host whose Slurm config names a
# controller that is down (here: the one-node cluster of tests/slurm/ after its daemons
# stopped) every snakemake call waits out those 10 s: ~50 calls, 915 s of pytest against
# 487 s with this setting (docs/cluster.md).  An empty config makes scontrol fail at once
# (a missing file makes it retry for ~60 s).  The Slurm end-to-end test
# (TURBTL_SLURM_TEST=1) needs the real config.
if os.environ.get("TURBTL_SLURM_TEST") != "1":
    os.environ["SLURM_CONF"] = os.devnull


import pytest  # noqa: E402
import torch  # noqa: E402

try:  # the property-based tests' profiles (tests/test_config_fuzz.py): the quick one by default
    from hypothesis import settings as _hyp

    _hyp.register_profile("quick", max_examples=150, deadline=None)  # what CI runs
    _hyp.register_profile("deep", max_examples=3000, deadline=None)  # --hypothesis-profile=deep
    _hyp.load_profile("quick")
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass


@pytest.fixture
def one_thread():
    """Small grids: one torch thread (no OpenMP overhead on a shared 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG on the tiny config, once per session: (the directory snakemake ran in, the config file)."""
    from helpers_workflow import snakemake, tiny_config, write_config

    work = tmp_path_factory.mktemp("tiny")
    cfg = write_config(tiny_config(), work / "config.tiny.yaml")
    r = snakemake(work, cfg, "--cores", "2")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-8000:]
    return work, cfg
