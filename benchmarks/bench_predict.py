"""Cost of each best-layer predictor against the sweep it is meant to replace.

At the default config's shapes (11 layers, 16 channels, 32x32, small set of 18 snapshots,
16 base samples, batch 8, TL 50 epochs x 5 seeds, probe 10 epochs on 2/3 of the set), in ONE
run on synthetic power-law fields:

- each predictor's seconds, as ``turbtl.predict.predict_layers`` measures and records them in
  ``prediction.json`` (shared work, e.g. the activation spectra, counted for each user);
- the sweep: every layer re-trained for ``--sweep-seeds`` seeds (default 1, scaled up to the
  config's 5 seeds: the seeds of a layer cost the same), the denominator of ``cost_fraction``;
- and, for scale, one forward pass of the small set (the machine's convolution throughput at
  these shapes);
- the one-off import of the process's first optimiser (``training.preload_optimiser``), done
  first and left out of every timing, as in the pipeline's jobs.

    python benchmarks/bench_predict.py [--threads 1] [--sweep-seeds 1]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
import xarray as xr

from turbtl.data import Normaliser
from turbtl.network import NetConfig, SGSNet
from turbtl.predict import PREDICTORS, predict_layers
from turbtl.spectra import power_spectrum
from turbtl.training import preload_optimiser
from turbtl.transfer import retrain_layer


def fields(s, n, slope, seed):
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n, 1.0 / n)
    kk = np.hypot(k[:, None], k[None, :])
    amp = np.where(kk > 0, np.maximum(kk, 1) ** (slope / 2), 0)
    f = np.fft.ifft2(amp * (rng.standard_normal((s, 2, n, n)) + 1j * rng.standard_normal((s, 2, n, n)))).real
    return torch.tensor(f / f.std(), dtype=torch.float32)


def spectra(x, y):
    k, pp = power_spectrum(x[:, 0])
    _, po = power_spectrum(x[:, 1])
    _, pi = power_spectrum(y[:, 0])
    return xr.Dataset({"P_psi": ("k_les", pp), "P_omega": ("k_les", po), "P_pi": ("k_les", pi)},
                      coords={"k_les": k})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--small", type=int, default=18)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=5, help="TL seeds of the sweep being priced")
    ap.add_argument("--sweep-seeds", type=int, default=1, help="seeds actually timed (scaled to --seeds)")
    ap.add_argument("--probe-epochs", type=int, default=10)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = SGSNet(NetConfig(depth=11, channels=a.channels)).eval()
    xb, xt = fields(16, a.n, -3.0, 0), fields(a.small, a.n, -2.0, 1)
    yb, yt = fields(16, a.n, -1.0, 2)[:, :1], fields(a.small, a.n, -0.5, 3)[:, :1]
    layers = list(range(1, 12))
    # a job's start-up, as in the pipeline (predict_layers would do it; timed here to print it)
    t_import = preload_optimiser()
    t0 = time.perf_counter()
    with torch.no_grad():
        net(xt)
    fwd = time.perf_counter() - t0
    pred = predict_layers(net, xb, xt, yt, spectra(xb, yb), spectra(xt, yt), layers, batch_size=8,
                          probe={"epochs": a.probe_epochs, "holdout": 0.34, "lr": 1e-3, "batch_size": 8})
    ident = Normaliser(np.zeros(2), np.ones(2), np.zeros(1), np.ones(1))
    t0 = time.perf_counter()
    for L in layers:
        for s in range(a.sweep_seeds):
            retrain_layer(net, L, xt, yt, ident, epochs=a.epochs, batch_size=8, lr=1e-3, seed=s, device="cpu")
    sweep = (time.perf_counter() - t0) * a.seeds / a.sweep_seeds
    print(f"# {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{a.threads} thread(s), {a.channels} channels, {a.n}^2, small set {a.small}")
    print(f"sweep (11 layers x {a.seeds} seeds x {a.epochs} epochs, {a.sweep_seeds} seed(s) timed): "
          f"{sweep:.1f} s;  one forward pass of the small set: {1e3 * fwd:.1f} ms;  "
          f"the first optimiser's import (start-up, in no timing): {t_import:.2f} s")
    print("| predictor | seconds | / sweep | / forward pass |")
    print("|---|---|---|---|")
    for name in PREDICTORS:
        sec = pred["predictors"][name]["seconds"]
        print(f"| {name} | {sec:.3f} | {100 * sec / sweep:.2f}% | {sec / fwd:.0f} |")


if __name__ == "__main__":
    main()
