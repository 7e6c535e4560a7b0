"""k-means kernel classes (turbtl.kernel_clusters) and their place in the diagnostics files."""
import numpy as np
import pytest

import diag_fixtures as F
from turbtl import diagnostics_files as DF
from turbtl import kernel_clusters as KC
from turbtl.io import open_netcdf, write_netcdf


def _planted(per=12, seed=0):
    """Four kinds of 5x5 kernel, ``per`` of each with a random gain (sign included) and 2%
    noise: a Gaussian low-pass, Gabors along x and along y, and the checkerboard high-pass."""
    rng = np.random.default_rng(seed)
    x, y = F.grid5()
    kinds = [F.gaussian(1.0), F.gabor(0.0), F.gabor(np.pi / 2), (-1.0) ** (x + y)]
    ws, truth = [], []
    for t, w in enumerate(kinds):
        for _ in range(per):
            ws.append(rng.choice([-1, 1]) * rng.uniform(0.1, 10) * (w + 0.02 * np.abs(w).max() * rng.standard_normal(w.shape)))
            truth.append(t)
    return np.array(ws), np.array(truth)


def test_kmeans_recovers_planted_kernel_kinds_ordered_low_to_high():
    """Four planted kinds in four clusters: every cluster holds one kind whatever the gain and
    sign of its kernels (z-scored spectra), numbered by spectral centre of mass: the Gaussian
    first, the checkerboard (all power at the corner k = (8, 8) of the 16^2 padding) last, the
    two Gabors (same |k|, other orientation) between them."""
    ws, truth = _planted()
    fitted = KC.fit(ws, clusters=4)
    assert KC.purity(fitted.labels, truth) == 1.0
    assert sorted(fitted.counts().tolist()) == [12, 12, 12, 12]
    assert fitted.labels[truth == 0].tolist() == [0] * 12 and fitted.labels[truth == 3].tolist() == [3] * 12
    assert {int(fitted.labels[truth == 1][0]), int(fitted.labels[truth == 2][0])} == {1, 2}
    # the same fit for another order of the kernels (labels follow the kernels), and assign
    # puts every fitted kernel in its own cluster
    perm = np.random.default_rng(1).permutation(len(ws))
    again = KC.fit(ws[perm], clusters=4)
    np.testing.assert_array_equal(again.labels, fitted.labels[perm])
    np.testing.assert_array_equal(KC.assign(ws, fitted.centroids), fitted.labels)
    assert fitted.centroids.shape == (4, KC.PAD, KC.PAD)


def test_features_are_z_scored_full_spectra():
    w = F.gabor(0.3)
    f = KC.features(np.stack([w, -7.5 * w, np.zeros((5, 5))]))
    assert f.shape == (3, KC.PAD**2)
    np.testing.assert_allclose(f[0], f[1], atol=1e-12)  # gain and sign do not matter
    assert np.allclose(f[0].mean(), 0) and np.isclose(f[0].std(), 1.0)
    assert np.all(f[2] == 0)  # a dead kernel
    spec = np.abs(np.fft.fft2(w, s=(KC.PAD, KC.PAD))).ravel()
    np.testing.assert_allclose(f[0], (spec - spec.mean()) / spec.std(), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds the grid size"):
        KC.features(np.zeros((1, 17, 17)))


def test_kmeans_of_points_and_purity_of_known_assignments():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((20, 2)) for c in centres])
    got, lab, inertia = KC.kmeans(x, 3)
    for c in range(3):  # each true group in one cluster, at its mean
        members = lab[20 * c:20 * (c + 1)]
        assert len(set(members.tolist())) == 1
        np.testing.assert_allclose(got[members[0]], x[20 * c:20 * (c + 1)].mean(axis=0), atol=1e-12)
    assert inertia == pytest.approx(sum(((x[lab == c] - got[c]) ** 2).sum() for c in range(3)))
    with pytest.raises(ValueError, match="at least 4"):
        KC.kmeans(x[:3], 4)
    # overlapping groups, where Lloyd needs several iterations and restarts find other optima:
    # the result is a fixed point (each centre the mean of its members; one iteration is off by
    # ~0.03), and the best of 4 restarts beats restart 0 alone (73.55 against 74.33)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 40), rng.normal(2.5, 1, 40), rng.normal(5, 1, 40)])[:, None]
    got, lab, inertia = KC.kmeans(x, 3)
    for c in range(3):
        assert abs(got[c, 0] - x[lab == c, 0].mean()) < 1e-6
    assert inertia < KC.kmeans(x, 3, restarts=1)[2] - 0.5
    assert KC.purity(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1])) == pytest.approx(0.8)
    assert KC.purity(np.array([0, 1, 2]), np.array([3, 3, 3])) == 1.0


