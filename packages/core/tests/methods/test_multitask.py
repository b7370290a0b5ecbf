"""Multi-task adapters (shared / per-task / half-shared, VL-Adapter) and Hyperformer: per-sample
task routing, sharing structure, the paper's generator sizes."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import add_adapter, get_config, set_task_ids, use_task_ids
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.hyperformer import HyperformerConfig, HyperNetwork, hypernetwork
from adapterlab.core.tuners.multitask import MultiTaskAdapter

IDS = [0, 2, 1, 2]


def _perturb(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.3)


def _mixed_equals_single_task_batches(model: torch.nn.Module, x: torch.Tensor) -> None:
    set_task_ids(model, IDS)
    with torch.no_grad():
        mixed = model(x)
        for i, task in enumerate(IDS):
            with use_task_ids(model, task):
                torch.testing.assert_close(model(x[i : i + 1]), mixed[i : i + 1], atol=1e-6, rtol=0)
        with use_task_ids(model, 0):
            assert not torch.allclose(model(x[1:2]), mixed[1:2])  # task 2 differs from task 0


@pytest.mark.parametrize("preset", ["multitask_per_task", "multitask_half_shared", "hyperformer"])
def test_one_batch_mixes_tasks(preset: str) -> None:
    model, x = build_backbone("roberta")
    extra = {"task_heads": ["head"]} if preset.startswith("multitask") else {}
    add_adapter(model, get_config(preset, n_tasks=3, bottleneck_dim=4, **extra))
    _perturb(model)
    _mixed_equals_single_task_batches(model, x)


@pytest.mark.parametrize(
    ("sharing", "copies"), [("shared", (1, 1)), ("per_task", (3, 3)), ("half_shared", (1, 3))]
)
def test_sharing_structure(sharing: str, copies: tuple[int, int]) -> None:
    """VL-Adapter: single = one adapter for all tasks; half-shared = one projection shared."""
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config(f"multitask_{sharing}", n_tasks=3, bottleneck_dim=4))
    layers = [m for m in model.modules() if isinstance(m, MultiTaskAdapter)]
    assert len(layers) == 4  # attention and FFN of two layers
    for layer in layers:
        assert (layer.down_weight.shape[0], layer.up_weight.shape[0]) == copies


def test_training_one_task_leaves_the_others_per_task_parts_alone() -> None:
    model, x = build_backbone("roberta")
    add_adapter(
        model, get_config("multitask_half_shared", n_tasks=3, bottleneck_dim=4, task_heads=["head"])
    )
    _perturb(model)
    layer = next(m for m in model.modules() if isinstance(m, MultiTaskAdapter))
    head = model.head.adapters["default"]
    set_task_ids(model, 1)
    model(x).sum().backward()
    assert layer.down_weight.grad.abs().sum() > 0  # shared down-projection
    assert layer.up_weight.grad[1].abs().sum() > 0
    assert layer.up_weight.grad[[0, 2]].abs().sum() == 0
    assert head[1].weight.grad is not None and head[0].weight.grad is None


def test_missing_or_bad_task_ids_are_clear_errors() -> None:
    model, x = build_backbone("roberta")
    add_adapter(model, get_config("hyperformer", n_tasks=3, bottleneck_dim=4))
    with pytest.raises(ValueError, match="serves 3 tasks: call set_task_ids"):
        model(x)
    set_task_ids(model, [0, 3, 1, 1])
    with pytest.raises(ValueError, match="task id 3 out of range"):
        model(x)
    set_task_ids(model, [0, 1])
    with pytest.raises(ValueError, match="batch has 4 samples"):
        model(x)


def test_hyperformer_generator_sizes_match_the_paper_at_t5_base() -> None:
    """d=768, reduction 32 (bottleneck 24), projected 64: up generator 1,248,000, down
    1,199,640, LayerNorm hypernetwork 99,840 parameters; F.linear-shaped weights."""
    config = HyperformerConfig(n_tasks=8)
    with torch.device("meta"):
        net = HyperNetwork(config, 768, config.size(768), n_layers=12, blocks=2)
    count = lambda *mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
    assert count(net.up_w[0], net.up_b[0]) == 1_248_000
    assert count(net.down_w[0], net.down_b[0]) == 1_199_640
    assert count(net.gamma[0], net.beta[0]) == 99_840
    weights = HyperNetwork(config, 768, 24, 12, 2).generate(torch.tensor([0, 5]), 3, 1)
    assert weights["down_w"].shape == (2, 24, 768) and weights["up_w"].shape == (2, 768, 24)


def test_hyperformer_layers_get_their_own_weights_from_the_layer_id() -> None:
    model, x = build_backbone("roberta")
    add_adapter(model, get_config("hyperformer", n_tasks=2, bottleneck_dim=4))
    net = hypernetwork(model)
    a = net.generate(torch.tensor([0]), 0, 1)["down_w"]
    b = net.generate(torch.tensor([0]), 1, 1)["down_w"]
    c = net.generate(torch.tensor([1]), 0, 1)["down_w"]
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
    # the plus-plus variant: one generator pair, block type from its embedding
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config("hyperformer++", n_tasks=2, bottleneck_dim=4))
    net = hypernetwork(model)
    assert len(net.down_w) == 1
    assert not torch.allclose(
        net.generate(torch.tensor([0]), 0, 0)["up_w"], net.generate(torch.tensor([0]), 0, 1)["up_w"]
    )


def test_per_task_heads_save_load_and_disable(tmp_path) -> None:
    from adapterlab.core import disable_adapters, load_adapter, save_adapter

    model, x = build_backbone("roberta")
    base = model(x).detach()
    add_adapter(
        model, get_config("multitask_per_task", n_tasks=3, bottleneck_dim=4, task_heads=["head"])
    )
    _perturb(model)
    set_task_ids(model, IDS)
    with torch.no_grad():
        out = model(x)
        with disable_adapters(model):
            torch.testing.assert_close(model(x), base, rtol=0, atol=0)
    save_adapter(model, tmp_path / "mt")
    fresh, _ = build_backbone("roberta")
    load_adapter(fresh, tmp_path / "mt")
    set_task_ids(fresh, IDS)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out, rtol=0, atol=1e-6)
    assert (
        type(fresh.head).__name__ == "TaskRoutedModule" and len(fresh.head.adapters["default"]) == 3
    )
