"""DNS solver: linear physics, conservation, energy budget, guards, streaming output, resume,
the opt-in compiled step."""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import xarray as xr

from turbtl import TurbtlError
from turbtl.advection import FORMS
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


def _np_wavenumbers(n):
    """(KX, KY, k^2, 2/3 mask) of the full numpy FFT layout (n, n), ky along axis 0."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    KX, KY = k[None, :], k[:, None]
    k2 = KX**2 + KY**2
    return KX, KY, k2, (3 * np.abs(KX) < n) & (3 * np.abs(KY) < n)


def _np_psi_hat(wh, k2):
    """psi_hat = omega_hat / |k|^2 (omega = -lap psi), 0 at k = 0."""
    return np.where(k2 > 0, wh / np.where(k2 > 0, k2, 1.0), 0.0)


def _np_jacobian_hat(wh):
    """Independent reference (numpy, full complex FFT): fft2 of J(psi, omega) = u omega_x +
    v omega_y with u = psi_y, v = -psi_x, of the 2/3-masked omega_hat, masked again."""
    KX, KY, k2, m = _np_wavenumbers(wh.shape[-1])
    wh = wh * m
    psi = _np_psi_hat(wh, k2)
    u, v = np.fft.ifft2(1j * KY * psi).real, np.fft.ifft2(-1j * KX * psi).real
    wx, wy = np.fft.ifft2(1j * KX * wh).real, np.fft.ifft2(1j * KY * wh).real
    return np.fft.fft2(u * wx + v * wy) * m


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


def test_the_two_forms_of_the_tendency_agree_to_round_off_and_each_conserves():
    """dns.nonlinear: basdevant's (d_xx - d_yy)(u v) + d_xy (v^2 - u^2) and the advective
    u omega_x + v omega_y are the same 2/3-dealiased J on the kept modes (float64: 1e-12),
    each conserves energy and enstrophy to round-off, and the basdevant form makes four
    transforms where the advective one makes five.  A sign error in either derivative of the
    combination would break the agreement by O(1); a wrong form is named."""
    p = FlowParams(Re=math.inf, kf=4, beta=0.0, mu=0.0, n=64, dt=1e-3, force=False)
    out = {}
    for form in FORMS:
        s = DNSSolver(p, 3, dtype=F64, seed=11, energy=1.0, nonlinear=form)
        G = torch.zeros_like(s.omega_hat)
        s.tendency(s.omega_hat, G)
        J = G * s.grid.mask
        g = s.grid
        assert (g.inner(s.psi_hat, J).abs() / torch.sqrt(g.inner(s.psi_hat, s.psi_hat) * g.inner(J, J))).max() < 1e-13
        assert (g.inner(s.omega_hat, J).abs() / torch.sqrt(g.inner(s.omega_hat, s.omega_hat) * g.inner(J, J))).max() < 1e-13
        out[form] = J
    scale = out["advective"].abs().max()
    assert scale > 1.0
    assert (out["basdevant"] - out["advective"]).abs().max() < 1e-12 * scale
    # each half of the combination matters: the d_xy half alone is far off
    s = DNSSolver(p, 3, dtype=F64, seed=11, energy=1.0)
    s.tendency._comb[1].zero_()
    G = torch.zeros_like(s.omega_hat)
    s.tendency(s.omega_hat, G)
    assert (G * s.grid.mask - out["advective"]).abs().max() > 0.1 * scale
    with pytest.raises(TurbtlError, match="dns.nonlinear = 'rotational'; fix: use one of basdevant, advective"):
        DNSSolver(p, 1, seed=0, nonlinear="rotational")


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


# --- the tendency and the step the DNS actually takes -----------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n, dtype, tol, accel", [
    (32, F64, 1e-12, {}), (32, torch.float32, 5e-6, {}), (48, F64, 1e-12, dict(band="on", prune="both"))])
def test_dns_tendency_and_two_steps_match_an_independent_numpy_scheme(n, dtype, tol, accel, form):
    """The tendency object the step calls (turbtl.advection.Advection), in either form of
    dns.nonlinear (basdevant: (d_xx - d_yy)(u v) + d_xy (v^2 - u^2); advective), is the
    2/3-dealiased J(psi, omega) = u omega_x + v omega_y computed here in the advective form,
    and two steps (Euler, then AB2, with Crank-Nicolson viscosity, implicit drag, +beta*v on
    the left, forcing) equal the same scheme written out here with numpy's full complex FFT."""
    p = FlowParams(Re=200.0, kf=4, beta=8.0, mu=0.3, n=n, dt=2e-3)
    s = DNSSolver(p, 2, dtype=dtype, seed=6, energy=1.0, nonlinear=form, **accel)
    assert s.tendency.form == form and s.tendency.n_transforms == {"basdevant": 4, "advective": 5}[form]
    w0 = np.fft.fft2(s.omega.double().numpy())
    KX, KY, k2, m = _np_wavenumbers(n)
    J0 = _np_jacobian_hat(w0)
    G = torch.zeros_like(s.omega_hat)
    s.tendency(s.omega_hat, G)  # what _step_tensors calls: the rfft of T, unmasked
    nh = n // 2 + 1
    got = G.to(torch.complex128).numpy() * m[:, :nh]
    scale = np.abs(J0).max()
    assert scale > 1.0  # a nonlinear state: the term matters
    assert np.abs(got - J0[..., :nh]).max() < tol * scale
    assert np.abs(got + J0[..., :nh]).max() > 0.5 * scale  # the opposite sign is far off

    X = np.arange(n) * 2 * np.pi / n
    F = np.fft.fft2(p.kf * (np.cos(p.kf * X)[None, :] + np.cos(p.kf * X)[:, None]))

    def N(wh):  # -J(psi, omega) - beta v, v_hat = -i kx psi_hat
        return -_np_jacobian_hat(wh) + 1j * p.beta * KX * _np_psi_hat(wh, k2)

    lhs = 1.0 + 0.5 * p.dt * p.nu * k2 + p.dt * p.mu
    rhs = 1.0 - 0.5 * p.dt * p.nu * k2
    w1 = m * (rhs * w0 + p.dt * N(w0) + p.dt * F) / lhs  # forward Euler for N and F
    w2 = m * (rhs * w1 + p.dt * (1.5 * N(w1) - 0.5 * N(w0)) + p.dt * F) / lhs  # AB2
    s.step()
    assert np.abs(np.fft.fft2(s.omega.double().numpy()) - w1).max() < tol * np.abs(w1).max()
    s.step()
    got2 = np.fft.fft2(s.omega.double().numpy())
    assert np.abs(got2 - w2).max() < tol * np.abs(w2).max()
    # what the nonlinear term and beta change in these two steps is far above the tolerance
    lin = m * (rhs * (m * (rhs * w0 + p.dt * F) / lhs) + p.dt * F) / lhs
    assert np.abs(w2 - lin).max() > max(1e-3, 20 * tol) * np.abs(w2).max()


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


