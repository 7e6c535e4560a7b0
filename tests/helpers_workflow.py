"""Run the Snakemake workflow as a subprocess in a temporary directory (no code copied)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "config.tiny.yaml"


def tiny_config() -> dict:
    """The tiny overlay as written (flows state only what differs): to change and write back."""
    return yaml.safe_load(TINY.read_text())


def resolved(cfg: dict | None = None) -> dict:
    """``cfg`` (default: the tiny overlay) over config.yaml, validated: every flow's parameters
    resolved, as the workflow sees them."""
    import copy

    from turbtl.config import DEFAULT_CONFIG, check_yaml_file, merge, overlay_flows, validate_config

    over = copy.deepcopy(tiny_config() if cfg is None else cfg)
    return validate_config(overlay_flows(merge(check_yaml_file(DEFAULT_CONFIG), copy.deepcopy(over)), [over]))


def run_dir(work: Path, run: str = "tiny") -> Path:
    """The folder of a run (``results/<run>``) in the directory ``work`` snakemake ran in."""
    return Path(work) / "results" / run


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(workdir: Path, configfile: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), *args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
