"""Workflow tests: `snakemake` as a subprocess on the tiny config in a temporary directory.

The whole DAG runs once per session (tiny sizes: a few minutes on 2 cores); the tests then
check the files it made, that one more target needs no code change, that the prediction is
a true forecast (no sweep output upstream of it), and that bad configs fail before any job.
"""
import copy
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from turbtl import paths as P
from turbtl.io import read_json

from helpers_workflow import REPO, resolved, snakemake, tiny_config, write_config

#: the tiny run's paths, relative to the directory snakemake runs in (results/tiny/...)
RP = P.rooted("results/tiny")

pytestmark = pytest.mark.slow


def test_every_stage_writes_its_files(tiny_run):
    work, _ = tiny_run
    cfg = resolved()
    for s in [cfg["base"], *cfg["targets"]]:
        dns = xr.open_dataset(work / RP.DNS.format(system=s), engine="netcdf4")
        sc = cfg["systems"][s]
        assert dns["omega"].dims == ("member", "time", "y", "x")
        assert dns["omega"].shape == (sc["members"], sc["snapshots_per_member"], sc["n_dns"], sc["n_dns"])
        assert float(dns.attrs["Re"]) == sc["Re"]
        assert np.isfinite(dns["omega"].values).all()
        f = xr.open_dataset(work / RP.FILTERED.format(system=s), engine="netcdf4")
        for v in ("psi", "omega", "pi"):
            assert f[v].shape == (sc["members"], sc["snapshots_per_member"], sc["n_les"], sc["n_les"])
            assert "units" in f[v].attrs and "long_name" in f[v].attrs
        split = [str(x) for x in f["split"].values]
        assert split.count("test") == sc["test_members"] and split.count("val") == sc["val_members"]
        assert (work / RP.FILTERED_SPECTRA.format(system=s)).exists()
    assert (work / RP.BASE_MODEL).exists()
    # the k-means kernel clusters of the base network, and how a re-trained layer's kernels fall in them
    with xr.open_dataset(work / RP.BASE_KERNELS, engine="netcdf4") as bk:
        per_layer = bk["label_count"].sum("label_code").values
        np.testing.assert_array_equal(bk["cluster_count"].sum("cluster").values, per_layer)
        assert int(bk["cluster_label_count"].sum()) == per_layer.sum() and 0 < bk.attrs["cluster_purity"] <= 1
    for t in cfg["targets"]:
        with xr.open_dataset(work / RP.TL_KERNELS.format(target=t), engine="netcdf4") as tk:
            np.testing.assert_array_equal(tk["cluster_count_after"].sum("cluster").values,
                                          per_layer[tk["tl_layer"].values - 1])
    metrics = read_json(work / RP.BASE_METRICS)
    for key in ("test_nmse", "test_cc", "test_spec_err", "val_nmse"):
        assert np.isfinite(metrics[key]), key
    # the a-posteriori LES: every closure of every target, its scores and the summary's columns
    for t in cfg["targets"]:
        ap = read_json(work / RP.APOSTERIORI.format(target=t))
        layers = [f"tl_layer{L}" for L in range(1, cfg["network"]["depth"] + 1)]
        assert list(ap["closures"]) == ["no_closure", "smagorinsky", "dynamic_smagorinsky", "dynamic_leith", "zero_shot",
                                        *layers, "finetune_all", "full_target"]
        # on real turbulence the Germano procedure finds a positive coefficient (with L's sign
        # flipped it clips to zero at every step)
        for name in ("dynamic_smagorinsky", "dynamic_leith"):
            assert 0.01 < ap["les"]["dynamic"][name]["constant"] < 1.0, (t, name, ap["les"]["dynamic"][name])
        assert ap["closures"]["no_closure"]["stable"] and np.isfinite(ap["closures"]["no_closure"]["spec_err"])
        assert (work / RP.FIG_APOSTERIORI.format(target=t)).stat().st_size > 10_000
    by_target = pd.read_csv(work / RP.SUMMARY_BY_TARGET)
    assert by_target["ap_best"].between(1, cfg["network"]["depth"]).all()
    # no half-written temporaries left anywhere
    assert not list((work / "results").rglob(".*.tmp-*"))


