"""Shared fixtures: a small synthetic dataset in the real layouts (written once per session)."""

from __future__ import annotations

import pytest
import torch
from adapterlab.vl.config import RunConfig
from adapterlab.vl.data import SynthSpec, derive_snli_ve, derive_vizwiz, synthesize
from adapterlab.vl.pipeline import pretrain_tiny
from adapterlab.vl.train import Prepared, resolve_sources


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The tiny BLIP's small matrices only lose time to thread synchronisation (the embedded
    main job runs on one thread too); restored after each module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    spec = SynthSpec(restval=24, train=24, val=8, test=8, seed=1)
    root = synthesize(tmp_path_factory.mktemp("vl") / "synth", spec)
    derive_snli_ve(root)  # before the pre-training: their words join the vocabulary
    derive_vizwiz(root)
    return root


@pytest.fixture(scope="session")
def prepared(synth_root, tmp_path_factory):
    """A tiny BLIP pre-trained on ``synth_root`` (8 epochs) and the resolved sources."""
    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(out=str(out), pretrain_epochs=8, progress=False)
    pretrained = pretrain_tiny(cfg, synth_root)
    return out, Prepared(
        synth_root / "vqav2", synth_root / "coco", resolve_sources(cfg, pretrained)
    )
