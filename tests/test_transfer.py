"""turbtl.transfer: one-layer re-training with cached prefixes, jobs, baselines, the sweep summary."""
import contextlib
import copy
import hashlib
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from synthetic import write_filtered
from turbtl import TurbtlError
from turbtl.data import SYMMETRIES, Normaliser, load_xy, small_subset
from turbtl.network import NetConfig, SGSNet
from turbtl.training import evaluate, fit, load_checkpoint, save_checkpoint, train_base
from turbtl.transfer import (CSV_COLUMNS, load_baseline_model, load_tl_model, retrain_layer,
                             run_baseline_job, run_layer_job, save_model_weights, summarise)

NET = {"depth": 4, "channels": 6, "kernel_size": 5, "padding": "circular"}
TCFG = {"layers": "all", "seeds": 2, "fraction": 0.5, "epochs": 3, "batch_size": 4, "lr": 1e-3}
TRCFG = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "augment": False, "seed": 0, "amp": "none"}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("tl")
    base = write_filtered(d / "base.nc", members=5, times=6, n=16, seed=0, name="base")
    target = write_filtered(d / "target.nc", members=4, times=6, n=16, seed=7, slope=2.0,
                            name="target")
    X, Y = load_xy(base, "train")
    norm = Normaliser.fit(X, Y)
    torch.manual_seed(0)
    model = SGSNet(NetConfig(**NET))
    ckpt = d / "base.pt"
    save_checkpoint(ckpt, model, norm, {"system": "base"})
    return {"dir": d, "base": base, "target": target, "ckpt": ckpt}


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("layer", [1, 2, 4])
def test_only_layer_L_changes_and_base_file_untouched(setup, layer):
    h0 = sha(setup["ckpt"])
    base, norm, _ = load_checkpoint(setup["ckpt"])
    ref = {k: v.clone() for k, v in base.state_dict().items()}
    Xs, Ys = small_subset(setup["target"], 8)
    tl, hist = retrain_layer(base, layer, Xs, Ys, norm, epochs=3, batch_size=4, lr=1e-2, seed=0,
                             device="cpu")
    assert len(hist) == 3
    for key, v in tl.state_dict().items():
        changed = not torch.equal(v, ref[key])
        assert changed == key.startswith(f"layers.{layer - 1}."), key
    for key, v in base.state_dict().items():  # the in-memory base is untouched too
        assert torch.equal(v, ref[key])
    assert sha(setup["ckpt"]) == h0
    # frozen only while training: the copy and the base both hand back trainable parameters
    assert all(p.requires_grad for p in tl.parameters()) and all(p.requires_grad for p in base.parameters())


@pytest.mark.parametrize("layer", [1, 3, 4])
def test_cached_prefix_equals_naive_frozen_training(setup, layer):
    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = small_subset(setup["target"], 8)
    kw = dict(epochs=4, batch_size=3, lr=5e-3, seed=11, device="cpu")
    fast, hf = retrain_layer(base, layer, Xs, Ys, norm, cached=True, **kw)
    slow, hs = retrain_layer(base, layer, Xs, Ys, norm, cached=False, **kw)
    np.testing.assert_allclose([h["train_loss"] for h in hf], [h["train_loss"] for h in hs], rtol=1e-5)
    for a, b in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", [1, 3])
def test_retrain_layer_is_fit_of_that_layer(setup, layer):
    """retrain_layer runs fit's loop (training.train_loop): the naive way and ``fit`` with
    ``params`` = layer L do the same float operations in the same order (batch order from
    the seed, one Adam group), so the weights are bit-equal.  The histories differ only in
    how the epoch loss is summed (host float64 vs device float32)."""
    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = small_subset(setup["target"], 8)
    kw = dict(epochs=3, batch_size=3, lr=5e-3, seed=11, device="cpu")
    tl, h_tl = retrain_layer(base, layer, Xs, Ys, norm, cached=False, **kw)
    ref = copy.deepcopy(base)
    h_fit = fit(ref, norm, (Xs, Ys), params=ref.layer_parameters(layer), progress=False, **kw)
    for (key, a), b in zip(tl.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), key
    np.testing.assert_allclose([h["train_loss"] for h in h_tl], [h["train_loss"] for h in h_fit], rtol=1e-6)
    with pytest.raises(TurbtlError, match="training.amp must be one of"):  # fit's amp check too
        retrain_layer(base, layer, Xs, Ys, norm, amp="fp8", **kw)


@pytest.mark.parametrize("cached", [True, False])
def test_retrain_layer_resume_after_interruption_matches_uninterrupted(setup, tmp_path, monkeypatch, caplog,
                                                                      cached):
    """fit's resume file serves retrain_layer too: killed after epoch 2, resumed, bit-equal."""
    import turbtl.training as T

    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = small_subset(setup["target"], 8)
    kw = dict(epochs=4, batch_size=3, lr=5e-3, seed=3, device="cpu", cached=cached)
    ref, h_ref = retrain_layer(base, 2, Xs, Ys, norm, **kw)

    class Killed(Exception):
        pass

    real, saves = T.atomic_path, []

    @contextlib.contextmanager
    def killed_after_second_save(path):
        with real(path) as tmp:
            yield tmp
        saves.append(path)
        if len(saves) == 2:
            raise Killed

    resume = tmp_path / "r.ckpt"
    monkeypatch.setattr(T, "atomic_path", killed_after_second_save)
    with pytest.raises(Killed):
        retrain_layer(base, 2, Xs, Ys, norm, resume_path=resume, **kw)
    monkeypatch.undo()
    assert torch.load(resume, weights_only=True)["epoch"] == 2
    with caplog.at_level(logging.INFO, logger="turbtl.transfer"):
        m, h = retrain_layer(base, 2, Xs, Ys, norm, resume_path=resume, **kw)
    assert "after epoch 2" in caplog.text  # resumed, not restarted
    assert not resume.exists() and h == h_ref
    for (key, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), key


