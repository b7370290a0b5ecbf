"""Configs of ``adapterlab-text`` (each field's docstring is its ``--help``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LangAdaptConfig"]


@dataclass
class LangAdaptConfig:
    """Language adaptation: MLM-train each language adapter on WordNet text, then score held-out
    MLM loss and a downstream topic task, for every seed."""

    out: str = "runs/text-langadapt"
    """Output folder (one engine run directory per method, seed and stage; summary.json)."""
    data: str = ""
    """Folder holding WordNet's data.noun; empty: Debian's wordnet-base, fetched once."""
    model: str = "minilm"
    """Encoder: minilm (all-MiniLM-L6-v2, offline wheel), tiny (random, tests) or a local folder."""
    methods: list[str] = field(default_factory=lambda: ["seq_bn", "seq_bn_inv", "lora"])
    """Language adapters to compare (seq_bn, seq_bn_inv, lora)."""
    seeds: str = "3"
    """A count (3 -> seeds 0,1,2) or a list (0,1,2): every method runs once per seed."""
    max_len: int = 32
    """Tokens per sentence."""
    mlm_train: int = 1200
    """Training sentences per corpus (WordNet KG sentences and gloss free text, mixed)."""
    mlm_eval: int = 192
    """Held-out sentences per corpus (val and test each)."""
    mlm_steps: int = 40
    """MLM optimiser steps per language adapter."""
    mlm_batch: int = 16
    mlm_lr: float = 1e-3
    """MLM learning rate (the same for every adapter)."""
    n_labels: int = 6
    """Topic classes: the most frequent WordNet lexicographer files."""
    task_train: int = 480
    """Topic-task training examples (balanced over the classes)."""
    task_test: int = 360
    """Topic-task test examples (held-out synsets)."""
    task_steps: int = 30
    task_batch: int = 16
    task_lr: float = 1e-3
    eval_batch: int = 64
    """Batch size of every evaluation."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    progress: bool = False
    """Progress bars."""

    def validate(self) -> None:
        for name in ("max_len", "mlm_train", "mlm_eval", "mlm_steps", "mlm_batch", "n_labels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.n_labels < 2:
            raise ValueError("n_labels must be at least 2")
        from .methods import METHODS

        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods: unknown {unknown}; choose from {sorted(METHODS)}")
