"""The methods of the p-adapter paper's comparison (Table 1), as ``adapterlab.core`` configs.

Wu et al., "p-Laplacian Adaptation for Generative Pre-trained Vision-Language Models", AAAI 2024.
Every method goes through :func:`adapterlab.core.add_adapter`; this table only picks the preset,
its placement in BLIP's text modules (the question encoder and the answer / caption decoder;
the image encoder is always frozen) and the learning rate.

- ``full``: every text-side weight trains (image encoder frozen), declared as ``modules_to_save``.
- ``adapter``: plain bottleneck adapters at the p-adapter's places: after self-attention,
  cross-attention and the FFN of every text layer.
- ``lora``: LoRA on the query and value projections of self- and cross-attention.
- ``prefix``: prefix tuning of every text self-attention.
- ``p_adapter``: the paper's formulation; ``p_adapter_code``: the released code's choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapterlab.core import AdapterConfig, add_adapter, get_config
from torch import nn

__all__ = ["METHODS", "MethodSpec", "adapter_config", "apply_method", "spec", "TEXT"]

TEXT = r"text_(?:encoder|decoder)\..*layer\.\d+"
ATTENTION = TEXT + r"\.(?:attention|crossattention)"

#: initial p of the released configs per task (eff_blip_configs/*.yaml)
#: (VizWiz has no released config: VQA's)
CODE_P_INIT = {"vqa": 1.25, "vizwiz": 1.25, "snli_ve": 1.5, "caption": 1.75}
#: mu0 of the released configs
CODE_MU0 = {"vqa": 0.1, "vizwiz": 0.1, "snli_ve": 10.0, "caption": 0.1}
#: cross-attention pooling of the released code: 16 nodes for VQA, 24 otherwise
CODE_POOL = {"vqa": 16, "vizwiz": 16, "snli_ve": 24, "caption": 24}


@dataclass(frozen=True)
class MethodSpec:
    """One method: its core preset, default learning rate and a description."""

    preset: str
    lr: float
    description: str


METHODS: dict[str, MethodSpec] = {
    "full": MethodSpec("linear_probe", 5e-4, "full fine-tuning of the text modules"),
    "adapter": MethodSpec("houlsby", 1e-2, "bottleneck adapters (self-, cross-attn, FFN)"),
    "lora": MethodSpec("lora", 1e-2, "LoRA on query/value of self- and cross-attention"),
    "prefix": MethodSpec("prefix", 5e-2, "prefix tuning of the self-attention"),
    "p_adapter": MethodSpec("p_adapter", 1e-2, "p-adapter, the paper's equations"),
    "p_adapter_code": MethodSpec("p_adapter_code", 1e-2, "p-adapter, the released code"),
}


def spec(method: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``method`` (clear error for unknown names)."""
    try:
        return METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}") from None


def adapter_config(
    method: str,
    task: str,
    *,
    reduction: float = 8.0,
    lora_r: int = 8,
    prefix_tokens: int = 8,
    text_modules: tuple[str, ...] = ("text_encoder", "text_decoder"),
    release: bool = False,
) -> AdapterConfig:
    """The core config of ``method`` for a BLIP ``task`` model (vqa, caption, snli_ve, vizwiz).

    ``release`` (``--preset paper``): both p-adapter variants take the release's p init, mu0,
    pooling, direct p, N(0, 0.02) init and parallel ReLU FFN adapter (``p_adapter`` keeps the
    paper's equations, ``p_adapter_code`` is ``p_adapter_release``)."""
    s = spec(method)
    if method == "full":
        return get_config(s.preset, modules_to_save=list(text_modules))
    if method == "adapter":
        targets = ATTENTION + r"\.output\.dense|" + TEXT + r"\.output\.dense"
        return get_config(
            s.preset, target_modules=targets, reduction_factor=reduction, activation="gelu"
        )
    if method == "lora":
        return get_config(
            s.preset,
            target_modules=ATTENTION + r"\.self\.(?:query|value)",
            r=lora_r,
            alpha=2 * lora_r,
        )
    if method == "prefix":
        return get_config(
            s.preset, target_modules=TEXT + r"\.attention\.self", num_tokens=prefix_tokens
        )
    code = {"p_init": CODE_P_INIT[task], "mu0": CODE_MU0[task], "cross_pool_nodes": CODE_POOL[task]}
    if method == "p_adapter" and release:  # the release's settings, the paper's equations
        return get_config(
            "p_adapter_release", target_modules=ATTENTION, reduction_factor=reduction,
            variant="paper", p_init=CODE_P_INIT[task], eps=1e-6, cross_pool_nodes=None,
        )  # fmt: skip
    if method == "p_adapter":
        return get_config(s.preset, target_modules=ATTENTION, reduction_factor=reduction)
    preset = "p_adapter_release" if release else s.preset
    return get_config(preset, target_modules=ATTENTION, reduction_factor=reduction, **code)


def apply_method(model: nn.Module, method: str, task: str, **kwargs) -> AdapterConfig:
    """Add ``method`` to a BLIP model in place; returns the config used."""
    text = tuple(n for n in ("text_encoder", "text_decoder") if hasattr(model, n))
    cfg = adapter_config(method, task, text_modules=text, **kwargs)
    add_adapter(model, cfg)
    return cfg
