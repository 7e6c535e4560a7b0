"""Time stepping of the vorticity equation on a periodic grid, shared by the DNS and the LES.

The stepper integrates, for a batch of ``members`` fields on one grid,

    d(omega)/dt = -T(omega) - beta*v + nu lap(omega) - mu omega + F

where ``T`` is the explicit nonlinear tendency supplied by the caller (a *tendency*
object): the 2/3-dealiased Jacobian for the DNS (:class:`Advection`), the LES's resolved
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
"""
from __future__ import annotations

import math

import torch

from . import TurbtlError
from .grid import SpectralGrid, advective_product, complex_dtype

__all__ = ["Stepper", "Advection"]


class Advection:
    """The DNS's tendency: J(psi, omega) of a 2/3-dealiased state, with persistent buffers
    (no allocation per call).  The four fields of the Jacobian come from precomputed
    spectral factors on omega_hat (:meth:`turbtl.grid.SpectralGrid.jacobian_stack` of psi =
    omega/|k|^2 and omega), four inverse and one forward transform per call."""

    def __init__(self, grid: SpectralGrid, members: int):
        g, n, nh, B = grid, grid.n, grid.n // 2 + 1, int(members)
        g64 = SpectralGrid(n, dtype=torch.float64)
        inv = grid.inv_lap.to(torch.float64).cpu().to(torch.complex128)
        fac4 = g64.jacobian_stack(inv, torch.ones_like(inv)).unsqueeze(1)
        cd = dict(device=g.device)
        self.grid = g
        self._fac4 = fac4.to(dtype=g.cdtype, **cd)
        self._spec4 = torch.empty(4, B, n, nh, dtype=g.cdtype, **cd)
        self._phys4 = torch.empty(4, B, n, n, dtype=g.dtype, **cd)
        self._prod = torch.empty(B, n, n, dtype=g.dtype, **cd)
        # the 4 inverse transforms u, v, omega_x, omega_y.  On CUDA one batched irfft2; on
        # CPU (MKL) at n >= 96 four calls over (members, n, n//2+1) measured 1.5-3x faster
        # than one batched call (benchmarks/bench_dns.py)
        self.split_inverse = g.device.type == "cpu" and n >= 96

    def __call__(self, omega_hat: torch.Tensor, out: torch.Tensor) -> None:
        torch.mul(omega_hat.unsqueeze(0), self._fac4, out=self._spec4)
        self._inverse4()
        advective_product(self._phys4, out=self._prod)
        torch.fft.rfft2(self._prod, out=out)

    def _inverse4(self) -> None:
        s = (self.grid.n, self.grid.n)
        if self.split_inverse:
            for i in range(4):
                torch.fft.irfft2(self._spec4[i], s=s, out=self._phys4[i])
        else:
            torch.fft.irfft2(self._spec4, s=s, out=self._phys4)

    def fft_only(self, out: torch.Tensor) -> None:
        """Exactly the FFTs of one call, on its buffers (for benchmarks)."""
        self._inverse4()
        torch.fft.rfft2(self._prod, out=out)

    def max_velocity(self) -> torch.Tensor:
        return self._phys4[:2].abs().amax(dim=(0, 2, 3))


class Stepper:
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
        self._a = ((1.0 - 0.5 * dt * nu * k2) * binv * mask).to(dtype=self.dtype, **cd)
        self._c1 = (-1.5 * dt * binv * mask0).to(dtype=self.dtype, **cd)  # AB2, current N
        self._c2 = (0.5 * dt * binv * mask0).to(dtype=self.dtype, **cd)  # AB2, previous N
        self._c0 = (-dt * binv * mask0).to(dtype=self.dtype, **cd)  # AB1 (first step)
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
        self._G = torch.empty(self.members, n, nh, dtype=self.cdtype, **cd)
        self._H = torch.empty(self.members, n, nh, dtype=self.cdtype, **cd)
        self.t = 0.0
        self.nstep = 0
        self._first = True

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
        oh, G = self.omega_hat, self._G
        self.tendency(oh, G)  # G = T_hat (un-masked; the mask is in c0/c1/c2)
        if self._beta is not None:
            G.addcmul_(oh, self._beta)  # G = T_hat - i beta kx/k^2 omega_hat
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
        self.t = self.nstep * self.dt

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
            for _ in range(m):
                self.step()
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
