"""Inject :class:`SublayerAdapter` s (bottleneck, conformer, ...) at sublayer outputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch import nn

from ..architectures import default_parallel_sources, match_targets
from ..config import AdapterConfig
from ..targeting import TargetError, resolve_module
from .base import OutputAdapterWrapper, SublayerAdapter, replace_submodule

__all__ = [
    "SLOT_NAMES",
    "adapter_kwargs",
    "feature_dim",
    "inject_bottleneck_like",
    "inject_sublayer_adapters",
    "input_dim",
]

SLOT_NAMES = {"ffn": "ffn", "attn": "attn"}


def _is_conv1d(module: nn.Module) -> bool:
    """transformers' ``Conv1D`` (GPT-2): a Linear with a transposed ``[in, out]`` weight."""
    return type(module).__name__ == "Conv1D" and getattr(module, "nf", None) is not None


def _linear_sizes(module: nn.Module) -> tuple[int, int] | None:
    """``(in_features, out_features)`` of a Linear-like module, else None."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if _is_conv1d(module):
        return module.weight.shape[0], module.nf
    if isinstance(module, nn.MultiheadAttention):
        return module.embed_dim, module.embed_dim
    if isinstance(module, nn.Conv1d):
        return module.in_channels, module.out_channels
    return None


def _unwrap(module: nn.Module) -> nn.Module:
    while True:
        if isinstance(module, OutputAdapterWrapper):
            module = module.base_layer
        elif hasattr(module, "get_base_layer"):  # a PEFT tuner layer
            module = module.get_base_layer()
        else:
            return module


def _size(module: nn.Module, side: int, what: str) -> int:
    module = _unwrap(module)
    sizes = _linear_sizes(module)
    if sizes is None:
        inner = [s for m in module.modules() if m is not module and (s := _linear_sizes(m))]
        if not inner:
            raise TargetError(f"cannot infer the {what} of {type(module).__name__}")
        sizes = inner[-1] if side else inner[0]  # output: the last one, input: the first
    return sizes[side]


def feature_dim(module: nn.Module) -> int:
    """The output feature size of a sublayer: a Linear (or GPT-2 ``Conv1D``), an
    ``nn.MultiheadAttention``, or else the last Linear-like module inside it."""
    return _size(module, 1, "feature size")


def input_dim(module: nn.Module) -> int:
    """The input feature size of a layer: as :func:`feature_dim`, from its first Linear-like."""
    return _size(module, 0, "input feature size")


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
    matches = match_targets(model, config.target_modules, tuple(config.locations), config.method)
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


def adapter_kwargs(config: AdapterConfig) -> dict[str, Any]:
    """The keyword arguments every bottleneck-style adapter takes from its config."""
    return {
        "placement": config.placement,
        "scaling": config.scaling,
        "dropout": config.dropout,
        "residual": config.use_residual(),
    }


def inject_bottleneck_like(
    model: nn.Module,
    config: AdapterConfig,
    name: str,
    adapter_cls: Callable[..., SublayerAdapter],
    handle_suffix: str,
    **extra: Any,
) -> dict[str, nn.Module]:
    """:func:`inject_sublayer_adapters` with ``adapter_cls(dim, config.size(dim), **kwargs)``:
    the shared placement/scaling/dropout/residual fields plus ``extra``."""

    def build(dim: int) -> SublayerAdapter:
        return adapter_cls(dim, config.size(dim), **adapter_kwargs(config), **extra)

    return inject_sublayer_adapters(model, config, name, build, handle_suffix)
