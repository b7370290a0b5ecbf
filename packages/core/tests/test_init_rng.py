"""Issue #19 item 3: adapter init is a pure function of (seed, adapter name) and leaves the global
random streams untouched, for every registered method (PEFT-backed LoRA/DoRA/Poly included)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from adapterlab.core import adapter_state_dict, add_adapter, get_config
from adapterlab.core.testing import BACKBONES, build_backbone

from .test_invariants import METHODS, UNSUPPORTED, _config

# each method on the first backbone it supports (the toy one for almost all)
CASES = [
    pytest.param(m, next(b for b in BACKBONES if (m, b) not in UNSUPPORTED), id=m) for m in METHODS
]


def _draws() -> tuple:
    return torch.rand(4).tolist(), np.random.rand(2).tolist(), random.random()


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


@pytest.mark.parametrize(("method", "kind"), CASES)
def test_add_adapter_leaves_global_rng_untouched(method, kind):
    model, _ = build_backbone(kind)
    _seed_all(123)
    expected = _draws()
    _seed_all(123)
    add_adapter(model, _config(method, kind), name="task")
    assert _draws() == expected


@pytest.mark.parametrize(("method", "kind"), CASES)
def test_init_does_not_depend_on_adapters_added_before(method, kind):
    alone, _ = build_backbone(kind)
    torch.manual_seed(7)
    add_adapter(alone, _config(method, kind), name="task")
    after, _ = build_backbone(kind)
    torch.manual_seed(7)
    add_adapter(after, _config(method, kind), name="ner")
    add_adapter(after, _config(method, kind), name="task")
    a, b = adapter_state_dict(alone, "task"), adapter_state_dict(after, "task")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def _random_weights(model, name: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in adapter_state_dict(model, name).items() if v.float().std() > 0}


@pytest.mark.parametrize("method", ["pfeiffer", "lora"])
def test_seed_and_name_choose_the_init(method):
    def init(seed, name, global_seed=0):
        torch.manual_seed(global_seed)
        model, _ = build_backbone("toy")
        add_adapter(model, get_config(method, target_modules=None), name=name, seed=seed)
        return _random_weights(model, name)

    same = init(1, "task")
    assert same  # the method has randomly initialised tensors
    for key, value in init(1, "task", global_seed=99).items():  # explicit seed: global seed ignored
        assert torch.equal(value, same[key])
    assert any(not torch.equal(v, same[k]) for k, v in init(2, "task").items())
    assert any(not torch.equal(v, same[k]) for k, v in init(1, "other").items())
    # seed=None follows torch.manual_seed
    torch.manual_seed(5)
    model, _ = build_backbone("toy")
    torch.manual_seed(1)
    add_adapter(model, get_config(method), name="task")
    for key, value in _random_weights(model, "task").items():
        assert torch.equal(value, same[key])
