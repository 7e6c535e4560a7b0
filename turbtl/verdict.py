"""The statistics of a best-layer verdict: seed intervals, the paired test, regret and hits.

The one owner of how the sweep's numbers become a verdict; ``transfer.summarise`` (the
empirical best layer) and ``predict.compare`` (each predictor against it) both call it.

Design (issue 8 of the project; docs/DESIGN.md "verdict")
---------------------------------------------------------
**Paired seeds.**  TL seed ``s`` draws its own small target set from the target's TRAIN
members (``data.small_subset`` with the seed ``(transfer.subset_seed, s)``) and orders its
mini-batches with ``s``.  Within one seed every re-trained layer and every small-set
baseline uses that same draw.  The seed-to-seed spread is therefore the noise a user faces
when drawing a small target set, and two layers are compared seed by seed (paired).

**Intervals.**  Per layer: mean, sample std (ddof = 1) and the 95% Student-t interval of
the mean over the n seeds, ``mean +- t_{0.975, n-1} std / sqrt(n)``.

**The paired test.**  For two layers A and B with per-seed test nmse ``a_s``, ``b_s`` the
differences ``d_s = a_s - b_s`` are tested with the paired two-sided Student t-test
(``scipy.stats.ttest_rel``), H0: mean(d) = 0.  Why this test:

- paired, because both layers saw the same small set in seed s; the draw-to-draw variation,
  shared by all layers, cancels in ``d_s``;
- t rather than the Wilcoxon signed-rank test, because with the few seeds affordable here
  (default 5) the exact two-sided Wilcoxon p-value cannot go below 2 / 2^n = 0.0625: it could
  never resolve anything at the 5% level.  The t-test assumes roughly normal differences;
- two-sided, because which layer is "best" is chosen from the same data (a one-sided test
  in the direction the data picked would be optimistic).

Degenerate cases: fewer than 2 common seeds -> no test (p = None); all differences equal
(to 1e-9 relative, round-off of the csv) -> p = 0 if they are non-zero, 1 if all zero.

``resolved`` (sweep summary): the best layer beats the runner-up, p < alpha (default 0.05).

**Regret** of a choice c: ``(nmse(c) - nmse(best)) / (nmse(zero_shot) - nmse(best))``, on
the seed means: the share of the TL gain lost by trusting the choice (0 perfect; 1 no better
than not re-training at all; above 1 worse than not re-training).  None when TL does not
beat zero shot (the denominator is <= 0: nothing to lose).

**Hit**: the choice is the best layer, or it is not significantly worse than the best by
the same paired test (p >= alpha).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import special  # not scipy.stats: its import takes 0.5 s of every job that reads a verdict

__all__ = ["ALPHA", "interval", "layer_stats", "best_layer", "paired_test", "regret", "hit", "per_seed",
           "empirical_table", "sweep_seconds", "compare", "SUMMARY_COLUMNS", "AGGREGATE_COLUMNS",
           "summary_rows", "aggregate"]

ALPHA = 0.05


def interval(values, level: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, std, lo, hi)``: sample std (ddof 1) and Student-t interval of the mean.

    One value: std 0 and the interval collapses to the value (no spread can be measured).
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return nan, nan, nan, nan
    m = float(v.mean())
    if v.size == 1:
        return m, 0.0, m, m
    sd = float(v.std(ddof=1))
    half = float(special.stdtrit(v.size - 1, 0.5 + level / 2)) * sd / math.sqrt(v.size)  # = scipy.stats.t.ppf
    return m, sd, m - half, m + half


def layer_stats(df: pd.DataFrame, metric: str = "nmse") -> dict:
    """Per-group statistics of ``metric`` (mean, std, 95% interval, min, max, cc, n)."""
    m, sd, lo, hi = interval(df[metric])
    out = {"mean": m, "std": sd, "ci95_low": lo, "ci95_high": hi,
           "min": float(df[metric].min()), "max": float(df[metric].max()), "n": int(len(df))}
    if "cc" in df:
        out.update(cc_mean=float(df["cc"].mean()), cc_std=interval(df["cc"])[1])
    if "spec_err" in df:
        out["spec_err_mean"] = float(df["spec_err"].mean())
    return out


def per_seed(tl_rows: pd.DataFrame, layer: int, metric: str = "nmse") -> pd.Series:
    """The per-seed metric of one re-trained layer, indexed by seed."""
    sub = tl_rows[tl_rows["layer"].astype(int) == int(layer)]
    return sub.groupby("seed")[metric].mean()


def best_layer(tl_rows: pd.DataFrame, alpha: float = ALPHA, metric: str = "nmse") -> dict:
    """The empirical verdict of a sweep's ``tl_layer`` rows (module doc): ``best_layer`` (lowest
    seed mean; ties to the shallowest), ``runner_up``, ``margin`` (their mean difference), the
    paired test of runner-up against best (``p_value``, ``test``) and ``resolved`` (p < alpha).
    With one layer there is no runner-up and no test."""
    means = tl_rows.groupby("layer")[metric].mean()
    ranked = sorted((float(m), int(L)) for L, m in means.items())
    if not ranked:
        raise ValueError("no tl_layer rows: no best layer")
    best = ranked[0][1]
    out = {"best_layer": best, "runner_up": None, "margin": None, "p_value": None, "test": None,
           "resolved": False}
    if len(ranked) > 1:
        ru = ranked[1][1]
        t = paired_test(per_seed(tl_rows, ru, metric), per_seed(tl_rows, best, metric))
        out.update(runner_up=ru, margin=ranked[1][0] - ranked[0][0], p_value=t["p"], test=t["test"],
                   resolved=bool(t["p"] is not None and t["p"] < alpha))
    return out


def paired_test(a: pd.Series, b: pd.Series) -> dict:
    """Paired two-sided t-test of ``a - b`` over their common seeds (module doc).

    Returns ``{"diff": mean(a - b), "p": p-value or None, "n": common seeds, "test": name}``.
    """
    a, b = a.align(b, join="inner")
    d = (a - b).to_numpy(np.float64)
    d = d[np.isfinite(d)]
    out = {"diff": float(d.mean()) if d.size else None, "p": None, "n": int(d.size),
           "test": "paired two-sided Student t-test over seeds"}
    if d.size < 2:
        return out
    if np.ptp(d) <= 1e-9 * np.abs(d).max():  # constant up to round-off: the t statistic is +-inf or 0/0
        out["p"] = 0.0 if np.abs(d).max() > 0 else 1.0
        return out
    out["p"] = _t_test_p(d)
    return out


def _t_test_p(d: np.ndarray) -> float:
    """Two-sided p-value of the one-sample t-test of mean(d) = 0: scipy.stats.ttest_1samp(d, 0)'s
    arithmetic, step by step (bit for bit the same, tests/test_verdict.py), without the 0.5 s
    import of scipy.stats."""
    n = d.size
    mean = np.mean(d)
    var = np.mean((d - np.mean(d, keepdims=True)) ** 2) * (np.float64(n) / (n - 1))
    t = mean / np.sqrt(var / n)
    return float(2 * special.stdtr(n - 1, -abs(t)))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties averaged (scipy.stats.rankdata's 'average')."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    first = np.flatnonzero(new)
    last = np.r_[first[1:], x.size] - 1
    avg = 0.5 * (first + last) + 1.0  # the average 1-based position of each run of ties
    out = np.empty(x.size, np.float64)
    out[order] = avg[np.cumsum(new) - 1]
    return out


def spearman(x, y) -> tuple[float, float]:
    """(rho, two-sided p) of the Spearman rank correlation: scipy.stats.spearmanr's arithmetic
    (bit for bit the same on inputs that are not constant, tests/test_verdict.py)."""
    r = np.corrcoef(np.column_stack((_ranks(x), _ranks(y))), rowvar=False)[1, 0]
    dof = len(x) - 2
    with np.errstate(divide="ignore"):
        t = r * np.sqrt((dof / ((r + 1.0) * (1.0 - r))).clip(0))
    return float(r), float(2 * special.stdtr(dof, -np.abs(t)))


def regret(choice_mean: float, best_mean: float, zero_shot: float | None) -> float | None:
    """Share of the TL gain lost by the choice (module doc); None without a TL gain."""
    if zero_shot is None or not all(map(math.isfinite, (choice_mean, best_mean, zero_shot))):
        return None
    gain = zero_shot - best_mean
    if gain <= 0:
        return None
    return float((choice_mean - best_mean) / gain)


def hit(choice: int, best: int, test: dict, alpha: float = ALPHA) -> bool:
    """The choice is the best, or not significantly worse by the paired test."""
    if int(choice) == int(best):
        return True
    p = test.get("p")
    if p is None:  # no test possible (one seed): only the best itself counts
        return False
    return bool(p >= alpha)


# ------------------------------------------------------------ predictors against the sweep
def empirical_table(sweep_df: pd.DataFrame, metric: str = "nmse") -> pd.DataFrame:
    """Per-layer mean, std and 95% interval (over seeds) of the TL test metric, by layer."""
    rows = sweep_df[sweep_df["method"] == "tl_layer"] if "method" in sweep_df else sweep_df
    tab = {int(L): layer_stats(g, metric) for L, g in rows.groupby("layer")}
    return pd.DataFrame.from_dict(tab, orient="index").sort_index()


def _finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def sweep_seconds(sweep_df: pd.DataFrame) -> float:
    """The sweep's total re-training time: the ``seconds`` of every ``tl_layer`` row."""
    return float(sweep_df.loc[sweep_df["method"] == "tl_layer", "seconds"].sum())


