"""Pooling replicate runs (turbtl.replicates) on synthetic results/ trees with known answers."""
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from turbtl import TurbtlError
from turbtl import paths as P
from turbtl.replicates import load_replicate, main, pool, render

SEEDS = 3


def _write_run(root, base_seed, rel, zero_shot, picks, best=None, resolved=True):
    """A finished run's files as the pipeline writes them: ``rel[target][layer]`` is the
    seed-mean TL nMSE over zero shot (each seed +-1% around it), ``picks[target]`` the
    predictor 'probe''s choice."""
    res = root  # the run's folder, results/<run>
    (res / "models").mkdir(parents=True)
    (res / "filtered").mkdir()
    (root / P.BASE_METRICS).write_text(json.dumps({"system": "base", "test_cc": 0.9}))
    rows = []
    for i, name in enumerate(["base", *rel]):
        xr.Dataset(attrs={"seed": base_seed + i, "name": name}).to_netcdf(
            root / P.FILTERED.format(system=name), engine="netcdf4")
    for t, layers in rel.items():
        d = res / "transfer" / t
        d.mkdir(parents=True)
        sweep = [dict(target=t, method="zero_shot", layer=0, seed=0, nmse=zero_shot)]
        for L, r in layers.items():
            for s, f in enumerate(np.linspace(0.99, 1.01, SEEDS)):
                sweep.append(dict(target=t, method="tl_layer", layer=L, seed=s, nmse=r * zero_shot * f))
        pd.DataFrame(sweep).to_csv(d / "sweep.csv", index=False)
        own = best[t] if best else min(layers, key=layers.get)
        (d / "summary.json").write_text(json.dumps({"best_layer": own, "p_value": 0.01 if resolved else 0.4,
                                                     "resolved": resolved}))
        lo = min(layers.values())
        reg = (layers[picks[t]] - lo) / (1 - lo)
        rows.append(dict(target=t, predictor="probe", predicted_layer=picks[t], empirical_best=own,
                         hit=picks[t] == own, regret=reg))
    pd.DataFrame(rows).to_csv(res / "summary_by_target.csv", index=False)
    pd.DataFrame([dict(predictor="probe", mean_regret=np.mean([r["regret"] for r in rows]),
                       max_cost_fraction=0.03)]).to_csv(root / P.SUMMARY_CSV, index=False)
    return root


@pytest.fixture
def three(tmp_path):
    # layer 2 clearly best in every replicate of "kf" (0.50 against 0.70-0.80); on "re" the
    # replicates disagree (layers 1 and 3 trade places by less than the spread)
    runs = [({"kf": {1: 0.70, 2: 0.50, 3: 0.80}, "re": {1: 0.95, 2: 0.99, 3: 0.96}}, 0.2, {"kf": 2, "re": 2}),
            ({"kf": {1: 0.72, 2: 0.52, 3: 0.78}, "re": {1: 0.97, 2: 0.99, 3: 0.94}}, 0.3, {"kf": 2, "re": 3}),
            ({"kf": {1: 0.69, 2: 0.49, 3: 0.81}, "re": {1: 0.93, 2: 0.98, 3: 0.96}}, 0.25, {"kf": 1, "re": 1})]
    return [_write_run(tmp_path / "results" / f"r{i}", 1 + 1000 * i, rel, zs, picks)
            for i, (rel, zs, picks) in enumerate(runs)]


def _main(three, *args):
    """``python -m turbtl.replicates`` on the runs of ``three`` (by name, in their workdir)."""
    work = three[0].parents[1]
    return main([*(r.name for r in three), "--workdir", str(work), "--pages-dir", str(work / "pages"), *args])


def test_load_reads_relative_errors_and_seeds(three):
    r = load_replicate(three[1])
    assert r["base"] == "base" and r["seed"] == 1001 and r["base_test_cc"] == 0.9
    kf = r["targets"]["kf"]
    assert kf["zero_shot"] == pytest.approx(0.3)
    assert kf["rel"] == pytest.approx({1: 0.72, 2: 0.52, 3: 0.78})
    assert kf["best"] == 2 and kf["seed"] == 1002
    assert kf["predictors"]["probe"] == {"choice": 2, "hit": True, "regret": 0.0}


