"""DNS solver: linear physics, conservation, energy budget, guards, streaming output."""
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import xarray as xr

from turbtl import TurbtlError
from turbtl.solver import (
    DNSSolver,
    FlowParams,
    check_resolution,
    check_timestep,
    run_dns,
)

F64 = torch.float64


def _system(**kw):
    s = dict(name="tiny", Re=100.0, kf=4, beta=0.0, mu=0.1, n_dns=32, n_les=16, dt=4e-3,
             spinup_time=0.2, sample_interval=0.1, snapshots_per_member=3, members=3,
             val_members=1, test_members=1, seed=5)
    s.update(kw)
    return s


pytestmark = pytest.mark.usefixtures("one_thread")


DNS_CFG = dict(precision="float32", cfl_max=1.0, check_every=10, resolution_decades=0.0)


def _mode(g, kx, ky, amp=1e-3):
    X, Y = g.x[None, :].double(), g.x[:, None].double()
    return amp * torch.cos(kx * X + ky * Y)


# --- linear physics ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype, rtol", [(F64, 2e-5), (torch.float32, 2e-4)])
def test_single_mode_decays_at_viscous_plus_drag_rate(dtype, rtol):
    p = FlowParams(Re=50.0, kf=4, beta=0.0, mu=0.1, n=32, dt=1e-3, force=False)
    s = DNSSolver(p, 1, dtype=dtype, seed=None)
    kx, ky = 3, 2
    s.set_state(_mode(s.grid, kx, ky)[None])
    a0 = s.omega_hat[0, ky, kx].clone()
    s.advance(1000)  # t = 1
    ratio = (s.omega_hat[0, ky, kx] / a0).to(torch.complex128)
    expect = math.exp(-(p.nu * (kx**2 + ky**2) + p.mu) * s.t)
    assert abs(ratio.real.item() - expect) < rtol * expect
    assert abs(ratio.imag.item()) < 1e-6
    # linear and unforced: no other mode is excited
    other = s.omega_hat.clone()
    other[0, ky, kx] = 0
    assert other.abs().max() < 1e-5 * abs(a0)


def test_rossby_wave_propagates_west_at_rossby_frequency():
    beta, kx, ky = 5.0, 2, 1
    p = FlowParams(Re=math.inf, kf=4, beta=beta, mu=0.0, n=16, dt=1e-3, force=False)
    s = DNSSolver(p, 1, dtype=F64, seed=None)
    s.set_state(_mode(s.grid, kx, ky, 1.0)[None])
    s.advance(1000)
    # omega = cos(kx x + ky y - w t) with w = -beta kx / k^2 (westward phase speed -beta/k^2)
    w = -beta * kx / (kx**2 + ky**2)
    X, Y = s.grid.x[None, :].double(), s.grid.x[:, None].double()
    expect = torch.cos(kx * X + ky * Y - w * s.t)
    assert torch.allclose(s.omega[0], expect, rtol=0, atol=2e-5)  # AB2 phase error ~3e-6
    wrong = torch.cos(kx * X + ky * Y + w * s.t)  # the opposite sign convention
    assert not torch.allclose(s.omega[0], wrong, atol=1e-2)


def test_forcing_reaches_laminar_steady_state():
    p = FlowParams(Re=20.0, kf=2, beta=0.0, mu=0.1, n=16, dt=1e-2)
    s = DNSSolver(p, 1, dtype=F64, seed=None)
    s.advance(5000)  # t = 50 >> 1/(mu + nu kf^2) = 3.3: transient exp(-15)
    X, Y = s.grid.x[None, :].double(), s.grid.x[:, None].double()
    lam = p.kf * (torch.cos(2 * X) + torch.cos(2 * Y)) / (p.mu + p.nu * p.kf**2)
    assert torch.allclose(s.omega[0], lam, rtol=1e-4, atol=1e-4)


# --- conservation ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(F64, 1e-13), (torch.float32, 1e-5)])
def test_nonlinear_term_conserves_energy_and_enstrophy(dtype, tol):
    p = FlowParams(Re=math.inf, kf=4, beta=0.0, mu=0.0, n=32, dt=1e-3, force=False)
    s = DNSSolver(p, 3, dtype=dtype, seed=11, energy=1.0)
    J = s.nonlinear_hat()
    g = s.grid
    scale_e = torch.sqrt(g.inner(s.psi_hat, s.psi_hat) * g.inner(J, J))
    scale_z = torch.sqrt(g.inner(s.omega_hat, s.omega_hat) * g.inner(J, J))
    assert (scale_e > 0).all()
    assert (g.inner(s.psi_hat, J).abs() / scale_e).max() < tol
    assert (g.inner(s.omega_hat, J).abs() / scale_z).max() < tol
    # the same field without dealiasing is not conservative: the test can fail
    full = torch.randn(1, 32, 32, dtype=F64)
    fh = torch.fft.rfft2(full)
    u, v = torch.fft.irfft2(1j * g.ky.double() * fh * g.inv_lap.double()), torch.fft.irfft2(
        -1j * g.kx.double() * fh * g.inv_lap.double())
    wx, wy = torch.fft.irfft2(1j * g.kx.double() * fh), torch.fft.irfft2(1j * g.ky.double() * fh)
    Jn = torch.fft.rfft2(u * wx + v * wy)
    g64 = type(g)(32, dtype=F64)
    assert g64.inner(fh, Jn).abs().item() / torch.sqrt(g64.inner(fh, fh) * g64.inner(Jn, Jn)).item() > 1e-6


