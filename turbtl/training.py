"""Training loop, metrics, checkpoints (save / load / resume) and the base training job.

- Loss: MSE between the network output and the normalised Pi (Adam optimiser).
- ``fit`` keeps the state with the lowest validation loss (when validation data is given)
  and can resume an interrupted run from ``resume_path`` (model, optimiser, epoch, RNG,
  best state and history are saved atomically after every epoch and deleted at the end).
- A CPU run is repeatable: the only randomness inside ``fit`` (batch order, augmentation)
  comes from a ``torch.Generator`` seeded with ``seed``; the caller seeds the weight
  initialisation (``train_base`` does ``torch.manual_seed(seed)`` before building the net).
- ``amp``: ``bf16`` autocast and ``tf32`` matmul/cuDNN flags act on CUDA only; on the CPU the
  run is plain float32 (``none`` on CUDA also turns TF32 off, so it is strict float32).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import TurbtlError
from .arrays import as_float32_tensor
from .data import Normaliser, SYMMETRIES, augment_batch, flow_attrs, load_xy, symmetry_group
from .io import atomic_path, json_default, write_json
from .network import NetConfig, SGSNet
from .spectra import log_spectrum_error

__all__ = ["save_checkpoint", "load_checkpoint", "evaluate", "fit", "train_base", "AMP_MODES"]

AMP_MODES = ("none", "bf16", "tf32")
_log = logging.getLogger("turbtl.training")


# ------------------------------------------------------------------------- checkpoints
def _plain(obj):
    """JSON-plain copy (so that ``torch.load(weights_only=True)`` accepts it)."""
    return json.loads(json.dumps(obj, default=json_default))


def save_checkpoint(path, model: SGSNet, norm: Normaliser, meta: dict | None = None) -> None:
    """Write the checkpoint dict of docs/DESIGN.md atomically."""
    ckpt = {"state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "net": model.cfg.to_dict(), "norm": norm.state_dict(), "meta": _plain(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path, device="cpu") -> tuple[SGSNet, Normaliser, dict]:
    """Load ``(model, normaliser, meta)``; the model is in eval mode on ``device``."""
    path = Path(path)
    if not path.exists():
        raise TurbtlError(f"checkpoint {path} does not exist; fix: run the base training "
                          f"(snakemake {path}) first")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = SGSNet(NetConfig(**ckpt["net"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, Normaliser.from_state_dict(ckpt["norm"]), ckpt.get("meta", {})


# ----------------------------------------------------------------------------- metrics
@torch.no_grad()
def predict(model: SGSNet, norm: Normaliser, X, device, batch_size: int = 64) -> torch.Tensor:
    """Normalised network output for physical inputs ``X`` (CPU float32 tensor)."""
    model.eval()
    dev = torch.device(device)
    out = []
    for i in range(0, len(X), batch_size):
        xb = norm.x(X[i:i + batch_size]).to(dev)
        out.append(model(xb).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def evaluate(model: SGSNet, norm: Normaliser, X, Y, device, batch_size: int = 64) -> dict:
    """Metrics on (X, Y) (physical):

    - ``mse``: MSE on normalised Pi (the training loss);
    - ``nmse``: MSE of physical Pi divided by the variance of the true Pi;
    - ``cc``: Pearson correlation over all grid points of all samples;
    - ``spec_err``: ``turbtl.spectra.log_spectrum_error`` of physical predicted vs true Pi.
    """
    pred_n = predict(model, norm, X, device, batch_size).double()
    y_n = norm.y(Y).double()
    pred = norm.y_inv(pred_n.float()).double()
    y = torch.as_tensor(np.asarray(Y) if not isinstance(Y, torch.Tensor) else Y).double().cpu()
    mse = float(((pred_n - y_n) ** 2).mean())
    nmse = float(((pred - y) ** 2).mean() / y.var(unbiased=False))
    p, t = pred.flatten() - pred.mean(), y.flatten() - y.mean()
    cc = float((p * t).sum() / torch.sqrt((p * p).sum() * (t * t).sum()))
    spec = log_spectrum_error(pred[:, 0], y[:, 0])
    return {"mse": mse, "nmse": nmse, "cc": cc, "spec_err": spec}


# ------------------------------------------------------------------------------- fit
@contextlib.contextmanager
def precision_context(amp: str, device: torch.device):
    """Autocast / TF32 flags for ``amp`` on CUDA; a no-op on the CPU."""
    if amp not in AMP_MODES:
        raise TurbtlError(f"training.amp must be one of {AMP_MODES}, got {amp!r}; fix config.yaml")
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    tf32 = amp == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        if amp == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@torch.no_grad()
def _loss_on(model, xn, yn, batch_size, amp, device):
    model.eval()
    tot = 0.0
    for i in range(0, len(xn), batch_size):
        with precision_context(amp, device):
            pred = model(xn[i:i + batch_size])
        tot += float(((pred.float() - yn[i:i + batch_size]) ** 2).mean()) * len(pred)
    return tot / len(xn)


def fit(model: SGSNet, norm: Normaliser, train_xy, val_xy=None, *, epochs: int, batch_size: int,
        lr: float, seed: int, device, params=None, augment: bool = False, amp: str = "none",
        resume_path=None, progress: bool = True, log=None, symmetries=SYMMETRIES,
        on_epoch_end=None) -> list[dict]:
    """Train ``model`` in place (Adam, MSE on normalised data); return the history.

    ``train_xy``/``val_xy``: physical ``(X, Y)`` arrays.  ``params``: the parameters to train
    (default: all); every other parameter of the model gets ``requires_grad=False``.
    ``augment``: random symmetry (``symmetries``, see ``turbtl.data.symmetry_group``) per
    sample, applied to the physical fields before normalisation.  With ``val_xy`` the state
    of the lowest validation loss is loaded at the end.  ``on_epoch_end(epoch, history)`` is
    called after each epoch's resume state is saved (tests use it to simulate a kill).
    History rows: ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without validation).
    """
    log = log or _log
    dev = torch.device(device)
    model.to(dev)
    params = list(model.parameters()) if params is None else list(params)
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    opt = torch.optim.Adam(params, lr=lr)

    X, Y = as_float32_tensor(train_xy[0]).to(dev), as_float32_tensor(train_xy[1]).to(dev)
    n = len(X)
    if n == 0:
        raise TurbtlError("no training samples; fix: check the data split in config.yaml")
    if not augment:
        Xn, Yn = norm.x(X), norm.y(Y)
    if val_xy is not None:
        Xv, Yv = norm.x(as_float32_tensor(val_xy[0])).to(dev), norm.y(as_float32_tensor(val_xy[1])).to(dev)

    gen = torch.Generator().manual_seed(int(seed))
    fingerprint = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
                   "seed": int(seed), "augment": bool(augment), "n_train": int(n),
                   "n_params": int(sum(p.numel() for p in params))}
    history: list[dict] = []
    start, best_val, best_state, best_epoch = 0, math.inf, None, 0
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.exists():
        st = torch.load(resume_path, map_location="cpu", weights_only=True)
        if st.get("fingerprint") == fingerprint:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            gen.set_state(st["rng"])
            start, history = int(st["epoch"]), list(st["history"])
            best_val, best_epoch = float(st["best_val"]), int(st["best_epoch"])
            best_state = st["best_state"]
            log.info("resumed from %s after epoch %d", resume_path, start)
        else:
            log.warning("ignoring resume file %s: it belongs to another run (%s != %s)",
                        resume_path, st.get("fingerprint"), fingerprint)

    bar = None
    if progress:
        from .runtime import progress as _progress
        bar = _progress(total=epochs, initial=start, desc="epochs")
    with precision_context(amp, dev):
        pass  # validate amp early
    for epoch in range(start, epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot = torch.zeros((), device=dev)  # summed on the device: no host sync per step on CUDA
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size].to(dev)
            if augment:
                xb, yb = augment_batch(X[idx], Y[idx], gen, symmetries)
                xb, yb = norm.x(xb), norm.y(yb)
            else:
                xb, yb = Xn[idx], Yn[idx]
            with precision_context(amp, dev):
                pred = model(xb)
            loss = torch.mean((pred.float() - yb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.detach() * len(idx)
        row = {"epoch": epoch + 1, "train_loss": float(tot) / n, "val_loss": math.nan}
        if not math.isfinite(row["train_loss"]):
            raise TurbtlError(f"training loss is {row['train_loss']} at epoch {epoch + 1}; fix: check the "
                              "inputs (a non-finite value in the data or the normaliser) or lower the "
                              "learning rate")
        if val_xy is not None:
            row["val_loss"] = _loss_on(model, Xv, Yv, max(batch_size, 64), amp, dev)
            if row["val_loss"] < best_val:
                best_val, best_epoch = row["val_loss"], epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        history.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train=f"{row['train_loss']:.4g}", val=f"{row['val_loss']:.4g}")
        if resume_path is not None:
            st = {"fingerprint": fingerprint, "epoch": epoch + 1, "history": history,
                  "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "optimizer": opt.state_dict(), "rng": gen.get_state(),
                  "best_val": best_val, "best_epoch": best_epoch, "best_state": best_state}
            with atomic_path(resume_path) as tmp:
                torch.save(st, tmp)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, history)
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
        log.info("best validation loss %.4g at epoch %d", best_val, best_epoch)
    model.eval()
    if resume_path is not None and resume_path.exists():
        resume_path.unlink()
    return history


# ------------------------------------------------------------------------- base job
def train_base(data_path, model_path, metrics_path, history_path, *, network_cfg: dict,
               training_cfg: dict, device, resume_path=None, log=None) -> dict:
    """Fit the normaliser on the base train split, train, write checkpoint, metrics, history.

    Returns the metrics dict (also written to ``metrics_path``).
    """
    log = log or _log
    dev = torch.device(device)
    t0 = time.perf_counter()
    train = load_xy(data_path, "train")
    val = load_xy(data_path, "val")
    test = load_xy(data_path, "test")
    attrs = flow_attrs(data_path)
    norm = Normaliser.fit(*train)
    seed = int(training_cfg.get("seed", 0))
    torch.manual_seed(seed)
    model = SGSNet(NetConfig(**network_cfg))
    augment = bool(training_cfg.get("augment", False))
    group = symmetry_group(float(attrs.get("beta", 0.0)))
    log.info("base training on %s: %d train / %d val / %d test snapshots, net %s, augment %s (%d symmetries)",
             data_path, len(train[0]), len(val[0]), len(test[0]), model.cfg, augment, len(group))
    history = fit(model, norm, train, val, epochs=int(training_cfg["epochs"]),
                  batch_size=int(training_cfg["batch_size"]), lr=float(training_cfg["lr"]),
                  seed=seed, device=dev, augment=augment, amp=training_cfg.get("amp", "none"),
                  resume_path=resume_path, log=log, symmetries=group)
    seconds = time.perf_counter() - t0
    m_test = evaluate(model, norm, *test, dev)
    m_val = evaluate(model, norm, *val, dev)
    best = min(history, key=lambda r: r["val_loss"]) if history else {"epoch": 0}
    metrics = {"system": attrs.get("name", Path(data_path).stem),
               **{f"test_{k}": v for k, v in m_test.items()},
               **{f"val_{k}": v for k, v in m_val.items()},
               "epochs": int(training_cfg["epochs"]), "best_epoch": int(best["epoch"]),
               "seconds": seconds, "n_train": len(train[0]), "n_val": len(val[0]),
               "n_test": len(test[0]), "n_params": sum(p.numel() for p in model.parameters()),
               "device": str(dev), "threads": torch.get_num_threads(), "torch": torch.__version__}
    log.info("base metrics: %s", metrics)
    meta = {"system": metrics["system"], "training": dict(training_cfg),
            "network": dict(network_cfg), "metrics": metrics, "data": str(data_path)}
    save_checkpoint(model_path, model, norm, meta)
    write_json(metrics, metrics_path)
    with atomic_path(history_path) as tmp:
        pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss"]).to_csv(tmp, index=False)
    return metrics