def compare(prediction: dict, sweep_df: pd.DataFrame, *, alpha: float = ALPHA,
            target: str | None = None) -> dict:
    """Each predictor against the empirical sweep (turbtl.predict module doc): ``comparison.json``."""
    tl = sweep_df[sweep_df["method"] == "tl_layer"]
    tab = empirical_table(sweep_df)
    verdict = best_layer(tl, alpha)
    best = verdict["best_layer"]
    zs = sweep_df.loc[sweep_df["method"] == "zero_shot", "nmse"]
    zero_shot = float(zs.mean()) if len(zs) else None
    total = sweep_seconds(sweep_df)
    out = {"target": target, "metric": "nmse", "empirical_best": best, "runner_up": verdict["runner_up"],
           "resolved": verdict["resolved"], "alpha": float(alpha),
           "zero_shot": _finite_or_none(zero_shot), "sweep_seconds": total,
           "empirical": {str(L): {c: _finite_or_none(r[c]) for c in ("mean", "std", "ci95_low", "ci95_high")}
                         for L, r in tab.iterrows()},
           "predictors": {}}
    for name, pred in prediction["predictors"].items():
        scores = {int(L): float(s) for L, s in pred["scores"].items()}
        common = [L for L in tab.index if L in scores]
        sc = np.array([scores[L] for L in common])
        neg = -tab.loc[common, "mean"].to_numpy()
        rho = p_rho = None
        if len(common) >= 2 and np.ptp(sc) > 0 and np.ptp(neg) > 0:
            rho, p_rho = (_finite_or_none(v) for v in spearman(sc, neg))
        ch = int(pred["choice"])
        entry = {"choice": ch, "empirical_best": best, "spearman": rho, "spearman_p": p_rho,
                 "n_layers": len(common), "seconds": _finite_or_none(pred.get("seconds")),
                 "cost_fraction": (_finite_or_none(pred["seconds"] / total)
                                   if pred.get("seconds") is not None and total > 0 else None)}
        if ch in tab.index:
            t = paired_test(per_seed(tl, ch), per_seed(tl, best)) if ch != best else {"p": None, "diff": 0.0}
            entry.update(regret=regret(float(tab.loc[ch, "mean"]), float(tab.loc[best, "mean"]), zero_shot),
                         hit=hit(ch, best, t, alpha), p_value=t["p"], gap=_finite_or_none(t["diff"]),
                         choice_rank=int((tab["mean"] < tab.loc[ch, "mean"]).sum()) + 1)
        else:  # the predictor chose a layer the sweep did not run
            entry.update(regret=None, hit=False, p_value=None, gap=None, choice_rank=None)
        out["predictors"][name] = entry
    return out


