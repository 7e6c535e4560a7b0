"""Filters, coarse-graining and the SGS term Pi (against brute-force Fourier sums)."""
import math
import os

import numpy as np
import pytest
import torch
import xarray as xr

from turbtl import TurbtlError
from turbtl.filters import (
    coarse_grain,
    filter_dns_file,
    filter_width,
    member_splits,
    sgs_fields,
    transfer_function,
)
from turbtl.grid import dealias_mask

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _xy(n):
    x = torch.arange(n, dtype=F64) * 2 * math.pi / n
    return x[None, :], x[:, None]


def _bandlimited(n, kmax, batch=2, seed=0, radial=False):
    """Random real field on an n grid with modes |kx|, |ky| <= kmax (or |k| <= kmax)."""
    g = torch.Generator().manual_seed(seed)
    fh = torch.fft.rfft2(torch.randn(batch, n, n, generator=g, dtype=F64))
    k = np.fft.fftfreq(n, 1.0 / n)
    kx = np.fft.rfftfreq(n, 1.0 / n)
    if radial:
        keep = (k[:, None] ** 2 + kx[None, :] ** 2) <= kmax**2
    else:
        keep = (np.abs(k)[:, None] <= kmax) & (kx[None, :] <= kmax)
    return torch.fft.irfft2(fh * torch.tensor(keep), s=(n, n))


@pytest.mark.parametrize("kind", ["gaussian", "box", "spectral"])
def test_filter_transfer_on_single_modes(kind):
    N, n_les, wf = 64, 16, 2.0
    delta = filter_width(n_les, wf)
    assert delta == pytest.approx(2.0 * 2 * math.pi / 16)
    X, Y = _xy(N)
    # sharp cut-off at kc = pi/Delta = 4 exactly, radial, |k| = kc itself cut (documented
    # "G = 1 for |k| < pi/Delta, else 0"): (3, 3) and (3, -3) lie inside the square |kx|, |ky| < 4
    # but outside the circle, (4, 0) and (0, 4) on the circle
    sharp_kept = {(1, 0), (3, 2), (2, 3), (3, -2), (2, -2)}
    modes = [(1, 0), (3, 2), (0, 5), (4, 4), (7, 1), (3, 3), (3, -3), (4, 0), (0, 4), (2, 3), (3, -2), (2, -2)]
    for kx, ky in modes:
        om = torch.cos(kx * X + ky * Y)[None]
        _, ob, _ = sgs_fields(om, n_les, kind, wf)
        Xl, Yl = _xy(n_les)
        if kind == "gaussian":
            G = math.exp(-(kx**2 + ky**2) * delta**2 / 24)
        elif kind == "box":
            s = lambda a: 1.0 if a == 0 else math.sin(a * delta / 2) / (a * delta / 2)  # noqa: E731
            G = s(kx) * s(ky)
        else:
            G = float((kx, ky) in sharp_kept)
        assert torch.allclose(ob[0], G * torch.cos(kx * Xl + ky * Yl), atol=1e-12), (kx, ky)


def test_gaussian_transfer_function_formula():
    kx = torch.arange(10, dtype=F64)[None, :]
    ky = torch.arange(10, dtype=F64)[:, None]
    G = transfer_function("gaussian", kx, ky, 0.5)
    assert torch.allclose(G, torch.exp(-(kx**2 + ky**2) * 0.25 / 24))
    with pytest.raises(TurbtlError, match="fix: use one of"):
        transfer_function("tophat", kx, ky, 0.5)


