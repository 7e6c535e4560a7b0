"""Small fixtures for the diagnostics / predict / plots tests (no DNS, no training).

Everything is built here from scratch in the docs/DESIGN.md formats, so these tests do not
wait on the data / training / transfer stages.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import xarray as xr

from turbtl.network import NetConfig, SGSNet

N = 16


def grid5():
    y, x = np.mgrid[-2:3, -2:3].astype(float)
    return x, y


def gaussian(s=1.0):
    x, y = grid5()
    g = np.exp(-(x**2 + y**2) / (2 * s * s))
    return g / g.sum()


def laplacian():
    w = np.zeros((5, 5))
    w[2, 2] = -4
    w[1, 2] = w[3, 2] = w[2, 1] = w[2, 3] = 1
    return w


def dog():
    """Difference of Gaussians: zero mean, ring-shaped (isotropic band-pass) spectrum."""
    return gaussian(0.7) - gaussian(1.5)


def gabor(theta=0.0):
    x, y = grid5()
    xr_ = x * np.cos(theta) + y * np.sin(theta)
    return np.exp(-(x**2 + y**2) / (2 * 1.2**2)) * np.cos(2 * np.pi * xr_ / 4)


def tiny_net(depth=3, channels=3, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = SGSNet(NetConfig(depth=depth, channels=channels, kernel_size=5))
    return net.to(dtype)


def fourier_field(n, kx, ky, amp=1.0):
    j = np.arange(n) * 2 * np.pi / n
    X, Y = np.meshgrid(j, j)  # (y, x)
    return amp * np.cos(kx * X + ky * Y)


def spectra_ds(n=N, slope=-3.0, bump_k=None, bump=1.0):
    """A ``{system}_spectra.nc``-like dataset with power-law spectra (optional bump)."""
    k = np.arange(n // 2 + 1, dtype=float)
    base = np.where(k > 0, np.maximum(k, 1) ** slope, 1.0)
    fac = np.ones_like(k)
    if bump_k is not None:
        fac = 1 + bump * np.exp(-((k - bump_k) ** 2) / 2.0)
    ds = xr.Dataset(coords={"k_les": k, "k_dns": np.arange(n + 1, dtype=float)})
    for v in ("P_psi", "P_omega", "P_pi"):
        ds[v] = ("k_les", base * fac, {"long_name": v, "units": "1"})
    for v in ("E_les", "Z_les"):
        ds[v] = ("k_les", base, {"long_name": v, "units": "1"})
    for v in ("E_dns", "Z_dns"):
        ds[v] = ("k_dns", np.ones(n + 1), {"long_name": v, "units": "1"})
    return ds


def random_fields(s=4, n=N, seed=0, slope=-2.0):
    """Random smooth fields (s, 2, n, n) with a power-law spectrum."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n, 1.0 / n)
    kk = np.sqrt(k[:, None] ** 2 + k[None, :] ** 2)
    amp = np.where(kk > 0, np.maximum(kk, 1) ** (slope / 2), 0)
    f = np.fft.ifft2(amp * (rng.standard_normal((s, 2, n, n)) + 1j * rng.standard_normal((s, 2, n, n)))).real
    return torch.tensor(f / f.std(), dtype=torch.float32)


def sweep_table(means: dict, stds: dict, seeds=3, target="t", cc=None) -> pd.DataFrame:
    """A sweep.csv-like table whose per-layer nmse have exactly the given mean and (ddof=1) std."""
    rows = []
    offs = np.array([-1.0, 0.0, 1.0]) if seeds == 3 else np.linspace(-1, 1, seeds)
    offs = offs / offs.std(ddof=1)
    for L, m in means.items():
        for s, o in enumerate(offs):
            v = m + o * stds[L]
            rows.append(dict(target=target, method="tl_layer", layer=L, seed=s, n_train=8, epochs=2,
                             mse=v, nmse=v, cc=1 - v if cc is None else cc[L], spec_err=0.1, seconds=1.0))
    for meth, v in (("zero_shot", 0.9), ("scratch", 0.8), ("finetune_all", 0.3), ("full_target", 0.1)):
        rows.append(dict(target=target, method=meth, layer=0, seed=0, n_train=8, epochs=2, mse=v, nmse=v,
                         cc=1 - v, spec_err=0.1, seconds=1.0))
    return pd.DataFrame(rows)


def sweep_summary(df: pd.DataFrame, target="t") -> dict:
    t = df[df.method == "tl_layer"].groupby("layer")
    lay = {str(L): {"mean": float(g.nmse.mean()), "std": float(g.nmse.std(ddof=1)), "min": float(g.nmse.min()),
                    "max": float(g.nmse.max()), "cc_mean": float(g.cc.mean()), "cc_std": float(g.cc.std(ddof=1)),
                    "spec_err_mean": 0.1} for L, g in t}
    order = sorted(lay, key=lambda L: lay[L]["mean"])
    b, r = int(order[0]), int(order[1])
    margin = lay[str(r)]["mean"] - lay[str(b)]["mean"]
    base = {m: {"mean": float(g.nmse.mean()), "std": 0.0, "cc_mean": float(g.cc.mean()), "cc_std": 0.0}
            for m, g in df[df.method != "tl_layer"].groupby("method")}
    return {"target": target, "metric": "nmse", "layers": lay, "baselines": base, "best_layer": b,
            "runner_up": r, "margin": margin, "p_value": 0.01, "resolved": True, "n_seeds": 3}


def layer_weights(net, layers, seeds=(0, 1), scale=0.05, seed=0):
    """``{L: {seed: {"weight", "bias"}}}`` = base weights plus small random perturbations."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for L in layers:
        conv = net.layer(L)
        out[L] = {}
        for s in seeds:
            dw = scale * torch.randn(conv.weight.shape, generator=g)
            out[L][s] = {"weight": (conv.weight.detach() + dw).clone(), "bias": conv.bias.detach().clone()}
    return out