def test_cached_prefix_gradient_equals_full_backward(setup):
    """One step's gradient of layer L: cached prefix == full network with everything trainable."""
    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = small_subset(setup["target"], 8)
    x, y = norm.x(Xs), norm.y(Ys)
    L = 2
    full = torch.mean((base(x) - y) ** 2)
    g_full = torch.autograd.grad(full, base.layer_parameters(L))
    for p in base.parameters():
        p.requires_grad_(False)
    for p in base.layer_parameters(L):
        p.requires_grad_(True)
    with torch.no_grad():
        h = base.forward_range(x, 1, L - 1)
    loss = torch.mean((base.forward_range(h, L, base.depth) - y) ** 2)
    loss.backward()
    for p, g in zip(base.layer_parameters(L), g_full):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for i in (1, 3, 4) for p in base.layer_parameters(i))


def test_retrain_layer_seeds_and_range(setup):
    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = small_subset(setup["target"], 8)
    kw = dict(epochs=2, batch_size=3, lr=5e-3, device="cpu")
    a, _ = retrain_layer(base, 2, Xs, Ys, norm, seed=0, **kw)
    b, _ = retrain_layer(base, 2, Xs, Ys, norm, seed=0, **kw)
    c, _ = retrain_layer(base, 2, Xs, Ys, norm, seed=1, **kw)
    assert torch.equal(a.layer(2).weight, b.layer(2).weight)
    assert not torch.equal(a.layer(2).weight, c.layer(2).weight)
    with pytest.raises(TurbtlError):
        retrain_layer(base, 5, Xs, Ys, norm, seed=0, **kw)


def test_layer_job_and_load_tl_model(setup):
    d = setup["dir"]
    h0 = sha(setup["ckpt"])
    df = run_layer_job(setup["ckpt"], setup["target"], 3, d / "runs" / "layer3.csv",
                       d / "runs" / "layer3.pt", transfer_cfg=TCFG, n_small=8, device="cpu")
    assert sha(setup["ckpt"]) == h0
    assert list(df.columns) == CSV_COLUMNS and len(df) == 2
    csv = pd.read_csv(d / "runs" / "layer3.csv")
    assert list(csv.columns) == CSV_COLUMNS and len(csv) == 2
    assert (csv["method"] == "tl_layer").all() and (csv["layer"] == 3).all()
    assert list(csv["seed"]) == [0, 1] and (csv["n_train"] == 8).all() and (csv["target"] == "target").all()
    w = torch.load(d / "runs" / "layer3.pt", weights_only=True)
    assert w["layer"] == 3 and w["seeds"] == [0, 1] and set(w["weights"]) == {0, 1}
    assert w["weights"][0]["weight"].shape == (6, 6, 5, 5)
    # the TL model of seed 1 reproduces the CSV's test metrics
    m = load_tl_model(setup["ckpt"], d / "runs" / "layer3.pt", 1)
    _, norm, _ = load_checkpoint(setup["ckpt"])
    got = evaluate(m, norm, *load_xy(setup["target"], "test"), "cpu")
    assert got["nmse"] == pytest.approx(csv["nmse"][1], rel=1e-6)
    base, _, _ = load_checkpoint(setup["ckpt"])
    for key, v in m.state_dict().items():
        assert torch.equal(v, base.state_dict()[key]) != key.startswith("layers.2."), key
    with pytest.raises(TurbtlError, match="seed"):
        load_tl_model(setup["ckpt"], d / "runs" / "layer3.pt", 5)


@pytest.mark.parametrize("method", ["zero_shot", "scratch", "finetune_all", "full_target"])
def test_baseline_jobs(setup, method):
    d = setup["dir"]
    out = d / "runs" / f"baseline_{method}.csv"
    wts = d / "runs" / f"baseline_{method}.pt"
    run_baseline_job(setup["ckpt"], setup["target"], method, out, transfer_cfg=TCFG,
                     training_cfg=TRCFG, network_cfg=NET, n_small=8, device="cpu", out_weights=wts)
    csv = pd.read_csv(out)
    # the networks handed to the a-posteriori LES are the ones scored: each seed's saved
    # network, loaded on the base architecture, reproduces its row's test metrics
    _, norm, _ = load_checkpoint(setup["ckpt"])
    Xt, Yt = load_xy(setup["target"], "test")
    for i, seed in enumerate(csv["seed"]):
        got = evaluate(load_baseline_model(setup["ckpt"], wts, seed), norm, Xt, Yt, "cpu")
        for k in ("mse", "nmse", "cc"):
            assert got[k] == pytest.approx(csv[k][i], rel=1e-6), (seed, k)
    assert list(csv.columns) == CSV_COLUMNS
    assert (csv["method"] == method).all() and (csv["layer"] == 0).all()
    if method == "zero_shot":
        assert len(csv) == 1 and csv["seed"][0] == 0 and csv["n_train"][0] == 0
    else:  # full_target: one network (the same data for every seed), the others one per seed
        assert list(csv["seed"]) == ([0] if method == "full_target" else [0, 1])
        assert (csv["n_train"] == (12 if method == "full_target" else 8)).all()
        assert (csv["epochs"] == (2 if method == "full_target" else 3)).all()
    assert np.isfinite(csv[["mse", "nmse", "cc", "spec_err"]].to_numpy()).all()
    with pytest.raises(TurbtlError, match="unknown"):
        run_baseline_job(setup["ckpt"], setup["target"], "bogus", d / "x.csv", transfer_cfg=TCFG,
                         training_cfg=TRCFG, network_cfg=NET, n_small=8, device="cpu")


