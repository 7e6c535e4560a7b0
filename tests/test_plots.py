"""Every figure function writes a readable, non-blank PNG of sensible size."""
import matplotlib.image as mpimg
import pandas as pd
import pytest
import torch

import diag_fixtures as F
from turbtl import diagnostics_files as DF
from turbtl import plots, plots_kernels
from turbtl import predict as P
from turbtl import verdict as V


def _check_png(path, min_px=300, max_px=4000):
    assert path.exists() and path.stat().st_size > 5000
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert min_px <= h <= max_px and min_px <= w <= max_px, (h, w)
    rgb = img[..., :3]
    assert rgb.std() > 0.02  # not blank
    assert not list(path.parent.glob(".*tmp*"))  # atomic write left no temporary file


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = F.tiny_net(depth=4, channels=4)
    lw = F.layer_weights(net, [1, 2, 3, 4])
    xb, xt = F.random_fields(3), F.random_fields(3, seed=1, slope=-1.0)
    pred = P.predict_layers(net, xb, xt, torch.randn(3, 1, 16, 16), F.spectra_ds(), F.spectra_ds(bump_k=3),
                            [1, 2, 3, 4], probe={"epochs": 1, "holdout": 0.34, "lr": 1e-3, "batch_size": 2})
    df = F.sweep_table({1: .3, 2: .35, 3: .5, 4: .6}, {1: .02, 2: .03, 3: .02, 4: .01})
    summ = F.sweep_summary(df)
    return dict(net=net, lw=lw, xb=xb, xt=xt, pred=pred, df=df, summ=summ, cmp=V.compare(pred, df, target="t"))


def test_best_layer_png(setup, tmp_path):
    s = setup
    out = tmp_path / "best_layer.png"
    plots.best_layer(s["df"], s["summ"], s["pred"], s["cmp"], out, target="t")
    _check_png(out)


@pytest.mark.parametrize("clusters", [False, True])
def test_kernels_png(setup, tmp_path, clusters):
    centroids = DF.centroids_of(DF.base_kernels_dataset(setup["net"], 16)) if clusters else None
    ds = DF.tl_kernels_dataset(setup["net"], setup["lw"], 16, percentile=90.0, centroids=centroids)
    out = tmp_path / "kernels.png"
    plots_kernels.kernels(ds, out, layer=2, target="t")
    _check_png(out)


def test_activations_png(setup, tmp_path):
    ds = DF.activations_dataset(setup["net"], setup["xb"], setup["xt"], setup["lw"])
    out = tmp_path / "activations.png"
    plots.activations(ds, out, tl_layer=1, target="t")
    _check_png(out)


def test_system_spectra_png(tmp_path):
    ds = DF.system_spectra(F.spectra_ds(), F.spectra_ds(bump_k=3))
    out = tmp_path / "system_spectra.png"
    plots.system_spectra(ds, out, base="base", target="t")
    _check_png(out)


def test_summary_png(setup, tmp_path):
    rows = []
    for t in ("high_re", "high_kf", "beta"):
        rows += V.summary_rows(t, setup["cmp"])
    rows[0]["spearman"] = float("nan")  # an undefined rho must not break the figure
    rows[1]["regret"] = None  # nor an undefined regret (TL gains nothing)
    by_target = pd.DataFrame(rows, columns=V.SUMMARY_COLUMNS)
    out = tmp_path / "summary.png"
    plots.summary(by_target, V.aggregate(by_target), out)
    _check_png(out)


# ---------------------------------------------------------------------------------------
# The thin scripts, end to end on synthetic files (base model and TL sweep made here)
# ---------------------------------------------------------------------------------------
class _NL(list):
    """A minimal stand-in for Snakemake's Namedlist: a list with named entries."""

    def __init__(self, items=(), **named):
        super().__init__(list(items) + [v for v in named.values() if not isinstance(v, list)]
                         + [x for v in named.values() if isinstance(v, list) for x in v])
        self.__dict__.update(named)

    def get(self, key, default=None):
        return self.__dict__.get(key, default)


class _Smk:
    def __init__(self, rule, input, output, params=None, wildcards=None, log=None):
        self.rule, self.threads = rule, 1
        self.input, self.output = input, output
        self.params = params or _NL()
        self.wildcards = wildcards or _NL()
        self.log = [log] if log else []


def _run_script(name, smk):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "workflow" / "scripts" / f"{name}.py"
    out, err = sys.stdout, sys.stderr
    try:
        runpy.run_path(str(script), init_globals={"snakemake": smk}, run_name="__main__")
    finally:
        for s in (sys.stdout, sys.stderr):
            if s not in (out, err):
                s.close()
        sys.stdout, sys.stderr = out, err


def _spectra_file(data_path, out_path):
    import xarray as xr

    from turbtl.data import load_xy
    from turbtl.io import write_netcdf
    from turbtl.spectra import power_spectrum

    X, Y = load_xy(data_path)
    k, pp = power_spectrum(X[:, 0])
    _, po = power_spectrum(X[:, 1])
    _, pi = power_spectrum(Y[:, 0])
    ds = xr.Dataset({v: ("k_les", a, {"long_name": v, "units": "1"})
                     for v, a in (("P_psi", pp), ("P_omega", po), ("P_pi", pi))}, coords={"k_les": k})
    write_netcdf(ds, out_path)


