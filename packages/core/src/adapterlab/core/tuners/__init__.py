"""Adapter methods: registered on import."""

from . import baselines, bottleneck, conformer, lora, prompt  # noqa: F401
from .registry import AdapterMethod, get_method, register_method

from . import poly_mhr  # noqa: E402, F401, I001  (methods B: Poly/MHR)
from . import lowbit, mixda, mosa  # noqa: E402, F401, I001  (methods A)

__all__ = ["AdapterMethod", "get_method", "register_method"]
