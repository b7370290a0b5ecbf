"""Poly / MHR / MHR-z / MHR-mu (Caccia et al. 2023): routing, fine-tuning modes, save/load, merge."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    disable_adapters,
    get_adapter_parameters,
    get_config,
    list_adapters,
    load_adapter,
    merge_adapter,
    save_adapter,
)
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.poly_mhr import (
    poly_layers,
    prepare_finetune,
    routing_weights,
    set_task_ids,
    use_task_ids,
)
from torch import nn
from torch.distributions.relaxed_bernoulli import RelaxedBernoulli


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 8))


def _random_logits(model: nn.Module, name: str, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in poly_layers(model, name):
            logits = layer.poly_router[name].module_logits
            logits.copy_(torch.randn(logits.shape, generator=g) * 2)


def test_routing_weights_are_normalised_per_split_in_train_and_eval() -> None:
    logits = torch.randn(5, 4 * 3)
    for training in (True, False):
        w = routing_weights(logits, n_splits=4, n_skills=3, training=training)
        assert w.shape == (5, 4, 3)
        torch.testing.assert_close(w.sum(-1), torch.ones(5, 4))
        assert bool((w >= 0).all())


def test_relaxed_bernoulli_in_training_sigmoid_at_eval() -> None:
    model = _mlp()
    add_adapter(
        model,
        get_config("mhr", n_splits=4, n_skills=3, n_tasks=2, temperature=0.5, target_modules=["0"]),
        "p",
    )
    _random_logits(model, "p")
    ((_, layer),) = poly_layers(model, "p")
    router = layer.poly_router["p"]
    ids = torch.tensor([1, 0, 1])
    logits = router.module_logits[ids].view(3, 4, 3).detach()

    router.eval()
    expected = torch.sigmoid(logits)
    expected = expected / (expected.sum(-1, keepdim=True) + 1e-12)
    assert torch.equal(router(ids, None), expected)
    assert torch.equal(router(ids, None), router(ids, None))  # deterministic

    router.train()
    torch.manual_seed(7)
    got = router(ids, None)
    torch.manual_seed(7)
    sample = RelaxedBernoulli(temperature=0.5, logits=logits).rsample()
    torch.testing.assert_close(got.detach(), sample / (sample.sum(-1, keepdim=True) + 1e-12))
    assert not torch.allclose(router(ids, None), router(ids, None))  # stochastic
    assert got.requires_grad  # reparameterised: the router learns through the sample


def _formula(layer: nn.Module, name: str, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """MHR by hand: per split, mix the skills with the routing weights; concatenate the splits."""
    a, b = layer.poly_lora_A[name], layer.poly_lora_B[name]  # [q, s, d/q, r], [q, s, r, o/q]
    r = a.shape[-1]
    w = torch.sigmoid(layer.poly_router[name].module_logits[ids]).view(len(ids), a.shape[0], -1)
    w = w / (w.sum(-1, keepdim=True) + 1e-12)
    base = layer.get_base_layer()
    outs = []
    for i in range(len(ids)):
        a_full = torch.cat(
            [sum(w[i, q, s] * a[q, s] for s in range(a.shape[1])) for q in range(a.shape[0])], dim=0
        )  # [d, r]
        b_full = torch.cat(
            [sum(w[i, q, s] * b[q, s] for s in range(b.shape[1])) for q in range(b.shape[0])], dim=1
        )  # [r, o]
        outs.append(base(x[i]) + x[i] @ a_full @ b_full / r)
    return torch.stack(outs)


@pytest.mark.parametrize("n_splits", [1, 4])
def test_forward_matches_the_routing_formula_per_task(n_splits: int) -> None:
    model = _mlp().eval()
    add_adapter(
        model,
        get_config(
            "poly",
            n_splits=n_splits,
            n_skills=3,
            n_tasks=3,
            init_weights=False,
            target_modules=["0"],
        ),
        "p",
    )
    _random_logits(model, "p")
    model.eval()
    ((_, layer),) = poly_layers(model, "p")
    x = torch.randn(3, 5, 16)
    ids = torch.tensor([2, 0, 1])
    with torch.no_grad(), use_task_ids(model, ids):
        torch.testing.assert_close(layer(x), _formula(layer, "p", x, ids))
        # rank-2 input (one token per sample) works too
        torch.testing.assert_close(layer(x[:, 0]), _formula(layer, "p", x[:, :1], ids)[:, 0])
        batched = model(x)
    for i in range(3):  # each row is routed by its own task only
        with torch.no_grad(), use_task_ids(model, int(ids[i])):
            torch.testing.assert_close(model(x[i : i + 1]), batched[i : i + 1])
    with pytest.raises(ValueError, match="route over 3 tasks"):
        model(x)  # the context restored "no task ids"
    set_task_ids(model, [0, 1])
    with pytest.raises(ValueError, match="batch has 3 samples"):
        model(x)


def _train(model: nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    target = torch.arange(x.shape[0]) % 3
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_mhr_z_trains_only_the_router() -> None:
    model, x = build_backbone("roberta")
    add_adapter(model, get_config("mhr_z", n_splits=4, init_weights=False), "z")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("poly_router" in n for n in trainable)
    before = _snapshot(model)
    _train(model, x)
    for n, p in model.named_parameters():
        changed = not torch.equal(p, before[n])
        assert changed == ("poly_router" in n), n


def test_prepare_finetune_z_from_a_multitask_adapter(tmp_path) -> None:
    model, x = build_backbone("roberta")
    add_adapter(model, get_config("mhr", n_splits=4, n_tasks=3, init_weights=False), "mt")
    set_task_ids(model, torch.tensor([0, 1, 2, 0]))
    _train(model, x, steps=2)
    save_adapter(model, tmp_path / "mt", "mt")

    # MHR-z: a fresh single-task router over the pre-trained, frozen skills
    fresh, _ = build_backbone("roberta")
    load_adapter(fresh, tmp_path / "mt", "mt")
    cfg = prepare_finetune(fresh, "mt", "z")
    assert cfg.n_tasks == 1 and cfg.train_only_router and list_adapters(fresh)["mt"] == cfg
    for _, layer in poly_layers(fresh, "mt"):
        assert layer.poly_router["mt"].module_logits.shape == (1, 4 * 4)  # splits x skills
        assert not layer.poly_lora_A["mt"].requires_grad
    add_adapter(fresh, get_config("lora"), "other")  # re-deriving trainability keeps skills frozen
    names = {id(p) for p in get_adapter_parameters(fresh, "mt")}
    for _, layer in poly_layers(fresh, "mt"):
        assert id(layer.poly_lora_A["mt"]) not in names
        assert not layer.poly_lora_B["mt"].requires_grad
        assert layer.poly_router["mt"].module_logits.requires_grad
    save_adapter(fresh, tmp_path / "z", "mt")  # the new config travels with the adapter
    again, _ = build_backbone("roberta")
    load_adapter(again, tmp_path / "z", "mt")
    assert list_adapters(again)["mt"] == cfg


def test_mhr_mu_is_the_uniform_average_of_the_skills() -> None:
    model = _mlp()
    add_adapter(
        model,
        get_config(
            "mhr", n_splits=4, n_skills=3, n_tasks=2, init_weights=False, target_modules=["0"]
        ),
        "p",
    )
    _random_logits(model, "p")
    cfg = prepare_finetune(model, "p", "mu")
    assert cfg.routing == "average"
    ((_, layer),) = poly_layers(model, "p")
    a = layer.poly_lora_A["p"].mean(1)  # [q, d/q, r]
    b = layer.poly_lora_B["p"].mean(1)  # [q, r, o/q]
    a_full = a.reshape(-1, a.shape[-1])
    b_full = torch.cat(list(b), dim=1)
    x = torch.randn(2, 5, 16)
    expected = layer.get_base_layer()(x) + x @ a_full @ b_full / cfg.r
    model.train()  # no sampling: the average does not depend on the mode or the task
    torch.testing.assert_close(layer(x), expected)
    model.eval()
    torch.testing.assert_close(layer(x), expected)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"0.poly_lora_A.p", "0.poly_lora_B.p"}


def test_save_load_roundtrip_and_merge(tmp_path) -> None:
    model, x = build_backbone("roberta")
    with torch.no_grad():
        base_out = model(x)
    add_adapter(model, get_config("poly", n_skills=3, init_weights=False), "p")
    _train(model, x, steps=2)
    with torch.no_grad():
        out = model(x)
        assert not torch.allclose(out, base_out, atol=1e-4)
        with disable_adapters(model):
            torch.testing.assert_close(model(x), base_out, rtol=0, atol=0)
    save_adapter(model, tmp_path / "p", "p")
    fresh, _ = build_backbone("roberta")
    load_adapter(fresh, tmp_path / "p", "p")
    fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), out, rtol=0, atol=0)
        merge_adapter(fresh, "p")
        assert not poly_layers(fresh, "p")
        torch.testing.assert_close(fresh(x), out, rtol=1e-5, atol=1e-6)


def test_bad_configs_and_targets_raise() -> None:
    model, _ = build_backbone("roberta")
    with pytest.raises(ValueError, match="n_splits=3"):
        add_adapter(model, get_config("mhr", n_splits=3), "p")
    with pytest.raises(ValueError, match="routing"):
        get_config("poly", routing="softmax")
    with pytest.raises(ValueError, match="MHR-z"):
        get_config("mhr_mu", train_only_router=True)
    toy, _ = build_backbone("toy")
    with pytest.raises(ValueError, match="nn.Linear"):
        add_adapter(toy, get_config("poly"), "p")
    multi, _ = build_backbone("roberta")
    add_adapter(multi, get_config("poly", n_tasks=2), "p")
    with pytest.raises(ValueError, match="2 tasks"):
        merge_adapter(multi, "p")
