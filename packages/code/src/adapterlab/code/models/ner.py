"""The token-type classification model: an encoder (with NER adapters) and a linear head."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TokenTypeModel"]


class TokenTypeModel(nn.Module):
    """``logits = ttc_head(encoder(input_ids).last_hidden_state)``: one score per token type.

    The NER adapter is added to ``encoder`` with the core (``add_adapter``); the head is its
    ``modules_to_save`` (``ttc_head``), so both train and the backbone stays frozen.
    """

    def __init__(self, encoder: nn.Module, num_types: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.ttc_head = nn.Linear(encoder.config.hidden_size, num_types)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        return self.ttc_head(self.dropout(hidden))
