"""MoSA (mixture of sparse adapters): disjoint covering experts, sparse updates, exact merge."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    BottleneckConfig,
    add_adapter,
    get_adapter_parameters,
    get_config,
    list_adapters,
    load_adapter,
    merge_adapter,
    save_adapter,
)
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.mosa import (
    MoSAAdapter,
    SparseExpertLinear,
    mosa_modules,
    random_partition,
    set_mosa_expert,
    symmetric_kl_loss,
)
from torch import nn


def _mosa(model: nn.Module, **overrides) -> nn.Module:
    cfg = {"bottleneck_dim": 8, "dropout": 0.0, "scaling": 1.0, "seed": 0, **overrides}
    return add_adapter(model, get_config("mosa", **cfg))


def _experts(model: nn.Module, name: str = "default") -> list[SparseExpertLinear]:
    return [
        layer
        for m in mosa_modules(model, name).values()
        for layer in (m.down, m.up)
        if isinstance(layer, SparseExpertLinear)
    ]


def _step(model: nn.Module, x: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    target = torch.arange(x.shape[0]) % 3
    loss = nn.functional.cross_entropy(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("num_experts", [1, 3, 4, 7])
def test_partition_is_disjoint_and_covering(num_experts: int) -> None:
    owner = random_partition((13, 11), num_experts, torch.Generator().manual_seed(0))
    masks = torch.stack([owner == i for i in range(num_experts)])
    assert torch.equal(masks.sum(dim=0), torch.ones(13, 11, dtype=torch.long))  # each entry once
    sizes = masks.flatten(1).sum(dim=1)
    assert sizes.max() - sizes.min() <= 1
    other = random_partition((13, 11), num_experts, torch.Generator().manual_seed(1))
    assert num_experts == 1 or not torch.equal(owner, other)  # random, seed-dependent


def test_expert_masks_in_the_model_are_disjoint_and_cover_each_matrix() -> None:
    model, _ = build_backbone("toy")
    _mosa(model, num_experts=4)
    layers = _experts(model)
    assert len(layers) == 4  # down and up of two blocks
    for layer in layers:
        masks = torch.stack([layer.expert_mask(i) for i in range(4)]).long()
        assert torch.equal(masks.sum(0), torch.ones_like(masks[0]))
        assert sum(p.numel() for p in layer.expert_weights) == layer.weight_init.numel()


def test_only_the_drawn_experts_entries_change() -> None:
    """Per step, AdamW (momentum + weight decay) moves only the experts this pass drew."""
    model, x = build_backbone("toy")
    _mosa(model, num_experts=4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    modules = list(mosa_modules(model).values())
    model.train()
    touched: set[int] = set()
    for _ in range(6):
        before = [
            [layer.expert_weight(i).detach().clone() for i in range(4)]
            for m in modules
            for layer in (m.down, m.up)
        ]
        _step(model, x, opt)
        drawn = [e for m in modules for e in m.last_experts]
        layers = [layer for m in modules for layer in (m.down, m.up)]
        for layer, old, e in zip(layers, before, drawn, strict=True):
            touched.add(e)
            for i in range(4):
                now = layer.expert_weight(i).detach()
                changed = now != old[i]
                if i != e:
                    assert not changed.any(), "an expert that did not run changed"
                else:
                    assert changed.any()
                    assert not (changed & ~layer.expert_mask(i)).any()  # only its own entries
    assert len(touched) > 1  # the draw is random


def test_forced_expert_trains_one_expert_and_shared_side_is_dense() -> None:
    model, x = build_backbone("toy")
    _mosa(model, num_experts=3, share="down")
    modules = list(mosa_modules(model).values())
    assert all(isinstance(m.down, nn.Linear) for m in modules)
    snap = {id(p): p.detach().clone() for p in get_adapter_parameters(model)}
    set_mosa_expert(model, 2)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        _step(model, x, opt)
    for m in modules:
        assert m.last_experts == (None, 2)
        assert not torch.equal(m.down.weight, snap[id(m.down.weight)])
        for i, (w, b) in enumerate(zip(m.up.expert_weights, m.up.expert_biases, strict=True)):
            assert torch.equal(w, snap[id(w)]) == (i != 2)
            assert torch.equal(b, snap[id(b)]) == (i != 2)


@pytest.mark.parametrize("mode", ["add", "joint"])
def test_merge_gives_a_plain_adapter_computing_the_merged_weights(mode: str, tmp_path) -> None:
    model, x = build_backbone("toy")
    _mosa(model, num_experts=4, merge_mode=mode)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(8):
        _step(model, x, opt)
    model.eval()

    # the merge formula, from the expert parameters and masks directly
    expected = []
    for m in mosa_modules(model).values():
        for layer in (m.down, m.up):
            w0 = layer.weight_init
            joint = w0.clone()
            for i in range(4):
                joint[layer.expert_mask(i)] = layer.expert_weights[i].detach()
            weight = w0 + (joint - w0) / 4 if mode == "add" else joint
            bias = torch.stack([b.detach() for b in layer.expert_biases]).mean(0)
            expected.append((weight, bias))
    with torch.no_grad():
        unmerged = model(x)

    merge_adapter(model)
    assert isinstance(list_adapters(model)["default"], BottleneckConfig)
    plain = [m for n, m in model.named_modules() if n.endswith("adapters.default")]
    assert plain and not any(isinstance(m, MoSAAdapter) for m in model.modules())
    got = [(lin.weight, lin.bias) for a in plain for lin in (a.down, a.up)]
    for (w, b), (ew, eb) in zip(got, expected, strict=True):
        torch.testing.assert_close(w.detach(), ew, rtol=0, atol=1e-7)
        torch.testing.assert_close(b.detach(), eb, rtol=0, atol=1e-7)
    with torch.no_grad():
        merged = model(x)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-6)

    # exactly the parameter count of a plain bottleneck adapter of the same size
    reference, _ = build_backbone("toy")
    add_adapter(reference, get_config("parallel", bottleneck_dim=8, scaling=1.0))
    count = sum(p.numel() for p in get_adapter_parameters(model))
    assert count == sum(p.numel() for p in get_adapter_parameters(reference))

    # the merged adapter is a plain bottleneck adapter on disk too
    save_adapter(model, tmp_path / "merged")
    fresh, _ = build_backbone("toy")
    load_adapter(fresh, tmp_path / "merged")
    assert type(list_adapters(fresh)["default"]) is BottleneckConfig
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), merged, rtol=0, atol=0)


def test_eval_forward_of_the_merged_adapter_by_hand() -> None:
    """Parallel MoSA in eval: ``y + up(gelu(down(x))) * s`` with the merged weights."""
    torch.manual_seed(0)
    adapter = MoSAAdapter(
        6, 4, num_experts=3, placement="parallel", activation="gelu", scaling=0.5, residual=False
    )
    with torch.no_grad():
        for layer in (adapter.down, adapter.up):
            for p in list(layer.expert_weights) + list(layer.expert_biases):
                p.normal_()
    adapter.eval()
    x, y = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    (wd, bd), (wu, bu) = adapter.down.merged("add"), adapter.up.merged("add")
    expected = y + (nn.functional.gelu(x @ wd.T + bd) @ wu.T + bu) * 0.5
    torch.testing.assert_close(adapter(x, y), expected)


def test_consistency_loss_is_the_symmetric_kl() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 7, generator=g, requires_grad=True)
    b = torch.randn(5, 7, generator=g, requires_grad=True)
    p, q = a.softmax(-1), b.softmax(-1)
    kl_qp = (q * (q.log() - p.log())).sum(-1).mean()
    kl_pq = (p * (p.log() - q.log())).sum(-1).mean()
    loss = symmetric_kl_loss(a, b)
    torch.testing.assert_close(loss, 0.5 * (kl_qp + kl_pq))
    loss.backward()
    # each KL treats its target as a constant: d/da = 0.5 * (softmax(a) - softmax(b)) / batch
    torch.testing.assert_close(a.grad, 0.5 * (p - q).detach() / 5)
    torch.testing.assert_close(b.grad, 0.5 * (q - p).detach() / 5)
    assert symmetric_kl_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)


def test_two_training_passes_differ_and_eval_passes_agree() -> None:
    model, x = build_backbone("toy")
    _mosa(model, num_experts=4)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    for _ in range(5):
        _step(model, x, opt)
    torch.manual_seed(3)
    first = model(x)
    second = model(x)
    assert symmetric_kl_loss(first, second).item() > 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval runs the merged adapter: deterministic


def test_unmerged_save_load_round_trip(tmp_path) -> None:
    model, x = build_backbone("toy")
    _mosa(model, num_experts=4, seed=None)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(4):
        _step(model, x, opt)
    model.eval()
    with torch.no_grad():
        out = model(x)
    save_adapter(model, tmp_path / "mosa")
    fresh, _ = build_backbone("toy")
    torch.manual_seed(123)  # a different partition is drawn at injection, then overwritten
    load_adapter(fresh, tmp_path / "mosa").eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out, rtol=0, atol=0)
    for a, b in zip(_experts(model), _experts(fresh), strict=True):
        assert torch.equal(a.assignment, b.assignment)
        for i in range(4):  # index tables follow the loaded partition
            assert torch.equal(a.expert_weight(i), b.expert_weight(i))
