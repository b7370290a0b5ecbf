"""The PETL methods of the study, as ``adapterlab.core`` configs with the study's defaults.

Cappellazzo et al., "Parameter-Efficient Transfer Learning of Audio Spectrogram Transformers" (MLSP 2024,
arXiv:2312.03694). Every method goes through :func:`adapterlab.core.add_adapter`; this module only chooses
the preset and its settings.

Sizes. The paper's "r = 12 / 8 / 6" for bottleneck / conformer / LoRA is the bottleneck *dimension* (rank) for
ViT-B's d = 768, i.e. reduction rates 64 / 96 / 128: with it the parameter counts of the paper's table come out
exactly (Pfeiffer bottleneck 12 x (2*768*12 + 12 + 768) + 12 LayerNorms = 249K; LoRA 12 x 2 x 2*768*6 = 221K;
conformer k=31 with LN: 271K). For other widths the dimension scales with d (at least ``MIN_DIM``).

Trainable besides the method's own tensors (PETL-AST): the new head and the final LayerNorm always; the
``layernorm_after`` of every block for adapters, plus ``layernorm_before`` for Houlsby placements.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from adapterlab.core import AdapterConfig, add_adapter, get_config
from torch import nn

# the study's conformer kernel for sound is 8 (even): PyTorch notes that "same" padding then copies the input
warnings.filterwarnings(
    "ignore", message=r".*padding='same' with even kernel.*", category=UserWarning
)

HEAD = "head"
FINAL_NORM = "ast.layernorm"
MIN_DIM = 4


@dataclass(frozen=True)
class MethodSpec:
    """One method of the study: core preset, learning rate, and what else trains."""

    preset: str
    lr: float
    kind: str  # "probe" | "full" | "bitfit" | "prompt" | "prefix" | "lora" | "bottleneck" | "conformer"
    houlsby: bool = False
    description: str = ""


METHODS: dict[str, MethodSpec] = {
    "linear": MethodSpec(
        "linear_probe", 1e-3, "probe", description="linear probe (head + final LN)"
    ),
    "full": MethodSpec("full", 5e-5, "full", description="full fine-tuning"),
    "bitfit": MethodSpec(
        "bitfit", 5e-3, "bitfit", description="BitFit (Linear and LayerNorm biases)"
    ),
    "prompt": MethodSpec("prompt", 1e-2, "prompt", description="shallow prompt tuning (SPT)"),
    "prompt_deep": MethodSpec(
        "prompt_deep", 1e-2, "prompt", description="deep prompt tuning (DPT)"
    ),
    "prefix": MethodSpec(
        "prefix", 1e-2, "prefix", description="prefix tuning (key/value prefixes)"
    ),
    "lora": MethodSpec("lora", 5e-3, "lora", description="LoRA on W_q and W_v"),
    "pfeiffer": MethodSpec(
        "pfeiffer", 5e-3, "bottleneck", description="bottleneck, Pfeiffer, sequential"
    ),
    "houlsby": MethodSpec("houlsby", 5e-3, "bottleneck", True, "bottleneck, Houlsby, sequential"),
    "parallel": MethodSpec(
        "parallel", 5e-3, "bottleneck", description="bottleneck, Pfeiffer, parallel"
    ),
    "houlsby_parallel": MethodSpec(
        "houlsby_parallel", 5e-3, "bottleneck", True, "bottleneck, Houlsby, parallel"
    ),
    "conformer": MethodSpec(
        "conformer", 5e-3, "conformer", description="conformer, Pfeiffer, parallel"
    ),
    "conformer_houlsby": MethodSpec(
        "conformer_houlsby", 5e-3, "conformer", True, "conformer, Houlsby, parallel"
    ),
    "conformer_sequential": MethodSpec(
        "conformer_sequential", 5e-3, "conformer", description="conformer, Pfeiffer, sequential"
    ),
    "conformer_houlsby_sequential": MethodSpec(
        "conformer_sequential", 5e-3, "conformer", True, "conformer, Houlsby, sequential"
    ),
}

#: rank / bottleneck dimension of the study for d = 768
STUDY_DIMS = {"bottleneck": 12, "conformer": 8, "lora": 6}
#: LoRA scale s = alpha / RR with alpha = 16, RR = 128 in the paper (= 0.125)
LORA_SCALE = 0.125
#: conformer depthwise kernel: 31 for speech tasks, 8 for sound tasks
KERNEL = {"speech": 31, "sound": 8}
#: AdamW settings of PETL-AST (hparams/train.yaml, main.py)
OPTIMIZER = {"betas": (0.9, 0.98), "eps": 1e-6, "weight_decay": 0.1}
#: PETL-AST's prompt / prefix init: uniform +-sqrt(6 / (3 * 16 * 16 + 768)) = 0.0625
PROMPT_INIT = 0.0625


def method_names() -> list[str]:
    return list(METHODS)


def spec(method: str) -> MethodSpec:
    try:
        return METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}") from None


def scaled_dim(study_dim: int, hidden_size: int, minimum: int = MIN_DIM) -> int:
    """The study's d=768 dimension scaled to ``hidden_size`` (at least ``minimum``)."""
    return max(minimum, round(study_dim * hidden_size / 768))


