"""Batched pseudo-spectral DNS of forced, damped 2D turbulence on the 2*pi square.

Equation (textbook beta-plane sign, +beta*v on the left-hand side; py2d uses the opposite
sign, which mirrors the flow without changing its statistics):

    d(omega)/dt + J(psi, omega) + beta*v = nu lap(omega) - mu omega + F
    omega = -lap(psi),  u = d(psi)/dy,  v = -d(psi)/dx,  nu = 1/Re,
    F = kf (cos(kf x) + cos(kf y)),   J(psi, omega) = u d(omega)/dx + v d(omega)/dy.

Numerics: Fourier pseudo-spectral on the real FFT; the advection term is computed in the
advective form from four inverse transforms (u, v, omega_x, omega_y, batched into one
``irfft2`` call) and one forward transform, and dealiased with the conjugate-symmetric 2/3
mask (:func:`turbtl.grid.dealias_mask`).  Time stepping: Adams-Bashforth 2 for advection,
beta term and forcing (first step forward Euler), Crank-Nicolson for viscosity, implicit
(backward Euler) linear drag:

    (1 + dt nu k^2/2 + dt mu) w^{n+1} = (1 - dt nu k^2/2) w^n + dt (3/2 N^n - 1/2 N^{n-1}) + dt F

All ensemble members are integrated as one batch: state ``omega_hat`` (members, n, n//2+1).
The state is kept band-limited to the 2/3 mask (modes outside it are exactly zero).

Guards: :func:`check_timestep` rejects a clearly unstable ``dt`` before any work; every
``check_every`` steps the solver checks the CFL number max(|u|, |v|) dt/dx and the
finiteness of the state; :func:`check_resolution` checks that the time-mean enstrophy
spectrum at the 2/3 cut-off shell sits ``resolution_decades`` below its peak.  Each failure
raises :class:`turbtl.TurbtlError` naming the cause and the fix.
"""
from __future__ import annotations

import logging
import math
import time as _time
from dataclasses import dataclass

import numpy as np
import torch

from . import TurbtlError, __version__
from .grid import SpectralGrid, complex_dtype
from .io import atomic_path, nc_field_coords, nc_set_attrs
from .runtime import progress as _progress
from .spectra import energy_enstrophy_spectra

__all__ = [
    "FlowParams",
    "DNSSolver",
    "check_timestep",
    "check_resolution",
    "laminar_velocity",
    "run_dns",
    "BETA_SIGN",
]

BETA_SIGN = "+beta*v on the left-hand side"
_LOG = logging.getLogger("turbtl.solver")


@dataclass(frozen=True)
class FlowParams:
    """Physical and numerical parameters of one flow (a ``systems.<name>`` entry)."""

    Re: float
    kf: int
    beta: float
    mu: float
    n: int
    dt: float
    name: str = "flow"
    force: bool = True  # False: no forcing (tests)

    @property
    def nu(self) -> float:
        return 0.0 if math.isinf(self.Re) else 1.0 / self.Re

    @property
    def dx(self) -> float:
        return 2.0 * math.pi / self.n

    @classmethod
    def from_config(cls, system: dict, name: str | None = None) -> "FlowParams":
        """From a system config dict (keys Re, kf, beta, mu, n_dns, dt; optional name)."""
        try:
            return cls(
                Re=float(system["Re"]),
                kf=int(system["kf"]),
                beta=float(system.get("beta", 0.0)),
                mu=float(system["mu"]),
                n=int(system["n_dns"]),
                dt=float(system["dt"]),
                name=str(name or system.get("name", "flow")),
            )
        except KeyError as e:  # pragma: no cover - config validation catches this first
            raise TurbtlError(f"system config lacks key {e}; fix: add it to systems.<name> in config.yaml") from e


def laminar_velocity(p: FlowParams) -> float:
    """Velocity amplitude of the laminar steady state, 1/(mu + nu kf^2): the scale that the
    forcing can drive; turbulent velocities are of this order or smaller."""
    return 1.0 / (p.mu + p.nu * p.kf**2)


