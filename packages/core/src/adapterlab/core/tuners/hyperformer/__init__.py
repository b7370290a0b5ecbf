"""Hyperformer and HyperFormer++ (Karimi Mahabadi et al., "Parameter-efficient Multi-task
Fine-tuning for Transformers via Shared Hypernetworks", ACL 2021), as VL-Adapter benchmarks it.

A shared hypernetwork generates each adapter position's weights from a task embedding and a
layer-id embedding (HyperFormer++: plus a block-type embedding, one generator pair). The task is
read per sample from ``set_task_ids``, so one batch may mix tasks. Placement: after the
attention and FFN sublayers (``y + LN_{gamma,beta}(up(act(down(y))))``); VL-Adapter's port also
adapts cross-attention: pass ``target_modules`` for that.
"""

from __future__ import annotations

import re

from torch import nn

from ...architectures import match_targets
from ..registry import AdapterMethod, register_method
from ..sublayer import feature_dim, inject_sublayer_adapters
from ..tasks import task_state
from .config import HyperformerConfig
from .layer import HyperformerAdapter, HyperNetwork

__all__ = ["HyperNetwork", "HyperformerAdapter", "HyperformerConfig", "hypernetwork"]

_KEY = "hypernet"


def _positions(model: nn.Module, config: HyperformerConfig) -> list[tuple[int, list[str]]]:
    """``(block type, target names in layer order)`` per location (explicit targets: one type)."""
    if config.target_modules is not None:
        names = [c for c, _ in match_targets(model, config.target_modules, (), config.method)]
        return [(1, names)]
    out = []
    for loc in config.locations:
        names = [c for c, _ in match_targets(model, None, (loc,), config.method)]
        out.append((0 if loc == "attn" else 1, names))
    return out


def _inject(model: nn.Module, config: HyperformerConfig, name: str) -> dict[str, nn.Module]:
    positions = _positions(model, config)
    dims = {
        feature_dim(module)
        for _, names in positions
        for clean, module in match_targets(model, names, (), config.method)
    }
    if len(dims) != 1:
        raise ValueError(
            f"Hyperformer generates one weight shape; the targets have feature sizes {sorted(dims)}"
        )
    dim = dims.pop()
    n_layers = max(len(names) for _, names in positions)
    net = HyperNetwork(config, dim, config.size(dim), n_layers, blocks=2)
    tasks = task_state(model)
    owner: list[HyperformerAdapter] = []
    for block, names in positions:

        def build(_: int, block: int = block) -> HyperformerAdapter:
            adapter = HyperformerAdapter(net, not owner, 0, block, config, tasks)
            owner.append(adapter)
            return adapter

        exact = "|".join(re.escape(c) for c in names)
        built = inject_sublayer_adapters(model, _Located(config, exact), name, build, "hyperformer")
        layer_of = {clean: i for i, clean in enumerate(names)}
        for key, adapter in built.items():
            adapter.layer = layer_of[key.removesuffix(".hyperformer")]
    return {_KEY: net}


class _Located:
    """``config`` seen by :func:`inject_sublayer_adapters` with explicit targets."""

    def __init__(self, config: HyperformerConfig, targets: str) -> None:
        self.target_modules = targets
        self.locations = config.locations
        self.method = config.method
        self.placement = "sequential"
        self.parallel_sources = {}


def hypernetwork(model: nn.Module, name: str = "default") -> HyperNetwork:
    """The :class:`HyperNetwork` of Hyperformer adapter ``name``."""
    from ..state import adapter_state

    return adapter_state(model).handles[name][_KEY]


register_method(HyperformerConfig, AdapterMethod(inject=_inject))
