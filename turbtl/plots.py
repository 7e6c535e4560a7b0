"""The leaf figures (matplotlib Agg + seaborn).  Every function writes one PNG atomically.

Inputs are the pipeline's own files, already opened: the sweep table (DataFrame), the sweep
summary / prediction / comparison dicts (JSON) and the diagnostics datasets (xarray).
Spectra are drawn on log-log axes; 2D kernel spectra are centred (fftshift) with kx, ky in
integer wavenumbers.  The kernels figure is :mod:`turbtl.plots_kernels`, the a-posteriori one
:mod:`turbtl.plots_les`.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path  # noqa: E402
from .paths import BASELINE_METHODS  # noqa: E402
from .verdict import interval  # noqa: E402

__all__ = ["DPI", "save", "theme", "logk_axis", "predictor_colors", "best_layer", "activations",
           "system_spectra", "pairs", "sizes", "summary"]

DPI = 120
PREDICTOR_MARKERS = {"spectral": "v", "marginal": "<", "framework": ">", "gradient": "^",
                     "probe": "P", "deepest": "s", "shallowest": "X"}
# labels of the baselines, in the order of the one list of methods (turbtl.paths)
BASELINE_NAMES = dict(zip(BASELINE_METHODS, ("zero shot (base net)", "scratch (small set)",
                                             "fine-tune all layers", "full target data"), strict=True))


def theme():
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)


def save(fig, path, dpi: int = DPI) -> None:
    """Save ``fig`` as PNG at ``path`` atomically, then close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def logk_axis(ax):
    """Log wavenumber axis without the crowded minor-tick labels of a sub-decade range."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def predictor_colors(names):
    pal = sns.color_palette("colorblind", n_colors=max(3, len(names)) + 3)
    return {n: pal[i + 3] for i, n in enumerate(names)}


def _layer_stats(sweep_df: pd.DataFrame) -> pd.DataFrame:
    """Per layer: mean nmse and cc, and the half-width of their 95% t-intervals over seeds
    (``turbtl.verdict.interval``; 0 for a single seed)."""
    rows = sweep_df[sweep_df["method"] == "tl_layer"]
    out = {}
    for L, g in rows.groupby("layer"):
        (m, _, _, hi), (c, _, _, chi) = interval(g["nmse"]), interval(g["cc"])
        out[L] = {"nmse": m, "nmse_std": hi - m, "cc": c, "cc_std": chi - c}
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


def best_layer(sweep_df: pd.DataFrame, summary: dict, prediction: dict, comparison: dict | None,
               path, *, target: str = "") -> None:
    """Per-layer test nmse and CC (mean +- std over seeds), baselines, best and predicted layers."""
    theme()
    tab = _layer_stats(sweep_df)
    layers = tab.index.to_numpy()
    best = int(summary.get("best_layer", tab["nmse"].idxmin()))
    preds = prediction["predictors"]
    colors = predictor_colors(list(preds))
    base_pal = sns.color_palette("dark", n_colors=len(BASELINE_NAMES))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    for ax, col, lab in ((axes[0], "nmse", "test nMSE (lower is better)"),
                         (axes[1], "cc", "test correlation CC (higher is better)")):
        ax.errorbar(layers, tab[col], yerr=tab[f"{col}_std"], fmt="o-", color="k", capsize=3,
                    label="TL: re-train one layer (mean, 95% interval over seeds)")
        for (m, name), c in zip(BASELINE_NAMES.items(), base_pal):
            b = summary.get("baselines", {}).get(m)
            if not b:
                continue
            v = b.get("mean") if col == "nmse" else b.get("cc_mean")
            if v is None or not math.isfinite(float(v)):
                continue
            ax.axhline(float(v), ls="--", lw=1.2, color=c, label=name)
        ax.plot([best], [tab.loc[best, col]], marker="*", ms=18, color="gold", mec="k", ls="none",
                label=f"empirical best (layer {best})", zorder=5)
        lo, hi = ax.get_ylim()
        for j, (pname, p) in enumerate(preds.items()):
            ch = int(p["choice"])
            ax.plot([ch], [hi - (0.04 + 0.05 * j) * (hi - lo)], marker=PREDICTOR_MARKERS.get(pname, "D"),
                    ms=9, color=colors[pname], ls="none", label=f"{pname} predictor's choice (layer {ch})")
        ax.set_ylim(lo, hi)
        ax.set_xlabel("re-trained layer")
        ax.set_ylabel(lab)
        ax.set_xticks(layers)
    if summary.get("runner_up") is not None:
        p = summary.get("p_value")
        ptxt = f"paired p = {p:.3g}" if p is not None else "no paired test"
        axes[0].set_title(f"best layer {best} {'beats' if summary.get('resolved') else 'is not resolved from'}"
                          f" runner-up {summary.get('runner_up')} ({ptxt}, {summary.get('n_seeds')} seeds)",
                          fontsize=9)
    axes[1].legend(fontsize=7, loc="best", framealpha=0.85)
    ax = axes[2]
    for pname, p in preds.items():
        sc = pd.Series({int(L): float(s) for L, s in p["scores"].items()}).sort_index()
        rng = sc.max() - sc.min()
        norm = (sc - sc.min()) / rng if rng > 0 else sc * 0 + 1.0
        rho = None
        reg = None
        if comparison:
            c = comparison.get("predictors", {}).get(pname, {})
            rho, reg = c.get("spearman"), c.get("regret")
        lab = pname + (f" (regret {reg:.2f}" if reg is not None else " (regret n/a") + \
            (f", ρ = {rho:.2f})" if rho is not None else ")")
        ax.plot(norm.index, norm.values, marker=PREDICTOR_MARKERS.get(pname, "D"), color=colors[pname], label=lab)
    ax.axvline(best, color="gold", lw=3, alpha=0.6, label=f"empirical best (layer {best})")
    ax.set_xlabel("layer")
    ax.set_ylabel("predictor score, min-max normalised\n(higher = predicted better)")
    ax.set_xticks(layers)
    ax.set_ylim(-0.05, 1.1)
    ax.legend(fontsize=7, loc="best")
    ax.set_title("predictions made before re-training", fontsize=9)
    fig.suptitle(f"Which layer to re-train? target: {target}" if target else "Which layer to re-train?")
    fig.tight_layout()
    save(fig, path)


def activations(act_ds, path, *, tl_layer: int | None = None, stage: str = "post", target: str = "") -> None:
    """Activation spectra per layer: base net on base data, base net on target, TL net on target."""
    theme()
    layers = [int(L) for L in act_ds["layer"].values]
    k = act_ds["k"].values
    pos = k > 0
    tl_layers = [int(L) for L in act_ds["tl_layer"].values] if "tl_layer" in act_ds.dims else []
    if tl_layers:
        tl_layer = tl_layers[0] if tl_layer is None or int(tl_layer) not in tl_layers else int(tl_layer)
    ncol = min(4, len(layers))
    nrow = math.ceil(len(layers) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.0 * nrow), squeeze=False)
    pal = sns.color_palette("colorblind", 3)
    for ax, L in zip(axes.ravel(), layers):
        st = stage if L < max(layers) or stage == "pre" else "pre"
        for c, (case, lab) in zip(pal[:2], (("base_on_base", "base net, base data"),
                                            ("base_on_target", "base net, target data"))):
            y = act_ds["spectrum"].sel(case=case, layer=L, stage=st).values
            ax.loglog(k[pos], y[pos], color=c, label=lab)
        if tl_layers:
            y = act_ds["tl_on_target"].sel(tl_layer=tl_layer, layer=L, stage=st).values
            ax.loglog(k[pos], y[pos], color=pal[2], ls="--", label=f"TL net (layer {tl_layer}), target data")
        logk_axis(ax)
        ax.set_title(f"layer {L} ({st}-activation)" + (" ← re-trained" if L == tl_layer else ""), fontsize=9)
        ax.set_xlabel("wavenumber k")
        ax.set_ylabel("power spectrum")
    for ax in axes.ravel()[len(layers):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Activation spectra (mean over channels and samples)" + (f", target {target}" if target else ""))
    fig.tight_layout()
    save(fig, path)


def system_spectra(ds, path, *, base: str = "base", target: str = "target") -> None:
    """P_psi, P_omega, P_pi of base and target (top) and their ratio target/base (bottom)."""
    theme()
    k = ds["k"].values
    pos = k > 0
    names = {"P_psi": r"filtered $\psi$", "P_omega": r"filtered $\omega$", "P_pi": r"SGS term $\Pi$"}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    pal = sns.color_palette("colorblind", 2)
    for j, (v, title) in enumerate(names.items()):
        ax = axes[0, j]
        ax.loglog(k[pos], ds[f"{v}_base"].values[pos], color=pal[0], label=f"base ({base})")
        ax.loglog(k[pos], ds[f"{v}_target"].values[pos], color=pal[1], label=f"target ({target})")
        logk_axis(ax)
        ax.set_title(title)
        ax.set_ylabel(f"power spectrum of {title}")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        r = ds[f"{v}_ratio"].values[pos]
        ok = np.isfinite(r) & (r > 0)
        ax.loglog(k[pos][ok], r[ok], color="k", marker=".")
        ax.axhline(1.0, color="grey", ls="--", lw=1)
        logk_axis(ax)
        ax.set_xlabel("wavenumber k")
        ax.set_ylabel("ratio target / base")
    fig.suptitle(f"System spectra: {base} vs {target}")
    fig.tight_layout()
    save(fig, path)


def pairs(table: pd.DataFrame, result: dict, path, *, target: str = "") -> None:
    """``transfer.pairs``: the mean test nmse of re-training layers a and b together (lower
    triangle, a < b) and of single layers (diagonal), on one colour scale; the best pair and
    the best single layer outlined."""
    theme()
    layers = sorted({int(v) for v in table["layer_a"]} | {int(v) for v in table["layer_b"]})
    pos = {L: i for i, L in enumerate(layers)}  # the swept layers only (transfer.layers may skip some)
    n = len(layers)
    m = np.full((n, n), np.nan)
    for r in table.itertuples():
        m[pos[int(r.layer_b)], pos[int(r.layer_a)]] = r.mean
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 + 0.7 * n), max(5.0, 1.5 + 0.55 * n)))
    sns.heatmap(m, ax=ax, cmap="viridis_r", annot=n <= 11, fmt=".4f", annot_kws={"fontsize": 6},
                xticklabels=layers, yticklabels=layers, cbar_kws={"label": "test nmse (mean over seeds)"})
    ax.grid(False)
    for (a, b), color, ls, label in ((result["best_pair"], "red", "-", "best pair"),
                                     ((result["best_single"],) * 2, "deepskyblue", "--", "best single layer")):
        ax.add_patch(plt.Rectangle((pos[a], pos[b]), 1, 1, fill=False, ec=color, ls=ls, lw=2.5, label=label))
    ax.set(xlabel="layer a", ylabel="layer b (diagonal: layer a alone)")
    p = result.get("p_value")
    ptxt = "n/a" if p is None else ("< 0.001" if p < 1e-3 else f"= {p:.3f}")
    ax.set_title(f"{target}: pairs of re-trained layers (lower is better)\nbest pair "
                 f"{'+'.join(map(str, result['best_pair']))} vs best single layer {result['best_single']}: paired p "
                 f"{ptxt}{', the pair is better' if result['pair_beats_single'] else ''}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    save(fig, path)


def sizes(table: pd.DataFrame, result: dict, path, *, target: str = "") -> None:
    """``transfer.fractions``: left, each size's test nmse per re-trained layer over the zero
    shot's (mean and 95% interval over seeds), its best layer starred, and right of the layers
    the small-set baselines at that size (fine-tune all, scratch) where the summary has them; right, the best layer
    against the size (filled: resolved against the runner-up), the main size's best dashed,
    and beside each size every predictor's choice there (filled: a hit), when the summary has
    them: the predicted best layer beside the empirical one at each amount of target data."""
    theme()
    ns = sorted({int(v) for v in table["n_small"]})
    pal = sns.color_palette("viridis", n_colors=len(ns))
    zs = result.get("zero_shot") or float("nan")
    by_n = {s["n_small"]: s for s in result["sizes"]}
    names = list(result["sizes"][0].get("predictors", {}))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(15.0 if names else 12.5, 4.6), gridspec_kw={"width_ratios": [1.7, 1]})
    for c, n in zip(pal, ns):
        g = table[table["n_small"] == n].sort_values("layer")
        s = by_n[n]
        lab = f"{n} snapshots ({s['fraction']:.3g}){' (main)' if s['main'] else ''}: best {s['best_layer']}"
        ax.errorbar(g["layer"], g["mean"] / zs, yerr=[(g["mean"] - g["ci95_low"]) / zs, (g["ci95_high"] - g["mean"]) / zs],
                    color=c, marker="o", ms=4, capsize=2, lw=1.2 + (0.8 if s["main"] else 0), label=lab)
        b = g[g["layer"] == s["best_layer"]]
        ax.plot(b["layer"], b["mean"] / zs, marker="*", ms=15, color=c, mec="k", ls="none")
    layers = sorted({int(v) for v in table["layer"]})
    methods = [m for m in ("finetune_all", "scratch") if all(m in (by_n[n].get("baselines") or {}) for n in ns)]
    # the axis holds the layers and zero shot and a margin above them; a baseline above that (scratch
    # on a few snapshots can be many times zero shot's error) is drawn at the top edge with its value
    hi = max(1.0, float((table["ci95_high"] / zs).max()))
    top = hi + 0.6 * max(hi - float((table["ci95_low"] / zs).min()), 0.02)
    clipped = False
    for i, m in enumerate(methods):  # right of the deepest layer, one column per baseline
        x0 = layers[-1] + 1.5 + i
        for j, (c, n) in enumerate(zip(pal, ns)):
            b = by_n[n]["baselines"][m]
            x = x0 + 0.5 * (j - (len(ns) - 1) / 2) / max(1, len(ns))
            y = b["mean"] / zs
            if y > top:
                clipped = True
                ax.plot([x], [top], marker="^", ms=6, color=c, ls="none", clip_on=False)
                ax.annotate(f"{y:.2g}", (x, top), xytext=(0, -11), textcoords="offset points", fontsize=6,
                            ha="center", color=c)
                continue
            ax.errorbar([x], [y], yerr=[[(b["mean"] - b["ci95_low"]) / zs], [(b["ci95_high"] - b["mean"]) / zs]],
                        color=c, marker="s", ms=5, capsize=2, ls="none")
    if methods:
        ax.axvline(layers[-1] + 0.75, color="grey", lw=0.8)
    if clipped:
        ax.set_ylim(top=top * 1.01)
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ticks = layers + [layers[-1] + 1.5 + i for i in range(len(methods))]
    labels = [str(L) for L in layers] + [{"finetune_all": "fine-tune\nall", "scratch": "scratch"}[m] for m in methods]
    ax.set(xlabel="re-trained layer" + (" (then the baselines: fine-tune all, scratch)" if methods else ""),
           ylabel="test nmse / zero shot's (lower is better)")
    ax.set_xticks(ticks, labels)
    ax.set_title(f"{target}: single-layer TL at each small-set size" + (", and the baselines" if methods else "")
                 + " (mean and 95% interval over seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    for c, n in zip(pal, ns):
        s = by_n[n]
        bx.plot([n], [s["best_layer"]], marker="o", ms=9, color=c, mfc=c if s["resolved"] else "white", mew=2)
    colors = predictor_colors(names)
    for i, name in enumerate(names):  # each predictor a little right of the size, in its own column
        shift = 1.06 ** (i + 1.5)
        for j, n in enumerate(ns):
            c = by_n[n]["predictors"][name]
            bx.plot([n * shift], [c["choice"]], marker=PREDICTOR_MARKERS.get(name, "D"), ms=6, color=colors[name],
                    mfc=colors[name] if c["hit"] else "white", mec=colors[name], ls="none",
                    label=f"{name} ({result['predictor_hits'][name]}/{len(ns)} hits)" if j == 0 else None)
    bx.axhline(result["main_best_layer"], color="grey", ls="--", lw=1, label=f"main size's best ({result['main_best_layer']})")
    bx.set_xscale("log")
    bx.set_xticks(ns, [str(n) for n in ns])
    bx.minorticks_off()
    bx.set(xlabel="small-set size (snapshots)", ylabel="best layer", yticks=layers, ylim=(layers[0] - 0.5, layers[-1] + 0.5))
    bx.set_title("best layer per size (filled: resolved, paired test)" +
                 ("; predictors' choices right of it (filled: hit)" if names else ""), fontsize=9)
    if names:  # eight entries: beside the panel, not over the markers
        bx.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        bx.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save(fig, path)


def summary(by_target: pd.DataFrame, table: pd.DataFrame, path) -> None:
    """Regret against cost per predictor; predicted vs empirical best layer; regret per target.

    ``by_target`` has the columns of ``turbtl.verdict.SUMMARY_COLUMNS``, ``table`` those of
    ``AGGREGATE_COLUMNS`` (one row per predictor).
    """
    theme()
    targets = list(dict.fromkeys(by_target["target"]))
    preds = list(dict.fromkeys(by_target["predictor"]))
    colors = predictor_colors(preds)
    # two rows: regret against cost and the regret heat map on top, the choices per target below
    fig = plt.figure(figsize=(max(14.0, 1.0 * len(targets) + 8), 10.0))
    gs = fig.add_gridspec(2, 2, width_ratios=[1, max(1.0, 0.12 * len(targets) + 0.4)], height_ratios=[1, 1])
    axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, :]), fig.add_subplot(gs[0, 1])]
    ax = axes[0]
    for _, r in table.iterrows():
        p = r["predictor"]
        x = max(float(r["mean_cost_fraction"]) if np.isfinite(r["mean_cost_fraction"]) else 0.0, 1e-6)
        y, w = float(r["mean_regret"]), float(r["worst_regret"])
        if not np.isfinite(y):
            continue
        ax.errorbar([x], [y], yerr=[[0.0], [max(w - y, 0.0)]], fmt=PREDICTOR_MARKERS.get(p, "D"), ms=10,
                    color=colors[p], mec="k", capsize=3, label=f"{p}: hit {r['hit_rate']:.0%}")
    ax.axhline(0.10, ls=":", color="grey")
    ax.axvline(0.05, ls=":", color="grey")
    ax.annotate("goal: regret ≤ 0.10 at ≤ 5% of the sweep", (1e-6, 0.10), xytext=(2, 3),
                textcoords="offset points", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_xlim(5e-7, 2)
    ax.set_xlabel("cost / sweep's re-training time (1e-6: free rule)")
    ax.set_ylabel("regret (mean; bar up to the worst target)")
    ax.set_title("regret against cost, one point per predictor", fontsize=9)
    if ax.get_legend_handles_labels()[0]:  # no point where no target has a defined regret
        ax.legend(fontsize=7, loc="upper right")
    ax = axes[1]
    x = np.arange(len(targets))
    first = by_target.groupby("target", sort=False).first().reindex(targets)
    ax.scatter(x, first["empirical_best"].values, marker="*", s=320, color="gold", edgecolor="k",
               zorder=5, label="empirical best")
    for xi, res, e in zip(x, first["resolved"].values, first["empirical_best"].values):
        ax.annotate("resolved" if bool(res) else "not resolved", (xi, e), xytext=(0, -18),
                    textcoords="offset points", ha="center", fontsize=7, color="grey")
    width = 0.6
    for j, p in enumerate(preds):
        sub = by_target[by_target["predictor"] == p].set_index("target").reindex(targets)
        dx = (j - (len(preds) - 1) / 2) * width / max(1, len(preds) - 1)
        ok = sub["hit"].fillna(False).astype(bool).values
        xs = x + dx
        ys = sub["predicted_layer"].values.astype(float)
        ax.scatter(xs[ok], ys[ok], marker=PREDICTOR_MARKERS.get(p, "D"), s=55, color=colors[p],
                   edgecolor="k", label=f"{p}")
        ax.scatter(xs[~ok], ys[~ok], marker=PREDICTOR_MARKERS.get(p, "D"), s=55, facecolor="none",
                   edgecolor=colors[p], lw=1.5)
    ax.set_xticks(x)
    ax.set_xticklabels(targets, rotation=30, ha="right")
    ax.set_xlabel("target flow")
    ax.set_ylabel("layer (1 = shallowest)")
    allv = np.concatenate([first["empirical_best"].values.astype(float),
                           by_target["predicted_layer"].values.astype(float)])
    ax.set_ylim(np.nanmin(allv) - 1.2, np.nanmax(allv) + 1)
    ax.set_xlim(-0.7, len(targets) - 0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("predicted vs empirical best layer (filled: hit, not worse by the paired test)",
                 fontsize=9)
    ax = axes[2]
    heat = by_target.pivot(index="predictor", columns="target", values="regret").reindex(index=preds, columns=targets)
    sns.heatmap(heat.astype(float), ax=ax, vmin=0, vmax=1, cmap="rocket_r", annot=True, fmt=".2f",
                cbar_kws={"label": "regret (0 = best layer, 1 = no better than zero shot)"})
    ax.set_xlabel("target flow")
    ax.set_ylabel("predictor")
    ax.set_title("regret per target (blank: TL gains nothing)", fontsize=9)
    fig.tight_layout()
    save(fig, path)