def test_sweep_tables(tiny_run):
    work, _ = tiny_run
    cfg = resolved()
    depth, seeds = cfg["network"]["depth"], cfg["transfer"]["seeds"]
    for t in cfg["targets"]:
        df = pd.read_csv(work / RP.SWEEP_CSV.format(target=t))
        tl = df[df.method == "tl_layer"]
        assert sorted(tl.layer.unique()) == list(range(1, depth + 1))
        assert (tl.groupby("layer").seed.nunique() == seeds).all()
        assert {"zero_shot", "scratch", "finetune_all", "full_target"} <= set(df.method)
        assert np.isfinite(df[["mse", "nmse", "cc", "spec_err"]].to_numpy()).all()
        summ = read_json(work / RP.SWEEP_SUMMARY.format(target=t))
        means = {int(k): v["mean"] for k, v in summ["layers"].items()}
        assert summ["best_layer"] == min(means, key=means.get)
        html = (work / RP.SWEEP_HTML.format(target=t)).read_text()  # the report's table: every layer, the best marked
        assert f"<tr class='mark'><td>layer {summ['best_layer']}</td>" in html and html.count("<td>layer ") == depth


def test_figures_are_readable_images(tiny_run):
    import matplotlib.image as mpimg

    work, _ = tiny_run
    pngs = sorted((work / RP.FIG_DIR).rglob("*.png"))
    cfg = resolved()
    assert len(pngs) == 5 * len(cfg["targets"]) + 1
    for png in pngs:
        assert 5_000 < png.stat().st_size < 5_000_000, png
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 300, (png, img.shape)
        assert img[..., :3].std() > 0.01, f"{png} looks blank"
    from turbtl.predict import PREDICTORS
    from turbtl.verdict import AGGREGATE_COLUMNS, SUMMARY_COLUMNS

    by_target = pd.read_csv(work / RP.SUMMARY_BY_TARGET)
    assert list(by_target.columns) == SUMMARY_COLUMNS
    assert set(by_target.target) == set(cfg["targets"]) and set(by_target.predictor) == set(PREDICTORS)
    summary = pd.read_csv(work / RP.SUMMARY_CSV)
    assert list(summary.columns) == AGGREGATE_COLUMNS and list(summary.predictor) == list(PREDICTORS)
    assert (summary.n_targets == len(cfg["targets"])).all()
    assert ((summary.hit_rate >= 0) & (summary.hit_rate <= 1)).all()


def test_report_writes_the_results_page_from_results(tiny_run, tmp_path):
    """`python -m turbtl.report RUN --page` writes the run's tables (numbers never by hand) to
    results/RUN/report.md and a results page with its provenance, listed in the index; `--readme`
    the README's key figure; a run that does not exist is one line, not a traceback."""
    import subprocess
    import sys

    from turbtl.predict import PREDICTORS
    from turbtl.results_pages import read_meta

    work, _ = tiny_run
    pages = tmp_path / "pages"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- report:figure:start -->\nold figure\n<!-- report:figure:end -->\nrest\n")

    def report(*args):
        return subprocess.run([sys.executable, "-m", "turbtl.report", *args, "--workdir", str(work),
                               "--pages-dir", str(pages)], capture_output=True, text=True)

    r = report("tiny", "--page", "--readme", str(readme))
    assert r.returncode == 0, r.stderr
    text = (pages / "tiny.md").read_text()
    assert (work / RP.ROOT / "report.md").read_text().strip() in text
    meta = read_meta(pages / "tiny.md")
    assert meta["name"] == "tiny" and meta["command"] == "python -m turbtl.report tiny --page tiny"
    assert "<!-- turbtl-status:start -->\n_Numerics: " in text or "Not the current numerics" in text
    assert "[tiny](tiny.md)" in (pages / "index.md").read_text()
    agg = pd.read_csv(work / RP.SUMMARY_CSV)
    for t in resolved()["targets"]:
        assert f"| {t} |" in text
    for p in PREDICTORS:
        assert f"| {p} |" in text
    row = agg.iloc[0]  # the headline numbers are the ones in summary.csv
    assert f"| {row.predictor} | {row.hit_rate:.0%}" in text
    fig = readme.read_text()
    assert "old figure" not in fig and fig.startswith("intro") and fig.rstrip().endswith("rest")
    assert all(t in fig for t in resolved()["targets"]) and "best " in fig
    bad = report("nosuch")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "results/nosuch" in bad.stderr
    # the LES tables alone, each start's best layer beside the pooled one
    r = report("tiny", "--page", "tiny-les", "--aposteriori-only")
    assert r.returncode == 0, r.stderr
    text = (pages / "tiny-les.md").read_text()
    assert "**A posteriori**" in text and "(each start's)" in text and "Base network" not in text
    from turbtl.aposteriori import best_layer_per_start, per_start_errors

    t0 = resolved()["targets"][0]
    each = best_layer_per_start(per_start_errors(work / RP.LES_STATS.format(target=t0)))
    assert len(each) == resolved()["les"]["starts"]
    assert f"({', '.join(str(b) for b in each)})" in text


