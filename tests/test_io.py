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


def test_truncated_netcdf_names_the_file_and_the_fix(tmp_path):
    import numpy as np
    import xarray as xr

    from turbtl import TurbtlError
    from turbtl.data import load_xy
    from turbtl.filters import filter_dns_file
    from turbtl.io import open_netcdf, write_netcdf

    p = tmp_path / "f.nc"
    write_netcdf(xr.Dataset({"a": ("x", np.arange(1000.0))}), p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # a copy cut short
    with pytest.raises(TurbtlError, match=r"f.nc is damaged and cannot be read .*fix: delete it and rerun"):
        open_netcdf(p)
    with pytest.raises(TurbtlError, match="is damaged"):
        load_xy(p)
    with pytest.raises(TurbtlError, match="is damaged"):
        filter_dns_file(p, tmp_path / "o.nc", tmp_path / "s.nc", {"n_les": 8, "members": 2}, {}, progress=False)
    with pytest.raises(FileNotFoundError):
        open_netcdf(tmp_path / "missing.nc")