def test_pool_finds_the_flow_property_and_the_disagreement(three):
    out = pool([load_replicate(d) for d in three])
    kf, re_ = out["targets"]["kf"], out["targets"]["re"]
    assert kf["best"] == 2 and kf["runner_up"] == 1 and kf["agree"] and kf["replicate_best"] == [2, 2, 2]
    assert kf["layers"][2]["mean"] == pytest.approx(np.mean([0.50, 0.52, 0.49]))
    assert kf["layers"][2]["times_best"] == 3
    # paired over replicates: layer 1 - layer 2 = 0.20 each time: resolved
    assert kf["resolved"] and kf["p"] < 1e-3
    lo, hi = kf["layers"][2]["lo"], kf["layers"][2]["hi"]
    assert lo < kf["layers"][2]["mean"] < hi
    assert not re_["agree"] and re_["replicate_best"] == [1, 3, 1]
    assert re_["best"] == 1 and re_["runner_up"] == 3 and not re_["resolved"]
    probe = out["predictors"]["probe"]
    assert probe["n"] == 6 and probe["hits"] == 4  # kf in replicates 0 and 1, re in 1 and 2
    assert probe["targets"]["re"]["choices"] == [2, 3, 1]
    regrets = [0.0, 0.0, (0.69 - 0.49) / 0.51, (0.99 - 0.95) / 0.05, 0.0, 0.0]
    assert probe["mean_regret"] == pytest.approx(np.mean(regrets))
    # each replicate's own mean regret over its targets, and the report's goal (<= 0.10) in it
    assert probe["replicate_mean_regret"] == pytest.approx([0.4, 0.0, 0.1 / 0.51])
    assert probe["replicate_goal"] == [False, True, False]
    text = render(out)
    assert "| kf | 2*, 2*, 2* | yes | 2 |" in text and "| re | 1*, 3*, 1* | no | 1 |" in text
    assert "| probe | 4/6 |" in text and "| 0.40, 0.00+, 0.20 | 2, 2, 1 | 2, 3, 1 |" in text


def test_predictors_on_the_pairs_where_tl_gains(three):
    reps = [load_replicate(d) for d in three]
    assert [r["targets"]["re"]["gain"] for r in reps] == pytest.approx([0.05, 0.06, 0.07])
    # at 20% only kf counts (gain 0.5 in every replicate): the probe picks 2, 2, 1 there
    g = pool(reps, gain_threshold=0.2)["predictors"]["probe"]["gain"]
    assert g["n"] == 3 and g["hits"] == 2
    assert g["mean_regret"] == pytest.approx(np.mean([0.0, 0.0, (0.69 - 0.49) / 0.51]))
    # at 6.5% re's replicate 2 joins (gain 0.07; its pick, layer 1, is its best)
    out = pool(reps, gain_threshold=0.065)
    g = out["predictors"]["probe"]["gain"]
    assert g["n"] == 4 and g["hits"] == 3
    assert g["mean_regret"] == pytest.approx(np.mean([0.0, 0.0, (0.69 - 0.49) / 0.51, 0.0]))
    assert "| hits, gain >= 6% |" in render(out) and "| 3/4 | 0.098 [" in render(out)


def test_same_replicate_twice_and_a_single_one_are_refused(three):
    with pytest.raises(TurbtlError, match="same replicate"):
        pool([load_replicate(three[0]), load_replicate(three[0])])
    with pytest.raises(TurbtlError, match="at least 2 replicates"):
        pool([load_replicate(three[0])])


def test_a_target_missing_from_a_replicate_is_left_out(tmp_path, three):
    extra = _write_run(tmp_path / "x", 5001, {"kf": {1: 0.7, 2: 0.5}, "beta": {1: 0.6, 2: 0.9}}, 0.2,
                       {"kf": 2, "beta": 1})
    out = pool([load_replicate(d) for d in [*three, extra]])
    assert list(out["targets"]) == ["kf"] and out["left_out"] == ["beta", "re"]
    assert list(load_replicate(extra)["targets"]) == ["kf", "beta"]  # the run's order, not the alphabet
    assert set(out["targets"]["kf"]["layers"]) == {1, 2}  # the layers every replicate swept


def test_a_replicates_targets_are_those_of_its_last_config(tmp_path):
    # the predictor study ran after the default run in the same directory: the default's
    # sweep of "old" is still in results/transfer but not in the study's summary_by_target.csv
    study = _write_run(tmp_path / "s", 1, {"kf": {1: 0.7, 2: 0.5}, "old": {1: 0.6, 2: 0.9}}, 0.2,
                       {"kf": 2, "old": 1})
    by = study / P.SUMMARY_BY_TARGET
    pd.read_csv(by).query("target != 'old'").to_csv(by, index=False)
    assert list(load_replicate(study)["targets"]) == ["kf"]
    by.unlink()  # without the run's summary every sweep counts
    assert list(load_replicate(study)["targets"]) == ["kf", "old"]