@pytest.mark.parametrize("method", ["scratch", "finetune_all", "full_target"])
def test_baselines_start_from_the_documented_networks(setup, tmp_path, method):
    """lr = 0 leaves every weight where it started (Adam's step is lr-scaled), so the saved
    networks ARE the starting points: finetune_all starts from the base weights; scratch and
    full_target from a fresh SGSNet of the base architecture initialised under
    ``torch.manual_seed(seed)`` with the TL seed (one fresh init per seed, not the base)."""
    # setup's base net IS the seed-0 fresh init (torch.manual_seed(0)): use another one here
    _, norm, _ = load_checkpoint(setup["ckpt"])
    torch.manual_seed(1234)
    base = SGSNet(NetConfig(**NET))
    ckpt = tmp_path / "base.pt"
    save_checkpoint(ckpt, base, norm, {"system": "base"})
    zero = {"lr": 0.0, "epochs": 1}
    wts = tmp_path / f"{method}.pt"
    run_baseline_job(ckpt, setup["target"], method, tmp_path / f"{method}.csv",
                     transfer_cfg=dict(TCFG, **zero), training_cfg=dict(TRCFG, **zero), network_cfg=NET,
                     n_small=8, device="cpu", out_weights=wts)
    saved = torch.load(wts, weights_only=True)
    seeds = [0] if method == "full_target" else [0, 1]
    assert saved["method"] == method and saved["seeds"] == seeds
    for seed in seeds:
        if method == "finetune_all":
            want = base.state_dict()
        else:
            torch.manual_seed(seed)
            want = SGSNet(NetConfig(**NET)).state_dict()
        got = saved["state"][seed]
        assert set(got) == set(want)
        for key, v in want.items():
            assert torch.equal(got[key], v), (seed, key)
        if method != "finetune_all":  # a fresh net, not the base one
            assert not torch.equal(got["layers.0.weight"], base.state_dict()["layers.0.weight"])


def test_baseline_weights_round_trip(setup, tmp_path):
    """save_model_weights -> load_baseline_model: per seed, the same network (same outputs);
    a file with one network (zero shot, seed 0) serves every seed."""
    base, norm, _ = load_checkpoint(setup["ckpt"])
    nets = {}
    for seed in (0, 3):
        torch.manual_seed(100 + seed)
        nets[seed] = SGSNet(NetConfig(**NET)).eval()
    p = tmp_path / "baseline_scratch.pt"
    save_model_weights(p, "scratch", {s: m.state_dict() for s, m in nets.items()})
    x = norm.x(load_xy(setup["target"], "test")[0][:3])
    with torch.no_grad():
        for seed, m in nets.items():
            got = load_baseline_model(setup["ckpt"], p, seed)
            assert not got.training
            assert torch.equal(got(x), m(x)), seed
        assert not torch.equal(nets[0](x), nets[3](x))  # the seeds are told apart
    z = tmp_path / "baseline_zero_shot.pt"
    save_model_weights(z, "zero_shot", {0: base.state_dict()})
    with torch.no_grad():
        for seed in (0, 2):
            assert torch.equal(load_baseline_model(setup["ckpt"], z, seed)(x), base(x))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(TurbtlError, match="baseline-weights"):
        load_baseline_model(setup["ckpt"], tmp_path / "bad.pt", 0)


BETA_GROUP = {(0, False), (2, True)}  # identity and y -> -y (flip x, rotate 180): docs of symmetry_group


@pytest.fixture
def symmetry_spy(monkeypatch):
    """Record the group ``fit`` augments with and every D4 element actually applied."""
    import turbtl.data as D
    import turbtl.training as T

    groups, applied = [], []
    real_aug, real_apply = T.augment_batch, D.apply_symmetry

    def aug(x, y, gen, group=D.SYMMETRIES):
        groups.append(tuple(tuple(g) for g in group))
        return real_aug(x, y, gen, group)

    def apply(f, k, flip):
        applied.append((int(k) % 4, bool(flip)))
        return real_apply(f, k, flip)

    monkeypatch.setattr(T, "augment_batch", aug)
    monkeypatch.setattr(D, "apply_symmetry", apply)
    return groups, applied


@pytest.fixture(scope="module")
def beta_flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("beta")
    return write_filtered(d / "beta.nc", members=4, times=8, n=16, seed=3, beta=20.0, name="beta")


def test_base_training_on_a_beta_plane_augments_only_with_its_symmetries(beta_flow, tmp_path, symmetry_spy):
    groups, applied = symmetry_spy
    train_base(beta_flow, tmp_path / "b.pt", tmp_path / "m.json", tmp_path / "h.csv",
               network_cfg={"depth": 2, "channels": 2, "kernel_size": 3, "padding": "circular"},
               training_cfg=dict(TRCFG, epochs=2, batch_size=4, augment=True), device="cpu")
    assert groups and all(set(g) == BETA_GROUP for g in groups)
    assert set(applied) == BETA_GROUP  # 32 draws: both elements come up


@pytest.mark.parametrize("beta", [20.0, 0.0])
def test_full_target_on_a_beta_plane_augments_only_with_its_symmetries(setup, beta_flow, tmp_path,
                                                                      symmetry_spy, beta):
    """full_target augments (training.augment) with the TARGET flow's group; the small-set
    baselines never augment (like the TL runs they are compared with)."""
    groups, applied = symmetry_spy
    target = beta_flow if beta else setup["target"]
    for method in ("full_target", "scratch", "finetune_all"):
        run_baseline_job(setup["ckpt"], target, method, tmp_path / f"{method}.csv",
                         transfer_cfg=dict(TCFG, seeds=1, epochs=1), network_cfg=NET, n_small=8,
                         training_cfg=dict(TRCFG, epochs=2, batch_size=4, augment=True), device="cpu")
        if method == "full_target":
            assert groups and all(set(g) == (BETA_GROUP if beta else set(SYMMETRIES)) for g in groups)
            assert set(applied) <= set(groups[0]) and len(set(applied)) > 1
            if not beta:  # the control: a flat flow draws rotations the beta-plane forbids
                assert set(applied) - BETA_GROUP
            groups.clear()
            applied.clear()
        else:
            assert not groups and not applied, method


def _table(tmp_path, nmse_by_layer, baselines):
    csvs = []
    for L, vals in nmse_by_layer.items():
        rows = [{"target": "t", "method": "tl_layer", "layer": L, "seed": s, "n_train": 8, "epochs": 3,
                 "mse": v, "nmse": v, "cc": 1 - v, "spec_err": 0.1, "seconds": 1.0}
                for s, v in enumerate(vals)]
        p = tmp_path / f"layer{L}.csv"
        pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(p, index=False)
        csvs.append(p)
    bcsvs = []
    for m, vals in baselines.items():
        rows = [{"target": "t", "method": m, "layer": 0, "seed": s, "n_train": 8, "epochs": 3,
                 "mse": v, "nmse": v, "cc": 1 - v, "spec_err": 0.2, "seconds": 1.0}
                for s, v in enumerate(vals)]
        p = tmp_path / f"baseline_{m}.csv"
        pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(p, index=False)
        bcsvs.append(p)
    return csvs, bcsvs


