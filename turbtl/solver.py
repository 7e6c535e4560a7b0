"""Batched pseudo-spectral DNS of forced, damped 2D turbulence on the 2*pi square.

The equation, its parameters, forcing, initial condition and checks are in
:mod:`turbtl.equation`; the time stepping (AB2 / Crank-Nicolson / implicit drag) and the
CFL / finiteness guard in :mod:`turbtl.stepper`.  This module binds them into the DNS
(:class:`DNSSolver`: the 2/3-dealiased advection of :class:`turbtl.stepper.Advection` on the
2/3-masked state) and runs one flow to a netCDF file (:func:`run_dns`).

Numerics: Fourier pseudo-spectral on the real FFT; the advection term is computed in the
advective form from four inverse transforms (u, v, omega_x, omega_y) and one forward
transform, and dealiased with the conjugate-symmetric 2/3 mask
(:func:`turbtl.grid.dealias_mask`).  All ensemble members are integrated as one batch:
state ``omega_hat`` (members, n, n//2+1), band-limited to the 2/3 mask.

Guards: :func:`check_timestep` rejects a clearly unstable ``dt`` before any work; every
``check_every`` steps the solver checks the CFL number max(|u|, |v|) dt/dx and the
finiteness of the state; :func:`check_resolution` checks that the time-mean enstrophy
spectrum at the 2/3 cut-off shell sits ``resolution_decades`` below its peak.  Each failure
raises :class:`turbtl.TurbtlError` naming the cause and the fix.
"""
from __future__ import annotations

import logging
import time as _time

import numpy as np
import torch

from . import TurbtlError, __version__, equation
from .equation import BETA_SIGN, EQUATION, FlowParams, check_resolution, check_timestep, laminar_velocity
from .grid import SpectralGrid
from .io import atomic_path, nc_field_coords, nc_set_attrs, nc_snapshot_variables
from .runtime import progress as _progress
from .spectra import energy_enstrophy_spectra
from .stepper import Advection, Stepper

__all__ = [
    "FlowParams",
    "DNSSolver",
    "check_timestep",
    "check_resolution",
    "laminar_velocity",
    "run_dns",
    "BETA_SIGN",
]

_LOG = logging.getLogger("turbtl.solver")


