"""Shared fixtures: a small synthetic dataset in the real layouts (written once per session)."""

from __future__ import annotations

import pytest
from adapterlab.vl.data import SynthSpec, synthesize


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    spec = SynthSpec(restval=24, train=24, val=8, test=8, seed=1)
    return synthesize(tmp_path_factory.mktemp("vl") / "synth", spec)
