"""Invertible bottleneck config and presets (``seq_bn_inv``, ``double_seq_bn_inv``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import register_preset
from ..bottleneck.config import BottleneckConfig

__all__ = ["InvertibleBottleneckConfig"]


@dataclass
class InvertibleBottleneckConfig(BottleneckConfig):
    """A bottleneck adapter plus an invertible adapter on the token embeddings (MAD-X).

    The coupling runs on the embedding output; its inverse runs on the input of the output
    (vocabulary) embedding, so the LM's tied output projection sees ``inverse(h)``.

    Attributes:
        inv_adapter: ``nice`` (additive coupling, Dinh et al. 2015) or ``glow`` (affine coupling
            with soft-clamped scales, Kingma & Dhariwal 2018).
        inv_reduction_factor: the couplings' subnets map ``d -> d // inv_reduction_factor -> .``
            (AdapterHub's ``inv_adapter_reduction_factor``, default 2).
        embedding_module: the module whose output the coupling transforms; ``None`` finds it
            (BERT-family and AST: ``embeddings``; Llama/Mistral/Qwen: ``embed_tokens``; GPT-2:
            ``drop``, after the position embeddings), as AdapterHub places it.
        output_embedding: the vocabulary projection whose input goes through the inverse;
            ``None`` uses the model's ``get_output_embeddings()`` if it has one (no inverse on
            models without an LM head); ``""`` turns the inverse off.
    """

    method = "bottleneck_inv"

    inv_adapter: Literal["nice", "glow"] = "nice"
    inv_reduction_factor: float = 2.0
    embedding_module: str | None = None
    output_embedding: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.inv_adapter not in ("nice", "glow"):
            raise ValueError(f"inv_adapter must be 'nice' or 'glow', got {self.inv_adapter!r}")
        if self.inv_reduction_factor <= 0:
            raise ValueError("inv_reduction_factor must be positive")


# AdapterHub's SeqBnInvConfig / DoubleSeqBnInvConfig: the pfeiffer / houlsby bottleneck + NICE.
register_preset(
    "seq_bn_inv",
    "bottleneck_inv",
    placement="sequential",
    locations=("ffn",),
    original_ln_before=True,
)
register_preset(
    "double_seq_bn_inv",
    "bottleneck_inv",
    placement="sequential",
    locations=("attn", "ffn"),
    activation="swish",
)