def check_timestep(p: FlowParams, cfl_max: float) -> float:
    """A-priori check of ``dt`` before any work; returns the estimated CFL number.

    Uses the laminar velocity bound U = 1/(mu + nu kf^2): a dt with U dt/dx > cfl_max is
    rejected.  Also rejects a dt at which AB2 amplifies Rossby waves (frequency up to beta
    at |k| = 1) faster than the drag damps them: (beta dt)^4 / 4 > mu dt.
    """
    if p.dt <= 0:
        raise TurbtlError(f"systems.{p.name}.dt = {p.dt} must be positive; fix: set a positive dt")
    u = laminar_velocity(p) if p.force else 0.0
    est = u * p.dt / p.dx
    if est > cfl_max:
        dt_ok = 0.8 * cfl_max * p.dx / u
        raise TurbtlError(
            f"time step too large for system '{p.name}': the estimated CFL number "
            f"U dt/dx = {est:.3g} (U = 1/(mu + kf^2/Re) = {u:.3g}, dx = 2pi/{p.n}) exceeds "
            f"dns.cfl_max = {cfl_max}; fix: reduce systems.{p.name}.dt to at most {dt_ok:.3g}")
    if p.beta and (abs(p.beta) * p.dt) ** 4 / 4 > max(p.mu, 1e-12) * p.dt:
        dt_ok = 0.5 * (4 * max(p.mu, 1e-12)) ** (1 / 3) / abs(p.beta) ** (4 / 3)
        raise TurbtlError(
            f"time step too large for the beta term of system '{p.name}': Adams-Bashforth 2 "
            f"amplifies Rossby waves of frequency beta = {p.beta} faster than the drag mu = {p.mu} "
            f"damps them at dt = {p.dt}; fix: reduce systems.{p.name}.dt to at most {dt_ok:.3g}")
    return est


def check_resolution(k: np.ndarray, z: np.ndarray, n: int, decades: float, name: str = "flow") -> float:
    """Decades between the peak of the enstrophy spectrum ``z`` and its value at the 2/3
    cut-off shell k = n//3; raises :class:`TurbtlError` if fewer than ``decades``."""
    kc = n // 3
    peak = float(np.max(z[1:]))
    zc = float(z[kc])
    got = math.inf if zc <= 0 else math.log10(peak / zc)
    if not got >= decades:
        raise TurbtlError(
            f"system '{name}' is under-resolved: the time-mean enstrophy spectrum at the 2/3 "
            f"cut-off k = {kc} is only {got:.2f} decades below its peak (dns.resolution_decades "
            f"= {decades}); fix: raise systems.{name}.n_dns (now {n}) or lower systems.{name}.Re")
    return got


def _gauss_shape(k: torch.Tensor, kf: float) -> torch.Tensor:
    s = 1.0
    return torch.exp(-0.5 * ((k - kf) / s) ** 2)


def initial_energy(p: FlowParams) -> float:
    """Energy of the random initial condition: a fraction of the laminar energy U^2/2 that
    is of the order of the statistically steady energy, so that spin-up is short."""
    u = laminar_velocity(p)
    return 0.5 * (0.2 * u) ** 2