def test_inviscid_run_conserves_energy_and_enstrophy_to_second_order():
    drift = {}
    for dt in (2e-3, 1e-3):
        p = FlowParams(Re=math.inf, kf=4, beta=3.0, mu=0.0, n=32, dt=dt, force=False)
        s = DNSSolver(p, 2, dtype=F64, seed=3, energy=1.0)
        e0, z0 = s.energy(), s.enstrophy()
        s.advance(int(round(0.5 / dt)))
        drift[dt] = ((s.energy() / e0 - 1).abs().max().item(), (s.enstrophy() / z0 - 1).abs().max().item())
    assert max(drift[2e-3]) < 1e-4
    for i in range(2):  # AB2 error: halving dt divides the drift by 4
        assert 3.0 < drift[2e-3][i] / drift[1e-3][i] < 5.0


@pytest.mark.slow
def test_energy_budget_closes_in_steady_state():
    """Time-averaged injection = dissipation + drag (statistically steady, 32^2)."""
    p = FlowParams(Re=60.0, kf=4, beta=0.0, mu=0.1, n=32, dt=5e-3)
    s = DNSSolver(p, 4, dtype=F64, seed=2, check_every=100)
    s.advance(int(30 / p.dt))  # spin-up
    every, nsamp = 10, 1000  # average over 50 time units
    acc = {k: 0.0 for k in ("injection", "dissipation", "drag")}
    e0 = s.energy().mean().item()
    for _ in range(nsamp):
        s.advance(every)
        b = s.budget()
        for k in acc:
            acc[k] += b[k].mean().item() / nsamp
    T = nsamp * every * p.dt
    de_dt = (s.energy().mean().item() - e0) / T
    inj, out = acc["injection"], acc["dissipation"] + acc["drag"]
    assert acc["dissipation"] > 0.05 * inj and acc["drag"] > 0.05 * inj  # both sinks matter
    assert abs(inj - out) < 0.03 * inj
    assert abs(inj - out - de_dt) < 0.01 * inj


# --- initial condition ------------------------------------------------------------------
def test_random_initial_condition():
    p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=32, dt=1e-3)
    a = DNSSolver(p, 3, dtype=F64, seed=7, energy=2.0)
    b = DNSSolver(p, 3, dtype=torch.float32, seed=7, energy=2.0)
    c = DNSSolver(p, 3, dtype=F64, seed=8, energy=2.0)
    assert torch.allclose(a.energy(), torch.full((3,), 2.0, dtype=F64))
    assert torch.allclose(a.omega.float(), b.omega, atol=1e-4)  # same field in both precisions
    assert not torch.allclose(a.omega, c.omega)
    assert not torch.allclose(a.omega[0], a.omega[1])  # independent members
    from turbtl.spectra import energy_enstrophy_spectra

    k, e, _ = energy_enstrophy_spectra(a.omega)
    assert abs(int(np.argmax(e)) - p.kf) <= 1


# --- guards ------------------------------------------------------------------------------
def test_check_timestep_rejects_clearly_unstable_dt():
    p = FlowParams.from_config(_system(dt=0.2), "fast")
    with pytest.raises(TurbtlError, match=r"reduce systems\.fast\.dt to at most"):
        check_timestep(p, 1.0)
    assert check_timestep(FlowParams.from_config(_system(), "ok"), 1.0) < 1.0
    with pytest.raises(TurbtlError, match="Rossby"):
        check_timestep(FlowParams.from_config(_system(beta=200.0, dt=0.01, Re=1.0), "b"), 1e9)


def _no_outputs(path):
    assert not path.exists()
    assert not [f for f in os.listdir(path.parent) if f.startswith(f".{path.name}")]


def test_cfl_guard_raises_and_leaves_no_file(tmp_path, monkeypatch):
    import turbtl.equation as S

    monkeypatch.setattr(S, "initial_energy", lambda p: 400.0)  # a flow far too fast for dt
    out = tmp_path / "x.nc"
    with pytest.raises(TurbtlError) as e:
        run_dns(_system(name="x"), out, dns_cfg=DNS_CFG, progress=False)
    msg = str(e.value)
    assert msg.startswith("CFL ") and "> cfl_max 1.0" in msg and "in system 'x'" in msg
    assert "reduce systems.x.dt to below" in msg
    _no_outputs(out)


