"""The methods of a GraphAdapter run: paper name -> what trains, how it is set up in the core.

Every model trains through the core Trainer with an adapter added by
``adapterlab.core.add_adapter``: side networks on frozen features (GraphAdapter, the GNN/MLP
baselines) as ``LinearProbeConfig(modules_to_save=...)``, LoRA as the core's ``LoraConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METHODS", "MethodSpec"]


@dataclass(frozen=True)
class MethodSpec:
    """One row of the comparison."""

    title: str
    """Name in the summary table."""
    trains: str
    """What trains (the rest is frozen)."""
    preset: str
    """Core adapter method used to mark the trainable part."""
    lr_field: str
    """RunAllConfig field with its learning rate."""


METHODS: dict[str, MethodSpec] = {
    "graphadapter": MethodSpec(
        "GraphAdapter (pre-trained)", "GNN + fusion + head", "linear_probe", "finetune_lr"
    ),
    "graphadapter_nopretrain": MethodSpec(
        "GraphAdapter w/o pre-training", "GNN + fusion + head", "linear_probe", "finetune_lr"
    ),
    "graphsage": MethodSpec(
        "GraphSAGE on LLM features", "2 SAGEConv", "linear_probe", "baseline_lrs"
    ),
    "mlp": MethodSpec("MLP on LLM features", "2-layer MLP", "linear_probe", "baseline_lrs"),
    "lora": MethodSpec("LoRA on the LLM + head", "LoRA q/v + head", "lora", "lora_lrs"),
    "tfidf": MethodSpec(
        "TF-IDF + logistic regression (full texts)", "logistic regression", "none", "tfidf_cs"
    ),
}