SUMMARY_COLUMNS = ["target", "predictor", "predicted_layer", "empirical_best", "hit", "regret",
                   "p_value", "spearman", "resolved", "seconds", "sweep_seconds", "cost_fraction",
                   "ap_best", "ap_hit", "ap_regret", "apriori_best_ap_regret"]
AGGREGATE_COLUMNS = ["predictor", "n_targets", "hit_rate", "mean_regret", "worst_regret",
                     "mean_spearman", "mean_cost_fraction", "max_cost_fraction", "mean_seconds",
                     "ap_hit_rate", "mean_ap_regret"]


def tl_closure(layer: int) -> str:
    """Name of the LES closure "the base network with layer L re-trained" (``aposteriori.json``)."""
    return f"tl_layer{int(layer)}"


def closure_layer(name: str) -> int | None:
    """The re-trained layer of a closure named by :func:`tl_closure`; None for any other closure."""
    m = re.fullmatch(r"tl_layer(\d+)", str(name))
    return int(m.group(1)) if m else None


def aposteriori_verdict(ap: dict, comparison: dict) -> dict:
    """The a-posteriori counterpart of the best-layer verdict (``aposteriori.json`` of
    :mod:`turbtl.aposteriori`): per re-trained layer L the LES's ``spec_err`` e_L (a closure
    that blew up ranks last); ``ap_best`` = argmin e_L; for each predictor's choice c,
    ``ap_hit`` = (c == ap_best) and ``ap_regret`` = (e_c - e_best) / (e_zero_shot - e_best),
    the share of the a-posteriori TL gain lost (None without a gain or for a blown-up
    choice); ``apriori_best_ap_regret`` is that regret for the a-priori best layer: 0 when
    the a-priori verdict also wins inside the LES.  There is no significance test here: the
    per-start spread of e_L is in ``aposteriori.json`` and the figure."""
    err = {}
    for name, c in ap["closures"].items():
        layer = closure_layer(name)
        if layer is not None:
            err[layer] = c["spec_err"] if c["stable"] and c["spec_err"] is not None else math.inf
    zs = ap["closures"].get("zero_shot", {})
    e_zs = zs.get("spec_err") if zs.get("stable") else None
    if not err:
        return {"ap_best": None, "apriori_best_ap_regret": None, "predictors": {}}
    best = min(err, key=lambda L: (err[L], L))

    def reg(L):
        return regret(err[L], err[best], e_zs) if L in err else None

    out = {"ap_best": int(best), "apriori_best_ap_regret": reg(int(comparison["empirical_best"])), "predictors": {}}
    for name, c in comparison["predictors"].items():
        out["predictors"][name] = {"ap_hit": int(c["choice"]) == best, "ap_regret": reg(int(c["choice"]))}
    return out


