"""Transfer learning: re-train one layer on the small target set, baselines, sweep summary.

Re-training layer L (``retrain_layer``) starts from the base weights, freezes every other
parameter (``requires_grad=False``) and is fast: the layers in front of L are fixed, so
their output on the small set is computed ONCE (``forward_range(x, 1, L-1)`` under
``torch.no_grad``) and each step runs only ``forward_range(h, L, depth)``; autograd then
computes weight gradients for layer L alone (the later layers only pass input gradients
back).  The loop itself is ``training.train_loop``, the one ``fit`` runs.  Data
augmentation is OFF in TL: a cached prefix activation cannot be rotated or reflected (the
prefix of a transformed input is not a transform of the cached prefix for a network with
general kernels), and the reference study does not augment TL either.
Seeds carry data noise, in a paired design (``turbtl.verdict``): TL seed s draws its own
small target set from the target's train members with the seed ``(transfer.subset_seed, s)``
(:func:`draw_seed`) and orders its mini-batches with s; within one seed every layer and the
small-set baselines (scratch, finetune_all) use that same draw.

Pairs of layers re-trained together (``transfer.pairs``): :mod:`turbtl.pairs`, on
:func:`retrain_every_seed` and a tuple of layers for :func:`retrain_layer`.

Baselines (``run_baseline_job``): ``zero_shot`` (base net, no TL), ``scratch`` (fresh net of the
same architecture, base normaliser, small set, transfer epochs), ``finetune_all`` (every layer
on the small set), ``full_target`` (fresh net on all target train members, training epochs,
best state on the target val members).  Every model is scored on the target's TEST members.
"""
from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np
import pandas as pd
import torch

from . import TurbtlError
from .arrays import as_float32_tensor
from .data import FilteredData, Normaliser, symmetry_group
from .io import atomic_path, write_csv
from .network import NetConfig, SGSNet
from .paths import BASELINE_METHODS
from .sweep import CSV_COLUMNS, summarise
from .training import evaluate, fit, load_checkpoint, precision_context, preload_optimiser, train_loop

__all__ = ["retrain_layer", "retrain_every_seed", "load_tl_model", "run_layer_job", "run_baseline_job", "summarise",
           "CSV_COLUMNS", "n_seeds", "subset_seed", "draw_seed", "predictor_draw",
           "save_layer_weights", "load_layer_weights"]

_log = logging.getLogger("turbtl.transfer")


def n_seeds(transfer_cfg: dict) -> list[int]:
    """Seeds of the TL runs: ``transfer.seeds`` is a count (0..n-1) or an explicit list."""
    s = transfer_cfg.get("seeds", 1)
    return list(range(int(s))) if isinstance(s, (int, np.integer)) else [int(v) for v in s]


def subset_seed(transfer_cfg: dict) -> int:
    """``transfer.subset_seed``: the root of the small-set draws (see :func:`draw_seed`)."""
    return int(transfer_cfg.get("subset_seed", 0))


def draw_seed(transfer_cfg: dict, seed: int) -> tuple[int, int]:
    """Seed of the small target set of TL seed ``seed``: ``(transfer.subset_seed, seed)``.

    Every layer and the small-set baselines of one TL seed use this draw (paired); the
    predictors use the draw of the first TL seed (the one small set a user would have).
    """
    return (subset_seed(transfer_cfg), int(seed))


def predictor_draw(transfer_cfg: dict) -> tuple[int, int]:
    """The small-set draw the predictors read: that of the first TL seed."""
    return draw_seed(transfer_cfg, n_seeds(transfer_cfg)[0])


