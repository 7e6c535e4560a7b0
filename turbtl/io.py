"""netCDF I/O and atomic writes: an interrupted job never leaves a half-written output."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import xarray as xr

ENGINE = "netcdf4"

__all__ = ["ENGINE", "atomic_path", "remove_stale_temporaries", "damaged", "check_finite", "cf_globals",
           "write_netcdf", "open_netcdf", "write_json", "write_csv", "read_json", "nc_attr", "nc_set_attrs", "nc_field_coords",
           "nc_snapshot_variables"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Delete ``.{name}.tmp-{pid}`` files beside ``path`` whose process is gone.

    A ``kill -9`` skips the clean-up of :func:`atomic_path`; the next write of the same
    output (the rerun of that job) removes what the dead writer left.  Temporaries of live
    processes (another job writing now) are kept.  Returns the removed paths.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so the
    final name exists only when the writer finished.  Temporaries left by a killed writer
    of the same path are removed first (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def cf_globals(title: str) -> dict:
    """The CF-1.8 global attributes every turbtl netCDF file carries: Conventions, title,
    history (UTC time, turbtl version, the program that wrote it) and source."""
    import datetime as _dt
    import sys

    from . import __version__

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Conventions": "CF-1.8", "title": title,
            "history": f"{now} written by turbtl {__version__} ({sys.argv[0] if sys.argv else 'python'})",
            "source": f"turbtl {__version__}: 2D turbulence (forced or decaying), pseudo-spectral DNS and its filtered fields"}


def write_netcdf(ds: xr.Dataset, path, *, title: str | None = None) -> None:
    """Write ``ds`` to ``path`` atomically with the netCDF4 engine, with the CF globals
    (:func:`cf_globals`) added where the dataset does not set them."""
    ds = ds.copy()
    for k, v in cf_globals(title or ds.attrs.get("title") or f"turbtl {Path(path).stem}").items():
        ds.attrs.setdefault(k, v)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)


def damaged(path, err) -> "Exception":
    """The error for a netCDF input that exists but cannot be read (truncated by a crash,
    a full disk, a copy cut short): it names the file and the fix."""
    from . import TurbtlError

    return TurbtlError(f"{path} is damaged and cannot be read ({type(err).__name__}: {err}); fix: delete it "
                       "and rerun, so that the stage that writes it makes it anew")


def check_finite(a, path, variable: str, members=None, time_offset: int = 0) -> None:
    """Fail, naming the file, the variable and the first bad (member, time, y, x), if ``a``
    (member, time, y, x) holds a NaN or an infinity.  ``members``: the coordinate values of
    the members of ``a``; ``time_offset``: the time index of ``a``'s first snapshot (a reader
    that works in chunks)."""
    import numpy as np

    from . import TurbtlError

    bad = ~np.isfinite(a)
    if not bad.any():
        return
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    where = dict(zip(("member", "time", "y", "x"), idx))
    if members is not None and "member" in where:
        where["member"] = members[where["member"]]
    if "time" in where:
        where["time"] += int(time_offset)
    raise TurbtlError(f"{path}: variable {variable!r} holds {int(bad.sum())} non-finite value(s), the first at "
                      f"{where} (member = its coordinate value, the rest 0-based indices); fix: delete "
                      f"{path} and rerun, so that the stage that writes it makes it anew (and check that "
                      "stage's log if it comes back)")


def open_netcdf(path, **kw) -> xr.Dataset:
    """Open a turbtl netCDF file (explicit engine; lazily loaded).  A file that exists but
    cannot be read raises :func:`damaged`'s error."""
    try:
        return xr.open_dataset(path, engine=ENGINE, **kw)
    except (OSError, ValueError, RuntimeError) as e:
        if not Path(path).exists():
            raise
        raise damaged(path, e) from e


def _strict(o):
    """Non-finite floats -> None, recursively (strict JSON has no NaN or Infinity)."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    if isinstance(o, np.ndarray):
        return _strict(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(float(o)) else None
    return o


def write_json(obj, path) -> None:
    """Strict JSON (NaN and infinities become null), written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_strict(obj), indent=2, sort_keys=False, default=json_default,
                                  allow_nan=False) + "\n")


def write_csv(table, path):
    """A DataFrame as CSV (no index), written atomically; returns ``table``."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def read_json(path):
    return json.loads(Path(path).read_text())


def json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def nc_attr(v):
    """A value netCDF can store as an attribute (bools as 0/1, other objects as text)."""
    import numpy as np

    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float, str, np.integer, np.floating)):
        return v
    return str(v)


def nc_set_attrs(ds, attrs: dict, *, title: str | None = None) -> None:
    """Write ``attrs`` as global attributes of an open netCDF4.Dataset, plus the CF globals
    (:func:`cf_globals`) that ``attrs`` does not set."""
    full = dict(cf_globals(title or "turbtl field file"))
    full.update(attrs)
    for key, val in full.items():
        ds.setncattr(key, nc_attr(val))


def nc_field_coords(ds, members: int, nt: int, n: int, *, time_long_name: str, grid: str = ""):
    """Create the (member, time, y, x) dimensions and coordinates of a turbtl field file.

    ``ds`` is an open netCDF4.Dataset in write mode; returns the ``time`` variable (filled by
    the caller, snapshot by snapshot or at once).  x and y are the n points of the 2*pi
    periodic square.
    """
    import numpy as np

    ds.createDimension("member", members)
    ds.createDimension("time", nt)
    ds.createDimension("y", n)
    ds.createDimension("x", n)
    v = ds.createVariable("member", "i4", ("member",))
    v[:] = np.arange(members)
    v.long_name = "ensemble member"
    vt = ds.createVariable("time", "f8", ("time",))
    vt.long_name = time_long_name
    vt.units = "1"
    # Nondimensional model time: CF's standard_name "time" needs units "<unit> since <date>",
    # which a nondimensional time has not; axis "T" is what CF tools use to find the axis.
    vt.axis = "T"
    vt.comment = "nondimensional time of the model equations (no calendar)"
    coord = np.arange(n) * (2 * np.pi / n)
    for ax in ("y", "x"):
        va = ds.createVariable(ax, "f8", (ax,))
        va[:] = coord
        va.long_name = f"{ax} coordinate of the 2*pi periodic square{grid}"
        va.units = "radian"
        va.axis = ax.upper()
    return vt


def nc_snapshot_variables(ds, members: int, n: int, variables: dict) -> dict:
    """Create the variables of a file whose snapshots are written one at a time.

    ``variables``: name -> (dims, long_name), with dims "field" (member, time, y, x; float32,
    one chunk per member and snapshot, and a small chunk cache so that HDF5 writes each
    snapshot as it comes instead of keeping up to 64 MiB of them in memory) or "series"
    (member, time; float64).  Returns name -> netCDF4 variable.
    """
    out = {}
    for name, (dims, long_name) in variables.items():
        if dims == "field":
            v = ds.createVariable(name, "f4", ("member", "time", "y", "x"), chunksizes=(1, 1, n, n))
            v.set_var_chunk_cache(size=2 * members * n * n * 4, nelems=4 * members + 1, preemption=1.0)
        elif dims == "series":
            v = ds.createVariable(name, "f8", ("member", "time"))
        else:
            raise ValueError(f"nc_snapshot_variables: dims {dims!r} is not 'field' or 'series'")
        v.long_name = long_name
        v.units = "1"
        out[name] = v
    return out
