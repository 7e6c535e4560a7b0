"""Short runs of each stage of the reference study (presets/reference.yaml) on this machine,
extrapolated to the stage's full size: the measured costs of docs/cluster.md.

    python benchmarks/bench_reference.py --json $OUT/reference.json      # on a GPU machine
    python benchmarks/bench_reference.py --quick                          # a dry run of the script

DNS, per flow shape of the preset (base 12 x 1024^2, high_re 4 x 2048^2, high_kf and beta
4 x 1024^2, with each flow's own Re, kf, beta and dt): ``--steps`` steps through ``advance``
(check_every of the preset) for the pipeline's default (``dns.cuda_graph: auto``, i.e. a
CUDA graph on a GPU; the first variant) and the other variants of ``--variants``, after a
warm-up; the cost of one snapshot (vorticity to the host, energy, enstrophy, the enstrophy
spectrum of the resolution check, the append to the raw snapshot file) and of one
checkpoint save (state_dict, torch.save, fsync).  The stage's prediction is
``steps x step + snapshots x snapshot + (wall / checkpoint interval) x save``, plus the final
netCDF write, measured as the write of two snapshots scaled by the snapshot count.

Filter: ``sgs_fields`` of a batch of snapshots at each DNS grid (float64, as the filter job),
on the device and on ``--filter-threads`` CPU threads, scaled to the flow's snapshot count.

Training: ``turbtl.training.fit`` at the reference shapes (11 layers, 64 channels, 5x5,
128^2, batch 16) on synthetic data, for each ``--amp`` (none, tf32, bf16 on CUDA); the rate
is the median over epochs 2.. (epoch 1 carries cuDNN's algorithm search).  Base training =
2000 snapshots x 100 epochs (+ 200 validation snapshots per epoch, forward only, counted as
1/3 of a training sample); TL of layer 1 (the slowest: every layer's input gradient) and of
layer 11 as ``fit`` with only that layer's parameters (the pipeline's TL caches the frozen
prefix, so layer 11 is an upper bound), per job 3 seeds x 50 epochs x 200 snapshots.

Every part is wrapped: one that fails is recorded with its error and the others still run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from bench_dns import sync, timed  # (this directory)
from turbtl.solver import PRECISIONS, DNSSolver, FlowParams

PRESET = Path(__file__).resolve().parent.parent / "presets" / "reference.yaml"
VARIANTS = {"default": dict(cuda_graph="auto", band="auto"), "eager": dict(), "graph": dict(cuda_graph="on"),
            "compiled+graph": dict(compile="on", cuda_graph="on")}


def _steps(system: dict) -> tuple[int, int, int]:
    """(total steps, spin-up steps, snapshots) of one flow, as run_dns counts them."""
    dt = float(system["dt"])
    n_spin = int(round(float(system["spinup_time"]) / dt))
    n_every = int(round(float(system["sample_interval"]) / dt))
    nsnap = int(system["snapshots_per_member"])
    return n_spin + (nsnap - 1) * n_every, n_spin, nsnap


def bench_dns(cfg: dict, device, variants, nsteps: int, tmp: Path, log) -> dict:
    out = {}
    dns = cfg["dns"]
    dtype = PRECISIONS[dns.get("precision", "float32")]
    ce = int(dns.get("check_every", 100))
    minutes = float(dns.get("checkpoint_minutes", 10.0))
    shapes = {}  # flows of one shape share the step measurement
    for name, s in cfg["systems"].items():
        shapes.setdefault((int(s["n_dns"]), int(s["members"])), []).append(name)
    for (n, members), names in shapes.items():
        out[f"{members}x{n}"] = _bench_dns_shape(cfg, names, n, members, device, dtype, ce, minutes, variants, nsteps,
                                                 tmp, log)
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    return out


def _bench_dns_shape(cfg, names, n, members, device, dtype, ce, minutes, variants, nsteps, tmp, log) -> dict:
    from turbtl.spectra import energy_enstrophy_spectra

    dns = cfg["dns"]
    name = names[0]
    s = cfg["systems"][name]
    p = FlowParams.from_config(s, name)
    row = {"flows": names, "n_dns": n, "members": members, "variants": {}}
    solver = None
    for v in variants:
        try:
            solver = DNSSolver(p, members, device=device, dtype=dtype, seed=int(s.get("seed", 0)),
                               cfl_max=float(dns.get("cfl_max", 1.0)), check_every=ce, **VARIANTS[v])
            setup = timed(lambda: solver.advance(3 * ce), device)  # Euler step, warm-up block, capture
            t = timed(lambda: solver.advance(nsteps), device) / nsteps
            row["variants"][v] = {"step_ms": t * 1e3, "setup_s": setup, "graph_steps": solver.acceleration["cuda_graph"],
                                  "compiled": solver._fused is not None}
            log(f"  DNS {name} ({members} x {n}^2) {v}: {t * 1e3:.3f} ms/step (setup {setup:.1f} s)")
        except Exception as e:  # noqa: BLE001
            row["variants"][v] = {"error": f"{type(e).__name__}: {e}"}
            log(f"  DNS {name} {v}: FAILED {type(e).__name__}: {e}")
    if solver is None:
        return row
    try:  # one snapshot as run_dns records it, and one checkpoint save
        raw = tmp / f"snap_{n}.f32"
        with open(raw, "wb") as f:
            def snapshot():
                om = solver.omega.to("cpu", torch.float32).numpy()
                f.write(memoryview(np.ascontiguousarray(om)).cast("B"))
                solver.energy().cpu()
                solver.enstrophy().cpu()
                energy_enstrophy_spectra(om)
            row["snapshot_s"] = min(timed(snapshot, device) for _ in range(2))
        raw.unlink()

        def save():
            with open(tmp / "state.pt", "wb") as f:
                torch.save(solver.state_dict(), f)
                f.flush()
                os.fsync(f.fileno())
        row["checkpoint_save_s"] = min(timed(save, device) for _ in range(2))
        row["checkpoint_mib"] = (tmp / "state.pt").stat().st_size / 2**20
        row["netcdf_snapshot_s"] = _netcdf_write(tmp, members, n) / 2
    except Exception as e:  # noqa: BLE001
        row["snapshot_error"] = f"{type(e).__name__}: {e}"
    step_ms = next((r["step_ms"] for r in row["variants"].values() if "step_ms" in r), None)
    for fl in names:
        total, n_spin, nsnap = _steps(cfg["systems"][fl])
        if step_ms is None or "snapshot_s" not in row:
            continue
        run = total * step_ms / 1e3 + nsnap * row["snapshot_s"]
        saves = run / (60 * minutes) if minutes > 0 else 0.0
        pred = run + saves * row["checkpoint_save_s"] + nsnap * row["netcdf_snapshot_s"]
        row.setdefault("predicted", {})[fl] = {"steps": total, "snapshots": nsnap, "wall_s": pred, "wall_h": pred / 3600,
                                               "step_ms_used": step_ms}
        log(f"  DNS {fl}: {total} steps x {step_ms:.3f} ms + {nsnap} snapshots -> {pred / 3600:.2f} h")
    return row


def _netcdf_write(tmp: Path, members: int, n: int) -> float:
    """Seconds to write two snapshots into a DNS-like netCDF (the final conversion's unit)."""
    import netCDF4

    from turbtl.io import nc_field_coords, nc_snapshot_variables

    path = tmp / "w.nc"
    buf = np.random.default_rng(0).standard_normal((members, n, n)).astype(np.float32)
    t = time.perf_counter()
    ds = netCDF4.Dataset(str(path), "w", format="NETCDF4")
    nc_field_coords(ds, members, 2, n, time_long_name="t")
    v = nc_snapshot_variables(ds, members, n, {"omega": ("field", "vorticity")})
    for j in range(2):
        v["omega"][:, j, :, :] = buf
    ds.close()
    dt = time.perf_counter() - t
    path.unlink()
    return dt


def bench_filter(cfg: dict, device, threads: int, log) -> dict:
    from turbtl.filters import sgs_fields

    out = {}
    done = {}
    for name, s in cfg["systems"].items():
        n, n_les = int(s["n_dns"]), int(s["n_les"])
        nsnap = int(s["members"]) * int(s["snapshots_per_member"])
        if n not in done:
            om = torch.randn(4 if n <= 1024 else 2, n, n, generator=torch.Generator().manual_seed(0))
            per = {}
            for dev in dict.fromkeys([str(device), "cpu"]):
                try:
                    old = torch.get_num_threads()
                    torch.set_num_threads(threads)
                    x = om.to(dev)
                    sgs_fields(x[:1], n_les)  # warm-up (plans)
                    per[dev] = timed(lambda: sgs_fields(x, n_les), dev) / len(om)
                    torch.set_num_threads(old)
                except Exception as e:  # noqa: BLE001
                    per[dev] = None
                    log(f"  filter {n}^2 on {dev}: FAILED {type(e).__name__}: {e}")
            done[n] = per
        out[name] = {"n_dns": n, "snapshots": nsnap, "per_snapshot_s": done[n],
                     "predicted_s": {d: (None if t is None else t * nsnap) for d, t in done[n].items()}}
        log(f"  filter {name}: {nsnap} snapshots, per snapshot " +
            ", ".join(f"{d} {t * 1e3:.1f} ms" for d, t in done[n].items() if t is not None))
    return out


def bench_training(cfg: dict, device, amps, epochs: int, samples: int, log) -> dict:
    from turbtl.data import Normaliser
    from turbtl.network import NetConfig, SGSNet
    from turbtl.training import fit

    net, tr, tl = cfg["network"], cfg["training"], cfg["transfer"]
    n = int(next(iter(cfg["systems"].values()))["n_les"])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((samples, 2, n, n)).astype(np.float32)
    Y = rng.standard_normal((samples, 1, n, n)).astype(np.float32)
    norm = Normaliser.fit(X, Y)
    out = {"shape": {"channels": net["channels"], "depth": net["depth"], "n": n, "batch": tr["batch_size"],
                     "samples_per_epoch": samples}}
    base = cfg["systems"][cfg["base"]]
    per_member = int(base["snapshots_per_member"])
    n_train = (int(base["members"]) - int(base["val_members"]) - int(base["test_members"])) * per_member
    n_val = int(base["val_members"]) * per_member
    small = int(round(float(tl["fraction"]) * n_train))
    for amp in amps:
        for what, layer in (("base", None), ("tl_layer1", 1), ("tl_layer11", int(net["depth"]))):
            if what != "base" and amp != amps[0]:
                continue
            try:
                torch.manual_seed(0)
                model = SGSNet(NetConfig(depth=int(net["depth"]), channels=int(net["channels"]),
                                         kernel_size=int(net["kernel_size"]), padding=net.get("padding", "circular")))
                stamps = []
                params = None if layer is None else list(model.layer(layer).parameters())
                t0 = time.perf_counter()
                fit(model, norm, (X, Y), epochs=epochs, batch_size=int(tr["batch_size"]), lr=float(tr["lr"]), seed=0,
                    device=device, params=params, amp=amp, progress=False,
                    on_epoch_end=lambda e, h: stamps.append(sync(device) or time.perf_counter()))
                ep = np.diff([t0] + stamps)
                rate = samples / statistics.median(ep[1:] if len(ep) > 1 else ep)
                row = {"samples_per_s": rate, "epoch_s": ep.tolist()}
                if what == "base":
                    work = n_train * int(tr["epochs"]) + n_val * int(tr["epochs"]) / 3
                else:
                    work = int(tl["seeds"]) * int(tl["epochs"]) * small
                row["predicted_s"] = work / rate
                out[f"{what}_{amp}"] = row
                log(f"  fit {what} amp={amp}: {rate:.0f} samples/s -> {row['predicted_s'] / 60:.1f} min for the reference job")
            except Exception as e:  # noqa: BLE001
                out[f"{what}_{amp}"] = {"error": f"{type(e).__name__}: {e}"}
                log(f"  fit {what} amp={amp}: FAILED {type(e).__name__}: {e}")
                traceback.print_exc()
    return out


def resolved_preset(path) -> dict:
    """The preset as the pipeline reads it (config.yaml extended by it, every flow resolved),
    with only the flows it runs."""
    from turbtl.config import load_configs, name_run, validate_config

    cfg = validate_config(name_run(*load_configs([path])))
    cfg["systems"] = {n: cfg["systems"][n] for n in [cfg["base"], *cfg["targets"]]}
    return cfg


def quick_config(cfg: dict) -> dict:
    """--quick: the preset's structure at tiny sizes (a dry run of this script on a CPU)."""
    cfg = json.loads(json.dumps(cfg))
    for s in cfg["systems"].values():
        s["n_dns"], s["n_les"] = 64, 32
        s["kf"] = min(int(s["kf"]), 8)
        s["dt"] = 1e-3
        s["Re"] = min(float(s["Re"]), 1000.0)
    cfg["network"]["channels"] = 8
    cfg["dns"]["check_every"] = 10
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--preset", type=Path, default=PRESET)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=300, help="timed DNS steps per shape and variant")
    ap.add_argument("--variants", default="default,eager,compiled+graph", help=f"among {', '.join(VARIANTS)}")
    ap.add_argument("--amp", default="none,tf32,bf16")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--samples", type=int, default=160, help="synthetic training samples per epoch")
    ap.add_argument("--filter-threads", type=int, default=4, help="CPU threads of the filter timing (the profile's)")
    ap.add_argument("--parts", default="dns,filter,training")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: check the script, not a measurement")
    a = ap.parse_args(argv)
    from turbtl.runtime import resolve_device

    device = resolve_device(a.device)
    cfg = resolved_preset(a.preset)
    if a.quick:
        cfg = quick_config(cfg)
        a.steps, a.epochs, a.samples = 20, 2, 16
    res = {"machine": {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host_cpus": os.cpu_count(),
                       "python": platform.python_version(), "torch": torch.__version__, "device": str(device),
                       "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                       "cuda": torch.version.cuda, "preset": str(a.preset), "quick": a.quick}}

    def log(s):
        print(s, flush=True)

    log(f"reference stages on {res['machine']['gpu'] or 'CPU'} ({device}), preset {a.preset.name}")
    parts = a.parts.split(",")
    amps = [x for x in a.amp.split(",") if x] if device.type == "cuda" else ["none"]
    with tempfile.TemporaryDirectory() as tmp:
        for part, fn in (("dns", lambda: bench_dns(cfg, device, a.variants.split(","), a.steps, Path(tmp), log)),
                         ("filter", lambda: bench_filter(cfg, device, a.filter_threads, log)),
                         ("training", lambda: bench_training(cfg, device, amps, a.epochs, a.samples, log))):
            if part not in parts:
                continue
            t = time.perf_counter()
            try:
                res[part] = fn()
            except Exception as e:  # noqa: BLE001 - one failed part must not stop the others
                res[part] = {"error": f"{type(e).__name__}: {e}"}
                traceback.print_exc()
            res[part + "_wall_s"] = time.perf_counter() - t
            log(f"part {part}: {res[part + '_wall_s']:.1f} s")
            if a.json:  # after every part, so that a timeout still leaves the parts done
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    if a.json:
        log(f"wrote {a.json}")


if __name__ == "__main__":
    main()
