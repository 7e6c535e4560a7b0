"""Opt-in speed-ups of a time step: :class:`SpeedUps`, the half of
:class:`turbtl.stepper.Stepper` that turns them on (:meth:`SpeedUps.accelerate`; the DNS does
from ``dns.cuda_graph``, ``dns.compile``, ``dns.band`` and ``dns.prune``, the LES does not: its
closure allocates and syncs) and takes the steps in CUDA graphs, and the kernels they use.

- CUDA graph: a block of ``graph_steps`` AB2 steps (the largest divisor of ``check_every``
  up to 128) is captured once, after one block of eager warm-up steps, and replayed; a step
  that is not part of a full block (the Euler step, a block cut by a snapshot) runs eagerly.
  Replaying launches the same kernels on the same buffers, so the state equals the eager
  one (tests/test_device.py).  On small grids the step is bound by kernel launches (issue
  10: 128^2 x 8 on an H200, 0.122 ms eager, 0.057 ms in a graph).  A failed capture falls
  back to eager steps with a warning (``auto``) or stops (``on``).  The capture itself is
  :meth:`SpeedUps._capture`.
- compile: the element-wise part of a step, the update below and the tendency's products
  (basdevant: v^2 - u^2 and u v, then the combination -kx ky, ky^2 - kx^2 of their spectra
  per block; advective: u omega_x + v omega_y), each as one kernel made by ``torch.compile``
  on real views of the complex arrays (inductor does not generate complex code).  Per step
  the update reads omega_hat, G and H once and writes omega_hat and H once, where the eager
  update makes five passes; the arithmetic is the same but the compiled kernels may contract
  a*b + c into one FMA, so the state agrees with the eager one to round-off, not bit for bit.  The update, with
  the beta coefficient i*b (b real) written as a rotation of the real pair:
      G' = G + i b omega_hat,   omega_hat <- a omega_hat + c G' + A,   H <- fb + c2 G'
  with (c, A) = (c1, H) for AB2; the first (Euler) step, (c0, fb), runs eagerly.
- band: the element-wise passes (the tendency's spectral factors and the update, eager or
  compiled) run on the blocks of :func:`band_slices` only: with the 2/3 mask 44% of the
  rfft layout, in two blocks (ky >= 0, ky < 0).  Nothing outside them is ever nonzero, so the
  state is the same (tests/test_solver.py checks it bit for bit on the CPU); what changes is
  the bytes the passes move, and twice the kernel launches: it pays on large CUDA batches
  only (``BAND_AUTO_POINTS``), which is where ``band: auto`` turns it on.
- prune: the DNS's transforms skip the columns kx > n/3 that the 2/3 rule zeroes
  (:meth:`turbtl.advection.Advection.set_prune`): a 2D transform is a pass along y and one
  along x, and the y pass of an inverse transform (of the forward one: ``both``) then covers
  a third fewer columns.  On the CPU the pruned inverse transforms give the same state bit for
  bit; the pruned forward ones (``both``) the same to float round-off (bit for bit on an AMD
  EPYC, a few ulp apart on an Intel Xeon, where MKL's transform over fewer columns rounds
  differently).  It pays there from 64^2 up (``PRUNE_AUTO``, the inverse ones); on CUDA it is
  not measured yet.
"""
from __future__ import annotations

import logging

import torch

from . import TurbtlError

__all__ = ["SpeedUps", "ACCELERATION_MODES", "PRUNE_MODES", "PRUNE_AUTO", "PRUNE_AUTO_MIN_N", "BAND_MAX_FRACTION",
           "BAND_AUTO_POINTS", "band_slices", "fused_update", "fused_product", "fused_stress", "fused_combine",
           "compiled"]

