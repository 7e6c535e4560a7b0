"""Opt-in speed-ups of a time step (:meth:`turbtl.stepper.Stepper.accelerate`; the DNS turns
them on from ``dns.cuda_graph``, ``dns.compile``, ``dns.band`` and ``dns.prune``, the LES does
not: its closure allocates and syncs).

- CUDA graph: a block of ``graph_steps`` AB2 steps (the largest divisor of ``check_every``
  up to 128) is captured once, after one block of eager warm-up steps, and replayed; a step
  that is not part of a full block (the Euler step, a block cut by a snapshot) runs eagerly.
  Replaying launches the same kernels on the same buffers, so the state equals the eager
  one (tests/test_device.py).  On small grids the step is bound by kernel launches (issue
  10: 128^2 x 8 on an H200, 0.122 ms eager, 0.057 ms in a graph).  A failed capture falls
  back to eager steps with a warning (``auto``) or stops (``on``).  The capture itself is
  :meth:`turbtl.stepper.Stepper._capture`.
- compile: the element-wise part of a step, the update below and the advective product
  u omega_x + v omega_y, each as one kernel made by ``torch.compile`` on real views of the
  complex arrays (inductor does not generate complex code).  Per step this reads omega_hat,
  G and H once and writes omega_hat and H once, where the eager update makes five passes;
  the arithmetic is the same but the compiled kernels may contract a*b + c into one FMA,
  so the state agrees with the eager one to round-off, not bit for bit.  The update, with
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
  a third fewer columns.  On the CPU it is the same arithmetic in the same order, bit for
  bit; it pays there from 64^2 up (``PRUNE_AUTO``), on CUDA it is not measured yet.
"""
from __future__ import annotations

import torch

__all__ = ["ACCELERATION_MODES", "PRUNE_MODES", "PRUNE_AUTO", "PRUNE_AUTO_MIN_N", "BAND_MAX_FRACTION",
           "BAND_AUTO_POINTS", "band_slices", "fused_update", "fused_product", "compiled"]

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
    """u omega_x + v omega_y from the stack (u, v, omega_x, omega_y), one kernel when compiled."""
    out.copy_(p[0] * p[2] + p[1] * p[3])


def compiled(fn):
    """``torch.compile`` of one fused kernel (static shapes, one graph)."""
    return torch.compile(fn, dynamic=False, fullgraph=True)