def _parse_bool(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"residual must be a bool or None, got {type(value).__name__} {value!r}")


def adapter_config(
    method: str,
    *,
    hidden_size: int,
    task: str = "sound",
    residual: bool | None = None,
    dim: int | None = None,
    kernel_size: int | None = None,
    lora_scale: float = LORA_SCALE,
    num_prompts: int = 25,
    num_prefix: int = 12,
    scaling: float = 1.0,
) -> AdapterConfig:
    """The ``adapterlab.core`` config of ``method`` with the study's defaults for an AST of ``hidden_size``.

    Args:
        task: ``"sound"`` or ``"speech"`` (conformer kernel 8 or 31).
        residual: adapters only; ``None`` = the core default (on for sequential, off for parallel, as the
            current PETL-AST README recommends). Must be a real bool - the original's ``type=bool`` flag
            turned ``--apply_residual False`` into True.
        dim: bottleneck dimension / LoRA rank (default: the study's, scaled to ``hidden_size``).
        scaling: adapter output scale (PETL-AST: none, i.e. 1.0; the core's parallel preset uses 4).
    """
    s = spec(method)
    residual = _parse_bool(residual)
    if task not in KERNEL:
        raise ValueError(f"task must be 'sound' or 'speech', got {task!r}")
    keep = [HEAD, FINAL_NORM]
    if s.kind in ("bottleneck", "conformer"):
        keep += ["layernorm_after"] + (["layernorm_before"] if s.houlsby else [])
    if s.kind == "probe":
        return get_config(s.preset, modules_to_save=keep)
    if s.kind == "full":
        return get_config(s.preset)
    if s.kind == "bitfit":
        # all Linear and LayerNorm biases of the encoder (PETL-AST); the final LN trains fully anyway
        targets = r"ast\.layers\.\d+\.(attention\.[qkvo]_proj|mlp\.fc[12]|layernorm_(before|after))"
        return get_config(s.preset, target_modules=targets, modules_to_save=keep)
    if s.kind == "prompt":
        # prompts replace the distillation token (position 1); the head pools all tokens, prompts included
        return get_config(
            s.preset,
            num_tokens=num_prompts,
            position=1,
            replace=1,
            init_range=PROMPT_INIT,
            strip_output=False,
            modules_to_save=keep,
        )
    if s.kind == "prefix":
        return get_config(s.preset, num_tokens=num_prefix, modules_to_save=keep)
    if s.kind == "lora":
        r = dim or scaled_dim(STUDY_DIMS["lora"], hidden_size)
        return get_config(s.preset, r=r, alpha=lora_scale * r, modules_to_save=keep)
    if residual is not None and not isinstance(
        residual, bool
    ):  # pragma: no cover - _parse_bool guards
        raise TypeError("residual must be a bool")
    locations = ("attn", "ffn") if s.houlsby else ("ffn",)
    common = dict(locations=locations, residual=residual, scaling=scaling, modules_to_save=keep)
    if s.kind == "bottleneck":
        return get_config(
            s.preset,
            bottleneck_dim=dim or scaled_dim(STUDY_DIMS["bottleneck"], hidden_size),
            activation="gelu",
            **common,
        )
    return get_config(
        s.preset,
        bottleneck_dim=dim or scaled_dim(STUDY_DIMS["conformer"], hidden_size),
        kernel_size=kernel_size or KERNEL[task],
        **common,
    )


def _reinit_prefixes(model: nn.Module) -> None:
    """PETL-AST initialises prefixes uniformly in +-0.0625 (the core default is N(0, 0.02^2))."""
    from adapterlab.core.tuners.prompt.prefix import PrefixKV

    for m in model.modules():
        if isinstance(m, PrefixKV):
            nn.init.uniform_(m.key, -PROMPT_INIT, PROMPT_INIT)
            nn.init.uniform_(m.value, -PROMPT_INIT, PROMPT_INIT)


def apply_method(model: nn.Module, method: str, name: str = "default", **kwargs) -> AdapterConfig:
    """Add ``method`` to an :class:`~adapterlab.audio.model.ASTClassifier` in place; returns its config."""
    cfg = adapter_config(method, hidden_size=model.ast.config.hidden_size, **kwargs)
    add_adapter(model, cfg, name=name)
    if spec(method).kind == "prefix":
        _reinit_prefixes(model)
    return cfg
