"""Bottleneck adapters: Houlsby (2019), Pfeiffer (2021), parallel (He et al. 2022).

References:
    Houlsby et al., "Parameter-Efficient Transfer Learning for NLP", ICML 2019.
    Pfeiffer et al., "AdapterFusion: Non-Destructive Task Composition for Transfer Learning", EACL 2021.
    He et al., "Towards a Unified View of Parameter-Efficient Transfer Learning", ICLR 2022.
"""

from __future__ import annotations

from torch import nn

from ..registry import AdapterMethod, register_method
from ..sublayer import inject_bottleneck_like
from .config import BottleneckConfig
from .layer import BottleneckAdapter, make_activation

__all__ = ["BottleneckConfig", "BottleneckAdapter", "make_activation"]


def _inject(model: nn.Module, config: BottleneckConfig, name: str) -> dict[str, nn.Module]:
    return inject_bottleneck_like(
        model, config, name, BottleneckAdapter, "bottleneck", activation=config.activation
    )


register_method(BottleneckConfig, AdapterMethod(inject=_inject))
