"""Adapter methods: each subpackage registers itself with :func:`register_method` on import.

Sparse fine-tuning (:mod:`.sft`) is outside the registry: it edits base weights and is saved as a
sparse diff with its own functions.
"""

from . import (  # noqa: F401  (each registers its methods)
    baselines,
    bottleneck,
    compacter,
    conformer,
    hyperformer,
    invertible,
    lora,
    lowbit,
    mixda,
    mosa,
    multitask,
    p_adapter,
    poly_mhr,
    prompt,
)
from .registry import AdapterMethod, available_methods, get_method, register_method

__all__ = ["AdapterMethod", "available_methods", "get_method", "register_method"]