def test_summary_best_layer_intervals_and_resolved(tmp_path):
    # layer 3 is layer 1 + 0.04 in every seed: paired, resolved (p = 0 for a constant difference)
    layers = {1: [0.20, 0.22, 0.21], 2: [0.30, 0.31, 0.29], 3: [0.24, 0.26, 0.25], 4: [0.5, 0.5, 0.5]}
    csvs, b = _table(tmp_path, layers, {"zero_shot": [0.9], "scratch": [0.6, 0.7, 0.65]})
    s = summarise(csvs, b, "t", tmp_path / "sweep.csv", tmp_path / "summary.json")
    assert s == json.loads((tmp_path / "summary.json").read_text())
    assert s["target"] == "t" and s["metric"] == "nmse" and s["n_seeds"] == 3
    assert s["best_layer"] == 1 and s["runner_up"] == 3
    assert s["margin"] == pytest.approx(0.25 - 0.21)
    assert s["p_value"] == 0.0 and s["resolved"] is True and "paired" in s["test"]
    assert set(s["layers"]) == {"1", "2", "3", "4"}
    l1 = s["layers"]["1"]
    assert l1["mean"] == pytest.approx(0.21) and l1["min"] == 0.20 and l1["max"] == 0.22
    assert l1["ci95_high"] - l1["mean"] == pytest.approx(4.302652729911275 * 0.01 / np.sqrt(3))
    assert l1["cc_mean"] == pytest.approx(0.79) and l1["spec_err_mean"] == pytest.approx(0.1)
    assert set(s["baselines"]) == {"zero_shot", "scratch"}
    assert s["baselines"]["zero_shot"]["std"] == 0.0
    sweep = pd.read_csv(tmp_path / "sweep.csv")
    assert list(sweep.columns) == CSV_COLUMNS and len(sweep) == 12 + 1 + 3


def test_summary_not_resolved_when_paired_differences_change_sign(tmp_path):
    layers = {1: [0.20, 0.30, 0.25], 2: [0.24, 0.28, 0.26], 3: [0.6, 0.6, 0.6]}
    csvs, b = _table(tmp_path, layers, {"zero_shot": [0.9]})
    s = summarise(csvs, b, "t", tmp_path / "sweep.csv", tmp_path / "summary.json")
    assert s["best_layer"] == 1 and s["runner_up"] == 2
    assert s["margin"] == pytest.approx(0.01)
    from scipy import stats
    assert s["p_value"] == pytest.approx(stats.ttest_rel([0.24, 0.28, 0.26], [0.20, 0.30, 0.25]).pvalue)
    assert s["resolved"] is False


def test_seeds_draw_paired_small_sets(setup, tmp_path, monkeypatch):
    """Within a seed every layer and the small-set baselines get the same draw; across seeds
    the draws differ; no draw contains a val or test snapshot."""
    import turbtl.transfer as T
    from turbtl.data import split_members

    from turbtl import data as Dm

    seen, opened = [], []
    real, real_open = Dm.FilteredData.small_sets, Dm._open

    def spy(self, n_small, seeds):
        out = real(self, n_small, seeds)
        seen.append({tuple(sd): x for sd, (x, _) in zip(seeds, out)})
        return out

    def count_open(path):
        opened.append(str(path))
        return real_open(path)

    monkeypatch.setattr(Dm.FilteredData, "small_sets", spy)
    monkeypatch.setattr(Dm, "_open", count_open)
    cfg = dict(TCFG, seeds=3, epochs=1, subset_seed=4)
    for L in (1, 3):
        run_layer_job(setup["ckpt"], setup["target"], L, tmp_path / f"l{L}.csv", tmp_path / f"l{L}.pt",
                      transfer_cfg=cfg, n_small=6, device="cpu")
    for m in ("scratch", "finetune_all"):
        run_baseline_job(setup["ckpt"], setup["target"], m, tmp_path / f"{m}.csv", transfer_cfg=cfg,
                         training_cfg=TRCFG, network_cfg=NET, n_small=6, device="cpu")
    assert len(seen) == 4
    assert opened == [str(setup["target"])] * 4  # each job reads the filtered file once
    keys = [(4, 0), (4, 1), (4, 2)]
    for d in seen:
        assert list(d) == keys
        for k in keys:  # paired: the same draw in every job
            assert np.array_equal(d[k], seen[0][k])
    assert not np.array_equal(seen[0][keys[0]], seen[0][keys[1]])
    assert not np.array_equal(seen[0][keys[1]], seen[0][keys[2]])
    # every drawn snapshot is a train snapshot
    X_train = load_xy(setup["target"], "train")[0]
    held = np.concatenate([load_xy(setup["target"], s)[0] for s in ("val", "test")])
    for x in seen[0].values():
        for snap in x:
            assert any(np.array_equal(snap, t) for t in X_train)
            assert not any(np.array_equal(snap, h) for h in held)
    assert split_members(setup["target"])["test"]  # the file has test members to avoid
    assert T.predictor_draw(cfg) == (4, 0)


def test_subset_seed_selects_the_small_set(setup, tmp_path):
    """transfer.subset_seed roots the draws: another root, other sets, other weights."""
    from turbtl.data import small_subset
    from turbtl.transfer import draw_seed, subset_seed

    assert subset_seed({}) == 0 and subset_seed({"subset_seed": 3}) == 3
    assert draw_seed({"subset_seed": 3}, 2) == (3, 2)
    a = small_subset(setup["target"], 8, seed=(0, 0))[0]
    b = small_subset(setup["target"], 8, seed=(3, 0))[0]
    assert not np.array_equal(a, b)
    w = {}
    for s in (0, 3):
        cfg = dict(TCFG, seeds=1, subset_seed=s)
        run_layer_job(setup["ckpt"], setup["target"], 2, tmp_path / f"l{s}.csv", tmp_path / f"l{s}.pt",
                      transfer_cfg=cfg, n_small=8, device="cpu")
        w[s] = torch.load(tmp_path / f"l{s}.pt", weights_only=True)["weights"]
    k = next(iter(w[0]))
    assert not torch.equal(w[0][k]["weight"], w[3][k]["weight"])


