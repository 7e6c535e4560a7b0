"""The equation of forced (or decaying), damped 2D turbulence: parameters, forcing, initial condition, guards.

Equation (textbook beta-plane sign, +beta*v on the left-hand side; py2d uses the opposite
sign, which mirrors the flow without changing its statistics):

    d(omega)/dt + J(psi, omega) + beta*v = nu lap(omega) - mu omega + F
    omega = -lap(psi),  u = d(psi)/dy,  v = -d(psi)/dx,  nu = 1/Re,
    F = kf (cos(kf x) + cos(kf y)),   J(psi, omega) = u d(omega)/dx + v d(omega)/dy.

A flow with ``forcing: none`` (:data:`FORCINGS`) has F = 0: decaying turbulence from the
random initial condition, whose spectrum peaks at kf and which carries the energy
``initial_energy`` (required then: without forcing it sets the flow's Reynolds number).

This module holds what belongs to the equation and not to a discretisation in time: the
parameters (:class:`FlowParams`), the forcing's spectrum, the random initial condition and
the checks of a time step and of a DNS's resolution.  The time stepper is
:mod:`turbtl.stepper`; the DNS (:mod:`turbtl.solver`) and the a-posteriori LES
(:mod:`turbtl.les`) both combine the two.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import TurbtlError
from .grid import SpectralGrid

__all__ = [
    "FlowParams",
    "BETA_SIGN",
    "EQUATION",
    "FORCINGS",
    "is_forced",
    "DECAY_PEAK_FACTOR",
    "equation_text",
    "laminar_velocity",
    "velocity_bound",
    "initial_energy",
    "check_timestep",
    "check_resolution",
    "resolution_decades",
    "forcing_hat",
    "random_vorticity_hat",
]

BETA_SIGN = "+beta*v on the left-hand side"
EQUATION = "d(omega)/dt + J(psi,omega) + beta*v = (1/Re) lap(omega) - mu*omega + kf*(cos(kf x) + cos(kf y))"
#: ``systems.<name>.forcing``: the Kolmogorov forcing F above, or none (decaying turbulence)
FORCINGS = ("kolmogorov", "none")


def is_forced(system) -> bool:
    """Whether a flow (a ``systems.<name>`` config or a data file's attributes) is forced:
    ``forcing`` absent (files written before the key existed) or not ``none``."""
    return str(system.get("forcing", FORCINGS[0])) != "none"


def equation_text(force: bool = True) -> str:
    """:data:`EQUATION`, or for an unforced flow the same equation without F."""
    return EQUATION if force else EQUATION.split(" + kf*")[0] + "   (unforced: F = 0, decaying)"


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
    force: bool = True  # False: no forcing (``forcing: none``, decaying turbulence)
    energy0: float | None = None  # initial energy per member; None: :func:`initial_energy`'s default

    @property
    def nu(self) -> float:
        return 0.0 if math.isinf(self.Re) else 1.0 / self.Re

    @property
    def dx(self) -> float:
        return 2.0 * math.pi / self.n

    @classmethod
    def from_config(cls, system: dict, name: str | None = None) -> "FlowParams":
        """From a system config dict (keys Re, kf, beta, mu, n_dns, dt; optional name,
        forcing (default kolmogorov) and initial_energy)."""
        forcing = str(system.get("forcing", FORCINGS[0]))
        if forcing not in FORCINGS:
            raise TurbtlError(f"systems.{name or system.get('name', 'flow')}.forcing = {forcing!r}; fix: use one of "
                              f"{list(FORCINGS)}")
        e0 = system.get("initial_energy")
        try:
            return cls(
                Re=float(system["Re"]),
                kf=int(system["kf"]),
                beta=float(system.get("beta", 0.0)),
                mu=float(system["mu"]),
                n=int(system["n_dns"]),
                dt=float(system["dt"]),
                name=str(name or system.get("name", "flow")),
                force=is_forced(system),
                energy0=None if e0 is None else float(e0),
            )
        except KeyError as e:  # pragma: no cover - config validation catches this first
            raise TurbtlError(f"system config lacks key {e}; fix: add it to systems.<name> in config.yaml") from e


def laminar_velocity(p: FlowParams) -> float:
    """Velocity amplitude of the laminar steady state, 1/(mu + nu kf^2): the scale that the
    forcing can drive; turbulent velocities are of this order or smaller."""
    return 1.0 / (p.mu + p.nu * p.kf**2)


def initial_energy(p: FlowParams) -> float:
    """Energy of the random initial condition: ``p.energy0`` where set (``initial_energy`` in
    the config; required for an unforced flow), else a fraction of the laminar energy U^2/2
    that is of the order of the statistically steady energy, so that spin-up is short."""
    if p.energy0 is not None:
        return float(p.energy0)
    if not p.force:
        raise TurbtlError(f"systems.{p.name} has forcing: none but no initial_energy: without forcing nothing else "
                          f"sets the flow's amplitude; fix: add systems.{p.name}.initial_energy (e.g. 0.5)")
    u = laminar_velocity(p)
    return 0.5 * (0.2 * u) ** 2


#: an unforced flow's a-priori velocity bound is this many times its initial rms speed
#: sqrt(2 E0), which the energy never exceeds without forcing (drag, viscosity and beta do not
#: add energy).  The largest |u| of the Gaussian random initial field grows like the root of
#: the log of its number of points: 3.55 times the rms speed measured on 128^2 x 4 members,
#: about 4 expected at 1024^2 x 12.  The decay concentrates the energy into vortices but, in
#: the runs measured (128^2, Re 1000, 25 time units), never raised max|u| above its start.
DECAY_PEAK_FACTOR = 5.0


def velocity_bound(p: FlowParams) -> tuple[float, str]:
    """The a-priori velocity scale of :func:`check_timestep` and how it was formed (for its
    message): the laminar velocity for a forced flow, :data:`DECAY_PEAK_FACTOR` x the initial
    rms speed for an unforced one."""
    if p.force:
        return laminar_velocity(p), "1/(mu + kf^2/Re)"
    return DECAY_PEAK_FACTOR * math.sqrt(2.0 * initial_energy(p)), f"{DECAY_PEAK_FACTOR:g} sqrt(2 initial_energy)"


def _dividing_step(interval: float, dt_max: float, multiple: int = 1) -> float | None:
    """The largest ``interval / k`` <= ``dt_max`` with k = multiple x 2^a 5^b, so that the step
    divides ``interval`` into a multiple of ``multiple`` steps and prints as a short decimal
    when ``interval`` does (e.g. 1 / 1600 = 6.25e-4)."""
    ratio = interval / dt_max if dt_max > 0 else math.inf
    if not ratio < 1e18:  # no such step worth naming (a limit of zero, or an absurd flow): None
        return None
    k0 = max(1, math.ceil(ratio - 1e-9))
    k = min(multiple * 2**a * 5**b for a in range(64) for b in range(28) if multiple * 2**a * 5**b >= k0)
    return float(f"{interval / k:.12g}")


def check_timestep(p: FlowParams, cfl_max: float, where: str | None = None, divides: float | None = None,
                   steps_multiple: int = 1) -> float:
    """A-priori check of ``dt`` before any work; returns the estimated CFL number.

    Uses the velocity bound of :func:`velocity_bound` (the laminar U = 1/(mu + nu kf^2) for a
    forced flow): a dt with U dt/dx > cfl_max is rejected.  Also rejects a dt at which AB2
    amplifies Rossby waves (frequency up to beta at |k| = 1) faster than the drag and the
    viscosity damp them there: (beta dt)^4 / 4 > (mu + 1/Re) dt (1/Re: a decaying flow may
    have no drag).  ``where`` names
    the config entry that holds dt (default ``systems.<name>``; ``"les"``: the a-posteriori
    LES of that system, on its grid of n = n_les).  With ``divides`` (the sample interval)
    the fix also names a step below the limit that divides it (into a multiple of
    ``steps_multiple`` steps: the LES's ``les.stats_every``).
    """
    key = where or f"systems.{p.name}"
    head = (f"time step too large for system '{p.name}'" if where is None else
            f"{key}.dt = {p.dt} too large for the LES of system '{p.name}' on its {p.n}^2 grid")
    if p.dt <= 0:
        raise TurbtlError(f"{key}.dt = {p.dt} must be positive; fix: set a positive dt")

    def fix(dt_ok: float) -> str:
        step = _dividing_step(divides, dt_ok, steps_multiple) if divides else None
        eg = (f" (e.g. {step:g}, which divides the sample interval {divides:g}"
              + (f" into a multiple of {steps_multiple} steps)" if steps_multiple > 1 else ")")) if step else ""
        return f"fix: reduce {key}.dt to at most {dt_ok:.3g}{eg}"

    u, how = velocity_bound(p)
    est = u * p.dt / p.dx
    if est > cfl_max:
        dt_ok = 0.8 * cfl_max * p.dx / u
        raise TurbtlError(
            f"{head}: the estimated CFL number "
            f"U dt/dx = {est:.3g} (U = {how} = {u:.3g}, dx = 2pi/{p.n}) exceeds "
            f"dns.cfl_max = {cfl_max}; {fix(dt_ok)}")
    damp = max(p.mu + p.nu, 1e-12)  # drag and viscosity of the fastest Rossby wave, |k| = 1
    if p.beta and math.log(abs(p.beta) * p.dt) * 4 - math.log(4) > math.log(damp * p.dt):  # (beta dt)^4/4 > damp dt
        dt_ok = math.exp(math.log(0.5) + math.log(4 * damp) / 3 - 4 * math.log(abs(p.beta)) / 3)  # (no overflow)
        raise TurbtlError(
            f"{head} (its beta term): Adams-Bashforth 2 "
            f"amplifies Rossby waves of frequency beta = {p.beta} faster than the drag and viscosity "
            f"mu + 1/Re = {damp:.3g} damp them at dt = {p.dt}; {fix(dt_ok)}")
    return est


def cutoff_shell(n: int) -> int:
    """The 2/3 cut-off shell of an n x n grid: the last shell round(|k|) = k whose modes all lie
    inside the dealiased band |kx|, |ky| < n/3, i.e. (n - 1)//3.  Where 3 divides n, shell n//3
    holds masked modes (on 192^2, 68 of its 440 have |kx| or |ky| = 64), so its value is low and
    the flow would look better resolved than it is (by 0.01-0.04 decades on the default run's
    192^2 flows); elsewhere the two are the same shell."""
    return (int(n) - 1) // 3


def resolution_decades(z: np.ndarray, n: int) -> float:
    """Decades between the peak of the enstrophy spectrum ``z`` (shells k = 0 .. n//2, the
    mean left out) and its value at the 2/3 cut-off shell :func:`cutoff_shell` (inf where
    that is 0)."""
    peak, zc = float(np.max(z[1:])), float(z[cutoff_shell(n)])
    return math.inf if zc <= 0 else math.log10(peak / zc)


def check_resolution(k: np.ndarray, z: np.ndarray, n: int, decades: float, name: str = "flow") -> float:
    """:func:`resolution_decades` of the time-mean enstrophy spectrum ``z``; raises
    :class:`TurbtlError` if fewer than ``decades``."""
    kc = cutoff_shell(n)
    got = resolution_decades(z, n)
    if not got >= decades:
        raise TurbtlError(
            f"system '{name}' is under-resolved: the time-mean enstrophy spectrum at the 2/3 "
            f"cut-off k = {kc} is only {got:.2f} decades below its peak (dns.resolution_decades "
            f"= {decades}); fix: raise systems.{name}.n_dns (now {n}) or lower systems.{name}.Re")
    return got


def forcing_hat(n: int, kf: int) -> torch.Tensor:
    """rfft (n, n//2+1) of F = kf (cos(kf x) + cos(kf y)) on the n x n grid (complex128,
    host).  The forcing must lie inside the dealiased band of the grid it drives."""
    if not 3 * abs(int(kf)) < n:
        raise TurbtlError(f"forcing wavenumber kf = {kf} is outside the dealiased band |k| < n/3 of "
                          f"n = {n}; fix: raise n_dns above {3 * kf}")
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    f = kf * (torch.cos(kf * x)[None, :] + torch.cos(kf * x)[:, None])
    fh = torch.fft.rfft2(f)
    fh[fh.abs() < 1e-9 * n**2] = 0
    return fh


def _gauss_shape(k: torch.Tensor, kf: float) -> torch.Tensor:
    s = 1.0
    return torch.exp(-0.5 * ((k - kf) / s) ** 2)


def random_vorticity_hat(n: int, members: int, kf: float, energy: float, seed: int,
                         dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random-phase vorticity spectrum (members, n, n//2+1), complex128 on the host.

    The energy spectrum is peaked at kf (Gaussian in |k|, width 1) and each member carries
    total energy ``energy`` (the grid mean of |u|^2/2); the modes outside the 2/3 mask are
    zero.  Drawn in float64 from ``seed`` so that every device and precision starts from
    the same field; the energy's normalisation uses 1/|k|^2 rounded to ``dtype`` (the
    solver's precision), as turbtl always has, so that existing runs are reproduced bit
    for bit.
    """
    g = SpectralGrid(n, dtype=dtype)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(members, n, n, generator=gen, dtype=torch.float64)
    nh = torch.fft.rfft2(noise)
    k = torch.sqrt(g.k2.to(torch.float64))
    # |omega_hat|^2 per mode ~ E(k) k^2 / (2 pi k): shell energy ~ E(k)
    amp = torch.sqrt(_gauss_shape(k, float(kf)) * k / (2 * math.pi)) * g.mask.to(torch.float64)
    amp[0, 0] = 0.0
    wh = nh * amp
    inv = g.inv_lap.to(torch.float64)
    w = g.rfft_weights().to(torch.float64)
    e = 0.5 * ((wh.abs() ** 2) * inv * w).sum(dim=(-2, -1)) / float(n) ** 4
    return wh * torch.sqrt(float(energy) / e)[:, None, None]