ACCELERATION_MODES = ("auto", "on", "off")
#: dns.prune: which transforms of the DNS's advection skip the columns the 2/3 rule zeroes
PRUNE_MODES = ("auto", "inverse", "both", "off")
#: what prune: auto means per device type, on grids of at least PRUNE_AUTO_MIN_N.  CPU (2-core
#: AMD EPYC, MKL, 1 thread, 2026-11-29, benchmarks/README.md): with the inverse transforms
#: pruned the eager step takes 0.81-0.90x its time at 128^2 x 8 to 512^2 x 2 (two runs),
#: 0.92x at 192^2 x 4, 0.95-0.96x at 64^2 and 96^2, but 1.06x at 32^2; pruning the forward
#: one as well is no faster there (0.99-1.04x of the inverse-only step from 64^2 up).
#: CUDA: not measured yet, so off (benchmarks/device_check.sh measures both variants)
PRUNE_AUTO = {"cpu": "inverse", "cuda": "off"}
PRUNE_AUTO_MIN_N = 64
#: the banded passes are used only where the blocks cover less than this share of the layout
BAND_MAX_FRACTION = 0.75
#: band: auto turns them on for a CUDA batch of at least this many grid points (members x
#: n^2).  Measured on one H100 with the CUDA graph (2026-11-26, benchmarks/README.md): the
#: step at 128^2 x 8 is 1.41x slower with them (launch-bound: twice the kernels), 256^2 x 8
#: 1.27x and 512^2 x 4 1.15x slower, 512^2 x 8 equal, 1024^2 x 12 1.17x and 2048^2 x 4 1.25x
#: faster (bandwidth-bound: 56% fewer bytes in those passes)
BAND_AUTO_POINTS = 2**22
_GRAPH_MAX = 128  # longest captured block (steps); a longer check_every replays it several times
_LOG = logging.getLogger("turbtl.stepper")  # (the stepper's messages, under the stepper's logger)


def band_slices(support) -> list[tuple[slice, slice]]:
    """The blocks of the rfft layout (n, n//2+1) that hold every True of ``support`` (the
    modes a step can make nonzero): the columns 0..last used one, times each run of used rows
    (for the 2/3 mask two runs, ky >= 0 and ky < 0; 44% of the layout).  Outside them the
    state and its AB2 history stay exactly zero, so the element-wise passes of a step (the
    spectral factors of the tendency, the update) can skip them."""
    sup = torch.as_tensor(support).bool().cpu()
    rows = sup.any(dim=1).tolist()
    cols = torch.nonzero(sup.any(dim=0)).flatten()
    if not len(cols):
        return []
    c = slice(0, int(cols[-1]) + 1)
    out, start = [], None
    for i, used in enumerate(rows + [False]):
        if used and start is None:
            start = i
        elif not used and start is not None:
            out.append((slice(start, i), c))
            start = None
    return out


def _rot(x: torch.Tensor) -> torch.Tensor:
    """i*x for a complex array given as its real view (..., 2)."""
    return torch.stack((-x[..., 1], x[..., 0]), dim=-1)


def fused_update(o, g, h, a, c1, c2, fb, b) -> None:
    """The element-wise part of an AB2 step on real views (module docstring), in place on
    ``o`` (omega_hat) and ``h`` (the AB2 history): ``torch.compile`` makes it one kernel;
    called uncompiled it is the same arithmetic (tests/test_solver.py checks it against
    :meth:`Stepper.step`).  ``b`` is None without beta.  The Euler step stays eager."""
    if b is not None:
        g = g + b * _rot(o)
    new_h = fb + c2 * g
    o.copy_(a * o + c1 * g + h)
    h.copy_(new_h)


def fused_product(p: torch.Tensor, out: torch.Tensor) -> None:
    """u omega_x + v omega_y from the stack (u, v, omega_x, omega_y), one kernel when compiled
    (``out``: (members, n, n), or (1, members, n, n))."""
    out.copy_(p[0] * p[2] + p[1] * p[3])


def fused_stress(p: torch.Tensor, out: torch.Tensor) -> None:
    """The basdevant form's products (v^2 - u^2, u v) from the stack (u, v) into ``out`` (2, ...),
    one kernel when compiled."""
    u, v = p[0], p[1]
    out[0].copy_(v * v - u * u)
    out[1].copy_(u * v)


def fused_combine(q0, q1, c0, c1, out) -> None:
    """The basdevant form's derivatives on real views: out = c0 q0 + c1 q1 (c0 = -kx ky,
    c1 = ky^2 - kx^2, real, shape (..., 1)), one kernel when compiled."""
    out.copy_(c0 * q0 + c1 * q1)


def compiled(fn):
    """``torch.compile`` of one fused kernel (static shapes, one graph)."""
    return torch.compile(fn, dynamic=False, fullgraph=True)


