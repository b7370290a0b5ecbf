"""Adapter methods: registered on import."""

from . import baselines, bottleneck, conformer, lora, prompt  # noqa: F401
from .registry import AdapterMethod, get_method, register_method

__all__ = ["AdapterMethod", "get_method", "register_method"]
