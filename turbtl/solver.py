"""Batched pseudo-spectral DNS of forced, damped 2D turbulence on the 2*pi square.

The equation, its parameters, forcing, initial condition and checks are in
:mod:`turbtl.equation`; the time stepping (AB2 / Crank-Nicolson / implicit drag) and the
CFL / finiteness guard in :mod:`turbtl.stepper`.  This module binds them into the DNS
(:class:`DNSSolver`: the 2/3-dealiased advection of :class:`Advection` on the
2/3-masked state) and runs one flow to a netCDF file (:func:`run_dns`).

Numerics: Fourier pseudo-spectral on the real FFT; the advection term J(psi, omega) is
computed in Basdevant's form (u v and v^2 - u^2 from two inverse and two forward transforms)
or, with ``dns.nonlinear: advective``, as u omega_x + v omega_y (four inverse, one forward:
what runs before the basdevant form computed), and dealiased with the conjugate-symmetric 2/3
mask (:func:`turbtl.grid.dealias_mask`) in :class:`turbtl.advection.Advection`; the transforms may
skip the columns kx > n/3 that the mask zeroes (``dns.prune``, :meth:`Advection.set_prune`).
All ensemble members are integrated as one batch: state ``omega_hat`` (members, n, n//2+1),
band-limited to the 2/3 mask.

Guards: :func:`check_timestep` rejects a clearly unstable ``dt`` before any work; every
``check_every`` steps the solver checks the CFL number max(|u|, |v|) dt/dx and the
finiteness of the state; :func:`check_resolution` checks that the time-mean enstrophy
spectrum at the 2/3 cut-off shell sits ``resolution_decades`` below its peak (and, so that a
clearly under-resolved flow stops after the spin-up rather than at the end, the first
snapshot's within :data:`EARLY_RESOLUTION_MARGIN` of it).  Each failure
raises :class:`turbtl.TurbtlError` naming the cause and the fix.

Resume: a long DNS saves its state every ``dns.checkpoint_minutes`` and on SIGTERM / SIGINT,
and a rerun of the same job continues from it bit for bit (:mod:`turbtl.resume`).
"""
from __future__ import annotations

import logging
import os
import signal
import time as _time

import numpy as np
import torch

from . import TurbtlError, __version__, equation
from .advection import FORM_TEXT, Advection
from .equation import (
    BETA_SIGN,
    FlowParams,
    check_resolution,
    check_timestep,
    cutoff_shell,
    equation_text,
    laminar_velocity,
    resolution_decades,
)
from .grid import SpectralGrid
from .io import atomic_path, nc_field_coords, nc_set_attrs, nc_snapshot_variables
from .resume import Checkpoint, StopSignals, resume_dir, trajectory_key
from .runtime import progress as _progress
from .spectra import energy_enstrophy_spectra
from .stepper import Stepper

__all__ = [
    "FlowParams",
    "Advection",
    "DNSSolver",
    "check_timestep",
    "check_resolution",
    "laminar_velocity",
    "run_dns",
    "resume_dir",
    "PRECISIONS",
    "BETA_SIGN",
]

_LOG = logging.getLogger("turbtl.solver")


