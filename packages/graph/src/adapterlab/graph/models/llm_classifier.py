"""The LoRA baseline's model: the causal LM read at the prompt's last token, plus a linear head."""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["LLMClassifier", "lora_targets"]


class LLMClassifier(nn.Module):
    """Class logits from the final hidden state at each sequence's last real token."""

    def __init__(self, llm: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.llm = llm
        self.head = nn.Linear(int(llm.get_output_embeddings().in_features), num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.llm.base_model(input_ids=input_ids, attention_mask=attention_mask)
        last = attention_mask.sum(1) - 1
        states = hidden.last_hidden_state[torch.arange(len(last), device=last.device), last]
        return self.head(states.float())


def lora_targets(model: nn.Module, last_layers: int) -> list[str]:
    """Attention query/value projections (Llama ``q_proj``/``v_proj``, GPT-2 ``c_attn``) of the
    last ``last_layers`` transformer layers."""
    pattern = re.compile(r".*\.(\d+)\.(self_attn\.(q_proj|v_proj)|attn\.c_attn)$")
    found = [
        (int(m.group(1)), name) for name, _ in model.named_modules() if (m := pattern.match(name))
    ]
    if not found:
        raise ValueError("no attention projections (q_proj/v_proj or c_attn) found for LoRA")
    layers = sorted({i for i, _ in found})[-last_layers:]
    return [name for i, name in found if i in layers]
