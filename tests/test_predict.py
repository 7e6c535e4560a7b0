"""Best-layer predictors (before re-training) and their comparison with the sweep."""
import json
import math

import numpy as np
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


def _fd_grad(net, loss, L, h=1e-6):
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
    return np.asarray(g)


def test_gradient_predictor_against_finite_differences_and_exact_line_search():
    torch.manual_seed(0)
    net = F.tiny_net(depth=3, channels=2, dtype=torch.float64)
    for p in net.parameters():
        p.requires_grad_(False)  # flags must come back as they were
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    y = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    scores, rel, rms = P.gradient_scores(net, x, y, [1, 2, 3], batch_size=2)

    def loss():
        with torch.no_grad():
            return float(torch.mean((net(x) - y) ** 2))

    ell = loss()
    for L in (1, 2, 3):
        g = _fd_grad(net, loss, L)
        assert rms[L] == pytest.approx(np.linalg.norm(g) / math.sqrt(g.size), rel=1e-5)
        wn = math.sqrt(sum(float((p.detach() ** 2).sum()) for p in net.layer_parameters(L)))
        assert rel[L] == pytest.approx(np.linalg.norm(g) / wn, rel=1e-5)
        assert 0.0 < scores[L] <= 1.0
    # the last layer is linear in its parameters: the loss is exactly quadratic along -g, so the
    # score is the exact share of the loss removed by the best step (brute-force line search)
    g = _fd_grad(net, loss, 3)
    params = net.layer_parameters(3)
    sizes = [p.numel() for p in params]
    base = [p.data.clone() for p in params]

    def along(t):
        off = 0
        for p, b, n in zip(params, base, sizes):
            p.data.copy_(b - t * torch.as_tensor(g[off:off + n]).view_as(b))
            off += n
        out = loss()
        for p, b in zip(params, base):
            p.data.copy_(b)
        return out

    ts = np.linspace(0, 4 * ell / max(float(g @ g), 1e-30), 4001)
    best = min(along(t) for t in ts)
    assert scores[3] == pytest.approx((ell - best) / ell, rel=1e-3)
    assert all(not p.requires_grad for p in net.parameters())
    assert all(p.grad is None for p in net.parameters())


def _perturbed_case(depth, channels, layer, seed, n=24):
    """Target = the unperturbed net's output; the 'base' handed to the predictors has layer
    ``layer`` perturbed: re-training that layer alone recovers the target exactly."""
    net = F.tiny_net(depth=depth, channels=channels, seed=seed)
    x = F.random_fields(n, seed=seed)
    with torch.no_grad():
        y = net(x)
        w = net.layer(layer).weight
        w.add_(0.5 * w.std() * torch.randn(w.shape, generator=torch.Generator().manual_seed(99)))
    return net, x, y


@pytest.mark.parametrize("depth,channels,layer,seed", [(4, 4, 2, 0), (4, 4, 3, 1), (5, 4, 2, 2), (4, 6, 1, 3)])
def test_probe_and_gradient_point_at_the_perturbed_layer(depth, channels, layer, seed):
    net, x, y = _perturbed_case(depth, channels, layer, seed)
    before = [p.detach().clone() for p in net.parameters()]
    layers = list(range(1, depth + 1))
    g, _, _ = P.gradient_scores(net, x, y, layers)
    assert P.choice(g) == layer, g
    pr, det = P.probe_scores(net, x, y, layers, epochs=10, batch_size=4, lr=1e-2, holdout=0.34)
    assert P.choice(pr) == layer, pr
    assert det["n_fit"] + det["n_holdout"] == len(x) and det["n_holdout"] == 8
    # the probe re-trained copies: the model handed in is untouched
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_probe_split_and_its_limits():
    fit, hold = P.probe_split(10, 0.34, seed=0)
    assert len(hold) == 3 and len(fit) == 7 and not set(fit) & set(hold)
    assert sorted(np.concatenate([fit, hold]).tolist()) == list(range(10))
    assert len(P.probe_split(2, 0.9)[0]) == 1  # at least one snapshot on each side
    with pytest.raises(ValueError, match="probe_epochs"):
        P.probe_split(1, 0.34)


def test_marginal_and_framework_scores_on_hand_made_shifts():
    w = np.array([0.0, 0.5, 0.5, 0.0, 0.0])  # 4 shells -> n = 8
    sh = {(0, "post"): np.full(5, 0.1)}
    cum = {1: 0.1, 2: 0.5, 3: 0.6}  # cumulative shift: largest at 3, but it ENTERS at 2
    for L, v in cum.items():
        sh[(L, "pre")] = np.full(5, v)
        sh[(L, "post")] = np.full(5, v)
    m = P.marginal_scores(w, [1, 2, 3], sh)
    assert m == pytest.approx({1: 0.0, 2: 0.4, 3: 0.1})
    assert P.choice(m) == 2
    spec, _ = P.spectral_scores(None, None, None, w, [1, 2, 3], shifts=sh)
    assert P.choice(spec) == 3  # the cumulative one favours depth
    net = F.tiny_net(depth=3, channels=2)
    fw = P.framework_scores(net, w, [1, 2, 3], sh)
    # constant input shift per layer: the kernel weighting drops out
    assert fw == pytest.approx({1: 0.1, 2: 0.1, 3: 0.5})