class DNSSolver(Stepper):
    """All ``members`` of one flow integrated as one batch (a :class:`turbtl.stepper.Stepper`
    with the DNS's advection, forcing and 2/3 mask).

    ``omega_hat`` (members, n, n//2+1) is the state (rfft of the vorticity), ``t`` the model
    time.  :meth:`step` advances one step without allocating or synchronising with the
    device; :meth:`advance` runs many steps with the CFL / finiteness guard every
    ``check_every`` steps.  ``cuda_graph``, ``compile`` and ``band`` (auto | on | off,
    default off) and ``prune`` (auto | inverse | both | off, default off): the opt-in
    speed-ups of :meth:`turbtl.stepper.Stepper.accelerate`.  ``nonlinear``: the form of
    J(psi, omega), basdevant (default) or advective (:mod:`turbtl.advection`).
    """

    def __init__(self, params: FlowParams, members: int, *, device="cpu", dtype=torch.float32,
                 seed: int | None = 0, cfl_max: float = 1.0, check_every: int = 50,
                 energy: float | None = None, cuda_graph: str = "off", compile: str = "off",
                 band: str = "off", prune: str = "off", nonlinear: str = "basdevant"):
        self.p = params
        grid = SpectralGrid(params.n, device=device, dtype=dtype)
        fh = equation.forcing_hat(params.n, params.kf) if params.force else None
        super().__init__(grid, members, dt=params.dt, nu=params.nu, mu=params.mu, beta=params.beta,
                         forcing_hat=fh, mask=grid.mask, tendency=Advection(grid, members, nonlinear), name=params.name,
                         cfl_max=cfl_max, check_every=check_every)
        if seed is not None:
            self.set_random_state(seed, energy=energy)
        self.acceleration = self.accelerate(cuda_graph=cuda_graph, compile=compile, band=band, prune=prune)

    def set_random_state(self, seed: int, energy: float | None = None) -> None:
        """Random-phase vorticity peaked at kf with energy ``energy`` per member (default
        :func:`turbtl.equation.initial_energy`); see :func:`turbtl.equation.random_vorticity_hat`."""
        e = equation.initial_energy(self.p) if energy is None else float(energy)
        self.set_state_hat(equation.random_vorticity_hat(self.p.n, self.members, self.p.kf, e, seed, self.dtype))
        self.t = 0.0
        self.nstep = 0

    def nonlinear_hat(self, omega_hat: torch.Tensor | None = None) -> torch.Tensor:
        """Dealiased rfft of J(psi, omega) (a new tensor; for diagnostics and tests)."""
        oh = self.omega_hat if omega_hat is None else omega_hat
        return self.grid.jacobian_hat(oh * self.grid.inv_lap, oh)

    def fft_only(self) -> None:
        """Exactly the FFTs that :meth:`step` makes, on its buffers (for benchmarks)."""
        self.tendency.fft_only(self._G)


# ----------------------------------------------------------------------------------------
#: dns.precision -> torch dtype
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


#: the early resolution check fails the first snapshot (after the spin-up) only if it falls this
#: many decades short of ``dns.resolution_decades``: a clearly under-resolved flow then stops
#: there instead of after the whole DNS, and the time-mean check at the end decides the rest.
#: Measured on the 30 DNS of the default run's five replicates and the predictor study (2-core
#: EPYC, 2026-11-29): the first snapshot's decades lay within 0.21 of the time mean's.
EARLY_RESOLUTION_MARGIN = 0.5


def _early_resolution_check(z: np.ndarray, n: int, decades: float, name: str, t: float, steps_left: int) -> None:
    """:func:`resolution_decades` of the first snapshot's enstrophy spectrum ``z`` against
    ``decades`` less the margin :data:`EARLY_RESOLUTION_MARGIN`."""
    kc, got = cutoff_shell(n), resolution_decades(z, n)
    if not got >= decades - EARLY_RESOLUTION_MARGIN:
        raise TurbtlError(
            f"system '{name}' is under-resolved: on the first snapshot (t = {t:.6g}, after the spin-up) the "
            f"enstrophy spectrum at the 2/3 cut-off k = {kc} is only {got:.2f} decades below its peak, more than "
            f"{EARLY_RESOLUTION_MARGIN} short of dns.resolution_decades = {decades}, so the DNS stopped there instead "
            f"of running its {steps_left} remaining steps; fix: raise systems.{name}.n_dns (now {n}) or lower "
            f"systems.{name}.Re")


