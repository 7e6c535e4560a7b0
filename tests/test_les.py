"""The a-posteriori LES: conservation of its advection, the closure's sign, a replay of the exact
Pi, Smagorinsky's dissipation, blow-ups, and the job's outputs."""
import json
import math

import numpy as np
import pytest
import torch

from turbtl import TurbtlError
from turbtl.data import FilteredData
from turbtl.equation import FlowParams
from turbtl.filters import jacobian_les_hat, sgs_fields
from turbtl.grid import SpectralGrid
from turbtl.les import LES, dynamic, equivalent_constant, filtered_forcing_hat, les_mask, network_closure, smagorinsky
from turbtl.solver import DNSSolver


def _band_limited(n, members=3, seed=0):
    g = SpectralGrid(n, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    oh = torch.fft.rfft2(torch.randn(members, n, n, generator=gen, dtype=torch.float64)) * les_mask(n)
    oh[..., 0, 0] = 0
    return g, oh


def test_les_advection_conserves_energy_and_enstrophy_to_round_off():
    # the 3/2-padded, truncated Jacobian is a Galerkin projection: mean(psi J) = mean(omega J) = 0
    g, oh = _band_limited(24)
    ph = oh * g.inv_lap
    J = jacobian_les_hat(ph, oh)
    scale = torch.sqrt(g.inner(J, J) * g.inner(oh, oh))
    assert torch.all(g.inner(ph, J).abs() / scale < 1e-13)
    assert torch.all(g.inner(oh, J).abs() / scale < 1e-13)
    assert torch.all(scale > 0)


def test_les_without_forcing_or_dissipation_keeps_energy_and_enstrophy():
    n = 16
    p = FlowParams(Re=math.inf, kf=2, beta=0.0, mu=0.0, n=n, dt=2e-4, name="inviscid", force=False)
    g, oh = _band_limited(n, members=2, seed=3)
    les = LES(p, g.irfft(oh), [None], ["no_closure"], forcing_hat=None, cfl_max=10.0)
    e0, z0 = les.energy().clone(), les.enstrophy().clone()
    les.advance(200)
    # AB2's error per unit time is O(dt^2): over t = 0.04 the drift is far below 1e-6
    assert torch.allclose(les.energy(), e0, rtol=1e-6, atol=0)
    assert torch.allclose(les.enstrophy(), z0, rtol=1e-6, atol=0)


def test_closure_enters_with_minus_sign():
    # a single Fourier mode has J = 0; the closure Pi = c omega must damp it as exp(-c t)
    n, c, dt, steps = 16, 2.0, 1e-3, 500
    p = FlowParams(Re=math.inf, kf=2, beta=0.0, mu=0.0, n=n, dt=dt, name="sign", force=False)
    x = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    om = torch.cos(3 * x)[None, None, :].expand(1, n, n).clone()
    les = LES(p, om, [lambda psi, omega: c * omega], ["drag"], forcing_hat=None, cfl_max=10.0)
    les.advance(steps)
    got = les.omega.abs().max().item()
    assert got == pytest.approx(math.exp(-c * dt * steps), rel=1e-4)  # grows as exp(+c t) with the wrong sign


def test_replaying_the_exact_pi_keeps_the_les_closer_to_the_filtered_dns():
    n_dns, n_les, dt = 64, 16, 2e-3
    fp = FlowParams(Re=300.0, kf=3, beta=0.0, mu=0.1, n=n_dns, dt=dt, name="replay")
    dns = DNSSolver(fp, 2, dtype=torch.float64, seed=7, cfl_max=1.0)
    dns.advance(1500)  # spin-up to a turbulent state
    lp = FlowParams(Re=300.0, kf=3, beta=0.0, mu=0.1, n=n_les, dt=dt, name="replay")
    fh = filtered_forcing_hat(3, n_dns, n_les, "gaussian", 2.0)
    current = {}
    les = LES(lp, sgs_fields(dns.omega, n_les)[1], [None, lambda psi, omega: current["pi"]],
              ["no_closure", "replay"], forcing_hat=fh, cfl_max=1.0)
    les.starts  # noqa: B018 - two starts (members), closures are the outer index
    err = {"no_closure": [], "replay": []}
    for _ in range(300):
        _, om_bar, pi = sgs_fields(dns.omega, n_les)
        current["pi"] = pi.repeat(1, 1, 1)
        les.step()
        dns.step()
        ref = sgs_fields(dns.omega, n_les)[1]
        om = les.omega.reshape(2, 2, n_les, n_les)
        for c, name in enumerate(err):
            err[name].append(float(((om[c] - ref) ** 2).mean() / (ref**2).mean()))
    # the exact Pi reproduces the filtered DNS far better than no closure over the window
    assert err["replay"][-1] < 0.2 * err["no_closure"][-1]
    assert err["no_closure"][-1] > 1e-4


def test_smagorinsky_drains_enstrophy():
    g, oh = _band_limited(32, members=4, seed=1)
    clo = smagorinsky(32, 2 * math.pi / 32, 0.17)
    psi, om = g.irfft(oh * g.inv_lap), g.irfft(oh)
    pi = clo(psi, om)
    assert torch.all((om * pi).mean(dim=(-2, -1)) > 0)  # mean(omega Pi) = mean(nu_e |grad omega|^2)
    assert torch.allclose(clo(psi, 0 * om), torch.zeros_like(om))


def test_smagorinsky_matches_the_closed_form_on_a_field_with_smooth_strain():
    """Smagorinsky's Pi = -div(nu_e grad omega), nu_e = (cs Delta)^2 |S|, against the closed
    form.  psi = sin x sin y - (cos 2x + cos 2y)/8 has 2 psi_xy = 2 cos x cos y and
    psi_xx - psi_yy = cos^2 x - cos^2 y, so |S| = sqrt(4 psi_xy^2 + (psi_xx - psi_yy)^2)
    = cos^2 x + cos^2 y exactly ((a^2 - b^2)^2 + (2ab)^2 = (a^2 + b^2)^2): a smooth, band-limited
    eddy viscosity, so the spectral closure must match the analytic Pi to round-off.  A strain
    with the factor 4 on the wrong term, or cs Delta^2 for (cs Delta)^2, is off by O(1)."""
    n, cs = 16, 0.17
    delta = 2 * math.pi / n
    x = np.arange(n) * 2 * math.pi / n
    Y, X = np.meshgrid(x, x, indexing="ij")  # x along the last axis (kx), y along the first (ky)
    s, c = np.sin, np.cos
    psi = s(X) * s(Y) - (c(2 * X) + c(2 * Y)) / 8
    om = 2 * s(X) * s(Y) - (c(2 * X) + c(2 * Y)) / 2  # omega = -lap(psi)
    om_x, om_y = 2 * c(X) * s(Y) + s(2 * X), 2 * s(X) * c(Y) + s(2 * Y)
    lap_om = -4 * s(X) * s(Y) + 2 * (c(2 * X) + c(2 * Y))
    strain = c(X) ** 2 + c(Y) ** 2
    nu_e = (cs * delta) ** 2 * strain
    # -div(nu_e grad omega) = -(nu_e lap(omega) + grad(nu_e) . grad(omega)), grad|S| = (-sin 2x, -sin 2y)
    want = -(nu_e * lap_om + (cs * delta) ** 2 * (-s(2 * X) * om_x - s(2 * Y) * om_y))
    got = smagorinsky(n, delta, cs)(torch.tensor(psi)[None], torch.tensor(om)[None])[0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    # the enstrophy drain mean(omega Pi) = mean(nu_e |grad omega|^2), a band-limited product: exact on the grid
    assert float(np.mean(om * got)) == pytest.approx(float(np.mean(nu_e * (om_x**2 + om_y**2))), rel=1e-12)


def _np_deriv(f, axis):
    """Spectral d/dx (axis -1) or d/dy (axis -2) in numpy, the Nyquist mode's derivative zero."""
    n = f.shape[-1]
    k = np.fft.fftfreq(n, d=1.0 / n)
    k[n // 2] = 0.0
    k = k[None, :] if axis == -1 else k[:, None]
    return np.real(np.fft.ifft2(1j * k * np.fft.fft2(f)))


def _np_drop_nyquist(f):
    n = f.shape[-1]
    fh = np.fft.fft2(f)
    fh[..., n // 2, :] = 0
    fh[..., :, n // 2] = 0
    return np.real(np.fft.ifft2(fh))


def _np_eddy_term(psi, om, kind):
    """-div(nu grad omega) with nu = |S| or |grad omega|, written out in numpy, the Nyquist
    modes of the result dropped (as the LES drops them)."""
    dx, dy = (lambda f: _np_deriv(f, -1)), (lambda f: _np_deriv(f, -2))
    ox, oy = dx(om), dy(om)
    if kind == "smagorinsky":
        nu = np.sqrt(4 * dx(dy(psi)) ** 2 + (dx(dx(psi)) - dy(dy(psi))) ** 2)
    else:
        nu = np.sqrt(ox**2 + oy**2)
    return _np_drop_nyquist(-(dx(nu * ox) + dy(nu * oy)))


def _np_low_band(rng, n, members, kmax):
    """psi with modes |kx|, |ky| < kmax only (random, smooth spectrum), and omega = -lap(psi)."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    KX, KY = k[None, :], k[:, None]
    keep = (np.abs(KX) < kmax) & (np.abs(KY) < kmax) & ((KX != 0) | (KY != 0))
    ph = np.fft.fft2(rng.standard_normal((members, n, n))) * keep / np.maximum(KX**2 + KY**2, 1.0)
    return np.real(np.fft.ifft2(ph)), np.real(np.fft.ifft2(ph * (KX**2 + KY**2)))


def test_leith_term_drains_enstrophy_as_the_cube_of_the_vorticity_gradient():
    """Leith's Pi = -div(nu grad omega) with nu = C |grad omega| gives mean(omega Pi)
    = C mean(|grad omega|^3) on the grid for any field (the spectral derivative is
    skew-adjoint), to round-off; the Smagorinsky invariant, a wrong sign or a wrong power
    of the gradient gives another number.  Both eddy terms also against numpy, point by point."""
    from turbtl.les import _eddy_term

    n = 32
    psi, om = _np_low_band(np.random.default_rng(4), n, 3, n // 3)
    g = SpectralGrid(n, dtype=torch.float64)
    ph, oh = g.rfft(torch.tensor(psi)), g.rfft(torch.tensor(om))
    coef = (0.3 * 2 * math.pi / n) ** 3
    keep = les_mask(n)
    got = _eddy_term(g, ph, oh, "leith", coef, keep=keep).numpy()
    grad = np.sqrt(_np_deriv(om, -1) ** 2 + _np_deriv(om, -2) ** 2)
    np.testing.assert_allclose((om * got).mean(axis=(-2, -1)), coef * (grad**3).mean(axis=(-2, -1)), rtol=1e-12)
    np.testing.assert_allclose(got, coef * _np_eddy_term(psi, om, "leith"), rtol=0, atol=1e-12 * np.abs(got).max())
    smag = _eddy_term(g, ph, oh, "smagorinsky", coef, keep=keep).numpy()
    # without ``keep`` only the Nyquist modes differ (the static Smagorinsky closure's output)
    full = _eddy_term(g, ph, oh, "smagorinsky", coef).numpy()
    np.testing.assert_allclose(_np_drop_nyquist(full), smag, rtol=0, atol=1e-12 * np.abs(smag).max())
    np.testing.assert_allclose(smag, coef * _np_eddy_term(psi, om, "smagorinsky"), rtol=0, atol=1e-12 * np.abs(smag).max())
    with pytest.raises(TurbtlError, match="not known"):
        _eddy_term(g, ph, oh, "lilly")


@pytest.mark.parametrize("kind", ["smagorinsky", "leith"])
def test_dynamic_closure_matches_a_numpy_germano_procedure(kind):
    """The dynamic coefficient against the Germano identity written out in numpy: for
    fields with |kx|, |ky| < n/4 the plain product J on the grid is exact, so
    L = T(J(psi, omega)) - J(T psi, T omega) needs no padding; T is a Gaussian of width
    sqrt(3) Delta_f (so T after the LES's Gaussian filter of width Delta_f is one of width
    2 Delta_f), M = 2^p m(T psi, T omega) - T(m(psi, omega)), c = max(0, <LM>/<MM>) per member,
    Pi = c m(psi, omega).  A test filter of the wrong width, a wrong power p, L with the
    opposite sign or one c for all members give O(1) differences.  The field scaled by 3 has
    the same c (L and M are both quadratic), so Pi scales by 9."""
    n, members = 32, 6
    fd = 2 * 2 * math.pi / n  # the default filter width (width_factor 2)
    psi, om = _np_low_band(np.random.default_rng(7), n, members, n // 4)
    k = np.fft.fftfreq(n, d=1.0 / n)
    T = np.exp(-(k[None, :] ** 2 + k[:, None] ** 2) * 3 * fd**2 / 24)
    T[n // 2, :] = 0
    T[:, n // 2] = 0
    filt = lambda f: np.real(np.fft.ifft2(T * np.fft.fft2(f)))  # noqa: E731
    jac = lambda p, o: _np_deriv(p, -2) * _np_deriv(o, -1) - _np_deriv(p, -1) * _np_deriv(o, -2)  # noqa: E731
    p = {"smagorinsky": 2, "leith": 3}[kind]
    m = _np_eddy_term(psi, om, kind)
    L = filt(jac(psi, om)) - jac(filt(psi), filt(om))
    M = 2.0**p * _np_eddy_term(filt(psi), filt(om), kind) - filt(m)
    c_raw = (L * M).mean(axis=(-2, -1)) / (M * M).mean(axis=(-2, -1))
    assert (c_raw > 0).any() and (c_raw < 0).any()  # both branches of the clipping are exercised
    c = np.maximum(c_raw, 0.0)
    clo = dynamic(kind, n, fd)
    got = clo(torch.tensor(psi), torch.tensor(om)).numpy()
    np.testing.assert_allclose(clo.coefficient_sum.numpy(), c, rtol=1e-9, atol=1e-14 * np.abs(c_raw).max())
    np.testing.assert_allclose(got, c[:, None, None] * m, rtol=0, atol=1e-9 * np.abs(got).max())
    assert torch.equal(clo.calls, torch.ones(members, dtype=torch.float64))
    scaled = dynamic(kind, n, fd)(torch.tensor(3 * psi), torch.tensor(3 * om)).numpy()
    np.testing.assert_allclose(scaled, 9 * got, rtol=0, atol=1e-9 * np.abs(scaled).max())
    # never injects enstrophy: mean(omega Pi) = c mean(nu |grad omega|^2) >= 0 per member
    drain = (om * got).mean(axis=(-2, -1))
    assert np.all(drain[c > 0] > 0) and np.allclose(drain[c == 0], 0.0)


def test_dynamic_closure_is_off_on_a_steady_euler_flow():
    """omega on one shell |k|^2 = 25 with psi = omega/25 has J(psi, omega) = 0, and so has the
    test-filtered pair (T is constant on the shell): L = 0, the dynamic closures switch off
    (c = 0, Pi = 0) where the constant-coefficient Smagorinsky still dissipates.  A zero field
    (a blown-up LES member) is not counted in the time mean."""
    n = 32
    x = np.arange(n) * 2 * math.pi / n
    Y, X = np.meshgrid(x, x, indexing="ij")
    om = np.cos(3 * X + 4 * Y + 0.3) + 0.7 * np.sin(5 * X - 1.1) + 0.4 * np.cos(4 * X - 3 * Y) + np.sin(5 * Y)
    om = np.stack([om, 0 * om])
    psi = om / 25
    for kind in ("smagorinsky", "leith"):
        clo = dynamic(kind, n, 2 * 2 * math.pi / n)
        pi = clo(torch.tensor(psi), torch.tensor(om))
        assert float(pi.abs().max()) < 1e-12
        assert float(clo.coefficient_sum[0]) < 1e-12 and clo.calls.tolist() == [1.0, 0.0]
    assert float(smagorinsky(n, 2 * math.pi / n)(torch.tensor(psi), torch.tensor(om)).abs().max()) > 1e-3
    with pytest.raises(TurbtlError, match="not known"):
        dynamic("vreman", n, 1.0)
    assert equivalent_constant("smagorinsky", 0.04 * 0.25, 0.5) == pytest.approx(0.2)
    assert equivalent_constant("leith", 0.027 * 0.125, 0.5) == pytest.approx(0.3)


def test_a_blow_up_is_recorded_per_member_and_stops_the_les_without_closure():
    n = 16
    p = FlowParams(Re=100.0, kf=2, beta=0.0, mu=0.1, n=n, dt=1e-2, name="blow", force=False)
    g, oh = _band_limited(n, members=1, seed=2)
    om = g.irfft(oh)
    om = om / om.abs().max()
    les = LES(p, om, [None, lambda psi, omega: -60.0 * omega], ["no_closure", "antidrag"], forcing_hat=None,
              cfl_max=0.5, check_every=5)
    les.advance(400)
    assert les.alive.tolist() == [True, False]
    assert 0 < les.blowup_time[1] < 4.0 and "CFL" in les.blowup_cause[1]
    assert torch.all(les.omega[1] == 0)  # set to zero, so it cannot spread NaN


def test_a_blown_up_member_stays_zero_under_forcing_and_leaves_the_dynamic_mean():
    """With the forcing on, a member zeroed at its blow-up would regrow: it must stay zero
    from then on (its statistics are no closure's LES), and a dynamic closure must stop
    counting it in its time-mean coefficient.  Start 1 of the dynamic closure is killed
    the way the guard does it; start 0 goes on."""
    n = 16
    p = FlowParams(Re=100.0, kf=2, beta=0.0, mu=0.1, n=n, dt=1e-2, name="forced")
    g, oh = _band_limited(n, members=2, seed=5)
    om = g.irfft(oh)
    om = 2 * om / om.abs().max()
    dyn = dynamic("leith", n, 2 * 2 * math.pi / n)
    les = LES(p, om, [None, dyn], ["no_closure", "dynamic_leith"], forcing_hat=filtered_forcing_hat(2, 32, n, "gaussian", 2.0),
              cfl_max=0.5, check_every=5)
    les.advance(10)
    les.on_check([0.0, 0.0, 0.0, 1e9], [1.0] * 4)  # member 3 = closure 1, start 1: a CFL failure
    assert les.alive.tolist() == [True, True, True, False]
    les.advance(40)
    assert torch.all(les.omega[3] == 0) and float(les.omega[2].abs().max()) > 0.1
    assert float(les.omega[0].abs().max()) > 0.1
    assert dyn.calls.tolist() == [50.0, 10.0]  # start 1 counted only while alive
    fast = LES(p, 400 * om, [None], ["no_closure"], forcing_hat=None, cfl_max=0.5, check_every=5)
    with pytest.raises(TurbtlError, match=r"without closure blew up .*fix: reduce les\.dt"):
        fast.advance(50)


def test_les_dt_probe_separates_a_blowing_up_step_from_a_stable_one():
    """benchmarks/les_dt_probe.py (the check behind the presets' les.dt): on a 16^2 LES of a
    64^2 DNS, a step at CFL ~2 blows up the LES without closure, one at ~0.3 runs through."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from les_dt_probe import probe

    rows = probe(1000.0, 4, 0.0, 0.1, 64, 16, 2e-3, 1.0, [0.2, 0.05], 2.0, log=lambda s: None)
    big, small = rows
    assert not big["stable"] and big["blew_up_at"] is not None and big["max_cfl_none"] > 5
    assert small["stable"] and small["smagorinsky_stable"] and 0.05 < small["max_cfl_none"] < 1


@pytest.mark.parametrize("kind, kf, n_les, G", [
    ("gaussian", 4, 16, math.exp(-(4 * (2 * 2 * math.pi / 16)) ** 2 / 24)),  # exp(-kf^2 Delta^2/24), Delta = pi/4
    ("box", 4, 16, math.sin(4 * math.pi / 8) / (4 * math.pi / 8)),  # sinc(kf Delta/2) sinc(0) = 2/pi
    ("spectral", 3, 16, 1.0),  # kf = 3 < pi/Delta = 4: passed
    ("spectral", 5, 16, 0.0),  # kf = 5 > 4: cut, though the LES grid resolves it
], ids=["gaussian", "box", "spectral-passed", "spectral-cut"])
def test_filtered_forcing_is_the_transfer_function_times_the_forcing(kind, kf, n_les, G):
    """F_bar = G(k_f) F on the LES grid, F = kf (cos kf x + cos kf y): its grid values are
    G(k_f) kf (cos kf x + cos kf y) with G worked out by hand for each filter
    (Delta = width_factor 2 pi / n_les = pi/4 here, docs in turbtl.filters)."""
    fh = filtered_forcing_hat(kf, 64, n_les, kind, 2.0)
    assert fh.shape == (n_les, n_les // 2 + 1)
    x = np.arange(n_les) * 2 * math.pi / n_les
    want = G * kf * (np.cos(kf * x)[None, :] + np.cos(kf * x)[:, None])
    got = torch.fft.irfft2(fh, s=(n_les, n_les)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * kf)


def test_network_closure_uses_the_normaliser():
    from turbtl.data import Normaliser
    from turbtl.network import SGSNet

    net = SGSNet(depth=2, channels=2, kernel_size=3)
    norm = Normaliser(np.array([0.0, 1.0]), np.array([2.0, 3.0]), np.array([0.5]), np.array([4.0]))
    psi, om = torch.randn(3, 8, 8), torch.randn(3, 8, 8)
    got = network_closure(net, norm)(psi, om)
    with torch.no_grad():
        want = norm.y_inv(net(norm.x(torch.stack([psi, om], 1))))[:, 0]
    assert got.shape == (3, 8, 8) and torch.allclose(got, want)


def test_consecutive_network_closures_run_together_bit_for_bit():
    """Network closures next to each other in the batch, with one normaliser, run together (one
    normalisation and conversion for all their members): each network sees the input it would
    alone, so the tendency equals the one-by-one tendency bit for bit; a network with another
    normaliser, the no-closure and the physics slots stay on their own."""
    from turbtl.data import Normaliser
    from turbtl.les import GroupedClosure, LESTendency, NetworkClosure
    from turbtl.network import SGSNet

    torch.manual_seed(3)
    norm = Normaliser(np.array([0.1, -0.2]), np.array([2.0, 3.0]), np.array([0.5]), np.array([4.0]))
    other = Normaliser(np.array([0.0, 0.0]), np.array([1.0, 1.0]), np.array([0.0]), np.array([1.0]))
    nets = [NetworkClosure(SGSNet(depth=3, channels=4, kernel_size=3), norm) for _ in range(3)]
    lonely = NetworkClosure(SGSNet(depth=3, channels=4, kernel_size=3), other)  # another normaliser: its own
    closures = [None, smagorinsky(16, 2 * math.pi / 16, 0.17), *nets, lonely]
    grid = SpectralGrid(16, dtype=torch.float32)
    together = LESTendency(grid, closures, starts=2)
    assert [(c, k, type(f).__name__) for c, k, f in together._segments] == \
        [(1, 1, "function"), (2, 3, "GroupedClosure"), (5, 1, "NetworkClosure")]
    psi, om = torch.randn(6, 16, 16), torch.randn(6, 16, 16)
    apart = torch.cat([f(psi[2 * i:2 * i + 2], om[2 * i:2 * i + 2]) for i, f in enumerate(nets)])
    assert torch.equal(GroupedClosure(nets, 2)(psi, om), apart)
    one_by_one = LESTendency(grid, closures, starts=2, group_networks=False)
    omega_hat = grid.rfft(torch.randn(12, 16, 16))
    a, b = torch.empty_like(omega_hat), torch.empty_like(omega_hat)
    together(omega_hat, a)
    one_by_one(omega_hat, b)
    assert torch.equal(a, b) and a[4:].abs().max() > 0


# --------------------------------------------------------------------------- the job
def _job_inputs(tmp_path, scale=1.0):
    import xarray as xr

    from synthetic import write_filtered
    from turbtl.data import Normaliser
    from turbtl.network import SGSNet
    from turbtl.training import save_checkpoint
    from turbtl.transfer import save_layer_weights

    data = write_filtered(tmp_path / "t.nc", members=3, times=12, n=16, name="t")
    ds = xr.load_dataset(data)
    ds["omega"] = ds["omega"] * scale
    ds.attrs.update(Re=500.0, kf=2, mu=1.0, beta=0.0, n_dns=48, sample_interval=0.5, filter_kind="gaussian",
                    filter_width_factor=2.0)
    ds.to_netcdf(data, engine="netcdf4")
    torch.manual_seed(0)
    net = SGSNet(depth=3, channels=4, kernel_size=3)
    norm = Normaliser(np.zeros(2), np.ones(2), np.zeros(1), np.full(1, 0.1))
    save_checkpoint(tmp_path / "base.pt", net, norm)
    lw = {}
    for L in (1, 2, 3):
        conv = net.layer(L)
        w = {0: {"weight": conv.weight.detach() * 0.9, "bias": conv.bias.detach()}}
        save_layer_weights(tmp_path / f"layer{L}.pt", L, w)
        lw[L] = tmp_path / f"layer{L}.pt"
    return data, tmp_path / "base.pt", lw


LES_CFG = dict(dt=0.05, time=1.0, spinup=0.2, starts=2, cc_time=1.0, stats_every=2, smagorinsky_cs=0.17)


def test_aposteriori_job_writes_every_closure(tmp_path):
    import xarray as xr

    from turbtl.aposteriori import SCORE_KEYS, run_aposteriori_job

    data, model, lw = _job_inputs(tmp_path)
    out = run_aposteriori_job(data, model, lw, {}, tmp_path / "ap.json", tmp_path / "ap.nc", les_cfg=LES_CFG, seed=0,
                              cfl_max=0.5, progress=False)
    assert list(out["closures"]) == ["no_closure", "smagorinsky", "dynamic_smagorinsky", "dynamic_leith", "zero_shot",
                                     "tl_layer1", "tl_layer2", "tl_layer3"]
    assert out["starts"] == [[0, 0], [0, 9]]  # the one test member, spread over the usable snapshots
    on_disk = json.loads((tmp_path / "ap.json").read_text())
    for c in on_disk["closures"].values():
        assert c["stable"] and all(k in c for k in SCORE_KEYS)
        assert c["spec_err"] >= 0 and c["energy_ratio"] > 0
    ds = xr.load_dataset(tmp_path / "ap.nc")
    assert ds["energy_spectrum"].shape == (8, 2, 9) and ds["cc"].shape == (8, 2, 3)
    factor = float(FilteredData(data).attrs["filter_width_factor"])
    for name in ("dynamic_smagorinsky", "dynamic_leith"):  # a time-mean constant per start, never negative
        dyn = on_disk["les"]["dynamic"][name]
        # the test filter is built on the data filter's width, the constant quoted with the grid spacing
        assert dyn["filter_delta"] == pytest.approx(factor * 2 * math.pi / 16) and dyn["delta"] == pytest.approx(2 * math.pi / 16)
        assert len(dyn["constant_per_start"]) == 2 and all(c >= 0 for c in dyn["constant_per_start"])
        assert min(dyn["constant_per_start"]) <= dyn["constant"] <= max(dyn["constant_per_start"])
    assert np.allclose(ds["cc"].values[:, :, 0], 1.0, atol=1e-5)  # every LES starts on the filtered DNS


def test_aposteriori_job_blow_up_of_the_les_itself_leaves_no_output(tmp_path):
    from turbtl.aposteriori import run_aposteriori_job

    data, model, lw = _job_inputs(tmp_path, scale=300.0)
    with pytest.raises(TurbtlError, match="without closure blew up"):
        run_aposteriori_job(data, model, lw, {}, tmp_path / "ap.json", tmp_path / "ap.nc", les_cfg=LES_CFG, seed=0,
                            cfl_max=0.5, progress=False)
    assert not list(tmp_path.glob("ap.*")) and not list(tmp_path.glob(".ap.*"))


def test_dns_reference_statistics_of_a_known_field():
    """The filtered DNS's statistics of omega = A_t cos x + B sin 2y (A_t = 1, 2, 3 over
    the snapshots, B = 2): shell spectrum E(1) = <A^2>/4, E(2) = B^2/16 (E = Z/k^2), energy
    their sum, enstrophy mean(omega^2)/2 = (<A^2> + B^2)/4, sigma = sqrt((<A^2> + B^2)/2),
    U_rms = sqrt(2 E), and one PDF count per grid value."""
    from turbtl.aposteriori import dns_reference

    n, B = 16, 2.0
    A = np.array([1.0, 2.0, 3.0])
    x = np.arange(n) * 2 * math.pi / n
    om = A[None, :, None, None] * np.cos(x)[None, None, None, :] + B * np.sin(2 * x)[None, None, :, None]
    om = np.repeat(om, 2, axis=0)  # (2 members, 3 times, n, n)
    a2 = float(np.mean(A**2))  # 14/3
    ref = dns_reference(om)
    spec = np.zeros(n // 2 + 1)
    spec[1], spec[2] = a2 / 4, B**2 / 16
    np.testing.assert_allclose(ref["spec"], spec, rtol=1e-12, atol=1e-14)
    assert ref["energy"] == pytest.approx(a2 / 4 + B**2 / 16, rel=1e-12)
    assert ref["enstrophy"] == pytest.approx((a2 + B**2) / 4, rel=1e-12)
    assert ref["sigma"] == pytest.approx(math.sqrt((a2 + B**2) / 2), rel=1e-12)
    assert ref["u_rms"] == pytest.approx(math.sqrt(a2 / 2 + B**2 / 8), rel=1e-12)
    assert ref["pdf"].sum() == om.size


def test_scores_of_hand_made_statistics():
    """:func:`scores` on hand-built LES statistics with known answers (2 starts, sample
    interval 0.5, so t = 1 is lag 2):

    - ``a``: spectra 10x and 100x the DNS's -> pooled 55x, spec_err = log10 55, per-start
      errors 1 and 2 (std 1/sqrt 2); energy 1.5x and 2.5x -> ratio 2 (std 1/sqrt 2),
      enstrophy 3x; PDF 1, 1/2, 1/2, 0 where the DNS's is 1 on four bins (the rest of the
      LES mass outside them) -> pdf_err = (0 + 2 log10 2 + 6)/4 (0 floored at 1e-6);
      mean correlation 1, 0.8, 0.5, 0.4, 0.2 -> cc_t1 = 0.5 and the first lag below 0.5
      (strictly) is 3: decorrelation time 1.5;
    - ``b``: the DNS's spectrum, 3x its PDF counts, its energy and enstrophy, correlation 1:
      every error 0, every ratio 1, no decorrelation in the window;
    - ``c``: one start blew up at t = 2.5: unstable, no statistics."""
    from turbtl.aposteriori import PDF_EDGES, SCORE_KEYS, scores

    S, nt, nk, nb = 2, 4, 9, len(PDF_EDGES) - 1
    e_ref = np.linspace(1.0, 0.1, nk)
    pdf_ref = np.zeros(nb)
    pdf_ref[30:34] = 1.0  # width 0.25: p_dns = 1 on these four bins
    ref = {"spec": e_ref, "pdf": pdf_ref, "energy": 0.5, "enstrophy": 4.0}
    spec = np.stack([nt * e_ref * f for f in (10.0, 100.0, 1.0, 1.0, 1.0, 1.0)])  # sums over nt samples
    pdf = np.zeros((3 * S, nb))
    pdf[0, 30], pdf[0, 31], pdf[1, 32], pdf[1, 50] = 4, 2, 2, 8  # a: p = 1, 1/2, 1/2, 0 on bins 30..33
    pdf[2:4] = 1.5 * pdf_ref  # b: 3x the DNS counts over its two starts
    energy = np.stack([np.full(nt, 0.5 * f) for f in (1.5, 2.5, 1.0, 1.0, 1.0, 1.0)])
    energy[0] += [0.1, -0.1, 0.2, -0.2]  # fluctuations around the mean
    enstrophy = np.stack([np.full(nt, 4.0 * f) for f in (3.0, 3.0, 1.0, 1.0, 1.0, 1.0)])
    cc = np.ones((3, S, 5))
    cc[0] = [[1.0, 0.9, 0.75, 0.5, 0.2], [1.0, 0.7, 0.25, 0.3, 0.2]]  # mean 1, 0.8, 0.5, 0.4, 0.2
    run = {"stats": {"spec": spec, "pdf": pdf, "energy": energy, "enstrophy": enstrophy, "n": nt}, "cc": cc}
    alive = [True, True, True, True, True, False]
    blowup = [math.nan] * 5 + [2.5]
    out = scores(run, ref, ["a", "b", "c"], S, 0.5, alive, blowup)

    a = out["a"]
    assert a["stable"] and a["blowup_time"] is None
    assert a["spec_err"] == pytest.approx(math.log10(55.0), rel=1e-12)
    assert a["spec_err_std"] == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    assert a["pdf_err"] == pytest.approx((2 * math.log10(2.0) + 6.0) / 4, rel=1e-12)
    assert a["energy_ratio"] == pytest.approx(2.0, rel=1e-12)
    assert a["energy_ratio_std"] == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    assert a["enstrophy_ratio"] == pytest.approx(3.0, rel=1e-12)
    assert a["cc_t1"] == pytest.approx(0.5, rel=1e-12)
    assert a["decorrelation_time"] == pytest.approx(1.5, rel=1e-12)

    b = out["b"]
    assert b["stable"] and b["spec_err"] == pytest.approx(0.0, abs=1e-12) and b["pdf_err"] == pytest.approx(0.0, abs=1e-12)
    assert b["energy_ratio"] == pytest.approx(1.0, rel=1e-12) and b["enstrophy_ratio"] == pytest.approx(1.0, rel=1e-12)
    assert b["cc_t1"] == 1.0 and b["decorrelation_time"] is None

    c = out["c"]
    assert not c["stable"] and c["blowup_time"] == 2.5 and all(c[k] is None for k in SCORE_KEYS)


def test_best_layer_per_start_reads_each_start_alone(tmp_path):
    """Each start's own best re-trained layer, from les_stats.nc: non-network closures are
    ignored, a blown-up (zeroed) member ranks last, and all blown up gives None."""
    import xarray as xr

    from turbtl.aposteriori import best_layer_per_start, per_start_errors

    k = np.arange(9.0)
    ref = np.exp(-k / 3.0) + 1e-3
    names = ["no_closure", "zero_shot", "tl_layer1", "tl_layer2", "tl_layer3"]
    spec = np.empty((5, 3, 9))
    off = {"no_closure": (0.0, 0.0, 0.0), "zero_shot": (0.01, 0.01, 0.01),  # better than every layer: ignored
           "tl_layer1": (0.3, 0.2, 0.0), "tl_layer2": (0.1, 0.05, 0.0), "tl_layer3": (0.2, 0.1, 0.0)}
    for i, c in enumerate(names):
        for s in range(3):
            spec[i, s] = ref * 10 ** off[c][s]
    spec[3, 1] = 0.0  # start 1: tl_layer2, the best there, blew up: tl_layer3 is that start's best
    spec[:, 2] = 0.0  # start 2: every member blew up
    ds = xr.Dataset({"energy_spectrum": (("closure", "start", "k"), spec), "dns_energy_spectrum": (("k",), ref)},
                    coords={"closure": names, "start": np.arange(3), "k": k})
    ds.to_netcdf(tmp_path / "s.nc", engine="netcdf4")
    err = per_start_errors(tmp_path / "s.nc")
    assert best_layer_per_start(err) == [2, 3, None]
    assert sorted(err) == [1, 2, 3]  # the network closures without a re-trained layer are not layers
    np.testing.assert_allclose(err[1][:2], [0.3, 0.2], rtol=1e-12)  # a uniform factor 10^a: log error |a|
    assert np.isinf(err[2][1]) and np.isinf(err[3][2])


def test_aposteriori_job_of_a_decaying_flow_compares_each_start_with_its_own_window(tmp_path):
    """forcing: none: no forcing in the LES, starts that leave the whole run inside the test
    member, statistics at the sample times after the spin-up, and the reference is the
    filtered DNS of each start at those times (pooled, and per start for the per-start
    errors and energy ratios), not the whole test member."""
    import xarray as xr

    from turbtl.aposteriori import dns_reference, per_start_errors, run_aposteriori_job
    from turbtl.spectra import energy_enstrophy_spectra, log_rmse

    data, model, lw = _job_inputs(tmp_path)
    ds = xr.load_dataset(data)
    ds.attrs.update(forcing="none", initial_energy=0.7, mu=0.0)
    ds.to_netcdf(data, engine="netcdf4")
    cfg = dict(LES_CFG, dt=0.01, time=2.0, spinup=0.5, cc_time=0.5)  # 4 snapshots per run, 1 for the correlation
    out = run_aposteriori_job(data, model, lw, {}, tmp_path / "ap.json", tmp_path / "ap.nc", les_cfg=cfg, seed=0,
                              cfl_max=0.5, progress=False)
    assert out["starts"] == [[0, 0], [0, 7]]  # 12 snapshots less the run's 4 after a start
    assert "each start's window" in out["reference"]
    om = FilteredData(data).fields("test")["omega"]
    win = np.stack([om[m, t + 2: t + 5] for m, t in out["starts"]])  # t + 1.0 .. t + 2.0: after the spin-up 0.5
    st = xr.load_dataset(tmp_path / "ap.nc")
    assert np.allclose(st["time"].values, [1.0, 1.5, 2.0])  # the LES's statistics: at those sample times only
    ref = dns_reference(win)
    assert np.allclose(st["dns_vorticity_pdf"].values, ref["pdf"] / ref["pdf"].sum() / 0.25)
    e_les = st["energy"].sel(closure="zero_shot").values  # (start, time)
    zs = out["closures"]["zero_shot"]
    assert zs["energy_ratio"] == pytest.approx(e_les.mean() / ref["energy"], rel=1e-6)
    e_start = [energy_enstrophy_spectra(w)[1].sum() for w in win]  # each start against its own window
    assert zs["energy_ratio_std"] == pytest.approx(np.std(e_les.mean(axis=1) / e_start, ddof=1), rel=1e-6)
    assert np.allclose(st["dns_energy_spectrum"].values, dns_reference(win)["spec"])
    assert not np.allclose(st["dns_energy_spectrum"].values, dns_reference(om)["spec"], rtol=0.05)
    for s in range(2):
        assert np.allclose(st["dns_energy_spectrum_start"].values[s], energy_enstrophy_spectra(win[s])[1])
    assert out["closures"]["no_closure"]["stable"]
    # the per-start errors use each start's own reference
    err = per_start_errors(st)
    spec = st["energy_spectrum"].sel(closure="tl_layer1").values
    for s in range(2):
        assert err[1][s] == pytest.approx(log_rmse(spec[s], st["dns_energy_spectrum_start"].values[s]))
    assert out["closures"]["tl_layer1"]["spec_err_std"] == pytest.approx(np.std(err[1], ddof=1))  # the json's spread too
    # the LES without closure runs unforced: with mu = 0 its energy only falls
    e = st["energy"].sel(closure="no_closure").values
    assert np.all(np.diff(e, axis=-1) <= 1e-7 * e[:, :1])
