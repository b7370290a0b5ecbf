"""MixDA (mixture of domain adapters): gate mixture formula, two-stage training, save/load."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    combine_domain_adapters,
    get_config,
    load_adapter,
    save_adapter,
    set_active,
)
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.mixda import (
    MixDAAdapter,
    mixda_modules,
    mixda_record,
    preservation_loss,
    set_mixda_stage,
)
from torch import nn


def _mixda(model: nn.Module, name: str = "domains", **overrides) -> nn.Module:
    cfg = {"num_domains": 2, "gate_hidden": 16, "gate_dropout": 0.0, "bottleneck_dim": 4}
    return add_adapter(model, get_config("mixda", **{**cfg, **overrides}), name)


def _randomise(model: nn.Module, name: str) -> None:
    """Domain adapters start as zero maps; give them content so the mixture is visible."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in mixda_modules(model, name).values():
            for adapter in module.domain_adapters:
                adapter.up.weight.copy_(torch.randn(adapter.up.weight.shape, generator=g))


def _train(model: nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01)
    target = torch.arange(x.shape[0]) % 3
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("pool", ["last", "mean", "token"])
def test_gate_weights_sum_to_one_and_mix_by_the_formula(pool: str) -> None:
    model, x = build_backbone("toy")
    _mixda(model, gate_pool=pool)
    _randomise(model, "domains")
    inputs: list[torch.Tensor] = []
    for module in mixda_modules(model, "domains").values():
        module.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    with mixda_record(model, "domains") as records, torch.no_grad():
        model(x)
    assert len(records) == 2
    for rec, xin, module in zip(records, inputs, mixda_modules(model, "domains").values()):
        g = rec["gate"]
        assert g.shape[-1] == 3 and (g >= 0).all()
        torch.testing.assert_close(g.sum(-1), torch.ones_like(g.sum(-1)))
        expected_rows = 1 if pool in ("last", "mean") else xin.shape[1]
        assert g.shape[:2] == (xin.shape[0], expected_rows)
        mixed = g[..., 2:3] * rec["original"]
        for k, adapter in enumerate(module.domain_adapters):
            mixed = mixed + g[..., k : k + 1] * adapter(xin)
        torch.testing.assert_close(rec["mixed"], mixed)


def test_roberta_placement_is_the_ffn_output_dense() -> None:
    model, x = build_backbone("roberta")
    _mixda(model, bottleneck_dim=None, down_scale=16.0)
    modules = mixda_modules(model, "domains")
    assert sorted(modules) == [f"backbone.encoder.layer.{i}.output.dense.mixda" for i in range(2)]
    for module in modules.values():
        down = module.domain_adapters[0].down
        assert (down.in_features, down.out_features) == (32, 2)  # intermediate 32 // 16
        assert module.domain_adapters[0].up.out_features == 16
    with torch.no_grad():
        assert model(x).shape == (4, 3)


def test_stage_two_leaves_domain_adapters_untouched() -> None:
    model, x = build_backbone("toy")
    _mixda(model)
    _randomise(model, "domains")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=8), "task")
    set_active(model, ["domains", "task"])
    set_mixda_stage(model, 2, "domains")
    modules = list(mixda_modules(model, "domains").values())
    snap = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model, x)
    params = dict(model.named_parameters())
    for name, p in params.items():
        is_adapter = "adapters.domains." in name or "adapters.task." in name
        if ".domain_adapters." in name or not is_adapter:
            assert torch.equal(p.detach(), snap[name]), name  # domain adapters and base frozen
    for module in modules:
        assert not any(p.requires_grad for p in module.domain_adapters.parameters())
    gates = [n for n in params if ".gate.mlp." in n]
    task = [n for n in params if "adapters.task." in n and n.endswith("up.weight")]
    assert gates and task
    assert all(not torch.equal(params[n].detach(), snap[n]) for n in gates + task)


def test_stage_one_trains_the_chosen_domain_and_preserves_the_ffn_output() -> None:
    model, x = build_backbone("toy")
    _mixda(model)
    set_mixda_stage(model, 1, "domains", domains=[1])
    modules = list(mixda_modules(model, "domains").values())
    snap = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    model.train()
    for _ in range(15):
        with mixda_record(model, "domains") as records:
            model(x)
        loss = preservation_loss(records)
        manual = torch.stack([((r["mixed"] - r["original"]) ** 2).mean() for r in records]).mean()
        torch.testing.assert_close(loss, manual)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]  # the gate learns to keep the FFN output
    for name, p in model.named_parameters():
        if ".domain_adapters.0." in name:
            assert torch.equal(p.detach(), snap[name]), name
    assert any(
        not torch.equal(p.detach(), snap[n])
        for n, p in model.named_parameters()
        if ".domain_adapters.1." in n
    )
    assert all(not m.domain_adapters[0].down.weight.requires_grad for m in modules)
    with pytest.raises(ValueError, match="out of range"):
        set_mixda_stage(model, 1, "domains", domains=[2])


def test_combine_domain_adapters_and_save_load(tmp_path) -> None:
    model, x = build_backbone("toy")
    _mixda(model, "law", num_domains=1)
    _mixda(model, "med", num_domains=1)
    _randomise(model, "law")
    _randomise(model, "med")
    combine_domain_adapters(model, ["law", "med"], "both")
    law, med, both = (mixda_modules(model, n) for n in ("law", "med", "both"))
    for key, module in both.items():
        assert isinstance(module, MixDAAdapter) and module.num_domains == 2
        for src, dst in (
            (law[key].domain_adapters[0], module.domain_adapters[0]),
            (med[key].domain_adapters[0], module.domain_adapters[1]),
        ):
            assert all(torch.equal(a, b) for a, b in zip(src.parameters(), dst.parameters()))
    _train(model, x)
    with torch.no_grad():
        out = model(x)
    save_adapter(model, tmp_path / "both", name="both")
    fresh, _ = build_backbone("toy")
    load_adapter(fresh, tmp_path / "both", name="both").eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out, rtol=0, atol=0)
