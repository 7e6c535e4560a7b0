"""A-posteriori test: every closure inside an LES, scored against the filtered DNS.

Per target (:func:`run_aposteriori_job`), closures: ``no_closure``; ``smagorinsky``
(constant coefficient ``les.smagorinsky_cs``, Lilly's 0.17, the LES grid spacing as Delta);
``dynamic_smagorinsky`` and ``dynamic_leith`` (:func:`turbtl.les.dynamic`: the coefficient
from the resolved field by the Germano identity at every step, nothing to tune; their
time-mean constants go to the output's ``les.dynamic``); ``zero_shot`` (the base network);
``tl_layer{L}`` for every layer of the sweep (so TL at the empirically best layer and at
every predictor's choice are among them); ``finetune_all`` and ``full_target``. The networks
of the small-set methods are those of the sweep's first seed (``transfer.seeds``' seed 0
draw); all run in inference mode with their checkpoint's normaliser.

Initial conditions: filtered vorticity of the target's **test** members (never training
data), ``les.starts`` snapshots spread evenly over the test members' snapshots that leave a
window of ``les.cc_time`` after them (for the short-time correlation).  Two starts of one
member are ``(snapshots - window) / (starts - 1)`` sample intervals apart: at the default
(30 snapshots 0.5 apart, 2 starts) 13 time units, about 13 large-eddy turnover times, so
they are independent.

A decaying flow (``forcing: none``) has no steady statistics to compare with: its starts
leave the whole run (``les.time``) inside their test member, the LES's statistics are taken
at the DNS's sample times after the spin-up only (every ``sample_interval``, not every
``les.stats_every`` steps), and the reference is the filtered DNS of each start's member at
the same times (:func:`window_reference`), pooled over starts for the pooled scores and start
by start for the per-start ``spec_err`` and energy ratio (``reference`` in the output says
which).

Length: ``les.time`` in model time units, the first ``les.spinup`` dropped from the
statistics (the LES adjusts from the filtered field to its own attractor).  The large-eddy
turnover time L_f/U_rms (L_f = 2 pi/k_f, U_rms of the filtered DNS) is written to the
output with the length in those units: at the default (time 6, spin-up 1) the statistics
cover about 5 turnover times per start, 10 in all, half a drag time 1/mu; in the domain-scale
turnover time 2 pi/U_rms (``domain_turnover_time``, k_f times longer) about 1-2 per start,
which is short.  That is what fits
the default DAG's 20 minutes on 2 cores; the per-start spread of each score is written
beside it so that a reader sees what the length resolves, and presets raise ``les.time``.

Scores, pooled over starts (each closure's members alive at the end; a closure with a
blow-up gets ``stable: false``, its time, and no statistics):

- ``spec_err``: :func:`turbtl.spectra.log_rmse` of the time-mean energy spectrum against the
  filtered DNS (k = 1 .. n/2 - 1), the a-priori ``spec_err``'s definition.  (The enstrophy
  spectrum is k^2 E(k) shell by shell: its log error is the same number.)  It is the
  a-posteriori error of the per-layer verdict: lower is better, an unstable closure ranks
  last.
- ``pdf_err``: mean |log10 p_les - log10 p_dns| of the vorticity PDFs over bins of width
  0.25 sigma_dns in [-8, 8] sigma_dns where the DNS PDF is non-zero; the log weighs the
  tails as much as the core (p_les floored at 1e-6).
- ``energy_ratio`` / ``enstrophy_ratio``: time-mean E and Z over those of the filtered DNS.
- ``cc``: correlation of omega with the filtered DNS trajectory of the same start, per lag of
  one sample interval up to ``les.cc_time``; ``cc_t1`` at t = 1 and ``decorrelation_time``
  (first lag with cc < 0.5, null if never in the window).
"""
from __future__ import annotations

import logging
import math
import time as _time

import numpy as np
import torch

