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

import torch
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
    #: the published size of the method (prompt / prefix tokens), its default here
    num_tokens: int | None = None


METHODS: dict[str, MethodSpec] = {
    "linear": MethodSpec(
        "linear_probe", 1e-3, "probe", description="linear probe (head + final LN)"
    ),
    "full": MethodSpec("full", 5e-5, "full", description="full fine-tuning"),
    "bitfit": MethodSpec(
        "bitfit", 5e-3, "bitfit", description="BitFit (Linear and LayerNorm biases)"
    ),
    "bitfit_original": MethodSpec(
        "bitfit",
        5e-3,
        "bitfit",
        description="BitFit as PETL-AST: the biases themselves decay, final LN weight frozen",
    ),
    "prompt": MethodSpec(
        "prompt", 1e-2, "prompt", description="shallow prompt tuning (SPT)", num_tokens=300
    ),
    "prompt_deep": MethodSpec(
        "prompt_deep", 1e-2, "prompt", description="deep prompt tuning (DPT)", num_tokens=25
    ),
    "prefix": MethodSpec(
        "prefix", 1e-2, "prefix", description="prefix tuning (key/value prefixes)", num_tokens=12
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


#: paper's table row name -> our method (parallel variants of the adapters are separate rows)
BITFIT_ORIGINAL = "bitfit_original"


def method_names() -> list[str]:
    return list(METHODS)


def parse_method(entry: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:size"``: size = prompt tokens, adapter dim / LoRA rank, or prefix vectors per
    layer counting keys and values together as the paper does (``prefix:24`` = 12 keys + 12 values)."""
    name, _, size = entry.strip().partition(":")
    spec(name)
    if not size:
        return name, None
    if not size.isdigit() or int(size) < 1:
        raise ValueError(f"size in {entry!r} must be a positive integer")
    if spec(name).kind in ("probe", "full", "bitfit"):
        raise ValueError(f"{name} has no size to set ({entry!r})")
    if spec(name).kind == "prefix" and int(size) % 2:
        raise ValueError(
            f"{entry!r}: a prefix size counts keys and values together (prefix:24 = 12 + 12), "
            "so it must be even"
        )
    return name, int(size)


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
    num_prompts: int | None = None,
    num_prefix: int | None = None,
    scaling: float = 1.0,
) -> AdapterConfig:
    """The ``adapterlab.core`` config of ``method`` with the study's defaults for an AST of ``hidden_size``.

    Args:
        task: ``"sound"`` or ``"speech"`` (conformer kernel 8 or 31).
        residual: adapters only; ``None`` = the core default (on for sequential, off for parallel, as the
            current PETL-AST README recommends). Must be a real bool - the original's ``type=bool`` flag
            turned ``--apply_residual False`` into True.
        dim: bottleneck dimension / LoRA rank (default: the study's, scaled to ``hidden_size``).
        num_prompts / num_prefix: tokens (default: the method's published size: SPT 300, DPT 25,
            prefix 12 key + 12 value vectors per layer).
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
        # all Linear and LayerNorm biases of the encoder (PETL-AST)
        targets = r"ast\.layers\.\d+\.(attention\.[qkvo]_proj|mlp\.fc[12]|layernorm_(before|after))"
        if method == BITFIT_ORIGINAL:  # the final LN trains its bias only, its weight stays frozen
            return get_config(
                s.preset, target_modules=f"({targets}|ast\\.layernorm)", modules_to_save=[HEAD]
            )
        return get_config(s.preset, target_modules=targets, modules_to_save=keep)
    if s.kind == "prompt":
        # prompts replace the distillation token (position 1); the head pools all tokens, prompts included
        return get_config(
            s.preset,
            num_tokens=num_prompts or s.num_tokens,
            position=1,
            replace=1,
            init_range=PROMPT_INIT,
            strip_output=False,
            modules_to_save=keep,
        )
    if s.kind == "prefix":
        return get_config(
            s.preset,
            num_tokens=num_prefix or s.num_tokens,
            init_range=PROMPT_INIT,
            modules_to_save=keep,
        )
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


def _bias_deltas(model: nn.Module, name: str):
    """``(module name, module, bias name, delta parameter)`` of every BitFit bias of adapter ``name``."""
    for qualname, module in model.named_modules():
        for pname, chain in getattr(module, "parametrizations", {}).items():
            for p in chain:
                deltas = getattr(p, "deltas", None)
                if deltas is not None and name in deltas:
                    yield qualname, module, pname, deltas[name]


def fold_biases_into_bitfit(model: nn.Module, name: str = "default") -> int:
    """PETL-AST's BitFit: make each BitFit delta hold the whole bias (frozen base bias set to zero).

    The core's BitFit trains a zero-initialised delta on top of the frozen bias, so weight decay pulls the
    bias back to its *pretrained* value. PETL-AST unfreezes the biases themselves, so AdamW's decay pulls
    them towards *zero*. With the pretrained bias moved into the delta the two are identical during
    training. :func:`unfold_biases_from_bitfit` turns the result back into the core's form before it is
    saved. Returns the number of biases folded.
    """
    count = 0
    with torch.no_grad():
        for _, module, pname, delta in _bias_deltas(model, name):
            base = module.parametrizations[pname].original
            delta.copy_(base + delta)
            base.zero_()
            count += 1
    return count


def unfold_biases_from_bitfit(
    model: nn.Module, pretrained: nn.Module, name: str = "default", prefix: str = "ast."
) -> int:
    """Undo :func:`fold_biases_into_bitfit` after training: base bias = ``pretrained``'s, delta = trained -
    pretrained (the core's BitFit form, which is what ``adapter.safetensors`` must hold so that
    ``adapterlab.core.load_adapter`` on a fresh backbone reproduces the trained model).

    ``pretrained`` is the untouched backbone (e.g. ``load_ast(source)``); ``prefix`` is the backbone's
    module name inside ``model``. The computed function is unchanged. Returns the number of biases.
    """
    reference = dict(pretrained.named_parameters())
    count = 0
    with torch.no_grad():
        for qualname, module, pname, delta in _bias_deltas(model, name):
            key = f"{qualname.removeprefix(prefix)}.{pname}"
            if key not in reference:
                raise KeyError(f"the pretrained backbone has no bias {key!r}")
            base = module.parametrizations[pname].original
            if bool(base.any()):
                raise ValueError(f"{qualname}.{pname}: base bias is not zero (not a folded BitFit)")
            original = reference[key].to(delta)
            base.copy_(original)
            delta.sub_(original)
            count += 1
    return count


def apply_method(model: nn.Module, method: str, name: str = "default", **kwargs) -> AdapterConfig:
    """Add ``method`` to an :class:`~adapterlab.audio.model.ASTClassifier` in place; returns its config."""
    cfg = adapter_config(method, hidden_size=model.ast.config.hidden_size, **kwargs)
    add_adapter(model, cfg, name=name)
    if method == BITFIT_ORIGINAL:
        fold_biases_into_bitfit(model, name)
    return cfg
