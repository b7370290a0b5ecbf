"""GraphAdapter's ``SAGEBlock`` (Huang et al., WWW 2024), exactly as the original computes it.

    h = RMSNorm(W2 · SiLU(W1 · x))          (Linear d->2h, SiLU, Linear 2h->h, RMSNorm)
    h = mean_{j in N(i) ∪ {i}} h_j
    h = SiLU(W3 · h)                        (Linear h->h)
    z = mean_{j in N(i) ∪ {i}} h_j

All linear layers are bias-free and there is no separate root weight (the self-loop plays that
role). The paper calls this a "2-layer GraphSAGE"; it is not PyG's ``SAGEConv``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_remaining_self_loops

from .norm import RMSNorm

__all__ = ["SAGEBlock"]


class SAGEBlock(MessagePassing):
    """Two mean-aggregations with self-loops around a bias-free MLP (GraphAdapter's default)."""

    def __init__(self, in_dim: int, hidden: int = 128) -> None:
        super().__init__(aggr="mean")
        self.lin1 = nn.Linear(in_dim, 2 * hidden, bias=False)
        self.lin2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.norm = RMSNorm(hidden)
        self.gnn1 = nn.Linear(hidden, hidden, bias=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x`` (N, d), ``edge_index`` (2, E) source->target without self-loops (added here)."""
        edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=x.size(0))
        h = self.norm(self.lin2(self.act(self.lin1(x))))
        h = self.propagate(edge_index, x=h)
        h = self.act(self.gnn1(h))
        return self.propagate(edge_index, x=h)

    def message(self, x_j: torch.Tensor) -> torch.Tensor:
        return x_j
