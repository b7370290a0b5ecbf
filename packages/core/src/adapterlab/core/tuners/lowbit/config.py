"""Low-bit adapter config and the ``"lowbit"`` preset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import register_preset
from ..bottleneck.config import BottleneckConfig
from .quant import SUPPORTED_BITS

__all__ = ["LowBitConfig"]


@dataclass
class LowBitConfig(BottleneckConfig):
    """Bottleneck adapter whose projection matrices are stored in ``bits`` bits.

    Jie, Wang & Deng, "Revisiting the Parameter Efficiency of Adapters from the Perspective of
    Precision Redundancy" (ICCV 2023). Placement fields as :class:`BottleneckConfig`; the defaults
    follow the authors' AdaptFormer setting (parallel to the FFN, bottleneck 32, ReLU, dropout
    0.1, scale 0.1 as in their CIFAR config, no biases).

    Attributes:
        bits: 1, 2, 4 or 8 (quantised, saved as packed codes + per-matrix mean/std) or 32
            (full precision, the paper's baseline).
    """

    method = "lowbit"

    bits: int = 1
    placement: Literal["sequential", "parallel"] = "parallel"
    bottleneck_dim: int | None = 32
    scaling: float = 0.1
    dropout: float = 0.1

    def validate(self) -> None:
        super().validate()
        if self.bits not in (*SUPPORTED_BITS, 32):
            raise ValueError(f"bits must be one of {(*SUPPORTED_BITS, 32)}, got {self.bits}")


register_preset("lowbit", "lowbit")
