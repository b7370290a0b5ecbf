"""MixDA config and the ``"mixda"`` preset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import AdapterConfig, register_preset
from ..bottleneck.config import ACTIVATIONS
from .layer import GATE_POOLS

__all__ = ["MixDAConfig"]


@dataclass
class MixDAConfig(AdapterConfig):
    """Mixture of domain adapters (Diao et al., "Mixture-of-Domain-Adapters: Decoupling and
    Injecting Domain Knowledge to Pre-trained Language Models' Memories", ACL 2023).

    Each target layer (default: the FFN slot; for BERT/RoBERTa the FFN output ``dense``, exactly
    the authors' placement) gets ``num_domains`` domain adapters in parallel and a softmax gate
    over the adapters plus the layer's own output. Defaults follow the authors' code.

    Attributes:
        num_domains: ``K`` domain adapters per layer (the authors' ``num_of_kas``; stage one
            trains one at a time, see :func:`combine_domain_adapters`).
        locations: slots used when ``target_modules`` is None (``("ffn",)``). The authors adapt
            a few layers only (7 and 11 of RoBERTa): pass e.g.
            ``target_modules=r".*layer\\.(7|11)\\.output\\.dense"``.
        down_scale: bottleneck = layer input size // ``down_scale`` (``adapter_down_scale``, 16
            in ``stage_one_pretrain.sh``).
        bottleneck_dim: explicit bottleneck size (overrides ``down_scale``).
        activation: domain adapter nonlinearity (GELU).
        gate_hidden, gate_layers, gate_dropout: the gate MLP (768, 3, 0.2).
        gate_pool: what the gate reads from ``[B, T, D]`` inputs: ``"last"`` position (authors),
            ``"mean"`` over positions, or every ``"token"``.
    """

    method = "mixda"

    num_domains: int = 2
    locations: tuple[str, ...] = ("ffn",)
    down_scale: float = 16.0
    bottleneck_dim: int | None = None
    activation: str = "gelu"
    gate_hidden: int = 768
    gate_layers: int = 3
    gate_dropout: float = 0.2
    gate_pool: Literal["last", "mean", "token"] = "last"

    def validate(self) -> None:
        if self.num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {self.num_domains}")
        bad = [loc for loc in self.locations if loc not in ("ffn", "attn")]
        if bad or not self.locations:
            raise ValueError(
                f"locations must be a non-empty subset of ('attn', 'ffn'), got {self.locations}"
            )
        if self.bottleneck_dim is None and self.down_scale <= 0:
            raise ValueError("down_scale must be positive")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.gate_pool not in GATE_POOLS:
            raise ValueError(f"gate_pool must be one of {GATE_POOLS}, got {self.gate_pool!r}")
        if self.gate_layers < 1 or self.gate_hidden < 1:
            raise ValueError("gate_layers and gate_hidden must be >= 1")
        if not 0.0 <= self.gate_dropout < 1.0:
            raise ValueError(f"gate_dropout must be in [0, 1), got {self.gate_dropout}")

    def size(self, in_features: int) -> int:
        """Bottleneck size for a layer with ``in_features`` inputs."""
        if self.bottleneck_dim is not None:
            return self.bottleneck_dim
        return max(1, int(in_features // self.down_scale))


register_preset("mixda", "mixda")
