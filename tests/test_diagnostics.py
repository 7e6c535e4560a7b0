"""Kernel spectra and labels, TL change, activation spectra, system spectra."""
import numpy as np
import pytest
import torch

import diag_fixtures as F
from turbtl import diagnostics as D
from turbtl import diagnostics_files as DF
from turbtl.io import open_netcdf, write_netcdf
from turbtl.spectra import power_spectrum, shell_index


@pytest.mark.parametrize("n", [16, 32])
@pytest.mark.parametrize("name,kernel,label", [
    ("gaussian", F.gaussian(1.0), "low-pass"),
    ("laplacian", F.laplacian(), "high-pass"),
    ("gabor_x", F.gabor(0.0), "gabor"),
    ("gabor_diag", F.gabor(np.pi / 4), "gabor"),
    ("dog", F.dog(), "band-pass"),
])
def test_labels_of_known_kernels(n, name, kernel, label):
    spec = D.kernel_spectra(kernel[None, None], n)
    assert spec.shape == (1, 1, n, n)
    lab = D.classify_kernels(spec)
    assert D.LABELS[int(lab[0, 0])] == label, name



def test_high_pass_means_the_maximum_at_the_largest_k():
    """High-pass: the radial profile peaks at the largest |k| (the Nyquist shell), as the brief
    defines it.  A fine, oriented Gabor kernel (cos(2 pi 12 x / 32) under a Gaussian window)
    peaks on an interior shell near the top (15 of 16) with a strongly anisotropic ring: Gabor,
    not high-pass (it was high-pass under the earlier 'outermost quarter' rule)."""
    j = np.arange(5) - 2
    X, Y = np.meshgrid(j, j, indexing="xy")
    w = np.cos(2 * np.pi * 12 * X / 32) * np.exp(-(X**2 + Y**2) / (2 * 1.5**2))
    lab, det = D.classify_weights(w[None], 32, return_details=True)
    assert 12 <= det["peak_k"][0] < 16 and det["anisotropy"][0] > D.ANISOTROPY_THRESHOLD
    assert D.LABELS[int(lab[0])] == "gabor"
    lap, det = D.classify_weights(F.laplacian()[None], 32, return_details=True)
    assert det["peak_k"][0] == 16 and D.LABELS[int(lap[0])] == "high-pass"

def test_kernel_spectrum_is_transfer_function_of_conv():
    """|K| is the magnitude of what the (circular) convolution does to each Fourier mode."""
    n = 16
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 5))
    spec = D.kernel_spectra(w[None, None], n)[0, 0]
    conv = torch.nn.Conv2d(1, 1, 5, padding=2, padding_mode="circular", bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(w)[None, None])
    x = torch.randn(1, 1, n, n, dtype=torch.float64)
    y = conv(x).detach()
    ratio = np.abs(np.fft.fft2(y[0, 0].numpy())) / np.abs(np.fft.fft2(x[0, 0].numpy()))
    np.testing.assert_allclose(ratio, spec, rtol=1e-8)


