"""Make the wheelhouse ``.device/wheels`` that ``benchmarks/device_check.sh`` installs on a GPU
machine without internet (Snakemake, netCDF4 and whatever else turbtl needs there).

Run it on a machine with internet where turbtl is installed (``pip install -e .``)::

    python benchmarks/make_wheelhouse.py                         # -> .device/wheels, CPython 3.12
    python benchmarks/make_wheelhouse.py --check /path/to/python3.12   # and try it in a 3.12 venv

What goes in: the requirements of the installed turbtl, followed through their own
requirements (markers evaluated for the target Python on Linux x86_64), minus what the GPU
machine already has (:data:`DEVICE_HAS`: torch with CUDA, numpy, scipy, xarray, pandas,
matplotlib, seaborn, pytest).  Their own requirements are not followed, though one that
turbtl's other requirements share, such as packaging, still comes in.  Each package is pinned
to the version installed here, so the GPU machine runs the Snakemake of this machine; a package
not installed here (a marker that differs between the two Pythons) gets pip's newest wheel and
comes in without its own requirements (the script warns).  Binary wheels for the target Python
where they exist; a package with no wheel on the index (``connection_pool``) is built here with
``pip wheel`` and must come out pure Python (abi ``none``, platform ``any``), which is checked.
Each run makes the folder afresh, so no wheel of an older version stays behind.

``--check PY``: makes a venv with PY (the GPU machine's Python version), installs numpy there
from the index (the GPU machine has it), installs every wheel of the wheelhouse the way
device_check.sh installs the missing ones (``pip install --no-index --no-deps --target``), and imports snakemake, netCDF4, yaml,
jsonschema and tqdm and runs ``snakemake --version`` from it.  Decided: the wheelhouse is
pinned to this machine's versions rather than resolved afresh, because a GPU session has no
time to spare on a Snakemake that behaves differently from the one the tests ran with.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import pathlib
import shutil
import subprocess
import sys
import tempfile

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

#: what the GPU machine already has (with CUDA where it matters): never downloaded, never followed
DEVICE_HAS = frozenset(canonicalize_name(n) for n in
                       ("torch", "numpy", "scipy", "xarray", "pandas", "matplotlib", "seaborn", "pytest"))
#: manylinux tags the GPU machine's pip accepts (x86_64, glibc >= 2.28)
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
#: what device_check.sh's setup imports after installing
IMPORTS = ("snakemake", "netCDF4", "yaml", "jsonschema", "tqdm")


def marker_env(python_version: str) -> dict:
    """The marker environment of CPython ``python_version`` ("3.12") on Linux x86_64."""
    env = default_environment()
    env.update(python_version=python_version, python_full_version=f"{python_version}.0",
               implementation_name="cpython", platform_python_implementation="CPython",
               sys_platform="linux", platform_system="Linux", platform_machine="x86_64", os_name="posix")
    return env


def applies(req: Requirement, env: dict) -> bool:
    """Whether ``req`` (without extras asked for) is needed in the marker environment ``env``."""
    return req.marker is None or req.marker.evaluate({**env, "extra": ""})


def requirement_closure(roots, env: dict, exclude=DEVICE_HAS, requires=None) -> dict[str, str | None]:
    """Canonical name -> version installed here (None: not installed here) of every distribution
    that ``roots`` need in ``env``, following requirements; names in ``exclude`` are neither
    kept nor followed.  ``requires(name)`` gives a distribution's requirement strings
    (default: :func:`importlib.metadata.requires`)."""
    requires = requires or (lambda name: md.requires(name) or [])
    out: dict[str, str | None] = {}
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in out or name in exclude:
            continue
        try:
            out[name] = md.version(name)
            reqs = requires(name)
        except md.PackageNotFoundError:
            out[name] = None  # needed there, not here: its own requirements are not followed
            print(f"warning: {name} is needed on CPython {env['python_version']} but not installed here: its own "
                  "requirements are not followed; check the wheelhouse with --check", file=sys.stderr)
            continue
        for s in reqs:
            req = Requirement(s)
            if applies(req, env):
                todo.append(canonicalize_name(req.name))
    return out


def turbtl_roots(env: dict) -> list[str]:
    """turbtl's own requirements (the installed package's metadata) that apply in ``env``."""
    try:
        reqs = md.requires("turbtl") or []
    except md.PackageNotFoundError:
        sys.exit("turbtl is not installed here; fix: pip install -e . first (the wheelhouse follows its requirements)")
    return [Requirement(s).name for s in reqs if applies(Requirement(s), env)]


def download(pins: dict[str, str | None], dest: pathlib.Path, python_version: str) -> list[str]:
    """Fetch a wheel per pinned package into ``dest``; build the ones with no wheel on the index
    (pure Python only).  Returns the names that had to be built."""
    built = []
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    for name, version in sorted(pins.items()):
        spec = f"{name}=={version}" if version else name
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp", *plat, "-d", str(dest), spec]
        if subprocess.run(cmd, capture_output=True, text=True).returncode == 0:
            print(f"{spec}: wheel", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, spec], check=True)
            (wheel,) = pathlib.Path(tmp).glob("*.whl")
            tags = parse_wheel_filename(wheel.name)[3]
            if not all(t.abi == "none" and t.platform == "any" for t in tags):  # pure Python fits any CPython
                sys.exit(f"{spec} has no wheel for CPython {python_version} on the index and builds only as "
                         f"{sorted(map(str, tags))} here; fix: build it on a machine with that Python")
            shutil.copy(wheel, dest)
        built.append(name)
        print(f"{spec}: built here (no wheel on the index)", flush=True)
    return built


def check(dest: pathlib.Path, python: str) -> None:
    """Install every wheel of the wheelhouse into a venv of ``python`` the way device_check.sh
    installs the missing ones (pip --no-index --no-deps --target), then import them."""
    with tempfile.TemporaryDirectory() as tmp:
        venv, site = pathlib.Path(tmp) / "venv", pathlib.Path(tmp) / "site"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        py = str(venv / "bin" / "python")
        subprocess.run([py, "-m", "pip", "install", "-q", "numpy"], check=True)  # the GPU machine has it
        wheels = sorted(str(w) for w in dest.glob("*.whl"))
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target",
                        str(site), *wheels], check=True)
        env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
        code = f"import {', '.join(IMPORTS)}; print('snakemake', snakemake.__version__, 'netCDF4', netCDF4.__version__)"
        subprocess.run([py, "-c", code], check=True, env=env)
        subprocess.run([py, "-m", "snakemake", "--version"], check=True, env=env)
    print(f"check passed: {len(wheels)} wheels install and import in {python}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=str(pathlib.Path(__file__).resolve().parents[1] / ".device" / "wheels"))
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python (major.minor)")
    ap.add_argument("--check", metavar="PY", help="a Python of that version to try the wheelhouse in")
    args = ap.parse_args(argv)
    env = marker_env(args.python_version)
    pins = requirement_closure(turbtl_roots(env), env)
    dest = pathlib.Path(args.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a fresh folder swapped in at the end: wheels of an earlier run (another version of a package
    # upgraded since) would make pip install two versions of one package and fail
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        built = download(pins, pathlib.Path(tmp), args.python_version)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(tmp, dest)
    wheels = list(dest.glob("*.whl"))
    mb = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{dest}: {len(wheels)} wheels, {mb:.0f} MB; for CPython {args.python_version}; "
          f"built here: {', '.join(built) or 'none'}")
    if args.check:
        check(dest, args.check)


if __name__ == "__main__":
    main()
