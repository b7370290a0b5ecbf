"""adapterlab.code: NER adapters for code models, trained with token type classification (TTC)
on syntax-tree token types, and the CodeBERTER evaluation on CodeXGLUE code summarization and
refinement (Saberi & Fard, "Model-Agnostic Syntactical Information for Pre-Trained Programming
Language Models", MSR 2023, arXiv 2303.06233).

Heavy modules load lazily: ``from adapterlab.code import train_ttc`` imports torch on use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TOKEN_TYPES": ".data.token_types",
    "parse_leaves": ".data.token_types",
    "label_offsets": ".data.align",
    "char_type_map": ".data.align",
    "build_ttc_dataset": ".data.ttc",
    "TTCSettings": ".data.ttc",
    "find_sources": ".data.sources",
    "load_code_to_text": ".data.codexglue",
    "load_refinement": ".data.codexglue",
    "summarization_bleu": ".bleu",
    "smoothed_bleu4": ".bleu",
    "corpus_bleu": ".bleu",
    "load_backbone": ".models.backbone",
    "ModelLoadError": ".models.backbone",
    "TokenTypeModel": ".models.ner",
    "Seq2Seq": ".models.seq2seq",
    "VARIANTS": ".methods",
    "train_ttc": ".train",
    "train_task": ".train",
    "prepare": ".train",
    "evaluate_run": ".train",
    "run_all": ".pipeline",
    "TTCConfig": ".config",
    "TaskConfig": ".config",
    "PrepareConfig": ".config",
    "PipelineConfig": ".config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'adapterlab.code' has no attribute {name!r}")