class SpeedUps:
    """The speed-ups of :class:`turbtl.stepper.Stepper` (module docstring), a mixin: it works
    on the stepper's buffers (``omega_hat``, ``_G``, ``_H``, the coefficients, ``band_slices``,
    ``tendency``, ``check_every``) and calls its ``step`` / ``_step_tensors``; the stepper
    calls :meth:`_init_speedups` when it is built, and :meth:`_steps` to take steps."""

    def _init_speedups(self) -> None:
        """All speed-ups off (the state of a new stepper, until :meth:`accelerate`)."""
        self._fused = None  # compiled fused_update and its real-view operands, per part
        self.banded = False
        self.pruned = "off"  # which transforms of the tendency are pruned (accelerate)
        self._parts = self._part_views(None)  # the eager update's operands: the whole arrays
        self._graph = None  # the captured block of graph_steps AB2 steps
        self.graph_steps = 0  # 0: no CUDA graph
        self._graph_strict = False
        self._compile_checked = False
        self._compile_strict = False

    def _part_views(self, slices) -> list[tuple]:
        """The update's operands (omega_hat, G, H, a, c0, c1, c2, fb, beta), whole
        (``slices`` None) or as views of each block of ``slices`` (the banded update)."""
        arrays = (self.omega_hat, self._G, self._H, self._a, self._c0, self._c1, self._c2, self._fb, self._beta)
        if slices is None:
            return [arrays]
        return [tuple(None if x is None else x[..., r, c] for x in arrays) for r, c in slices]

    def _first_compiled_step(self, first: bool) -> None:
        """A step whose compiled kernels run for the first time (and are compiled then).  A
        compiler failure happens before they write: the state is untouched, the step is made
        eagerly instead (``auto``) or the run stops (``on``)."""
        try:
            self._compile_checked = True  # (so that the step below runs the compiled kernels)
            self._step_tensors(first)
        except Exception as e:  # noqa: BLE001 - any compiler failure: fall back or stop
            self._eager_update()
            if self._compile_strict:
                raise TurbtlError(f"torch.compile of the step of '{self.name}' failed ({type(e).__name__}: "
                                  f"{str(e)[:300]}); fix: set dns.compile: off (or auto)") from e
            _LOG.warning("torch.compile of the step failed (%s: %s); stepping eagerly", type(e).__name__, str(e)[:300])
            self._step_tensors(first)
            return
        # the Euler step does not run the compiled update: its first AB2 step is checked again
        self._compile_checked = not first

    def accelerate(self, *, cuda_graph: str = "off", compile: str = "off", band: str = "off",
                   prune: str = "off") -> dict:
        """Turn on the opt-in speed-ups (module docstring).  ``auto``: on CUDA, with a
        fallback to eager steps (and a warning) if capture or compilation fails; ``on``: the
        same, but a failure raises :class:`TurbtlError`, and ``compile: on`` compiles on the
        CPU too; ``off``: eager (True / False: on / off).  A CUDA graph needs CUDA (``on`` on the CPU steps eagerly).
        ``band`` (auto: on CUDA with at least ``BAND_AUTO_POINTS`` grid points per
        step): the element-wise passes touch only :attr:`band_slices`
        (:func:`band_slices`; same state, fewer bytes), where those cover less
        than ``BAND_MAX_FRACTION`` of the rfft layout.  ``prune`` (auto | inverse | both |
        off; True / False: both / off): which transforms of a tendency that has ``set_prune``
        skip the columns beyond the support (:meth:`turbtl.advection.Advection.set_prune`;
        ``auto``: the inverse ones on the CPU from n = 64 up, where that was measured to pay,
        none on CUDA, where it has not been measured yet: :data:`PRUNE_AUTO`).
        Returns what is in effect: {"cuda_graph": graph_steps or 0, "compile": bool, "band": bool,
        "prune": "off" | "inverse" | "both"}."""
        # YAML 1.1 reads an unquoted on/off as a boolean: take both spellings
        cuda_graph, compile, band = ({True: "on", False: "off"}.get(v, v) for v in (cuda_graph, compile, band))
        prune = {True: "both", False: "off"}.get(prune, prune)
        for key, v, modes in (("cuda_graph", cuda_graph, ACCELERATION_MODES), ("compile", compile, ACCELERATION_MODES),
                              ("band", band, ACCELERATION_MODES), ("prune", prune, PRUNE_MODES)):
            if v not in modes:
                raise TurbtlError(f"dns.{key} = {v!r}; fix: use one of {', '.join(modes)}")
        cuda = self.device.type == "cuda"
        n, nh = self.grid.n, self.grid.n // 2 + 1
        covered = sum((r.stop - r.start) * (c.stop - c.start) for r, c in self.band_slices) / (n * nh)
        big = self.members * n * n >= BAND_AUTO_POINTS
        self.banded = (band == "on" or (band == "auto" and cuda and big)) and covered < BAND_MAX_FRACTION
        slices = self.band_slices if self.banded else None
        self._parts = self._part_views(slices)
        self.pruned = "off"
        if hasattr(self.tendency, "set_prune"):
            if prune == "auto":
                prune = PRUNE_AUTO.get(self.device.type, "off") if n >= PRUNE_AUTO_MIN_N else "off"
            cols = max((c.stop for _, c in self.band_slices), default=nh)
            self.pruned = prune if cols < nh else "off"
            self._G.zero_()  # scratch: a pruned forward transform leaves the columns beyond at zero
            self.tendency.set_prune(None if self.pruned == "off" else cols, forward=self.pruned == "both")
        if hasattr(self.tendency, "set_bands"):
            self.tendency.set_bands(slices)
        if compile == "on" or (compile == "auto" and cuda):
            self._compile_strict = compile == "on"
            self._compile_checked = False
            r = torch.view_as_real
            parts = []
            for o, G, H, a, _, c1, c2, fb, beta in self._parts:
                parts.append(dict(o=r(o), G=r(G), H=r(H), fb=r(fb), a=a.real.contiguous().unsqueeze(-1),
                                  c1=c1.real.contiguous().unsqueeze(-1), c2=c2.real.contiguous().unsqueeze(-1),
                                  b=None if beta is None else beta.imag.contiguous().unsqueeze(-1)))
            self._fused = dict(fn=compiled(fused_update), parts=parts)
            if hasattr(self.tendency, "compile"):
                self.tendency.compile()
        else:
            self._eager_update()
        self._graph = None
        self.graph_steps = 0
        if cuda and cuda_graph in ("on", "auto"):
            self._graph_strict = cuda_graph == "on"
            self.graph_steps = max(d for d in range(1, min(self.check_every, _GRAPH_MAX) + 1) if self.check_every % d == 0)
            if self.graph_steps < 8:  # a short block saves little; a graph of 1 step is pointless
                self.graph_steps = min(self.check_every, _GRAPH_MAX) if self.check_every >= 8 else 0
        return {"cuda_graph": self.graph_steps, "compile": self._fused is not None, "band": self.banded,
                "prune": self.pruned}

    def _eager_update(self) -> None:
        """No compiled kernels: the eager update, and the tendency's eager product."""
        self._fused = None
        if hasattr(self.tendency, "uncompile"):
            self.tendency.uncompile()

    def _capture(self) -> None:
        """Capture ``graph_steps`` AB2 steps (not executed: the state is unchanged)."""
        try:
            g = torch.cuda.CUDAGraph()
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(g):
                for _ in range(self.graph_steps):
                    self._step_tensors(False)
            torch.cuda.synchronize(self.device)
            self._graph = g
        except Exception as e:  # noqa: BLE001 - any capture failure: fall back or stop
            self.graph_steps = 0
            self._graph = None
            if self._graph_strict:
                raise TurbtlError(f"CUDA graph capture of the step of '{self.name}' failed ({type(e).__name__}: "
                                  f"{str(e)[:300]}); fix: set dns.cuda_graph: off (or auto)") from e
            _LOG.warning("CUDA graph capture failed (%s: %s); stepping eagerly", type(e).__name__, str(e)[:300])

    def _steps(self, m: int) -> None:
        """``m`` steps: full blocks of ``graph_steps`` by graph replay where a graph is on,
        the rest (and the Euler step) eagerly.  The first full block runs eagerly as the
        warm-up (cuFFT plans, compiled kernels) before the capture."""
        while m > 0 and self._first:
            self.step()
            m -= 1
        gs = self.graph_steps
        if gs and m >= gs:
            if self._graph is None:
                for _ in range(gs):
                    self.step()
                m -= gs
                self._capture()
            if self._graph is not None and m >= gs:
                k = m // gs
                for _ in range(k):
                    self._graph.replay()
                self.nstep += k * gs
                self.t = self.nstep * self.dt
                m -= k * gs
        for _ in range(m):
            self.step()
