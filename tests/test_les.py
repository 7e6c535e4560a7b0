"""The a-posteriori LES: conservation of its advection, the closure's sign, a replay of the exact
Pi, Smagorinsky's dissipation, blow-ups, and the job's outputs."""
import json
import math

import numpy as np
import pytest
import torch

from turbtl import TurbtlError
from turbtl.equation import FlowParams
from turbtl.filters import jacobian_les_hat, sgs_fields
from turbtl.grid import SpectralGrid
from turbtl.les import LES, filtered_forcing_hat, les_mask, network_closure, smagorinsky
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
    assert list(out["closures"]) == ["no_closure", "smagorinsky", "zero_shot", "tl_layer1", "tl_layer2", "tl_layer3"]
    assert out["starts"] == [[0, 0], [0, 9]]  # the one test member, spread over the usable snapshots
    on_disk = json.loads((tmp_path / "ap.json").read_text())
    for c in on_disk["closures"].values():
        assert c["stable"] and all(k in c for k in SCORE_KEYS)
        assert c["spec_err"] >= 0 and c["energy_ratio"] > 0
    ds = xr.load_dataset(tmp_path / "ap.nc")
    assert ds["energy_spectrum"].shape == (6, 2, 9) and ds["cc"].shape == (6, 2, 3)
    assert np.allclose(ds["cc"].values[:, :, 0], 1.0, atol=1e-5)  # every LES starts on the filtered DNS


def test_aposteriori_job_blow_up_of_the_les_itself_leaves_no_output(tmp_path):
    from turbtl.aposteriori import run_aposteriori_job

    data, model, lw = _job_inputs(tmp_path, scale=300.0)
    with pytest.raises(TurbtlError, match="without closure blew up"):
        run_aposteriori_job(data, model, lw, {}, tmp_path / "ap.json", tmp_path / "ap.nc", les_cfg=LES_CFG, seed=0,
                            cfl_max=0.5, progress=False)
    assert not list(tmp_path.glob("ap.*")) and not list(tmp_path.glob(".ap.*"))


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
