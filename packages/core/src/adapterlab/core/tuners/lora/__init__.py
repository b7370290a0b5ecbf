"""LoRA, DoRA and rsLoRA through PEFT (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large
Language Models"; Liu et al. 2024, "DoRA"; Kalajdzievski 2023, "rsLoRA").

No LoRA math is written here: ``peft.inject_adapter_in_model`` puts PEFT's own layers into the
model (Linear, Conv, Embedding and ``nn.MultiheadAttention``), and merging uses PEFT's ``merge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...architectures import default_targets
from ...config import AdapterConfig, register_preset
from ...targeting import clean_name, match_modules, resolve_module
from ..base import replace_submodule
from ..registry import AdapterMethod, register_method

if TYPE_CHECKING:
    import peft
    from peft.tuners.tuners_utils import BaseTunerLayer

__all__ = ["LoraConfig", "peft_layers"]


@dataclass
class LoraConfig(AdapterConfig):
    """LoRA config (PEFT defaults: r=8, alpha=8, dropout 0).

    Attributes:
        r: rank.
        alpha: scaling numerator; the update is ``B A x * alpha / r`` (``alpha / sqrt(r)`` with
            ``use_rslora``).
        dropout: dropout on the LoRA input.
        use_dora: weight-decomposed LoRA (DoRA).
        use_rslora: rank-stabilised scaling.
        init_lora_weights: PEFT's init option (True: B = 0, a fresh adapter changes nothing).
    """

    method = "lora"
    mergeable = True

    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    use_dora: bool = False
    use_rslora: bool = False
    init_lora_weights: bool | str = True

    def validate(self) -> None:
        if self.r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {self.r}")

    def to_peft(self, target_modules: list[str]) -> peft.LoraConfig:
        """The equivalent ``peft.LoraConfig`` for explicit module names."""
        import peft

        return peft.LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            use_dora=self.use_dora,
            use_rslora=self.use_rslora,
            init_lora_weights=self.init_lora_weights,
            target_modules=target_modules,
            bias="none",
        )


class _ParamHolder(nn.Module):
    """Exposes a shared ``nn.Parameter`` as ``weight`` so it saves under a stable key."""

    def __init__(self, param: nn.Parameter) -> None:
        super().__init__()
        self.weight = param


def peft_layers(model: nn.Module, name: str) -> list[tuple[str, BaseTunerLayer]]:
    """``(real path, layer)`` for every PEFT tuner layer that carries adapter ``name``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    out = []
    for path, module in model.named_modules():
        if isinstance(module, BaseTunerLayer):
            for attr in module.adapter_layer_names:
                container = getattr(module, attr, None)
                if container is not None and name in container:
                    out.append((path, module))
                    break
    return out


def _handles(model: nn.Module, name: str) -> dict[str, nn.Module]:
    handles: dict[str, nn.Module] = {}
    for path, layer in peft_layers(model, name):
        holder = nn.ModuleDict()
        for attr in layer.adapter_layer_names:
            container = getattr(layer, attr, None)
            if container is None or name not in container:
                continue
            item = container[name]
            holder[attr] = item if isinstance(item, nn.Module) else _ParamHolder(item)
        handles[f"{clean_name(path)}.lora"] = holder
    return handles


def _keep_fp32(handles: dict[str, nn.Module]) -> None:
    """LoRA tensors stay float32 on a float16/bfloat16 base (PEFT's ``autocast_adapter_dtype``)."""
    for holder in handles.values():
        for p in holder.parameters():
            if p.dtype in (torch.float16, torch.bfloat16):
                p.data = p.data.float()


def _inject(model: nn.Module, config: LoraConfig, name: str) -> dict[str, nn.Module]:
    import peft

    from .split_mha import SplitMultiheadAttention

    targets = config.target_modules
    if targets is None:
        targets = default_targets(model, ("qv",), "lora")
    matches = match_modules(model, targets)
    real = []
    for clean, module in matches:
        base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
        if isinstance(base, nn.Embedding):
            raise ValueError(
                f"lora: target {clean!r} is an embedding layer (e.g. embed_tokens); LoRA on "
                "embeddings is not supported by adapterlab. Target Linear layers instead."
            )
    for clean, _ in matches:
        path, module = resolve_module(model, clean)
        if isinstance(module, nn.MultiheadAttention):
            # LoRA on W_q and W_v through plain PEFT lora.Linear (see split_mha)
            split = SplitMultiheadAttention(module)
            replace_submodule(model, path, split)
            real += [f"{path}.q_proj", f"{path}.v_proj"]
        elif isinstance(module, SplitMultiheadAttention):
            real += [f"{path}.q_proj", f"{path}.v_proj"]
        else:
            real.append(path)
    peft.inject_adapter_in_model(config.to_peft(real), model, adapter_name=name)
    handles = _handles(model, name)
    _keep_fp32(handles)
    return handles


def _check_merge(model: nn.Module, config: LoraConfig, name: str) -> None:
    for path, layer in peft_layers(model, name):
        others = [n for n in getattr(layer, "lora_A", {}) if n != name]
        if others:
            raise ValueError(
                f"cannot merge LoRA {name!r} into {clean_name(path)}: the layer also carries "
                f"adapters {others}; merge or delete them first"
            )


def _merge(model: nn.Module, config: LoraConfig, name: str) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    from .split_mha import SplitMultiheadAttention

    _check_merge(model, config, name)
    for path, layer in peft_layers(model, name):
        layer.merge(adapter_names=[name])
        replace_submodule(model, path, layer.get_base_layer())
    for path, module in list(model.named_modules()):
        if isinstance(module, SplitMultiheadAttention):
            module.sync_merged()
            projections = (module.q_proj, module.k_proj, module.v_proj)
            if not any(isinstance(p, BaseTunerLayer) for p in projections):
                replace_submodule(model, path, module.base_layer)  # back to plain MHA


register_method(LoraConfig, AdapterMethod(inject=_inject, merge=_merge, check_merge=_check_merge))
register_preset("lora", "lora")
register_preset("dora", "lora", use_dora=True)
register_preset("rslora", "lora", use_rslora=True)
