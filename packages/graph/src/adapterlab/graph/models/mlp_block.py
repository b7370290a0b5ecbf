"""GraphAdapter's ``MLPBlock``: the SAGE block's MLP with no propagation (a graph-free ablation).

z = SiLU(W3 · RMSNorm(W2 · SiLU(W1 · x)))
"""

from __future__ import annotations

import torch

from .sage_block import SAGEBlock

__all__ = ["MLPBlock"]


class MLPBlock(SAGEBlock):
    """Per-node MLP with the SAGE block's layers; ``edge_index`` is accepted and ignored (the
    original crashes: ``is_gnn``)."""

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.gnn1(self.norm(self.lin2(self.act(self.lin1(x))))))
