"""The methods of VL-Adapter's multi-task comparison (Table 1), as ``adapterlab.core`` configs.

Sung, Cho, Bansal, "VL-Adapter: Parameter-Efficient Transfer Learning for Vision-and-Language
Tasks", CVPR 2022. One BLIP model serves VQA and captioning; task-conditioned methods read the
batch's task id (:func:`adapterlab.core.set_task_ids`).

Placement (VL-Adapter: on every sublayer output, before dropout / residual / LayerNorm: encoder
self-attention and FFN, decoder self-attention, cross-attention and FFN): on the output
projection (``output.dense``) of every self-attention, cross-attention and FFN of BLIP's
question encoder and answer decoder. The question encoder's cross-attention to the image is
adapted too: it is where BLIP's encoder reads the image, which VL-T5's encoder does in its
self-attention over the concatenated text and visual tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapterlab.core import AdapterConfig, add_adapter, get_config
from torch import nn

from ..methods import ATTENTION, TEXT, adapter_config

__all__ = [
    "MT_METHODS",
    "MultiTaskMethod",
    "SUBLAYERS",
    "layer_norm_names",
    "method_config",
    "mt_spec",
    "apply_mt_method",
]

#: every self-attention, cross-attention and FFN output of the text modules
SUBLAYERS = ATTENTION + r"\.output\.dense|" + TEXT + r"\.output\.dense"


@dataclass(frozen=True)
class MultiTaskMethod:
    """One row of the comparison: the paper's name, its learning rate (bart-base recipe) and
    whether the method is conditioned on the task id."""

    paper_name: str
    paper_lr: float
    task_conditioned: bool


MT_METHODS: dict[str, MultiTaskMethod] = {
    "per_task": MultiTaskMethod("multiple adapters", 3e-4, True),
    "shared": MultiTaskMethod("single adapter", 1e-3, True),
    "half_shared": MultiTaskMethod("half-shared adapters", 1e-3, True),
    "hyperformer": MultiTaskMethod("Hyperformer", 1e-3, True),
    "compacter": MultiTaskMethod("single compacter", 1e-3, False),
    "prompt": MultiTaskMethod("single prompt (prefix tuning)", 1e-3, False),
    "full": MultiTaskMethod("full fine-tuning", 1e-4, False),
}


def mt_spec(method: str) -> MultiTaskMethod:
    """The :class:`MultiTaskMethod` of ``method`` (clear error for unknown names)."""
    try:
        return MT_METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown multi-task method {method!r}; choose from {', '.join(MT_METHODS)}"
        ) from None


def layer_norm_names(model: nn.Module) -> list[str]:
    """Every LayerNorm of the text modules (VL-Adapter's ``--unfreeze_layer_norms``)."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.LayerNorm) and name.startswith(("text_encoder.", "text_decoder."))
    ]


def method_config(
    method: str,
    model: nn.Module,
    *,
    n_tasks: int = 2,
    reduction: float = 2.0,
    prompt_tokens: int = 8,
    hyper: tuple[int, int, int] = (64, 64, 8),
    train_layer_norms: bool = True,
) -> AdapterConfig:
    """The core config of ``method`` for a BLIP VQA model that serves ``n_tasks`` tasks.

    ``hyper``: Hyperformer's task-embedding, hidden and projected sizes (the paper: 512, 128, 8).
    ``train_layer_norms``: every text LayerNorm trains too (shared across tasks), as VL-Adapter
    does for every parameter-efficient method."""
    mt_spec(method)
    text = [n for n in ("text_encoder", "text_decoder") if hasattr(model, n)]
    if method == "full":
        return get_config("linear_probe", modules_to_save=text)
    lns = layer_norm_names(model) if train_layer_norms else []
    if method in ("per_task", "shared", "half_shared"):
        return get_config(
            f"multitask_{method}", n_tasks=n_tasks, target_modules=SUBLAYERS,
            reduction_factor=reduction, activation="gelu", modules_to_save=lns,
        )  # fmt: skip
    if method == "hyperformer":
        emb, hidden, projected = hyper
        return get_config(
            "hyperformer", n_tasks=n_tasks, target_modules=SUBLAYERS, reduction_factor=reduction,
            task_embedding_dim=emb, task_hidden_dim=hidden, projected_dim=projected,
            conditional_layer_norm=False, modules_to_save=lns,
        )  # fmt: skip
    if method == "compacter":  # VL-Adapter: n = 2, unshared rules, unfactorised W, init 0.01
        return get_config(
            "compacter", target_modules=SUBLAYERS, reduction_factor=reduction, phm_dim=2,
            shared_phm_rule=False, factorized_phm_W=False, phm_init_range=0.01,
            modules_to_save=lns,
        )  # fmt: skip
    cfg = adapter_config("prefix", "vqa", prefix_tokens=prompt_tokens, text_modules=tuple(text))
    cfg.modules_to_save = lns
    return cfg


def apply_mt_method(model: nn.Module, method: str, **kwargs) -> AdapterConfig:
    """Add ``method`` to a BLIP VQA model in place; returns the config used."""
    cfg = method_config(method, model, **kwargs)
    add_adapter(model, cfg)
    return cfg
