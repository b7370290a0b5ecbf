"""Shared fixtures: tiny tokenizers (byte-level BPE and lower-casing WordPiece), small files."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """This package's tiny models run fastest on one thread (several threads spin against each
    other on small matrices, worst on shared cores); restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bpe_tokenizer():
    from adapterlab.code.models.backbone import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def wordpiece_tokenizer():
    """A BERT-style WordPiece tokenizer (lower-casing, accent stripping) trained here."""
    from adapterlab.code.models.backbone import _tiny_corpus
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    wp.train_from_iterator(_tiny_corpus(), vocab_size=600, show_progress=False)
    return BertTokenizerFast(tokenizer_object=wp._tokenizer, do_lower_case=True)


@pytest.fixture(scope="session")
def tiny_backbone():
    from adapterlab.code.models.backbone import load_backbone

    return load_backbone("tiny")
