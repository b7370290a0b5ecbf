"""Inject :class:`SublayerAdapter` s (bottleneck, conformer, ...) at sublayer outputs."""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from ..architectures import default_parallel_sources, default_targets
from ..config import AdapterConfig
from ..targeting import TargetError, match_modules, resolve_module
from .base import OutputAdapterWrapper, SublayerAdapter, replace_submodule

__all__ = ["feature_dim", "inject_sublayer_adapters", "SLOT_NAMES"]

SLOT_NAMES = {"ffn": "ffn", "attn": "attn"}


def feature_dim(module: nn.Module) -> int:
    """The output feature size of a sublayer (Linear, MultiheadAttention, or its last Linear)."""
    if isinstance(module, OutputAdapterWrapper):
        return feature_dim(module.base_layer)
    if hasattr(module, "get_base_layer"):  # a PEFT tuner layer
        return feature_dim(module.get_base_layer())
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.MultiheadAttention):
        return module.embed_dim
    if isinstance(module, nn.Conv1d):
        return module.out_channels
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1].out_features
    raise TargetError(f"cannot infer the feature size of {type(module).__name__}")


def inject_sublayer_adapters(
    model: nn.Module,
    config: AdapterConfig,
    name: str,
    build: Callable[[int], SublayerAdapter],
    handle_suffix: str,
) -> dict[str, nn.Module]:
    """Wrap each target sublayer and add ``build(dim)`` under ``name``.

    ``config`` must have ``locations`` (slots used when ``target_modules`` is None), ``placement``
    and ``parallel_sources`` (regex -> replacement naming the module whose input a parallel
    adapter reads; defaults come from the architecture table).
    """
    targets = config.target_modules
    if targets is None:
        targets = default_targets(model, tuple(config.locations), config.method)
    matches = match_modules(model, targets)
    sources: dict[str, str] = {}
    if config.placement == "parallel":
        rules = dict(config.parallel_sources) or default_parallel_sources(model)
        for clean, _ in matches:
            for pattern, repl in rules.items():
                if re.fullmatch(pattern, clean):
                    sources[clean] = re.sub(f"^(?:{pattern})$", repl, clean)
                    break
        for src in sources.values():
            resolve_module(model, src)  # fail before changing the model
    handles: dict[str, nn.Module] = {}
    for clean, _ in matches:
        path, module = resolve_module(model, clean)
        if isinstance(module, OutputAdapterWrapper):
            wrapper = module
        else:
            wrapper = OutputAdapterWrapper(module)
            replace_submodule(model, path, wrapper)
        adapter = build(feature_dim(wrapper.base_layer))
        wrapper.adapters[name] = adapter
        if clean in sources:
            _, source_module = resolve_module(model, sources[clean])
            source_module.register_forward_pre_hook(wrapper.capture_source, with_kwargs=True)
            wrapper._uses_source = True
        handles[f"{clean}.{handle_suffix}"] = adapter
    return handles
