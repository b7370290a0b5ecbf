"""Hyperformer config (task-conditioned hypernetwork adapters)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import AdapterConfig, register_preset
from ..bottleneck.config import ACTIVATIONS

__all__ = ["HyperformerConfig"]


@dataclass
class HyperformerConfig(AdapterConfig):
    """Hyperformer (Karimi Mahabadi et al., ACL 2021): one hypernetwork generates every layer's
    adapter weights from a task embedding and a layer-id embedding. Defaults: the paper's
    ``configs/hyperformer*.json`` (task embedding 64, hidden 128, projected 64, reduction 32).

    Attributes:
        n_tasks: number of tasks; ids ``0..n_tasks-1`` come from ``set_task_ids`` per sample.
        locations: slots when ``target_modules`` is None (the paper: after self-attention and
            after the FFN).
        reduction_factor / bottleneck_dim: bottleneck size as for bottleneck adapters.
        task_embedding_dim: size of the task and layer-id embeddings.
        task_hidden_dim / projected_dim: the task projector ``Linear -> ReLU -> Linear``.
        activation: the adapter's nonlinearity (the paper's ``gelu_new``: ``gelu`` here).
        conditional_layer_norm: a LayerNorm after the up-projection whose gain and bias are
            generated too (``LN_{gamma,beta}(up(act(down(x)))) + x``).
        plus_plus: HyperFormer++: a block-type embedding (attention / FFN) joins the input and
            one generator pair serves both positions (else one pair per position).
        generator_std: std of the generators' normal init (biases zero).
    """

    method = "hyperformer"

    n_tasks: int = 1
    locations: tuple[str, ...] = ("attn", "ffn")
    reduction_factor: float = 32.0
    bottleneck_dim: int | None = None
    task_embedding_dim: int = 64
    task_hidden_dim: int = 128
    projected_dim: int = 64
    activation: str = "gelu"
    conditional_layer_norm: bool = True
    plus_plus: bool = False
    generator_std: float = 0.01

    def validate(self) -> None:
        if self.n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {self.n_tasks}")
        bad = [loc for loc in self.locations if loc not in ("ffn", "attn")]
        if bad or not self.locations:
            raise ValueError(
                f"locations must be a non-empty subset of ('attn', 'ffn'), got {self.locations}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.bottleneck_dim is None and self.reduction_factor <= 0:
            raise ValueError("reduction_factor must be positive")
        for f in ("task_embedding_dim", "task_hidden_dim", "projected_dim"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f} must be positive")

    def size(self, dim: int) -> int:
        """Bottleneck size for feature size ``dim``."""
        if self.bottleneck_dim is not None:
            return self.bottleneck_dim
        return max(1, int(dim // self.reduction_factor))


register_preset("hyperformer", "hyperformer")
register_preset("hyperformer++", "hyperformer", plus_plus=True)
