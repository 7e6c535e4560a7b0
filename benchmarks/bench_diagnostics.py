"""Cost of the spectral diagnostics against their FFT time and against a naive way.

One run, ratios printed.  Sizes: the default config (11 layers, 32 channels, 5x5 kernels,
32^2 LES grid, 16 activation samples) and the study's width and LES grid (64 channels, n 128).

    python benchmarks/bench_diagnostics.py [--channels 32] [--n 32] [--samples 16] [--seeds 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from turbtl import diagnostics as D
from turbtl import diagnostics_files as DF
from turbtl import kernel_clusters as KC
from turbtl.network import NetConfig, SGSNet
from turbtl.spectra import power_spectrum, shell_index


def timeit(f, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def naive_kernel_spectra(w, n):
    o, i, k, _ = w.shape
    out = np.empty((o, i, n, n))
    for a in range(o):
        for b in range(i):
            pad = np.zeros((n, n))
            pad[:k, :k] = w[a, b]
            pad = np.roll(pad, (-(k // 2), -(k // 2)), axis=(0, 1))
            out[a, b] = np.abs(np.fft.fft2(pad))
    return out


def full_spectra_tl_change(base_w, tl, n):
    """What tl_kernels_dataset computes, the way it did before kernel_shell_stats: full
    (out, in, n, n) spectra of base and TL kernels per seed, full-plane shell statistics."""
    sb = D.kernel_spectra(base_w, n)
    lb = D.classify_kernels(sb)
    rb = D.radial_profile(sb)
    out = []
    for s in tl.values():
        st = D.kernel_spectra(s["weight"], n)
        out.append((np.sqrt(((st - sb) ** 2).sum(axis=(-2, -1))) / n, D.classify_kernels(st), D.radial_profile(st)))
    return lb, rb, out


def full_fft_power_spectrum(f):
    """power_spectrum the way it was before (2026-11-26): numpy's full complex fft2 in float64
    and one bincount over (row, shell) bins."""
    f = f.double().numpy()
    n = f.shape[-1]
    p2 = np.abs(np.fft.fft2(f, axes=(-2, -1))) ** 2 / float(n) ** 4
    idx = shell_index(n)
    nk = n // 2 + 1
    keep = (idx < nk).ravel()
    flat = p2.reshape(-1, n * n)[:, keep]
    bins = (idx.ravel()[keep][None, :] + nk * np.arange(flat.shape[0])[:, None]).ravel()
    return np.bincount(bins, weights=flat.ravel(), minlength=flat.shape[0] * nk).reshape(*p2.shape[:-2], nk)


def naive_activation_spectra(model, x, layers):
    """Per sample and channel, one power_spectrum call each (no batching)."""
    acts = model.activations(x)
    res = []
    for L in layers:
        pre, post = acts[L - 1]
        row = []
        for a in (pre, post):
            tot = 0
            for s in range(a.shape[0]):
                for c in range(a.shape[1]):
                    tot = tot + power_spectrum(a[s, c])[1]
            row.append(tot / (a.shape[0] * a.shape[1]))
        res.append(row)
    return np.asarray(res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--depth", type=int, default=11)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=3, help="TL seeds per layer for tl_kernels_dataset")
    ap.add_argument("--naive-samples", type=int, default=None,
                    help="samples for the naive per-(sample, channel) loop, its time scaled to --samples "
                         "(default: all)")
    a = ap.parse_args()
    a.naive_samples = a.naive_samples or a.samples
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SGSNet(NetConfig(depth=a.depth, channels=a.channels)).eval()
    ws = [model.layer(L).weight.detach().double().numpy() for L in range(1, model.depth + 1)]
    nker = sum(w.shape[0] * w.shape[1] for w in ws)
    print(f"# diagnostics benchmark: depth {a.depth}, channels {a.channels}, n {a.n}, "
          f"{nker} kernels, {a.samples} samples, torch threads 1")

    t_batched, _ = timeit(lambda: [D.kernel_spectra(w, a.n) for w in ws])
    pads = [D.pad_kernels(w, a.n) for w in ws]
    t_fft, _ = timeit(lambda: [np.abs(np.fft.fft2(p, axes=(-2, -1))) for p in pads])
    t_naive, _ = timeit(lambda: [naive_kernel_spectra(w, a.n) for w in ws], repeat=1)
    specs = [D.kernel_spectra(w, a.n) for w in ws]
    t_cls, _ = timeit(lambda: [D.classify_kernels(s) for s in specs])
    t_stats, _ = timeit(lambda: [D.kernel_shell_stats(w, a.n) for w in ws])
    t_all, _ = timeit(lambda: DF.base_kernels_dataset(model, a.n), repeat=1)
    np.testing.assert_allclose(naive_kernel_spectra(ws[1], a.n), D.kernel_spectra(ws[1], a.n), atol=1e-12)
    np.testing.assert_allclose(D.kernel_shell_stats(ws[1], a.n)[1], D.shell_stats(specs[1])[1], rtol=1e-10)
    print(f"kernel spectra (batched FFT, all layers): {t_batched * 1e3:8.1f} ms")
    print(f"  pure FFT of the padded kernels:         {t_fft * 1e3:8.1f} ms   batched / FFT   = {t_batched / t_fft:6.2f}")
    print(f"  naive per-kernel numpy loop:            {t_naive * 1e3:8.1f} ms   naive / batched = {t_naive / t_batched:6.1f}")
    print(f"classify_kernels (all layers):            {t_cls * 1e3:8.1f} ms   classify / FFT  = {t_cls / t_fft:6.2f}")
    print(f"kernel_shell_stats (no spectra):          {t_stats * 1e3:8.1f} ms   stats / FFT     = {t_stats / t_fft:6.2f}"
          f"   (spectra + shell_stats) / stats = {(t_batched + t_cls) / t_stats:5.1f}")
    print(f"base_kernels_dataset (everything):        {t_all * 1e3:8.1f} ms   total / FFT     = {t_all / t_fft:6.2f}")
    t_feat, _ = timeit(lambda: KC.features(ws))
    t_km, fitted = timeit(lambda: KC.fit(ws), repeat=1)
    print(f"k-means clusters (fit, {KC.RESTARTS} restarts):     {t_km * 1e3:8.1f} ms   / FFT           = {t_km / t_fft:6.2f}"
          f"   / its features (padded FFTs, z-scores) = {t_km / t_feat:5.1f}; sizes {fitted.counts().tolist()}")

    seeds = a.seeds
    g = torch.Generator().manual_seed(1)
    tl = {L: {s: {"weight": model.layer(L).weight.detach() + 0.01 * torch.randn(model.layer(L).weight.shape,
                                                                                 generator=g)}
              for s in range(seeds)} for L in range(1, model.depth + 1)}
    t_tl, _ = timeit(lambda: DF.tl_kernels_dataset(model, tl, a.n), repeat=1)
    t_full, _ = timeit(lambda: [full_spectra_tl_change(model.layer(L).weight, tl[L], a.n)
                                for L in range(1, model.depth + 1)], repeat=1)
    print(f"tl_kernels_dataset ({seeds} seeds, all layers): {t_tl * 1e3:8.1f} ms   "
          f"/ FFT of base + TL kernels = {t_tl / ((seeds + 1) * t_fft):5.2f}   full-spectra way / this = {t_full / t_tl:5.1f}")

    x = torch.randn(a.samples, 2, a.n, a.n)
    layers = list(range(1, model.depth + 1))
    with torch.no_grad():
        t_fwd, acts = timeit(lambda: model.activations(x))
        arrs = [t for pair in acts for t in pair]
        # the transform power_spectrum makes (float64 real FFT), one activation at a time
        t_afft, _ = timeit(lambda: [torch.view_as_real(torch.fft.rfft2(v.double())).square_().shape for v in arrs])
        t_act, s_b = timeit(lambda: D.activation_spectra(model, x, layers, batch_size=a.samples)[1])
        t_anaive, s_n = timeit(lambda: naive_activation_spectra(model, x[:a.naive_samples], layers), repeat=1)
        t_anaive *= a.samples / a.naive_samples
        s_ref = s_b if a.naive_samples == a.samples else D.activation_spectra(model, x[:a.naive_samples], layers)[1]
        t_ps, p_new = timeit(lambda: [power_spectrum(v, average=False)[1] for v in arrs], repeat=1)
        t_old, p_old = timeit(lambda: [full_fft_power_spectrum(v) for v in arrs], repeat=1)
    np.testing.assert_allclose(s_ref, s_n, rtol=1e-6)
    np.testing.assert_allclose(p_new[3], p_old[3], rtol=1e-9, atol=1e-30)
    print(f"activation spectra (all layers, pre+post): {t_act * 1e3:8.1f} ms")
    print(f"  forward pass (activations):              {t_fwd * 1e3:8.1f} ms   spectra / forward = {t_act / t_fwd:6.2f}")
    print(f"  their float64 real FFTs (and |.|):       {t_afft * 1e3:8.1f} ms   spectra / FFT     = {t_act / t_afft:6.2f}")
    print(f"  naive per-(sample, channel) calls:       {t_anaive * 1e3:8.1f} ms   naive / batched   = {t_anaive / t_act:6.1f}")
    print(f"power_spectrum of every activation:        {t_ps * 1e3:8.1f} ms   / their real FFTs  = {t_ps / t_afft:6.2f}")
    print(f"  full complex FFT + bincount (before):    {t_old * 1e3:8.1f} ms   before / now      = {t_old / t_ps:6.1f}")


if __name__ == "__main__":
    main()
