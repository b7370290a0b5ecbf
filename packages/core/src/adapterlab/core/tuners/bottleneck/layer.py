"""Bottleneck adapter layer (Houlsby et al. 2019, Pfeiffer et al. 2021, He et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base import SublayerAdapter

__all__ = ["BottleneckAdapter", "make_activation"]


def make_activation(name: str) -> nn.Module:
    """The activation module for a config name."""
    return {
        "relu": nn.ReLU(),
        "gelu": nn.GELU(),
        "swish": nn.SiLU(),
        "silu": nn.SiLU(),
        "tanh": nn.Tanh(),
        "identity": nn.Identity(),
    }[name]


class BottleneckAdapter(SublayerAdapter):
    """``A(h) = up(dropout(act(down(h)))) * scaling``, placed sequentially or in parallel.

    - sequential: ``y' = y + A(y)`` (``A(y)`` alone when ``residual=False``);
    - parallel:   ``y' = y + A(x)`` (``+ x`` when ``residual=True``), ``x`` the sublayer input;
    - at a LayerNorm (:meth:`bind_norm`, AdapterHub's ``seq_bn``): ``LN(z + A(LN(z)))``.

    ``down`` is Kaiming-uniform initialised and ``up`` is zero, so a fresh adapter with the
    residual on changes nothing (He et al.'s "mam_adapter" init).
    """

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        *,
        activation: str = "relu",
        placement: str = "sequential",
        scaling: float = 1.0,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.placement = placement
        self.scaling = scaling
        self.residual = residual
        self.down = nn.Linear(dim, bottleneck)
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def bind_norm(self, norm: nn.Module) -> None:
        """Place the adapter at ``norm`` (AdapterHub's ``seq_bn``): ``forward(z, LN(z))`` returns
        ``LN(z + A(LN(z)))``. ``norm`` stays the model's module (not saved with the adapter)."""
        self.__dict__["_norm"] = norm

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        """The bottleneck branch ``A(h)``."""
        z = self.up(self.dropout(self.act(self.down(h.to(self.down.weight.dtype)))))
        return (z * self.scaling).to(h.dtype)

    def stack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """At a LayerNorm the next stacked adapter continues from ``z' = z + A(LN(z))``: it reads
        ``LN(z')`` and its change joins the first one's before the LayerNorm, as in AdapterHub's
        ``Stack(a, b)`` for ``seq_bn``: ``LN(z'' )``, ``z'' = z' + B(LN(z'))``."""
        norm = self.__dict__.get("_norm")
        if norm is None:
            return x, self(x, y)
        z = x + self.adapt(y)
        return z, norm(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        norm = self.__dict__.get("_norm")
        if norm is not None:  # x = z (the LayerNorm input h + r), y = LN(z)
            return norm(x + self.adapt(y))
        if self.placement == "sequential":
            a = self.adapt(y)
            return y + a if self.residual else a
        out = y + self.adapt(x)
        return out + x if self.residual else out