# --------------------------------------------------------------------------- pairs of layers
@pytest.mark.parametrize("pair", [(2, 4), (1, 3)])
def test_a_pair_changes_exactly_its_two_layers_and_caches_the_shallower_prefix(setup, pair):
    """retrain_layer((a, b)): only layers a and b change, the cached prefix ends before a and
    the forward runs to the last layer (same updates as the naive full backward, also where
    b is not the last layer), and a pair is not the sum of its singles."""
    a, b = pair
    base, norm, _ = load_checkpoint(setup["ckpt"])
    ref = {k: v.clone() for k, v in base.state_dict().items()}
    Xs, Ys = small_subset(setup["target"], 8)
    kw = dict(epochs=4, batch_size=3, lr=5e-3, seed=11, device="cpu")
    fast, hf = retrain_layer(base, (a, b), Xs, Ys, norm, cached=True, **kw)
    slow, hs = retrain_layer(base, (b, a), Xs, Ys, norm, cached=False, **kw)
    for key, v in fast.state_dict().items():
        assert (not torch.equal(v, ref[key])) == key.startswith((f"layers.{a - 1}.", f"layers.{b - 1}.")), key
    np.testing.assert_allclose([h["train_loss"] for h in hf], [h["train_loss"] for h in hs], rtol=1e-5)
    for p, q in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    one, _ = retrain_layer(base, b, Xs, Ys, norm, **kw)
    assert not torch.equal(one.layer(b).weight, fast.layer(b).weight)  # layer b trained beside a, not alone
    with pytest.raises(TurbtlError, match=r"transfer layer \[5\] is outside 1\.\.4"):
        retrain_layer(base, (2, 5), Xs, Ys, norm, **kw)


def test_pair_job_is_paired_with_the_layer_jobs(setup, tmp_path):
    """run_pair_job: one row per seed, each seed re-trained on the layer jobs' own draw of
    the small set (seed 1 re-made by hand from draw_seed reproduces its test nmse); a < b."""
    from turbtl.pairs import PAIR_COLUMNS, run_pair_job

    df = run_pair_job(setup["ckpt"], setup["target"], 1, 3, tmp_path / "pair1_3.csv", transfer_cfg=TCFG, n_small=8,
                      device="cpu")
    csv = pd.read_csv(tmp_path / "pair1_3.csv")
    assert list(csv.columns) == PAIR_COLUMNS and list(df.columns) == PAIR_COLUMNS
    assert (csv["method"] == "tl_pair").all() and (csv["layer_a"] == 1).all() and (csv["layer_b"] == 3).all()
    assert list(csv["seed"]) == [0, 1] and (csv["n_train"] == 8).all()
    # seed 1's network, re-made by hand from the same draw, has the CSV's test nmse
    from turbtl.data import FilteredData
    from turbtl.transfer import draw_seed

    base, norm, _ = load_checkpoint(setup["ckpt"])
    Xs, Ys = FilteredData(setup["target"]).small_sets(8, [draw_seed(TCFG, 1)])[0]
    net, _ = retrain_layer(base, (1, 3), Xs, Ys, norm, epochs=3, batch_size=4, lr=1e-3, seed=1, device="cpu")
    assert evaluate(net, norm, *load_xy(setup["target"], "test"), "cpu")["nmse"] == pytest.approx(csv["nmse"][1], rel=1e-6)
    with pytest.raises(TurbtlError, match="a < b"):
        run_pair_job(setup["ckpt"], setup["target"], 3, 3, tmp_path / "x.csv", transfer_cfg=TCFG, n_small=8, device="cpu")


def test_pair_summary_finds_the_best_pair_and_tests_it_against_the_best_single(tmp_path):
    from turbtl.pairs import PAIR_COLUMNS, summarise_pairs

    layers = {1: [0.20, 0.22, 0.21], 2: [0.30, 0.31, 0.29], 3: [0.24, 0.26, 0.25]}
    csvs, _ = _table(tmp_path, layers, {})
    pairs = {(1, 2): [0.18, 0.19, 0.20], (1, 3): [0.25, 0.25, 0.27], (2, 3): [0.40, 0.41, 0.39]}
    pcsvs = []
    for (a, b), vals in pairs.items():
        rows = [{"target": "t", "method": "tl_pair", "layer_a": a, "layer_b": b, "seed": s, "n_train": 8, "epochs": 3,
                 "mse": v, "nmse": v, "cc": 1 - v, "spec_err": 0.1, "seconds": 1.0} for s, v in enumerate(vals)]
        pcsvs.append(tmp_path / f"pair{a}_{b}.csv")
        pd.DataFrame(rows, columns=PAIR_COLUMNS).to_csv(pcsvs[-1], index=False)
    s = summarise_pairs(pcsvs, csvs, "t", tmp_path / "pairs.csv", tmp_path / "pairs.json")
    assert s == json.loads((tmp_path / "pairs.json").read_text())
    assert s["best_pair"] == [1, 2] and s["best_single"] == 1 and s["n_pairs"] == 3 and s["n_seeds"] == 3
    # layer 1 minus pair 1+2 per seed: 0.02, 0.03, 0.01 -> mean 0.02, t = 0.02 / (0.01 / sqrt 3)
    from scipy import stats

    assert s["diff_single_minus_pair"] == pytest.approx(0.02)
    assert s["p_value"] == pytest.approx(stats.ttest_rel([0.20, 0.22, 0.21], [0.18, 0.19, 0.20]).pvalue)
    assert s["pair_beats_single"] is (s["p_value"] < 0.05)
    assert s["best_pair_stats"]["mean"] == pytest.approx(0.19)
    table = pd.read_csv(tmp_path / "pairs.csv")
    assert len(table) == 3 + 3  # the pairs and the single layers (a = b)
    diag = table[table["layer_a"] == table["layer_b"]].set_index("layer_a")["mean"]
    assert diag.to_dict() == pytest.approx({1: 0.21, 2: 0.30, 3: 0.25})
    # a pair that does not beat the best single layer
    worse = {(1, 2): [0.25, 0.26, 0.27]}
    for (a, b), vals in worse.items():
        rows = [{"target": "t", "method": "tl_pair", "layer_a": a, "layer_b": b, "seed": i, "n_train": 8, "epochs": 3,
                 "mse": v, "nmse": v, "cc": 1 - v, "spec_err": 0.1, "seconds": 1.0} for i, v in enumerate(vals)]
        pd.DataFrame(rows, columns=PAIR_COLUMNS).to_csv(tmp_path / "w.csv", index=False)
    s = summarise_pairs([tmp_path / "w.csv"], csvs, "t", tmp_path / "p2.csv", tmp_path / "p2.json")
    assert s["best_pair"] == [1, 2] and s["diff_single_minus_pair"] < 0 and s["pair_beats_single"] is False
    # a significant pair that does not hold the best single layer: 2+3 beats layer 1 by about 0.05 in every seed
    better = [0.155, 0.17, 0.16]
    rows = [{"target": "t", "method": "tl_pair", "layer_a": 2, "layer_b": 3, "seed": i, "n_train": 8, "epochs": 3,
             "mse": v, "nmse": v, "cc": 1 - v, "spec_err": 0.1, "seconds": 1.0} for i, v in enumerate(better)]
    pd.DataFrame(rows, columns=PAIR_COLUMNS).to_csv(tmp_path / "b.csv", index=False)
    s = summarise_pairs([tmp_path / "w.csv", tmp_path / "b.csv"], csvs, "t", tmp_path / "p4.csv", tmp_path / "p4.json")
    assert s["best_pair"] == [2, 3] and s["best_single"] == 1
    assert s["diff_single_minus_pair"] == pytest.approx((0.045 + 0.05 + 0.05) / 3)
    assert s["p_value"] == pytest.approx(stats.ttest_rel([0.20, 0.22, 0.21], better).pvalue) and s["p_value"] < 0.05
    assert s["pair_beats_single"] is True
    with pytest.raises(TurbtlError, match="no pair runs"):
        summarise_pairs([], csvs, "t", tmp_path / "p3.csv", tmp_path / "p3.json")


