"""The kernels leaf figure of one target (caption: workflow/report/kernels.rst): the most-changed
kernels' spectra before and after TL, their radial spectra, the rule-based classes and the
k-means clusters (:mod:`turbtl.kernel_clusters`) per layer before and after."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .diagnostics import LABELS
from .plots import logk_axis, save, theme

__all__ = ["kernels"]


def kernels(tl_ds, path, *, layer: int | None = None, target: str = "", max_kernels: int = 4) -> None:
    """2D spectra of the most-changed kernels of ``layer`` before/after TL; label counts per layer."""
    theme()
    layers = [int(L) for L in tl_ds["tl_layer"].values]
    layer = layers[0] if layer is None or int(layer) not in layers else int(layer)
    sel = tl_ds.sel(tl_layer=layer)
    valid = [int(r) for r in sel["rank"].values if int(sel["top_out"].sel(rank=r)) >= 0][:max_kernels]
    m = max(1, len(valid))
    clustered = "cluster_count_before" in tl_ds
    fig = plt.figure(figsize=(max(2.7 * (m + 1) + 1.5, 12), 13 if clustered else 9))
    gs = fig.add_gridspec(4 if clustered else 3, m + 1, height_ratios=[1, 1, 1.1, 1.2][:4 if clustered else 3])
    kk = tl_ds["kx"].values
    ext = [kk[0] - 0.5, kk[-1] + 0.5, kk[0] - 0.5, kk[-1] + 0.5]
    for j, r in enumerate(valid):
        before = sel["spec_before"].sel(rank=r).values
        after = sel["spec_after"].sel(rank=r).values
        vmax = float(np.nanmax([before.max(), after.max()]))
        o, i = int(sel["top_out"].sel(rank=r)), int(sel["top_in"].sel(rank=r))
        lb = LABELS[int(sel["top_label_before"].sel(rank=r))]
        la = LABELS[int(sel["top_label_after"].sel(rank=r))]
        for row, (arr, when, lab) in enumerate(((before, "base", lb), (after, "after TL", la))):
            ax = fig.add_subplot(gs[row, j])
            im = ax.imshow(arr, origin="lower", extent=ext, cmap="viridis", vmin=0, vmax=vmax)
            ax.grid(False)
            ax.set_title(f"out {o}, in {i}: {when}\n{lab}", fontsize=8)
            ax.set_xlabel("$k_x$")
            ax.set_ylabel("$k_y$")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="|K|")
    ax = fig.add_subplot(gs[0:2, m])
    k = tl_ds["k"].values
    pos = k > 0
    ax.plot(k[pos], sel["radial_before"].values[pos], "o-", label="base")
    ax.plot(k[pos], sel["radial_after"].values[pos], "s--", label="after TL")
    logk_axis(ax)
    ax.set_xlabel("wavenumber k")
    ax.set_ylabel("shell-RMS |K|, mean over the layer's kernels")
    ax.set_title(f"layer {layer}: mean radial transfer function", fontsize=8)
    ax.legend(fontsize=8)
    ax = fig.add_subplot(gs[2, :])
    cb = tl_ds["label_count_before"].to_pandas()
    ca = tl_ds["label_count_after"].to_pandas()
    cb.columns = [LABELS[int(c)] for c in cb.columns]
    ca.columns = [LABELS[int(c)] for c in ca.columns]
    _paired_fractions(ax, cb, ca, sns.color_palette("Set2", len(LABELS)))
    ax.legend(fontsize=8, ncol=len(LABELS), loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set_title("kernel classes per layer", fontsize=9)
    if clustered:
        _kernel_clusters(fig, gs[3, :], tl_ds)
    fig.suptitle(f"Most-changed kernels of layer {layer} (|FFT2| of the zero-padded kernel)"
                 + (f", target {target}" if target else ""))
    fig.tight_layout()
    save(fig, path)


def _paired_fractions(ax, before: pd.DataFrame, after: pd.DataFrame, palette) -> None:
    """Per layer (rows), two stacked bars of the columns' shares: ``before`` plain on the
    left, ``after`` hatched on the right; the legend labels are ``before``'s columns."""
    x = np.arange(len(before.index))
    wdt = 0.38
    for side, tab, hatch in ((-1, before, ""), (1, after, "//")):
        frac = tab.div(tab.sum(axis=1).replace(0, 1), axis=0)
        bottom = np.zeros(len(x))
        for c, col in zip(palette, frac.columns):
            ax.bar(x + side * wdt / 2, frac[col].values, wdt, bottom=bottom, color=c, hatch=hatch,
                   edgecolor="k", lw=0.4, label=col if side < 0 else None)
            bottom += frac[col].values
    ax.set_xticks(x)
    ax.set_xticklabels([str(L) for L in before.index])
    ax.set_xlabel("layer (left bar: base kernels; right, hatched: after re-training that layer)")
    ax.set_ylabel("fraction of kernels")


def _kernel_clusters(fig, cell, tl_ds) -> None:
    """The base network's k-means clusters (centroids) and the share of each re-trained
    layer's kernels in them, before and after TL (:mod:`turbtl.kernel_clusters`)."""
    sub = cell.subgridspec(1, 2, width_ratios=[1, 1.4], wspace=0.25)
    cen = tl_ds["cluster_centroid"].values
    kk = tl_ds["kx_pad"].values
    ext = [kk[0] - 0.5, kk[-1] + 0.5, kk[0] - 0.5, kk[-1] + 0.5]
    grid = sub[0].subgridspec(2, (len(cen) + 1) // 2, wspace=0.05, hspace=0.35)
    lim = float(np.abs(cen).max())
    for c in range(len(cen)):
        ax = fig.add_subplot(grid[c // grid.ncols, c % grid.ncols])
        ax.imshow(cen[c], origin="lower", extent=ext, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"cluster {c}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    ax = fig.add_subplot(sub[1])
    before = tl_ds["cluster_count_before"].to_pandas()
    after = tl_ds["cluster_count_after"].to_pandas()
    before.columns = after.columns = [f"cluster {c}" for c in before.columns]
    _paired_fractions(ax, before, after, sns.color_palette("viridis", len(cen)))
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set_title("k-means clusters of the z-scored kernel spectra (centroids left, z-units; 0: lowest "
                 "spectral centre of mass)", fontsize=9)
