"""MoSA config and the ``"mosa"`` preset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import register_preset
from ..bottleneck.config import BottleneckConfig
from .experts import MERGE_MODES

__all__ = ["MoSAConfig"]


@dataclass
class MoSAConfig(BottleneckConfig):
    """Mixture of sparse adapters (MoSA; Zhang et al., "Split & Merge: Unlocking the Potential of
    Visual Adapters via Sparse Training", arXiv:2312.02923).

    Placement fields as :class:`BottleneckConfig`. Defaults follow the authors' config
    (``src/configs/config.py``: AdaptFormer style, i.e. parallel to the FFN, bottleneck 64,
    scalar 0.1, dropout 0.1, 4 experts, ``MERGE="add"``, ``SHARE=None``); their AdaptFormer
    adapter uses GELU.

    Attributes:
        num_experts: ``N``, the number of disjoint random sparse experts per split matrix.
        share: ``"down"``/``"up"`` keeps that projection dense (trained every step); ``None``
            splits both. The authors' FGVC scripts use ``share="down"``.
        merge_mode: ``"add"`` (mean of the expert copies, the authors' default) or ``"joint"``
            (each entry from its owning expert); see :mod:`.experts`.
        seed: seed of the random expert partition (``None``: drawn from torch's global RNG).
    """

    method = "mosa"

    placement: Literal["sequential", "parallel"] = "parallel"
    bottleneck_dim: int | None = 64
    activation: str = "gelu"
    scaling: float = 0.1
    dropout: float = 0.1
    num_experts: int = 4
    share: Literal["down", "up"] | None = None
    merge_mode: Literal["add", "joint"] = "add"
    seed: int | None = None

    def validate(self) -> None:
        super().validate()
        if not 1 <= self.num_experts <= 255:
            raise ValueError(f"num_experts must be in [1, 255], got {self.num_experts}")
        if self.share not in (None, "down", "up"):
            raise ValueError(f"share must be None, 'down' or 'up', got {self.share!r}")
        if self.merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {self.merge_mode!r}")


register_preset("mosa", "mosa")
