"""Training loop, metrics, checkpoints (save / load / resume) and the base training job.

- ONE loop, ``train_loop`` (Adam, mini-batch MSE between the network output and the
  normalised Pi, frozen parameters, non-finite-loss stop, validation, resume, amp,
  progress): ``fit`` feeds it whole-network batches, ``transfer.retrain_layer`` the cached
  inputs of layer L.
- ``fit`` keeps the state with the lowest validation loss (when validation data is given)
  and can resume an interrupted run from ``resume_path`` (model, optimiser, epoch, RNG,
  best state and history are saved atomically after every epoch and deleted at the end).
- A CPU run is repeatable: the only randomness inside ``fit`` (batch order, augmentation)
  comes from a ``torch.Generator`` seeded with ``seed``; the caller seeds the weight
  initialisation (``train_base`` does ``torch.manual_seed(seed)`` before building the net).
- ``amp``: ``bf16`` autocast and ``tf32`` matmul/cuDNN flags act on CUDA only; on the CPU the
  run is plain float32 (``none`` on CUDA also turns TF32 off, so it is strict float32;
  ``None``, the TL default, leaves the flags alone).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import TurbtlError
from .arrays import as_float32_tensor
from .data import SYMMETRIES, Normaliser, augment_batch, flow_attrs, load_xy, symmetry_group
from .io import atomic_path, json_default, write_csv, write_json
from .network import NetConfig, SGSNet
from .optim import adam
from .spectra import log_spectrum_error

__all__ = ["save_checkpoint", "load_checkpoint", "evaluate", "train_loop", "fit", "train_base",
           "precision_context", "preload_optimiser", "AMP_MODES"]

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
def precision_context(amp: str | None, device: torch.device):
    """Autocast / TF32 flags for ``amp`` on CUDA; a no-op on the CPU and for ``amp=None``
    (the flags as the process has them; on CUDA PyTorch's default lets cuDNN use TF32)."""
    if amp is not None and amp not in AMP_MODES:
        raise TurbtlError(f"training.amp must be one of {AMP_MODES}, got {amp!r}; fix config.yaml")
    if amp is None or device.type != "cuda":
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


_FIT_FIX = "check the inputs (a non-finite value in the data or the normaliser) or lower the learning rate"


def train_loop(model: SGSNet, params, n: int, batch, *, forward=None, epochs: int, batch_size: int,
               lr: float, seed: int, device, amp: str | None = "none", val=None, resume_path=None,
               fingerprint: dict | None = None, host_loss_sum: bool = False, progress: bool = True,
               log=None, on_epoch_end=None, context: str = "", fix: str = _FIT_FIX,
               keep_resume: bool = False) -> list[dict]:
    """The one training loop: ``fit`` and ``transfer.retrain_layer`` only prepare its data.

    - Freezing: Adam (:func:`turbtl.optim.adam`, one parameter group, ``lr``) on ``params``; every other parameter of
      ``model`` gets ``requires_grad=False`` and keeps it on return (a caller that lends the
      model out restores it, as ``retrain_layer`` does).
    - Batches: epoch e draws ``torch.randperm(n, generator=gen)`` from ONE ``torch.Generator``
      seeded with ``seed`` and cuts it into ``batch_size`` slices (the last one short);
      ``batch(idx, gen) -> (xb, yb)`` gives the normalised mini-batch of the sample indices
      ``idx`` (on ``device``); an augmenting ``batch`` draws from ``gen`` after the permutation.
      ``forward(xb)`` (default ``model``) is the normalised prediction: ``retrain_layer``
      passes cached inputs of layer L and ``forward_range(., L, depth)``.
    - Step: ``loss = mean((forward(xb).float() - yb)**2)``, zero_grad, backward, Adam step.
      Epoch ``train_loss = sum_b loss_b * |b| / n``.  The sum is a float32 tensor on the
      device (no host sync per step on CUDA) or, with ``host_loss_sum``, a Python float64 sum
      of ``loss.item()`` (``retrain_layer``: its histories stay bit-identical to those of the
      runs before the two loops were one; one sync per step is nothing on a small set).
    - A non-finite epoch loss raises ``TurbtlError("{context}training loss is ... at epoch e;
      fix: {fix}")``.
    - ``val``: NORMALISED ``(X, Y)`` on ``device``: ``val_loss`` per epoch (full forward), the
      state of the lowest one is loaded at the end.
    - ``resume_path``: model, optimiser, epoch, RNG, best state and history are saved
      atomically after every epoch and resumed when the fingerprint (epochs, batch_size, lr,
      seed, the caller's ``fingerprint`` keys, n, number of trained weights) matches; the
      file is deleted at the end (``keep_resume``: left for the caller to delete once its own
      outputs are written, as ``train_base`` does, so that a kill between the last epoch and
      those outputs does not restart the training).  ``on_epoch_end(epoch, history)`` runs
      after that save.
    - ``amp``: :func:`precision_context` around every forward; ``None`` leaves the precision
      flags as the process has them (``retrain_layer``'s default: TL has no amp setting).

    History rows: ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without ``val``).
    The model is left in eval mode.
    """
    log = log or _log
    dev = torch.device(device)
    forward = model if forward is None else forward
    params = list(params)
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    opt = adam(params, lr, dev)
    if n == 0:
        raise TurbtlError(f"{context}no training samples; fix: check the data split in config.yaml")

    gen = torch.Generator().manual_seed(int(seed))
    fingerprint = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
                   "seed": int(seed), **(fingerprint or {}), "n_train": int(n),
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
        # summed on the device: no host sync per step on CUDA (host_loss_sum: float64 on the host)
        tot = 0.0 if host_loss_sum else torch.zeros((), device=dev)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size].to(dev)
            xb, yb = batch(idx, gen)
            with precision_context(amp, dev):
                pred = forward(xb)
            loss = torch.mean((pred.float() - yb) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if host_loss_sum:
                tot += loss.item() * len(idx)
            else:
                tot += loss.detach() * len(idx)
        row = {"epoch": epoch + 1, "train_loss": float(tot) / n, "val_loss": math.nan}
        if not math.isfinite(row["train_loss"]):
            raise TurbtlError(f"{context}training loss is {row['train_loss']} at epoch {epoch + 1}; fix: {fix}")
        if val is not None:
            row["val_loss"] = _loss_on(model, val[0], val[1], max(batch_size, 64), amp, dev)
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
    if resume_path is not None and resume_path.exists() and not keep_resume:
        resume_path.unlink()
    return history


def _data_digest(*arrays) -> str:
    """A content hash of the training (and validation) arrays, for the resume fingerprint:
    a rerun on other data (e.g. after a filter change) must not resume on the old epochs."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def fit(model: SGSNet, norm: Normaliser, train_xy, val_xy=None, *, epochs: int, batch_size: int,
        lr: float, seed: int, device, params=None, augment: bool = False, amp: str = "none",
        resume_path=None, progress: bool = True, log=None, symmetries=SYMMETRIES,
        on_epoch_end=None, keep_resume: bool = False) -> list[dict]:
    """Train ``model`` in place (Adam, MSE on normalised data) with :func:`train_loop`; return
    the history.

    ``train_xy``/``val_xy``: physical ``(X, Y)`` arrays, moved to ``device`` and normalised
    there once.  ``params``: the parameters to train (default: all); every other parameter of
    the model gets ``requires_grad=False``.  ``augment``: random symmetry (``symmetries``, see
    ``turbtl.data.symmetry_group``) per sample, applied to the physical fields before
    normalisation.  With ``val_xy`` the state of the lowest validation loss is loaded at the
    end.  ``on_epoch_end(epoch, history)`` is called after each epoch's resume state is saved
    (tests use it to simulate a kill).  The resume fingerprint also holds ``augment``,
    ``amp``, the symmetry group, the network's configuration and a hash of the training and
    validation data, so that a resume file of another run is never used.  History rows:
    ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without validation).
    """
    dev = torch.device(device)
    model.to(dev)
    params = list(model.parameters()) if params is None else list(params)
    X, Y = as_float32_tensor(train_xy[0]).to(dev), as_float32_tensor(train_xy[1]).to(dev)
    if augment:
        def batch(idx, gen):
            xb, yb = augment_batch(X[idx], Y[idx], gen, symmetries)
            return norm.x(xb), norm.y(yb)
    else:
        Xn, Yn = norm.x(X), norm.y(Y)

        def batch(idx, gen):
            return Xn[idx], Yn[idx]
    val = None
    if val_xy is not None:
        val = norm.x(as_float32_tensor(val_xy[0])).to(dev), norm.y(as_float32_tensor(val_xy[1])).to(dev)
    fingerprint = {"augment": bool(augment), "amp": str(amp), "network": repr(getattr(model, "cfg", None))}
    if resume_path is not None:
        fingerprint["symmetries"] = repr([tuple(g) for g in symmetries]) if augment else None
        fingerprint["data"] = _data_digest(train_xy[0], train_xy[1], *(val_xy if val_xy is not None else ()))
    return train_loop(model, params, len(X), batch, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                      device=dev, amp=amp, val=val, resume_path=resume_path,
                      fingerprint=fingerprint, progress=progress, log=log,
                      on_epoch_end=on_epoch_end, keep_resume=keep_resume)


def preload_optimiser(log=None, device="cpu") -> float:
    """Do the one-off import that a process's first ``torch.optim`` optimiser does lazily
    (``torch._dynamo``, through ``Optimizer.add_param_group``: 1-2 s with torch 2.13.0,
    depending on the load), and return its seconds (0 once done, and on the CPU, where the
    trainings use :class:`turbtl.optim.Adam`, which needs no such import).

    Every job that records the seconds of a training (the TL rows, the baselines, the probe)
    calls it before its first timer, so that ``seconds`` measures the training and not that
    import.  It belongs to the job's start-up, which the cost fraction leaves out of both sides.
    """
    if torch.device(device).type == "cpu" or "torch._dynamo" in sys.modules:
        return 0.0
    t0 = time.perf_counter()
    importlib.import_module("torch._dynamo")
    secs = time.perf_counter() - t0
    (log or _log).info("imported torch._dynamo for torch.optim in %.2f s (before any timer)", secs)
    return secs


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
                  resume_path=resume_path, log=log, symmetries=group, keep_resume=True)
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
    write_csv(pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss"]), history_path)
    if resume_path is not None and Path(resume_path).exists():  # only now: every output is written
        Path(resume_path).unlink()
    return metrics
