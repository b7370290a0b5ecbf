"""MixDA layer: K domain adapters in parallel with an FFN (output) layer, mixed by a softmax gate.

Diao et al., "Mixture-of-Domain-Adapters: Decoupling and Injecting Domain Knowledge to Pre-trained
Language Models' Memories" (ACL 2023), code: tianyang-x/Mixture-of-Domain-Adapters
(``src/models/mixda_adapter.py``; ``MoeGating`` and ``RobertaOutput`` in
``src/models/transformers/modeling_roberta.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base import SublayerAdapter
from ..bottleneck.layer import make_activation

__all__ = ["DomainAdapter", "MixDAGate", "MixDAAdapter", "GATE_POOLS"]

GATE_POOLS = ("last", "mean", "token")


class DomainAdapter(nn.Module):
    """``up(act(down(x)))``: ``in -> bottleneck -> out``, GELU; Kaiming ``down``, zero ``up``
    (the authors' ``MixtureOfDomainAdapter``)."""

    def __init__(
        self, in_features: int, bottleneck: int, out_features: int, activation: str
    ) -> None:
        super().__init__()
        self.down = nn.Linear(in_features, bottleneck)
        self.act = make_activation(activation)
        self.up = nn.Linear(bottleneck, out_features)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class MixDAGate(nn.Module):
    """The authors' ``MoeGating``: an MLP ending in a softmax over ``num_outputs`` branches.

    ``Dropout -> Linear(in, hidden) -> [ReLU -> Dropout -> Linear(hidden, hidden)] x (layers-1)
    -> ReLU -> Dropout -> Linear(hidden, num_outputs) -> softmax``. ``pool`` picks what the gate
    reads from a ``[B, T, D]`` input: ``"last"`` the last position (the authors' ``x[:, -1]``;
    one weight vector per sequence), ``"mean"`` the mean over positions, ``"token"`` every
    position (per-token weights). 2-D inputs are gated per row.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        num_outputs: int,
        layers: int = 3,
        dropout: float = 0.2,
        pool: str = "last",
    ) -> None:
        super().__init__()
        if pool not in GATE_POOLS:
            raise ValueError(f"gate pool must be one of {GATE_POOLS}, got {pool!r}")
        if layers < 1:
            raise ValueError(f"gate layers must be >= 1, got {layers}")
        self.pool = pool
        mods: list[nn.Module] = [nn.Dropout(dropout), nn.Linear(in_features, hidden)]
        for _ in range(layers - 1):
            mods += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)]
        mods += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_outputs)]
        self.mlp = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mixing weights, ``[B, 1, K+1]`` (last/mean pool) or ``[..., K+1]`` (per token/row)."""
        if x.dim() == 3 and self.pool == "last":
            x = x[:, -1:]
        elif x.dim() == 3 and self.pool == "mean":
            x = x.mean(dim=1, keepdim=True)
        return torch.softmax(self.mlp(x), dim=-1)


class MixDAAdapter(SublayerAdapter):
    """``y' = sum_k g_k(x) * D_k(x) + g_K(x) * y``: K domain adapters ``D_k`` reading the layer
    input ``x`` next to the layer output ``y``, mixed with gate weights ``g`` (summing to 1).

    As the authors' ``RobertaOutput``: the stacked ``[D_1(x), ..., D_K(x), y]`` times the gate
    weights, the FFN output branch last. Set :attr:`record` to a list to capture, per forward,
    ``{"mixed", "original", "gate"}`` (used by the stage-1 preservation loss and for inspection).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        num_domains: int,
        bottleneck: int,
        activation: str = "gelu",
        gate_hidden: int = 768,
        gate_layers: int = 3,
        gate_dropout: float = 0.2,
        gate_pool: str = "last",
    ) -> None:
        super().__init__()
        self.num_domains = num_domains
        self.domain_adapters = nn.ModuleList(
            DomainAdapter(in_features, bottleneck, out_features, activation)
            for _ in range(num_domains)
        )
        self.gate = MixDAGate(
            in_features, gate_hidden, num_domains + 1, gate_layers, gate_dropout, gate_pool
        )
        self.record: list[dict[str, torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = self.gate(x).to(y.dtype)
        mixed = g[..., self.num_domains : self.num_domains + 1] * y
        for k, adapter in enumerate(self.domain_adapters):
            mixed = mixed + g[..., k : k + 1] * adapter(x)
        if self.record is not None:
            self.record.append({"mixed": mixed, "original": y, "gate": g})
        return mixed