def test_the_snakemake_report_builds_with_every_figure_and_table(tiny_run, tmp_path):
    """`snakemake --report` on the tiny run: one HTML file with the workflow description, every
    figure and table of the run, and captions that docutils renders without an error."""
    work, cfg = tiny_run
    html = tmp_path / "report.html"
    r = snakemake(work, cfg, "--report", str(html))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERROR/" not in r.stdout + r.stderr and "WARNING/" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    text = html.read_text()
    assert "system-message" not in text  # docutils' rendering of a caption's error
    assert "whether that layer can be predicted before re-training" in text  # workflow/report/workflow.rst
    items = sorted(str(p.relative_to(work)) for p in (work / RP.ROOT).rglob("*")
                   if p.suffix in (".png", ".html") and "report" not in p.name)
    assert len(items) == 6 * len(resolved()["targets"]) + 2, items
    for item in items:
        assert item in text, item


def test_one_more_target_needs_no_code_change(tiny_run, tmp_path):
    work, _ = tiny_run
    copy_dir = tmp_path / "more"
    shutil.copytree(work, copy_dir, symlinks=True)
    cfg = tiny_config()
    new = copy.deepcopy(cfg["systems"]["high_kf"])
    new.update(beta=5.0, kf=4, seed=9)
    cfg["systems"]["betaplane"] = new
    cfg["targets"].append("betaplane")
    cf = write_config(cfg, copy_dir / "config.more.yaml")
    r = snakemake(copy_dir, cf, "--cores", "2")
    assert r.returncode == 0, r.stderr[-6000:]
    for p in (RP.DNS, RP.FILTERED):
        assert (copy_dir / p.format(system="betaplane")).exists()
    assert (copy_dir / RP.FIG_BEST_LAYER.format(target="betaplane")).exists()
    # the other flows' DNS was not recomputed
    assert "rule dns:" not in r.stdout + r.stderr or "betaplane" in (r.stdout + r.stderr)
    log = r.stdout + r.stderr
    assert "wildcards: system=base" not in log


def test_prediction_is_a_forecast(tmp_path):
    """`predict` (and `predict_size`, the size study's) has no transfer output upstream of it in the DAG."""
    c = tiny_config()
    c["transfer"]["fractions"] = [0.25]  # a size of 2 beside the main 4
    cfg = write_config(c, tmp_path / "c.yaml")
    r = snakemake(tmp_path, cfg, "-n", "--forceall", RP.PREDICTION.format(target="high_re"),
                  RP.SIZE_PREDICTION.format(target="high_re", n=2))
    assert r.returncode == 0, r.stderr[-4000:]
    out = r.stdout + r.stderr
    assert "rule predict:" in out and "rule predict_size:" in out
    for rule in ("transfer_layer", "transfer_baseline", "sweep_summary", "size_summary"):  # transfer_layer_size too
        assert rule not in out, f"{rule} is upstream of predict"


