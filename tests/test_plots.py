"""Every figure function writes a readable, non-blank PNG of sensible size."""
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

import diag_fixtures as F
from turbtl import diagnostics as D
from turbtl import plots
from turbtl import predict as P


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
                            [1, 2, 3, 4])
    df = F.sweep_table({1: .3, 2: .35, 3: .5, 4: .6}, {1: .02, 2: .03, 3: .02, 4: .01})
    summ = F.sweep_summary(df)
    return dict(net=net, lw=lw, xb=xb, xt=xt, pred=pred, df=df, summ=summ, cmp=P.compare(pred, df, summ))


def test_best_layer_png(setup, tmp_path):
    s = setup
    out = tmp_path / "best_layer.png"
    plots.best_layer(s["df"], s["summ"], s["pred"], s["cmp"], out, target="t")
    _check_png(out)


def test_kernels_png(setup, tmp_path):
    ds = D.tl_kernels_dataset(setup["net"], setup["lw"], 16, percentile=90.0)
    out = tmp_path / "kernels.png"
    plots.kernels(ds, out, layer=2, target="t")
    _check_png(out)


def test_activations_png(setup, tmp_path):
    ds = D.activations_dataset(setup["net"], setup["xb"], setup["xt"], setup["lw"])
    out = tmp_path / "activations.png"
    plots.activations(ds, out, tl_layer=1, target="t")
    _check_png(out)


def test_system_spectra_png(tmp_path):
    ds = D.system_spectra(F.spectra_ds(), F.spectra_ds(bump_k=3))
    out = tmp_path / "system_spectra.png"
    plots.system_spectra(ds, out, base="base", target="t")
    _check_png(out)


def test_summary_png(setup, tmp_path):
    rows = []
    for t in ("high_re", "high_kf", "beta"):
        rows += P.summary_rows(t, setup["cmp"], setup["summ"])
    rows[0]["spearman"] = float("nan")  # an undefined rho must not break the figure
    out = tmp_path / "summary.png"
    plots.summary(pd.DataFrame(rows, columns=P.SUMMARY_COLUMNS), out)
    _check_png(out)
