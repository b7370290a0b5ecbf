"""LT-SFT (Ansell et al. 2022): top-k selection, masked retraining, exact compose/revert, files."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core.tuners.sft import (
    LotteryTicketSFT,
    SparseDiff,
    applied_sfts,
    apply_sft,
    load_sft,
    lt_sft,
    revert_sft,
    save_sft,
)
from torch import nn


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def _loss(model: nn.Module) -> float:
    x, y = _data()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def _train(model: nn.Module, steps: int = 30) -> None:
    x, y = _data()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=3e-2, weight_decay=0.1
    )  # decay would leak without projection
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_select_keeps_global_top_k_and_resets() -> None:
    torch.manual_seed(0)
    model = Tiny()
    theta0 = _params(model)
    sft = LotteryTicketSFT(model, num_params=25, dense_modules=["head"])
    assert set(sft.dense) == {"head.weight", "head.bias"}
    with sft.full_phase():
        assert all(p.requires_grad for p in model.parameters())
        _train(model, steps=5)
    moved = {n: (p.detach() - theta0[n]).abs() for n, p in model.named_parameters()}
    assert sft.select() == 25
    # the mask is exactly the 25 largest |delta| over all sparse parameters together
    flat = torch.cat([moved[n].reshape(-1) for n in sft.sparse])
    threshold = flat.sort(descending=True).values[24]
    for n in sft.sparse:
        assert torch.equal(sft.masks[n], moved[n] >= threshold)
    assert sum(int(m.sum()) for m in sft.masks.values()) == 25
    # every parameter is back at theta_0, bit for bit
    for n, p in model.named_parameters():
        assert torch.equal(p, theta0[n])


def test_sparse_phase_changes_only_masked_entries_and_learns() -> None:
    torch.manual_seed(1)
    model = Tiny()
    theta0 = _params(model)
    before = _loss(model)
    diff = lt_sft(model, _train, density=0.1, dense_modules=["head"], reset=False)
    after = _loss(model)
    assert after < before - 0.1  # learned something with 10% of the body entries
    k = round(0.1 * sum(p.numel() for n, p in model.named_parameters() if n.startswith("body")))
    assert diff.nnz() == k
    for n, p in model.named_parameters():
        if n.startswith("head"):
            assert torch.equal(diff.dense[n], p.detach())
            continue
        delta = (p.detach() - theta0[n]).reshape(-1)
        idx = diff.indices.get(n, torch.empty(0, dtype=torch.int64))
        outside = torch.ones_like(delta, dtype=torch.bool)
        outside[idx] = False
        assert torch.count_nonzero(delta[outside]) == 0  # weight decay did not leak
        if n in diff.values:
            torch.testing.assert_close(diff.values[n], delta[idx], rtol=0, atol=0)


def test_result_resets_model_and_apply_reproduces_finetuned() -> None:
    torch.manual_seed(2)
    model = Tiny()
    theta0 = _params(model)
    twin = Tiny()
    twin.load_state_dict(model.state_dict())
    lt_sft(twin, _train, num_params=40, dense_modules=["head"], reset=False)
    tuned = _params(twin)
    diff = lt_sft(model, _train, num_params=40, dense_modules=["head"])  # same seed path
    for n, p in model.named_parameters():
        assert torch.equal(p, theta0[n])
    apply_sft(model, diff, "task")
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), tuned[n], rtol=0, atol=1e-6)


def _random_diff(model: nn.Module, seed: int, k: int, scale: float) -> SparseDiff:
    g = torch.Generator().manual_seed(seed)
    dense = {}
    for n, p in model.named_parameters():
        if n.startswith("body"):
            d = torch.zeros(p.numel())
            idx = torch.randperm(p.numel(), generator=g)[: min(k, p.numel())]
            d[idx] = torch.randn(idx.numel(), generator=g) * scale
            dense[n] = d.view_as(p)
    return SparseDiff.from_dense(dense)


def test_compose_by_addition_and_exact_revert() -> None:
    torch.manual_seed(3)
    model = Tiny()
    # tiny weights and a huge diff: plain float subtraction cannot undo this
    with torch.no_grad():
        model.body[0].weight.mul_(1e-6)
    theta0 = _params(model)
    lang = _random_diff(model, seed=0, k=30, scale=1e3)
    task = _random_diff(model, seed=1, k=30, scale=1.0)
    w = model.body[0].weight
    d = lang.to_dense("body.0.weight")
    assert not torch.equal((theta0["body.0.weight"] + d) - d, theta0["body.0.weight"])

    apply_sft(model, lang, "lang")
    apply_sft(model, task, "task")
    assert applied_sfts(model) == ["lang", "task"]
    for n, p in model.named_parameters():
        if n.startswith("body"):  # composition is addition, bit for bit
            assert torch.equal(p, theta0[n] + lang.to_dense(n) + task.to_dense(n))

    revert_sft(model, "lang")  # exact: equals applying the task SFT alone
    for n, p in model.named_parameters():
        expected = theta0[n] + task.to_dense(n) if n.startswith("body") else theta0[n]
        assert torch.equal(p, expected)
    revert_sft(model, "task")
    for n, p in model.named_parameters():
        assert torch.equal(p, theta0[n])
    assert torch.equal(w, theta0["body.0.weight"])
    with pytest.raises(ValueError, match="no SFT named 'task'"):
        revert_sft(model, "task")


def test_dense_parameters_are_copied_and_restored() -> None:
    model = Tiny()
    theta0 = _params(model)
    head = {"head.weight": torch.ones(3, 16), "head.bias": torch.zeros(3)}
    apply_sft(model, SparseDiff.from_dense({}, dense=head), "a")
    assert torch.equal(model.head.weight, torch.ones(3, 16))
    revert_sft(model, "a")
    assert torch.equal(model.head.weight, theta0["head.weight"])


def test_save_load_roundtrip_is_sparse_safetensors(tmp_path) -> None:
    from safetensors import safe_open

    model = Tiny()
    diff = _random_diff(model, seed=4, k=7, scale=0.1)
    diff.dense["head.bias"] = torch.arange(3.0)
    diff.shapes["head.bias"] = (3,)
    save_sft(diff, tmp_path / "sft")
    with safe_open(str(tmp_path / "sft" / "sft.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert keys == {f"diff.{n}.{k}" for n in diff.indices for k in ("indices", "values")} | {
            "dense.head.bias"
        }
        for k in keys:
            if k.startswith("diff."):
                assert f.get_tensor(k).numel() == min(
                    7, model.get_parameter(k[5:].rsplit(".", 1)[0]).numel()
                )
    loaded = load_sft(tmp_path / "sft")
    assert loaded.shapes == diff.shapes
    for n in diff.indices:
        assert torch.equal(loaded.indices[n], diff.indices[n])
        assert torch.equal(loaded.values[n], diff.values[n])
    assert torch.equal(loaded.dense["head.bias"], diff.dense["head.bias"])

    (tmp_path / "sft" / "sft.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    with pytest.raises(ValueError, match="sft.safetensors"):
        load_sft(tmp_path / "sft")


def test_bad_inputs_raise_clear_errors() -> None:
    model = Tiny()
    with pytest.raises(ValueError, match="exactly one of"):
        LotteryTicketSFT(model)
    with pytest.raises(ValueError, match="dense_modules"):
        LotteryTicketSFT(model, num_params=3, dense_modules=["nope"])
    bad = SparseDiff.from_dense({"body.0.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match="shape"):
        apply_sft(model, bad)
