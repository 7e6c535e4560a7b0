"""netCDF I/O and atomic writes: an interrupted job never leaves a half-written output."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import xarray as xr

ENGINE = "netcdf4"

__all__ = ["ENGINE", "atomic_path", "write_netcdf", "open_netcdf", "write_json", "read_json"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so the
    final name exists only when the writer finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write ``ds`` to ``path`` atomically with the netCDF4 engine."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)


def open_netcdf(path, **kw) -> xr.Dataset:
    """Open a turbtl netCDF file (explicit engine; lazily loaded)."""
    return xr.open_dataset(path, engine=ENGINE, **kw)


def write_json(obj, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")
