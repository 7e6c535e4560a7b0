"""turbtl.data and turbtl.training: loading, normaliser, symmetries, fit, resume, checkpoints."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from synthetic import laplacian, random_psi, sgs, write_filtered
from turbtl import TurbtlError
from turbtl.data import (SYMMETRIES, Normaliser, apply_symmetry, augment_batch, load_xy,
                         small_subset, split_members, symmetry_group)
from turbtl.network import NetConfig, SGSNet
from turbtl.training import evaluate, fit, load_checkpoint, save_checkpoint, train_base


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_filtered(tmp_path_factory.mktemp("d") / "base.nc", members=6, times=8, n=16,
                          kind="sgs", name="base")


def small_net(seed=0, depth=4, channels=8):
    torch.manual_seed(seed)
    return SGSNet(NetConfig(depth=depth, channels=channels))


# ------------------------------------------------------------------------------ data
def test_load_xy_layout_and_splits(data):
    import xarray as xr
    assert split_members(data) == {"train": [0, 1, 2, 3], "val": [4], "test": [5]}
    X, Y = load_xy(data, "train")
    assert X.shape == (32, 2, 16, 16) and Y.shape == (32, 1, 16, 16)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    ds = xr.open_dataset(data, engine="netcdf4")
    # member-major: sample 8*m + t is (member m, time t)
    np.testing.assert_array_equal(X[8 * 2 + 5, 0], ds["psi"].values[2, 5])
    np.testing.assert_array_equal(X[8 * 2 + 5, 1], ds["omega"].values[2, 5])
    np.testing.assert_array_equal(Y[8 * 3 + 1, 0], ds["pi"].values[3, 1])
    Xt, _ = load_xy(data, "test")
    np.testing.assert_array_equal(Xt[0, 1], ds["omega"].values[5, 0])
    Xm, _ = load_xy(data, members=[4, 5])
    assert len(Xm) == 16
    ds.close()


def test_small_subset_fixed_and_error(data):
    a = small_subset(data, 10)
    b = small_subset(data, 10)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (10, 2, 16, 16) and a[1].shape == (10, 1, 16, 16)
    Xtr, _ = load_xy(data, "train")
    # every sample is a train snapshot
    assert all(any(np.array_equal(s, t) for t in Xtr) for s in a[0])
    assert not np.array_equal(small_subset(data, 10, seed=1)[0], a[0])
    with pytest.raises(TurbtlError, match="fix"):
        small_subset(data, 33)
    with pytest.raises(TurbtlError, match="does not exist"):
        load_xy(data.parent / "missing.nc")


def test_normaliser_round_trip(data):
    X, Y = load_xy(data, "train")
    n = Normaliser.fit(X, Y)
    assert n.in_mean.shape == (2,) and n.in_std.shape == (2,) and n.out_std.shape == (1,)
    xn = n.x(X)
    assert isinstance(xn, torch.Tensor)
    assert torch.allclose(xn.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(xn.std(dim=(0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    assert torch.allclose(n.y_inv(n.y(Y)), torch.as_tensor(Y), atol=1e-5)
    assert torch.allclose(n.x(torch.as_tensor(X)), xn)
    d = n.state_dict()
    json.dumps(d)  # plain python
    n2 = Normaliser.from_state_dict(d)
    assert torch.equal(n2.x(X), xn) and torch.equal(n2.y(Y), n.y(Y))


# ------------------------------------------------------------------------ symmetries
def _pi(psi, omega):
    """Pi of (psi, omega): turbtl.filters.sgs_fields once it takes grid fields of one size,
    else the SGS term of a Gaussian filter computed with a spectral Jacobian on the grid."""
    return sgs(psi, omega, delta=2 * 2 * np.pi / psi.shape[-1])


@pytest.mark.parametrize("k,flip", SYMMETRIES)
def test_symmetry_maps_pi_of_fields_to_transformed_pi(k, flip):
    """Pi(T psi, T omega) == T Pi(psi, omega), with the sign flip under reflections."""
    rng = np.random.default_rng(3)
    n = 24
    psi = random_psi(rng, (2,), n)
    omega = -laplacian(psi)
    pi = _pi(psi, omega)
    T = lambda f: apply_symmetry(torch.as_tensor(f), k, flip).numpy()  # noqa: E731
    np.testing.assert_allclose(T(omega), -laplacian(T(psi)), atol=1e-10)  # omega = -lap psi kept
    np.testing.assert_allclose(_pi(T(psi), T(omega)), T(pi), atol=1e-10 * np.abs(pi).max() + 1e-12)
    if flip:  # without the sign flip a reflection would NOT be a symmetry
        bad = -T(pi)
        assert np.abs(_pi(T(psi), T(omega)) - bad).max() > 0.1 * np.abs(pi).max()


def test_beta_plane_keeps_only_y_reflection():
    """On a beta-plane only y -> -y (with sign) survives: check on the beta*v term."""
    assert len(symmetry_group(0.0)) == 8
    g = symmetry_group(20.0)
    assert (0, False) in g and len(g) == 2
    rng = np.random.default_rng(1)
    psi = random_psi(rng, (1,), 16)[0]
    from synthetic import ddx
    v = lambda p: -ddx(p)  # noqa: E731
    for k, flip in g:
        T = lambda f: apply_symmetry(torch.as_tensor(f), k, flip).numpy()  # noqa: E731
        # every term of the equation maps with the fields' sign rule: beta*v must too
        np.testing.assert_allclose(v(T(psi)), T(v(psi)), atol=1e-10)
    T = lambda f: apply_symmetry(torch.as_tensor(f), 1, False).numpy()  # noqa: E731
    assert not np.allclose(v(T(psi)), T(v(psi)), atol=1e-3)


def test_augment_batch_consistent():
    x = torch.randn(16, 2, 8, 8)
    y = torch.randn(16, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    xa, ya = augment_batch(x, y, g)
    for i in range(16):
        hits = [(k, f) for k, f in SYMMETRIES
                if torch.equal(apply_symmetry(x[i], k, f), xa[i]) and torch.equal(apply_symmetry(y[i], k, f), ya[i])]
        assert hits, f"sample {i}: x and y not transformed by the same element"


# ------------------------------------------------------------------------- training
def test_fit_reduces_loss_and_evaluate(data):
    tr, va, te = load_xy(data, "train"), load_xy(data, "val"), load_xy(data, "test")
    norm = Normaliser.fit(*tr)
    m = small_net()
    before = evaluate(m, norm, *te, "cpu")
    hist = fit(m, norm, tr, va, epochs=15, batch_size=8, lr=3e-3, seed=0, device="cpu", progress=False)
    after = evaluate(m, norm, *te, "cpu")
    assert [h["epoch"] for h in hist] == list(range(1, 16))
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    assert after["nmse"] < 0.6 * before["nmse"] and after["cc"] > 0.6
    # the best validation state is the one kept
    best = min(h["val_loss"] for h in hist)
    assert evaluate(m, norm, *va, "cpu")["mse"] == pytest.approx(best, rel=1e-4)
    # metric definitions on a perfect and a trivial prediction
    assert set(after) == {"mse", "nmse", "cc", "spec_err"}


def test_evaluate_definitions():
    class Ident(torch.nn.Module):
        def forward(self, x):
            return x[:, 1:2]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    Y = X[:, 1:2].copy()
    norm = Normaliser([0, 0], [1, 1], [0], [1])
    m = evaluate(Ident(), norm, X, Y, "cpu")
    assert m["mse"] == pytest.approx(0) and m["nmse"] == pytest.approx(0)
    assert m["cc"] == pytest.approx(1) and m["spec_err"] == pytest.approx(0, abs=1e-6)
    m2 = evaluate(Ident(), norm, X, 2 * Y, "cpu")
    assert m2["cc"] == pytest.approx(1)
    assert m2["nmse"] == pytest.approx(np.mean(Y**2) / np.var(2 * Y), rel=1e-5)
    # spec_err = RMSE over shells 1 .. n/2-1 of log10(P_pred / P_true): the prediction Y of the
    # truth 2Y has a quarter of its power in every shell, so spec_err = |log10(1/4)| = log10(4)
    assert m2["spec_err"] == pytest.approx(math.log10(4), rel=1e-6)
    # cc is the Pearson correlation (means removed): an offset truth Y + 3 still gives 1 (without
    # the mean removal it would be about 1/sqrt(10)); nmse = 3^2 / var(Y); the spectra differ
    # only in shell 0, which spec_err leaves out
    m3 = evaluate(Ident(), norm, X, Y + 3, "cpu")
    assert m3["cc"] == pytest.approx(1, abs=1e-6)
    assert m3["nmse"] == pytest.approx(9 / np.var(Y.astype(np.float64)), rel=1e-5)
    assert m3["spec_err"] == pytest.approx(0, abs=1e-6)
    # and on a partly correlated truth: numpy's Pearson coefficient over all grid points
    Z = (Y + 0.7 * rng.standard_normal(Y.shape) + 1.5).astype(np.float32)
    m4 = evaluate(Ident(), norm, X, Z, "cpu")
    cc = np.corrcoef(Y.ravel().astype(np.float64), Z.ravel().astype(np.float64))[0, 1]
    assert 0.5 < cc < 0.95 and m4["cc"] == pytest.approx(cc, rel=1e-6)


def _run(data, seed=0, **kw):
    tr, va = load_xy(data, "train"), load_xy(data, "val")
    norm = Normaliser.fit(*tr)
    m = small_net(seed, depth=3, channels=4)
    h = fit(m, norm, tr, va, epochs=4, batch_size=8, lr=2e-3, seed=seed, device="cpu",
            progress=False, **kw)
    return m, h


def test_cpu_run_is_repeatable(data):
    m1, h1 = _run(data, augment=True)
    m2, h2 = _run(data, augment=True)
    assert h1 == h2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    m3, h3 = _run(data, seed=1, augment=True)
    assert h3 != h1


def test_resume_after_interruption_matches_uninterrupted(data, tmp_path):
    ref, href = _run(data, augment=True)
    resume = tmp_path / "resume" / "r.ckpt"

    class Killed(Exception):
        pass

    def kill(epoch, hist):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(data, augment=True, resume_path=resume, on_epoch_end=kill)
    assert resume.exists()
    m, h = _run(data, augment=True, resume_path=resume)
    assert not resume.exists()  # deleted at the end
    assert h == href
    for a, b in zip(ref.state_dict().values(), m.state_dict().values()):
        assert torch.equal(a, b)



def test_resume_file_of_other_data_or_settings_is_not_used(data, tmp_path, caplog):
    """The resume fingerprint holds a hash of the training and validation data, amp and the
    network's configuration: after a kill, a rerun on other data (a filter change upstream)
    starts anew and equals an uninterrupted run on that data, instead of resuming epochs
    trained on the old data."""
    tr, va = load_xy(data, "train"), load_xy(data, "val")
    tr2 = (tr[0] * np.float32(1.01), tr[1])
    resume = tmp_path / "r.ckpt"

    class Killed(Exception):
        pass

    def kill(epoch, hist):
        if epoch == 2:
            raise Killed

    def run(train, **kw):
        norm = Normaliser.fit(*train)
        m = small_net(0, depth=3, channels=4)
        h = fit(m, norm, train, va, epochs=4, batch_size=8, lr=2e-3, seed=0, device="cpu", progress=False, **kw)
        return m, h

    ref, href = run(tr2)
    with pytest.raises(Killed):
        run(tr, resume_path=resume, on_epoch_end=kill)
    assert resume.exists()
    with caplog.at_level("WARNING", logger="turbtl.training"):
        m, h = run(tr2, resume_path=resume)
    assert "ignoring resume file" in caplog.text
    assert h == href and all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), m.state_dict().values()))
    for kw in ({"amp": "bf16"}, {"augment": True}):  # other settings: not resumed either
        with pytest.raises(Killed):
            run(tr, resume_path=resume, on_epoch_end=kill)
        caplog.clear()
        with caplog.at_level("WARNING", logger="turbtl.training"):
            run(tr, resume_path=resume, **kw)
        assert "ignoring resume file" in caplog.text, kw


def test_train_base_killed_after_the_last_epoch_resumes_there(data, tmp_path, monkeypatch, caplog):
    """The resume file is deleted only once base.pt, the metrics and the history are written:
    a kill after the last epoch but before those outputs resumes after the last epoch (no
    retraining) and gives the uninterrupted run's network and history."""
    import turbtl.training as T

    kw = dict(network_cfg={"depth": 3, "channels": 4, "kernel_size": 5, "padding": "circular"},
              training_cfg={"epochs": 3, "batch_size": 8, "lr": 1e-3, "seed": 0}, device="cpu")
    ref = tmp_path / "ref"
    train_base(data, ref / "base.pt", ref / "m.json", ref / "h.csv", resume_path=ref / "r.ckpt", **kw)
    out = tmp_path / "out"
    real = T.save_checkpoint

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        train_base(data, out / "base.pt", out / "m.json", out / "h.csv", resume_path=out / "r.ckpt", **kw)
    assert (out / "r.ckpt").exists() and not (out / "base.pt").exists()
    monkeypatch.setattr(T, "save_checkpoint", real)
    with caplog.at_level("INFO", logger="turbtl.training"):
        train_base(data, out / "base.pt", out / "m.json", out / "h.csv", resume_path=out / "r.ckpt", **kw)
    assert "after epoch 3" in caplog.text and not (out / "r.ckpt").exists()
    assert (out / "h.csv").read_text() == (ref / "h.csv").read_text()
    (a, _, _), (b, _, _) = load_checkpoint(ref / "base.pt"), load_checkpoint(out / "base.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

def test_fit_params_freezes_others(data):
    tr = load_xy(data, "train")
    norm = Normaliser.fit(*tr)
    m = small_net(depth=3, channels=4)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    fit(m, norm, tr, epochs=1, batch_size=8, lr=1e-2, seed=0, device="cpu",
        params=m.layer_parameters(2), progress=False)
    after = m.state_dict()
    assert not torch.equal(before["layers.1.weight"], after["layers.1.weight"])
    for key in ("layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"):
        assert torch.equal(before[key], after[key])


def test_checkpoint_round_trip(data, tmp_path):
    tr = load_xy(data, "train")
    norm = Normaliser.fit(*tr)
    m = small_net()
    meta = {"system": "base", "x": np.float64(1.5), "cfg": {"lr": 1e-3}}
    p = tmp_path / "m" / "base.pt"
    save_checkpoint(p, m, norm, meta)
    m2, n2, meta2 = load_checkpoint(p)
    assert meta2 == {"system": "base", "x": 1.5, "cfg": {"lr": 1e-3}}
    assert m2.cfg == m.cfg and n2.state_dict() == norm.state_dict()
    x = norm.x(tr[0][:2])
    assert torch.equal(m(x), m2(x))
    assert list(p.parent.iterdir()) == [p]  # no temporary left
    with pytest.raises(TurbtlError, match="fix"):
        load_checkpoint(tmp_path / "nope.pt")


def test_train_base_writes_outputs(data, tmp_path):
    out = tmp_path / "models"
    metrics = train_base(data, out / "base.pt", out / "base_metrics.json", out / "base_history.csv",
                         network_cfg={"depth": 3, "channels": 4, "kernel_size": 5, "padding": "circular"},
                         training_cfg={"epochs": 3, "batch_size": 8, "lr": 1e-3, "augment": True,
                                       "seed": 0, "amp": "bf16"},
                         device="cpu", resume_path=out / ".resume" / "base.ckpt")
    for k in ("test_mse", "test_nmse", "test_cc", "test_spec_err", "val_mse", "val_nmse", "val_cc",
              "val_spec_err", "epochs", "seconds", "n_train"):
        assert k in metrics
    assert metrics["n_train"] == 32 and metrics["epochs"] == 3
    assert json.loads((out / "base_metrics.json").read_text())["n_train"] == 32
    h = pd.read_csv(out / "base_history.csv")
    assert list(h.columns) == ["epoch", "train_loss", "val_loss"] and len(h) == 3
    model, norm, meta = load_checkpoint(out / "base.pt")
    assert model.depth == 3 and meta["system"] == "base"
    assert norm.state_dict() == Normaliser.fit(*load_xy(data, "train")).state_dict()
    assert not (out / ".resume" / "base.ckpt").exists()
    assert math.isfinite(metrics["test_nmse"])


def _origin_fixed(T, n):
    """T composed with the grid translation that puts the origin back at index (0, 0)."""
    d = torch.zeros(n, n, dtype=torch.float64)
    d[0, 0] = 1.0
    iy, ix = [int(v) for v in (T(d).abs() > 0.5).nonzero()[0]]
    return lambda f: torch.roll(T(f), (-iy, -ix), dims=(-2, -1))


@pytest.mark.parametrize("k,flip", SYMMETRIES)
def test_symmetry_with_turbtl_filters_sgs_fields(k, flip):
    """The real pipeline: (psi_bar, omega_bar, Pi) of a transformed DNS vorticity equal the
    transformed (psi_bar, omega_bar, Pi), reflections with a sign change."""
    filters = pytest.importorskip("turbtl.filters")
    n_dns, n_les = 64, 16
    rng = np.random.default_rng(5)
    psi = random_psi(rng, (2,), n_dns)
    omega = torch.as_tensor(-laplacian(psi))
    T_dns = _origin_fixed(lambda f: apply_symmetry(f, k, flip), n_dns)
    T_les = _origin_fixed(lambda f: apply_symmetry(f, k, flip), n_les)
    out = filters.sgs_fields(omega, n_les)
    out_t = filters.sgs_fields(T_dns(omega), n_les)
    for name, a, b in zip(("psi", "omega", "pi"), out_t, out):
        scale = float(b.abs().max())
        torch.testing.assert_close(a, T_les(b), atol=1e-9 * scale, rtol=0, msg=name)
    if flip:
        # a pure geometric reflection R of omega (no sign change) reflects psi_bar and
        # omega_bar but gives -R(Pi): the Jacobian is odd under improper maps
        R_dns = lambda f: -T_dns(f)  # noqa: E731
        R_les = lambda f: -T_les(f)  # noqa: E731
        out_r = filters.sgs_fields(R_dns(omega), n_les)
        scale = float(out[2].abs().max())
        torch.testing.assert_close(out_r[1], R_les(out[1]), atol=1e-9 * scale, rtol=0)
        torch.testing.assert_close(out_r[2], -R_les(out[2]), atol=1e-9 * scale, rtol=0)
        assert float((out_r[2] - R_les(out[2])).abs().max()) > 0.5 * scale


def test_non_finite_data_and_loss_stop_the_run(tmp_path):
    """One NaN in Pi: loading names the file, variable and place; a NaN loss stops training."""
    import xarray as xr

    from synthetic import write_filtered
    from turbtl import TurbtlError
    from turbtl.data import load_xy
    from turbtl.io import write_netcdf
    from turbtl.network import NetConfig, SGSNet
    from turbtl.training import fit
    from turbtl.transfer import retrain_layer

    p = write_filtered(tmp_path / "d.nc", members=4, times=3, n=16, seed=0)
    with xr.open_dataset(p, engine="netcdf4") as ds:
        ds = ds.load()
    ds["pi"].values[1, 2, 3, 4] = np.nan
    write_netcdf(ds, p)
    with pytest.raises(TurbtlError, match=r"'pi' holds 1 non-finite value\(s\), the first at \{'member': "):
        load_xy(p, "train")
    X, Y = load_xy(p, "test")  # the other members are clean and still load
    Y = Y.copy()
    Y[0, 0, 0, 0] = np.nan
    norm = Normaliser.fit(X, np.nan_to_num(Y))
    net = SGSNet(NetConfig(depth=2, channels=2))
    with pytest.raises(TurbtlError, match="^training loss is nan at epoch 1; fix: check the inputs"):
        fit(net, norm, (X, Y), None, epochs=2, batch_size=2, lr=1e-3, seed=0, device="cpu", progress=False)
    # the same stop of the same loop (training.train_loop), named for the layer
    with pytest.raises(TurbtlError, match="^re-training layer 1: training loss is nan at epoch 1; fix: check the small"):
        retrain_layer(net, 1, X, Y, norm, epochs=1, batch_size=2, lr=1e-3, seed=0, device="cpu")


def test_the_cpu_adam_is_torch_adam_bit_for_bit():
    """turbtl.optim.Adam (the CPU trainings' optimiser: no lazy import of torch._dynamo) takes the
    steps torch.optim.Adam takes on the CPU, bit for bit, also on a frozen parameter without a
    gradient, and their state dicts load into each other (a resume file of either)."""
    import copy

    from turbtl.network import SGSNet
    from turbtl.optim import Adam, adam

    torch.manual_seed(0)
    a = SGSNet(depth=3, channels=4, kernel_size=3)
    b, init = copy.deepcopy(a), copy.deepcopy(a)
    pa, pb = list(a.parameters()), list(b.parameters())
    pa[0].requires_grad_(False)
    pb[0].requires_grad_(False)
    ta, tb = torch.optim.Adam(pa, lr=2e-3), adam(pb, 2e-3, "cpu")
    assert isinstance(tb, Adam) and isinstance(adam(pb, 1e-3, "meta"), torch.optim.Adam)
    for _ in range(60):
        x, y = torch.randn(3, 2, 12, 12), torch.randn(3, 1, 12, 12)
        for m, o in ((a, ta), (b, tb)):
            loss = ((m(x) - y) ** 2).mean()
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(pa, pb))
    assert torch.equal(pa[0], init.layers[0].weight) and not torch.equal(pa[1], init.layers[0].bias)  # frozen; trained
    again = Adam(pb, lr=1.0)
    again.load_state_dict(ta.state_dict())
    assert again.lr == 2e-3 and torch.equal(again.state[1]["exp_avg_sq"], ta.state[pa[1]]["exp_avg_sq"])
    torch.optim.Adam(pa, lr=1.0).load_state_dict(tb.state_dict())
