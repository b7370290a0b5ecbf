"""adapterlab.llm: adapters for decoder LLMs.

- LLM-Adapters (Hu et al., EMNLP 2023): series / parallel bottleneck adapters, LoRA and prefix
  tuning through the core at the paper's placements; the Math10K / Commonsense170K format, the
  released prompt template and answer extraction.
- Trans-LoRA (Wang et al., NeurIPS 2024): synthetic-data generator, LoRA discriminator filter and
  distillation of a task adapter onto another base model.
- Generative Adapter (Chen et al., ICLR 2025): a generator that maps a context to low-rank deltas
  of the frozen LM in one forward pass.

Heavy modules load lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "load_examples": ".data.alpaca",
    "Example": ".data.alpaca",
    "make_arith": ".data.arith",
    "make_wordnet_mc": ".data.wordnet_mc",
    "eval_prompt": ".prompts",
    "train_text": ".prompts",
    "extract_number": ".answers",
    "extract_letter": ".answers",
    "extract_option": ".answers",
    "load_llm": ".models.llm",
    "LLMLoadError": ".models.llm",
    "GenerativeAdapter": ".models.generative_adapter",
    "METHODS": ".methods",
    "build_config": ".methods",
    "train_adapter": ".train",
    "AdaptConfig": ".config",
    "PipelineConfig": ".config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'adapterlab.llm' has no attribute {name!r}")
