"""Adapter arithmetic: weighted averages (and the core's stack / parallel-sum composition)."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    adapter_state_dict,
    add_adapter,
    average_adapters,
    get_config,
    list_adapters,
    set_active,
)
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.base import OutputAdapterWrapper
from torch import nn


def _randomise(model: nn.Module, name: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in adapter_state_dict(model, name).values():  # detached views of live tensors
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g))


def test_weighted_average_equals_the_formula() -> None:
    model, x = build_backbone("toy")
    cfg = get_config("pfeiffer", bottleneck_dim=4)
    for i, name in enumerate(("a", "b", "c")):
        add_adapter(model, cfg, name)
        _randomise(model, name, i)
    states = {n: {k: v.clone() for k, v in adapter_state_dict(model, n).items()} for n in "abc"}
    average_adapters(model, ["a", "b", "c"], [0.5, 0.3, 1.2], "avg")
    avg = adapter_state_dict(model, "avg")
    assert avg.keys() == states["a"].keys()
    for k in avg:
        expected = (0.5 * states["a"][k] + 0.3 * states["b"][k] + 1.2 * states["c"][k]) / 2.0
        torch.testing.assert_close(avg[k], expected)
    assert list_adapters(model)["avg"] == cfg

    # the averaged adapter is what runs, and it equals an adapter holding the formula's tensors
    with torch.no_grad():
        out = model(x)
    other, _ = build_backbone("toy")
    add_adapter(other, cfg, "manual")
    with torch.no_grad():
        for k, t in adapter_state_dict(other, "manual").items():
            t.copy_(avg[k])
        torch.testing.assert_close(other(x), out)

    average_adapters(model, ["a", "b"], [1.0, -1.0], "diff", normalize=False)
    for k, t in adapter_state_dict(model, "diff").items():
        torch.testing.assert_close(t, states["a"][k] - states["b"][k])


def test_uniform_lora_average() -> None:
    model, _ = build_backbone("roberta")
    cfg = get_config("lora", r=2)
    for i, name in enumerate(("x", "y")):
        add_adapter(model, cfg, name)
        _randomise(model, name, 10 + i)
    sx, sy = adapter_state_dict(model, "x"), adapter_state_dict(model, "y")
    average_adapters(model, ["x", "y"], new_name="xy")
    for k, t in adapter_state_dict(model, "xy").items():
        torch.testing.assert_close(t, (sx[k] + sy[k]) / 2)


def test_incompatible_adapters_are_rejected() -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4), "a")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=8), "b")
    with pytest.raises(ValueError, match="different configs"):
        average_adapters(model, ["a", "b"])
    with pytest.raises(ValueError, match="no adapter"):
        average_adapters(model, ["a", "zzz"])
    with pytest.raises(ValueError, match="weights sum to 0"):
        average_adapters(model, ["a"], [0.0])
    add_adapter(model, get_config("mosa", bottleneck_dim=4, seed=None), "m1")
    add_adapter(model, get_config("mosa", bottleneck_dim=4, seed=None), "m2")
    with pytest.raises(ValueError, match="non-float tensor"):
        average_adapters(model, ["m1", "m2"])
    add_adapter(model, get_config("mosa", bottleneck_dim=4, seed=3), "s1")
    add_adapter(model, get_config("mosa", bottleneck_dim=4, seed=3), "s2")
    average_adapters(model, ["s1", "s2"], new_name="s12")  # same partition: fine
    assert "s12" in list_adapters(model)


def test_stack_and_parallel_composition() -> None:
    """The core's composition of two active sequential adapters at one sublayer."""
    model, x = build_backbone("toy")
    cfg = get_config("pfeiffer", bottleneck_dim=4)
    add_adapter(model, cfg, "a")
    add_adapter(model, cfg, "b")
    _randomise(model, "a", 1)
    _randomise(model, "b", 2)
    wrapper = next(m for m in model.modules() if isinstance(m, OutputAdapterWrapper))
    h = torch.randn(2, 3, 16)
    with torch.no_grad():
        y = wrapper.base_layer(h)
        a, b = wrapper.adapters["a"], wrapper.adapters["b"]
        set_active(model, ["a", "b"], composition="stack")
        torch.testing.assert_close(wrapper(h), b(h, a(h, y)))
        set_active(model, ["a", "b"], composition="parallel")
        torch.testing.assert_close(wrapper(h), y + (a(h, y) - y) + (b(h, y) - y))
