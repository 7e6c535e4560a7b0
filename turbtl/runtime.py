"""What every Snakemake script does first: log redirection, threads, torch device."""
from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["resolve_device", "log_to_rule_log", "script_setup", "progress"]


def resolve_device(name: str = "auto"):
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    import torch  # (here, not at the top: the summaries' jobs take no torch, :func:`log_to_rule_log`)

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from . import TurbtlError

        raise TurbtlError("config 'device: cuda' but torch sees no CUDA device; "
                          "fix: set 'device: auto' or 'device: cpu', or install a CUDA build of torch")
    return torch.device(name)


def log_to_rule_log(smk) -> logging.Logger:
    """Redirect stdout/stderr to the rule's log (tqdm progress, warnings and tracebacks of the
    job go there) and log INFO to it; return the rule's logger.  For the scripts that use no
    torch device (the summaries and tables, which then never import torch: about 1 s a job);
    :func:`script_setup` for the others."""
    if smk.log:
        os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
        f = open(str(smk.log[0]), "w", buffering=1)
        sys.stdout = f
        sys.stderr = f
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger(f"turbtl.{smk.rule}")


def script_setup(smk, *, device_key: str = "device"):
    """:func:`log_to_rule_log`, then set torch threads; return (logger, device).

    ``smk`` is the ``snakemake`` object of a ``script:``.
    """
    import torch

    log = log_to_rule_log(smk)
    torch.set_num_threads(max(1, int(smk.threads)))
    dev = resolve_device(smk.params.get(device_key, "auto") if hasattr(smk.params, "get") else "auto")
    log.info("rule %s, threads %d, device %s, torch %s", smk.rule, smk.threads, dev, torch.__version__)
    return log, dev


def progress(iterable=None, **kw):
    """tqdm with settings suited to log files (no bar redraw storms)."""
    from tqdm.auto import tqdm

    kw.setdefault("mininterval", 2.0 if not sys.stderr.isatty() else 0.1)
    kw.setdefault("file", sys.stderr)
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kw)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *a):
        self.seconds = time.perf_counter() - self.t0