from . import TurbtlError
from .config_checks import les_window
from .data import FilteredData
from .equation import FlowParams, check_timestep
from .filters import filter_width
from .io import atomic_path, cf_globals, open_netcdf, write_json
from .les import DYNAMIC_RATIO, LES, dynamic, equivalent_constant, filtered_forcing_hat, network_closure, smagorinsky
from .runtime import progress as _progress
from .spectra import energy_enstrophy_spectra, log_rmse
from .training import load_checkpoint
from .transfer import load_baseline_model, load_tl_model
from .verdict import closure_layer, tl_closure

__all__ = ["choose_starts", "pdf_bins", "run_les_batch", "scores", "run_aposteriori_job", "best_layer_per_start",
           "per_start_errors", "dns_reference", "window_reference", "SCORE_KEYS"]

_LOG = logging.getLogger("turbtl.aposteriori")
SCORE_KEYS = ("spec_err", "pdf_err", "energy_ratio", "enstrophy_ratio", "cc_t1", "decorrelation_time")
PDF_EDGES = np.arange(-8.0, 8.0 + 1e-9, 0.25)


def choose_starts(n_members: int, n_times: int, window: int, starts: int, key: str = "cc_time") -> list[tuple[int, int]]:
    """``starts`` (member index, time index) pairs spread evenly over the snapshots that
    leave ``window`` snapshots after them (asked for by ``les.{key}``); members first, then time."""
    usable = n_times - window
    if usable < 1:
        raise TurbtlError(f"les.{key} needs {window} snapshots after a start but a test member has only "
                          f"{n_times}; fix: lower les.{key} or raise snapshots_per_member")
    pairs = [(m, t) for m in range(n_members) for t in range(usable)]
    if starts > len(pairs):
        raise TurbtlError(f"les.starts = {starts} exceeds the {len(pairs)} usable test snapshots; fix: lower les.starts")
    idx = np.linspace(0, len(pairs) - 1, starts).round().astype(int) if starts > 1 else [0]
    return [pairs[i] for i in idx]


def pdf_bins(omega: np.ndarray, sigma: float) -> np.ndarray:
    """Histogram counts of omega / sigma over :data:`PDF_EDGES` (values beyond the edges
    go to the outer bins)."""
    x = np.clip(np.asarray(omega, dtype=np.float64).ravel() / sigma, PDF_EDGES[0], PDF_EDGES[-1] - 1e-9)
    return np.histogram(x, bins=PDF_EDGES)[0].astype(np.float64)


def _pdf(counts: np.ndarray) -> np.ndarray:
    return counts / max(counts.sum(), 1.0) / np.diff(PDF_EDGES)


def _cc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=(-2, -1), keepdim=True)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    return (a * b).sum(dim=(-2, -1)) / torch.sqrt((a * a).sum(dim=(-2, -1)) * (b * b).sum(dim=(-2, -1)))


