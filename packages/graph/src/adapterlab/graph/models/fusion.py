"""GraphAdapter's fusion block: r = W2 · SiLU(W1 · [Wg·z ; Wp·h]) (Eq. 8-10 of the paper).

z is the node's GNN output (size h_f), h an LLM hidden state (size d): a token state in
pre-training, the prompt embedding in fine-tuning. Wp: d->h_f, Wg: h_f->h_f, W1: 2h_f->10h_f,
W2: 10h_f->h_f, all bias-free. In pre-training ``extend`` (h_f->d, bias-free) maps r back to the
LLM's hidden size so that its frozen LM head can read it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FusionBlock"]


class FusionBlock(nn.Module):
    """Fuse a GNN node state with an LLM hidden state."""

    def __init__(self, llm_dim: int, hidden: int = 128, expansion: int = 10) -> None:
        super().__init__()
        self.prompt_lin = nn.Linear(llm_dim, hidden, bias=False)
        self.g_lin = nn.Linear(hidden, hidden, bias=False)
        self.fuse1 = nn.Linear(2 * hidden, expansion * hidden, bias=False)
        self.fuse2 = nn.Linear(expansion * hidden, hidden, bias=False)
        self.extend = nn.Linear(hidden, llm_dim, bias=False)
        self.act = nn.SiLU()

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``z`` (T, h_f) GNN states gathered per row, ``h`` (T, d) LLM states -> r (T, h_f)."""
        fused = torch.cat([self.g_lin(z), self.prompt_lin(h.to(z.dtype))], dim=-1)
        return self.fuse2(self.act(self.fuse1(fused)))

    def project(self, r: torch.Tensor) -> torch.Tensor:
        """r (T, h_f) -> (T, d), the LM head's input in pre-training."""
        return self.extend(r)