def test_predict_never_reads_val_or_test_members(tiny_run, tmp_path):
    """The predictors (the probe included) read the base model, the base data and the
    target's small set only: with every val/test snapshot of the target replaced by NaN,
    and the target's whole-flow spectra file (which sums over every member) too, a forced
    re-run of `predict` gives the same scores.  The data weights' spectra (turbtl.predict.
    data_spectra) are the filter file's definition: over all members they equal its P_*."""
    from turbtl.data import load_xy
    from turbtl.io import write_netcdf
    from turbtl.predict import SPECTRA_FIELDS, data_spectra

    work, cfg = tiny_run
    with xr.open_dataset(work / RP.FILTERED_SPECTRA.format(system="high_re"), engine="netcdf4") as sp:
        mine = data_spectra(*load_xy(work / RP.FILTERED.format(system="high_re")))
        for v in SPECTRA_FIELDS:
            np.testing.assert_allclose(mine[v].values, sp[v].values, rtol=1e-5, atol=1e-12 * float(sp[v].max()))
    copy_dir = tmp_path / "nan"
    shutil.copytree(work, copy_dir, symlinks=True)
    f = copy_dir / RP.FILTERED.format(system="high_re")
    with xr.open_dataset(f, engine="netcdf4") as ds:
        ds = ds.load()
    held = np.isin(ds["split"].values.astype(str), ["val", "test"])
    assert held.any()
    for v in ("psi", "omega", "pi"):
        ds[v].values[held] = np.nan
    write_netcdf(ds, f)
    fs = copy_dir / RP.FILTERED_SPECTRA.format(system="high_re")
    with xr.open_dataset(fs, engine="netcdf4") as sp:
        sp = sp.load()
    for v in sp.data_vars:
        sp[v].values[...] = np.nan
    write_netcdf(sp, fs)
    pred = RP.PREDICTION.format(target="high_re")
    # `--forcerun=predict` (with "="): the option takes several values, the target must not be one
    r = snakemake(copy_dir, cfg, "--forcerun=predict", "--cores", "1", pred)
    assert r.returncode == 0, r.stderr[-6000:]
    log = r.stdout + r.stderr
    assert "rule predict" in log and "rule transfer_layer" not in log and "rule compare" not in log
    new, old = read_json(copy_dir / pred), read_json(work / pred)
    assert list(new["predictors"]) == list(old["predictors"])
    for name, p in old["predictors"].items():
        assert new["predictors"][name]["choice"] == p["choice"], name
        for L, v in p["scores"].items():
            assert new["predictors"][name]["scores"][L] == pytest.approx(v, rel=1e-6, abs=1e-12), (name, L)


@pytest.mark.parametrize("section,key,value,rerun,kept", [
    ("transfer", "alpha", 0.01, ["sweep_summary", "compare"], ["transfer_layer", "transfer_baseline", "predict", "dns"]),
    ("systems.base", "test_members", 2, ["filter", "train_base"], ["dns"]),
])
def test_a_key_a_job_does_not_read_leaves_it_complete(tiny_run, tmp_path, section, key, value, rerun, kept):
    """Jobs get only the config keys they read (params per key), so a change reruns exactly
    the jobs that read the key and what depends on their outputs."""
    work, _ = tiny_run
    cfg = tiny_config()
    node = cfg
    for part in section.split("."):
        node = node[part]
    node[key] = value
    cf = write_config(cfg, tmp_path / "changed.yaml")
    r = snakemake(work, cf, "-n")
    assert r.returncode == 0, r.stderr[-4000:]
    out = r.stdout + r.stderr
    for rule in rerun:
        assert f"rule {rule}:" in out, (rule, out[-3000:])
    for rule in kept:
        assert f"rule {rule}:" not in out, (rule, out[-3000:])


def test_a_replicate_runs_in_its_own_folder_from_shifted_seeds(tiny_run, tmp_path):
    """`--config replicate=1` plans every job anew under results/tiny-rep1 (nothing of the
    replicate-0 run reruns or is overwritten) and its DNS starts from the shifted seed."""
    work, cfg = tiny_run
    rep = P.rooted("results/tiny-rep1")
    r = snakemake(work, cfg, "-n", "--config", "replicate=1")
    assert r.returncode == 0, r.stderr[-4000:]
    outputs = [p for line in re.findall(r"^\s+output: (.*)$", r.stdout, re.M) for p in line.split(", ")]
    assert outputs and all(p.startswith(rep.ROOT + "/") for p in outputs), outputs[:5]
    forced = snakemake(work, cfg, "-n", "--forceall").stdout  # replicate 0's jobs, all of them
    assert len(re.findall(r"^\s+output: ", r.stdout, re.M)) == len(re.findall(r"^\s+output: ", forced, re.M))
    target = rep.DNS.format(system="base")
    before = (work / RP.DNS.format(system="base")).stat().st_mtime
    r = snakemake(work, cfg, "--cores", "1", target, "--config", "replicate=1")
    assert r.returncode == 0, r.stderr[-4000:]
    assert (work / RP.DNS.format(system="base")).stat().st_mtime == before
    with xr.open_dataset(work / target, engine="netcdf4") as a, \
            xr.open_dataset(work / RP.DNS.format(system="base"), engine="netcdf4") as b:
        assert int(a.attrs["seed"]) == int(b.attrs["seed"]) + 1000
        assert not np.allclose(a["omega"].values, b["omega"].values)
    shutil.rmtree(work / rep.ROOT)


