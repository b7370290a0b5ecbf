"""Adapter methods: registered on import."""

from . import (  # noqa: F401  (each registers its methods)
    baselines,
    bottleneck,
    conformer,
    lora,
    lowbit,  # methods A
    mixda,  # methods A
    mosa,  # methods A
    p_adapter,  # vl
    poly_mhr,  # methods B
    prompt,
)
from .registry import AdapterMethod, get_method, register_method

__all__ = ["AdapterMethod", "get_method", "register_method"]
