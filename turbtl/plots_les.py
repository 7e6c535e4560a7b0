"""The a-posteriori leaf figure of one target (caption: workflow/report/aposteriori.rst)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .aposteriori import per_start_errors
from .plots import PREDICTOR_MARKERS, logk_axis, predictor_colors, save, theme
from .verdict import tl_closure

__all__ = ["aposteriori", "layer_errors"]

SHOWN = {"no_closure": ("no closure", "0.55", ":"), "smagorinsky": ("Smagorinsky", "tab:brown", "-."),
         "dynamic_smagorinsky": ("dynamic Smagorinsky", "tab:olive", "-."),
         "dynamic_leith": ("dynamic Leith", "tab:cyan", "-."),
         "zero_shot": ("zero shot (base net)", "tab:blue", "--"), "finetune_all": ("fine-tune all", "tab:purple", "--"),
         "full_target": ("full target data", "tab:green", "--")}


def layer_errors(ds, ap: dict) -> dict[int, tuple[float, float, float]]:
    """Per re-trained layer: (pooled a-posteriori spec_err, min and max over starts); inf
    for a closure that blew up."""
    out = {}
    for layer, per in per_start_errors(ds).items():
        c = ap["closures"][tl_closure(layer)]
        out[layer] = (float(c["spec_err"]), float(per.min()), float(per.max())) if c["stable"] else (np.inf,) * 3
    return out


def aposteriori(ds, ap: dict, summary: dict, comparison: dict, path, *, target: str = "") -> None:
    theme()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    best = int(summary["best_layer"])
    k = ds["k"].values
    sel = (k >= 1) & (k <= len(k) - 2)
    shown = dict(SHOWN)
    shown[tl_closure(best)] = (f"TL layer {best} (a-priori best)", "tab:orange", "-")
    ax = axes[0]
    ax.loglog(k[sel], ds["dns_energy_spectrum"].values[sel], color="k", lw=2.2, label="filtered DNS")
    x = ds["bin"].values
    axes[1].semilogy(x, np.where(ds["dns_vorticity_pdf"].values > 0, ds["dns_vorticity_pdf"].values, np.nan), color="k",
                     lw=2.2, label="filtered DNS")
    for name, (lab, col, ls) in shown.items():
        if name not in ap["closures"]:
            continue
        c = ap["closures"][name]
        if not c["stable"]:
            lab += f" (blew up at t={c['blowup_time']:.3g})"
            axes[0].plot([], [], color=col, ls=ls, label=lab)
            continue
        e = ds["energy_spectrum"].sel(closure=name).values.mean(axis=0)
        ax.loglog(k[sel], e[sel], color=col, ls=ls, label=f"{lab}: {c['spec_err']:.3f}")
        p = ds["vorticity_pdf"].sel(closure=name).values
        axes[1].semilogy(x, np.where(p > 0, p, np.nan), color=col, ls=ls, label=f"{lab}: {c['pdf_err']:.3f}")
    logk_axis(ax)
    ax.set(xlabel="k", ylabel="E(k)", title="energy spectra (legend: spec_err)")
    ax.legend(fontsize=7)
    axes[1].set(xlabel=r"$\omega/\sigma_{DNS}$", ylabel="PDF", title="vorticity PDF (legend: pdf_err)")
    axes[1].legend(fontsize=7)

    ax = axes[2]
    errs = layer_errors(ds, ap)
    layers = sorted(errs)
    vals = np.array([errs[L][0] for L in layers])
    finite = np.isfinite(vals)
    zs = ap["closures"].get("zero_shot", {})
    ref_vals = [float(v) for v in vals[finite]] + ([zs["spec_err"]] if zs.get("stable") else [])
    top = max(ref_vals) * 1.2 if ref_vals else 1.0
    lf = np.array(layers)[finite]
    ax.vlines(lf, [errs[L][1] for L in lf], [errs[L][2] for L in lf], color="tab:red", alpha=0.45, lw=3,
              label="range over starts")
    ax.plot(lf, vals[finite], marker="o", color="tab:red", label="a posteriori spec_err (pooled)")
    for i, L in enumerate(layers):
        if not finite[i]:
            ax.plot([L], [top], marker="x", color="tab:red", ms=9)
    if zs.get("stable"):
        ax.axhline(zs["spec_err"], color=SHOWN["zero_shot"][1], ls=SHOWN["zero_shot"][2], lw=1, label=SHOWN["zero_shot"][0])
    nc = ap["closures"].get("no_closure", {})
    if nc.get("stable"):
        ax.plot([], [], color=SHOWN["no_closure"][1], ls=SHOWN["no_closure"][2], label=f"no closure: {nc['spec_err']:.3g}")
    if finite.any():
        ap_best = layers[int(np.nanargmin(np.where(finite, vals, np.nan)))]
        ax.plot([ap_best], [errs[ap_best][0]], marker="*", ms=16, color="tab:red", mec="k", zorder=5,
                label=f"a-posteriori best: {ap_best}")
    if best in errs and np.isfinite(errs[best][0]):
        ax.plot([best], [errs[best][0]], marker="*", ms=13, color="gold", mec="k", zorder=6,
                label=f"a-priori best: {best}")
    preds = comparison.get("predictors", {})
    colors = predictor_colors(list(preds))
    for j, (pname, pc) in enumerate(preds.items()):
        ax.plot([pc["choice"]], [top * (1 - 0.03 * (j + 1))], marker=PREDICTOR_MARKERS.get(pname, "D"), ls="none",
                color=colors[pname], label=f"{pname} choice")
    ax.set(xlabel="re-trained layer L", ylabel="a-posteriori spec_err", ylim=(0, top * 1.02))
    ax2 = ax.twinx()
    emp = comparison.get("empirical", {})
    if emp:
        ls = sorted(int(L) for L in emp)
        ax2.plot(ls, [emp[str(L)]["mean"] for L in ls], color="0.4", marker=".", lw=1, label="a-priori test nMSE")
        ax2.set_ylabel("a-priori test nMSE", color="0.4")
        ax2.grid(False)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    ax.set_title("a posteriori (red) beside a priori (grey)")
    fig.suptitle(f"{target}: closures inside the LES ({ap['les']['time']:.3g} time units, "
                 f"{ap['les']['turnovers_per_start']:.1f} turnovers per start after spin-up, {len(ap['starts'])} starts)")
    fig.tight_layout()
    save(fig, path)