def run_les_batch(les: LES, dns_omega: np.ndarray, starts: list[tuple[int, int]], *, steps: int, spinup_steps: int,
                  stats_every: int, sample_every: int, window: int, sigma: float, progress: bool = False,
                  at_samples: bool = False) -> dict:
    """Advance ``les`` ``steps`` steps; return per-member statistics after spin-up (spectra
    summed, PDF counts of omega / ``sigma`` (the filtered DNS's, :func:`dns_reference`),
    energy and enstrophy series; every ``stats_every`` steps, or with ``at_samples`` only at
    the DNS's sample times, every ``sample_every`` steps) and the correlation with the
    filtered DNS ``dns_omega`` (members, time, n, n) of each start at lags 0 .. window."""
    C, S = les.members // les.starts, les.starts
    nk = les.grid.n // 2 + 1
    acc = {"spec": np.zeros((les.members, nk)), "pdf": np.zeros((les.members, len(PDF_EDGES) - 1)),
           "energy": [], "enstrophy": [], "time": [], "n": 0}
    cc = np.full((C, S, window + 1), np.nan)
    ref = torch.stack([torch.as_tensor(dns_omega[m, t: t + window + 1]) for m, t in starts])  # (S, W+1, n, n)

    def sample(j):
        om = les.omega.to(torch.float64).cpu().reshape(C, S, les.grid.n, les.grid.n)
        cc[:, :, j] = _cc(om, ref[None, :, j].to(torch.float64)).numpy()

    sample(0)
    bar = _progress(total=steps, unit="step", desc=f"les {les.name}", disable=not progress)
    done = 0
    while done < steps:
        m = min(stats_every, steps - done)
        les.advance(m)
        done += m
        bar.update(m)
        if done % sample_every == 0 and done // sample_every <= window:
            sample(done // sample_every)
        if done > spinup_steps and not (at_samples and done % sample_every):
            om = les.omega.to(torch.float64).cpu().numpy()
            _, e, _ = energy_enstrophy_spectra(om, average=False)
            acc["spec"] += e
            for i in range(les.members):
                acc["pdf"][i] += pdf_bins(om[i], sigma)
            acc["energy"].append(les.energy().cpu().double().numpy())
            acc["enstrophy"].append(les.enstrophy().cpu().double().numpy())
            acc["time"].append(les.t)
            acc["n"] += 1
    bar.close()
    acc["energy"], acc["enstrophy"] = np.array(acc["energy"]).T, np.array(acc["enstrophy"]).T
    acc["time"] = np.array(acc["time"])
    return {"stats": acc, "cc": cc}


def dns_reference(omega: np.ndarray) -> dict:
    """Statistics of the filtered DNS (members, time, n, n): mean energy spectrum, PDF
    counts, mean energy and enstrophy, U_rms."""
    om = np.asarray(omega, dtype=np.float64)
    n = om.shape[-1]
    flat = om.reshape(-1, n, n)
    k, e, _ = energy_enstrophy_spectra(flat)
    sigma = float(np.std(om))
    return {"spec": e, "k": k, "pdf": pdf_bins(flat, sigma), "energy": float(e.sum()),
            "enstrophy": float(0.5 * np.mean(om**2)), "sigma": sigma, "u_rms": float(np.sqrt(2 * e.sum()))}


def window_reference(omega: np.ndarray, starts: list[tuple[int, int]], first: int, last: int) -> dict:
    """:func:`dns_reference` of a decaying flow: the filtered DNS ``omega`` (members, time, n, n)
    of each start (member, time index) over its snapshots ``first`` .. ``last`` after the start
    (the sample times of the LES's statistics), pooled over starts; ``spec_start`` (starts, k)
    and ``energy_start`` (starts,): each start's own time-mean energy spectrum and energy, for
    its per-start scores."""
    if not 0 <= first <= last:
        raise TurbtlError(f"the reference window {first}..{last} (snapshots after a start) is empty; fix: make "
                          "les.time longer than les.spinup by at least one sample interval")
    for m, t in starts:
        if t + last >= omega.shape[1]:
            raise TurbtlError(f"the window of snapshots {first}..{last} after the start at snapshot {t} runs past "
                              f"its test member's {omega.shape[1]} snapshots; fix: lower les.time or raise "
                              "snapshots_per_member")
    win = np.stack([np.asarray(omega[m, t + first: t + last + 1]) for m, t in starts])
    ref = dns_reference(win)
    ref["spec_start"] = np.stack([energy_enstrophy_spectra(w.astype(np.float64))[1] for w in win])
    ref["energy_start"] = ref["spec_start"].sum(axis=1)
    return ref


def scores(run: dict, ref: dict, names: list[str], starts: int, sample_interval: float, alive, blowup_time) -> dict:
    """Per closure: stability and the scores of the module docstring, pooled over starts,
    with the per-start spread (std) of spec_err and the energy ratio."""
    st, cc = run["stats"], run["cc"]
    out = {}
    lag1 = int(round(1.0 / sample_interval))
    for c, name in enumerate(names):
        sl = list(range(c * starts, (c + 1) * starts))
        ok = all(bool(alive[m]) for m in sl)
        entry = {"stable": ok, "blowup_time": None if ok else float(np.nanmin([blowup_time[m] for m in sl]))}
        if ok and st["n"]:
            spec = st["spec"][sl] / st["n"]
            e_pool, e_ref = spec.mean(axis=0), ref["spec"]
            e_start = ref.get("spec_start", [e_ref] * starts)  # a decaying flow's own window per start
            per_start = [log_rmse(s, r) for s, r in zip(spec, e_start)]
            p_les, p_dns = _pdf(st["pdf"][sl].sum(axis=0)), _pdf(ref["pdf"])
            keep = p_dns > 0
            ccm = np.nanmean(cc[c], axis=0)
            below = np.nonzero(ccm < 0.5)[0]
            entry.update(
                spec_err=log_rmse(e_pool, e_ref), spec_err_std=float(np.std(per_start, ddof=1)) if starts > 1 else None,
                pdf_err=float(np.mean(np.abs(np.log10(np.maximum(p_les[keep], 1e-6)) - np.log10(p_dns[keep])))),
                energy_ratio=float(st["energy"][sl].mean() / ref["energy"]),
                energy_ratio_std=float(np.std(st["energy"][sl].mean(axis=1) / ref.get("energy_start", ref["energy"]), ddof=1))
                if starts > 1 else None,
                enstrophy_ratio=float(st["enstrophy"][sl].mean() / ref["enstrophy"]),
                cc_t1=float(ccm[lag1]) if lag1 < len(ccm) else None,
                decorrelation_time=float(below[0] * sample_interval) if len(below) else None)
        else:
            entry.update({k: None for k in SCORE_KEYS})
        out[name] = entry
    return out


#: The physics closures besides the constant-coefficient Smagorinsky, in the order of the batch.
DYNAMIC_CLOSURES = {"dynamic_smagorinsky": "smagorinsky", "dynamic_leith": "leith"}


def _closures(model_path, layer_weights: dict, baseline_weights: dict, seed: int, n: int, delta: float, cs: float,
              filter_delta: float, device) -> tuple[list[str], list]:
    base, norm, _ = load_checkpoint(model_path, device)
    names = ["no_closure", "smagorinsky", *DYNAMIC_CLOSURES, "zero_shot"]
    fns = [None, smagorinsky(n, delta, cs, device=device),
           *(dynamic(kind, n, filter_delta, device=device) for kind in DYNAMIC_CLOSURES.values()),
           network_closure(base, norm)]
    for layer, path in sorted(layer_weights.items()):
        names.append(tl_closure(layer))
        fns.append(network_closure(load_tl_model(model_path, path, seed, device), norm))
    for method, path in baseline_weights.items():
        names.append(str(method))
        fns.append(network_closure(load_baseline_model(model_path, path, seed, device), norm))
    return names, fns


def run_aposteriori_job(data_path, model_path, layer_weights: dict, baseline_weights: dict, out_json, out_nc, *,
                        les_cfg: dict, seed: int, cfl_max: float, device="cpu", progress: bool = True,
                        log: logging.Logger | None = None) -> dict:
    """Run every closure of one target in one batched LES and score it (module docstring)."""
    log = log or _LOG
    t0 = _time.perf_counter()
    dev = torch.device(device)
    data = FilteredData(data_path)
    a = data.attrs
    name = data.name
    dns_om = data.fields("test")["omega"]
    n = dns_om.shape[-1]
    dt, si = float(les_cfg["dt"]), float(a["sample_interval"])
    sample_every = int(round(si / dt))
    if abs(sample_every * dt - si) > 1e-9 * si or sample_every < 1:
        raise TurbtlError(f"les.dt = {dt} does not divide the sample interval {si} of '{name}'; "
                          f"fix: choose les.dt = {si}/k for an integer k")
    p = FlowParams.from_config(dict(a, n_dns=n, dt=dt), name)  # the flow on the LES grid, at the LES step
    decaying = not p.force
    check_timestep(p, cfl_max, where="les")
    window = int(round(float(les_cfg["cc_time"]) / si))
    start_window, start_key = les_window(les_cfg, si, decaying)
    starts = choose_starts(dns_om.shape[0], dns_om.shape[1], start_window, int(les_cfg["starts"]), key=start_key)
    delta = 2 * math.pi / n  # the LES grid spacing (see turbtl.les.smagorinsky)
    filter_delta = filter_width(n, float(a["filter_width_factor"]))  # the width of the filter that made the data
    names, fns = _closures(model_path, layer_weights, baseline_weights, seed, n, delta,
                           float(les_cfg["smagorinsky_cs"]), filter_delta, dev)
    fh = None if decaying else filtered_forcing_hat(int(a["kf"]), int(a["n_dns"]), n, str(a["filter_kind"]),
                                                    float(a["filter_width_factor"]))
    omega0 = torch.stack([torch.as_tensor(dns_om[m, t]) for m, t in starts])
    les = LES(p, omega0, fns, names, forcing_hat=fh, device=dev, dtype=torch.float32, cfl_max=cfl_max,
              check_every=int(les_cfg.get("check_every", 10)))
    steps = int(round(float(les_cfg["time"]) / dt))
    spin = int(round(float(les_cfg["spinup"]) / dt))
    if decaying:  # the filtered DNS at the LES's statistics times: the sample times after its spin-up
        ref = window_reference(dns_om, starts, spin // sample_every + 1, steps // sample_every)
    else:
        ref = dns_reference(dns_om)
    tau = 2 * math.pi / int(a["kf"]) / ref["u_rms"]
    log.info("LES %s: %d closures x %d starts on %d^2, dt %g, %d steps (%.1f turnover times of %.3g), spin-up %d",
             name, len(names), len(starts), n, dt, steps, steps * dt / tau, tau, spin)
    run = run_les_batch(les, dns_om, starts, steps=steps, spinup_steps=spin, stats_every=int(les_cfg["stats_every"]),
                        sample_every=sample_every, window=window, sigma=ref["sigma"], progress=progress,
                        at_samples=decaying)
    res = scores(run, ref, names, len(starts), si, les.alive.tolist(), les.blowup_time)
    for m in range(les.members):
        if not les.alive[m]:
            log.warning("%s start %d blew up at t=%.3g (%s)", names[m // len(starts)], m % len(starts),
                        les.blowup_time[m], les.blowup_cause[m])
    wall = _time.perf_counter() - t0
    out = {"target": name, "metric": "spec_err", "closures": res, "starts": [list(map(int, s)) for s in starts],
           "reference": "filtered DNS of each start's window after the spin-up (decaying flow)" if decaying else
                        "filtered DNS of every test snapshot",
           "les": {"n": n, "dt": dt, "time": steps * dt, "spinup": spin * dt, "steps": steps,
                   "turnover_time": tau, "turnovers_per_start": (steps - spin) * dt / tau,
                   # the domain-scale turnover time 2 pi / U_rms (the brief's "eddy turnover times"): kf times longer
                   "domain_turnover_time": tau * int(a["kf"]),
                   "domain_turnovers_per_start": (steps - spin) * dt / (tau * int(a["kf"])),
                   "smagorinsky_cs": float(les_cfg["smagorinsky_cs"]), "smagorinsky_delta": delta,
                   "dynamic": _dynamic_constants(names, fns, len(starts), delta, filter_delta),
                   "network_seed": int(seed), "max_cfl": les.max_cfl, "wall_s": wall}}
    _write_nc(out_nc, run, ref, names, len(starts), si, name)
    write_json(out, out_json)
    for c in names:
        log.info("%-14s %s", c, {k: res[c].get(k) for k in ("stable", *SCORE_KEYS)})
    log.info("LES %s done in %.1f s", name, wall)
    return out


def _dynamic_constants(names: list[str], fns: list, starts: int, delta: float, filter_delta: float) -> dict:
    """Per dynamic closure: the time-mean coefficient over its live members' calls (every step,
    the spin-up included) as the static model's constant with Delta = the LES grid spacing
    ``delta`` (comparable with ``les.smagorinsky_cs``), pooled and per start; the filter widths."""
    out = {}
    for name, fn in zip(names, fns):
        if name in DYNAMIC_CLOSURES:
            calls = torch.as_tensor(fn.calls, dtype=torch.float64).reshape(-1)
            total = torch.as_tensor(fn.coefficient_sum, dtype=torch.float64).reshape(-1)
            per = [equivalent_constant(fn.kind, float(s / k), delta) if k > 0 else None
                   for s, k in zip(total.cpu().tolist(), calls.cpu().tolist())]
            whole = float(total.sum() / calls.sum()) if float(calls.sum()) > 0 else None
            out[name] = {"constant": equivalent_constant(fn.kind, whole, delta) if whole is not None else None,
                         "constant_per_start": per if len(per) == starts else None,
                         "delta": delta, "test_filter_ratio": DYNAMIC_RATIO, "filter_delta": filter_delta}
    return out


def _write_nc(path, run: dict, ref: dict, names: list[str], starts: int, sample_interval: float, target: str) -> None:
    import xarray as xr

    st = run["stats"]
    C = len(names)
    nk = ref["spec"].shape[0]
    spec = st["spec"].reshape(C, starts, nk) / max(st["n"], 1)
    ds = xr.Dataset(
        {"energy_spectrum": (("closure", "start", "k"), spec, {"long_name": "time-mean energy spectrum E(k) of the LES"}),
         "vorticity_pdf": (("closure", "bin"), np.stack([_pdf(st["pdf"][c * starts:(c + 1) * starts].sum(0)) for c in range(C)]),
                           {"long_name": "PDF of omega / sigma_dns of the LES"}),
         "energy": (("closure", "start", "time"), st["energy"].reshape(C, starts, -1), {"long_name": "LES energy"}),
         "enstrophy": (("closure", "start", "time"), st["enstrophy"].reshape(C, starts, -1), {"long_name": "LES enstrophy"}),
         "cc": (("closure", "start", "lag"), run["cc"], {"long_name": "correlation of omega with the filtered DNS"}),
         "dns_energy_spectrum": (("k",), ref["spec"], {"long_name": "energy spectrum of the filtered DNS (test members)"}),
         **({"dns_energy_spectrum_start": (("start", "k"), ref["spec_start"], {
             "long_name": "energy spectrum of the filtered DNS in each start's window (decaying flow)"})}
            if "spec_start" in ref else {}),
         "dns_vorticity_pdf": (("bin",), _pdf(ref["pdf"]), {"long_name": "PDF of omega / sigma_dns of the filtered DNS"})},
        coords={"closure": names, "start": np.arange(starts), "k": ref["k"], "time": st["time"],
                "lag": np.arange(run["cc"].shape[-1]) * sample_interval,
                "bin": 0.5 * (PDF_EDGES[1:] + PDF_EDGES[:-1])},
        attrs={**cf_globals(f"a-posteriori LES statistics of flow {target}"), "target": target, "sigma_dns": ref["sigma"]})
    for v in ds.data_vars.values():
        v.attrs.setdefault("units", "1")
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


def per_start_errors(stats) -> dict[int, np.ndarray]:
    """Per re-trained layer, from ``les_stats.nc`` (its path or the open dataset): the
    ``spec_err`` of each start alone (its time-mean energy spectrum against the filtered
    DNS; for a decaying flow, that of the start's own window), shape (starts,); inf where
    the member blew up (its spectrum is zero)."""
    if not hasattr(stats, "data_vars"):
        with open_netcdf(stats) as ds:
            return per_start_errors(ds)
    names = [str(c) for c in stats["closure"].values]
    spec = stats["energy_spectrum"].values  # (closure, start, k)
    if "dns_energy_spectrum_start" in stats:  # a decaying flow: each start's own window
        refs = stats["dns_energy_spectrum_start"].values
    else:
        refs = [stats["dns_energy_spectrum"].values] * spec.shape[1]
    out = {}
    for i, c in enumerate(names):
        L = closure_layer(c)
        if L is not None:
            out[L] = np.array([log_rmse(e, r) if np.all(np.isfinite(e)) and np.any(e > 0) else math.inf
                               for e, r in zip(spec[i], refs)])
    return out


def best_layer_per_start(err: dict[int, np.ndarray]) -> list[int | None]:
    """Per start: the layer with the lowest of :func:`per_start_errors`'s ``err`` (None if
    all blew up).  Starts that name different layers show how much of the pooled
    a-posteriori ranking is start-to-start spread."""
    if not err:
        return []
    starts = len(next(iter(err.values())))
    out = []
    for s in range(starts):
        best = min(err, key=lambda L: (err[L][s], L))
        out.append(None if math.isinf(err[best][s]) else int(best))
    return out
