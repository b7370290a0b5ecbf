"""GraphAdapter's ``GATBlock`` ("GAT*"): 8-head scaled dot-product attention over neighbours.

    h = RMSNorm1(W2 · SiLU(W1 · x))
    h = Σ_j softmax_j(<A_l h_i, A_r h_j>_head / sqrt(h/8)) · (A_r h_j)     (j in N(i) ∪ {i})
    h = RMSNorm2(SiLU(W3 · h))
    h = (same attention with A_l', A_r')
    z = RMSNorm3(W4 · h)

The original crashes (``is_gnn`` is never defined); this one runs and attends to neighbours only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_remaining_self_loops, softmax

from .norm import RMSNorm

__all__ = ["GATBlock"]


class GATBlock(MessagePassing):
    """Two rounds of multi-head dot-product attention over neighbours (with self-loops)."""

    def __init__(self, in_dim: int, hidden: int = 128, heads: int = 8) -> None:
        super().__init__(aggr="sum")
        if hidden % heads:
            raise ValueError(f"GATBlock: hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads, self.head_dim = heads, hidden // heads
        self.lin1 = nn.Linear(in_dim, 2 * hidden, bias=False)
        self.lin2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.norm1, self.norm2, self.norm3 = RMSNorm(hidden), RMSNorm(hidden), RMSNorm(hidden)
        self.gnn1 = nn.Linear(hidden, hidden, bias=False)
        self.gnn2 = nn.Linear(hidden, hidden, bias=False)
        self.att_q = nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)])
        self.att_k = nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)])
        self.act = nn.SiLU()
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=x.size(0))
        h = self.norm1(self.lin2(self.act(self.lin1(x))))
        h = self.propagate(edge_index, x=h, layer=0)
        h = self.norm2(self.act(self.gnn1(h)))
        h = self.propagate(edge_index, x=h, layer=1)
        return self.norm3(self.gnn2(h))

    def message(
        self,
        x_i: torch.Tensor,
        x_j: torch.Tensor,
        index: torch.Tensor,
        ptr: torch.Tensor | None,
        size_i: int | None,
        layer: int,
    ) -> torch.Tensor:
        q = self.att_q[layer](x_i).view(-1, self.heads, self.head_dim)
        v = self.att_k[layer](x_j).view(-1, self.heads, self.head_dim)
        alpha = softmax((q * v).sum(-1) * self.scale, index, ptr, size_i)
        return (v * alpha.unsqueeze(-1)).reshape(-1, self.heads * self.head_dim)