def test_main_writes_the_results_page(three, tmp_path, capsys):
    from turbtl.results_pages import read_meta

    _main(three, "--page", "reps", "--json", str(tmp_path / "p.json"))
    text = (tmp_path / "pages" / "reps.md").read_text()
    assert "| kf | 2*, 2*, 2* | yes | 2 |" in text and "| 0 | `r0` | 1 |" in text
    assert read_meta(tmp_path / "pages" / "reps.md")["command"] == "python -m turbtl.replicates r0 r1 r2 --page reps"
    assert "[reps](reps.md)" in (tmp_path / "pages" / "index.md").read_text()
    assert json.loads((tmp_path / "p.json").read_text())["targets"]["kf"]["best"] == 2
    with pytest.raises(SystemExit, match="no finished run"):
        main(["nowhere", "r0", "--workdir", str(tmp_path)])


def _write_sizes(root, t, zero_shot, rel_by_n, picks_by_n, main_n=8, baselines_by_n=None):
    """A replicate's size study of target ``t`` as ``size_summary`` writes it (via
    :func:`turbtl.sizes.summarise_sizes` on layer runs with ``rel_by_n[n][layer]`` as the
    seed-mean TL nMSE over zero shot, each seed +-1% around it), with a prediction per size
    whose one predictor 'probe' picks ``picks_by_n[n]``, and with ``baselines_by_n[n][method]``
    the small-set baselines' relative errors."""
    from turbtl.io import write_json
    from turbtl.sizes import summarise_sizes
    from turbtl.transfer import CSV_COLUMNS

    scratch = root / "scratch" / t
    scratch.mkdir(parents=True)
    csvs, preds, bcsvs = {}, {}, {}
    for n, layers in rel_by_n.items():
        csvs[n] = []
        for L, r in layers.items():
            rows = [{"target": t, "method": "tl_layer", "layer": L, "seed": s, "n_train": n, "epochs": 3,
                     "mse": r * zero_shot * f, "nmse": r * zero_shot * f, "cc": 0.5, "spec_err": 0.1, "seconds": 1.0}
                    for s, f in enumerate(np.linspace(0.99, 1.01, SEEDS))]
            csvs[n].append(scratch / f"n{n}_layer{L}.csv")
            pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(csvs[n][-1], index=False)
        bls = (baselines_by_n or {}).get(n, {})
        for m, r in bls.items():
            rows = [{"target": t, "method": m, "layer": 0, "seed": s, "n_train": n, "epochs": 3,
                     "mse": r * zero_shot * f, "nmse": r * zero_shot * f, "cc": 0.5, "spec_err": 0.1, "seconds": 1.0}
                    for s, f in enumerate(np.linspace(0.99, 1.01, SEEDS))]
            pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(scratch / f"n{n}_{m}.csv", index=False)
        bcsvs[n] = [scratch / f"n{n}_{m}.csv" for m in bls]
        scores = {L: (2.0 if L == picks_by_n[n] else 1.0 / L) for L in layers}
        preds[n] = scratch / f"pred{n}.json"
        write_json({"predictors": {"probe": {"scores": scores, "choice": picks_by_n[n], "seconds": 0.1}},
                    "details": {"n_target_samples": n}}, preds[n])
    zs = scratch / "zs.csv"
    pd.DataFrame([{"target": t, "method": "zero_shot", "layer": 0, "seed": 0, "n_train": 0, "epochs": 0,
                   "mse": zero_shot, "nmse": zero_shot, "cc": 0.5, "spec_err": 0.1, "seconds": 0.0}],
                 columns=CSV_COLUMNS).to_csv(zs, index=False)
    out = root / P.SIZES_SUMMARY.format(target=t)
    summarise_sizes(csvs, {n: n / 16 for n in rel_by_n}, main_n, zs, t, root / P.SIZES_CSV.format(target=t), out,
                    predictions=preds, out_predictors_csv=root / P.SIZE_PREDICTORS_CSV.format(target=t),
                    baselines=bcsvs if baselines_by_n else None)