def test_framework_weights_the_input_shift_by_the_layers_own_kernel_response():
    """k-dependent input shifts and kernels with a response worked out by hand (n = 8).

    Shells are round(|k|): shell 1 = (+-1, 0), (0, +-1), (+-1, +-1): 2 modes with kx = 0 and
    6 with |kx| = 1; shell 2 = (+-2, 0), (0, +-2), (+-1, +-2), (+-2, +-1): 2 with kx = 0, 4 with
    |kx| = 1, 6 with |kx| = 2.  A kernel acting along x only has |K|^2 a function of
    theta = 2 pi kx / 8: delta 1; difference (1, -1) 2 - 2 cos theta = 0, 2 - sqrt2, 2;
    sum (1, 1) 2 + 2 cos theta = 4, 2 + sqrt2, 2 (kx = 0, |kx| = 1, |kx| = 2).
    R_L(k)^2 is the mean over (out, in) kernels of the shell mean of |K|^2 (the zero kernels
    and the max-1 normalisation scale it, and cancel in the ratio).
    """
    net = F.tiny_net(depth=3, channels=2)
    with torch.no_grad():
        for conv in net.layers:
            conv.weight.zero_()
        net.layer(1).weight[:, :, 2, 2] = torch.eye(2)  # delta kernels: R_1 = 1
        net.layer(2).weight[0, 0, 2, 2] = 1.0  # difference along x ...
        net.layer(2).weight[0, 0, 2, 3] = -1.0
        net.layer(2).weight[1, 1, 2, 2] = 1.0  # ... and a delta
        net.layer(3).weight[0, 0, 2, 2] = 1.0  # sum along x (low-pass)
        net.layer(3).weight[0, 0, 2, 3] = 1.0
    r2 = math.sqrt(2)
    R2 = {1: math.sqrt(1 + 6 * (2 - r2) / 8), 2: math.sqrt(1 + (4 * (2 - r2) + 6 * 2) / 12)}
    R3 = {1: math.sqrt((2 * 4 + 6 * (2 + r2)) / 8), 2: math.sqrt((2 * 4 + 4 * (2 + r2) + 6 * 2) / 12)}
    w = np.array([0.0, 0.25, 0.75, 0.0, 0.0])
    sh = {(0, "post"): np.array([5.0, 0.2, 0.6, 5.0, 5.0]),  # unweighted shells must not count
          (1, "post"): np.array([7.0, 1.0, 0.0, 7.0, 7.0]),
          (2, "post"): np.array([9.0, 0.0, 1.0, 9.0, 9.0])}
    for L in (1, 2, 3):
        sh[(L, "pre")] = np.full(5, 3.0 + L)
    fw = P.framework_scores(net, w, [1, 2, 3], sh)
    want = {1: 0.25 * 0.2 + 0.75 * 0.6,  # flat R: the w-weighted mean input shift
            2: 0.25 * R2[1] / (0.25 * R2[1] + 0.75 * R2[2]),  # D_1 = 1 on shell 1 only
            3: 0.75 * R3[2] / (0.25 * R3[1] + 0.75 * R3[2])}  # D_2 = 1 on shell 2 only
    assert fw == pytest.approx(want, rel=1e-9)
    # the kernel weighting matters here: R = 1 would give 0.25 and 0.75
    assert abs(fw[2] - 0.25) > 0.02 and abs(fw[3] - 0.75) > 0.02


def test_deepest_and_choice():
    assert P.deepest_scores([1, 2, 5]) == {1: 1.0, 2: 2.0, 5: 5.0}
    assert P.choice({1: 0.5, 2: 0.5, 3: 0.1}) == 1  # ties -> shallowest
    assert P.choice({1: float("nan"), 2: 0.1}) == 2


def test_predict_layers_format():
    net = F.tiny_net(depth=3, channels=2)
    xb, xt = F.random_fields(3), F.random_fields(3, seed=1, slope=-1.0)
    yt = torch.randn(3, 1, 16, 16)
    probe = {"epochs": 2, "holdout": 0.34, "lr": 1e-3, "batch_size": 2}
    pred = P.predict_layers(net, xb, xt, yt, F.spectra_ds(), F.spectra_ds(bump_k=3), [1, 2, 3],
                            probe=probe, inputs=["a"])
    assert list(pred["predictors"]) == list(P.PREDICTORS)
    for p in pred["predictors"].values():
        assert set(p["scores"]) == {"1", "2", "3"} and p["choice"] in (1, 2, 3)
        assert p["seconds"] >= 0.0
    assert pred["predictors"]["deepest"]["choice"] == 3
    assert pred["predictors"]["shallowest"]["choice"] == 1
    # shared work is priced into each predictor that needs it
    shared = pred["details"]["seconds_shared"]["activation_spectra"]
    for name in ("spectral", "marginal", "framework"):
        assert pred["predictors"][name]["seconds"] >= shared
    assert pred["details"]["probe"]["n_holdout"] == 1
    # a subset of layers is scored, the marginal predictor still sees every input shift
    sub = P.predict_layers(net, xb, xt, yt, F.spectra_ds(), F.spectra_ds(bump_k=3), [2, 3])
    assert "probe" not in sub["predictors"]
    assert sub["predictors"]["marginal"]["scores"] == pytest.approx(
        {k: v for k, v in pred["predictors"]["marginal"]["scores"].items() if k != "1"})
    json.loads(json.dumps(pred))


def test_evenly():
    a = np.arange(10)
    assert P.evenly(a, 3).tolist() == [0, 4, 9] and P.evenly(a, 20).tolist() == a.tolist()
