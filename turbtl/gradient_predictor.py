"""The gradient predictor: the share of the target loss that one optimal gradient step on a
layer removes, in the Gauss-Newton model.

Definition and the reasons are in the module doc of :mod:`turbtl.predict`.  It lives here
because it is the one predictor that differentiates through the network (a backward pass and
a forward-mode Jacobian-vector product per layer).
"""
from __future__ import annotations

import math

import torch

__all__ = ["gradient_scores"]


def gradient_scores(model, x_target: torch.Tensor, y_target: torch.Tensor, layers, *,
                    batch_size: int = 16):
    """Share of the target loss that one optimal gradient step on layer L removes (module doc).

    ``ell`` is the MSE over all samples and grid points of the small set (mini-batches are
    accumulated with weights B_i / N: the full-set loss), ``g_L`` its gradient w.r.t. layer
    L's weight and bias and ``J_L g_L`` the change of the output along ``g_L`` (a forward-mode
    Jacobian-vector product)::

        score(L) = (g_L . g_L)^2 / (2 g_L^T H_L g_L) / ell,   H_L = (2/M) J_L^T J_L

    Returns ``(scores, relative {L: ||g||/||theta||}, rms {L: ||g||/sqrt(n_L)})``.  The model's
    parameters, gradients and ``requires_grad`` flags are left as they were.
    """
    from torch.func import functional_call, jvp

    layers = [int(L) for L in layers]
    params = list(model.parameters())
    named = dict(model.named_parameters())
    flags = [p.requires_grad for p in params]
    dev = params[0].device
    dtype = params[0].dtype
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    for p in params:
        p.requires_grad_(True)
    n = x_target.shape[0]
    m_total = float(y_target[0].numel()) * n  # M: the number of terms of the mean
    batches = [(x_target[i:i + batch_size].to(dev, dtype), y_target[i:i + batch_size].to(dev, dtype))
               for i in range(0, n, batch_size)]
    try:
        ell = 0.0
        for xb, yb in batches:
            loss = torch.mean((model(xb) - yb) ** 2) * (xb.shape[0] / n)
            loss.backward()
            ell += float(loss.detach())
        frozen = {k: v.detach() for k, v in named.items()}
        scores, rel, rms = {}, {}, {}
        for L in layers:
            ids = {id(p) for p in model.layer_parameters(L)}
            keys = [k for k, p in named.items() if id(p) in ids]
            tang = {k: named[k].grad.detach().clone() for k in keys}
            g2 = sum(float((t.double() ** 2).sum()) for t in tang.values())
            w2 = sum(float((named[k].detach().double() ** 2).sum()) for k in keys)
            npar = sum(named[k].numel() for k in keys)
            jg2 = 0.0
            with torch.no_grad():
                for xb, _ in batches:
                    def f(p, xb=xb):
                        return functional_call(model, {**frozen, **p}, (xb,))
                    _, jv = jvp(f, ({k: frozen[k] for k in keys},), (tang,))
                    jg2 += float((jv.double() ** 2).sum())
            curv = 2.0 / m_total * jg2  # g^T H g
            scores[L] = (g2 * g2 / (2.0 * curv) / ell) if curv > 0 and ell > 0 else 0.0
            rel[L] = math.sqrt(g2) / math.sqrt(w2) if w2 > 0 else float("inf")
            rms[L] = math.sqrt(g2) / math.sqrt(npar)
    finally:
        model.zero_grad(set_to_none=True)
        for p, fl in zip(params, flags):
            p.requires_grad_(fl)
        model.train(was_training)
    return scores, rel, rms