def test_coarse_graining_of_a_resolved_field_is_exact():
    N, n = 96, 24
    f = _bandlimited(N, n // 2 - 1, batch=3, seed=1)  # every mode representable on the LES grid
    fc = torch.fft.irfft2(coarse_grain(torch.fft.rfft2(f), n), s=(n, n))
    assert torch.allclose(fc, f[:, :: N // n, :: N // n], atol=1e-12)
    # the LES Nyquist mode is dropped (documented): cos(n/2 x) coarse-grains to 0
    X, _ = _xy(N)
    nyq = torch.cos(n // 2 * X).expand(N, N)[None]
    assert torch.fft.irfft2(coarse_grain(torch.fft.rfft2(nyq), n), s=(n, n)).abs().max() < 1e-12


def test_pi_vanishes_for_sharp_filter_on_bandlimited_fields():
    N, n_les = 64, 32  # LES cut-off 16, sharp filter at pi/Delta = 8
    om = _bandlimited(N, n_les // 8 - 1e-9, batch=2, seed=2, radial=True)  # |k| < 4
    _, ob, pi = sgs_fields(om, n_les, "spectral", 2.0)
    _, _, pi_g = sgs_fields(om, n_les, "gaussian", 2.0)
    assert ob.abs().max() > 0.1
    assert pi.abs().max() < 1e-10 * pi_g.abs().max()  # and the Gaussian filter does give a Pi
    assert pi_g.abs().max() > 1e-5


def _conv(a, b, modes, targets):
    """Explicit Fourier convolution: (a*b)_hat(k) = sum_{p+q=k} a(p) b(q), coefficients
    normalised (f = sum_k c_k e^{ik.x}); modes: list of integer (kx, ky)."""
    idx = {m: i for i, m in enumerate(modes)}
    out = np.zeros(len(targets), dtype=complex)
    for t, (kx, ky) in enumerate(targets):
        s = 0j
        for i, (px, py) in enumerate(modes):
            j = idx.get((kx - px, ky - py))
            if j is not None:
                s += a[i] * b[j]
        out[t] = s
    return out


def _brute_jacobian(omega_c, modes, targets):
    kx = np.array([m[0] for m in modes], float)
    ky = np.array([m[1] for m in modes], float)
    k2 = kx**2 + ky**2
    psi = np.where(k2 > 0, omega_c / np.where(k2 > 0, k2, 1), 0)
    u, v = 1j * ky * psi, -1j * kx * psi
    wx, wy = 1j * kx * omega_c, 1j * ky * omega_c
    return _conv(u, wx, modes, targets) + _conv(v, wy, modes, targets)


@pytest.mark.parametrize("kind", ["gaussian", "box"])
def test_pi_matches_brute_force_fourier_sums(kind):
    N, n_les, wf = 24, 8, 2.0
    om = torch.randn(2, N, N, generator=torch.Generator().manual_seed(4), dtype=F64)  # all modes
    pb, ob, pi = sgs_fields(om, n_les, kind, wf)
    delta = filter_width(n_les, wf)
    k = np.rint(np.fft.fftfreq(N, 1.0 / N)).astype(int)
    mask = dealias_mask(N, full=True)
    dns_modes = [(k[j], k[i]) for i in range(N) for j in range(N) if mask[i, j]]
    h = n_les // 2 - 1
    les_modes = [(a, b) for a in range(-h, h + 1) for b in range(-h, h + 1)]
    kxl = np.array([m[0] for m in les_modes], float)
    kyl = np.array([m[1] for m in les_modes], float)
    G = transfer_function(kind, torch.tensor(kxl), torch.tensor(kyl), delta).numpy()
    for b in range(2):
        c = np.fft.fft2(om[b].numpy()) / N**2
        dns_c = np.array([c[ky % N, kx % N] for kx, ky in dns_modes])
        J = _brute_jacobian(dns_c, dns_modes, les_modes)  # exact product of the dealiased fields
        bar = G * np.array([c[ky % N, kx % N] for kx, ky in les_modes])
        Jles = _brute_jacobian(bar, les_modes, les_modes)  # exact product of the filtered fields
        want = G * J - Jles
        got_full = np.fft.fft2(pi[b].numpy()) / n_les**2
        got = np.array([got_full[ky % n_les, kx % n_les] for kx, ky in les_modes])
        assert np.abs(got - want).max() < 1e-12 * np.abs(want).max()
        assert np.abs(want).max() > 1e-3
        # nothing on the LES Nyquist row/column
        assert np.abs(got_full[n_les // 2]).max() < 1e-13 and np.abs(got_full[:, n_les // 2]).max() < 1e-13
        ob_full = np.fft.fft2(ob[b].numpy()) / n_les**2
        assert np.allclose([ob_full[ky % n_les, kx % n_les] for kx, ky in les_modes], bar, atol=1e-14)
        # psi_bar = inverse Laplacian of omega_bar
        k2 = kxl**2 + kyl**2
        pb_full = np.fft.fft2(pb[b].numpy()) / n_les**2
        pbv = np.array([pb_full[ky % n_les, kx % n_les] for kx, ky in les_modes])
        assert np.allclose(pbv * k2, bar * (k2 > 0), atol=1e-14)


def test_member_splits_rule():
    assert member_splits(8, 1, 1) == ["train"] * 6 + ["val", "test"]
    assert member_splits(5, 2, 1) == ["train", "train", "val", "val", "test"]
    with pytest.raises(TurbtlError, match="fix"):
        member_splits(2, 1, 1)


def _dns_file(tmp_path):
    from turbtl.solver import run_dns

    s = dict(name="tiny", Re=100.0, kf=4, beta=0.0, mu=0.1, n_dns=32, n_les=16, dt=4e-3, spinup_time=0.4,
             sample_interval=0.1, snapshots_per_member=5, members=4, val_members=1, test_members=1, seed=3)
    p = tmp_path / "dns.nc"
    run_dns(s, p, dns_cfg=dict(precision="float32", cfl_max=1.0, check_every=20, resolution_decades=0.0),
            progress=False)
    return s, p


def _shell_spectrum(f):
    """Member- and time-mean shell spectrum of real fields (..., n, n), straight from the
    documented definition (turbtl/spectra.py): sum of |f_hat|^2 / n^4 over the full 2D FFT in
    the shells k - 1/2 <= |k| < k + 1/2, k = 0 .. n//2 (corner modes beyond left out)."""
    f = np.asarray(f, dtype=np.float64)
    n = f.shape[-1]
    p = (np.abs(np.fft.fft2(f)) ** 2 / n**4).reshape(-1, n, n).mean(axis=0)
    k = np.fft.fftfreq(n, 1.0 / n)
    shell = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
    return np.array([p[shell == j].sum() for j in range(n // 2 + 1)])


def test_filter_dns_file_format_and_chunking(tmp_path):
    s, dns = _dns_file(tmp_path)
    fcfg = dict(kind="gaussian", width_factor=2.0)
    out, spec = tmp_path / "f.nc", tmp_path / "s.nc"
    filter_dns_file(dns, out, spec, s, fcfg, "cpu", progress=False, chunk_points=4 * 32 * 32 * 2)  # 3 chunks
    out1, spec1 = tmp_path / "f1.nc", tmp_path / "s1.nc"
    filter_dns_file(dns, out1, spec1, s, fcfg, "cpu", progress=False)  # one chunk
    with xr.open_dataset(out, engine="netcdf4") as ds, xr.open_dataset(out1, engine="netcdf4") as d1, \
            xr.open_dataset(dns, engine="netcdf4") as src:
        for v in ("psi", "omega", "pi"):
            assert ds[v].dims == ("member", "time", "y", "x") and ds[v].shape == (4, 5, 16, 16)
            assert ds[v].dtype == np.float32 and "long_name" in ds[v].attrs and "units" in ds[v].attrs
            np.testing.assert_array_equal(ds[v].values, d1[v].values)
        assert list(ds.split.values) == ["train", "train", "val", "test"]
        assert ds.attrs["filter_kind"] == "gaussian"
        assert ds.attrs["filter_width"] == pytest.approx(2 * 2 * math.pi / 16)
        assert ds.attrs["n_dns"] == 32 and ds.attrs["n_les"] == 16 and ds.attrs["Re"] == 100.0
        np.testing.assert_allclose(ds.time.values, src.time.values)
        # the same as sgs_fields on one snapshot
        _, ob, pi = sgs_fields(torch.from_numpy(src.omega.values[2, 3][None]), 16, "gaussian", 2.0)
        np.testing.assert_allclose(ds.pi.values[2, 3], pi[0].numpy(), rtol=1e-5, atol=1e-5 * float(pi.abs().max()))
        # the spectra written = the spectra of the fields written (mean over members and times),
        # computed here from the definition: P = shell sum, Z = P_omega / 2, E = P_omega / (2 k^2)
        want = {"P_" + v: _shell_spectrum(ds[v].values) for v in ("psi", "omega", "pi")}
        p_dns = _shell_spectrum(src.omega.values)
    k_dns, k_les = np.arange(17.0), np.arange(9.0)
    want.update(Z_les=want["P_omega"] / 2, Z_dns=p_dns / 2,
                E_les=np.r_[0.0, want["P_omega"][1:] / (2 * k_les[1:] ** 2)],
                E_dns=np.r_[0.0, p_dns[1:] / (2 * k_dns[1:] ** 2)])
    with xr.open_dataset(spec, engine="netcdf4") as sp, xr.open_dataset(spec1, engine="netcdf4") as sp1:
        assert sp.E_dns.dims == ("k_dns",) and sp.sizes["k_dns"] == 17 and sp.sizes["k_les"] == 9
        np.testing.assert_array_equal(sp.k_dns.values, k_dns)
        np.testing.assert_array_equal(sp.k_les.values, k_les)
        for v in ("E_dns", "Z_dns", "E_les", "Z_les", "P_psi", "P_omega", "P_pi"):
            assert np.all(np.isfinite(sp[v].values)) and "long_name" in sp[v].attrs
            assert sp[v].dims == (("k_dns",) if v.endswith("_dns") else ("k_les",)), v
            # float32 fields on file, float64 spectra accumulated before the cast (seen: <= 2e-7)
            np.testing.assert_allclose(sp[v].values, want[v], rtol=1e-6, atol=1e-10 * want[v].max(), err_msg=v)
            np.testing.assert_allclose(sp[v].values, sp1[v].values, rtol=1e-12, err_msg=v)  # chunking
            assert want[v][1:6].min() > 1e-3 * want[v].max(), v  # the shells compared carry power
        assert np.all(sp.Z_les.values[1:6] <= sp.Z_dns.values[1:6] * (1 + 1e-6))  # filtering removes enstrophy


def test_filter_dns_file_error_leaves_no_file(tmp_path):
    s, dns = _dns_file(tmp_path)
    out, spec = tmp_path / "f.nc", tmp_path / "s.nc"
    with pytest.raises(TurbtlError, match="filter.kind"):
        filter_dns_file(dns, out, spec, s, dict(kind="tophat", width_factor=2.0), "cpu", progress=False)
    with pytest.raises(TurbtlError, match="members"):
        filter_dns_file(dns, out, spec, dict(s, members=5, val_members=1), dict(kind="box", width_factor=2.0),
                        "cpu", progress=False)
    assert not out.exists() and not spec.exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


def test_non_finite_dns_stops_the_filter_naming_the_place(tmp_path):
    import netCDF4

    s, dns = _dns_file(tmp_path)
    with netCDF4.Dataset(str(dns), "a") as ds:
        ds.variables["omega"][2, 3, 5, 7] = np.nan
    out, spec = tmp_path / "f.nc", tmp_path / "s.nc"
    with pytest.raises(TurbtlError, match=r"'omega' holds 1 non-finite value\(s\), the first at "
                                          r"\{'member': 2, 'time': 3, 'y': 5, 'x': 7\}"):
        filter_dns_file(dns, out, spec, s, dict(kind="gaussian", width_factor=2.0), "cpu", progress=False)
    assert not out.exists() and not spec.exists()


def test_field_files_carry_the_cf_attributes(tmp_path):
    """CF-1.8 globals and axes (what a CF checker and cf-xarray look for), DNS and filtered."""
    s, dns = _dns_file(tmp_path)
    out, spec = tmp_path / "f.nc", tmp_path / "s.nc"
    filter_dns_file(dns, out, spec, s, dict(kind="gaussian", width_factor=2.0), "cpu", progress=False)
    for path in (dns, out, spec):
        with xr.open_dataset(path, engine="netcdf4") as ds:
            assert ds.attrs["Conventions"] == "CF-1.8", path
            assert ds.attrs["title"] and "turbtl" in ds.attrs["history"], path
            if "time" in ds.variables:
                assert ds["time"].attrs["axis"] == "T" and ds["x"].attrs["axis"] == "X"
                assert ds["y"].attrs["axis"] == "Y"
                for v in ds.data_vars:
                    assert "long_name" in ds[v].attrs, (path, v)