# ------------------------------------------------------------------------ one layer
def retrain_layer(base_model: SGSNet, layer, X_small, Y_small, norm: Normaliser, *,
                  epochs: int, batch_size: int, lr: float, seed: int, device,
                  cached: bool = True, amp: str | None = None, resume_path=None,
                  progress: bool = False, log=None) -> tuple[SGSNet, list[dict]]:
    """Re-train layer ``layer`` (1-based; or a tuple of layers, re-trained together: the
    cache then ends before the shallowest) of a COPY of ``base_model`` on (X_small, Y_small).

    Returns ``(model, history)``; ``history`` rows are ``{"epoch", "train_loss"}``.
    The loop is ``training.train_loop`` (the one ``fit`` runs: same freezing, Adam group,
    batch order from ``seed``, non-finite-loss stop, ``resume_path``, ``progress``, ``log``);
    this function only feeds it.  ``cached=True``: the inputs of layer L,
    ``h = forward_range(x, 1, L-1)``, computed once under ``torch.no_grad``, and the forward
    ``forward_range(h_b, L, depth)``.  ``cached=False`` is the naive way (full forward and
    backward through the whole network every step, other layers frozen): same updates, kept
    for tests and benchmarks.  The epoch loss is summed on the host in float64
    (``host_loss_sum``), as TL always did.  ``amp``: as in ``fit``; the default ``None``
    leaves the precision flags alone (``transfer`` has no amp setting).  Every parameter of
    the returned copy has ``requires_grad=True`` again.
    """
    dev = torch.device(device)
    model = copy.deepcopy(base_model).to(dev)
    layers = sorted({int(layer)} if np.ndim(layer) == 0 else {int(L) for L in layer})
    bad = [L for L in layers if not 1 <= L <= model.depth]
    if bad or not layers:
        raise TurbtlError(f"transfer layer {bad or layer} is outside 1..{model.depth}; "
                          "fix: transfer.layers in config.yaml")
    first = layers[0]
    x = norm.x(as_float32_tensor(X_small)).to(dev)
    y = norm.y(as_float32_tensor(Y_small)).to(dev)
    if cached:
        with torch.no_grad(), precision_context(amp, dev):
            h = model.forward_range(x, 1, first - 1)

        def forward(hb):
            return model.forward_range(hb, first, model.depth)
    else:
        h, forward = x, model
    params = [w for L in layers for w in model.layer_parameters(L)]
    fingerprint = {"layer": first} if len(layers) == 1 else {"layers": layers}
    try:
        history = train_loop(model, params, len(x), lambda idx, gen: (h[idx], y[idx]),
                             forward=forward, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             device=dev, amp=amp, resume_path=resume_path, fingerprint=fingerprint,
                             host_loss_sum=True, progress=progress, log=log or _log,
                             context=f"re-training layer{'s' if len(layers) > 1 else ''} "
                                     f"{'+'.join(map(str, layers))}: ",
                             fix="check the small set and the base checkpoint for non-finite values, "
                                 "or lower transfer.lr")
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return model.eval(), [{"epoch": r["epoch"], "train_loss": r["train_loss"]} for r in history]


# ------------------------------------------------------- the layer-weights file (one owner)
def save_layer_weights(path, layer: int, weights: dict) -> None:
    """Write ``runs/layer{L}.pt``: ``{"layer": L, "seeds": [..], "weights": {seed: {"weight",
    "bias"}}}`` (plain tensors, so that it loads with ``weights_only=True``), atomically."""
    with atomic_path(path) as tmp:
        torch.save({"layer": int(layer), "seeds": [int(s) for s in weights],
                    "weights": {int(s): {"weight": v["weight"].detach().cpu().clone(),
                                         "bias": v["bias"].detach().cpu().clone()}
                                for s, v in weights.items()}}, tmp)


def load_layer_weights(path) -> tuple[int, dict]:
    """Read ``runs/layer{L}.pt``: ``(L, {seed: {"weight": t, "bias": t}})``, seeds sorted.

    Only plain tensors are unpickled (``weights_only=True``); a file that needs more is not
    one this pipeline wrote and is refused, never executed.
    """
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        w = {int(s): v for s, v in d["weights"].items()}
        layer = int(d["layer"])
    except Exception as e:
        raise TurbtlError(f"{path} is not a readable TL layer-weights file ({type(e).__name__}: {e}); "
                          "fix: delete it and rerun, and the transfer_layer job writes it anew") from e
    return layer, dict(sorted(w.items()))


def save_model_weights(path, method: str, weights: dict) -> None:
    """Write ``runs/baseline_{method}.pt``: ``{"method": m, "seeds": [..], "state": {seed:
    state_dict}}`` (plain tensors, loads with ``weights_only=True``), atomically.  Zero shot
    stores the base network under seed 0: what that baseline is."""
    with atomic_path(path) as tmp:
        torch.save({"method": str(method), "seeds": [int(s) for s in weights],
                    "state": {int(s): {k: v.detach().cpu().clone() for k, v in sd.items()} for s, sd in weights.items()}},
                   tmp)