def test_size_summary_gives_each_size_its_verdict_and_scores_the_main_best_there(tmp_path):
    """sizes.json: per small-set size the paired verdict of that size's own runs, its TL gain
    against the zero shot, and the regret and hit of the main size's best layer and of the
    shallowest layer at that size; sizes.csv: per size and layer, the seed statistics."""
    from scipy import stats

    from turbtl.sizes import summarise_sizes

    main = {1: [0.20, 0.22, 0.21], 2: [0.24, 0.25, 0.26], 3: [0.30, 0.31, 0.29]}  # n = 8: layer 1, resolved
    small = {1: [0.36, 0.38, 0.37], 2: [0.31, 0.33, 0.32], 3: [0.34, 0.345, 0.335]}  # n = 2: layer 2
    (tmp_path / "m").mkdir()
    (tmp_path / "s").mkdir()
    csvs, zs = _table(tmp_path / "m", main, {"zero_shot": [0.40]})
    scsv, _ = _table(tmp_path / "s", small, {})
    for p in scsv:  # the small size's rows say how many snapshots they re-trained on
        pd.read_csv(p).assign(n_train=2).to_csv(p, index=False)
    s = summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, zs[0], "t", tmp_path / "sizes.csv",
                        tmp_path / "sizes.json")
    assert s == json.loads((tmp_path / "sizes.json").read_text())
    assert s["main_best_layer"] == 1 and s["best_layers"] == [2, 1] and s["same_best_layer"] is False
    assert s["zero_shot"] == pytest.approx(0.40)
    by = {z["n_small"]: z for z in s["sizes"]}
    assert [z["n_small"] for z in s["sizes"]] == [2, 8] and by[8]["main"] and not by[2]["main"]
    assert by[8]["best_layer"] == 1 and by[8]["main_best"] == {"layer": 1, "regret": 0.0, "hit": True, "p_value": None}
    # at n = 2 the best is layer 2 (0.32); its runner-up layer 3 (0.34) in the paired test
    assert by[2]["best_layer"] == 2 and by[2]["runner_up"] == 3
    assert by[2]["p_value"] == pytest.approx(stats.ttest_rel([0.34, 0.345, 0.335], [0.31, 0.33, 0.32]).pvalue)
    assert by[2]["tl_gain"] == pytest.approx((0.40 - 0.32) / 0.40)
    # the main best (layer 1, 0.37) at n = 2: regret (0.37 - 0.32) / (0.40 - 0.32); worse by 0.05 in every seed
    mb = by[2]["main_best"]
    assert mb["layer"] == 1 and mb["regret"] == pytest.approx(0.05 / 0.08) and mb["hit"] is False and mb["p_value"] == 0.0
    assert by[2]["shallowest"] == mb and s["main_best_hit_everywhere"] is False
    table = pd.read_csv(tmp_path / "sizes.csv")
    assert len(table) == 6 and set(table["n_small"]) == {2, 8}
    got = table.set_index(["n_small", "layer"])["mean"]
    assert got[(2, 2)] == pytest.approx(0.32) and got[(8, 3)] == pytest.approx(0.30)
    assert table[table["n_small"] == 8]["main"].all() and not table[table["n_small"] == 2]["main"].any()
    # runs that re-trained on another size than their folder says are refused
    with pytest.raises(TurbtlError, match="runs of size 3 re-trained on \\[2\\] snapshots"):
        summarise_sizes({8: csvs, 3: scsv}, {8: 0.5, 3: 0.2}, 8, zs[0], "t", tmp_path / "x.csv", tmp_path / "x.json")


