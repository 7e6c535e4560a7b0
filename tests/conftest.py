"""Shared pytest set-up.  Runs before any test module imports torch."""
import os
import sys
from pathlib import Path

# idle OpenMP threads sleep instead of spinning (see workflow/rules/common.smk): tests run
# beside each other and beside snakemake subprocesses on small machines
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
