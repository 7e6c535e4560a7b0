"""Time stepping of the vorticity equation on a periodic grid, shared by the DNS and the LES.

The stepper integrates, for a batch of ``members`` fields on one grid,

    d(omega)/dt = -T(omega) - beta*v + nu lap(omega) - mu omega + F

where ``T`` is the explicit nonlinear tendency supplied by the caller (a *tendency*
object): the 2/3-dealiased Jacobian for the DNS (:class:`turbtl.advection.Advection`), the LES's resolved
Jacobian plus a closure's Pi for the a-posteriori LES (:mod:`turbtl.les`).  Scheme:
Adams-Bashforth 2 for T, the beta term and the forcing (first step forward Euler),
Crank-Nicolson for viscosity, implicit (backward Euler) linear drag:

    (1 + dt nu k^2/2 + dt mu) w^{n+1} = (1 - dt nu k^2/2) w^n + dt (3/2 N^n - 1/2 N^{n-1}) + dt F

with N = -T - beta v.  The state ``omega_hat`` (members, n, n//2+1) is kept on the modes of
``mask`` (the 2/3 mask for the DNS, every mode but the Nyquist ones for the LES); the mean
(k = 0) is never changed.

A tendency object has ``__call__(omega_hat, out)``, which writes the rfft of T (unmasked;
the stepper's coefficients carry the mask) into ``out``, and ``max_velocity()``, the
per-member max(|u|, |v|) of its last call (a tensor of shape (members,)).

The guard (:meth:`Stepper.check`, every ``check_every`` steps) measures the CFL number
max(|u|, |v|) dt/dx and the finiteness of each member with one host sync; what happens on
a failure is :meth:`Stepper.on_check`'s choice: the DNS raises :class:`TurbtlError` naming
the cause and the fix, the LES records the member's blow-up and carries on with the others.

State (:meth:`Stepper.state_dict` / :meth:`Stepper.load_state_dict`): ``omega_hat``, the AB2
history ``_H`` (dt F - dt/2 N^{n-1}, already divided by the implicit factor), whether the next
step is the first (Euler) one, ``nstep`` (t = nstep dt) and ``max_cfl``.  That is all a step
depends on, so a run restored from it continues bit for bit (:func:`turbtl.solver.run_dns`
checkpoints it).  The coefficients ``_a, _c0, _c1, _c2`` are real numbers stored in the
complex dtype: the complex products then find their operand in the right dtype instead of
converting a real array on every step (same values, same kernels: the results are unchanged;
10-14% faster on those products on the CPU, a few percent of a step at most, benchmarks/README.md).

Speed-ups, opt-in (:meth:`Stepper.accelerate`; the DNS turns them on from ``dns.cuda_graph``,
``dns.compile``, ``dns.band`` and ``dns.prune``, the LES does not: its closure allocates and
syncs): a CUDA graph of a block of steps, a compiled element-wise update, element-wise passes
on the blocks of the state's support only, and transforms that skip the columns outside it
(:mod:`turbtl.fused` states all four).
"""
from __future__ import annotations

import math

import torch

from . import TurbtlError, fused
from .fused import SpeedUps
from .grid import SpectralGrid, complex_dtype

__all__ = ["Stepper"]