def test_size_summary_tests_the_small_set_baselines_against_each_sizes_best_layer(tmp_path):
    """With ``baselines`` (transfer_baseline_size), sizes.json gives per size each small-set
    baseline's nmse and the paired test over seeds of that size's best layer minus it; runs of
    another size are refused."""
    from scipy import stats

    from turbtl.sizes import summarise_sizes

    main = {1: [0.20, 0.22, 0.21], 2: [0.24, 0.25, 0.26]}  # n = 8: best 1
    small = {1: [0.36, 0.38, 0.37], 2: [0.31, 0.33, 0.32]}  # n = 2: best 2
    for d in ("m", "s"):
        (tmp_path / d).mkdir()
    csvs, bm = _table(tmp_path / "m", main, {"zero_shot": [0.40], "scratch": [0.50, 0.60, 0.55],
                                             "finetune_all": [0.25, 0.27, 0.26]})
    scsv, bs = _table(tmp_path / "s", small, {"scratch": [0.90, 0.95, 0.92], "finetune_all": [0.30, 0.325, 0.31]})
    for q in [*scsv, *bs]:
        pd.read_csv(q).assign(n_train=2).to_csv(q, index=False)
    s = summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, bm[0], "t", tmp_path / "sizes.csv",
                        tmp_path / "sizes.json", baselines={8: bm[1:], 2: bs})
    b8, b2 = (z["baselines"] for z in s["sizes"][::-1])
    assert set(b8) == set(b2) == {"scratch", "finetune_all"}
    # n = 8: layer 1 beats fine-tuning everything by 0.05 in every seed (p = 0) and scratch by far
    ft = b8["finetune_all"]
    assert ft["mean"] == pytest.approx(0.26) and ft["rel_zero_shot"] == pytest.approx(0.26 / 0.40)
    assert ft["best_minus_baseline"] == pytest.approx(-0.05) and ft["p_value"] == 0.0
    assert ft["tl_better"] is True and ft["baseline_better"] is False and b8["scratch"]["tl_better"] is True
    # n = 2: fine-tuning everything is nominally better than layer 2; the test says whether it counts
    ft = b2["finetune_all"]
    p = stats.ttest_rel([0.31, 0.33, 0.32], [0.30, 0.325, 0.31]).pvalue
    assert ft["best_minus_baseline"] == pytest.approx((0.01 + 0.005 + 0.01) / 3) and ft["p_value"] == pytest.approx(p)
    assert ft["baseline_better"] is bool(p < 0.05) and ft["tl_better"] is False
    assert ft["ci95_low"] < ft["mean"] < ft["ci95_high"] and ft["n"] == 3
    from turbtl import plots  # the figure draws them right of the layers (scratch at 2 snapshots: above the axis)

    plots.sizes(pd.read_csv(tmp_path / "sizes.csv"), s, tmp_path / "sizes.png", target="t")
    assert (tmp_path / "sizes.png").stat().st_size > 10_000
    with pytest.raises(TurbtlError, match="baselines of size 2 trained on \\[8\\] snapshots"):
        summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, bm[0], "t", tmp_path / "x.csv",
                        tmp_path / "x.json", baselines={8: bm[1:], 2: bm[1:]})


def test_size_summary_scores_each_predictor_against_each_sizes_own_sweep(tmp_path):
    """With the predictions of every size (predict_size), sizes.json gives each predictor's
    choice, regret, hit, Spearman and cost at each size, against that size's sweep, and
    size_predictors.csv one row per (size, predictor); a prediction read from a small set of
    another size is refused."""
    from scipy import stats

    from turbtl.io import write_json
    from turbtl.sizes import SIZE_PREDICTOR_COLUMNS, summarise_sizes

    main = {1: [0.20, 0.22, 0.21], 2: [0.24, 0.25, 0.26], 3: [0.30, 0.31, 0.29]}  # n = 8: best 1
    small = {1: [0.36, 0.38, 0.37], 2: [0.31, 0.33, 0.32], 3: [0.34, 0.345, 0.335]}  # n = 2: best 2
    (tmp_path / "m").mkdir()
    (tmp_path / "s").mkdir()
    csvs, zs = _table(tmp_path / "m", main, {"zero_shot": [0.40]})
    scsv, _ = _table(tmp_path / "s", small, {})
    for p in scsv:
        pd.read_csv(p).assign(n_train=2, seconds=2.0).to_csv(p, index=False)  # that sweep took 3 x 3 x 2 s

    def pred(n):  # read from n snapshots; "fixed" ranks the layers 1 > 2 > 3, "follows" 2 > 3 > 1
        scores = {"fixed": {1: 3.0, 2: 2.0, 3: 1.0}, "follows": {1: 1.0, 2: 3.0, 3: 2.0}}
        p = tmp_path / f"pred{n}.json"
        write_json({"predictors": {k: {"scores": scores[k], "choice": max(scores[k], key=scores[k].get), "seconds": 0.9}
                                   for k in ("fixed", "follows")}, "details": {"n_target_samples": n}}, p)
        return p

    s = summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, zs[0], "t", tmp_path / "sizes.csv",
                        tmp_path / "sizes.json", predictions={8: pred(8), 2: pred(2)},
                        out_predictors_csv=tmp_path / "sp.csv")
    by = {z["n_small"]: z["predictors"] for z in s["sizes"]}
    # n = 8 (best 1, zero shot 0.40): "fixed" is the best; "follows" picks 2, worse by 0.04 on average
    assert by[8]["fixed"]["choice"] == 1 and by[8]["fixed"]["regret"] == 0.0 and by[8]["fixed"]["hit"] is True
    f8 = by[8]["follows"]
    assert f8["choice"] == 2 and f8["regret"] == pytest.approx(0.04 / 0.19) and f8["hit"] is False
    assert f8["p_value"] == pytest.approx(stats.ttest_rel([0.24, 0.25, 0.26], [0.20, 0.22, 0.21]).pvalue)
    # n = 2 (best 2): the roles swap; regret against that size's sweep and the same zero shot
    assert by[2]["follows"]["hit"] is True and by[2]["follows"]["regret"] == 0.0
    assert by[2]["fixed"]["regret"] == pytest.approx(0.05 / 0.08) and by[2]["fixed"]["hit"] is False
    # Spearman of the scores against -nmse per size: "follows" ranks n = 2's layers exactly
    assert by[2]["follows"]["spearman"] == pytest.approx(1.0) and by[8]["fixed"]["spearman"] == pytest.approx(1.0)
    # the cost against each size's own sweep: 0.9 s of 9 s at n = 8, of 18 s at n = 2
    assert by[8]["fixed"]["cost_fraction"] == pytest.approx(0.1) and by[2]["fixed"]["cost_fraction"] == pytest.approx(0.05)
    assert s["predictor_hits"] == {"fixed": 1, "follows": 1}
    table = pd.read_csv(tmp_path / "sp.csv")
    assert list(table.columns) == SIZE_PREDICTOR_COLUMNS and len(table) == 4
    r = table.set_index(["n_small", "predictor"])
    assert r.loc[(2, "fixed"), "best_layer"] == 2 and not r.loc[(2, "fixed"), "hit"] and r.loc[(8, "fixed"), "main"]
    from turbtl import plots  # the figure puts each predictor's choice beside each size's best layer

    plots.sizes(pd.read_csv(tmp_path / "sizes.csv"), s, tmp_path / "sizes.png", target="t")
    assert (tmp_path / "sizes.png").stat().st_size > 10_000
    # a prediction read from another size than the one it is filed under
    with pytest.raises(TurbtlError, match="read a small set of 8 snapshots, not 2"):
        summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, zs[0], "t", tmp_path / "x.csv", tmp_path / "x.json",
                        predictions={8: pred(8), 2: pred(8)}, out_predictors_csv=tmp_path / "x2.csv")
    with pytest.raises(TurbtlError, match="predictions \\(\\[8\\]\\) do not match its sizes"):
        summarise_sizes({8: csvs, 2: scsv}, {8: 0.5, 2: 0.125}, 8, zs[0], "t", tmp_path / "x.csv", tmp_path / "x.json",
                        predictions={8: pred(8)}, out_predictors_csv=tmp_path / "x2.csv")


