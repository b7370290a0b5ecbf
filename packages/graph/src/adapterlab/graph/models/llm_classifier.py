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
    """LoRA's query/value projections from the core's per-architecture table (the ``qv`` slot:
    Llama/Qwen2 ``q_proj``/``v_proj``, GPT-2 ``c_attn``, GPT-NeoX ``query_key_value``, GPT-J
    ``q_proj``/``v_proj``) of the last ``last_layers`` transformer layers (0: all)."""
    from adapterlab.core import detect_architectures

    specs = detect_architectures(model)
    if not specs:
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ValueError(
            f"LoRA baseline: no known attention projections for model type {model_type!r}; "
            "skip the baseline with --lora_nodes 0"
        )
    pattern = re.compile("|".join(f"(?:{spec.slots['qv']})" for spec in specs))
    layer = re.compile(r"\.(\d+)\.")
    found = []
    for name, module in model.named_modules():
        if pattern.fullmatch(name) and isinstance(module, nn.Module) and (m := layer.search(name)):
            found.append((int(m.group(1)), name))
    if not found:
        raise ValueError(f"LoRA baseline: the {specs[0].name} query/value projections are missing")
    layers = sorted({i for i, _ in found})
    keep = set(layers[-last_layers:] if last_layers > 0 else layers)
    return [name for i, name in found if i in keep]
