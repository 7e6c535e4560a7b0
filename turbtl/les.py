"""Large-eddy simulation on the LES grid with a pluggable closure (the a-posteriori test).

The LES integrates the filtered equation

    d(omega_bar)/dt + J(psi_bar, omega_bar) + beta*v_bar = nu lap(omega_bar) - mu omega_bar + F_bar - Pi_model

where ``Pi = filter(J(psi, omega)) - J(psi_bar, omega_bar)`` is what the networks learn
(:mod:`turbtl.filters`): moving the filtered Jacobian to the left-hand side leaves
``-Pi`` on the right, so a closure enters with a minus sign.  The linear terms commute with
the filter, so they are the DNS's; the forcing is the *filtered* forcing
``F_bar = G(k_f) F`` (the filter's transfer function at k_f, about 0.90 for the default
Gaussian filter at k_f = 4), coarse-grained to the LES grid.

Numerics: the DNS's :class:`turbtl.stepper.Stepper` (AB2 for the Jacobian, the beta term,
the forcing and the closure; Crank-Nicolson viscosity; implicit drag).  The resolved
Jacobian is computed exactly as the Pi definition assumes
(:func:`turbtl.filters.jacobian_les_hat`: 3/2 zero padding, LES Nyquist modes dropped), and
the state keeps every mode but the Nyquist ones.  The closure is a callable on a batch,
``(psi_bar, omega_bar) -> Pi`` with each argument (B, n, n) in physical space, so a physics
closure (:func:`smagorinsky`, :func:`dynamic`) and a network (:func:`network_closure`) plug in the same way.
Every closure and every initial condition of one target advance together as one batch:
member ``c * starts + s`` is closure ``c`` from start ``s``.

Blow-ups: the guard checks every ``check_every`` steps, per member, that the vorticity is
finite and the CFL number is below ``cfl_max``.  A member that fails is recorded (its time
and cause) and set to zero from then on, so the other members go on; if the member without
closure fails, the LES itself (its dt or grid) is at fault and :class:`TurbtlError` stops
the job, naming the fix.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import TurbtlError
from .equation import forcing_hat
from .filters import coarse_grain, filter_width, jacobian_les_hat, transfer_function
from .grid import SpectralGrid, band_mask
from .stepper import Stepper

__all__ = ["les_mask", "filtered_forcing_hat", "smagorinsky", "dynamic", "equivalent_constant", "DYNAMIC_RATIO",
           "network_closure", "NetworkClosure", "GroupedClosure", "LESTendency", "LES"]


def les_mask(n: int) -> torch.Tensor:
    """The modes an LES state keeps: |kx|, |ky| < n/2 (the Nyquist row and column dropped,
    as the coarse-graining drops them), rfft layout, 0/1 float64."""
    return torch.tensor(band_mask(n, 2).astype(np.float64))


def filtered_forcing_hat(kf: int, n_dns: int, n_les: int, kind: str, width_factor: float) -> torch.Tensor:
    """rfft of the filtered forcing G(k) F on the LES grid (complex128, host)."""
    g = SpectralGrid(n_dns, dtype=torch.float64)
    G = transfer_function(kind, g.kx, g.ky, filter_width(n_les, width_factor))
    return coarse_grain(G * forcing_hat(n_dns, kf), n_les)


def _eddy_term(g: SpectralGrid, ph: torch.Tensor, oh: torch.Tensor, kind: str, coef=1.0, keep=None) -> torch.Tensor:
    """-div(nu grad omega) in physical space with nu = ``coef`` times the model's invariant:
    the strain rate |S| = sqrt(4 psi_xy^2 + (psi_xx - psi_yy)^2) (``"smagorinsky"``) or
    |grad omega| (``"leith"``); ``ph``, ``oh`` are rfft's of psi and omega.  ``keep``: a mask
    of the modes of the result (the LES's :func:`les_mask`), None for all of them (the LES
    drops the Nyquist modes of a closure's output anyway)."""
    kx, ky = g.kx, g.ky
    if kind == "smagorinsky":
        f = g.irfft(torch.stack([-kx * ky * ph, -(kx**2) * ph + ky**2 * ph, g.ddx(oh), g.ddy(oh)]))
        nu_e = coef * torch.sqrt(4 * f[0] ** 2 + f[1] ** 2)
    elif kind == "leith":
        f = g.irfft(torch.stack([g.ddx(oh), g.ddy(oh)]))
        nu_e = coef * torch.sqrt(f[-2] ** 2 + f[-1] ** 2)
    else:
        raise TurbtlError(f"eddy-viscosity model {kind!r} is not known; fix: use 'smagorinsky' or 'leith'")
    flux = g.rfft(torch.stack([nu_e * f[-2], nu_e * f[-1]]))
    div = g.ddx(flux[0]) + g.ddy(flux[1])
    return -g.irfft(div if keep is None else div * keep)


def _check_device(g: SpectralGrid, psi: torch.Tensor, what: str) -> None:
    if psi.device.type != g.device.type:
        raise TurbtlError(f"the {what} closure was built for {g.device} but the LES runs on {psi.device}; "
                          "fix: build it with device=the LES's device")


def smagorinsky(n: int, delta: float, cs: float = 0.17, *, device="cpu", dtype=torch.float64):
    """Smagorinsky's closure in vorticity form: Pi = -div(nu_e grad omega_bar) with the eddy
    viscosity nu_e = (cs delta)^2 |S|, |S| = sqrt(4 psi_xy^2 + (psi_xx - psi_yy)^2) (the
    strain rate sqrt(2 S_ij S_ij) of the resolved flow).  Lilly's cs = 0.17 for a
    3D inertial range with ``delta`` the LES grid spacing, the textbook pairing (the a-posteriori
    stage uses it as given, untuned).  It drains enstrophy:
    mean(omega Pi) = mean(nu_e |grad omega|^2) >= 0."""
    g = SpectralGrid(n, device=device, dtype=dtype)
    c2 = (float(cs) * float(delta)) ** 2

    def closure(psi: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        _check_device(g, psi, "Smagorinsky")
        return _eddy_term(g, g.rfft(psi.to(dtype)), g.rfft(omega.to(dtype)), "smagorinsky", c2).to(omega.dtype)

    return closure


#: Dynamic procedure: the test-level filter is ``DYNAMIC_RATIO`` times as wide as the LES's
#: own filter (Germano et al.'s usual 2).
DYNAMIC_RATIO = 2.0
#: The power of Delta in each model's eddy viscosity: (cs Delta)^2 |S| and (C_L Delta)^3 |grad omega|.
DELTA_POWER = {"smagorinsky": 2, "leith": 3}


def dynamic(kind: str, n: int, filter_delta: float, *, device="cpu", dtype=torch.float64):
    """The dynamic Smagorinsky (``kind="smagorinsky"``) or Leith (``"leith"``) closure: the
    eddy-viscosity model Pi = c m(psi, omega), m = -div(nu~ grad omega) with nu~ = |S| or
    |grad omega| (:func:`_eddy_term` with coefficient 1), whose coefficient c is computed from
    the resolved field at every call by the Germano identity, no constant to choose.

    With T the test filter, a Gaussian of width ``sqrt(DYNAMIC_RATIO^2 - 1) * filter_delta``
    (``filter_delta``: the width of the filter that made the LES fields, so that T after
    that filter is a Gaussian ``DYNAMIC_RATIO`` times wider when that filter is Gaussian; for a
    box filter the second moments add the same way; after the sharp spectral filter the ratio
    is only nominal), the identity
    T(Pi) + L = Pi at the test level, with the resolved part
    L = T(J(psi, omega)) - J(T psi, T omega), gives L = c M with
    M = a^p m(T psi, T omega) - T(m(psi, omega)), a = ``DYNAMIC_RATIO``, p = 2 (Smagorinsky)
    or 3 (Leith) the power of Delta in the eddy viscosity.  Lilly's least squares over the
    domain, per member: c = max(0, <L M> / <M M>) (clipped at zero, so the closure never
    injects enstrophy, the usual choice for 2D turbulence; 0 where M vanishes).  J is the
    LES's own 3/2-padded Jacobian (:func:`turbtl.filters.jacobian_les_hat`).

    The returned closure keeps, per member, the sum of c over its calls
    (``coefficient_sum``) and the number of calls (``calls``, tensors of shape (B,) after the
    first call), a member whose field is zero (a blown-up LES member) not counted: their ratio
    is the time-mean c, :func:`equivalent_constant` turns it into cs or C_L."""
    if kind not in DELTA_POWER:
        raise TurbtlError(f"dynamic model {kind!r} is not known; fix: use one of {sorted(DELTA_POWER)}")
    g = SpectralGrid(n, device=device, dtype=dtype)
    a, p = DYNAMIC_RATIO, DELTA_POWER[kind]
    keep = les_mask(n).to(g.device, dtype)
    T = transfer_function("gaussian", g.kx, g.ky, math.sqrt(a**2 - 1) * float(filter_delta)) * keep

    def closure(psi: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        _check_device(g, psi, f"dynamic {kind}")
        ph, oh = g.rfft(psi.to(dtype)), g.rfft(omega.to(dtype))
        m = _eddy_term(g, ph, oh, kind, keep=keep)
        tph, toh = T * ph, T * oh
        L = g.irfft(T * jacobian_les_hat(ph, oh) - jacobian_les_hat(tph, toh))
        M = a**p * _eddy_term(g, tph, toh, kind, keep=keep) - g.irfft(T * g.rfft(m))
        num, den = (L * M).mean(dim=(-2, -1)), (M * M).mean(dim=(-2, -1))
        c = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0).clamp(min=0.0)
        live = (den > 0).to(dtype)
        closure.coefficient_sum = closure.coefficient_sum + c * live
        closure.calls = closure.calls + live
        return (c[:, None, None] * m).to(omega.dtype)

    closure.coefficient_sum, closure.calls, closure.kind = 0.0, 0.0, kind
    return closure


def equivalent_constant(kind: str, c: float, delta: float) -> float:
    """The constant of the static model with filter width ``delta`` that has coefficient ``c``
    of :func:`dynamic`: cs = sqrt(c)/delta (Smagorinsky) or C_L = c^(1/3)/delta (Leith)."""
    return float(c) ** (1.0 / DELTA_POWER[kind]) / float(delta)


class NetworkClosure:
    """A trained network as a closure, in inference mode with the normaliser of its
    checkpoint: Pi = norm^-1(model(norm(psi, omega)))."""

    def __init__(self, model, norm):
        self.model, self.norm = model.eval(), norm
        self.device = next(model.parameters()).device

    def __call__(self, psi: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        x = torch.stack([psi, omega], dim=1).float()
        with torch.inference_mode():
            y = self.model(self.norm.x(x).to(self.device))
        return self.norm.y_inv(y)[:, 0].to(omega.dtype)


def network_closure(model, norm) -> NetworkClosure:
    """A trained network as a closure (:class:`NetworkClosure`)."""
    return NetworkClosure(model, norm)


class GroupedClosure:
    """Several :class:`NetworkClosure` s with one normaliser, on consecutive closures of the
    batch, applied together: the fields of all their members normalised, stacked and converted
    once, each network then on its own members, the result converted back once.  Each network
    sees exactly the input it would alone, so the result is the same bit for bit; what goes is
    the per-closure bookkeeping of small tensors (measured in benchmarks/bench_les.py).  (One
    grouped convolution for all the networks instead was measured slower on the CPU.)"""

    def __init__(self, closures: list[NetworkClosure], starts: int):
        self.models, self.starts = [c.model for c in closures], int(starts)
        self.norm, self.device = closures[0].norm, closures[0].device

    def __call__(self, psi: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        S = self.starts
        x = self.norm.x(torch.stack([psi, omega], dim=1).float()).to(self.device)
        with torch.inference_mode():
            y = torch.cat([m(x[g * S:(g + 1) * S]) for g, m in enumerate(self.models)])
        return self.norm.y_inv(y)[:, 0].to(omega.dtype)


def _segments(closures: list, starts: int, group: bool) -> list[tuple[int, int, object]]:
    """(first closure, number of closures, callable) covering every closure that is not None:
    runs of two or more :class:`NetworkClosure` s that share a normaliser and a device become one
    :class:`GroupedClosure` (``group``), the others stay one each."""
    out, c = [], 0
    while c < len(closures):
        fn = closures[c]
        run = 1
        if group and isinstance(fn, NetworkClosure):
            while (c + run < len(closures) and isinstance(closures[c + run], NetworkClosure)
                   and closures[c + run].norm is fn.norm and closures[c + run].device == fn.device):
                run += 1
        if fn is not None:
            out.append((c, run, GroupedClosure(closures[c:c + run], starts) if run > 1 else fn))
        c += run
    return out


class LESTendency:
    """T = J_les(psi, omega) + Pi_model for the batch: ``closures`` is a list of callables or
    None (no closure), closure ``c`` acting on members ``c*starts .. (c+1)*starts - 1``.
    Consecutive network closures run together (``group_networks``, the default;
    :class:`GroupedClosure`), the same bit for bit as one by one."""

    def __init__(self, grid: SpectralGrid, closures: list, starts: int, group_networks: bool = True):
        self.grid, self.closures, self.starts = grid, list(closures), int(starts)
        self._segments = _segments(self.closures, self.starts, group_networks)
        self._umax = None

    def __call__(self, omega_hat: torch.Tensor, out: torch.Tensor) -> None:
        g = self.grid
        psi_hat = omega_hat * g.inv_lap
        uh, vh = g.velocity_hat(omega_hat)
        phys = g.irfft(torch.stack([psi_hat, omega_hat, uh, vh]))
        self._umax = phys[2:].abs().amax(dim=(0, 2, 3))
        pi = torch.zeros_like(phys[0])
        for c, count, fn in self._segments:
            sl = slice(c * self.starts, (c + count) * self.starts)
            pi[sl] = fn(phys[0, sl], phys[1, sl])
        out.copy_(jacobian_les_hat(psi_hat, omega_hat) + g.rfft(pi))

    def max_velocity(self) -> torch.Tensor:
        return self._umax


class LES(Stepper):
    """The batch of closures x starts on the LES grid (see the module docstring).

    ``omega0``: (starts, n, n) initial filtered vorticity; ``closures``: list of callables
    or None; ``names``: one per closure (for messages); ``params``: the target's
    :class:`turbtl.equation.FlowParams` with ``n`` = n_les and ``dt`` = the LES time step;
    ``forcing_hat``: :func:`filtered_forcing_hat`.
    """

    def __init__(self, params, omega0, closures: list, names: list[str], *, forcing_hat, device="cpu",
                 dtype=torch.float64, cfl_max: float = 0.5, check_every: int = 10, group_networks: bool = True):
        omega0 = torch.as_tensor(omega0)
        self.starts = int(omega0.shape[0])
        self.names = list(names)
        grid = SpectralGrid(params.n, device=device, dtype=dtype)
        members = len(closures) * self.starts
        super().__init__(grid, members, dt=params.dt, nu=params.nu, mu=params.mu, beta=params.beta,
                         forcing_hat=forcing_hat, mask=les_mask(params.n),
                         tendency=LESTendency(grid, closures, self.starts, group_networks), name=params.name,
                         fix_key="les", cfl_max=cfl_max, check_every=check_every)
        self.set_state(omega0.to(dtype).repeat(len(closures), 1, 1))
        self.alive = torch.ones(members, dtype=torch.bool)
        self.blowup_time = [math.nan] * members
        self.blowup_cause = [""] * members
        self._keep = None  # (members, 1, 1) 0/1 after the first blow-up: the dead stay zero

    def _step_tensors(self, first: bool) -> None:
        """The step, then the blown-up members set to zero again: the forcing (and a closure
        that answers a zero field with something) would otherwise regrow them, and their
        statistics, and a dynamic closure's time-mean coefficient, would count a member that
        is no longer the closure's LES.  (The LES takes no CUDA graph, which would freeze the
        test on ``_keep``.)"""
        super()._step_tensors(first)
        if self._keep is not None:
            self.omega_hat.mul_(self._keep)
            self._H.mul_(self._keep)

    def on_check(self, umax: list[float], wmax: list[float]) -> float:
        cfl = [u * self.dt / self.grid.dx for u in umax]
        dead = []
        for m in range(self.members):
            if not self.alive[m]:
                continue
            bad = not (math.isfinite(umax[m]) and math.isfinite(wmax[m]))
            if bad or cfl[m] > self.cfl_max:
                cause = "non-finite vorticity" if bad else f"CFL {cfl[m]:.3g} > cfl_max {self.cfl_max}"
                self.alive[m] = False
                self.blowup_time[m], self.blowup_cause[m] = self.t, cause
                dead.append(m)
        if dead:
            idx = torch.tensor(dead, device=self.device)
            self.omega_hat[idx] = 0
            self._H[idx] = 0
            if self._keep is None:
                self._keep = torch.ones(self.members, 1, 1, dtype=self.grid.dtype, device=self.device)
            self._keep[idx] = 0
            for m in dead:
                c = m // self.starts
                if self.tendency.closures[c] is None:
                    raise TurbtlError(
                        f"the LES of '{self.name}' without closure blew up at t={self.t:.4g} ({self.blowup_cause[m]}): "
                        f"the LES time step is unstable; fix: reduce les.dt (now {self.dt}) to e.g. {0.5 * self.dt:.3g}")
        live = [c for c, a in zip(cfl, self.alive.tolist()) if a]
        if live:
            self.max_cfl = max(self.max_cfl, max(live))
        return max(live) if live else math.nan