def test_nan_guard_raises_and_leaves_no_file(tmp_path, monkeypatch):
    import turbtl.equation as S

    monkeypatch.setattr(S, "initial_energy", lambda p: float("nan"))
    out = tmp_path / "y.nc"
    with pytest.raises(TurbtlError, match=r"non-finite vorticity .* system 'y'.*fix: reduce systems\.y\.dt"):
        run_dns(_system(name="y"), out, dns_cfg=DNS_CFG, progress=False)
    _no_outputs(out)


def test_solver_guard_checks_every_check_every_steps():
    p = FlowParams(Re=100.0, kf=4, beta=0.0, mu=0.1, n=16, dt=1e-3)
    s = DNSSolver(p, 1, seed=1, check_every=7, cfl_max=1e-6)
    with pytest.raises(TurbtlError, match=r"CFL .* at t=0\.007 "):
        s.advance(20)  # the first check is after step 7
    assert s.nstep == 7


def test_resolution_check_unit():
    k = np.arange(17.0)
    z = 10.0 ** -(0.3 * k)
    assert check_resolution(k, z, 32, 2.0) == pytest.approx(0.3 * 9)  # peak at k=1, cut-off k=10
    with pytest.raises(TurbtlError, match=r"under-resolved.*raise systems\.f\.n_dns \(now 32\) or lower"):
        check_resolution(k, z, 32, 3.0, "f")


def test_underresolved_config_fails_and_leaves_no_file(tmp_path):
    out = tmp_path / "u.nc"
    sysc = _system(name="u", Re=5000.0, n_dns=16, n_les=8, dt=2e-3, spinup_time=1.0)
    with pytest.raises(TurbtlError, match="under-resolved"):
        run_dns(sysc, out, dns_cfg=dict(DNS_CFG, resolution_decades=2.0), progress=False)
    _no_outputs(out)


# --- output ------------------------------------------------------------------------------
def test_run_dns_output_format(tmp_path):
    out = tmp_path / "dns" / "tiny.nc"
    info = run_dns(_system(), out, dns_cfg=DNS_CFG, progress=False)
    ds = xr.open_dataset(out, engine="netcdf4")
    assert ds.omega.dims == ("member", "time", "y", "x")
    assert ds.omega.shape == (3, 3, 32, 32) and ds.omega.dtype == np.float32
    for v in ("omega", "energy", "enstrophy", "x", "y", "time"):
        assert "long_name" in ds[v].attrs and "units" in ds[v].attrs
    assert np.allclose(ds.time.values, [0.2, 0.3, 0.4])
    assert np.allclose(ds.x.values, np.arange(32) * 2 * np.pi / 32)
    assert list(ds.member.values) == [0, 1, 2]
    for key in ("Re", "kf", "beta", "mu", "n_dns", "n_les", "dt", "spinup_time", "sample_interval",
                "snapshots_per_member", "members", "seed", "name", "precision", "beta_sign",
                "turbtl_version"):
        assert key in ds.attrs, key
    assert ds.attrs["beta_sign"] == "+beta*v on the left-hand side"
    z = 0.5 * (ds.omega.astype("f8") ** 2).mean(("x", "y"))
    assert np.allclose(z.values, ds.enstrophy.values, rtol=1e-5)
    assert info["max_cfl"] > 0 and ds.attrs["max_cfl"] == pytest.approx(info["max_cfl"])
    ds.close()


def test_float64_precision_runs(tmp_path):
    out = tmp_path / "d.nc"
    run_dns(_system(snapshots_per_member=1), out, dns_cfg=dict(DNS_CFG, precision="float64"), progress=False)
    with xr.open_dataset(out, engine="netcdf4") as ds:
        assert ds.attrs["precision"] == "float64" and ds.omega.dtype == np.float32


_RSS = textwrap.dedent("""
    import resource, sys, torch
    from turbtl.solver import run_dns
    torch.set_num_threads(1)
    s = dict(name="m", Re=100.0, kf=4, beta=0.0, mu=0.1, n_dns=128, n_les=32, dt=1e-3, spinup_time=0.0,
             sample_interval=1e-3, snapshots_per_member=int(sys.argv[1]), members=4, seed=1)
    run_dns(s, sys.argv[2], dns_cfg=dict(precision="float32", cfl_max=1.0, check_every=50,
            resolution_decades=0.0), progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.slow
def test_dns_output_streams_peak_memory_flat(tmp_path):
    """Peak RSS does not grow with the number of snapshots (each one is 256 KiB)."""
    rss = {}
    for nsnap in (2, 160):  # 160 snapshots = 40 MiB if they were kept in memory
        r = subprocess.run([sys.executable, "-c", _RSS, str(nsnap), str(tmp_path / f"{nsnap}.nc")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        rss[nsnap] = int(r.stdout.split()[-1]) / 1024  # MiB
    assert rss[160] - rss[2] < 12, rss
    with xr.open_dataset(tmp_path / "160.nc", engine="netcdf4") as ds:
        assert ds.omega.shape == (4, 160, 128, 128)