def load_baseline_model(base_ckpt_path, weights_path, seed: int, device="cpu") -> SGSNet:
    """The network of a baseline (``runs/baseline_{method}.pt``) for ``seed``, on the base
    checkpoint's architecture; the seed falls back to 0 for zero shot (one network)."""
    model, _, _ = load_checkpoint(base_ckpt_path, device)
    try:
        d = torch.load(weights_path, map_location="cpu", weights_only=True)
        st = {int(s): v for s, v in d["state"].items()}
    except Exception as e:
        raise TurbtlError(f"{weights_path} is not a readable baseline-weights file ({type(e).__name__}: {e}); "
                          "fix: delete it and rerun, and the transfer_baseline job writes it anew") from e
    seed = int(seed) if int(seed) in st else min(st)
    model.load_state_dict(st[seed])
    return model.eval()


def load_tl_model(base_ckpt_path, layer_weights_path, seed: int, device="cpu") -> SGSNet:
    """The base network with layer L replaced by the re-trained weights of ``seed``."""
    model, _, _ = load_checkpoint(base_ckpt_path, device)
    layer, w = load_layer_weights(layer_weights_path)
    seed = int(seed)
    if seed not in w:
        raise TurbtlError(f"{layer_weights_path} has no seed {seed} (seeds {list(w)}); "
                          "fix: ask for one of those seeds or re-run the TL job")
    conv = model.layer(layer)
    with torch.no_grad():
        conv.weight.copy_(w[seed]["weight"])
        conv.bias.copy_(w[seed]["bias"])
    return model.eval()


def _row(target, method, layer, seed, n_train, epochs, metrics, seconds) -> dict:
    return {"target": target, "method": method, "layer": int(layer), "seed": int(seed),
            "n_train": int(n_train), "epochs": int(epochs), **{k: metrics[k] for k in
            ("mse", "nmse", "cc", "spec_err")}, "seconds": float(seconds)}


def retrain_every_seed(model_path, data_path, layers, *, transfer_cfg: dict, n_small: int, device, log):
    """Re-train ``layers`` (an int, or a tuple re-trained together) for every seed, each on
    its own small-set draw (:func:`draw_seed`); yield ``(target, seed, n_train, metrics on the
    target's test members, seconds, model)``."""
    dev = torch.device(device)
    base, norm, _ = load_checkpoint(model_path, dev)
    data = FilteredData(data_path)  # the file is read once
    target = data.name
    seeds = n_seeds(transfer_cfg)
    sets = data.small_sets(n_small, [draw_seed(transfer_cfg, s) for s in seeds])
    Xt, Yt = data.xy("test")
    name = "+".join(map(str, layers)) if isinstance(layers, tuple) else str(layers)
    preload_optimiser(log, dev)  # start-up, not the first seed's re-training
    for seed, (Xs, Ys) in zip(seeds, sets):
        t0 = time.perf_counter()
        model, hist = retrain_layer(base, layers, Xs, Ys, norm, epochs=int(transfer_cfg["epochs"]),
                                    batch_size=int(transfer_cfg["batch_size"]),
                                    lr=float(transfer_cfg["lr"]), seed=seed, device=dev)
        secs = time.perf_counter() - t0
        m = evaluate(model, norm, Xt, Yt, dev)
        log.info("%s layer %s seed %d: train loss %.4g -> %.4g, test %s (%.1f s)", target, name,
                 seed, hist[0]["train_loss"] if hist else math.nan,
                 hist[-1]["train_loss"] if hist else math.nan, m, secs)
        yield target, seed, len(Xs), m, secs, model