def test_scripts_end_to_end(tmp_path):
    import json

    import synthetic
    from turbtl.data import Normaliser, load_xy
    from turbtl.io import open_netcdf
    from turbtl.network import NetConfig, SGSNet
    from turbtl.training import save_checkpoint
    from turbtl.transfer import run_layer_job, summarise

    r = tmp_path
    base, tgt = r / "base.nc", r / "tgt.nc"
    synthetic.write_filtered(base, members=4, times=4, n=16, seed=0, name="base", slope=3.0)
    synthetic.write_filtered(tgt, members=4, times=4, n=16, seed=1, name="tgt", slope=2.0)
    _spectra_file(base, r / "base_spectra.nc")
    _spectra_file(tgt, r / "tgt_spectra.nc")
    torch.manual_seed(0)
    model = SGSNet(NetConfig(depth=3, channels=4))
    X, Y = load_xy(base, "train")
    save_checkpoint(r / "base.pt", model, Normaliser.fit(X, Y), {"system": "base"})
    layers = [1, 2, 3]
    tcfg = {"seeds": 2, "epochs": 1, "batch_size": 2, "lr": 1e-3}
    pcfg = {"probe_epochs": 1, "probe_holdout": 0.34}
    for L in layers:
        run_layer_job(r / "base.pt", tgt, L, r / f"layer{L}.csv", r / f"layer{L}.pt", transfer_cfg=tcfg,
                      n_small=4, device="cpu")
    summarise([r / f"layer{L}.csv" for L in layers], [], "tgt", r / "sweep.csv", r / "summary.json")
    wc = _NL(target="tgt")
    weights = [str(r / f"layer{L}.pt") for L in layers]
    _run_script("base_kernels", _Smk("base_kernels", _NL(model=str(r / "base.pt")), _NL([str(r / "bk.nc")]),
                                     _NL(n_les=16), log=str(r / "log/bk.log")))
    _run_script("system_spectra", _Smk("system_spectra", _NL(base=str(r / "base_spectra.nc"),
                                                             target=str(r / "tgt_spectra.nc")),
                                       _NL([str(r / "ss.nc")]), wildcards=wc, log=str(r / "log/ss.log")))
    _run_script("tl_kernels", _Smk("tl_kernels", _NL(model=str(r / "base.pt"), base_kernels=str(r / "bk.nc"),
                                                     weights=weights),
                                   _NL([str(r / "tk.nc")]), _NL(layers=layers, n_les=16, percentile=99.9),
                                   wildcards=wc, log=str(r / "log/tk.log")))
    _run_script("activations", _Smk("activations", _NL(model=str(r / "base.pt"), base=str(base), target=str(tgt),
                                                       weights=weights),
                                    _NL([str(r / "ac.nc")]), _NL(layers=layers, samples=3, device="cpu"),
                                    wildcards=wc, log=str(r / "log/ac.log")))
    _run_script("predict", _Smk("predict", _NL(model=str(r / "base.pt"), base=str(base), target=str(tgt),
                                               base_spectra=str(r / "base_spectra.nc"),
                                               target_spectra=str(r / "tgt_spectra.nc")),
                                _NL([str(r / "prediction.json")]),
                                _NL(layers=layers, n_small=4, transfer=tcfg, predict=pcfg, samples=3, device="cpu"),
                                wildcards=wc, log=str(r / "log/pr.log")))
    _run_script("compare", _Smk("compare", _NL(prediction=str(r / "prediction.json"), sweep=str(r / "sweep.csv")),
                                _NL([str(r / "comparison.json")]), _NL(alpha=0.05), wildcards=wc,
                                log=str(r / "log/cmp.log")))
    figs = {k: str(r / f"fig_{k}.png") for k in ("best_layer", "kernels", "activations", "system_spectra")}
    _run_script("figures_target", _Smk("figures_target",
                                       _NL(sweep=str(r / "sweep.csv"), summary=str(r / "summary.json"),
                                           prediction=str(r / "prediction.json"),
                                           comparison=str(r / "comparison.json"), tl_kernels=str(r / "tk.nc"),
                                           activations=str(r / "ac.nc"), system_spectra=str(r / "ss.nc")),
                                       _NL(**figs), _NL(base="base"), wildcards=wc, log=str(r / "log/fig.log")))
    _run_script("summary", _Smk("summary", _NL(comparisons=[str(r / "comparison.json")]),
                                _NL(table=str(r / "summary.csv"), by_target=str(r / "summary_by_target.csv"),
                                    figure=str(r / "summary.png"), html=str(r / "summary.html")),
                                _NL(targets=["tgt"]), log=str(r / "log/sum.log")))
    for f in list(figs.values()) + [str(r / "summary.png")]:
        _check_png(__import__("pathlib").Path(f))
    table = pd.read_csv(r / "summary_by_target.csv")
    assert list(table.columns) == V.SUMMARY_COLUMNS and len(table) == len(P.PREDICTORS)
    agg = pd.read_csv(r / "summary.csv")
    assert list(agg.columns) == V.AGGREGATE_COLUMNS and list(agg.predictor) == list(P.PREDICTORS)
    html = (r / "summary.html").read_text()  # the report's table item: both tables, every predictor
    assert html.count("<table>") == 2 and all(f"<td>{p}</td>" in html for p in P.PREDICTORS)
    pred = json.loads((r / "prediction.json").read_text())
    assert list(pred["predictors"]) == list(P.PREDICTORS)
    assert pred["small_set_draw"] == [0, 0]
    for f in ("bk.nc", "ss.nc", "tk.nc", "ac.nc"):
        with open_netcdf(r / f) as ds:
            for v in ds.data_vars:
                assert "long_name" in ds[v].attrs and "units" in ds[v].attrs, (f, v)
