"""adapterlab.graph: GraphAdapter (Huang et al., WWW 2024), a GNN adapter on a frozen LLM for
text-attributed graphs, trained with the adapterlab core engine.

Quick start::

    adapterlab-graph run-all            # embedded WordNet graph + SmolLM2-135M, offline

Public API (imported lazily)::

    from adapterlab.graph import load_dataset, build_cache, GraphAdapter, run_all
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_dataset": ".data",
    "synthesize_tag": ".data",
    "ensure_wordnet": ".data",
    "DataFormatError": ".data",
    "CacheSpec": ".cache",
    "LLMCache": ".cache",
    "build_cache": ".cache",
    "GraphAdapter": ".models.graphadapter",
    "GraphAdapterClassifier": ".models.graphadapter",
    "GraphAdapterPretrainer": ".models.graphadapter",
    "SAGEBlock": ".models.sage_block",
    "GATBlock": ".models.gat_block",
    "MLPBlock": ".models.mlp_block",
    "FusionBlock": ".models.fusion",
    "load_llm": ".models.llm",
    "residual_loss": ".task",
    "pretrain": ".train",
    "finetune": ".train",
    "run_all": ".pipeline",
    "RunAllConfig": ".config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'adapterlab.graph' has no attribute {name!r}")