def test_radial_profile_matches_power_spectrum():
    n = 16
    w = np.random.default_rng(1).standard_normal((3, 2, 5, 5))
    rad = D.radial_profile(D.kernel_spectra(w, n))
    _, p = power_spectrum(D.pad_kernels(w, n), average=False)
    counts = np.bincount(shell_index(n).ravel(), minlength=n)[: n // 2 + 1]
    np.testing.assert_allclose(rad**2, p * n**4 / counts, rtol=1e-10)


def test_label_counts_and_centre_roll():
    w = np.stack([F.gaussian(), F.laplacian(), F.dog(), F.gabor()])[:, None]
    lab = D.classify_kernels(D.kernel_spectra(w, 16))
    np.testing.assert_array_equal(D.label_counts(lab), [1, 1, 1, 1])
    pad = D.pad_kernels(F.laplacian(), 16)
    assert pad[0, 0] == -4 and pad[0, 1] == 1 and pad[0, -1] == 1 and pad[1, 0] == 1


def test_tl_change_picks_perturbed_kernels():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((8, 6, 5, 5)) * 0.1
    tl = base + 1e-4 * rng.standard_normal(base.shape)
    tl[3, 2] += 0.5 * rng.standard_normal((5, 5))
    tl[6, 0] += 0.3 * rng.standard_normal((5, 5))
    ch = D.tl_change(base, tl, 16, percentile=95.0)
    picked = list(zip(ch["top_out"].tolist(), ch["top_in"].tolist()))
    assert picked[:2] == [(3, 2), (6, 0)]
    assert ch["dw_norm"].shape == (8, 6) and ch["spec_before"].shape[1:] == (16, 16)
    assert np.all(ch["dspec_norm"] <= ch["dw_norm"] + 1e-12)  # triangle inequality + Parseval
    np.testing.assert_allclose(ch["spec_before"][0], D.kernel_spectra(base[3, 2][None, None], 16)[0, 0])
    # default 99.9th percentile: only the single largest change
    ch = D.tl_change(base, tl, 16)
    assert list(zip(ch["top_out"], ch["top_in"])) == [(3, 2)]


@pytest.mark.parametrize("n,k", [(16, 5), (15, 3), (12, 5), (9, 4)])
def test_kernel_shell_stats_equal_those_of_the_full_spectra(n, k):
    """The half-plane, spectrum-free shell statistics are those of the full |FFT2| (even and odd
    grids, odd and even kernels), and so are the labels and the per-seed TL changes."""
    rng = np.random.default_rng(n + k)
    w = rng.standard_normal((3, 4, k, k))
    w[0, 0] = 0.0  # a dead kernel
    m1, m2 = D.kernel_shell_stats(w, n)
    r1, r2, _ = D.shell_stats(D.kernel_spectra(w, n))
    assert m1.shape == (3, 4, n // 2 + 1)
    np.testing.assert_allclose(m1, r1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m2, r2, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(D.classify_weights(w, n), D.classify_kernels(D.kernel_spectra(w, n)))
    tls = [w + 0.1 * rng.standard_normal(w.shape) for _ in range(2)]
    sb = D.kernel_spectra(w, n)
    for tl, ch in zip(tls, D.tl_changes(w, tls, n, percentile=50.0)):
        st = D.kernel_spectra(tl, n)
        np.testing.assert_allclose(ch["dspec_norm"], np.sqrt(((st - sb) ** 2).sum(axis=(-2, -1))) / n, rtol=1e-10)
        np.testing.assert_array_equal(ch["labels_after"], D.classify_kernels(st))
        np.testing.assert_allclose(ch["radial_after"], D.radial_profile(st), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ch["spec_after"], st[ch["top_out"], ch["top_in"]], atol=1e-13)


def _one_channel_net(kernel, n_in=2):
    net = F.tiny_net(depth=2, channels=1, dtype=torch.float64)
    with torch.no_grad():
        net.layer(1).weight.zero_()
        net.layer(1).weight[0, 0] = torch.tensor(kernel)
        net.layer(1).bias.zero_()
    return net


@pytest.mark.parametrize("kx,ky", [(3, 0), (2, 1), (0, 5)])
def test_activation_spectrum_of_a_fourier_mode(kx, ky):
    """A single mode through a known kernel: output spectrum = |K(k)|^2 x input spectrum."""
    n = 16
    w = np.random.default_rng(3).standard_normal((5, 5))
    net = _one_channel_net(w)
    f = F.fourier_field(n, kx, ky, amp=1.7)
    x = torch.zeros(2, 2, n, n, dtype=torch.float64)
    x[:, 0] = torch.tensor(f)
    k, s = D.activation_spectra(net, x, [1, 2])
    assert s.shape == (2, 2, n // 2 + 1)
    _, p_in = power_spectrum(f)
    K = D.kernel_spectra(w[None, None], n)[0, 0]
    shell = int(round(np.hypot(kx, ky)))
    expect = K[ky % n, kx % n] ** 2 * p_in[shell]
    np.testing.assert_allclose(s[0, 0, shell], expect, rtol=1e-8)
    others = np.delete(s[0, 0], shell)
    assert np.all(others < 1e-20 * max(expect, 1e-30) + 1e-25)
    # post = ReLU(pre): the post spectrum is that of relu(pre), computed independently
    pre = net.layer(1)(x).detach()
    _, p_post = power_spectrum(torch.relu(pre))
    np.testing.assert_allclose(s[0, 1], p_post, rtol=1e-10)


def test_activation_spectra_batches_do_not_matter():
    net = F.tiny_net(depth=3, channels=3)
    x = F.random_fields(5)
    _, a = D.activation_spectra(net, x, [1, 2, 3], batch_size=2)
    _, b = D.activation_spectra(net, x, [1, 2, 3], batch_size=5)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_system_spectra_ratio():
    b, t = F.spectra_ds(), F.spectra_ds(bump_k=3, bump=2.0)
    ds = DF.system_spectra(b, t)
    for v in ("P_psi", "P_omega", "P_pi"):
        r = ds[f"{v}_ratio"].values
        assert np.isnan(r[0]), "the k = 0 shell of zero-mean fields is round-off: no ratio"
        np.testing.assert_allclose(r[1:], t[v].values[1:] / b[v].values[1:])
        assert ds[f"{v}_ratio"].attrs["long_name"] and "units" in ds[f"{v}_base"].attrs
    assert float(ds["P_pi_ratio"].sel(k=3)) == pytest.approx(3.0)


def test_datasets_roundtrip(tmp_path):
    net = F.tiny_net(depth=3, channels=3)
    bk = DF.base_kernels_dataset(net, 16)
    write_netcdf(bk, tmp_path / "bk.nc")
    with open_netcdf(tmp_path / "bk.nc") as ds:
        assert ds["label_count"].sum("label_code").values.tolist() == [6, 9, 3]
        assert ds["label"].attrs["flag_meanings"] == "low_pass high_pass band_pass gabor"
        assert ds["radial"].dims == ("layer", "k")
    lw = F.layer_weights(net, [1, 3])
    tk = DF.tl_kernels_dataset(net, lw, 16, percentile=99.9)
    write_netcdf(tk, tmp_path / "tk.nc")
    with open_netcdf(tmp_path / "tk.nc") as ds:
        assert ds["dw_norm"].dims == ("tl_layer", "seed", "out", "in")
        assert ds["tl_layer"].values.tolist() == [1, 3] and ds["seed"].values.tolist() == [0, 1]
        assert np.isnan(ds["dw_norm"].sel(tl_layer=3)).sum() > 0  # layer 3 has one output channel
        assert int(ds["top_out"].sel(tl_layer=1, rank=0)) >= 0
    ac = DF.activations_dataset(net, F.random_fields(3), F.random_fields(3, seed=1), lw)
    write_netcdf(ac, tmp_path / "ac.nc")
    with open_netcdf(tmp_path / "ac.nc") as ds:
        assert ds["spectrum"].dims == ("case", "layer", "stage", "k")
        assert ds["tl_on_target"].dims == ("tl_layer", "layer", "stage", "k")
        # re-training layer 3 (the last) leaves the activations of layers 1-2 unchanged
        np.testing.assert_allclose(ds["tl_on_target"].sel(tl_layer=3, layer=[1, 2]).values,
                                   ds["spectrum"].sel(case="base_on_target", layer=[1, 2]).values, rtol=1e-6)


class _Evil:
    """Unpickling this would run code: the loader must refuse it, not execute it."""

    def __reduce__(self):
        return (print, ("executed",))


def test_load_layer_weights(tmp_path, capsys):
    from turbtl import TurbtlError
    from turbtl.transfer import load_layer_weights, save_layer_weights

    net = F.tiny_net(depth=3, channels=3)
    lw = F.layer_weights(net, [2])
    save_layer_weights(tmp_path / "layer2.pt", 2, lw[2])
    L, w = load_layer_weights(tmp_path / "layer2.pt")
    assert L == 2 and sorted(w) == [0, 1]
    m = DF.with_layer(net, 2, w[1]["weight"], w[1]["bias"])
    assert torch.equal(m.layer(2).weight, lw[2][1]["weight"])
    assert not torch.equal(net.layer(2).weight, lw[2][1]["weight"])
    torch.save({"layer": 2, "seeds": [0], "weights": {0: _Evil()}}, tmp_path / "bad.pt")
    with pytest.raises(TurbtlError, match="bad.pt is not a readable TL layer-weights file"):
        load_layer_weights(tmp_path / "bad.pt")
    assert "executed" not in capsys.readouterr().out