def run_dns(system: dict, out_path, *, dns_cfg: dict, device="cpu", progress: bool = True,
            log: logging.Logger | None = None) -> dict:
    """Spin up and sample one flow; write the snapshots of omega to ``out_path`` (netCDF4).

    ``system``: the ``systems.<name>`` config (with ``name``); ``dns_cfg``: the ``dns``
    config (precision, cfl_max, check_every, resolution_decades; checkpoint_minutes,
    cuda_graph, compile, band, prune; nonlinear).  The first snapshot is taken at t = spinup_time, then every
    sample_interval.  Snapshots go to the checkpoint's raw file as they come; after the run
    and the resolution check they are copied into the temporary netCDF (created at the start,
    as every stage's output is) that is then renamed onto ``out_path``; on a failed guard no
    output file and no checkpoint is left.  The run saves
    its state and continues from it when rerun (module docstring, Resume); on SIGTERM it
    saves and exits with status 143 (SIGINT: saves and raises KeyboardInterrupt).  Returns a
    summary dict (max CFL, resolution decades, timings).
    """
    log = log or _LOG
    name = str(system.get("name", "flow"))
    p = FlowParams.from_config(system, name)
    precision = str(dns_cfg.get("precision", "float32"))
    if precision not in PRECISIONS:
        raise TurbtlError(f"dns.precision = {precision!r}; fix: use float32 or float64")
    dtype = PRECISIONS[precision]
    cfl_max = float(dns_cfg.get("cfl_max", 1.0))
    check_every = int(dns_cfg.get("check_every", 50))
    decades = float(dns_cfg.get("resolution_decades", 2.0))
    minutes = float(dns_cfg.get("checkpoint_minutes", 10.0))
    if not minutes >= 0:
        raise TurbtlError(f"dns.checkpoint_minutes = {minutes}; fix: use a number >= 0 (0: only on SIGTERM)")
    # checked (and YAML's on/off booleans read) by Stepper.accelerate when the solver is built
    accel = {k: dns_cfg.get(k, d) for k, d in (("cuda_graph", "auto"), ("compile", "off"), ("band", "auto"),
                                            ("prune", "auto"))}
    nonlinear = str(dns_cfg.get("nonlinear", "basdevant"))  # (checked by Advection, before any step)
    members = int(system["members"])
    nsnap = int(system["snapshots_per_member"])
    seed = int(system.get("seed", 0))
    est = check_timestep(p, cfl_max)

    n_spin = int(round(float(system["spinup_time"]) / p.dt))
    n_every = int(round(float(system["sample_interval"]) / p.dt))
    if n_every < 1 or nsnap < 1:
        raise TurbtlError(f"systems.{name}: sample_interval ({system['sample_interval']}) must be >= dt "
                          f"and snapshots_per_member >= 1; fix: raise sample_interval")
    total = n_spin + (nsnap - 1) * n_every
    log.info("DNS %s: n=%d members=%d Re=%g kf=%d beta=%g mu=%g dt=%g, %d steps (%d spin-up), "
             "a-priori CFL estimate %.3f, %s on %s, J(psi, omega) in the %s form", name, p.n, members, p.Re, p.kf,
             p.beta, p.mu, p.dt, total, n_spin, est, precision, device, nonlinear)

    solver = DNSSolver(p, members, device=device, dtype=dtype, seed=seed, cfl_max=cfl_max,
                       check_every=check_every, nonlinear=nonlinear, **accel)
    acc = solver.acceleration
    log.info("DNS %s: CUDA graph of %d steps (dns.cuda_graph = %s), compiled update %s (dns.compile = %s), "
             "banded passes %s (dns.band = %s), pruned transforms %s (dns.prune = %s)", name, acc["cuda_graph"],
             accel["cuda_graph"], "on" if acc["compile"] else "off", accel["compile"],
             "on" if acc["band"] else "off", accel["band"], acc["prune"], accel["prune"])
    n = p.n
    # the forcing, a configured initial energy and the basdevant form join the key where they differ from
    # what runs before them had (so that such a run keeps the key it always had; a checkpoint of the
    # advective form is not continued in the basdevant one)
    extra = {**({} if p.force else {"forcing": "none"}),
             **({} if nonlinear == "advective" else {"nonlinear": nonlinear}),
             **({} if p.energy0 is None else {"initial_energy": float(p.energy0)})}
    key = trajectory_key(**extra, Re=p.Re, kf=p.kf, beta=p.beta, mu=p.mu, n=n, dt=p.dt, members=members, seed=seed,
                          n_spin=n_spin, n_every=n_every, nsnap=nsnap, precision=precision,
                          check_every=check_every, cfl_max=cfl_max, resolution_decades=decades)
    ck = Checkpoint(out_path, key, members, n, log)
    st = ck.load()
    times = torch.zeros(nsnap, dtype=torch.float64)
    energy = torch.zeros(members, nsnap, dtype=torch.float64)
    enstrophy = torch.zeros(members, nsnap, dtype=torch.float64)
    zsum, written, resumes = None, 0, 0
    if st is not None:
        solver.load_state_dict(st["solver"])
        written, resumes = int(st["written"]), int(st["resumes"]) + 1
        times, energy, enstrophy = st["time"], st["energy"], st["enstrophy"]
        zsum = None if st["zsum"] is None else st["zsum"].numpy()
        log.info("DNS %s: resuming from the checkpoint in %s: step %d of %d (t = %.6g), %d of %d snapshots "
                 "written, saved %s on %s (resume %d)", name, ck.dir, solver.nstep, total, solver.t, written, nsnap,
                 st["saved"], st["device"], resumes)

    def state() -> dict:
        return {"solver": solver.state_dict(), "written": written, "time": times, "energy": energy,
                "enstrophy": enstrophy, "zsum": None if zsum is None else torch.from_numpy(zsum.copy()),
                "resumes": resumes, "device": str(device), "name": name, "pid": os.getpid(),
                "saved": _time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    targets = [n_spin + j * n_every for j in range(nsnap)]
    ce = solver.check_every
    interval = 60.0 * minutes
    t0 = _time.perf_counter()
    last_save = _time.monotonic()
    step0 = solver.nstep
    t_spin = None  # wall time of the spin-up, when this session made it
    ck.open(written)
    import netCDF4

    try:
        # the output's temporary exists while the DNS runs, as every stage's does; the
        # snapshots go into it at the end, from the checkpoint's raw file
        with atomic_path(out_path) as tmp, StopSignals() as sig:
            ds = netCDF4.Dataset(str(tmp), "w", format="NETCDF4")
            try:
                nc = _dns_variables(ds, members, nsnap, n)
                bar = _progress(total=total, initial=solver.nstep, unit="step", desc=f"dns {name}", disable=not progress)
                try:
                    for j in range(written, nsnap):
                        while solver.nstep < targets[j]:
                            # blocks that end on a multiple of check_every or on the snapshot: the
                            # guard runs at the end of each (as in one advance call), and a
                            # checkpoint can be taken between them
                            m = min(ce - solver.nstep % ce, targets[j] - solver.nstep)
                            solver.advance(m)
                            bar.update(m)
                            if sig.received is None and not (interval > 0 and _time.monotonic() - last_save >= interval):
                                continue
                            s0 = _time.perf_counter()
                            ck.save(state())
                            last_save = _time.monotonic()
                            if sig.received is None:
                                log.info("DNS %s: checkpoint at step %d of %d (t = %.6g, %d of %d snapshots) saved "
                                         "in %.1f s to %s", name, solver.nstep, total, solver.t, written, nsnap,
                                         _time.perf_counter() - s0, ck.dir)
                                continue
                            log.warning("DNS %s: %s received; state at step %d of %d (t = %.6g, %d of %d snapshots) "
                                        "saved to %s; stopping. Rerun the same job (the same snakemake command) to "
                                        "continue from there", name, signal.Signals(sig.received).name, solver.nstep,
                                        total, solver.t, written, nsnap, ck.dir)
                            if sig.received == signal.SIGINT:
                                raise KeyboardInterrupt
                            raise SystemExit(128 + int(sig.received))
                        if j == 0:
                            t_spin = _time.perf_counter() - t0
                        om = solver.omega.to("cpu", torch.float32).numpy()
                        ck.append(om)
                        times[j] = solver.t
                        energy[:, j] = solver.energy().cpu().double()
                        enstrophy[:, j] = solver.enstrophy().cpu().double()
                        _, _, z = energy_enstrophy_spectra(om)
                        if j == 0 and n_spin > 0:
                            _early_resolution_check(z, n, decades, name, solver.t, total - solver.nstep)
                        zsum = z if zsum is None else zsum + z
                        written = j + 1
                finally:
                    bar.close()
                k = np.arange(n // 2 + 1, dtype=np.float64)
                got = check_resolution(k, zsum / nsnap, n, decades, name)
                _fill_dns_file(ds, nc, ck, system, name, nsnap, times, energy, enstrophy, attrs={
                    "precision": precision, "max_cfl": float(solver.max_cfl),
                    "initial_energy": equation.initial_energy(p),
                    "forcing": "kolmogorov" if p.force else "none", "equation": equation_text(p.force),
                    "resolution_decades_measured": float(got), "cfl_max": cfl_max, "resolution_decades": decades,
                    "checkpoint_resumes": resumes, "nonlinear_form": FORM_TEXT[nonlinear]})
            finally:
                ds.close()
    except TurbtlError:
        ck.remove()  # a failed guard fails again on a rerun: start anew then
        raise
    except BaseException:
        ck.close()
        if not ck.saved:
            ck.remove()
        raise
    ck.remove()
    wall = _time.perf_counter() - t0
    steps_s = (total - step0) / max(wall, 1e-9)
    info = {"name": name, "steps": total, "steps_this_run": total - step0, "wall_s": wall, "spinup_s": t_spin,
            "max_cfl": solver.max_cfl, "resolution_decades": got, "member_steps_per_s": steps_s * members,
            "resumes": resumes, "acceleration": dict(solver.acceleration)}
    log.info("DNS %s done: %.1f s (%.0f member-steps/s), max CFL %.3f, enstrophy spectrum at "
             "k=%d is %.2f decades below its peak%s", name, wall, info["member_steps_per_s"],
             solver.max_cfl, cutoff_shell(n), got, f" (resumed {resumes} time(s))" if resumes else "")
    return info


def _dns_variables(ds, members: int, nsnap: int, n: int) -> dict:
    """The coordinates and variables of the DNS file (an open netCDF4.Dataset)."""
    vt = nc_field_coords(ds, members, nsnap, n, time_long_name="model time since the start of the integration")
    v = nc_snapshot_variables(ds, members, n, {
        "omega": ("field", "vorticity (nondimensional)"),
        "energy": ("series", "kinetic energy mean(|u|^2)/2 of the snapshot"),
        "enstrophy": ("series", "enstrophy mean(omega^2)/2 of the snapshot")})
    return dict(v, time=vt)


def _fill_dns_file(ds, v: dict, ck: Checkpoint, system: dict, name: str, nsnap: int, times, energy, enstrophy, *,
                   attrs: dict) -> None:
    """Write the snapshots from the checkpoint's raw file (one at a time in memory), the
    series and the attributes."""
    buf = np.empty(v["omega"].shape[:1] + v["omega"].shape[2:], dtype=np.float32)
    for j in range(nsnap):
        ck.read(j, buf)
        v["omega"][:, j, :, :] = buf
    v["time"][:] = times.numpy()
    v["energy"][:, :] = energy.numpy()
    v["enstrophy"][:, :] = enstrophy.numpy()
    kind = "forced" if equation.is_forced(system) else "decaying"
    nc_set_attrs(ds, system, title=f"DNS of {kind} 2D turbulence, flow {system.get('name', '')}")
    ds.setncattr("name", name)
    ds.setncattr("beta_sign", BETA_SIGN)
    ds.setncattr("turbtl_version", __version__)
    ds.setncattr("dealiasing", "2/3 rule, |kx| < n/3 and |ky| < n/3")
    ds.setncattr("time_stepping", f"AB2 (advection, beta{', forcing' if kind == 'forced' else ''}; first step Euler), "
                                  "Crank-Nicolson viscosity, implicit drag")
    for key, val in attrs.items():
        ds.setncattr(key, val)
