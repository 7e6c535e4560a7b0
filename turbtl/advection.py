"""The DNS's tendency: the 2/3-dealiased Jacobian J(psi, omega) on the real FFT, with
persistent buffers (:class:`Advection`, the tendency object that :class:`turbtl.solver.DNSSolver`
gives its :class:`turbtl.stepper.Stepper`), in one of two forms (``dns.nonlinear``,
:data:`FORMS`):

- ``basdevant`` (the default): J = u.grad(omega) = curl div(u u) for a divergence-free u,

      J = (d_xx - d_yy)(u v) + d_xy (v^2 - u^2),

  the 2D form of Basdevant's reduction (J. Comput. Phys. 50, 1983): two inverse transforms
  (u, v), the products v^2 - u^2 and u v, two forward transforms, and the derivatives as one
  spectral combination (-kx ky and ky^2 - kx^2 times the two spectra).  Four transforms per
  call instead of five.
- ``advective``: J = u omega_x + v omega_y from four inverse transforms (u, v, omega_x,
  omega_y) and one forward transform of the product (what every turbtl DNS computed before
  the basdevant form; ``dns.nonlinear: advective`` repeats such a run bit for bit).

Both are quadratic in fields that the 2/3 mask band-limits, so each is the exact Galerkin
term on the kept modes: the two agree to round-off (tests/test_solver.py: 1e-12 in float64),
not bit for bit, and since the flow is chaotic the two forms' trajectories part after a
while, as those of two CPUs do.  On the 2-core AMD EPYC (1 thread) the step takes 0.72-0.84x the
advective one's time at 128^2 x 8 to 512^2 x 2 (benchmarks/README.md); on CUDA it is not yet
measured (four transforms instead of five, and fewer bytes in the element-wise passes).

Two of the opt-in speed-ups of :mod:`turbtl.fused` act here: ``set_bands`` (the spectral
factors and the combination on the blocks of the dealiased modes only) and ``set_prune``
(transforms that skip the columns the 2/3 rule zeroes); the compiled products are ``compile``.
"""
from __future__ import annotations

import torch

from . import TurbtlError, fused
from .fused import fused_combine, fused_product, fused_stress
from .grid import SpectralGrid, advective_product

__all__ = ["Advection", "FORMS", "FORM_TEXT"]

#: dns.nonlinear: the forms of J(psi, omega) the DNS can compute (module docstring), each with
#: the text of its DNS file's attribute nonlinear_form
FORM_TEXT = {"basdevant": "basdevant: J = (d_xx - d_yy)(u v) + d_xy (v^2 - u^2), 2 inverse + 2 forward FFTs",
             "advective": "advective: J = u omega_x + v omega_y, 4 inverse + 1 forward FFTs"}
FORMS = tuple(FORM_TEXT)


