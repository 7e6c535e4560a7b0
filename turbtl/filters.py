"""Filtering, coarse-graining and the SGS term Pi.

Definitions (docs/DESIGN.md, docs/science.md):

- filter width ``Delta = width_factor * L / n_les`` (L = 2*pi);
- transfer functions: ``gaussian`` G(k) = exp(-|k|^2 Delta^2 / 24); ``box`` (top-hat of
  width Delta in x and in y) G = sinc(kx Delta/2) sinc(ky Delta/2) with sinc(s) = sin(s)/s;
  ``spectral`` (sharp cut-off) G = 1 for |k| < pi/Delta, else 0 (radial);
- coarse-graining = spectral truncation from the n_dns to the n_les grid: the modes with
  |kx| < n_les/2 and |ky| < n_les/2 are kept (a square), the LES Nyquist row/column
  (|k| = n_les/2) and everything beyond are dropped so that the coarse field is the real
  field with exactly those Fourier modes; amplitudes are multiplied by (n_les/n_dns)^2
  because the rfft is unnormalised (the grid values of a resolved field are unchanged);
- ``Pi = filter(J(psi, omega)) - J(filter psi, filter omega)`` on the LES grid, J the advective
  form u d(omega)/dx + v d(omega)/dy (equal to the conservative form for divergence-free
  u).  Both products are exact products of band-limited fields: the DNS one of the
  2/3-dealiased DNS fields (dealiased result, exact on every kept mode), the coarse one of
  the filtered, coarse-grained fields computed with 3/2 zero padding and truncated back to
  the LES grid.  An LES using the closure must compute its resolved advection the same way
  (:func:`jacobian_les_hat`).
"""
from __future__ import annotations

import logging
import math
import time as _time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import TurbtlError, __version__
from .grid import SpectralGrid, advective_product
from .io import atomic_path, cf_globals, check_finite, damaged, nc_attr, nc_field_coords, nc_set_attrs
from .runtime import progress as _progress
from .spectra import energy_enstrophy_spectra, power_spectrum

__all__ = [
    "FILTER_KINDS",
    "filter_width",
    "transfer_function",
    "resample_hat",
    "coarse_grain",
    "jacobian_dns_hat",
    "jacobian_les_hat",
    "sgs_fields",
    "member_splits",
    "filter_dns_file",
]

FILTER_KINDS = ("gaussian", "box", "spectral")
_LOG = logging.getLogger("turbtl.filters")


def filter_width(n_les: int, width_factor: float) -> float:
    """Delta = width_factor * L / n_les with L = 2*pi."""
    return float(width_factor) * 2.0 * math.pi / int(n_les)


def transfer_function(kind: str, kx: torch.Tensor, ky: torch.Tensor, delta: float) -> torch.Tensor:
    """Filter transfer function G(kx, ky) (real, broadcast of ``kx`` and ``ky``)."""
    if kind == "gaussian":
        return torch.exp(-(kx**2 + ky**2) * (delta**2 / 24.0))
    if kind == "box":
        # torch.sinc(s) = sin(pi s)/(pi s); we need sin(k Delta/2)/(k Delta/2)
        return torch.sinc(kx * (delta / (2 * math.pi))) * torch.sinc(ky * (delta / (2 * math.pi)))
    if kind == "spectral":
        kc = math.pi / delta
        return ((kx**2 + ky**2) < kc**2).to(kx.dtype)
    raise TurbtlError(f"filter.kind = {kind!r} is not known; fix: use one of {FILTER_KINDS}")


def _keep(n: int, m: int) -> int:
    """Largest |k| carried over between an n and an m grid (Nyquist modes dropped)."""
    return (min(n, m) - 1) // 2