def run_layer_job(model_path, data_path, layer: int, out_csv, out_weights, *, transfer_cfg: dict,
                  n_small: int, device, log=None) -> pd.DataFrame:
    """Re-train layer ``layer`` for every seed, each on its own small-set draw
    (:func:`draw_seed`); score on the target's test members.  ``out_weights`` None: the
    re-trained layers are not kept (the size study's runs, :mod:`turbtl.sizes`)."""
    layer = int(layer)
    rows, weights = [], {}
    for target, seed, n_train, m, secs, model in retrain_every_seed(
            model_path, data_path, layer, transfer_cfg=transfer_cfg, n_small=n_small, device=device, log=log or _log):
        rows.append(_row(target, "tl_layer", layer, seed, n_train, transfer_cfg["epochs"], m, secs))
        conv = model.layer(layer)
        weights[seed] = {"weight": conv.weight.detach().cpu().clone(),
                         "bias": conv.bias.detach().cpu().clone()}
    if out_weights is not None:
        save_layer_weights(out_weights, layer, weights)
    return write_csv(pd.DataFrame(rows, columns=CSV_COLUMNS), out_csv)


def run_baseline_job(model_path, data_path, method: str, out_csv, *, transfer_cfg: dict,
                     training_cfg: dict, network_cfg: dict, n_small: int, device,
                     log=None, out_weights=None) -> pd.DataFrame:
    """One baseline, per seed (zero_shot: one row, seed 0), scored on the target test members;
    its networks go to ``out_weights`` (:func:`save_model_weights`) for the a-posteriori LES."""
    log = log or _log
    dev = torch.device(device)
    base, norm, _ = load_checkpoint(model_path, dev)
    data = FilteredData(data_path)  # the file is read once
    target = data.name
    Xt, Yt = data.xy("test")
    rows = []
    if method == "zero_shot":
        t0 = time.perf_counter()
        m = evaluate(base, norm, Xt, Yt, dev)
        rows.append(_row(target, method, 0, 0, 0, 0, m, time.perf_counter() - t0))
        nets = {0: base.state_dict()}
    elif method in BASELINE_METHODS[1:]:
        if method == "full_target":
            train, val = data.xy("train"), data.xy("val")
            epochs, bs, lr = (int(training_cfg["epochs"]), int(training_cfg["batch_size"]),
                              float(training_cfg["lr"]))
            augment = bool(training_cfg.get("augment", False))
        else:
            train, val = None, None  # the small set of each seed (paired with the TL layers)
            epochs, bs, lr = (int(transfer_cfg["epochs"]), int(transfer_cfg["batch_size"]),
                              float(transfer_cfg["lr"]))
            augment = False  # like the TL runs it is compared with
        group = symmetry_group(float(data.attrs.get("beta", 0.0)))
        if network_cfg and NetConfig(**network_cfg) != base.cfg:
            log.warning("network config %s differs from the base checkpoint's %s; the baseline "
                        "uses the checkpoint's architecture", network_cfg, base.cfg)
        # full_target trains on all the target's training members, the same data for every seed:
        # its seeds would differ in the initialisation alone, a spread no verdict uses (nothing
        # is paired with it), so it trains one network, the first seed's (the one the LES runs)
        seeds = n_seeds(transfer_cfg)[:1] if method == "full_target" else n_seeds(transfer_cfg)
        preload_optimiser(log, dev)  # start-up, not the first seed's training
        sets = (data.small_sets(n_small, [draw_seed(transfer_cfg, s) for s in seeds])
                if method != "full_target" else [train] * len(seeds))
        nets = {}
        for seed, train in zip(seeds, sets):
            t0 = time.perf_counter()
            if method == "finetune_all":
                model = copy.deepcopy(base)
            else:
                torch.manual_seed(seed)
                model = SGSNet(base.cfg)
            fit(model, norm, train, val, epochs=epochs, batch_size=bs, lr=lr, seed=seed,
                device=dev, augment=augment, amp=training_cfg.get("amp", "none"),
                symmetries=group, progress=False, log=log)
            secs = time.perf_counter() - t0
            m = evaluate(model, norm, Xt, Yt, dev)
            log.info("%s %s seed %d: %s (%.1f s)", target, method, seed, m, secs)
            rows.append(_row(target, method, 0, seed, len(train[0]), epochs, m, secs))
            nets[seed] = model.state_dict()
    else:
        raise TurbtlError(f"unknown baseline method {method!r}; fix: use one of "
                          f"{', '.join(BASELINE_METHODS)}")
    if out_weights is not None:
        save_model_weights(out_weights, method, nets)
    return write_csv(pd.DataFrame(rows, columns=CSV_COLUMNS), out_csv)
