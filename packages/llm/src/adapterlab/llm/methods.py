"""LLM-Adapters' methods as core configs, at the paper's placements (Hu et al., EMNLP 2023).

The paper's placement study (its Figure 3) puts each adapter at the attention sublayer, the MLP
sublayer or both, and finds: series adapter after the MLP, parallel adapter beside the MLP, LoRA
on both attention and MLP. Here:

- ``series``: core sequential bottleneck on the MLP output, ``y + s*up(tanh(down(y)))``;
- ``parallel``: core parallel bottleneck beside the MLP, ``y + s*up(tanh(down(x)))``;
- ``lora``: core LoRA (PEFT) on q, k, v, up, down (the released "optimal" LoRA targets);
- ``prefix``: core prefix tuning (learned keys/values in every attention layer).

Placement variants ``<method>@attn|mlp|both`` make the sweep. ``layers`` limits the adapters to a
range of decoder layers (the embedded default uses the top layers, so the bottom can be cached).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapterlab.core import AdapterConfig, BottleneckConfig, LoraConfig, PrefixConfig

__all__ = ["METHODS", "PLACEMENTS", "MethodSpec", "build_config", "parse_method"]

PLACEMENTS = ("attn", "mlp", "both")


@dataclass(frozen=True)
class MethodSpec:
    """A method of the study: its default placement, the released learning rate (for 3 epochs of
    Math10K) and ours for the embedded default's 30-step schedule (not tuned)."""

    name: str
    default_placement: str
    lr: float
    short_lr: float
    description: str


METHODS: dict[str, MethodSpec] = {
    "series": MethodSpec(
        "series", "mlp", 3e-4, 1e-3, "series (Houlsby-style) bottleneck after the sublayer"
    ),
    "parallel": MethodSpec(
        "parallel", "mlp", 3e-4, 1e-3, "parallel bottleneck beside the sublayer"
    ),
    "lora": MethodSpec(
        "lora", "both", 3e-4, 1e-3, "LoRA on the projections (PEFT, through the core)"
    ),
    "prefix": MethodSpec(
        "prefix", "attn", 3e-2, 3e-2, "prefix tuning: learned keys/values per layer"
    ),
}

_LORA_MODULES = {"attn": ("q_proj", "k_proj", "v_proj"), "mlp": ("up_proj", "down_proj")}


def parse_method(spec: str) -> tuple[str, str]:
    """``"series@attn"`` -> ``("series", "attn")``; no ``@`` -> the method's default placement."""
    name, _, placement = spec.partition("@")
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    placement = placement or METHODS[name].default_placement
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; choose from {PLACEMENTS}")
    if name == "prefix" and placement != "attn":
        raise ValueError("prefix tuning only goes into attention (placement attn)")
    return name, placement


def _layers_regex(layers: range) -> str:
    return r"(?:.*\.)?layers\.(?:" + "|".join(str(i) for i in layers) + r")\."


def build_config(
    spec: str,
    layers: range,
    *,
    bottleneck: int = 256,
    lora_r: int = 32,
    lora_alpha: float = 64.0,
    lora_dropout: float = 0.05,
    prefix_tokens: int = 10,
    scaling: float = 1.0,
) -> AdapterConfig:
    """The core config of ``spec`` (``method[@placement]``) on decoder ``layers``."""
    name, placement = parse_method(spec)
    prefix = _layers_regex(layers)
    sublayers = {"attn": "self_attn", "mlp": "mlp"}
    if name in ("series", "parallel"):
        parts = ["self_attn", "mlp"] if placement == "both" else [sublayers[placement]]
        return BottleneckConfig(
            target_modules=prefix + "(?:" + "|".join(parts) + ")",
            placement="sequential" if name == "series" else "parallel",
            bottleneck_dim=bottleneck, activation="tanh", scaling=scaling,
            residual=name == "series",
        )  # fmt: skip
    if name == "lora":
        mods = (
            _LORA_MODULES["attn"] + _LORA_MODULES["mlp"]
            if placement == "both"
            else _LORA_MODULES[placement]
        )
        target = prefix + r"(?:self_attn|mlp)\.(?:" + "|".join(mods) + ")"
        return LoraConfig(target_modules=target, r=lora_r, alpha=lora_alpha, dropout=lora_dropout)
    return PrefixConfig(target_modules=prefix + "self_attn", num_tokens=prefix_tokens)