def test_the_size_study_pools_over_replicates(three, tmp_path, capsys):
    """Per (target, size): the pooled best over replicates and the main size's pooled best
    judged at the other size; per predictor the hits and regrets at each size, each against
    its replicate's sweep at that size; a target without a size study in every replicate is
    left out of the size tables; ``--sizes-only`` writes them alone."""
    kf8 = [{1: 0.70, 2: 0.50, 3: 0.80}, {1: 0.72, 2: 0.52, 3: 0.78}, {1: 0.69, 2: 0.49, 3: 0.81}]  # as `three`
    kf2 = [{1: 0.80, 2: 0.90, 3: 0.95}, {1: 0.82, 2: 0.91, 3: 0.93}, {1: 0.79, 2: 0.88, 3: 0.96}]  # 2 snapshots
    # fine-tuning everything: worse than layer 2 at 8 snapshots, better than layer 1 by 0.02 at 2
    bl = [{8: {"finetune_all": 0.60, "scratch": 1.5}, 2: {"finetune_all": kf2[i][1] - 0.02, "scratch": 2.0 + i}}
          for i in range(3)]
    for i, (root, zs) in enumerate(zip(three, [0.2, 0.3, 0.25])):
        _write_sizes(root, "kf", zs, {8: kf8[i], 2: kf2[i]}, {8: 2, 2: [1, 2, 1][i]}, baselines_by_n=bl[i])
    _write_sizes(three[0], "re", 0.2, {8: {1: 0.95, 2: 0.99, 3: 0.96}, 2: {1: 0.9, 2: 0.95, 3: 0.97}}, {8: 2, 2: 1})
    reps = [load_replicate(d) for d in three]
    assert reps[1]["sizes"]["kf"]["sizes"][2]["rel"] == pytest.approx(kf2[1])
    out = pool(reps)
    s = out["sizes"]
    assert s["sizes"] == [2, 8] and s["main_n"] == 8 and s["left_out"] == ["re"] and list(s["cells"]) == ["kf"]
    c8, c2 = s["cells"]["kf"][8], s["cells"]["kf"][2]
    # at the main size the pooled cell is the main sweep's pooled verdict (the same runs)
    assert c8["best"] == out["targets"]["kf"]["best"] == 2
    assert {L: x["mean"] for L, x in c8["layers"].items()} == pytest.approx(
        {L: x["mean"] for L, x in out["targets"]["kf"]["layers"].items()})
    # at 2 snapshots layer 1 is best in every replicate; the main size's layer 2 misses there
    assert c2["best"] == 1 and c2["agree"] and c2["resolved"] and c2["replicate_best"] == [1, 1, 1]
    m1, m2 = np.mean([0.80, 0.82, 0.79]), np.mean([0.90, 0.91, 0.88])
    assert c2["gain"] == pytest.approx(1 - m1)
    assert c2["main_best"]["layer"] == 2 and c2["main_best"]["hit"] is False
    assert c2["main_best"]["regret"] == pytest.approx((m2 - m1) / (1 - m1))
    assert c8["main_best"]["regret"] == 0.0 and c8["main_best"]["hit"] is True
    # the baselines over replicates, against the pooled best, paired by replicate
    ft2, ft8 = c2["baselines"]["finetune_all"], c8["baselines"]["finetune_all"]
    assert ft2["mean"] == pytest.approx(m1 - 0.02) and ft2["best_minus_baseline"] == pytest.approx(0.02)
    assert ft2["baseline_better"] is True and ft2["tl_better"] is False
    assert ft8["tl_better"] is True and c2["baselines"]["scratch"]["per_replicate"] == pytest.approx([2.0, 3.0, 4.0])
    probe = s["predictors"]["probe"]
    assert probe["per_size"][8]["hits"] == 3 and probe["per_size"][2]["hits"] == 2 and probe["n"] == 6
    assert probe["picks"]["kf"][2] == [1, 2, 1] and probe["hit_picks"]["kf"][2] == 2
    assert probe["per_size"][2]["mean_regret"] == pytest.approx(np.mean([0.0, (0.91 - 0.82) / (1 - 0.82), 0.0]))
    # with the gain threshold at 30% only the main size counts (TL gains ~50% there, ~20% at 2 snapshots)
    assert pool(reps, gain_threshold=0.3)["sizes"]["predictors"]["probe"]["gain"]["n"] == 3
    text = render(out)
    assert "| kf | 2 (0.125) | 1*, 1*, 1* | yes | 1 |" in text and "| 2: 0.47 (no) |" in text
    assert "| kf: 2 | 1, 1, 1 | 1, 2, 1 (2/3) |" in text and "| probe | 5/6 |" in text
    assert "| kf | 2 | 1: 0.803 | 0.783 [" in text and "| 0.0200 (< 0.001) finetune_all better |" in text
    _main(three, "--sizes-only", "--page", "rs")
    block = (tmp_path / "pages" / "rs.md").read_text()
    assert "Small-set sizes over replicates" in block and "Per target: each replicate" not in block
    assert "made its size study" in block and "--sizes-only" in block
    assert "left out of the size tables: ['re']" in capsys.readouterr().err


def test_sizes_only_without_a_size_study_is_refused(three):
    assert pool([load_replicate(d) for d in three])["sizes"] == {}
    assert "Small-set sizes" not in render(pool([load_replicate(d) for d in three]))
    with pytest.raises(SystemExit, match="no target has a current size study"):
        _main(three, "--sizes-only")
