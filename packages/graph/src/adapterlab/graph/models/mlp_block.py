"""GraphAdapter's ``MLPBlock``: the SAGE block's MLP with no propagation (a graph-free ablation).

z = SiLU(W3 · RMSNorm(W2 · SiLU(W1 · x)))
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from .norm import RMSNorm

__all__ = ["MLPBlock"]


class MLPBlock(MessagePassing):
    """Per-node MLP; ``edge_index`` is accepted and ignored (the original crashes: ``is_gnn``)."""

    def __init__(self, in_dim: int, hidden: int = 128) -> None:
        super().__init__(aggr="mean")
        self.lin1 = nn.Linear(in_dim, 2 * hidden, bias=False)
        self.lin2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.norm = RMSNorm(hidden)
        self.gnn1 = nn.Linear(hidden, hidden, bias=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.gnn1(self.norm(self.lin2(self.act(self.lin1(x))))))
