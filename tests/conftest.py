"""Shared pytest set-up.  Runs before any test module imports torch."""
import os
import sys
from pathlib import Path

# idle OpenMP threads sleep instead of spinning (see workflow/rules/common.smk): tests run
# beside each other and beside snakemake subprocesses on small machines
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_thread():
    """Small grids: one torch thread (no OpenMP overhead on a shared 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