def resample_hat(f_hat: torch.Tensor, m: int, n: int | None = None) -> torch.Tensor:
    """Move an rfft spectrum (..., n, n//2+1) of an n x n grid to an m x m grid.

    The modes with |kx|, |ky| <= (min(n, m) - 1)//2 are copied (all others are zero, the
    Nyquist modes of the smaller grid included), times (m/n)^2 so that the grid values of a
    field resolved on both grids are the same.  m < n truncates (coarse-graining), m > n
    zero-pads (used for the 3/2 rule).
    """
    n = f_hat.shape[-2] if n is None else n
    if f_hat.shape[-1] != n // 2 + 1:
        raise ValueError(f"resample_hat: shape {tuple(f_hat.shape)} is not an rfft layout of n = {n}")
    h = _keep(n, m)
    out = f_hat.new_zeros(*f_hat.shape[:-2], m, m // 2 + 1)
    scale = (m / n) ** 2
    out[..., : h + 1, : h + 1] = f_hat[..., : h + 1, : h + 1] * scale
    if h:
        out[..., m - h :, : h + 1] = f_hat[..., n - h :, : h + 1] * scale
    return out


def coarse_grain(f_hat: torch.Tensor, n_les: int) -> torch.Tensor:
    """Spectral truncation of an rfft spectrum from the n_dns grid to the n_les grid (see
    the module docstring: |kx|, |ky| < n_les/2 kept, factor (n_les/n_dns)^2)."""
    n = f_hat.shape[-2]
    if n_les > n:
        raise TurbtlError(f"n_les = {n_les} exceeds n_dns = {n}; fix: choose n_les <= n_dns")
    return resample_hat(f_hat, n_les, n)


def jacobian_dns_hat(psi_hat: torch.Tensor, omega_hat: torch.Tensor, grid: SpectralGrid) -> torch.Tensor:
    """Exact J(psi, omega) of the 2/3-dealiased DNS fields (dealiased result)."""
    return grid.jacobian_hat(psi_hat, omega_hat)


def jacobian_les_hat(psi_hat: torch.Tensor, omega_hat: torch.Tensor) -> torch.Tensor:
    """J(psi, omega) of fields on the LES grid, computed with 3/2 zero padding and
    truncated back: the exact product on every mode |kx|, |ky| < n/2 of fields whose
    modes lie in |kx|, |ky| < n/2 (the Nyquist modes are dropped first)."""
    n = psi_hat.shape[-2]
    m = 3 * n // 2 + (3 * n // 2) % 2  # even, >= 3n/2
    g = _grid(m, str(psi_hat.device), psi_hat.real.dtype)
    stack = g.jacobian_stack(resample_hat(psi_hat, m, n), resample_hat(omega_hat, m, n))
    return resample_hat(g.rfft(advective_product(g.irfft(stack))), n, m)


@lru_cache(maxsize=8)
def _grid(n: int, device: str, dtype: torch.dtype) -> SpectralGrid:
    return SpectralGrid(n, device=device, dtype=dtype)


def sgs_fields(omega_dns: torch.Tensor, n_les: int, kind: str = "gaussian", width_factor: float = 2.0,
               *, dtype: torch.dtype = torch.float64):
    """Filtered streamfunction, filtered vorticity and SGS term on the LES grid.

    ``omega_dns``: (B, N, N) DNS vorticity.  Returns ``(psi_bar, omega_bar, pi)``, each
    (B, n_les, n_les) in ``dtype`` (float64 by default: Pi is a difference of two close
    terms), with ``Pi = filter(J(psi, omega)) - J(filter psi, filter omega)``.
    """
    if kind not in FILTER_KINDS:
        raise TurbtlError(f"filter.kind = {kind!r} is not known; fix: use one of {FILTER_KINDS}")
    om = torch.as_tensor(omega_dns)
    n = om.shape[-1]
    if om.shape[-2] != n:
        raise ValueError(f"sgs_fields needs square fields, got {tuple(om.shape)}")
    if 3 * (n_les // 2 - 1) >= n:
        raise TurbtlError(f"n_les = {n_les} is too fine for n_dns = {n}: the LES modes must lie inside "
                          f"the DNS 2/3 band |k| < n_dns/3; fix: choose n_les <= {2 * (n // 3)}")
    g = _grid(n, str(om.device), dtype)
    om = om.to(dtype)
    oh = torch.fft.rfft2(om) * g.mask
    ph = oh * g.inv_lap
    G = transfer_function(kind, g.kx, g.ky, filter_width(n_les, width_factor))
    j_bar = coarse_grain(G * jacobian_dns_hat(ph, oh, g), n_les)
    o_bar = coarse_grain(G * oh, n_les)
    p_bar = coarse_grain(G * ph, n_les)
    pi_hat = j_bar - jacobian_les_hat(p_bar, o_bar)
    out = torch.fft.irfft2(torch.stack([p_bar, o_bar, pi_hat]), s=(n_les, n_les))
    return out[0], out[1], out[2]


def member_splits(members: int, val_members: int, test_members: int) -> list[str]:
    """'train' | 'val' | 'test' per member: the last ``test_members`` are test, the
    ``val_members`` before them val, the rest train."""
    members, val_members, test_members = int(members), int(val_members), int(test_members)
    n_train = members - val_members - test_members
    if n_train < 1 or val_members < 0 or test_members < 0:
        raise TurbtlError(f"members = {members} leaves no training member after val_members = {val_members} "
                          f"and test_members = {test_members}; fix: raise members or lower val/test_members")
    return ["train"] * n_train + ["val"] * val_members + ["test"] * test_members


def filter_dns_file(dns_path, out_path, spectra_path, system: dict, filter_cfg: dict, device="cpu",
                    progress: bool = True, *, chunk_points: int = 2**21, log=None) -> dict:
    """Filter a DNS file to the LES grid; write the filtered data and the spectra.

    Reads ``omega`` in chunks of time (about ``chunk_points`` DNS grid values per chunk, so
    memory stays bounded), writes each chunk of ``psi``, ``omega``, ``pi`` as it comes, and
    accumulates the time- and member-mean spectra.  Both outputs are written to temporary
    files renamed only on success.
    """
    import netCDF4

    log = log or _LOG
    kind = str(filter_cfg.get("kind", "gaussian"))
    wf = float(filter_cfg.get("width_factor", 2.0))
    name = str(system.get("name", "flow"))
    n_les = int(system["n_les"])
    delta = filter_width(n_les, wf)
    splits = member_splits(system["members"], system.get("val_members", 0), system.get("test_members", 0))
    dev = torch.device(device)
    t0 = _time.perf_counter()

    try:
        src = netCDF4.Dataset(str(dns_path), "r")
    except OSError as e:
        if not Path(dns_path).exists():
            raise TurbtlError(f"DNS file {dns_path} does not exist; fix: run the DNS (snakemake {dns_path})") from e
        raise damaged(dns_path, e) from e
    try:
        src.set_auto_mask(False)
        w = src.variables["omega"]
        members, nt, n, _ = w.shape
        if members != len(splits):
            raise TurbtlError(f"{dns_path} has {members} members but systems.{name}.members = "
                              f"{system['members']}; fix: re-run the DNS (delete the file) after changing the config")
        times = np.asarray(src.variables["time"][:], dtype=np.float64)
        src_attrs = {k: src.getncattr(k) for k in src.ncattrs()}
        tc = max(1, int(chunk_points) // (members * n * n))
        sums = {k: 0.0 for k in ("E_dns", "Z_dns", "E_les", "Z_les", "P_psi", "P_omega", "P_pi")}
        count = 0
        with atomic_path(out_path) as tmp, atomic_path(spectra_path) as tmp_s:
            dst = netCDF4.Dataset(str(tmp), "w", format="NETCDF4")
            try:
                vt = nc_field_coords(dst, members, nt, n_les, grid=" (LES grid)",
                                     time_long_name="model time since the start of the DNS")
                vt[:] = times
                v = dst.createVariable("split", str, ("member",))
                for i, s in enumerate(splits):
                    v[i] = s
                v.long_name = "data split of the member: train | val | test"
                out = {}
                for key, ln in (("psi", "filtered streamfunction (nondimensional)"),
                                ("omega", "filtered vorticity (nondimensional)"),
                                ("pi", "SGS term Pi = filter(J(psi,omega)) - J(filter psi, filter omega) "
                                       "(nondimensional)")):
                    out[key] = dst.createVariable(key, "f4", ("member", "time", "y", "x"),
                                                  chunksizes=(1, 1, n_les, n_les))
                    out[key].long_name = ln
                    out[key].units = "1"
                bar = _progress(total=nt, unit="snapshot", desc=f"filter {name}", disable=not progress)
                try:
                    for a in range(0, nt, tc):
                        b = min(nt, a + tc)
                        om = np.asarray(w[:, a:b], dtype=np.float32)  # (members, tc, n, n)
                        check_finite(om, dns_path, "omega", time_offset=a)
                        x = torch.from_numpy(om).to(dev).reshape(-1, n, n)
                        pb, ob, pi = sgs_fields(x, n_les, kind, wf)
                        shape = (members, b - a, n_les, n_les)
                        fields = {"psi": pb, "omega": ob, "pi": pi}
                        for key, f in fields.items():
                            out[key][:, a:b] = f.reshape(shape).to("cpu", torch.float32).numpy()
                        m = members * (b - a)
                        _, e, z = energy_enstrophy_spectra(om.reshape(-1, n, n))
                        sums["E_dns"] += e * m
                        sums["Z_dns"] += z * m
                        _, e, z = energy_enstrophy_spectra(ob)
                        sums["E_les"] += e * m
                        sums["Z_les"] += z * m
                        for key, f in fields.items():
                            sums["P_" + key] += power_spectrum(f)[1] * m
                        count += m
                        bar.update(b - a)
                finally:
                    bar.close()
                attrs = dict(system)
                attrs.update(name=name, filter_kind=kind, filter_width=delta, filter_width_factor=wf,
                             n_dns=int(n), n_les=n_les, turbtl_version=__version__,
                             pi_definition="Pi = filter(J(psi,omega)) - J(filter psi, filter omega); DNS "
                                           "product of 2/3-dealiased fields, LES product with 3/2 padding",
                             coarse_graining="spectral truncation to |kx|,|ky| < n_les/2 (LES Nyquist "
                                             "dropped), amplitude factor (n_les/n_dns)^2")
                for k in ("precision", "beta_sign", "forcing", "initial_energy", "equation"):
                    if k in src_attrs:
                        attrs[k] = src_attrs[k]
                nc_set_attrs(dst, attrs, title=f"filtered fields and SGS term Pi of flow {name} on the LES grid")
            finally:
                dst.close()
            spectra = _spectra_dataset({k: s / count for k, s in sums.items()}, n, n_les, attrs)
            for k, v in cf_globals(f"spectra of the DNS and filtered fields of flow {name}").items():
                spectra.attrs.setdefault(k, v)
            spectra.to_netcdf(tmp_s, engine="netcdf4")
    finally:
        src.close()
    wall = _time.perf_counter() - t0
    log.info("filtered %s: %d snapshots x %d members, %d^2 -> %d^2, %s filter Delta = %.4f, %.2f s",
             name, nt, members, n, n_les, kind, delta, wall)
    return {"name": name, "snapshots": nt * members, "wall_s": wall}


def _spectra_dataset(s: dict, n: int, n_les: int, attrs: dict):
    import xarray as xr

    desc = {
        "E_dns": ("k_dns", "energy spectrum of the DNS vorticity (time- and member-mean)"),
        "Z_dns": ("k_dns", "enstrophy spectrum of the DNS vorticity (time- and member-mean)"),
        "E_les": ("k_les", "energy spectrum of the filtered vorticity"),
        "Z_les": ("k_les", "enstrophy spectrum of the filtered vorticity"),
        "P_psi": ("k_les", "power spectrum of the filtered streamfunction"),
        "P_omega": ("k_les", "power spectrum of the filtered vorticity"),
        "P_pi": ("k_les", "power spectrum of the SGS term Pi"),
    }
    data = {k: (d, np.asarray(s[k], dtype=np.float64), {"long_name": ln, "units": "1"})
            for k, (d, ln) in desc.items()}
    coords = {"k_dns": ("k_dns", np.arange(n // 2 + 1, dtype=np.float64),
                        {"long_name": "shell wavenumber |k| (DNS grid)", "units": "1"}),
              "k_les": ("k_les", np.arange(n_les // 2 + 1, dtype=np.float64),
                        {"long_name": "shell wavenumber |k| (LES grid)", "units": "1"})}
    return xr.Dataset(data, coords=coords, attrs={k: nc_attr(v) for k, v in attrs.items()})