class Advection:
    """The DNS's tendency: J(psi, omega) of a 2/3-dealiased state in ``form`` (module
    docstring), with persistent buffers (no allocation per call).  The fields transformed
    back come from precomputed spectral factors on omega_hat: (u, v) for ``basdevant``,
    (u, v, omega_x, omega_y) for ``advective`` (:meth:`turbtl.grid.SpectralGrid.jacobian_stack`
    of psi = omega/|k|^2 and omega)."""

    def __init__(self, grid: SpectralGrid, members: int, form: str = "basdevant"):
        if form not in FORMS:
            raise TurbtlError(f"dns.nonlinear = {form!r}; fix: use one of {', '.join(FORMS)}")
        g, n, nh, B = grid, grid.n, grid.n // 2 + 1, int(members)
        self.form = form
        g64 = SpectralGrid(n, dtype=torch.float64)
        # (from the grid's own 1/k^2, so that the advective form's factors are the ones it always had)
        inv = grid.inv_lap.to(torch.float64).cpu().to(torch.complex128)
        fac = g64.jacobian_stack(inv, torch.ones_like(inv))
        nf = 4 if form == "advective" else 2  # the fields transformed back: (u, v[, omega_x, omega_y])
        cd = dict(device=g.device)
        self.grid = g
        self._fac = fac[:nf].unsqueeze(1).to(dtype=g.cdtype, **cd)
        self._facw = self._fac  # its first columns where the inverse transforms are pruned
        # zeros: the banded factors (set_bands) never write outside the state's blocks
        self._spec = torch.zeros(nf, B, n, nh, dtype=g.cdtype, **cd)
        self._phys = torch.empty(nf, B, n, n, dtype=g.dtype, **cd)
        if form == "advective":
            self._prod = torch.empty(1, B, n, n, dtype=g.dtype, **cd)
            self._prod_hat = None  # the forward transform writes the tendency itself
        else:
            # the products (v^2 - u^2, u v), their spectra (zeros: a pruned forward transform
            # leaves the columns beyond at zero), and the combination's factors, real numbers in
            # the complex dtype (as the stepper's coefficients: no conversion per call)
            kx, ky = g64.kx, g64.ky
            self._prod = torch.empty(2, B, n, n, dtype=g.dtype, **cd)
            self._prod_hat = torch.zeros(2, B, n, nh, dtype=g.cdtype, **cd)
            self._comb = torch.stack([-kx * ky, ky * ky - kx * kx]).to(dtype=g.cdtype, **cd)
        # the inverse and forward transforms: on CUDA one batched call; on CPU (MKL) at n >= 96
        # one call per field over (members, n, n//2+1): the inverse ones measured 1.5-3x faster
        # than one batched call (benchmarks/bench_dns.py), the basdevant form's two forward ones
        # 1.02-1.2x (rfft2 at 128^2 x 8 to 512^2 x 2, 1 thread, 2026-12-07; the same bits)
        self.split_transforms = g.device.type == "cpu" and n >= 96
        self._product = self._combine = None  # the compiled kernels (compile)
        self._bands = None  # (rows, cols, factor view, spectra view) per block (set_bands)
        self._comb_parts = None  # the combination's operands, whole or per block
        self.prune_inverse, self.prune_forward, self._cols = False, False, nh  # set_prune
        self._half = self._rows = None
        self.set_bands(None)

    @property
    def n_transforms(self) -> int:
        """The 2D transforms of one call, one per field transformed back and per product: 4
        inverse + 1 forward (advective), or 2 + 2 (basdevant)."""
        return self._phys.shape[0] + self._prod.shape[0]

    def set_prune(self, cols: int | None, forward: bool = False) -> None:
        """Pruned transforms (``dns.prune``; ``cols`` None: none): the state is zero in the
        columns kx >= ``cols`` of the rfft layout (``cols``: the last column of
        :func:`turbtl.fused.band_slices` + 1, n//3 + 1 for the 2/3 mask), so

        - the inverse transforms are a complex FFT along y of the first ``cols`` columns
          only, then a real inverse FFT along x (which zero-pads the rest): a 2D inverse
          transform is these two passes, and the first one skips a third of its columns
          (about 1/6 of the transform's work; the spectral fields then fill (.., n, cols)
          instead of (.., n, n//2+1));
        - with ``forward`` (``dns.prune: both``), the forward transforms of the products are a
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
        nf, B, cd = self._phys.shape[0], self._phys.shape[1], dict(dtype=g.cdtype, device=g.device)
        self._spec = torch.zeros(nf, B, n, w, **cd)
        self._facw = self._fac[..., :w].contiguous() if self.prune_inverse else self._fac
        self._half = torch.empty(nf, B, n, w, **cd) if self.prune_inverse else None
        self._rows = torch.empty(self._prod.shape[0], B, n, nh, **cd) if self.prune_forward else None
        if self._prod_hat is not None:
            self._prod_hat.zero_()
        self.set_bands(None)

    def set_bands(self, slices) -> None:
        """Form the spectral fields (and, in the basdevant form, the combination) on the blocks
        ``slices`` of the state only (:func:`turbtl.fused.band_slices`; None: the whole layout).
        The state is zero outside them, so the fields are the same; the rest of ``_spec`` keeps
        its zeros, and the tendency is then written on the blocks only (the banded update reads
        nothing else).  (The combination on the blocks with the rest of the passes whole was
        no faster on the CPU: 0.97-1.04x over 4 grids, 2026-12-07; on CUDA twice the kernels.)"""
        self._spec.zero_()
        if slices is not None and any(c.stop > self._spec.shape[-1] for _, c in slices):
            raise ValueError("the blocks reach beyond the pruned columns: call set_prune with their last column")
        self._bands = None if slices is None else [
            (r, c, self._fac[..., r, c], self._spec[..., r, c]) for r, c in slices]
        if self._prod_hat is None:
            return
        # the combination's blocks: the bands, or the whole layout (its first columns where the
        # forward transforms are pruned: the rest of the tendency stays as the stepper zeroed it)
        whole = [(slice(None), slice(0, self._cols if self.prune_forward else self._prod_hat.shape[-1]))]
        self._comb_parts = [(r, c, self._prod_hat[0][..., r, c], self._prod_hat[1][..., r, c],
                             self._comb[0][r, c], self._comb[1][r, c])
                            for r, c in (whole if slices is None else slices)]
        if self._combine is not None:
            self.compile()  # the real views of the new blocks

    def __call__(self, omega_hat: torch.Tensor, out: torch.Tensor) -> None:
        if self._bands is None:
            w = self._spec.shape[-1]
            oh = omega_hat if w == omega_hat.shape[-1] else omega_hat[..., :w]
            torch.mul(oh.unsqueeze(0), self._facw, out=self._spec)
        else:
            for r, c, fac, spec in self._bands:
                torch.mul(omega_hat[:, r, c].unsqueeze(0), fac, out=spec)
        self._inverse()
        if self._product is not None:
            self._product(self._phys, self._prod)
        elif self.form == "advective":
            advective_product(self._phys, out=self._prod[0])
        else:
            u, v = self._phys
            torch.mul(v, v, out=self._prod[0])
            self._prod[0].addcmul_(u, u, value=-1.0)
            torch.mul(u, v, out=self._prod[1])
        self._forward(out)
        if self.form == "advective":
            return
        if self._combine is not None:
            r = torch.view_as_real
            for rr, cc, q0, q1, c0, c1 in self._combine["parts"]:
                self._combine["fn"](q0, q1, c0, c1, r(out[..., rr, cc]))
            return
        for rr, cc, q0, q1, c0, c1 in self._comb_parts:
            o = out[..., rr, cc]
            torch.mul(q0, c0, out=o)
            o.addcmul_(q1, c1)

    def _forward(self, out: torch.Tensor) -> None:
        """The forward transforms of the products ``_prod``: into the tendency ``out`` itself
        (advective: one product), or into their spectra ``_prod_hat`` (basdevant: two)."""
        dest = out.unsqueeze(0) if self._prod_hat is None else self._prod_hat
        parts = range(self._prod.shape[0]) if self.split_transforms else [slice(None)]
        for i in parts:
            p, o = self._prod[i], dest[i]
            if self.prune_forward:
                torch.fft.rfft(p, dim=-1, out=self._rows[i])
                torch.fft.fft(self._rows[i][..., :self._cols], dim=-2, out=o[..., :self._cols])
            else:
                torch.fft.rfft2(p, out=o)

    def compile(self) -> None:
        """Make the products one compiled kernel (:func:`turbtl.fused.fused_product` or
        :func:`turbtl.fused.fused_stress`) and, in the basdevant form, the combination one per
        block (:func:`turbtl.fused.fused_combine`, on real views); the compilation itself
        happens on the first call."""
        if self.form == "advective":
            self._product = fused.compiled(fused_product)
            return
        self._product = fused.compiled(fused_stress)
        r = torch.view_as_real
        self._combine = dict(fn=fused.compiled(fused_combine), parts=[
            (rr, cc, r(q0), r(q1), c0.real.contiguous().unsqueeze(-1), c1.real.contiguous().unsqueeze(-1))
            for rr, cc, q0, q1, c0, c1 in self._comb_parts])

    def uncompile(self) -> None:
        """Back to the eager products (a failed compilation: :meth:`turbtl.fused.SpeedUps._eager_update`)."""
        self._product = self._combine = None

    def _inverse(self) -> None:
        n = self.grid.n
        parts = range(self._spec.shape[0]) if self.split_transforms else [slice(None)]
        for i in parts:
            if self.prune_inverse:
                torch.fft.ifft(self._spec[i], dim=-2, out=self._half[i])
                torch.fft.irfft(self._half[i], n=n, dim=-1, out=self._phys[i])
            else:
                torch.fft.irfft2(self._spec[i], s=(n, n), out=self._phys[i])

    def fft_only(self, out: torch.Tensor) -> None:
        """Exactly the FFTs of one call, on its buffers (for benchmarks)."""
        self._inverse()
        self._forward(out)

    def max_velocity(self) -> torch.Tensor:
        return self._phys[:2].abs().amax(dim=(0, 2, 3))