class DNSSolver:
    """All ``members`` of one flow integrated as one batch.

    ``omega_hat`` (members, n, n//2+1) is the state (rfft of the vorticity), ``t`` the model
    time.  :meth:`step` advances one step without allocating or synchronising with the
    device; :meth:`advance` runs many steps with the CFL / finiteness guard every
    ``check_every`` steps.
    """

    def __init__(self, params: FlowParams, members: int, *, device="cpu", dtype=torch.float32,
                 seed: int | None = 0, cfl_max: float = 1.0, check_every: int = 50,
                 energy: float | None = None):
        self.p = params
        self.members = int(members)
        self.grid = g = SpectralGrid(params.n, device=device, dtype=dtype)
        self.device, self.dtype, self.cdtype = g.device, dtype, complex_dtype(dtype)
        self.cfl_max = float(cfl_max)
        self.check_every = max(1, int(check_every))
        self.max_cfl = 0.0
        n, nh, B = g.n, g.n // 2 + 1, self.members
        dt, nu, mu = params.dt, params.nu, params.mu

        # --- precomputed factors (float64 on the host, then cast) ---------------------
        f64 = dict(dtype=torch.float64)
        k2 = g.k2.to(**f64).cpu()
        kx = g.kx.to(**f64).cpu()
        ky = g.ky.to(**f64).cpu()
        inv = g.inv_lap.to(**f64).cpu()
        mask = g.mask.to(**f64).cpu()
        mask0 = mask.clone()
        mask0[0, 0] = 0.0  # the mean of J vanishes identically
        binv = 1.0 / (1.0 + 0.5 * dt * nu * k2 + dt * mu)
        # u = i ky psi, v = -i kx psi, omega_x = i kx omega, omega_y = i ky omega
        fac4 = torch.stack([1j * ky * inv, -1j * kx * inv, 1j * kx * torch.ones_like(k2),
                            1j * ky * torch.ones_like(k2)]).unsqueeze(1)
        cd = dict(device=g.device)
        self._fac4 = fac4.to(dtype=self.cdtype, **cd)
        self._a = ((1.0 - 0.5 * dt * nu * k2) * binv * mask).to(dtype=dtype, **cd)
        self._c1 = (-1.5 * dt * binv * mask0).to(dtype=dtype, **cd)  # AB2, current N
        self._c2 = (0.5 * dt * binv * mask0).to(dtype=dtype, **cd)  # AB2, previous N
        self._c0 = (-dt * binv * mask0).to(dtype=dtype, **cd)  # AB1 (first step)
        # beta term -beta v = beta i kx psi enters N as  -(J - i beta kx/k^2 omega)
        self._beta = None
        if params.beta:
            self._beta = (-1j * params.beta * kx * inv * mask).to(dtype=self.cdtype, **cd)
        fh = self.forcing_hat(g, params.kf) if params.force else torch.zeros(n, nh, dtype=torch.complex128)
        self.F_hat = fh.to(dtype=self.cdtype, **cd)
        self._fb = (dt * binv * fh).to(dtype=self.cdtype, **cd)

        # --- persistent buffers (no per-step allocation) --------------------------------
        self.omega_hat = torch.zeros(B, n, nh, dtype=self.cdtype, **cd)
        self._spec4 = torch.empty(4, B, n, nh, dtype=self.cdtype, **cd)
        self._phys4 = torch.empty(4, B, n, n, dtype=dtype, **cd)
        self._prod = torch.empty(B, n, n, dtype=dtype, **cd)
        self._G = torch.empty(B, n, nh, dtype=self.cdtype, **cd)
        self._H = torch.empty(B, n, nh, dtype=self.cdtype, **cd)
        self.split_inverse = self.device.type == "cpu" and params.n >= 96
        self.t = 0.0
        self.nstep = 0
        self._first = True
        if seed is not None:
            self.set_random_state(seed, energy=energy)

    # ------------------------------------------------------------------------------------
    @staticmethod
    def forcing_hat(g: SpectralGrid, kf: int) -> torch.Tensor:
        """rfft of F = kf (cos(kf x) + cos(kf y)) (complex128 on the host)."""
        x = torch.arange(g.n, dtype=torch.float64) * (2 * math.pi / g.n)
        f = kf * (torch.cos(kf * x)[None, :] + torch.cos(kf * x)[:, None])
        if not 3 * abs(int(kf)) < g.n:
            raise TurbtlError(f"forcing wavenumber kf = {kf} is outside the dealiased band |k| < n/3 of "
                              f"n = {g.n}; fix: raise n_dns above {3 * kf}")
        fh = torch.fft.rfft2(f)
        fh[fh.abs() < 1e-9 * g.n**2] = 0
        return fh

    def set_state(self, omega: torch.Tensor) -> None:
        """Set the vorticity (members, n, n) (physical space); it is 2/3-dealiased and the
        AB2 history is reset (the next step is forward Euler)."""
        om = torch.as_tensor(omega).to(self.device, self.dtype).reshape(self.members, self.p.n, self.p.n)
        self.omega_hat.copy_(torch.fft.rfft2(om) * self.grid.mask)
        self._first = True

    def set_state_hat(self, omega_hat: torch.Tensor) -> None:
        self.omega_hat.copy_(omega_hat.to(self.device, self.cdtype) * self.grid.mask)
        self._first = True

    def set_random_state(self, seed: int, energy: float | None = None) -> None:
        """Random-phase vorticity with an energy spectrum peaked at kf (Gaussian in |k|,
        width 1) and total energy ``energy`` per member (default
        :func:`initial_energy`).  Drawn on the host in float64 from ``seed`` so that every
        device and precision starts from the same field."""
        n = self.p.n
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(self.members, n, n, generator=gen, dtype=torch.float64)
        nh = torch.fft.rfft2(noise)
        g = self.grid
        k2 = g.k2.to(torch.float64).cpu()
        k = torch.sqrt(k2)
        # |omega_hat|^2 per mode ~ E(k) k^2 / (2 pi k): shell energy ~ E(k)
        amp = torch.sqrt(_gauss_shape(k, float(self.p.kf)) * k / (2 * math.pi))
        amp = amp * g.mask.to(torch.float64).cpu()
        amp[0, 0] = 0.0
        wh = nh * amp
        inv = g.inv_lap.to(torch.float64).cpu()
        w = torch.ones(1, n // 2 + 1, dtype=torch.float64)
        w[0, 1:] = 2.0
        w[0, -1] = 1.0
        e = 0.5 * ((wh.abs() ** 2) * inv * w).sum(dim=(-2, -1)) / float(n) ** 4
        target = initial_energy(self.p) if energy is None else float(energy)
        wh = wh * torch.sqrt(target / e)[:, None, None]
        self.set_state_hat(wh)
        self.t = 0.0
        self.nstep = 0

    @property
    def omega(self) -> torch.Tensor:
        """Vorticity in physical space (members, n, n)."""
        return torch.fft.irfft2(self.omega_hat, s=(self.p.n, self.p.n))

    @property
    def psi_hat(self) -> torch.Tensor:
        return self.omega_hat * self.grid.inv_lap

    # ------------------------------------------------------------------------------------
    def nonlinear_hat(self, omega_hat: torch.Tensor | None = None) -> torch.Tensor:
        """Dealiased rfft of J(psi, omega) (a new tensor; for diagnostics and tests)."""
        oh = self.omega_hat if omega_hat is None else omega_hat
        phys = torch.fft.irfft2(oh.unsqueeze(0) * self._fac4, s=(self.p.n, self.p.n))
        return torch.fft.rfft2(phys[0] * phys[2] + phys[1] * phys[3]) * self.grid.mask

    def step(self) -> None:
        """One AB2 / CN / implicit-drag step, in place (no allocation, no host sync)."""
        oh, ph, G = self.omega_hat, self._phys4, self._G
        torch.mul(oh.unsqueeze(0), self._fac4, out=self._spec4)
        self._inverse4()
        torch.mul(ph[0], ph[2], out=self._prod)
        self._prod.addcmul_(ph[1], ph[3])
        torch.fft.rfft2(self._prod, out=G)  # G = J_hat (un-masked; the mask is in c0/c1/c2)
        if self._beta is not None:
            G.addcmul_(oh, self._beta)  # G = J_hat - i beta kx/k^2 omega_hat
        oh.mul_(self._a)
        if self._first:
            oh.addcmul_(G, self._c0)
            oh.add_(self._fb)
            self._first = False
        else:
            oh.addcmul_(G, self._c1)
            oh.add_(self._H)
        torch.addcmul(self._fb, G, self._c2, out=self._H)  # next step's share: dt F - dt/2 N^n
        self.nstep += 1
        self.t = self.nstep * self.p.dt

    def _inverse4(self) -> None:
        # the 4 inverse transforms u, v, omega_x, omega_y.  On CUDA one batched irfft2; on
        # CPU (MKL) at n >= 96 four calls over (members, n, n//2+1) measured 1.5-3x faster than one
        # batched call (benchmarks/bench_dns.py)
        s = (self.p.n, self.p.n)
        if self.split_inverse:
            for i in range(4):
                torch.fft.irfft2(self._spec4[i], s=s, out=self._phys4[i])
        else:
            torch.fft.irfft2(self._spec4, s=s, out=self._phys4)

    def fft_only(self) -> None:
        """Exactly the FFTs that :meth:`step` makes, on its buffers (for benchmarks)."""
        self._inverse4()
        torch.fft.rfft2(self._prod, out=self._G)

    def check(self) -> float:
        """CFL number of the velocity of the last step and finiteness of the state; raises
        :class:`TurbtlError` on failure.  One host sync."""
        umax, wmax = torch.stack([self._phys4[:2].abs().amax(), self.omega_hat.abs().amax()]).tolist()
        if self.nstep == 0:
            u, v = self.velocity()
            umax = max(u.abs().max().item(), v.abs().max().item())
        cfl = umax * self.p.dt / self.p.dx
        name = self.p.name
        if not (math.isfinite(cfl) and math.isfinite(wmax)):
            raise TurbtlError(
                f"non-finite vorticity at t={self.t:.4g} in system '{name}': the integration blew "
                f"up (last CFL {self.max_cfl:.3g} with dt = {self.p.dt}); fix: reduce "
                f"systems.{name}.dt (e.g. to {0.5 * self.p.dt:.3g}) and/or lower dns.check_every, or "
                f"raise systems.{name}.n_dns if the flow is under-resolved")
        self.max_cfl = max(self.max_cfl, cfl)
        if cfl > self.cfl_max:
            dt_ok = 0.8 * self.cfl_max * self.p.dx / umax
            raise TurbtlError(
                f"CFL {cfl:.3g} > cfl_max {self.cfl_max} at t={self.t:.4g} in system '{name}' "
                f"(max|u| = {umax:.3g}, dt = {self.p.dt}, dx = 2pi/{self.p.n}); fix: reduce "
                f"systems.{name}.dt to below {dt_ok:.3g}")
        return cfl

    def advance(self, nsteps: int, bar=None) -> None:
        """``nsteps`` steps with the guard every ``check_every`` steps and at the end."""
        ce = self.check_every
        done = 0
        while done < nsteps:
            m = min(ce - self.nstep % ce, nsteps - done)
            for _ in range(m):
                self.step()
            done += m
            if self.nstep % ce == 0 or done == nsteps:
                self.check()
            if bar is not None:
                bar.update(m)

    # --- diagnostics --------------------------------------------------------------------
    def velocity(self) -> tuple[torch.Tensor, torch.Tensor]:
        uh, vh = self.grid.velocity_hat(self.omega_hat)
        n = self.p.n
        return torch.fft.irfft2(uh, s=(n, n)), torch.fft.irfft2(vh, s=(n, n))

    def energy(self) -> torch.Tensor:
        """Per-member kinetic energy mean(|u|^2)/2 = mean(psi omega)/2."""
        return 0.5 * self.grid.inner(self.psi_hat, self.omega_hat)

    def enstrophy(self) -> torch.Tensor:
        """Per-member enstrophy mean(omega^2)/2."""
        return 0.5 * self.grid.inner(self.omega_hat, self.omega_hat)

    def budget(self) -> dict[str, torch.Tensor]:
        """Per-member energy budget terms: dE/dt = injection - dissipation - drag with
        injection = mean(psi F), dissipation = 2 nu Z, drag = 2 mu E."""
        e, z = self.energy(), self.enstrophy()
        inj = self.grid.inner(self.psi_hat, self.F_hat.expand_as(self.omega_hat))
        return {"energy": e, "enstrophy": z, "injection": inj,
                "dissipation": 2 * self.p.nu * z, "drag": 2 * self.p.mu * e}


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
            vw = ds.createVariable("omega", "f4", ("member", "time", "y", "x"),
                                   chunksizes=(1, 1, n, n))
            # a small chunk cache: HDF5 would otherwise keep up to 64 MiB of written
            # snapshots in memory; each snapshot goes to disk as it comes
            vw.set_var_chunk_cache(size=2 * members * n * n * 4, nelems=4 * members + 1, preemption=1.0)
            vw.long_name = "vorticity (nondimensional)"
            vw.units = "1"
            ve = ds.createVariable("energy", "f8", ("member", "time"))
            ve.long_name = "kinetic energy mean(|u|^2)/2 of the snapshot"
            ve.units = "1"
            vz = ds.createVariable("enstrophy", "f8", ("member", "time"))
            vz.long_name = "enstrophy mean(omega^2)/2 of the snapshot"
            vz.units = "1"

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
            ds.setncattr("equation", "d(omega)/dt + J(psi,omega) + beta*v = (1/Re) lap(omega) - mu*omega "
                                     "+ kf*(cos(kf x) + cos(kf y))")
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