def summary_rows(target: str, comparison: dict, ap: dict | None = None) -> list[dict]:
    """Rows of ``summary_by_target.csv`` (columns :data:`SUMMARY_COLUMNS`) for one target;
    the ``ap_`` columns are empty without the a-posteriori stage (``ap`` None)."""
    v = aposteriori_verdict(ap, comparison) if ap is not None else {"predictors": {}}
    rows = []
    for name, c in comparison["predictors"].items():
        a = v["predictors"].get(name, {})
        rows.append({"target": target, "predictor": name, "predicted_layer": int(c["choice"]),
                     "empirical_best": int(c["empirical_best"]), "hit": bool(c["hit"]),
                     "regret": c["regret"], "p_value": c["p_value"], "spearman": c["spearman"],
                     "resolved": bool(comparison["resolved"]), "seconds": c["seconds"],
                     "sweep_seconds": comparison["sweep_seconds"], "cost_fraction": c["cost_fraction"],
                     "ap_best": v.get("ap_best"), "ap_hit": a.get("ap_hit"), "ap_regret": a.get("ap_regret"),
                     "apriori_best_ap_regret": v.get("apriori_best_ap_regret")})
    return rows


def aggregate(by_target: pd.DataFrame) -> pd.DataFrame:
    """Per predictor over targets (``summary.csv``): hit rate, mean and worst regret, mean
    Spearman, cost as a fraction of the sweep.  Undefined regrets (no TL gain) are left out
    of the regret statistics; ``n_targets`` counts every target."""
    out = []
    for name, g in by_target.groupby("predictor", sort=False):
        r = pd.to_numeric(g["regret"], errors="coerce")
        out.append({"predictor": name, "n_targets": int(len(g)),
                    "hit_rate": float(g["hit"].astype(bool).mean()),
                    "mean_regret": float(r.mean()), "worst_regret": float(r.max()),
                    "mean_spearman": float(pd.to_numeric(g["spearman"], errors="coerce").mean()),
                    "mean_cost_fraction": float(pd.to_numeric(g["cost_fraction"], errors="coerce").mean()),
                    "max_cost_fraction": float(pd.to_numeric(g["cost_fraction"], errors="coerce").max()),
                    "mean_seconds": float(pd.to_numeric(g["seconds"], errors="coerce").mean()),
                    "ap_hit_rate": float(pd.to_numeric(g["ap_hit"], errors="coerce").mean()),
                    "mean_ap_regret": float(pd.to_numeric(g["ap_regret"], errors="coerce").mean())})
    return pd.DataFrame(out, columns=AGGREGATE_COLUMNS)
