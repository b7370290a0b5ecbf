"""Compacter config and presets (``compacter``: Houlsby placement; ``compacter++``: FFN only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import register_preset
from ..bottleneck.config import BottleneckConfig

__all__ = ["CompacterConfig"]

W_INITS = ("glorot-normal", "glorot-uniform", "normal")


@dataclass
class CompacterConfig(BottleneckConfig):
    """A bottleneck adapter whose projections are PHM layers (Karimi Mahabadi et al. 2021).

    Each projection ``in -> out`` is ``y = x H + b`` with ``H = sum_i kron(A_i, W_i)``: ``n``
    "slow" rules ``A_i`` (``n x n``, one set per adapter shared by every layer and both
    projections when ``shared_phm_rule``) and "fast" weights ``W_i = W_left_i @ W_right_i``
    (``in/n x rank`` times ``rank x out/n``; unfactorised when ``factorized_phm_W=False``).
    Field names and defaults follow AdapterHub's ``BnConfig`` PHM options.

    Attributes:
        phm_dim: ``n``, the number of Kronecker summands; divides the feature and bottleneck sizes.
        phm_rank: rank of the factorised fast weights.
        factorized_phm_W: ``W_i = W_left_i @ W_right_i`` (Compacter) or a full ``W_i`` (PHM).
        shared_phm_rule: one rule tensor per adapter (Compacter) or one per projection.
        factorized_phm_rule: each rule ``A_i`` as a rank-1 product ``left_i @ right_i``.
        phm_bias: a bias ``b`` on each projection.
        phm_c_init: rule init: ``normal`` (std ``phm_init_range``; unshared rules std 0.01, as
            AdapterHub) or ``uniform`` (shared: U(-1, 1); unshared: U(-0.01, 0.01), as AdapterHub).
        phm_init_range: std of the shared rules' normal init (and of ``W`` for ``normal``).
        learn_phm: train the rules (``False``: they stay at their init and are saved frozen).
        hypercomplex_nonlinearity: init of the fast weights: ``glorot-normal``,
            ``glorot-uniform`` or ``normal``.
        zero_init_up: start the up-projection's fast weights at zero (``W_right``, or ``W``), so a
            fresh adapter is the identity (ours; AdapterHub starts them at the Glorot init).
    """

    method = "compacter"

    activation: str = "gelu"
    reduction_factor: float = 32.0
    locations: tuple[str, ...] = ("attn", "ffn")
    phm_dim: int = 4
    phm_rank: int = 1
    factorized_phm_W: bool = True
    shared_phm_rule: bool = True
    factorized_phm_rule: bool = False
    phm_bias: bool = True
    phm_c_init: Literal["normal", "uniform"] = "normal"
    phm_init_range: float = 1e-4
    learn_phm: bool = True
    hypercomplex_nonlinearity: str = "glorot-uniform"
    zero_init_up: bool = True

    def validate(self) -> None:
        super().validate()
        if self.placement != "sequential":
            raise ValueError("Compacter adapters are sequential (placement='sequential')")
        if self.phm_dim < 1 or self.phm_rank < 1:
            raise ValueError(
                f"phm_dim and phm_rank must be positive, got {self.phm_dim}, {self.phm_rank}"
            )
        if self.phm_c_init not in ("normal", "uniform"):
            raise ValueError(f"phm_c_init must be 'normal' or 'uniform', got {self.phm_c_init!r}")
        if self.hypercomplex_nonlinearity not in W_INITS:
            raise ValueError(
                f"hypercomplex_nonlinearity must be one of {W_INITS}, "
                f"got {self.hypercomplex_nonlinearity!r}"
            )


# AdapterHub's CompacterConfig (DoubleSeqBnConfig-based: after attention and FFN outputs) and
# CompacterPlusPlusConfig (SeqBnConfig-based: at the FFN's closing LayerNorm).
register_preset("compacter", "compacter", locations=("attn", "ffn"))
register_preset("compacter++", "compacter", locations=("ffn",), original_ln_before=True)
