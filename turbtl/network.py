"""The CNN closure: a plain stack of convolutions mapping filtered (psi, omega) to Pi.

Layer numbering is 1-based everywhere in turbtl (configs, tables, figures):
layer ``i`` is ``model.layers[i - 1]``.  ReLU follows layers 1 .. depth-1; the last layer
is linear.  No pooling, no normalisation layers, stride 1, 'same' padding (circular by
default because the domain is periodic; 'zeros' as in the reference study).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["NetConfig", "SGSNet"]

PADDING_MODES = ("circular", "zeros")


@dataclass(frozen=True)
class NetConfig:
    depth: int = 11
    channels: int = 64
    kernel_size: int = 5
    padding: str = "circular"
    in_channels: int = 2
    out_channels: int = 1

    def __post_init__(self):
        if self.depth < 2:
            raise ValueError("network.depth must be >= 2")
        if self.kernel_size % 2 != 1:
            raise ValueError("network.kernel_size must be odd so that 'same' padding is symmetric")
        if self.padding not in PADDING_MODES:
            raise ValueError(f"network.padding must be one of {PADDING_MODES}, got {self.padding!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SGSNet(nn.Module):
    def __init__(self, cfg: NetConfig | None = None, **kw):
        super().__init__()
        self.cfg = cfg if cfg is not None else NetConfig(**kw)
        c = self.cfg
        widths = [c.in_channels] + [c.channels] * (c.depth - 1) + [c.out_channels]
        self.layers = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], c.kernel_size, padding=c.kernel_size // 2,
                      padding_mode=c.padding)
            for i in range(c.depth)
        )

    @property
    def depth(self) -> int:
        return len(self.layers)

    def layer(self, i: int) -> nn.Conv2d:
        """Layer ``i`` (1-based)."""
        if not 1 <= i <= self.depth:
            raise IndexError(f"layer {i} out of range 1..{self.depth}")
        return self.layers[i - 1]

    def _act(self, i0: int, h: torch.Tensor) -> torch.Tensor:
        # i0 is 0-based; ReLU after every layer but the last
        return torch.relu(h) if i0 < self.depth - 1 else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_range(x, 1, self.depth)

    def forward_range(self, h: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Apply layers ``first .. last`` (1-based, inclusive, activation included) to ``h``.

        ``forward_range(x, 1, L-1)`` is the (post-activation) input of layer L, so that
        ``forward_range(forward_range(x, 1, L-1), L, depth) == forward(x)``.
        ``first > last`` returns ``h`` unchanged.
        """
        for i0 in range(first - 1, last):
            h = self._act(i0, self.layers[i0](h))
        return h

    @torch.no_grad()
    def activations(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(pre-activation, post-activation) output of every layer for input ``x``."""
        out = []
        h = x
        for i0, conv in enumerate(self.layers):
            pre = conv(h)
            h = self._act(i0, pre)
            out.append((pre, h))
        return out

    def layer_parameters(self, i: int) -> list[nn.Parameter]:
        return list(self.layer(i).parameters())
