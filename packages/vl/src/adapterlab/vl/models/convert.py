"""Convert a released BLIP pre-training checkpoint (salesforce/BLIP, e.g.
``model_base_capfilt_large.pth``: the model the p-adapter paper adapts) into transformers
folders that :func:`adapterlab.vl.models.load_blip` loads.

The ``.pth`` is read with ``torch.load(weights_only=True)``, which runs no pickled code (a file
that needs it is refused). Key mapping (as transformers' own BLIP conversion script):

- ``visual_encoder.{cls_token, pos_embed, patch_embed.proj}`` -> ``vision_model.embeddings.
  {class_embedding, position_embedding, patch_embedding}``; ``visual_encoder.blocks.i.
  {norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`` -> ``vision_model.encoder.layers.i.
  {layer_norm1, self_attn.qkv, self_attn.projection, layer_norm2, mlp.fc1, mlp.fc2}``;
  ``visual_encoder.norm`` -> ``vision_model.post_layernorm``;
- ``text_encoder.*`` (the question encoder of VQA) and ``text_decoder.*`` keep their names;
- the pre-training-only tensors (momentum encoders ``*_m``, queues, ``vision_proj``,
  ``text_proj``, ``itm_head``, ``temp``) are dropped.

Two folders are written, each ``config.json`` + ``model.safetensors`` (``save_pretrained``):
``<out>/caption`` (``BlipForConditionalGeneration``: image encoder + text decoder) and
``<out>/vqa`` (``BlipForQuestionAnswering``: image encoder + question encoder from
``text_encoder`` + answer decoder from ``text_decoder``, as BLIP's ``blip_vqa`` loads the
pre-trained checkpoint), plus ``blip_pretrained.json`` marking them as *pre-trained* (not
task-fine-tuned). The image size follows the checkpoint's position embeddings (224 px for the
released pre-training checkpoints); the ViT's LayerNorm eps is BLIP's 1e-6. A tokenizer folder
(bert-base-uncased's ``vocab.txt``; BLIP adds ``[DEC]`` and ``[ENC]``) is copied in when given.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["PRETRAINED_MARKER", "ConversionError", "convert_blip_checkpoint", "rename_blip_key"]

PRETRAINED_MARKER = "blip_pretrained.json"
_DROP = re.compile(
    r"^(?:visual_encoder_m|text_encoder_m|text_decoder_m|vision_proj_m|text_proj_m|vision_proj|"
    r"text_proj|itm_head)\.|^(?:temp|image_queue|text_queue|idx_queue|ptr_queue)$"
)
_VISION = [
    (r"^visual_encoder\.cls_token$", "vision_model.embeddings.class_embedding"),
    (r"^visual_encoder\.pos_embed$", "vision_model.embeddings.position_embedding"),
    (r"^visual_encoder\.patch_embed\.proj\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual_encoder\.norm\.", "vision_model.post_layernorm."),
    (r"^visual_encoder\.blocks\.(\d+)\.norm1\.", r"vision_model.encoder.layers.\1.layer_norm1."),
    (r"^visual_encoder\.blocks\.(\d+)\.norm2\.", r"vision_model.encoder.layers.\1.layer_norm2."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision_model.encoder.layers.\1.self_attn.qkv."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision_model.encoder.layers.\1.self_attn.projection."),
    (r"^visual_encoder\.blocks\.(\d+)\.mlp\.", r"vision_model.encoder.layers.\1.mlp."),
]  # fmt: skip


class ConversionError(ValueError):
    """The checkpoint is not a BLIP pre-training checkpoint (the message names the file)."""


def rename_blip_key(key: str) -> str | None:
    """The transformers name of a released BLIP key, or None for pre-training-only tensors."""
    if _DROP.search(key):
        return None
    for pattern, repl in _VISION:
        if re.search(pattern, key):
            return re.sub(pattern, repl, key)
    if key.startswith(("text_encoder.", "text_decoder.")):
        return key
    return None


def _load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle refusing code, truncated zip, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(
            f"{path}: not loadable with torch.load(weights_only=True) ({first})"
        ) from err
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected a state dict (or {{'model': state dict}})")
    return state


def _count(keys: list[str], pattern: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def _config(state: dict[str, torch.Tensor], path: Path, heads: int | None) -> Any:
    from transformers import BlipConfig

    keys = list(state)
    need = ["visual_encoder.cls_token", "visual_encoder.pos_embed",
            "visual_encoder.patch_embed.proj.weight",
            "text_decoder.bert.embeddings.word_embeddings.weight"]  # fmt: skip
    missing = [k for k in need if k not in state]
    if missing:
        raise ConversionError(f"{path}: not a BLIP checkpoint (no {missing[0]!r})")
    width = state["visual_encoder.cls_token"].shape[-1]
    patch = state["visual_encoder.patch_embed.proj.weight"].shape[-1]
    grid = math.isqrt(state["visual_encoder.pos_embed"].shape[1] - 1)
    vocab, text_width = state["text_decoder.bert.embeddings.word_embeddings.weight"].shape
    prefix = "text_decoder.bert.encoder.layer"
    vision = dict(
        hidden_size=width,
        num_hidden_layers=_count(keys, r"^visual_encoder\.blocks\.(\d+)\."),
        num_attention_heads=heads or max(1, width // 64),
        intermediate_size=state["visual_encoder.blocks.0.mlp.fc1.weight"].shape[0],
        image_size=grid * patch,
        patch_size=patch,
        layer_norm_eps=1e-6,  # BLIP's ViT
    )
    text = dict(
        vocab_size=vocab,
        hidden_size=text_width,
        encoder_hidden_size=width,
        num_hidden_layers=_count(keys, rf"^{re.escape(prefix)}\.(\d+)\."),
        num_attention_heads=heads or max(1, text_width // 64),
        intermediate_size=state[f"{prefix}.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state[
            "text_decoder.bert.embeddings.position_embeddings.weight"
        ].shape[0],
    )
    return BlipConfig(text_config=text, vision_config=vision)


def convert_blip_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    tokenizer: str | Path | None = None,
    heads: int | None = None,
) -> dict[str, Path]:
    """Write ``out/caption`` and ``out/vqa`` from a BLIP pre-training ``.pth``; returns them.

    ``heads``: attention heads (not stored in the weights; default width // 64, BLIP's 12 for
    ViT-B / BERT-base).
    """
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

    checkpoint, out = Path(checkpoint), Path(out)
    state = _load(checkpoint)
    renamed = {}
    for key, value in state.items():
        new = rename_blip_key(key)
        if new is not None:
            renamed[new] = value
    config = _config(state, checkpoint, heads)
    written = {}
    for task, cls in (("caption", BlipForConditionalGeneration), ("vqa", BlipForQuestionAnswering)):
        model = cls(config)
        want = model.state_dict()
        if task == "vqa" and not any(k.startswith("text_encoder.") for k in renamed):
            raise ConversionError(f"{checkpoint}: no text_encoder.* weights for the VQA model")
        mine = {k: v for k, v in renamed.items() if k in want}
        missing = [
            k for k in want
            if k not in mine and not k.endswith(("position_ids", "predictions.decoder.weight",
                                                 "predictions.decoder.bias"))
        ]  # fmt: skip
        if missing:
            raise ConversionError(
                f"{checkpoint}: {task} model weights missing, e.g. {missing[0]!r}"
            )
        for k, v in mine.items():
            if v.shape != want[k].shape:
                raise ConversionError(
                    f"{checkpoint}: {k} has shape {tuple(v.shape)}, the model {tuple(want[k].shape)}"
                )
        model.load_state_dict(mine, strict=False)
        model.tie_weights()
        folder = out / task
        model.save_pretrained(folder)
        if tokenizer is not None:
            _save_processor(Path(tokenizer), folder, config.vision_config.image_size)
        (folder / PRETRAINED_MARKER).write_text(
            json.dumps({"source": str(checkpoint), "kind": "BLIP pre-training"}, indent=2) + "\n"
        )
        written[task] = folder
    return written


def _save_processor(tokenizer: Path, folder: Path, image_size: int) -> None:
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor

    tok = BertTokenizer.from_pretrained(str(tokenizer))
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    BlipProcessor(processor, tok).save_pretrained(folder)