class Stepper(SpeedUps):
    """AB2 / Crank-Nicolson / implicit-drag stepping of ``members`` fields on ``grid``.

    ``forcing_hat``: rfft of F on this grid (complex128 host, or None); ``mask``: the modes
    the state keeps (rfft layout, 0/1); ``tendency``: see the module docstring; ``name``
    and ``fix_key`` (the config entry that holds dt, e.g. ``systems.base``) go into the
    guard's messages.  The precomputed factors are formed in float64 on the host and cast
    to the grid's precision.
    """

    def __init__(self, grid: SpectralGrid, members: int, *, dt: float, nu: float, mu: float, beta: float,
                 forcing_hat: torch.Tensor | None, mask: torch.Tensor, tendency, name: str = "flow",
                 fix_key: str | None = None, cfl_max: float = 1.0, check_every: int = 50):
        g = self.grid = grid
        self.members, self.dt, self.nu, self.mu, self.beta = int(members), float(dt), float(nu), float(mu), float(beta)
        self.device, self.dtype, self.cdtype = g.device, g.dtype, complex_dtype(g.dtype)
        self.name, self.fix_key = name, fix_key or f"systems.{name}"
        self.cfl_max = float(cfl_max)
        self.check_every = max(1, int(check_every))
        self.max_cfl = 0.0
        self.tendency = tendency
        n, nh = g.n, g.n // 2 + 1
        f64 = dict(dtype=torch.float64)
        k2 = g.k2.to(**f64).cpu()
        kx = g.kx.to(**f64).cpu()
        inv = g.inv_lap.to(**f64).cpu()
        mask = torch.as_tensor(mask).to(**f64).cpu()
        mask0 = mask.clone()
        mask0[0, 0] = 0.0  # the mean of the tendency is never applied
        binv = 1.0 / (1.0 + 0.5 * dt * nu * k2 + dt * mu)
        cd = dict(device=g.device)
        # real coefficients in the complex dtype (module docstring: no conversion per step)
        self._a = ((1.0 - 0.5 * dt * nu * k2) * binv * mask).to(dtype=self.cdtype, **cd)
        self._c1 = (-1.5 * dt * binv * mask0).to(dtype=self.cdtype, **cd)  # AB2, current N
        self._c2 = (0.5 * dt * binv * mask0).to(dtype=self.cdtype, **cd)  # AB2, previous N
        self._c0 = (-dt * binv * mask0).to(dtype=self.cdtype, **cd)  # AB1 (first step)
        # beta term -beta v = beta i kx psi enters N as  -(T - i beta kx/k^2 omega)
        self._beta = None
        if beta:
            self._beta = (-1j * beta * kx * inv * mask).to(dtype=self.cdtype, **cd)
        fh = torch.zeros(n, nh, dtype=torch.complex128) if forcing_hat is None else forcing_hat
        self.F_hat = fh.to(dtype=self.cdtype, **cd)
        self._fb = (dt * binv * fh).to(dtype=self.cdtype, **cd)
        self._mask = mask.to(dtype=self.dtype, **cd)
        # persistent buffers (no per-step allocation)
        self.omega_hat = torch.zeros(self.members, n, nh, dtype=self.cdtype, **cd)
        # zeros: a pruned forward transform (dns.prune) never writes the columns beyond the support
        self._G = torch.zeros(self.members, n, nh, dtype=self.cdtype, **cd)
        # zeros: outside the state's support (below) the banded update never writes H
        self._H = torch.zeros(self.members, n, nh, dtype=self.cdtype, **cd)
        # the blocks of the rfft layout that hold every mode a step can change: the mask and
        # the forcing's modes (fused.band_slices); the banded update works on these alone
        self.band_slices = fused.band_slices((mask != 0) | (fh.abs() != 0))
        self.t = 0.0
        self.nstep = 0
        self._first = True
        self._init_speedups()  # off until accelerate() asks for them

    # --- state ----------------------------------------------------------------------
    def set_state(self, omega: torch.Tensor) -> None:
        """Set the vorticity (members, n, n) (physical space); it is masked and the AB2
        history is reset (the next step is forward Euler)."""
        n = self.grid.n
        om = torch.as_tensor(omega).to(self.device, self.dtype).reshape(self.members, n, n)
        self.omega_hat.copy_(torch.fft.rfft2(om) * self._mask)
        self._first = True

    def set_state_hat(self, omega_hat: torch.Tensor) -> None:
        self.omega_hat.copy_(omega_hat.to(self.device, self.cdtype) * self._mask)
        self._first = True

    _STATE_KEYS = ("omega_hat", "H", "first", "nstep", "t", "max_cfl")

    def state_dict(self) -> dict:
        """Everything the next step depends on, on the host (module docstring): restoring it
        with :meth:`load_state_dict` continues the run bit for bit on the same device."""
        return {"omega_hat": self.omega_hat.detach().cpu().clone(), "H": self._H.detach().cpu().clone(),
                "first": bool(self._first), "nstep": int(self.nstep), "t": float(self.t),
                "max_cfl": float(self.max_cfl)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (copied into the existing buffers, so a captured CUDA
        graph stays valid).  A state of another shape or precision is refused."""
        missing = [k for k in self._STATE_KEYS if k not in state]
        oh, h = state.get("omega_hat"), state.get("H")
        if missing or tuple(oh.shape) != tuple(self.omega_hat.shape) or oh.dtype != self.cdtype \
                or tuple(h.shape) != tuple(self._H.shape) or h.dtype != self.cdtype:
            got = "missing " + ", ".join(missing) if missing else f"omega_hat {tuple(oh.shape)} {oh.dtype}"
            raise TurbtlError(f"stepper state of '{self.name}' does not fit ({got}; expected omega_hat "
                              f"{tuple(self.omega_hat.shape)} {self.cdtype}); fix: restore a state saved by a "
                              "stepper of the same grid, members and precision")
        self.omega_hat.copy_(oh.to(self.device))
        self._H.copy_(h.to(self.device))
        self._first = bool(state["first"])
        self.nstep = int(state["nstep"])
        self.t = float(state["t"])
        self.max_cfl = float(state["max_cfl"])

    @property
    def omega(self) -> torch.Tensor:
        """Vorticity in physical space (members, n, n)."""
        return self.grid.irfft(self.omega_hat)

    @property
    def psi_hat(self) -> torch.Tensor:
        return self.omega_hat * self.grid.inv_lap

    # --- stepping -------------------------------------------------------------------
    def step(self) -> None:
        """One AB2 / CN / implicit-drag step, in place (no host sync)."""
        self._step_tensors(self._first)
        self._first = False
        self.nstep += 1
        self.t = self.nstep * self.dt

    def _step_tensors(self, first: bool) -> None:
        """The tensor work of one step, no Python state changed (what a CUDA graph captures)."""
        if self._fused is not None and not self._compile_checked:
            self._first_compiled_step(first)
            return
        self.tendency(self.omega_hat, self._G)  # G = T_hat (un-masked; the mask is in c0/c1/c2)
        if self._fused is not None and not first:
            fn = self._fused["fn"]
            for f in self._fused["parts"]:
                fn(f["o"], f["G"], f["H"], f["a"], f["c1"], f["c2"], f["fb"], f["b"])
            return
        for oh, G, H, a, c0, c1, c2, fb, beta in self._parts:
            if beta is not None:
                G.addcmul_(oh, beta)  # G = T_hat - i beta kx/k^2 omega_hat
            oh.mul_(a)
            if first:
                oh.addcmul_(G, c0)
                oh.add_(fb)
            else:
                oh.addcmul_(G, c1)
                oh.add_(H)
            torch.addcmul(fb, G, c2, out=H)  # next step's share: dt F - dt/2 N^n

    def member_maxima(self) -> tuple[list[float], list[float]]:
        """Per-member max(|u|, |v|) of the last step's velocity (of the state before the
        first step) and max |omega_hat|; one host sync."""
        if self.nstep == 0:
            uh, vh = self.grid.velocity_hat(self.omega_hat)
            umax = self.grid.irfft(torch.stack([uh, vh])).abs().amax(dim=(0, 2, 3))
        else:
            umax = self.tendency.max_velocity()
        wmax = self.omega_hat.abs().amax(dim=(1, 2))
        u, w = torch.stack([umax.to(wmax.dtype), wmax]).tolist()
        return u, w

    def check(self) -> float:
        """The guard: the CFL number (max over members) of the last step; what a failure
        does is :meth:`on_check`'s choice (here: raise :class:`TurbtlError`)."""
        umax, wmax = self.member_maxima()
        return self.on_check(umax, wmax)

    def on_check(self, umax: list[float], wmax: list[float]) -> float:
        u = max(umax)
        cfl = u * self.dt / self.grid.dx
        name, key = self.name, self.fix_key
        if not all(math.isfinite(x) for x in umax + wmax):
            raise TurbtlError(
                f"non-finite vorticity at t={self.t:.4g} in system '{name}': the integration blew "
                f"up (last CFL {self.max_cfl:.3g} with dt = {self.dt}); fix: reduce "
                f"{key}.dt (e.g. to {0.5 * self.dt:.3g}) and/or lower dns.check_every, or "
                f"raise {key}.n_dns if the flow is under-resolved")
        self.max_cfl = max(self.max_cfl, cfl)
        if cfl > self.cfl_max:
            dt_ok = 0.8 * self.cfl_max * self.grid.dx / u
            raise TurbtlError(
                f"CFL {cfl:.3g} > cfl_max {self.cfl_max} at t={self.t:.4g} in system '{name}' "
                f"(max|u| = {u:.3g}, dt = {self.dt}, dx = 2pi/{self.grid.n}); fix: reduce "
                f"{key}.dt to below {dt_ok:.3g}")
        return cfl

    def advance(self, nsteps: int, bar=None) -> None:
        """``nsteps`` steps with the guard every ``check_every`` steps and at the end."""
        ce = self.check_every
        done = 0
        while done < nsteps:
            m = min(ce - self.nstep % ce, nsteps - done)
            self._steps(m)
            done += m
            if self.nstep % ce == 0 or done == nsteps:
                self.check()
            if bar is not None:
                bar.update(m)

    # --- diagnostics ----------------------------------------------------------------
    def velocity(self) -> tuple[torch.Tensor, torch.Tensor]:
        uh, vh = self.grid.velocity_hat(self.omega_hat)
        return self.grid.irfft(uh), self.grid.irfft(vh)

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
                "dissipation": 2 * self.nu * z, "drag": 2 * self.mu * e}
