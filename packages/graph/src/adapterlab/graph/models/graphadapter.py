"""GraphAdapter (Huang et al., WWW 2024, "Can GNN be Good Adapter for LLMs?"): a GNN plus a
fusion block on a frozen LLM, and the two models it trains (pre-training, classification)."""

from __future__ import annotations

import torch
from torch import nn

from .fusion import FusionBlock
from .gat_block import GATBlock
from .mlp_block import MLPBlock
from .sage_block import SAGEBlock

__all__ = [
    "GNN_BLOCKS",
    "GraphAdapter",
    "GraphAdapterClassifier",
    "GraphAdapterPretrainer",
]

GNN_BLOCKS = {"sage": SAGEBlock, "gat": GATBlock, "mlp": MLPBlock}


class GraphAdapter(nn.Module):
    """GNN over LLM node features + fusion with an LLM hidden state (the trainable adapter)."""

    def __init__(self, llm_dim: int, hidden: int = 128, gnn: str = "sage") -> None:
        super().__init__()
        if gnn not in GNN_BLOCKS:
            raise ValueError(f"gnn must be one of {sorted(GNN_BLOCKS)}, got {gnn!r}")
        self.gnn = GNN_BLOCKS[gnn](llm_dim, hidden)
        self.fusion = FusionBlock(llm_dim, hidden)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        rows: torch.Tensor,
        states: torch.Tensor,
    ) -> torch.Tensor:
        """``x`` (N, d) node features of a (sub)graph, ``rows`` (T,) the node (position in x) of
        each LLM state in ``states`` (T, d) -> r (T, h_f)."""
        z = self.gnn(x, edge_index)
        return self.fusion(z[rows], states)


class GraphAdapterPretrainer(nn.Module):
    """Pre-training model: the adapter plus the LLM's frozen LM head (residual learning)."""

    def __init__(self, adapter: GraphAdapter, lm_head: nn.Linear) -> None:
        super().__init__()
        self.adapter = adapter
        self.lm_head = lm_head.requires_grad_(False)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, rows: torch.Tensor, states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (LM-head logits of the adapter branch, LM-head logits of the LLM alone)."""
        r = self.adapter(x, edge_index, rows, states)
        adapted = self.lm_head(self.adapter.fusion.project(r))
        with torch.no_grad():
            original = self.lm_head(states.to(adapted.dtype))
        return adapted, original


class GraphAdapterClassifier(nn.Module):
    """Fine-tuning model: adapter fed with prompt embeddings, plus Linear(h_f -> classes)."""

    def __init__(self, adapter: GraphAdapter, num_classes: int) -> None:
        super().__init__()
        self.adapter = adapter
        hidden = adapter.fusion.fuse2.out_features
        self.head = nn.Linear(hidden, num_classes)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, rows: torch.Tensor, prompts: torch.Tensor
    ) -> torch.Tensor:
        """Class logits of the nodes at ``rows`` (prompt embeddings ``prompts``, one per row)."""
        return self.head(self.adapter(x, edge_index, rows, prompts))
