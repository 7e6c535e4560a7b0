"""turbtl.io: atomic writes, clean-up after a killed writer, strict JSON."""
import json
import os
import signal
import subprocess
import sys

import pytest

from turbtl.io import atomic_path, read_json, remove_stale_temporaries, write_json


def test_kill_9_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    out = tmp_path / "out.nc"
    code = ("import time, sys; from turbtl.io import atomic_path\n"
            f"with atomic_path({str(out)!r}) as tmp:\n"
            "    tmp.write_bytes(b'half'); print('written', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "written"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    stale = tmp_path / f".out.nc.tmp-{p.pid}"
    assert stale.exists() and not out.exists()  # kill -9 skipped the clean-up
    live = tmp_path / f".out.nc.tmp-{os.getppid()}"  # a live process's temporary is kept
    live.write_bytes(b"busy")
    other = tmp_path / f".other.nc.tmp-{p.pid}"  # another output's is not ours to touch
    other.write_bytes(b"x")
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"whole")
    assert out.read_bytes() == b"whole"
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "other.nc") == [other]


def test_strict_json_has_no_nan(tmp_path):
    write_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}}, tmp_path / "x.json")
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict token {c}")) == \
        {"a": None, "b": [1.0, None], "c": {"d": None}}
    assert read_json(tmp_path / "x.json")["b"] == [1.0, None]
