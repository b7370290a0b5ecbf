"""adapterlab.vl: p-adapter (p-Laplacian adaptation, Wu et al. AAAI 2024) and PETL baselines
for BLIP on VQA, visual entailment and captioning.

Public API (heavy modules load lazily)::

    from adapterlab.vl import load_dataset, vqa_accuracy, cider, load_blip, apply_method, run_sweep
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_dataset": "data",
    "synthesize": "data",
    "SynthSpec": "data",
    "DataError": "data",
    "vqa_accuracy": "metrics",
    "vqa_score": "metrics",
    "bleu4": "metrics",
    "cider": "metrics",
    "snli_ve_accuracy": "metrics",
    "load_blip": "models",
    "tiny_backbone": "models",
    "vqa_from_captioner": "models",
    "ModelLoadError": "models",
    "METHODS": "methods",
    "apply_method": "methods",
    "adapter_config": "methods",
    "train": "train",
    "evaluate_run": "train",
    "run_sweep": "pipeline",
    "pretrain_tiny": "pipeline",
    "question_prior": "baselines",
    "linear_head_baseline": "baselines",
    "RunConfig": "config",
    "SweepConfig": "config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'adapterlab.vl' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
