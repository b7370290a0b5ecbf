"""Encoders and the adapted model."""

from .backbone import ModelLoadError, TextModel, load_mlm, minilm_path, tiny_tokenizer

__all__ = ["ModelLoadError", "TextModel", "load_mlm", "minilm_path", "tiny_tokenizer"]
