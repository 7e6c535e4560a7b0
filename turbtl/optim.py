"""The optimiser of every training: Adam.

On the CPU, :class:`Adam` is the arithmetic of ``torch.optim.Adam`` with its defaults there
(the single-tensor update: no foreach or fused kernels on the CPU, no weight decay, no amsgrad),
written out: the same parameters bit for bit (tests/test_training.py), without what
``torch.optim`` costs a process on its first optimiser, the lazy import of ``torch._dynamo``
(1-2 s, measured in benchmarks/README.md), which every training job of the pipeline paid.  On a
GPU :func:`adam` gives ``torch.optim.Adam`` itself (its foreach kernels; the import is small
next to a GPU job's start-up).  The state dict has ``torch.optim.Adam``'s layout, so a resume
file of one loads into the other.
"""
from __future__ import annotations

import torch

__all__ = ["Adam", "adam"]


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps)``'s single-tensor step (module docstring)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.state: dict[int, dict] = {}  # by the parameter's index, created at its first step

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            st = self.state.get(i)
            if st is None:
                st = self.state[i] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                      "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                      "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
            st["step"] += 1
            st["exp_avg"].lerp_(grad, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = st["step"].item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = self.lr / bias_correction1
            denom = (st["exp_avg_sq"].sqrt() / bias_correction2 ** 0.5).add_(self.eps)
            p.addcdiv_(st["exp_avg"], denom, value=-step_size)

    def state_dict(self) -> dict:
        return {"state": {i: dict(s) for i, s in self.state.items()},
                "param_groups": [{"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0,
                                  "amsgrad": False, "maximize": False, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, sd: dict) -> None:
        g = sd["param_groups"][0]
        if len(g["params"]) != len(self.params):
            raise ValueError("the optimiser state holds another number of parameters")
        self.lr, self.betas, self.eps = float(g["lr"]), tuple(map(float, g["betas"])), float(g["eps"])
        self.state = {int(i): {"step": torch.as_tensor(s["step"], dtype=torch.float32).clone(),
                               "exp_avg": s["exp_avg"].to(self.params[int(i)].device).clone(),
                               "exp_avg_sq": s["exp_avg_sq"].to(self.params[int(i)].device).clone()}
                      for i, s in sd["state"].items()}


def adam(params, lr: float, device) -> Adam | torch.optim.Adam:
    """The Adam of a training on ``device``: :class:`Adam` on the CPU, ``torch.optim.Adam`` elsewhere."""
    if torch.device(device).type == "cpu":
        return Adam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)
