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
    res = root / P.RESULTS
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
    return [_write_run(tmp_path / f"r{i}", 1 + 1000 * i, rel, zs, picks) for i, (rel, zs, picks) in enumerate(runs)]


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


def test_main_writes_the_readme_block(three, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- report:reps:start -->\nSTALE\n<!-- report:reps:end -->\nafter\n")
    main([*map(str, three), "--name", "reps", "--readme", str(readme), "--json", str(tmp_path / "p.json")])
    text = readme.read_text()
    assert "STALE" not in text and text.startswith("before") and text.rstrip().endswith("after")
    assert "| kf | 2*, 2*, 2* | yes | 2 |" in text
    assert json.loads((tmp_path / "p.json").read_text())["targets"]["kf"]["best"] == 2
    with pytest.raises(SystemExit, match="no finished run"):
        main([str(tmp_path / "nowhere"), str(three[0])])
