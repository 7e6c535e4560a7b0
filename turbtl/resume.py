"""Resume of a long DNS (:func:`turbtl.solver.run_dns`).  A long DNS saves its state every ``dns.checkpoint_minutes`` of wall
time (default 10) and when it receives SIGTERM (what Slurm sends at a time limit) or SIGINT
(Ctrl-C), in the hidden directory ``.{output name}.resume/`` beside the output (not a
declared output, so Snakemake neither deletes it after a failed job nor asks for it):

- ``state.pt`` (written atomically, fsync'ed): the stepper's state (``omega_hat``, the AB2
  history, the first-step flag, ``nstep``, ``t``, ``max_cfl``: :meth:`turbtl.stepper.Stepper.state_dict`),
  the running sum of the enstrophy spectra of the resolution check, the time, energy and
  enstrophy series, how many snapshots are written, and a key: the hash of the parameters
  that fix the trajectory (the flow's Re, kf, beta, mu, n_dns, dt, members, seed, the step
  counts of spin-up, sampling and snapshots, and dns.precision, check_every, cfl_max,
  resolution_decades; also ``forcing: none`` and a configured ``initial_energy`` where set).
  No random state is needed: the initial condition is the only draw.
- ``omega.f32``: the snapshots written so far, raw float32 (time, member, y, x), appended
  one snapshot at a time and fsync'ed before each ``state.pt``.

Why a raw append-only file and not the netCDF being written: an HDF5 file that is killed
while open (``kill -9``, a lost node, the OOM killer) can be left with inconsistent metadata
and unreadable as a whole, so the snapshots in it could not be trusted; an append-only file
can only lose its tail, and the snapshot count in ``state.pt`` says how much of it to keep
(the rest is cut off on resume).  Rewriting all snapshots into each checkpoint instead would
copy up to 10 GB every interval at reference scale.  The cost: at the end the snapshots are
read back once and streamed into the netCDF (at reference scale 10-13 GB per flow, a minute
of I/O against the DNS's hour or more; twice the flow's output on disk until the rename).

A rerun of the same job with the same key continues from ``state.pt`` at the saved step, and
the output equals an uninterrupted run's bit for bit on the CPU (same threads;
tests/test_solver.py kills a run with SIGTERM and compares); on a GPU it continues the same
trajectory to round-off.  A checkpoint with another key (the config changed), or one that
cannot be read, is logged and deleted, and the run starts anew.  The directory is deleted when
the output is complete, and when a guard fails (a deterministic failure: resuming would fail
again).  The state is saved only between blocks of ``check_every`` steps (a signal sets a
flag), never in the middle of a step.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import torch

from . import TurbtlError
from .io import atomic_path

__all__ = ["resume_dir", "trajectory_key", "Checkpoint", "StopSignals"]

_CKPT_FORMAT = 1


def resume_dir(out_path) -> Path:
    """Where the DNS that writes ``out_path`` keeps its checkpoint: ``.{name}.resume`` beside it."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.name}.resume")


def trajectory_key(**fields) -> str:
    """Hash of what fixes a DNS's trajectory and its checks (module docstring, Resume)."""
    blob = json.dumps(dict(fields, format=_CKPT_FORMAT), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Checkpoint:
    """The resume directory of one DNS output: ``state.pt`` and the raw snapshots ``omega.f32``
    (module docstring, Resume)."""

    def __init__(self, out_path, key: str, members: int, n: int, log):
        self.dir = resume_dir(out_path)
        self.state_path = self.dir / "state.pt"
        self.raw_path = self.dir / "omega.f32"
        self.key, self.log = key, log
        self.snap_bytes = int(members) * int(n) * int(n) * 4
        self.saved = False  # a state.pt of this run exists
        self._f = None

    def load(self) -> dict | None:
        """The saved state if it belongs to this run (same key, enough snapshots on disk), else None
        (anything else there is logged and deleted)."""
        if not self.dir.exists():
            return None
        why = None
        try:
            st = torch.load(self.state_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            st, why = None, "it has no state.pt (the run was stopped before its first checkpoint)"
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint: start anew
            st, why = None, f"its state.pt cannot be read ({type(e).__name__}: {e})"
        if st is not None and st.get("key") != self.key:
            why = (f"it was written for other parameters (key {st.get('key')}, this run {self.key}: the flow's "
                   "or the dns section's config changed)")
        elif st is not None:
            have = self.raw_path.stat().st_size if self.raw_path.exists() else -1
            need = int(st["written"]) * self.snap_bytes
            if have < need:
                why = f"its snapshot file holds {max(have, 0)} bytes, fewer than the {need} of its {st['written']} snapshots"
        if why is not None:  # (a run stopped before its first checkpoint is no news: info)
            (self.log.info if st is None and "no state.pt" in why else self.log.warning)(
                "ignoring the DNS checkpoint %s: %s; deleting it and starting from t = 0", self.dir, why)
            self.remove()
            return None
        self.saved = True
        return st

    def open(self, written: int) -> None:
        """Open the snapshot file for appending after its first ``written`` snapshots (a
        longer file, from a run killed after its last checkpoint, is cut back)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._f = open(self.raw_path, "r+b" if self.raw_path.exists() else "w+b")
        self._f.truncate(int(written) * self.snap_bytes)
        self._f.seek(int(written) * self.snap_bytes)

    def append(self, om: np.ndarray) -> None:
        self._f.write(memoryview(np.ascontiguousarray(om, dtype=np.float32)).cast("B"))

    def read(self, j: int, buf: np.ndarray) -> None:
        self._f.flush()
        self._f.seek(j * self.snap_bytes)
        if self._f.readinto(memoryview(buf).cast("B")) != self.snap_bytes:
            raise TurbtlError(f"{self.raw_path} ends before snapshot {j}; fix: delete {self.dir} and rerun")

    def save(self, state: dict) -> None:
        """Snapshots to disk first, then the state that counts them (atomic)."""
        self._f.flush()
        os.fsync(self._f.fileno())
        with atomic_path(self.state_path) as tmp:
            with open(tmp, "wb") as f:
                torch.save(dict(state, key=self.key, format=_CKPT_FORMAT), f)
                f.flush()
                os.fsync(f.fileno())
        self.saved = True

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.saved = False


class StopSignals:
    """SIGTERM and SIGINT set a flag that the DNS loop reads between blocks of steps (so the
    state is saved whole, never in the middle of a step); a second SIGINT interrupts at once.
    Installed only in the main thread, and the previous handlers are restored on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self):
        self.received = None
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False