@pytest.mark.parametrize("n", [16, 32, 48, 64, 128, 160, 192, 384, 1024])
def test_cutoff_shell_is_the_last_shell_inside_the_dealiased_band(n):
    """The resolution checks read the enstrophy spectrum at the last shell all of whose modes
    the 2/3 rule keeps: on grids that 3 divides, shell n//3 holds masked modes (its value is
    low, the flow looks better resolved), so the check must read the shell below it."""
    from turbtl.equation import cutoff_shell, resolution_decades
    from turbtl.grid import dealias_mask
    from turbtl.spectra import shell_index

    shells, keep = shell_index(n), dealias_mask(n, full=True)
    kc = cutoff_shell(n)
    assert keep[shells == kc].all() and not keep[shells == kc + 1].all()
    assert (kc == n // 3) == (n % 3 != 0)
    z = 10.0 ** -(0.1 * np.arange(n // 2 + 1.0))
    assert resolution_decades(z, n) == pytest.approx(0.1 * (kc - 1))  # peak at k = 1


def test_underresolved_config_fails_and_leaves_no_file(tmp_path):
    out = tmp_path / "u.nc"
    sysc = _system(name="u", Re=5000.0, n_dns=16, n_les=8, dt=2e-3, spinup_time=1.0)
    with pytest.raises(TurbtlError, match="under-resolved"):
        run_dns(sysc, out, dns_cfg=dict(DNS_CFG, resolution_decades=2.0), progress=False)
    _no_outputs(out)



def test_clearly_underresolved_flow_stops_after_the_spin_up(tmp_path):
    """The first snapshot's enstrophy spectrum is checked with EARLY_RESOLUTION_MARGIN: a flow
    far short of dns.resolution_decades stops there (its remaining steps are named, no file is
    left); without a spin-up (the first snapshot is the initial condition) only the time-mean
    check at the end runs."""
    from turbtl.equation import cutoff_shell
    from turbtl.solver import EARLY_RESOLUTION_MARGIN
    from turbtl.spectra import energy_enstrophy_spectra

    sysc = _system(name="u", Re=5000.0, n_dns=16, n_les=8, dt=2e-3, spinup_time=1.0, sample_interval=0.1,
                   snapshots_per_member=50)
    total = 500 + 49 * 50
    out = tmp_path / "u.nc"
    with pytest.raises(TurbtlError, match=rf"on the first snapshot \(t = 1, .*running its {total - 500} "
                                          r"remaining steps; fix: raise systems\.u\.n_dns \(now 16\)"):
        run_dns(sysc, out, dns_cfg=dict(DNS_CFG, resolution_decades=2.0), progress=False)
    _no_outputs(out)
    # short of the requirement by less than the margin on the first snapshot: the DNS runs to the
    # end, where the time-mean check decides (here it fails: the mean is short too)
    ok = _system()
    run_dns(ok, tmp_path / "ok.nc", dns_cfg=DNS_CFG, progress=False)
    with xr.open_dataset(tmp_path / "ok.nc") as ds:
        mean = float(ds.attrs["resolution_decades_measured"])
        _, _, z = energy_enstrophy_spectra(ds.omega.values[:, 0])
    first = float(np.log10(z[1:].max() / z[cutoff_shell(32)]))
    need = first + 0.9 * EARLY_RESOLUTION_MARGIN
    assert mean < need, (first, mean)
    with pytest.raises(TurbtlError, match="time-mean") as exc:
        run_dns(ok, tmp_path / "ok2.nc", dns_cfg=dict(DNS_CFG, resolution_decades=need), progress=False)
    assert "first snapshot" not in str(exc.value)
    with pytest.raises(TurbtlError, match="under-resolved") as exc:
        run_dns(dict(sysc, spinup_time=0.0, snapshots_per_member=3), tmp_path / "v.nc",
                dns_cfg=dict(DNS_CFG, resolution_decades=2.0), progress=False)
    assert "first snapshot" not in str(exc.value) and "time-mean" in str(exc.value)


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
    # energy mean(u^2 + v^2)/2 of each stored snapshot, u = psi_y, v = -psi_x, omega = -lap psi
    KX, KY, k2, _ = _np_wavenumbers(32)
    psi = _np_psi_hat(np.fft.fft2(ds.omega.values.astype(np.float64)), k2)
    u, v = np.fft.ifft2(1j * KY * psi).real, np.fft.ifft2(-1j * KX * psi).real
    e = 0.5 * (u**2 + v**2).mean(axis=(-2, -1))
    assert e.shape == ds.energy.shape == (3, 3)
    assert np.allclose(e, ds.energy.values, rtol=1e-5, atol=0)
    assert not np.allclose(e, z.values, rtol=0.1)  # the two series are told apart
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


# --- resume ------------------------------------------------------------------------------
_CHILD = textwrap.dedent("""
    import json, logging, sys, time, torch
    torch.set_num_threads(1)
    from turbtl.solver import run_dns
    from turbtl.stepper import Stepper
    slow = float(sys.argv[3])
    if slow:  # a slower step (same arithmetic), so that the parent can signal it mid-run
        step = Stepper.step
        def slow_step(self):
            step(self)
            time.sleep(slow)
        Stepper.step = slow_step
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    info = run_dns(json.loads(sys.argv[1]), sys.argv[2], dns_cfg=json.loads(sys.argv[4]), progress=False)
    print(json.dumps({"resumes": info["resumes"]}))
""")

RESUME_CFG = dict(DNS_CFG, checkpoint_minutes=1e-9)  # a checkpoint after every block of check_every steps


def _child(system, out, slow=0.0, cfg=RESUME_CFG):
    return subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(system), str(out), str(slow), json.dumps(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_snapshots(proc, state, k, timeout=120):
    """Poll the child's checkpoint until it holds >= k snapshots."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, "the DNS finished before it could be interrupted:\n" + proc.communicate()[1]
        try:
            if state.exists() and torch.load(state, weights_only=True)["written"] >= k:
                return
        except (EOFError, RuntimeError, FileNotFoundError):  # replaced while we read it
            pass
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


def _arrays(path):
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return {v: ds[v].values.copy() for v in ("omega", "energy", "enstrophy", "time")}, dict(ds.attrs)


def test_dns_resumes_after_sigkill_and_sigterm_bit_for_bit(tmp_path):
    """Kill a running DNS (SIGKILL between checkpoints, then SIGTERM), rerun it twice: the
    output equals an uninterrupted run's exactly (same thread count, CPU)."""
    system = _system(name="r", snapshots_per_member=8, spinup_time=0.2, sample_interval=0.08)  # 50 + 7 x 20 steps
    ref = tmp_path / "ref" / "r.nc"
    p = _child(system, ref)
    out_ref, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    out = tmp_path / "run" / "r.nc"
    state = out.parent / ".r.nc.resume" / "state.pt"
    # 1. a hard kill: the state of the last checkpoint and the snapshots it counts survive
    p = _child(system, out, slow=0.01)
    _wait_for_snapshots(p, state, 2)
    p.kill()
    p.wait()
    assert not out.exists() and state.exists()
    # 2. resumed, then stopped by SIGTERM (what Slurm sends at its time limit)
    p = _child(system, out, slow=0.01)
    _wait_for_snapshots(p, state, 4)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "resuming from the checkpoint" in err and "SIGTERM received" in err and "Rerun the same job" in err
    assert not out.exists() and state.exists()
    # 3. resumed to the end: the checkpoint is gone, the output is the uninterrupted one
    p = _child(system, out)
    stdout, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert json.loads(stdout.splitlines()[-1])["resumes"] == 2
    assert not state.parent.exists()
    (a, attrs_a), (b, attrs_b) = _arrays(ref), _arrays(out)
    for v in a:
        assert np.array_equal(a[v], b[v]), v
    assert attrs_a["max_cfl"] == attrs_b["max_cfl"] and attrs_b["checkpoint_resumes"] == 2


def _crash_at(monkeypatch, nstep: int):
    """Make every DNS step raise once the stepper reaches ``nstep`` (a crash in the middle of a
    block); returns the real ``Stepper.step`` for undoing it."""
    from turbtl.stepper import Stepper

    step = Stepper.step

    def crash(self):
        if self.nstep == nstep:
            raise RuntimeError("simulated crash")
        step(self)

    monkeypatch.setattr(Stepper, "step", crash)
    return step


def test_dns_resumes_after_a_crash_in_process(tmp_path, monkeypatch, caplog):
    """An exception in the middle of a block (a crash) keeps the last checkpoint; the rerun
    continues from it, cuts the snapshots written after it, and ends bit-identical."""
    from turbtl.stepper import Stepper

    system = _system(name="c", snapshots_per_member=6, sample_interval=0.08)
    ref = tmp_path / "ref" / "c.nc"
    run_dns(system, ref, dns_cfg=DNS_CFG, progress=False)
    out = tmp_path / "c.nc"
    step = _crash_at(monkeypatch, 137)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_dns(system, out, dns_cfg=RESUME_CFG, progress=False)
    ck = out.parent / ".c.nc.resume"
    assert not out.exists() and (ck / "state.pt").exists()
    saved = torch.load(ck / "state.pt", weights_only=True)
    assert saved["solver"]["nstep"] == 130 and saved["written"] == 4  # snapshots at steps 50, 70, 90, 110, 130
    monkeypatch.setattr(Stepper, "step", step)
    with caplog.at_level("INFO"):
        info = run_dns(system, out, dns_cfg=RESUME_CFG, progress=False)
    assert "resuming from the checkpoint" in caplog.text and info["resumes"] == 1
    assert info["steps_this_run"] == 50 + 5 * 20 - 130
    assert not ck.exists()
    (a, attrs_a), (b, attrs_b) = _arrays(ref), _arrays(out)
    for v in a:
        assert np.array_equal(a[v], b[v]), v
    assert attrs_a["max_cfl"] == attrs_b["max_cfl"]


def test_dns_checkpoint_of_other_parameters_is_ignored(tmp_path, monkeypatch, caplog):
    """A checkpoint left by a run with another config is logged, deleted, and not resumed."""
    from turbtl.stepper import Stepper

    out = tmp_path / "s.nc"
    step = _crash_at(monkeypatch, 95)
    with pytest.raises(RuntimeError):
        run_dns(_system(name="s", seed=5), out, dns_cfg=RESUME_CFG, progress=False)
    assert (out.parent / ".s.nc.resume" / "state.pt").exists()
    monkeypatch.setattr(Stepper, "step", step)
    ref = tmp_path / "ref" / "s.nc"
    run_dns(_system(name="s", seed=6), ref, dns_cfg=DNS_CFG, progress=False)
    with caplog.at_level("INFO"):
        info = run_dns(_system(name="s", seed=6), out, dns_cfg=RESUME_CFG, progress=False)
    assert "ignoring the DNS checkpoint" in caplog.text and "other parameters" in caplog.text
    assert info["resumes"] == 0 and not (out.parent / ".s.nc.resume").exists()
    a, b = _arrays(ref)[0], _arrays(out)[0]
    assert all(np.array_equal(a[v], b[v]) for v in a)


def test_run_dns_restores_signal_handlers_and_validates_options(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    run_dns(_system(snapshots_per_member=1), tmp_path / "h.nc", dns_cfg=DNS_CFG, progress=False)
    assert {s: signal.getsignal(s) for s in before} == before
    with pytest.raises(TurbtlError, match="dns.cuda_graph = 'yes'; fix: use one of auto, on, off"):
        run_dns(_system(), tmp_path / "o.nc", dns_cfg=dict(DNS_CFG, cuda_graph="yes"), progress=False)
    with pytest.raises(TurbtlError, match="checkpoint_minutes"):
        run_dns(_system(), tmp_path / "o.nc", dns_cfg=dict(DNS_CFG, checkpoint_minutes=-1), progress=False)


def test_stepper_state_dict_round_trip_continues_bit_for_bit():
    p = FlowParams(Re=1000.0, kf=4, beta=10.0, mu=0.1, n=32, dt=1e-3)
    a = DNSSolver(p, 2, seed=3)
    a.advance(30)
    st = a.state_dict()
    b = DNSSolver(p, 2, seed=99)
    b.load_state_dict(st)
    a.advance(40)
    b.advance(40)
    assert torch.equal(a.omega_hat, b.omega_hat) and torch.equal(a._H, b._H) and b.nstep == 70 and b.t == a.t
    with pytest.raises(TurbtlError, match="does not fit"):
        DNSSolver(FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=16, dt=1e-3), 2).load_state_dict(st)


@pytest.mark.slow
def test_snakemake_dns_job_resumes_after_sigterm(tmp_path):
    """Through Snakemake: SIGTERM to the running dns job (as at a Slurm time limit) fails the
    job but keeps results/tiny/dns/.base.nc.resume (not an output); the next `snakemake` resumes
    from it and writes what an uninterrupted run writes."""
    from helpers_workflow import REPO, resolved, snakemake, tiny_config, write_config

    cfg = tiny_config()
    cfg["systems"]["base"]["spinup_time"] = 60.0  # 15,000 steps: long enough to be stopped
    cfg["dns"].update(checkpoint_minutes=0.002, resolution_decades=1.0)  # (the longer run is less resolved)
    conf = write_config(cfg, tmp_path / "config.yaml")
    work = tmp_path / "work"
    work.mkdir()
    out_nc = "results/tiny/dns/base.nc"
    state = work / "results" / "tiny" / "dns" / ".base.nc.resume" / "state.pt"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(conf), "--cores", "1", out_nc]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    t0 = time.monotonic()
    while not state.exists():
        assert proc.poll() is None and time.monotonic() - t0 < 300, proc.communicate()[0][-3000:]
        time.sleep(0.02)
    os.kill(torch.load(state, weights_only=True)["pid"], signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out[-3000:]
    log = (work / "results" / "tiny" / "logs" / "dns" / "base.log").read_text()
    assert "SIGTERM received" in log, log[-3000:]
    assert state.exists() and not (work / out_nc).exists()
    r = snakemake(work, conf, "--cores", "1", out_nc)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (work / "results" / "tiny" / "logs" / "dns" / "base.log").read_text()
    assert "resuming from the checkpoint" in log and not state.parent.exists()
    ref = tmp_path / "ref.nc"
    full = resolved(cfg)
    run_dns(dict(full["systems"]["base"], name="base"), ref, dns_cfg=full["dns"], progress=False)
    (a, _), (b, attrs) = _arrays(ref), _arrays(work / out_nc)
    assert all(np.array_equal(a[v], b[v]) for v in a) and attrs["checkpoint_resumes"] == 1


# --- the opt-in compiled update (on the CPU: its arithmetic and its fallback) -------------
def test_fused_update_arithmetic_matches_the_step(monkeypatch):
    """The real-view update that torch.compile fuses (run uncompiled here) makes the same
    step as the complex eager update, to float32 round-off, with beta."""
    import turbtl.fused as st

    monkeypatch.setattr(st, "compiled", lambda fn: fn)
    p = FlowParams(Re=1000.0, kf=4, beta=20.0, mu=0.1, n=32, dt=1e-3)
    eager, fused = DNSSolver(p, 2, seed=4), DNSSolver(p, 2, seed=4, compile="on")
    assert fused.acceleration == {"cuda_graph": 0, "compile": True, "band": False, "prune": "off"}
    eager.advance(100)
    fused.advance(100)
    assert fused._fused is not None and fused._compile_checked
    d = (eager.omega_hat - fused.omega_hat).abs().max() / eager.omega_hat.abs().max()
    assert 0 < d < 1e-5  # different rounding (real view), same step
    assert torch.allclose(eager._H, fused._H, rtol=0, atol=1e-5 * eager._H.abs().max().item())


# --- dns.band: the element-wise passes on the 2/3-dealiased blocks only -----------------
@pytest.mark.parametrize("n", [48, 64, 96])
def test_band_slices_hold_exactly_the_dealiased_modes(n):
    """Two row blocks (ky >= 0 and ky < 0) times the columns kx <= kmax: every mode of the
    2/3 mask is inside, and the blocks are the mask's bounding rows and columns (n = 64:
    kmax = 21, rows 0..21 and 43..63; 44% of the rfft layout)."""
    from turbtl.fused import band_slices
    from turbtl.grid import dealias_mask

    m = torch.as_tensor(dealias_mask(n))
    sl = band_slices(m)
    kmax = (n - 1) // 3
    assert [(r.start, r.stop, c.start, c.stop) for r, c in sl] == [(0, kmax + 1, 0, kmax + 1),
                                                                  (n - kmax, n, 0, kmax + 1)]
    inside = torch.zeros_like(m)
    for r, c in sl:
        inside[r, c] = True
    assert torch.equal(inside, m)  # the square mask is exactly its blocks
    assert band_slices(torch.zeros(n, n // 2 + 1, dtype=torch.bool)) == []


@pytest.mark.parametrize("beta", [0.0, 20.0])
def test_banded_step_equals_the_full_step_bit_for_bit(beta):
    """dns.band: on computes only inside the blocks; outside them the state, the history and
    the spectral fields are zero anyway, so the state is identical (Euler step, AB2 steps,
    beta, forcing), also after a state_dict round trip."""
    p = FlowParams(Re=1000.0, kf=4, beta=beta, mu=0.1, n=64, dt=1e-3)
    full, band = DNSSolver(p, 2, seed=4), DNSSolver(p, 2, seed=4, band="on")
    assert band.acceleration["band"] and band.banded and len(band._parts) == 2 and not full.banded
    full.advance(60)
    band.advance(60)
    assert torch.equal(full.omega_hat, band.omega_hat) and torch.equal(full._H, band._H)
    assert full.omega_hat.abs().max() > 0 and full.max_cfl == band.max_cfl
    restored = DNSSolver(p, 2, seed=None, band="on")
    restored.load_state_dict(band.state_dict())
    full.advance(7)
    restored.advance(7)
    assert torch.equal(full.omega_hat, restored.omega_hat)


def test_banded_fused_update_equals_the_full_fused_update(monkeypatch):
    """The compiled update's real-view arithmetic (run uncompiled) on the two blocks gives
    the same state as on the whole arrays."""
    import turbtl.fused as st

    monkeypatch.setattr(st, "compiled", lambda fn: fn)
    p = FlowParams(Re=1000.0, kf=4, beta=20.0, mu=0.1, n=48, dt=1e-3)
    full, band = DNSSolver(p, 2, seed=4, compile="on"), DNSSolver(p, 2, seed=4, compile="on", band="on")
    assert len(band._fused["parts"]) == 2 and len(full._fused["parts"]) == 1
    full.advance(40)
    band.advance(40)
    assert torch.equal(full.omega_hat, band.omega_hat) and torch.equal(full._H, band._H)


def test_band_mode_is_checked_and_skipped_where_it_saves_little():
    p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=32, dt=1e-3)
    with pytest.raises(TurbtlError, match="dns.band = 'fast'; fix: use one of auto, on, off"):
        DNSSolver(p, 1, seed=0, band="fast")
    assert DNSSolver(p, 1, seed=0, band="auto").acceleration["band"] is False  # auto: CUDA only
    assert DNSSolver(p, 1, seed=0, band=True).acceleration["band"] is True  # YAML's unquoted on
    s = DNSSolver(p, 1, seed=0)
    s.band_slices = [(slice(0, 32), slice(0, 16))]  # 94% of the layout: not worth two passes
    assert s.accelerate(band="on")["band"] is False and len(s._parts) == 1


# --- dns.prune: transforms that skip the columns the 2/3 rule zeroes --------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n,beta", [(48, 0.0), (64, 20.0), (128, 0.0)])
@pytest.mark.parametrize("prune,band", [("inverse", "off"), ("both", "off"), ("both", "on")])
def test_pruned_transforms_give_the_full_step_bit_for_bit(n, beta, prune, band, form):
    """A 2D transform is a pass along y and one along x; the pruned ones skip the columns
    kx > n/3 of the y pass (zero in, or not wanted out).  With the inverse transforms pruned
    the state and the history equal the unpruned step's bit for bit on the CPU (Euler and AB2
    steps, beta, forcing; n = 128 takes the split calls, one per field).  With the forward ones
    pruned too (``both``) they agree to float round-off: bit for bit on an AMD EPYC, but on an
    Intel Xeon MKL's transform over fewer columns rounds differently (measured after 30 steps in
    float32: 3-7e-8 of the largest vorticity mode, up to 3e-5 of the largest tendency mode, where
    the product cancels).  A pruned forward transform leaves the columns
    beyond untouched (zero)."""
    p = FlowParams(Re=1000.0, kf=4, beta=beta, mu=0.1, n=n, dt=1e-3)
    full = DNSSolver(p, 2, seed=4, nonlinear=form)
    pr = DNSSolver(p, 2, seed=4, prune=prune, band=band, nonlinear=form)
    adv = pr.tendency
    cols = (n - 1) // 3 + 1
    assert pr.acceleration["prune"] == prune and adv._cols == cols and adv._spec.shape[-1] == cols
    assert adv._spec.shape[0] == {"basdevant": 2, "advective": 4}[form]  # the fields transformed back
    assert adv.prune_forward == (prune == "both") and adv.split_transforms == (n >= 96)
    full.advance(30)
    pr.advance(30)
    assert full.omega_hat.abs().max() > 0

    def same(a, b, rtol=1e-5):  # bit for bit, or (pruned forward transforms) to float32 round-off
        if prune == "inverse":  # (a wrong column would be off by O(1); a tendency cancels, hence
            return torch.equal(a, b)  # its looser bound)
        return bool((a - b).abs().max() <= rtol * a.abs().max())

    assert same(full.omega_hat, pr.omega_hat) and same(full._H, pr._H, 1e-3)
    assert same(full.tendency._phys, adv._phys)  # the physical fields themselves
    if prune == "both":
        assert not pr._G[..., cols:].any()  # never written
        assert full._G[..., cols:].abs().max() > 0  # the full transform's aliased columns (masked)
    if band == "on" and form == "basdevant":  # the tendency is written on the blocks only
        assert all(same(full._G[..., r, c], pr._G[..., r, c], 1e-3) for r, c in pr.band_slices)
    else:
        assert same(full._G[..., :cols], pr._G[..., :cols], 1e-3)


def test_prune_mode_is_checked_and_auto_prunes_the_inverse_transforms_on_the_cpu():
    p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=32, dt=1e-3)
    with pytest.raises(TurbtlError, match="dns.prune = 'on'; fix: use one of auto, inverse, both, off"):
        DNSSolver(p, 1, seed=0, prune="on")
    assert DNSSolver(p, 1, seed=0, prune="auto").acceleration["prune"] == "off"  # n < fused.PRUNE_AUTO_MIN_N
    p64 = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=64, dt=1e-3)
    assert DNSSolver(p64, 1, seed=0, prune="auto").acceleration["prune"] == "inverse"  # fused.PRUNE_AUTO["cpu"]
    assert DNSSolver(p, 1, seed=0, prune=True).acceleration["prune"] == "both"  # YAML's unquoted on
    assert DNSSolver(p, 1, seed=0, prune=False).acceleration["prune"] == "off"
    assert DNSSolver(p, 1, seed=0).acceleration["prune"] == "off"  # the solver's default; run_dns: auto
    s = DNSSolver(p, 1, seed=0, prune="both")
    s.band_slices = [(slice(0, 32), slice(0, 17))]  # a support with every column: nothing to skip
    assert s.accelerate(prune="both")["prune"] == "off" and s.tendency._spec.shape[-1] == 17


def test_failed_compilation_falls_back_or_stops(monkeypatch, caplog):
    import turbtl.fused as st

    def broken(fn):
        def f(*a):
            raise RuntimeError("no compiler")
        return f

    monkeypatch.setattr(st, "compiled", broken)
    p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=32, dt=1e-3)
    with pytest.raises(TurbtlError, match="torch.compile of the step .* failed .*fix: set dns.compile: off"):
        DNSSolver(p, 2, seed=4, compile="on").advance(5)
    eager, fb = DNSSolver(p, 2, seed=4), DNSSolver(p, 2, seed=4, compile="on")
    fb._compile_strict = False  # what compile: auto does on CUDA
    with caplog.at_level("WARNING"):
        eager.advance(30)
        fb.advance(30)
    assert "stepping eagerly" in caplog.text and fb._fused is None
    assert torch.equal(eager.omega_hat, fb.omega_hat)  # nothing was written before the failure


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, from inside torch.compile
@pytest.mark.parametrize("form, band", [("basdevant", "off"), ("basdevant", "on"), ("advective", "off")])
def test_compiled_update_on_cpu_matches_eager(form, band):
    """torch.compile for real (inductor's C++ backend on the CPU; on CUDA it is Triton and
    tests/test_device.py checks it): the compiled step agrees with the eager one, in either
    form of the tendency (basdevant: its products and, per block with the band, its
    combination compiled too)."""
    p = FlowParams(Re=1000.0, kf=4, beta=20.0, mu=0.1, n=32, dt=1e-3)
    eager = DNSSolver(p, 2, seed=4, nonlinear=form)
    comp = DNSSolver(p, 2, seed=4, compile="on", band=band, nonlinear=form)
    eager.advance(60)
    comp.advance(60)
    assert comp._fused is not None and comp.tendency._product is not None
    if form == "basdevant":
        assert len(comp.tendency._combine["parts"]) == (2 if band == "on" else 1)
    assert ((eager.omega_hat - comp.omega_hat).abs().max() / eager.omega_hat.abs().max()).item() < 1e-5


# --- decaying flows (forcing: none) --------------------------------------------------------
def test_forcing_none_is_read_from_the_config_and_needs_an_initial_energy():
    p = FlowParams.from_config(_system(forcing="none", initial_energy=0.7), "dec")
    assert not p.force and p.energy0 == 0.7
    q = FlowParams.from_config(_system(), "forced")
    assert q.force and q.energy0 is None  # the default: forced, energy from the laminar scale
    from turbtl.equation import initial_energy

    assert initial_energy(p) == 0.7 and initial_energy(q) == pytest.approx(0.5 * (0.2 / (0.1 + 16 / 100.0)) ** 2)
    with pytest.raises(TurbtlError, match=r"systems\.dec has forcing: none but no initial_energy.*fix: add "
                                          r"systems\.dec\.initial_energy"):
        initial_energy(FlowParams.from_config(_system(forcing="none"), "dec"))
    with pytest.raises(TurbtlError, match=r"systems\.odd\.forcing = 'sine'; fix: use one of"):
        FlowParams.from_config(_system(forcing="sine"), "odd")


def test_rossby_screen_counts_viscosity_where_there_is_no_drag():
    """AB2's Rossby-wave growth (beta dt)^4/4 per step against the damping mu + 1/Re of the
    fastest wave (|k| = 1): a decaying beta-plane flow without drag passes on its viscosity,
    an inviscid one without drag is named."""
    p = FlowParams(Re=1000.0, kf=10, beta=20.0, mu=0.0, n=128, dt=1e-3, force=False, energy0=1.0, name="dec")
    check_timestep(p, 0.25)  # (0.02)^4/4 = 4e-8 < 1e-3 x 1e-3
    with pytest.raises(TurbtlError, match=r"Rossby.*mu \+ 1/Re = 1e-12"):
        check_timestep(FlowParams(Re=math.inf, kf=10, beta=20.0, mu=0.0, n=128, dt=1e-3, force=False, energy0=1.0), 0.25)
    # dt_ok = 0.5 (4 / 3000)^(1/3) / 20^(4/3) = 0.5 x 0.1101 / 54.29
    with pytest.raises(TurbtlError, match=r"mu \+ 1/Re = 0\.000333.*at most 0\.00101"):
        check_timestep(FlowParams(Re=3000.0, kf=10, beta=20.0, mu=0.0, n=128, dt=2e-2, force=False, energy0=1e-6), 0.25)


def test_decaying_flow_time_step_is_screened_on_its_initial_speed():
    """Unforced: U = DECAY_PEAK_FACTOR sqrt(2 E0), which bounds the initial field's largest
    speed (measured here on 128^2 x 4 members); a dt above the CFL limit is named."""
    from turbtl.equation import DECAY_PEAK_FACTOR

    p = FlowParams(Re=1000.0, kf=10, beta=0.0, mu=0.0, n=128, dt=1e-3, force=False, energy0=1.0)
    s = DNSSolver(p, 4, seed=3)
    u = torch.fft.irfft2(1j * s.grid.ky * s.grid.inv_lap * s.omega_hat, s=(128, 128))
    v = torch.fft.irfft2(-1j * s.grid.kx * s.grid.inv_lap * s.omega_hat, s=(128, 128))
    assert float((0.5 * (u**2 + v**2)).mean()) == pytest.approx(1.0, rel=1e-4)  # the initial energy E0
    umax = float(torch.sqrt(u**2 + v**2).max())
    bound = DECAY_PEAK_FACTOR * math.sqrt(2.0)
    assert 0.6 * bound < umax < bound  # the bound holds (3.55 sqrt(2 E0) measured), and is not loose
    est = check_timestep(p, 0.25)
    assert est == pytest.approx(bound * 1e-3 / (2 * math.pi / 128))
    fast = FlowParams(Re=1000.0, kf=10, beta=0.0, mu=0.0, n=128, dt=2e-2, force=False, energy0=1.0, name="dec")
    with pytest.raises(TurbtlError, match=r"U = 5 sqrt\(2 initial_energy\) = 7\.07.*reduce systems\.dec\.dt"):
        check_timestep(fast, 0.25)


def test_decaying_dns_loses_energy_exactly_to_viscosity_and_drag(tmp_path):
    """No forcing: dE/dt = -2 nu Z - 2 mu E, snapshot by snapshot (trapezoid over 0.01-spaced
    snapshots), and the file says it is unforced; the forced flow from the same start gains."""
    sys_dec = _system(name="dec", forcing="none", initial_energy=0.5, kf=3, dt=1e-3, spinup_time=0.0,
                      sample_interval=0.01, snapshots_per_member=41)
    out = tmp_path / "dec.nc"
    run_dns(sys_dec, out, dns_cfg=dict(DNS_CFG, precision="float64"), progress=False)
    with xr.open_dataset(out, engine="netcdf4") as ds:
        assert ds.attrs["forcing"] == "none" and ds.attrs["initial_energy"] == 0.5
        assert "kf*" not in ds.attrs["equation"] and ds.attrs["title"].startswith("DNS of decaying")
        e, z, t = ds.energy.values, ds.enstrophy.values, ds.time.values
    assert np.allclose(e[:, 0], 0.5, rtol=1e-6)
    nu, mu = 1 / 100.0, 0.1
    loss = -(2 * nu * z + 2 * mu * e)
    budget = np.cumsum(0.5 * (loss[:, 1:] + loss[:, :-1]) * np.diff(t), axis=1)
    assert np.all(np.diff(e, axis=1) < 0)
    assert np.allclose(e[:, 1:] - e[:, :1], budget, rtol=2e-3), (e[:, -1] - e[:, 0], budget[:, -1])
    forced = tmp_path / "forced.nc"
    run_dns(dict(sys_dec, name="forced", forcing="kolmogorov"), forced, dns_cfg=dict(DNS_CFG, precision="float64"),
            progress=False)
    with xr.open_dataset(forced, engine="netcdf4") as ds:
        assert ds.attrs["forcing"] == "kolmogorov" and "kf*" in ds.attrs["equation"]
        assert np.allclose(ds.energy.values[:, 0], 0.5, rtol=1e-6)  # a forced flow's configured initial_energy
        assert np.all(ds.energy.values[:, -1] > e[:, -1])  # the forcing's work on the same start
    # the filtered file keeps what the DNS file says of the forcing
    from turbtl.filters import filter_dns_file

    filter_dns_file(out, tmp_path / "f.nc", tmp_path / "s.nc", dict(sys_dec), dict(kind="gaussian", width_factor=2.0),
                    progress=False)
    with xr.open_dataset(tmp_path / "f.nc", engine="netcdf4") as ds:
        assert ds.attrs["forcing"] == "none" and ds.attrs["initial_energy"] == 0.5 and "kf*" not in ds.attrs["equation"]


def _interrupted_then(monkeypatch, first, then):
    """``first()`` with the 4th call of DNSSolver.advance interrupted (KeyboardInterrupt, after
    the checkpoints of the blocks before it), then ``then()`` uninterrupted; its result."""
    calls = {"n": 0}
    advance = DNSSolver.advance

    def interrupted(self, m):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return advance(self, m)

    monkeypatch.setattr(DNSSolver, "advance", interrupted)
    with pytest.raises(KeyboardInterrupt):
        first()
    monkeypatch.setattr(DNSSolver, "advance", advance)
    return then()


def test_a_checkpoint_is_resumed_in_its_own_form_of_the_tendency_only(tmp_path, monkeypatch):
    """dns.nonlinear joins the trajectory key as basdevant only (an advective run keeps the key
    that runs before the basdevant form had, so their checkpoints still resume with
    nonlinear: advective): an interrupted run of one form is resumed by the same form and
    ignored by the other; the output names its form and agrees with the other form's to
    round-off over a short run."""
    import turbtl.solver as solver

    keys = []
    real_key = solver.trajectory_key
    monkeypatch.setattr(solver, "trajectory_key", lambda **kw: keys.append(kw) or real_key(**kw))
    system = _system(name="k", spinup_time=0.0, snapshots_per_member=4)
    cfg = dict(DNS_CFG, checkpoint_minutes=1e-9)  # a checkpoint after every block
    out = tmp_path / "k.nc"
    done = {}
    for first, then, resumes in (("advective", "basdevant", 0), ("basdevant", "advective", 0),
                                 ("advective", "advective", 1), ("basdevant", "basdevant", 1)):
        info = _interrupted_then(monkeypatch, lambda: run_dns(system, out, dns_cfg=dict(cfg, nonlinear=first),
                                                              progress=False),
                                 lambda: run_dns(system, out, dns_cfg=dict(cfg, nonlinear=then), progress=False))
        assert info["resumes"] == resumes, (first, then)
        with xr.open_dataset(out) as ds:
            assert ds.attrs["nonlinear_form"].startswith(then + ":")
            done[then] = ds["omega"].values
        out.unlink()
    assert keys[0].get("nonlinear") is None and keys[1]["nonlinear"] == "basdevant"
    a, b = done["advective"], done["basdevant"]
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 1e-4 * np.abs(a).max()
    with pytest.raises(TurbtlError, match="dns.nonlinear = 'flux'; fix: use one of basdevant, advective"):
        run_dns(system, out, dns_cfg=dict(DNS_CFG, nonlinear="flux"), progress=False)


def test_a_checkpoint_is_not_resumed_by_a_flow_with_other_forcing_or_initial_energy(tmp_path, monkeypatch):
    """The trajectory key holds forcing: none and a configured initial_energy: an interrupted
    forced run's checkpoint is resumed by the same flow only."""
    system = _system(name="k", spinup_time=0.0, snapshots_per_member=4)
    cfg = dict(DNS_CFG, checkpoint_minutes=1e-9)  # a checkpoint after every block
    out = tmp_path / "k.nc"
    e2 = dict(initial_energy=0.2)
    for first, then, resumes in ((e2, dict(e2, forcing="none"), 0), ({}, e2, 0), ({}, {}, 1)):
        info = _interrupted_then(monkeypatch, lambda: run_dns(dict(system, **first), out, dns_cfg=cfg, progress=False),
                                 lambda: run_dns(dict(system, **then), out, dns_cfg=cfg, progress=False))
        assert info["resumes"] == resumes, (first, then)
        out.unlink()