def test_pairs_of_layers_add_only_their_jobs(tiny_run, tmp_path):
    """transfer.pairs: true adds the pair jobs and their summary (every pair of the tiny
    network's 4 layers, per target), reruns nothing that exists, and writes the pair table,
    verdict and figure."""
    work, _ = tiny_run
    copy_dir = tmp_path / "pairs"
    shutil.copytree(work, copy_dir, symlinks=True)
    cfg = tiny_config()
    cfg["transfer"]["pairs"] = True
    cf = write_config(cfg, copy_dir / "config.pairs.yaml")
    dry = snakemake(copy_dir, cf, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    out = dry.stdout + dry.stderr
    import re

    planned = re.findall(r"^(?:local)?rule (\w+):", out, re.M)
    assert set(planned) == {"transfer_pair", "pair_summary", "all"}, sorted(set(planned))  # nothing else reruns
    assert planned.count("transfer_pair") == 6 * len(cfg["targets"]) and planned.count("pair_summary") == 2
    t = "high_re"
    r = snakemake(copy_dir, cf, "--cores", "2", RP.PAIRS_SUMMARY.format(target=t), RP.FIG_PAIRS.format(target=t))
    assert r.returncode == 0, r.stderr[-6000:]
    s = read_json(copy_dir / RP.PAIRS_SUMMARY.format(target=t))
    assert s["n_pairs"] == 6 and 1 <= s["best_pair"][0] < s["best_pair"][1] <= 4 and 1 <= s["best_single"] <= 4
    table = pd.read_csv(copy_dir / RP.PAIRS_CSV.format(target=t))
    assert len(table) == 6 + 4 and table["mean"].notna().all()
    assert (copy_dir / RP.FIG_PAIRS.format(target=t)).stat().st_size > 10_000
    from turbtl.report import build

    pairs_part = build(copy_dir / RP.ROOT).split("**Pairs of layers**")[1].split("**A posteriori**")[0]
    row = f"| {t} | {s['best_single']}: "
    assert row in pairs_part and "high_kf" not in pairs_part  # the report's pairs table: the targets that have one


def test_size_study_adds_only_its_jobs_and_repeats_the_sweep_at_each_size(tiny_run, tmp_path):
    """transfer.fractions adds one job per (size, layer), one per (size, small-set baseline), one
    prediction per size and a summary per target, reruns nothing that exists, and a size job is
    the sweep's own re-training at that size: asked for the main size, a layer job and a baseline
    job give the sweep's rows (all but the wall time); the summary scores the predictors at the
    main size exactly as comparison.json does."""
    work, _ = tiny_run
    copy_dir = tmp_path / "sizes"
    shutil.copytree(work, copy_dir, symlinks=True)
    cfg = tiny_config()
    cfg["transfer"]["fractions"] = [0.25]  # 2 snapshots; the main fraction 0.5 gives 4 (8 base training snapshots)
    cf = write_config(cfg, copy_dir / "config.sizes.yaml")
    dry = snakemake(copy_dir, cf, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    import re

    planned = re.findall(r"^(?:local)?rule (\w+):", dry.stdout + dry.stderr, re.M)
    assert set(planned) == {"transfer_layer_size", "transfer_baseline_size", "predict_size", "size_summary", "all"}, \
        sorted(set(planned))
    assert planned.count("transfer_layer_size") == 4 * len(cfg["targets"]) and planned.count("size_summary") == 2
    assert planned.count("transfer_baseline_size") == 2 * len(cfg["targets"])  # scratch and finetune_all at size 2
    assert planned.count("predict_size") == len(cfg["targets"])  # one extra size; the main size's is the predict job
    t = "high_re"
    same = RP.TL_SIZE_LAYER_CSV.format(target=t, n=4, layer=2)  # the main size, through the size rules
    same_ft = RP.TL_SIZE_BASELINE_CSV.format(target=t, n=4, method="finetune_all")
    r = snakemake(copy_dir, cf, "--cores", "2", RP.SIZES_SUMMARY.format(target=t), RP.FIG_SIZES.format(target=t), same,
                  same_ft)
    assert r.returncode == 0, r.stderr[-6000:]
    a = pd.read_csv(copy_dir / same).drop(columns="seconds")
    b = pd.read_csv(copy_dir / RP.TL_LAYER_CSV.format(target=t, layer=2)).drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    a = pd.read_csv(copy_dir / same_ft).drop(columns="seconds")
    b = pd.read_csv(copy_dir / RP.TL_BASELINE_CSV.format(target=t, method="finetune_all")).drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    assert not (copy_dir / RP.TL_SIZE_BASELINE_WEIGHTS.format(target=t, n=2, method="scratch")).exists()  # temporary
    s = read_json(copy_dir / RP.SIZES_SUMMARY.format(target=t))
    assert [z["n_small"] for z in s["sizes"]] == [2, 4] and [z["main"] for z in s["sizes"]] == [False, True]
    sweep = read_json(copy_dir / RP.SWEEP_SUMMARY.format(target=t))
    assert s["main_best_layer"] == sweep["best_layer"] == s["sizes"][1]["best_layer"]
    small = pd.concat([pd.read_csv(copy_dir / RP.TL_SIZE_LAYER_CSV.format(target=t, n=2, layer=L)) for L in range(1, 5)])
    assert (small["n_train"] == 2).all() and sorted(small["seed"].unique()) == [0, 1]
    assert s["sizes"][0]["best_layer"] == int(small.groupby("layer")["nmse"].mean().idxmin())
    table = pd.read_csv(copy_dir / RP.SIZES_CSV.format(target=t))
    assert len(table) == 2 * 4 and table["mean"].notna().all()
    # the baselines at each size: size 2's trained on 2 snapshots, the main size's are the sweep's
    for m in ("scratch", "finetune_all"):
        b2 = pd.read_csv(copy_dir / RP.TL_SIZE_BASELINE_CSV.format(target=t, n=2, method=m))
        assert (b2["n_train"] == 2).all() and sorted(b2["seed"]) == [0, 1]
        assert s["sizes"][0]["baselines"][m]["mean"] == pytest.approx(b2["nmse"].mean())
        b4 = pd.read_csv(copy_dir / RP.TL_BASELINE_CSV.format(target=t, method=m))
        assert s["sizes"][1]["baselines"][m]["mean"] == pytest.approx(b4["nmse"].mean())
    assert (copy_dir / RP.FIG_SIZES.format(target=t)).stat().st_size > 10_000
    # the predictors: at the main size the summary's scores are comparison.json's, from the same runs
    comp = read_json(copy_dir / RP.COMPARISON.format(target=t))["predictors"]
    main_pred = s["sizes"][1]["predictors"]
    assert set(main_pred) == set(comp) and len(comp) >= 5
    for name, c in main_pred.items():
        assert c == {k: comp[name][k] for k in c}, name
    # at size 2 they read the first seed's draw of 2 snapshots (the sweep's seed-0 set at that size)
    p2 = read_json(copy_dir / RP.SIZE_PREDICTION.format(target=t, n=2))
    from turbtl.transfer import predictor_draw

    assert p2["details"]["n_target_samples"] == 2 and p2["small_set_draw"] == list(predictor_draw(cfg["transfer"]))
    assert p2["details"]["probe"]["n_fit"] == 1 and p2["details"]["probe"]["n_holdout"] == 1
    assert s["sizes"][0]["predictors"]["deepest"]["choice"] == 4  # needs no data: the tiny net's deepest layer
    sp = pd.read_csv(copy_dir / RP.SIZE_PREDICTORS_CSV.format(target=t))
    assert len(sp) == 2 * len(comp) and set(sp["n_small"]) == {2, 4}
    from turbtl.report import build

    part = build(copy_dir / RP.ROOT).split("**Small-set sizes**")[1].split("**A posteriori**")[0]
    assert f"| {t} | 2 (0.25) | {s['sizes'][0]['best_layer']} |" in part and f"| {t} | 4 (0.5) main |" in part
    assert "high_kf" not in part  # the targets that have one
    only = build(copy_dir / RP.ROOT, sizes_only=True)
    assert only.startswith("Wall time of the run:") and "**Small-set sizes**" in only
    assert "| predictor | hit rate | mean regret | worst regret | mean Spearman" not in only  # no sweep tables
    assert "**Predictors at every small-set size**" in only and f"| {t}: 2 | {s['sizes'][0]['best_layer']}" in only
    assert "**Baselines at every small-set size**" in only and f"| {t} | 2 | {s['sizes'][0]['best_layer']}: " in only
    assert "sweep's above" not in only and "table above" not in only
    # a rerun of the main size's predictors (or of its layers) with the study off leaves an old sizes.json: not reported
    pred, sizes_json = copy_dir / RP.PREDICTION.format(target=t), copy_dir / RP.SIZES_SUMMARY.format(target=t)
    later = sizes_json.stat().st_mtime + 10
    os.utime(pred, (later, later))
    assert "**Small-set sizes**" not in build(copy_dir / RP.ROOT)
    os.utime(sizes_json, (later + 10, later + 10))
    assert "**Small-set sizes**" in build(copy_dir / RP.ROOT)
    layer = copy_dir / RP.TL_LAYER_CSV.format(target=t, layer=3)
    os.utime(layer, (later + 20, later + 20))
    assert "**Small-set sizes**" not in build(copy_dir / RP.ROOT)


def test_a_decaying_flow_reaches_its_dns_job(tiny_run, tmp_path):
    """forcing: none and initial_energy are DNS params of that flow (its DNS reruns, and runs
    unforced), while a forced flow's DNS params stay as they were (nothing to do), also with
    the default forcing written out."""
    work, _ = tiny_run
    cfg = tiny_config()
    cfg["systems"]["high_kf"].update(forcing="none", initial_energy=0.5)
    cfg["systems"]["base"]["forcing"] = "kolmogorov"
    cf = write_config(cfg, tmp_path / "decaying.yaml")
    for system, changed in (("high_kf", True), ("base", False)):
        r = snakemake(work, cf, "-n", RP.DNS.format(system=system), "--allowed-rules", "dns")
        assert r.returncode == 0, r.stderr[-4000:]
        assert ("Params have changed" in r.stdout + r.stderr) == changed, (system, (r.stdout + r.stderr)[-2000:])
    target = RP.DNS.format(system="high_kf")
    r = snakemake(tmp_path, cf, "--cores", "1", target)
    assert r.returncode == 0, r.stderr[-4000:]
    with xr.open_dataset(tmp_path / target, engine="netcdf4") as ds:
        assert ds.attrs["forcing"] == "none" and float(ds.attrs["initial_energy"]) == 0.5
        assert np.all(np.diff(ds["energy"].values, axis=1) < 0)  # no forcing: the energy only falls


@pytest.mark.parametrize("missing,rules", [
    (RP.DNS.format(system="base"), ["dns", "filter", "train_base"]),
    (RP.TL_LAYER_CSV.format(target="high_re", layer=2), ["transfer_layer", "sweep_summary"]),
])
def test_a_missing_intermediate_output_is_remade(tiny_run, tmp_path, missing, rules):
    """Snakemake deletes a job's old output when the job starts, and does not remake a missing
    intermediate whose consumers exist.  A job rerunning for a changed setting that only it
    reads (say a `dns` key) and killed then would be skipped by the same command; every output
    is therefore in `rule all`: the plain command plans the missing file and what follows."""
    work, cfg = tiny_run
    copy_dir = tmp_path / "w"
    shutil.copytree(work, copy_dir, symlinks=True)
    (copy_dir / missing).unlink()
    r = snakemake(copy_dir, cfg, "-n")
    assert r.returncode == 0, r.stderr[-4000:]
    out = r.stdout + r.stderr
    assert "Nothing to be done" not in out and missing in out, out[-3000:]
    for rule in rules:
        assert f"rule {rule}:" in out or f"\n{rule} " in out, (rule, out[-3000:])

def test_kill_9_recovers_with_unlock_and_a_plain_rerun(tmp_path):
    """After `kill -9` of the snakemake process group: `snakemake --unlock`, then the same
    command, finishes (profiles/default sets rerun-incomplete) and leaves no temporaries."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = write_config(tiny_config(), tmp_path / "c.yaml")
    target = RP.DNS.format(system="base")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(cfg), "--cores", "1", target]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    dns_dir = tmp_path / RP.ROOT / "dns"
    t0 = time.time()
    while time.time() - t0 < 120 and not list(dns_dir.glob(".base.nc.tmp-*")):
        time.sleep(0.05)
    assert list(dns_dir.glob(".base.nc.tmp-*")), "the DNS job never started writing"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / target).exists()
    locked = snakemake(tmp_path, cfg, "--cores", "1", target)
    assert locked.returncode != 0 and "unlock" in (locked.stdout + locked.stderr).lower()
    assert snakemake(tmp_path, cfg, "--unlock").returncode == 0
    r = snakemake(tmp_path, cfg, "--cores", "1", target)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (tmp_path / target).exists() and not list(dns_dir.glob(".*tmp-*"))
    # the workflow profile (rerun-incomplete) applies also when run from another directory
    assert "Using workflow specific profile profiles/default" in r.stdout + r.stderr


def test_nested_numeric_override_on_the_command_line(tmp_path):
    """`--config "training={epochs: 3}"` works (Snakemake passes nested values as strings)."""
    cfg = write_config(tiny_config(), tmp_path / "c.yaml")
    r = snakemake(tmp_path, cfg, "-n", "--config", "training={epochs: 3}", "systems={base: {Re: 160}}")
    assert r.returncode == 0, r.stderr[-4000:]
    r = snakemake(tmp_path, cfg, "-n", "--config", "training={epochs: three}")
    assert r.returncode != 0 and "training.epochs" in r.stdout + r.stderr


BAD = {
    "unknown key": (lambda c: c["systems"]["base"].update(viscosity=1), "unknown key(s) 'viscosity'"),
    "negative Re": (lambda c: c["systems"]["base"].update(Re=-1), "systems.base.Re"),
    "LES does not divide": (lambda c: c["systems"]["base"].update(n_les=20), "does not divide n_dns"),
    "LES larger": (lambda c: c["systems"]["base"].update(n_les=64), "is larger than n_dns"),
    "kf unresolved": (lambda c: c["systems"]["high_kf"].update(kf=6), "is not resolved on the LES grid"),
    "undefined target": (lambda c: c["targets"].append("ghost"), "'ghost' is not a defined system"),
    "undefined base": (lambda c: c.update(base="ghost"), "base = 'ghost' is not a defined system"),
    "duplicate target": (lambda c: c["targets"].append("high_re"), "listed more than once"),
    "unstable dt": (lambda c: c["systems"]["base"].update(dt=0.5), "time step too large"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_fails_before_any_job(case, tmp_path):
    cfg = tiny_config()
    mutate, needle = BAD[case]
    mutate(cfg)
    cf = write_config(cfg, tmp_path / "bad.yaml")
    r = snakemake(tmp_path, cf, "--cores", "1")
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr[-3000:]
    assert "fix:" in r.stderr
    assert not (tmp_path / "results").exists(), "a job ran before the config was rejected"


def test_duplicate_flow_names_fail_before_any_job(tmp_path):
    text = yaml.safe_dump(tiny_config(), sort_keys=False)
    i = text.index("  high_kf:")
    j = text.index("\ndns:") + 1
    cf = tmp_path / "dup.yaml"
    cf.write_text(text[:j] + text[i:j] + text[j:])
    r = snakemake(tmp_path, cf, "--cores", "1")
    assert r.returncode != 0
    assert "duplicate key 'high_kf'" in r.stderr and "fix:" in r.stderr
    assert not (tmp_path / "results").exists()


def test_snakemake_lint_is_clean(tmp_path):
    r = snakemake(tmp_path, REPO / "config.yaml", "--lint")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Lints for" not in r.stdout + r.stderr


def test_reference_preset_dry_run(tmp_path):
    """presets/reference.yaml: the full job set (4 DNS, 11 layers x 3 targets, 4 baselines
    x 3 targets, ...) with memory sized from the config, not from the tiny defaults."""
    import re

    r = snakemake(tmp_path, REPO / "presets" / "reference.yaml", "-n", "--cores", "16")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["dns"] == "4" and counts["transfer_layer"] == "33"
    assert counts["transfer_baseline"] == "12" and counts["aposteriori"] == "3" and counts["total"] == "84"
    mems = [int(m) for m in re.findall(r"mem_mb=(\d+)", out)]
    assert max(mems) > 4000, "DNS/filter memory at 1024^2-2048^2 must exceed the default sizes"
    assert not (tmp_path / "results").exists()
