"""Best-layer predictors (before re-training) and their comparison with the sweep."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import diag_fixtures as F
from turbtl import predict as P


def test_data_weights_peak_where_systems_differ():
    b, t = F.spectra_ds(n=32), F.spectra_ds(n=32, bump_k=6, bump=5.0)
    k, w, d = P.data_weights(b, t)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == 0 and w[-1] == 0  # mean and Nyquist shells left out
    assert int(k[np.argmax(w)]) == 6
    np.testing.assert_allclose(d, np.log10(1 + 5.0 * np.exp(-((k - 6) ** 2) / 2)), rtol=1e-8, atol=1e-12)
    # identical systems: uniform weights over the used shells
    _, w0, _ = P.data_weights(b, b)
    assert np.allclose(w0[1:-1], 1 / (len(k) - 2))


def _routing_net():
    """3 layers, 3 channels, delta kernels, ReLU kept linear by a positive bias.

    layer 1: (in0, in1, in0); layer 2: (ch1, ch1, ch0); layer 3: ch2.  Only input channel 1
    differs between base and target, so the fraction of moved channels is 1/3, 2/3 and 0.
    """
    net = F.tiny_net(depth=3, channels=3, dtype=torch.float64)
    routes = {1: [0, 1, 0], 2: [1, 1, 0], 3: [2]}
    with torch.no_grad():
        for L, src in routes.items():
            conv = net.layer(L)
            conv.weight.zero_()
            for o, i in enumerate(src):
                conv.weight[o, i, 2, 2] = 1.0
            conv.bias.fill_(20.0 if L < 3 else 0.0)
    return net


def test_spectral_predictor_ranks_layers_by_activation_shift():
    n = 16
    xb = F.random_fields(4, n=n, seed=0).double()
    xt = xb.clone()
    xt[:, 1] = F.random_fields(4, n=n, seed=5, slope=0.0).double()[:, 1]  # whiter channel 1
    net = _routing_net()
    w = np.ones(n // 2 + 1)
    w[0] = w[-1] = 0
    w /= w.sum()
    scores, shifts = P.spectral_scores(net, xb, xt, w, [1, 2, 3])
    assert scores[2] > scores[1] > scores[3]
    assert scores[3] == pytest.approx(0.0, abs=1e-9)
    assert scores[2] == pytest.approx(2 * scores[1], rel=1e-6)  # 2/3 vs 1/3 of the channels moved
    assert P.choice(scores) == 2
    # weighting: putting all weight on one shell gives that shell's shift
    w1 = np.zeros(n // 2 + 1)
    w1[4] = 1.0
    s1, _ = P.spectral_scores(net, xb, xt, w1, [2])
    assert s1[2] == pytest.approx(shifts[2][4])


def test_gradient_predictor_equals_finite_difference_norm():
    torch.manual_seed(0)
    net = F.tiny_net(depth=3, channels=2, dtype=torch.float64)
    for p in net.parameters():
        p.requires_grad_(False)  # flags must come back as they were
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    y = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    scores, rel = P.gradient_scores(net, x, y, [1, 2, 3], batch_size=2)

    def loss():
        with torch.no_grad():
            return float(torch.mean((net(x) - y) ** 2))

    h = 1e-6
    for L in (1, 2, 3):
        g = []
        for p in net.layer_parameters(L):
            flat = p.data.view(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + h
                lp = loss()
                flat[i] = old - h
                lm = loss()
                flat[i] = old
                g.append((lp - lm) / (2 * h))
        g = np.asarray(g)
        assert scores[L] == pytest.approx(np.linalg.norm(g) / math.sqrt(g.size), rel=1e-5)
        wn = math.sqrt(sum(float((p.detach() ** 2).sum()) for p in net.layer_parameters(L)))
        assert rel[L] == pytest.approx(np.linalg.norm(g) / wn, rel=1e-5)
    assert all(not p.requires_grad for p in net.parameters())
    assert all(p.grad is None for p in net.parameters())


def test_deepest_and_choice():
    assert P.deepest_scores([1, 2, 5]) == {1: 1.0, 2: 2.0, 5: 5.0}
    assert P.choice({1: 0.5, 2: 0.5, 3: 0.1}) == 1  # ties -> shallowest
    assert P.choice({1: float("nan"), 2: 0.1}) == 2


def _prediction(scores: dict) -> dict:
    return {"predictors": {name: {"scores": {str(L): v for L, v in s.items()}, "choice": P.choice(s)}
                           for name, s in scores.items()}}


def test_compare_spearman_and_within_spread():
    means = {1: 0.30, 2: 0.32, 3: 0.50, 4: 0.60}
    stds = {1: 0.01, 2: 0.03, 3: 0.01, 4: 0.01}
    df = F.sweep_table(means, stds)
    summ = F.sweep_summary(df)
    pred = _prediction({
        "perfect": {1: 4.0, 2: 3.0, 3: 2.0, 4: 1.0},
        "reversed": {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0},
        "second": {1: 3.0, 2: 4.0, 3: 2.0, 4: 1.0},
        "third": {1: 2.0, 2: 1.0, 3: 4.0, 4: 0.0},
    })
    res = P.compare(pred, df, summ)
    c = res["predictors"]
    assert res["empirical_best"] == 1
    assert c["perfect"]["spearman"] == pytest.approx(1.0) and c["perfect"]["p_value"] < 0.05
    assert c["reversed"]["spearman"] == pytest.approx(-1.0)
    assert c["perfect"]["within_spread"] and c["perfect"]["choice"] == 1
    # 0.32 - 0.30 = 0.02 <= max(0.01, 0.03)
    assert c["second"]["choice"] == 2 and c["second"]["within_spread"]
    # 0.50 - 0.30 = 0.20 > max(0.01, 0.01)
    assert c["third"]["choice"] == 3 and not c["third"]["within_spread"]
    assert c["third"]["choice_rank"] == 3
    json.dumps(res)  # serialisable
    # without the summary: same answer from the sweep rows alone
    res2 = P.compare(pred, df, None)
    assert {k: v["within_spread"] for k, v in res2["predictors"].items()} == \
           {k: v["within_spread"] for k, v in c.items()}


def test_compare_hand_table_boundary_and_single_seed():
    df = pd.DataFrame([
        dict(method="tl_layer", layer=1, seed=0, nmse=0.40, cc=0.5),
        dict(method="tl_layer", layer=2, seed=0, nmse=0.20, cc=0.8),
        dict(method="tl_layer", layer=3, seed=0, nmse=0.21, cc=0.8),
    ])
    summ = {"metric": "nmse", "layers": {"1": {"mean": 0.40, "std": 0.0}, "2": {"mean": 0.20, "std": 0.0},
                                         "3": {"mean": 0.21, "std": 0.0}}, "best_layer": 2, "significant": True}
    res = P.compare(_prediction({"a": {1: 0.0, 2: 0.0, 3: 1.0}, "flat": {1: 1.0, 2: 1.0, 3: 1.0}}), df, summ)
    assert res["empirical_best"] == 2
    assert res["predictors"]["a"]["within_spread"] is False  # 0.01 > 0 spread
    assert res["predictors"]["flat"]["spearman"] is None  # constant scores: undefined
    rows = P.summary_rows("t", res, summ)
    assert list(rows[0]) == P.SUMMARY_COLUMNS and rows[0]["significant_best"] is True


def test_predict_layers_format():
    net = F.tiny_net(depth=3, channels=2)
    xb, xt = F.random_fields(3), F.random_fields(3, seed=1, slope=-1.0)
    yt = torch.randn(3, 1, 16, 16)
    pred = P.predict_layers(net, xb, xt, yt, F.spectra_ds(), F.spectra_ds(bump_k=3), [1, 2, 3], inputs=["a"])
    assert set(pred["predictors"]) == {"spectral", "gradient", "deepest"}
    for p in pred["predictors"].values():
        assert set(p["scores"]) == {"1", "2", "3"} and p["choice"] in (1, 2, 3)
    assert pred["predictors"]["deepest"]["choice"] == 3
    json.loads(json.dumps(pred))


def test_evenly():
    a = np.arange(10)
    assert P.evenly(a, 3).tolist() == [0, 4, 9] and P.evenly(a, 20).tolist() == a.tolist()