class DNSSolver(Stepper):
    """All ``members`` of one flow integrated as one batch (a :class:`turbtl.stepper.Stepper`
    with the DNS's advection, forcing and 2/3 mask).

    ``omega_hat`` (members, n, n//2+1) is the state (rfft of the vorticity), ``t`` the model
    time.  :meth:`step` advances one step without allocating or synchronising with the
    device; :meth:`advance` runs many steps with the CFL / finiteness guard every
    ``check_every`` steps.
    """

    def __init__(self, params: FlowParams, members: int, *, device="cpu", dtype=torch.float32,
                 seed: int | None = 0, cfl_max: float = 1.0, check_every: int = 50,
                 energy: float | None = None):
        self.p = params
        grid = SpectralGrid(params.n, device=device, dtype=dtype)
        fh = equation.forcing_hat(params.n, params.kf) if params.force else None
        super().__init__(grid, members, dt=params.dt, nu=params.nu, mu=params.mu, beta=params.beta,
                         forcing_hat=fh, mask=grid.mask, tendency=Advection(grid, members), name=params.name,
                         cfl_max=cfl_max, check_every=check_every)
        if seed is not None:
            self.set_random_state(seed, energy=energy)

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
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def run_dns(system: dict, out_path, *, dns_cfg: dict, device="cpu", progress: bool = True,
            log: logging.Logger | None = None) -> dict:
    """Spin up and sample one flow; stream the snapshots of omega to ``out_path`` (netCDF4).

    ``system``: the ``systems.<name>`` config (with ``name``); ``dns_cfg``: the ``dns``
    config (precision, cfl_max, check_every, resolution_decades).  The first snapshot is
    taken at t = spinup_time, then every sample_interval.  Each snapshot is written as it
    comes into a temporary file that is renamed onto ``out_path`` only after the run and
    the resolution check succeed; on any error no output file is left.  Returns a summary
    dict (max CFL, resolution decades, timings).
    """
    log = log or _LOG
    name = str(system.get("name", "flow"))
    p = FlowParams.from_config(system, name)
    precision = str(dns_cfg.get("precision", "float32"))
    if precision not in _DTYPES:
        raise TurbtlError(f"dns.precision = {precision!r}; fix: use float32 or float64")
    dtype = _DTYPES[precision]
    cfl_max = float(dns_cfg.get("cfl_max", 1.0))
    check_every = int(dns_cfg.get("check_every", 50))
    decades = float(dns_cfg.get("resolution_decades", 2.0))
    members = int(system["members"])
    nsnap = int(system["snapshots_per_member"])
    est = check_timestep(p, cfl_max)

    n_spin = int(round(float(system["spinup_time"]) / p.dt))
    n_every = int(round(float(system["sample_interval"]) / p.dt))
    if n_every < 1 or nsnap < 1:
        raise TurbtlError(f"systems.{name}: sample_interval ({system['sample_interval']}) must be >= dt "
                          f"and snapshots_per_member >= 1; fix: raise sample_interval")
    total = n_spin + (nsnap - 1) * n_every
    log.info("DNS %s: n=%d members=%d Re=%g kf=%d beta=%g mu=%g dt=%g, %d steps (%d spin-up), "
             "a-priori CFL estimate %.3f, %s on %s", name, p.n, members, p.Re, p.kf, p.beta, p.mu,
             p.dt, total, n_spin, est, precision, device)

    solver = DNSSolver(p, members, device=device, dtype=dtype, seed=int(system.get("seed", 0)),
                       cfl_max=cfl_max, check_every=check_every)
    n = p.n
    zsum = None
    t0 = _time.perf_counter()
    import netCDF4

    with atomic_path(out_path) as tmp:
        ds = netCDF4.Dataset(str(tmp), "w", format="NETCDF4")
        try:
            vt = nc_field_coords(ds, members, nsnap, n,
                                 time_long_name="model time since the start of the integration")
            v = nc_snapshot_variables(ds, members, n, {
                "omega": ("field", "vorticity (nondimensional)"),
                "energy": ("series", "kinetic energy mean(|u|^2)/2 of the snapshot"),
                "enstrophy": ("series", "enstrophy mean(omega^2)/2 of the snapshot")})
            vw, ve, vz = v["omega"], v["energy"], v["enstrophy"]

            bar = _progress(total=total, unit="step", desc=f"dns {name}", disable=not progress)
            try:
                solver.advance(n_spin, bar)
                t_spin = _time.perf_counter() - t0
                for j in range(nsnap):
                    if j:
                        solver.advance(n_every, bar)
                    om = solver.omega.to("cpu", torch.float32).numpy()
                    vw[:, j, :, :] = om
                    vt[j] = solver.t
                    ve[:, j] = solver.energy().cpu().double().numpy()
                    vz[:, j] = solver.enstrophy().cpu().double().numpy()
                    _, _, z = energy_enstrophy_spectra(om)
                    zsum = z if zsum is None else zsum + z
            finally:
                bar.close()
            k = np.arange(n // 2 + 1, dtype=np.float64)
            got = check_resolution(k, zsum / nsnap, n, decades, name)
            wall = _time.perf_counter() - t0
            nc_set_attrs(ds, system, title=f"DNS of forced 2D turbulence, flow {system.get('name', '')}")
            ds.setncattr("name", name)
            ds.setncattr("precision", precision)
            ds.setncattr("beta_sign", BETA_SIGN)
            ds.setncattr("turbtl_version", __version__)
            ds.setncattr("equation", EQUATION)
            ds.setncattr("dealiasing", "2/3 rule, |kx| < n/3 and |ky| < n/3")
            ds.setncattr("time_stepping", "AB2 (advection, beta, forcing; first step Euler), "
                                          "Crank-Nicolson viscosity, implicit drag")
            ds.setncattr("max_cfl", float(solver.max_cfl))
            ds.setncattr("resolution_decades_measured", float(got))
            ds.setncattr("cfl_max", cfl_max)
            ds.setncattr("resolution_decades", decades)
        finally:
            ds.close()
    wall = _time.perf_counter() - t0
    steps_s = total / max(wall, 1e-9)
    info = {"name": name, "steps": total, "wall_s": wall, "spinup_s": t_spin, "max_cfl": solver.max_cfl,
            "resolution_decades": got, "member_steps_per_s": steps_s * members}
    log.info("DNS %s done: %.1f s (%.0f member-steps/s), max CFL %.3f, enstrophy spectrum at "
             "k=%d is %.2f decades below its peak", name, wall, info["member_steps_per_s"],
             solver.max_cfl, n // 3, got)
    return info