_TIMER_SPY = r'''
import json, sys, time
real = time.perf_counter
seen = []


def spy():
    mod = sys._getframe(1).f_globals.get("__name__", "")
    if mod in ("turbtl.transfer", "turbtl.predict"):
        seen.append([mod, "torch._dynamo" in sys.modules])
    return real()


time.perf_counter = spy
import torch
import diag_fixtures as F
from turbtl import predict as P
from turbtl.transfer import run_baseline_job, run_layer_job
assert "torch._dynamo" not in sys.modules, "the check needs a process without it"
torch.set_num_threads(1)
a = json.loads(sys.argv[1])
run_layer_job(a["ckpt"], a["target"], 2, a["dir"] + "/layer2.csv", None, transfer_cfg=a["tcfg"],
              n_small=8, device="cpu")
run_baseline_job(a["ckpt"], a["target"], "scratch", a["dir"] + "/scratch.csv", transfer_cfg=a["tcfg"],
                 training_cfg=a["trcfg"], network_cfg=a["net"], n_small=8, device="cpu")
n_tl = len(seen)
P.predict_layers(F.tiny_net(depth=3, channels=2), F.random_fields(3), F.random_fields(3, seed=1),
                 torch.randn(3, 1, 16, 16), F.spectra_ds(), F.spectra_ds(bump_k=3), [1, 2, 3],
                 probe={"epochs": 2, "holdout": 0.34, "lr": 1e-3, "batch_size": 2})
print(json.dumps({"seen": seen, "n_tl": n_tl, "dynamo": "torch._dynamo" in sys.modules}))
'''


def test_timed_trainings_start_after_the_optimiser_import(setup, tmp_path):
    """torch.optim's first optimiser imports torch._dynamo (1-2 s), which sat in the timers and
    then in every training job's start-up: on the CPU the trainings use turbtl.optim.Adam (the
    same steps bit for bit, tests/test_training.py), so a fresh interpreter running a layer job,
    a baseline and the probe never imports it, and no timer of turbtl.transfer or turbtl.predict
    holds it (on a GPU ``training.preload_optimiser`` imports it before the first timer)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    args = {"ckpt": str(setup["ckpt"]), "target": str(setup["target"]), "dir": str(tmp_path),
            "tcfg": TCFG, "trcfg": TRCFG, "net": NET}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", _TIMER_SPY, json.dumps(args)], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    seen = out["seen"]
    # 2 seeds x 2 timer calls in the layer job, the same in the scratch baseline; the predict job's
    assert out["n_tl"] == 8 and {m for m, _ in seen[:8]} == {"turbtl.transfer"}
    assert len(seen) > 8 and {m for m, _ in seen[8:]} == {"turbtl.predict"}
    assert not any(imported for _, imported in seen) and not out["dynamo"], seen


def test_pipeline_costs_reads_a_runs_recorded_seconds(tmp_path):
    """benchmarks/pipeline_costs.py: per size, the sweep's summed seconds, seed 0 against the
    other seeds' mean, and the probe's seconds and fraction from size_predictors.csv."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import pipeline_costs

    t = tmp_path / "transfer" / "tgt"  # tmp_path: the run's folder
    for sub, n, secs in (("runs", 18, [3.0, 2.0, 2.5]), ("sizes/n4", 4, [1.5, 0.5, 0.75])):
        (t / sub).mkdir(parents=True)
        for L in (1, 2):
            rows = [{"target": "tgt", "method": "tl_layer", "layer": L, "seed": s, "n_train": n, "epochs": 5,
                     "mse": 1.0, "nmse": 1.0, "cc": 0.5, "spec_err": 0.1, "seconds": secs[s] + L}
                    for s in range(3)]
            pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(t / sub / f"layer{L}.csv", index=False)
    pd.DataFrame({"n_small": [4, 18, 18], "main": [False, True, True], "predictor": ["probe", "probe", "gradient"],
                  "seconds": [0.4, 0.9, 0.1], "cost_fraction": [0.4 / 14.5, 0.9 / 24.0, 0.1 / 24.0]}
                 ).to_csv(t / "size_predictors.csv", index=False)
    got = {r["small set"]: r for r in pipeline_costs.rows(tmp_path)}
    assert set(got) == {18, 4}
    assert got[18]["seconds"] == pytest.approx(24.0) and got[4]["seconds"] == pytest.approx(14.5)
    assert got[18]["seed0"] == pytest.approx(3 + 1 + 3 + 2)
    assert got[18]["other_seed"] == pytest.approx(((2 + 1 + 2 + 2) + (2.5 + 1 + 2.5 + 2)) / 2)
    assert got[4]["seed0"] == pytest.approx(1.5 + 1 + 1.5 + 2) and got[4]["layers"] == 2
    assert got[4]["probe_seconds"] == 0.4 and got[4]["probe_fraction"] == pytest.approx(0.4 / 14.5)
    assert got[18]["probe_seconds"] == 0.9
