"""BLIP backbones through transformers: real checkpoints (hub id or local folder) or a tiny
random preset for CPUs, with the tokenizer and image processor that go with them.

Real weights: ``Salesforce/blip-vqa-base`` (``BlipForQuestionAnswering``) and
``Salesforce/blip-image-captioning-base`` (``BlipForConditionalGeneration``), or a folder with
their files. No hub is reachable offline; the error says how to fetch them elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FINETUNED",
    "HUB_IDS",
    "TINY",
    "Backbone",
    "ModelLoadError",
    "TaskFinetunedWarning",
    "load_blip",
    "tiny_backbone",
    "tiny_config",
    "vqa_from_captioner",
    "warn_if_task_finetuned",
]

TINY = "tiny"
HUB_IDS = {
    "vqa": "Salesforce/blip-vqa-base",
    "caption": "Salesforce/blip-image-captioning-base",
}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


class ModelLoadError(RuntimeError):
    """A checkpoint could not be loaded (the message names the offline fix)."""


@dataclass
class Backbone:
    """A BLIP model with its tokenizer and image processor."""

    model: nn.Module
    tokenizer: Any
    image_processor: Any
    task: str  # "vqa" | "caption"
    source: str

    @property
    def bos_id(self) -> int:
        return int(self.model.config.text_config.bos_token_id)

    @property
    def sep_id(self) -> int:
        return int(self.model.config.text_config.sep_token_id)

    @property
    def pad_id(self) -> int:
        return int(self.model.config.text_config.pad_token_id)

    def save(self, directory: str | Path) -> None:
        """``save_pretrained`` of model, tokenizer and image processor (safetensors)."""
        from transformers import BlipProcessor

        self.model.save_pretrained(directory)
        BlipProcessor(self.image_processor, self.tokenizer).save_pretrained(directory)


def _model_class(task: str) -> type:
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

    if task not in HUB_IDS:
        raise ValueError(f"task must be 'vqa' or 'caption', got {task!r}")
    return BlipForQuestionAnswering if task == "vqa" else BlipForConditionalGeneration


def tiny_config(vocab_size: int, *, image_size: int = 48, bos: int = 5, sep: int = 3) -> Any:
    """A BLIP config small enough for CPU training (width 64, 2 + 2 layers, 8 px patches)."""
    from transformers import BlipConfig

    text = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        encoder_hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=40,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=0,
        bos_token_id=bos,
        sep_token_id=sep,
        eos_token_id=sep,
    )
    vision = dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=image_size,
        patch_size=8,
    )
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=64)


def _words(texts: Iterable[str]) -> list[str]:
    words: set[str] = set()
    for t in texts:
        words.update(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", t.lower()))
    return sorted(words)


def tiny_backbone(
    task: str, texts: Iterable[str], directory: str | Path, *, image_size: int = 48, seed: int = 0
) -> Backbone:
    """A random tiny BLIP with a word-level BERT tokenizer over ``texts`` (written to
    ``directory/vocab.txt``)."""
    from transformers import BertTokenizer, BlipImageProcessor

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + [w for w in _words(texts) if w not in SPECIALS]) + "\n")
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True, bos_token="[DEC]")
    processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    config = tiny_config(
        len(tokenizer),
        image_size=image_size,
        bos=tokenizer.convert_tokens_to_ids("[DEC]"),
        sep=tokenizer.sep_token_id,
    )
    torch.manual_seed(seed)
    model = _model_class(task)(config)
    return Backbone(model.eval(), tokenizer, processor, task, TINY)


def load_blip(task: str, source: str | None = None) -> Backbone:
    """A BLIP checkpoint for ``task`` ("vqa" or "caption") from a hub id or local folder.

    Raises:
        ModelLoadError: the checkpoint is neither a local folder nor in the local HF cache.
    """
    from transformers import BlipProcessor

    cls = _model_class(task)
    source = source or HUB_IDS[task]
    local = Path(source).is_dir()
    try:
        model = cls.from_pretrained(source, local_files_only=not local and _offline())
        processor = BlipProcessor.from_pretrained(source, local_files_only=not local and _offline())
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"cannot load BLIP checkpoint {source!r} ({type(err).__name__}: {str(err)[:200]}). "
            "Without internet, fetch it on a connected machine (`huggingface-cli download "
            f"{HUB_IDS[task]} --local-dir DIR`), copy DIR here and pass its path; or use "
            "--model tiny"
        ) from err
    warn_if_task_finetuned(task, source, model)
    return Backbone(model.eval(), processor.tokenizer, processor.image_processor, task, source)


#: hub checkpoints already fine-tuned on a task (BLIP's released task models)
FINETUNED = {
    "vqa": ("Salesforce/blip-vqa-base", "Salesforce/blip-vqa-capfilt-large"),
    "caption": ("Salesforce/blip-image-captioning-base", "Salesforce/blip-image-captioning-large"),
}


class TaskFinetunedWarning(UserWarning):
    """A checkpoint fine-tuned on a task is the starting point for that same task."""


def warn_if_task_finetuned(task: str, source: str, model: nn.Module) -> bool:
    """Warn when ``source`` was already fine-tuned on ``task`` (a frozen-backbone baseline then
    gets the task for free). Folders written by :func:`convert_blip_checkpoint` (or the tiny
    pre-training) carry ``blip_pretrained.json`` and never warn."""
    import warnings

    from .convert import PRETRAINED_MARKER

    folder = Path(source)
    if folder.is_dir() and (folder / PRETRAINED_MARKER).is_file():
        return False
    architectures = getattr(model.config, "architectures", None) or []
    finetuned = source in FINETUNED.get(task, ()) or (
        folder.is_dir() and _model_class(task).__name__ in architectures
    )
    if finetuned:
        warnings.warn(
            f"{source} is a BLIP checkpoint already fine-tuned for {task}; starting {task} "
            "from it gives every method (and the frozen baselines) the task for free, unlike "
            "the paper, which adapts the pre-trained BLIP. Convert the pre-training checkpoint "
            "with `adapterlab-vl convert --checkpoint model_base_capfilt_large.pth --out DIR`.",
            TaskFinetunedWarning,
            stacklevel=2,
        )
    return finetuned


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get(
        "TRANSFORMERS_OFFLINE", "0"
    ) not in ("0", "", "false")


def vqa_from_captioner(captioner: Backbone) -> Backbone:
    """A ``BlipForQuestionAnswering`` initialised from a captioning BLIP: the image encoder and
    answer decoder are copied, the question encoder starts from the caption decoder's BERT
    (both are BERT with cross-attention), as BLIP initialises VQA from pre-trained weights."""
    from transformers import BlipForQuestionAnswering

    src = captioner.model
    vqa = BlipForQuestionAnswering(src.config)
    vqa.vision_model.load_state_dict(src.vision_model.state_dict())
    vqa.text_decoder.load_state_dict(src.text_decoder.state_dict())
    missing = vqa.text_encoder.load_state_dict(src.text_decoder.bert.state_dict(), strict=False)
    if missing.unexpected_keys:
        raise ModelLoadError(f"caption decoder -> question encoder: {missing.unexpected_keys}")
    return Backbone(vqa.eval(), captioner.tokenizer, captioner.image_processor, "vqa", "captioner")
