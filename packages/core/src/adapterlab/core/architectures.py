"""Default adapter placements per backbone family (used when ``target_modules`` is ``None``).

Like PEFT's ``TRANSFORMERS_MODELS_TO_*_TARGET_MODULES_MAPPING`` and AdapterHub's
``AdapterModelInterface``, each family maps *slots* to module-name regexes:

- ``ffn``: the feed-forward sublayer (its output gets a bottleneck/conformer adapter);
- ``attn``: the attention sublayer's output;
- ``ffn_norm``/``attn_norm``: the LayerNorm closing a post-LN sublayer (AdapterHub's ``seq_bn``);
- ``qv``: query and value projections (LoRA);
- ``blocks``: transformer blocks (prompt tuning);
- ``attention``: attention modules holding key/value projections (prefix tuning).

``parallel_sources`` maps an adapter target to the module whose *input* a parallel adapter reads
(He et al. 2022: the adapter sees the sublayer's input). It is only needed where the sublayer is
split over several modules (BERT/RoBERTa); otherwise the target's own input is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "ArchitectureSpec",
    "detect_architectures",
    "default_targets",
    "default_parallel_sources",
    "is_causal_model",
    "match_targets",
]

_ANY = r"(?:.*\.)?"


@dataclass(frozen=True)
class ArchitectureSpec:
    """Slot -> regex table for one backbone family."""

    name: str
    slots: dict[str, str]
    parallel_sources: dict[str, str] = field(default_factory=dict)


_BERT_LIKE = ArchitectureSpec(
    name="bert-like",
    slots={
        "ffn": _ANY + r"layer\.\d+\.output\.dense",
        "attn": _ANY + r"layer\.\d+\.attention\.output\.dense",
        "ffn_norm": _ANY + r"layer\.\d+\.output\.LayerNorm",
        "attn_norm": _ANY + r"layer\.\d+\.attention\.output\.LayerNorm",
        "qv": _ANY + r"layer\.\d+\.attention\.self\.(?:query|value)",
        "blocks": _ANY + r"encoder\.layer\.\d+",
        "attention": _ANY + r"layer\.\d+\.attention\.self",
    },
    parallel_sources={
        r"(.*layer\.\d+)\.output\.dense": r"\1.intermediate",
        r"(.*layer\.\d+)\.attention\.output\.dense": r"\1.attention.self",
    },
)

_AST_LIKE = ArchitectureSpec(
    name="ast-like",
    slots={
        "ffn": _ANY + r"layers\.\d+\.mlp",
        "attn": _ANY + r"layers\.\d+\.attention",
        "qv": _ANY + r"layers\.\d+\.attention\.(?:q_proj|v_proj)",
        "blocks": _ANY + r"layers\.\d+",
        "attention": _ANY + r"layers\.\d+\.attention",
    },
)

# Decoder LMs with ``model.layers.N.{self_attn,mlp}`` (Llama, Qwen2, Mistral, SmolLM, ...).
_LLAMA_LIKE = ArchitectureSpec(
    name="llama-like",
    slots={
        "ffn": _ANY + r"layers\.\d+\.mlp",
        "attn": _ANY + r"layers\.\d+\.self_attn",
        "qv": _ANY + r"layers\.\d+\.self_attn\.(?:q_proj|v_proj)",
        "blocks": _ANY + r"layers\.\d+",
        "attention": _ANY + r"layers\.\d+\.self_attn",
    },
)

# GPT-2 style: ``h.N.{attn,mlp}`` with packed ``c_attn`` (transformers ``Conv1D``).
_GPT2_LIKE = ArchitectureSpec(
    name="gpt2-like",
    slots={
        "ffn": _ANY + r"h\.\d+\.mlp",
        "attn": _ANY + r"h\.\d+\.attn",
        "qv": _ANY + r"h\.\d+\.attn\.c_attn",
        "blocks": _ANY + r"h\.\d+",
        "attention": _ANY + r"h\.\d+\.attn",
    },
)

# open_clip (VisionTransformer / TextTransformer) and any model built from blocks with an
# ``attn`` nn.MultiheadAttention and an ``mlp`` child inside ``resblocks``.
_RESBLOCKS = ArchitectureSpec(
    name="resblocks",
    slots={
        "ffn": _ANY + r"resblocks\.\d+\.mlp",
        "attn": _ANY + r"resblocks\.\d+\.attn",
        "qv": _ANY + r"resblocks\.\d+\.attn",
        "blocks": _ANY + r"resblocks\.\d+",
        "attention": _ANY + r"resblocks\.\d+\.attn",
    },
)

HF_MODEL_TYPES: dict[str, ArchitectureSpec] = {
    "roberta": _BERT_LIKE,
    "bert": _BERT_LIKE,
    "xlm-roberta": _BERT_LIKE,
    "camembert": _BERT_LIKE,
    "audio-spectrogram-transformer": _AST_LIKE,
    "llama": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "gpt2": _GPT2_LIKE,
}


def detect_architectures(model: nn.Module) -> list[ArchitectureSpec]:
    """The known backbone families found anywhere inside ``model``."""
    specs: list[ArchitectureSpec] = []
    for name, module in model.named_modules():
        model_type = getattr(getattr(module, "config", None), "model_type", None)
        spec = HF_MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None
        if spec is None and isinstance(module, nn.MultiheadAttention):
            parts = name.replace(".base_layer", "").split(".")  # also once wrapped by an adapter
            if len(parts) >= 3 and parts[-1] == "attn" and parts[-3] == "resblocks":
                spec = _RESBLOCKS
        if spec is not None and spec not in specs:
            specs.append(spec)
    return specs


def default_targets(
    model: nn.Module,
    slots: tuple[str, ...],
    method: str,
    fallback: dict[str, str] | None = None,
) -> str:
    """One regex covering ``slots`` for every family detected in ``model`` (a family without a
    slot uses ``fallback[slot]`` instead)."""
    fallback = fallback or {}
    specs = detect_architectures(model)
    if not specs:
        raise ValueError(
            f"{method}: target_modules=None but {type(model).__name__} is not a known "
            f"architecture (known: HF {sorted(HF_MODEL_TYPES)}, open_clip-style resblocks). "
            "Pass target_modules explicitly."
        )
    patterns = [
        spec.slots[s] if s in spec.slots else spec.slots[fallback.get(s, s)]
        for spec in specs
        for s in slots
    ]
    return "|".join(f"(?:{p})" for p in patterns)


def match_targets(
    model: nn.Module, target_modules: str | list[str] | None, slots: tuple[str, ...], method: str
) -> list[tuple[str, nn.Module]]:
    """``(clean name, module)`` for ``target_modules``, or for the architecture's default
    ``slots`` when it is None."""
    from .targeting import match_modules

    if target_modules is None:
        target_modules = default_targets(model, slots, method)
    return match_modules(model, target_modules)


def default_parallel_sources(model: nn.Module) -> dict[str, str]:
    """Parallel-input remapping for every detected family."""
    out: dict[str, str] = {}
    for spec in detect_architectures(model):
        out.update(spec.parallel_sources)
    return out


def is_causal_model(model: nn.Module) -> bool:
    """True when ``model`` holds causal self-attention (a decoder LM): some module inside has
    ``is_causal=True`` (transformers attention modules set it), or an HF config says
    ``is_decoder``."""
    for module in model.modules():
        if getattr(module, "is_causal", False) is True:
            return True
        if getattr(getattr(module, "config", None), "is_decoder", False) is True:
            return True
    return False
