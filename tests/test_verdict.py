"""turbtl.verdict: intervals, the paired test, regret, hits, and the comparison with the sweep,
on hand-made tables whose answers are worked out in the comments."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from turbtl import predict as P
from turbtl import verdict as V

# seeds 0..3; layer 2 is layer 1 plus an almost constant 0.02 (paired: clearly worse, although
# the unpaired seed intervals overlap); layer 3 is layer 1 plus noise of mean 0.0025 (not
# distinguishable); layer 4 is far worse.  zero shot 0.9.
L1 = np.array([0.30, 0.31, 0.29, 0.32])
D2 = np.array([0.020, 0.021, 0.019, 0.020])
D3 = np.array([0.05, -0.04, 0.03, -0.03])
LAYERS = {1: L1, 2: L1 + D2, 3: L1 + D3, 4: np.array([0.60, 0.61, 0.59, 0.60])}


def table(layers=LAYERS, zero_shot=0.9, seconds=2.0):
    rows = [dict(target="t", method="tl_layer", layer=L, seed=s, n_train=8, epochs=2, mse=v, nmse=v,
                 cc=1 - v, spec_err=0.1, seconds=seconds)
            for L, vals in layers.items() for s, v in enumerate(vals)]
    rows.append(dict(target="t", method="zero_shot", layer=0, seed=0, n_train=0, epochs=0, mse=zero_shot,
                     nmse=zero_shot, cc=0.1, spec_err=0.1, seconds=0.1))
    return pd.DataFrame(rows)


def prediction(choices: dict, seconds=1.0) -> dict:
    preds = {}
    for name, ch in choices.items():
        sc = {str(L): (1.0 if L == ch else 0.0) for L in LAYERS}
        preds[name] = {"scores": sc, "choice": ch, "seconds": seconds}
    return {"predictors": preds}


def test_interval_is_the_student_t_interval():
    m, sd, lo, hi = V.interval([1.0, 2.0, 3.0])
    assert (m, sd) == (2.0, 1.0)
    assert hi - m == pytest.approx(4.302652729911275 / np.sqrt(3))  # t_{0.975, 2} = 4.3027
    assert V.interval([5.0]) == (5.0, 0.0, 5.0, 5.0)


def test_paired_test_matches_scipy_and_pairing_matters():
    a, b = pd.Series(L1 + D2), pd.Series(L1)
    t = V.paired_test(a, b)
    assert t["p"] == pytest.approx(stats.ttest_rel(L1 + D2, L1).pvalue)
    assert t["p"] < 1e-4 and t["diff"] == pytest.approx(0.02)
    # unpaired, the same numbers are not distinguishable at 5%
    assert stats.ttest_ind(L1 + D2, L1).pvalue > 0.05
    assert V.paired_test(pd.Series(L1 + D3), b)["p"] > 0.5
    # seeds are matched by label, not position
    shuffled = pd.Series((L1 + D2)[::-1], index=[3, 2, 1, 0])
    assert V.paired_test(shuffled, b)["p"] == pytest.approx(t["p"])
    # degenerate cases
    assert V.paired_test(pd.Series([1.0]), pd.Series([0.5]))["p"] is None
    assert V.paired_test(pd.Series([1.0, 2.0]), pd.Series([0.5, 1.5]))["p"] == 0.0
    assert V.paired_test(pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0]))["p"] == 1.0


def test_regret_and_hit():
    assert V.regret(0.305, 0.305, 0.9) == 0.0
    assert V.regret(0.9, 0.305, 0.9) == pytest.approx(1.0)
    assert V.regret(0.6025, 0.305, 0.9) == pytest.approx(0.5)
    assert V.regret(0.4, 0.3, 0.2) is None  # TL gains nothing: no regret defined
    assert V.hit(2, 2, {"p": None}) and not V.hit(1, 2, {"p": None})
    assert V.hit(1, 2, {"p": 0.2}) and not V.hit(1, 2, {"p": 0.01})


def test_compare_regret_hit_cost_on_a_hand_made_table():
    df = table()
    pred = prediction({"best": 1, "close": 3, "paired_worse": 2, "far": 4})
    res = V.compare(pred, df, target="t")
    json.loads(json.dumps(res, allow_nan=False))
    c = res["predictors"]
    best_mean = L1.mean()
    gain = 0.9 - best_mean
    assert res["empirical_best"] == 1 and res["runner_up"] == 3 and res["resolved"] is False
    assert res["sweep_seconds"] == pytest.approx(16 * 2.0)  # tl_layer rows only
    assert c["best"]["regret"] == 0.0 and c["best"]["hit"] is True
    assert c["close"]["regret"] == pytest.approx(D3.mean() / gain) and c["close"]["hit"] is True
    assert c["paired_worse"]["regret"] == pytest.approx(0.02 / gain)
    assert c["paired_worse"]["hit"] is False and c["paired_worse"]["p_value"] < 1e-4
    assert c["far"]["regret"] == pytest.approx((LAYERS[4].mean() - best_mean) / gain)
    assert c["far"]["hit"] is False and c["far"]["choice_rank"] == 4
    assert c["best"]["cost_fraction"] == pytest.approx(1.0 / 32.0)
    # Spearman is the secondary column: one-hot scores give a rank correlation
    assert c["best"]["spearman"] > 0 > c["far"]["spearman"]
    rows = V.summary_rows("t", res)
    assert list(rows[0]) == V.SUMMARY_COLUMNS
    agg = V.aggregate(pd.DataFrame(rows + V.summary_rows("u", V.compare(pred, table(zero_shot=0.2), target="u"))))
    assert list(agg.columns) == V.AGGREGATE_COLUMNS
    far = agg.set_index("predictor").loc["far"]
    # on target u TL gains nothing (zero shot 0.2 < every layer): regret undefined, left out
    assert far["n_targets"] == 2 and far["mean_regret"] == pytest.approx(c["far"]["regret"])
    assert agg.set_index("predictor").loc["close", "hit_rate"] == 1.0


def test_resolved_when_the_runner_up_is_paired_worse():
    layers = {k: v for k, v in LAYERS.items() if k != 3}
    res = V.compare(prediction({"a": 2}), table(layers), target="t")
    assert res["runner_up"] == 2 and res["resolved"] is True


def test_one_seed_gives_no_test():
    layers = {1: [0.3], 2: [0.31], 3: [0.5], 4: [0.6]}
    res = V.compare(prediction({"a": 2, "b": 1}), table(layers), target="t")
    assert res["resolved"] is False
    assert res["predictors"]["a"]["hit"] is False and res["predictors"]["a"]["p_value"] is None
    assert res["predictors"]["b"]["hit"] is True


def test_predictor_names_are_listed_once():
    assert len(set(P.PREDICTORS)) == len(P.PREDICTORS) == 7


def test_aposteriori_verdict_on_a_worked_case():
    from turbtl.verdict import SUMMARY_COLUMNS, aggregate, aposteriori_verdict, summary_rows

    def c(e, stable=True):
        return {"stable": stable, "spec_err": e if stable else None}

    ap = {"closures": {"no_closure": c(0.6), "zero_shot": c(0.2), "tl_layer1": c(0.10), "tl_layer2": c(0.05),
                       "tl_layer3": c(0.08), "tl_layer4": c(None, stable=False)}}
    comp = {"empirical_best": 3, "predictors": {"a": {"choice": 2}, "b": {"choice": 1}, "c": {"choice": 4}}}
    v = aposteriori_verdict(ap, comp)
    assert v["ap_best"] == 2
    assert v["apriori_best_ap_regret"] == pytest.approx((0.08 - 0.05) / (0.2 - 0.05))
    assert v["predictors"]["a"] == {"ap_hit": True, "ap_regret": 0.0}
    assert v["predictors"]["b"]["ap_regret"] == pytest.approx(0.05 / 0.15) and not v["predictors"]["b"]["ap_hit"]
    assert v["predictors"]["c"] == {"ap_hit": False, "ap_regret": None}  # the choice blew up inside the LES
    rows = summary_rows("t", {**comp, "resolved": True, "sweep_seconds": 1.0,
                              "predictors": {k: {**p, "empirical_best": 3, "hit": False, "regret": 0.1, "p_value": None,
                                                 "spearman": None, "seconds": 0.1, "cost_fraction": 0.1}
                                             for k, p in comp["predictors"].items()}}, ap)
    assert [r["ap_best"] for r in rows] == [2, 2, 2] and rows[0]["ap_hit"] is True
    assert list(rows[0]) == SUMMARY_COLUMNS
    table = aggregate(pd.DataFrame(rows, columns=SUMMARY_COLUMNS))
    assert table["ap_hit_rate"].tolist() == [1.0, 0.0, 0.0]


def test_the_tests_are_scipy_stats_bit_for_bit():
    """verdict computes the paired t-test, the t quantile and Spearman's rho with
    scipy.special (scipy.stats's import costs every job 0.5 s): the same numbers as
    scipy.stats.ttest_1samp, t.ppf and spearmanr, bit for bit, ties included."""
    from scipy import special, stats

    from turbtl.verdict import _t_test_p, spearman

    rng = np.random.default_rng(7)
    for i in range(2000):
        n = int(rng.integers(2, 12))
        d = rng.normal(rng.normal(0, 1e-3), 10 ** rng.uniform(-6, 0), n)
        assert _t_test_p(d) == float(stats.ttest_1samp(d, 0.0).pvalue)
        q, df = rng.uniform(0.5, 0.999), int(rng.integers(1, 30))
        assert float(special.stdtrit(df, q)) == float(stats.t.ppf(q, df))
        if n >= 3:
            x = rng.integers(0, 3, n).astype(float) if i % 2 else rng.normal(size=n)
            y = rng.normal(size=n)
            if np.ptp(x) > 0:
                r = stats.spearmanr(x, y)
                assert spearman(x, y) == (float(r.statistic), float(r.pvalue))