def test_diagnostics_files_carry_the_clusters(tmp_path):
    net = F.tiny_net(depth=3, channels=3)  # 6 + 9 + 3 = 18 kernels
    bk = DF.base_kernels_dataset(net, 16)
    write_netcdf(bk, tmp_path / "bk.nc")
    with open_netcdf(tmp_path / "bk.nc") as ds:
        assert ds["cluster_count"].sum("cluster").values.tolist() == [6, 9, 3]
        assert int(ds["cluster_label_count"].sum()) == 18
        # the per-layer counts and the cluster x class table agree with the per-kernel fields
        cl, lab = ds["kernel_cluster"].values, ds["label"].values
        ok = ~np.isnan(cl) if cl.dtype.kind == "f" else cl >= 0
        assert np.bincount(cl[ok].astype(int), minlength=KC.CLUSTERS).tolist() == ds["cluster_count"].sum("layer").values.tolist()
        mix = np.zeros((KC.CLUSTERS, 4), int)
        np.add.at(mix, (cl[ok].astype(int), lab[ok].astype(int)), 1)
        np.testing.assert_array_equal(ds["cluster_label_count"].values, mix)
        assert ds.attrs["cluster_purity"] == pytest.approx(mix.max(axis=1).sum() / 18)
        assert 0 < ds.attrs["cluster_purity"] <= 1
        centroids = DF.centroids_of(ds)
    weights = [net.layer(L).weight.detach() for L in (1, 2, 3)]
    fitted = KC.fit(weights)
    np.testing.assert_array_equal(KC.assign(weights, centroids), fitted.labels)
    # the file's per-kernel clusters are the fit's, layer by layer in (out, in) order
    flat = np.concatenate([cl[j, :w.shape[0], :w.shape[1]].ravel() for j, w in enumerate(weights)])
    np.testing.assert_array_equal(flat.astype(int), fitted.labels)
    lw = F.layer_weights(net, [1, 3])
    tk = DF.tl_kernels_dataset(net, lw, 16, centroids=centroids)
    base_counts = bk["cluster_count"].sel(layer=[1, 3]).values
    np.testing.assert_array_equal(tk["cluster_count_before"].values, base_counts)
    assert tk["cluster_count_after"].sum("cluster").values.tolist() == [6, 3]
    # the most-changed kernels' clusters, before and after (perturbations large enough to move some)
    big = F.layer_weights(net, [1, 3], scale=1.0)
    tk_big = DF.tl_kernels_dataset(net, big, 16, centroids=centroids)
    moved = 0
    for L in (1, 3):
        sel = tk_big.sel(tl_layer=L)
        o, i = sel["top_out"].values, sel["top_in"].values
        ok = o >= 0
        after = KC.assign(big[L][0]["weight"], centroids).reshape(big[L][0]["weight"].shape[:2])
        before = KC.assign(net.layer(L).weight.detach(), centroids).reshape(after.shape)
        np.testing.assert_array_equal(sel["top_cluster_after"].values[ok], after[o[ok], i[ok]])
        np.testing.assert_array_equal(sel["top_cluster_before"].values[ok], before[o[ok], i[ok]])
        moved += int((after[o[ok], i[ok]] != before[o[ok], i[ok]]).sum())
    assert moved > 0
    # a re-trained layer whose kernels all became checkerboards sits in the highest cluster only
    x, y = F.grid5()
    board = {0: {"weight": np.broadcast_to((-1.0) ** (x + y), (3, 2, 5, 5)).copy(), "bias": None}}
    tk = DF.tl_kernels_dataset(net, {1: board}, 16, centroids=centroids)
    after = tk["cluster_count_after"].sel(tl_layer=1).values
    hit = KC.assign(board[0]["weight"][:1, :1], centroids)[0]
    assert after.tolist() == [6 if c == hit else 0 for c in range(KC.CLUSTERS)]
    assert "cluster_count_after" not in DF.tl_kernels_dataset(net, lw, 16)
