"""The one owner of the array conversions every stage needs (numpy <-> torch)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_float32_tensor", "as_float64_numpy"]


def as_float32_tensor(a) -> torch.Tensor:
    """A float32 tensor of ``a`` (numpy array, list or tensor; a tensor keeps its device and is
    detached from any graph)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(torch.float32)
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


def as_float64_numpy(a) -> np.ndarray:
    """A float64 numpy array of ``a`` (a tensor is detached and moved to the CPU)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)
