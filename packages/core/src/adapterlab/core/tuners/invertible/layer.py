"""Invertible couplings (NICE, GLOW) and the wrappers that run them on the embeddings (forward)
and before the output embedding (inverse), as MAD-X (Pfeiffer et al., EMNLP 2020) and
AdapterHub's ``NICECouplingBlock`` / ``GLOWCouplingBlock``.

Both act on the last axis, split as ``d // 2`` and ``d - d // 2``; subnets are
``Linear(in, in // r) -> act -> Linear(in // r, out)`` with AdapterHub's key names (``F.0``,
``F.2``, ``G.*``; GLOW ``s1.*``, ``s2.*``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..base import AdapterControl
from ..bottleneck.layer import make_activation
from ..wrapping import AdapterCarrier, BaseLayerProxy

__all__ = [
    "Coupling",
    "EmbeddingCouplingWrapper",
    "GLOWCoupling",
    "InverseCouplingWrapper",
    "NICECoupling",
    "make_coupling",
]


def _subnet(dim_in: int, dim_out: int, reduction: float, activation: str) -> nn.Sequential:
    hidden = int(dim_in // reduction)
    net = nn.Sequential(
        nn.Linear(dim_in, hidden), make_activation(activation), nn.Linear(hidden, dim_out)
    )
    # first layer: AdapterHub's init_bert_weights (N(0, 0.02), zero bias); last layer zero, so a
    # fresh coupling is the identity (ours; AdapterHub's is N(0, 0.02) too)
    nn.init.normal_(net[0].weight, 0.0, 0.02)
    nn.init.zeros_(net[0].bias)
    nn.init.zeros_(net[2].weight)
    nn.init.zeros_(net[2].bias)
    return net


class Coupling(nn.Module):
    """An invertible map on the last axis: ``forward(x)`` and ``forward(y, rev=True)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.len1 = dim // 2
        self.len2 = dim - dim // 2

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., : self.len1], x[..., self.len1 :]

    def run(self, x: torch.Tensor, rev: bool) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor, rev: bool = False) -> torch.Tensor:
        dtype = next(self.parameters()).dtype
        return self.run(x.to(dtype), rev).to(x.dtype)


class NICECoupling(Coupling):
    """NICE additive coupling (Dinh et al. 2015): ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``;
    inverse ``x2 = y2 - G(y1)``, ``x1 = y1 - F(x2)``. Exact up to float rounding."""

    def __init__(self, dim: int, reduction: float = 2.0, activation: str = "relu") -> None:
        super().__init__(dim)
        self.F = _subnet(self.len2, self.len1, reduction, activation)
        self.G = _subnet(self.len1, self.len2, reduction, activation)

    def run(self, x: torch.Tensor, rev: bool) -> torch.Tensor:
        a, b = self.split(x)
        if not rev:
            y1 = a + self.F(b)
            return torch.cat((y1, b + self.G(y1)), -1)
        x2 = b - self.G(a)
        return torch.cat((a - self.F(x2), x2), -1)


class GLOWCoupling(Coupling):
    """GLOW affine coupling (FrEIA's ``GLOWCouplingBlock``, as AdapterHub's):
    ``y1 = e(s2(x2)) * x1 + t2(x2)``, ``y2 = e(s1(y1)) * x2 + t1(y1)`` with the soft clamp
    ``e(s) = exp(clamp * 0.636 * atan(s / clamp))``. Unlike AdapterHub's block (which slices the
    token axis of ``[B, T, D]`` inputs and never uses ``s2`` in its forward pass), this runs on
    the feature axis and is exactly invertible."""

    def __init__(
        self, dim: int, reduction: float = 2.0, activation: str = "relu", clamp: float = 5.0
    ) -> None:
        super().__init__(dim)
        self.clamp = clamp
        self.s1 = _subnet(self.len1, 2 * self.len2, reduction, activation)
        self.s2 = _subnet(self.len2, 2 * self.len1, reduction, activation)

    def e(self, s: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.clamp * 0.636 * torch.atan(s / self.clamp))

    def run(self, x: torch.Tensor, rev: bool) -> torch.Tensor:
        a, b = self.split(x)
        if not rev:
            r2 = self.s2(b)
            y1 = self.e(r2[..., : self.len1]) * a + r2[..., self.len1 :]
            r1 = self.s1(y1)
            y2 = self.e(r1[..., : self.len2]) * b + r1[..., self.len2 :]
            return torch.cat((y1, y2), -1)
        r1 = self.s1(a)
        x2 = (b - r1[..., self.len2 :]) / self.e(r1[..., : self.len2])
        r2 = self.s2(x2)
        x1 = (a - r2[..., self.len1 :]) / self.e(r2[..., : self.len1])
        return torch.cat((x1, x2), -1)


def make_coupling(kind: str, dim: int, reduction: float, activation: str) -> Coupling:
    """A fresh ``nice`` or ``glow`` coupling on ``dim`` features."""
    if kind == "nice":
        return NICECoupling(dim, reduction, activation)
    return GLOWCoupling(dim, reduction, activation)


def _first(wrapper: AdapterControl, couplings: Any) -> Coupling | None:
    """The coupling of the first running adapter (AdapterHub uses the first active one)."""
    for name in wrapper.running():
        if name in couplings:
            return couplings[name]
    return None


class EmbeddingCouplingWrapper(AdapterCarrier):
    """Wraps the embedding module: its output goes through the active coupling (forward)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.base_layer(*args, **kwargs)
        coupling = _first(self, self.adapters)
        if coupling is None:
            return out
        if isinstance(out, tuple):
            return (coupling(out[0]), *out[1:])
        return coupling(out)


class InverseCouplingWrapper(BaseLayerProxy, nn.Module, AdapterControl):
    """Wraps the output (vocabulary) embedding: its input goes through the active coupling's
    inverse. The couplings are the embedding wrapper's (referenced, not registered twice)."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.__dict__["adapters"] = {}
        self._init_control()

    def adapter_names(self) -> list[str]:
        return list(self.__dict__["adapters"])

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        coupling = _first(self, self.__dict__["adapters"])
        if coupling is not None:
            x = coupling(x, rev=True)
        return self.base_layer(x, *args, **kwargs)
