"""Baselines on frozen LLM node features: GraphSAGE (PyG's ``SAGEConv``) and an MLP."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import SAGEConv

__all__ = ["FeatureMLP", "GraphSAGE"]


class GraphSAGE(nn.Module):
    """Two ``SAGEConv`` layers (mean aggregation) with ReLU and dropout."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = SAGEConv(in_dim, hidden)
        self.conv2 = SAGEConv(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, rows: torch.Tensor, *_
    ) -> torch.Tensor:
        h = self.dropout(torch.relu(self.conv1(self.dropout(x), edge_index)))
        return self.conv2(h, edge_index)[rows]


class FeatureMLP(nn.Module):
    """Two-layer MLP on each node's own features (no graph)."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, rows: torch.Tensor, *_
    ) -> torch.Tensor:
        return self.net(x[rows])
