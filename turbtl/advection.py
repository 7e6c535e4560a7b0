"""The DNS's tendency: the 2/3-dealiased Jacobian J(psi, omega) on the real FFT, with
persistent buffers (:class:`Advection`, the tendency object that :class:`turbtl.solver.DNSSolver`
gives its :class:`turbtl.stepper.Stepper`).

Four inverse transforms (u, v, omega_x, omega_y from precomputed spectral factors on
omega_hat) and one forward transform of the advective product per call.  Two of the opt-in
speed-ups of :mod:`turbtl.fused` act here: ``set_bands`` (the factors on the blocks of the
dealiased modes only) and ``set_prune`` (transforms that skip the columns the 2/3 rule
zeroes); the compiled advective product is ``compile``.
"""
from __future__ import annotations

import torch

from . import fused
from .fused import fused_product
from .grid import SpectralGrid, advective_product

__all__ = ["Advection"]


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
        self._fac4w = self._fac4  # its first columns where the inverse transforms are pruned
        # zeros: the banded factors (set_bands) never write outside the state's blocks
        self._spec4 = torch.zeros(4, B, n, nh, dtype=g.cdtype, **cd)
        self._phys4 = torch.empty(4, B, n, n, dtype=g.dtype, **cd)
        self._prod = torch.empty(B, n, n, dtype=g.dtype, **cd)
        # the 4 inverse transforms u, v, omega_x, omega_y.  On CUDA one batched irfft2; on
        # CPU (MKL) at n >= 96 four calls over (members, n, n//2+1) measured 1.5-3x faster
        # than one batched call (benchmarks/bench_dns.py)
        self.split_inverse = g.device.type == "cpu" and n >= 96
        self._product = None  # the compiled advective product (Stepper.accelerate)
        self._bands = None  # (state view, factor view, spectra view) per block (set_bands)
        self.prune_inverse, self.prune_forward, self._cols = False, False, nh  # set_prune
        self._half = self._rows = None

    def set_prune(self, cols: int | None, forward: bool = False) -> None:
        """Pruned transforms (``dns.prune``; ``cols`` None: none): the state is zero in the
        columns kx >= ``cols`` of the rfft layout (``cols``: the last column of
        :func:`turbtl.fused.band_slices` + 1, n//3 + 1 for the 2/3 mask), so

        - the four inverse transforms are a complex FFT along y of the first ``cols`` columns
          only, then a real inverse FFT along x (which zero-pads the rest): a 2D inverse
          transform is these two passes, and the first one skips a third of its columns
          (about 1/6 of the transform's work; the spectral fields then fill (.., n, cols)
          instead of (.., n, n//2+1));
        - with ``forward`` (``dns.prune: both``), the forward transform of the product is a
          real FFT along x, then a complex FFT along y of the first ``cols`` columns; the
          columns beyond are never written (the step's coefficients are zero there; the
          stepper's ``_G`` is zeroed when the pruning is set).

        On the CPU (MKL) each is the same arithmetic as the 2D transform, in the same order:
        the state is equal bit for bit (tests/test_solver.py).  Call before :meth:`set_bands`."""
        g, n, nh = self.grid, self.grid.n, self.grid.n // 2 + 1
        w = nh if cols is None else int(cols)
        if not 0 < w <= nh:
            raise ValueError(f"cols = {cols} outside 1..{nh}")
        self.prune_inverse, self.prune_forward, self._cols = cols is not None, cols is not None and forward, w
        B, cd = self._phys4.shape[1], dict(dtype=g.cdtype, device=g.device)
        self._spec4 = torch.zeros(4, B, n, w, **cd)
        self._fac4w = self._fac4[..., :w].contiguous() if self.prune_inverse else self._fac4
        self._half = torch.empty(4, B, n, w, **cd) if self.prune_inverse else None
        self._rows = torch.empty(B, n, nh, **cd) if self.prune_forward else None
        self._bands = None

    def set_bands(self, slices) -> None:
        """Form the spectral fields on the blocks ``slices`` of the state only
        (:func:`turbtl.fused.band_slices`; None: the whole layout).  The state is zero outside
        them, so the fields are the same; the rest of ``_spec4`` keeps its zeros."""
        self._spec4.zero_()
        if slices is not None and any(c.stop > self._spec4.shape[-1] for _, c in slices):
            raise ValueError("the blocks reach beyond the pruned columns: call set_prune with their last column")
        self._bands = None if slices is None else [
            (r, c, self._fac4[..., r, c], self._spec4[..., r, c]) for r, c in slices]

    def __call__(self, omega_hat: torch.Tensor, out: torch.Tensor) -> None:
        if self._bands is None:
            w = self._spec4.shape[-1]
            oh = omega_hat if w == omega_hat.shape[-1] else omega_hat[..., :w]
            torch.mul(oh.unsqueeze(0), self._fac4w, out=self._spec4)
        else:
            for r, c, fac, spec in self._bands:
                torch.mul(omega_hat[:, r, c].unsqueeze(0), fac, out=spec)
        self._inverse4()
        if self._product is not None:
            self._product(self._phys4, self._prod)
        else:
            advective_product(self._phys4, out=self._prod)
        self._forward(out)

    def _forward(self, out: torch.Tensor) -> None:
        if self.prune_forward:
            torch.fft.rfft(self._prod, dim=-1, out=self._rows)
            torch.fft.fft(self._rows[..., :self._cols], dim=-2, out=out[..., :self._cols])
        else:
            torch.fft.rfft2(self._prod, out=out)

    def compile(self) -> None:
        """Make the advective product one compiled kernel (:func:`fused_product`); the
        compilation itself happens on the first call."""
        self._product = fused.compiled(fused_product)

    def _inverse4(self) -> None:
        n = self.grid.n
        parts = range(4) if self.split_inverse else [slice(None)]
        for i in parts:
            if self.prune_inverse:
                torch.fft.ifft(self._spec4[i], dim=-2, out=self._half[i])
                torch.fft.irfft(self._half[i], n=n, dim=-1, out=self._phys4[i])
            else:
                torch.fft.irfft2(self._spec4[i], s=(n, n), out=self._phys4[i])

    def fft_only(self, out: torch.Tensor) -> None:
        """Exactly the FFTs of one call, on its buffers (for benchmarks)."""
        self._inverse4()
        self._forward(out)

    def max_velocity(self) -> torch.Tensor:
        return self._phys4[:2].abs().amax(dim=(0, 2, 3))
