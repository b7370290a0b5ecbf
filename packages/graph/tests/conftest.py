"""Shared fixtures: a synthetic TAG and tiny random LMs (no downloads)."""

from __future__ import annotations

import pytest
import torch
from adapterlab.graph.data import load_dataset, synthesize_tag
from adapterlab.graph.data.synth import _FILLER, _TOPICS

torch.set_num_threads(1)

VOCAB = sorted({w for t in _TOPICS for w in t} | set(_FILLER) | {"Here", "is", "a", "text"})


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    return synthesize_tag(tmp_path_factory.mktemp("synth"), num_nodes=60, num_classes=3)


@pytest.fixture(scope="session")
def synth_data(synth_dir):
    return load_dataset(synth_dir)


@pytest.fixture(scope="session")
def tiny_cache(synth_data, tmp_path_factory):
    from adapterlab.graph.cache import CacheSpec, build_cache
    from adapterlab.graph.models.llm import load_llm

    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    spec = CacheSpec(model="tiny-llama", chunk_nodes=16, batch_size=8, dtype="float32")
    return build_cache(
        tmp_path_factory.mktemp("cache"), synth_data.texts, model, tok, spec, show_progress=False
    )
