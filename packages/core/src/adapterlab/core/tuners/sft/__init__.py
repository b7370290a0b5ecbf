"""Composable sparse fine-tuning (LT-SFT; Ansell et al. 2022, ACL).

``lt_sft`` learns a :class:`SparseDiff`; ``apply_sft``/``revert_sft`` compose and remove SFTs by
addition and (exact) subtraction; ``save_sft``/``load_sft`` use safetensors (indices + values).
"""

from .lt_sft import LotteryTicketSFT, lt_sft
from .sparse import SparseDiff, applied_sfts, apply_sft, load_sft, revert_sft, save_sft

__all__ = [
    "LotteryTicketSFT",
    "SparseDiff",
    "applied_sfts",
    "apply_sft",
    "load_sft",
    "lt_sft",
    "revert_sft",
    "save_sft",
]
