"""Generative Adapter: shapes, identity at a zero generator, gradient flow, chunking, the
"states" forward equal to the "weights" delta, and the rank bound."""

from __future__ import annotations

import pytest
import torch
from adapterlab.llm.models.generative_adapter import GenerativeAdapter, normalise_state
from adapterlab.llm.train import train_genadapter


def _ga(lm, **kw):
    torch.manual_seed(0)
    args = {"rank": 8, "max_rank": 4, "alpha": 8.0, "norm": "frobenius", "chunk": 16} | kw
    return GenerativeAdapter(lm, [2, 3], **args)


def test_shapes_and_identity_at_zero_generator(tiny):
    lm, _ = tiny
    ctx, q = torch.randint(5, 90, (2, 40)), torch.randint(5, 90, (2, 10))
    base = lm(q).logits
    ga = _ga(lm)
    states = ga.encode(ctx)
    assert states.shape == (2, 2, 8, 8)  # [layers, batch, r, r]
    with ga.using(states):
        torch.testing.assert_close(lm(q).logits, base)  # B = 0: no change
    for g in ga.generators:
        torch.nn.init.normal_(g.b.weight, std=0.2)
    with ga.using(ga.encode(ctx)):
        assert (lm(q).logits - base).abs().max() > 1e-3
    torch.testing.assert_close(lm(q).logits, base)  # outside the block: the base LM
    ga.remove()
    assert isinstance(lm.model.layers[2].self_attn.o_proj, torch.nn.Linear)


def test_gradient_reaches_every_generator_parameter_and_not_the_lm(tiny):
    lm, _ = tiny
    ga = _ga(lm)
    for g in ga.generators:
        torch.nn.init.normal_(g.b.weight, std=0.2)
    with ga.using(ga.encode(torch.randint(5, 90, (2, 30)))):
        lm(torch.randint(5, 90, (2, 10))).logits.square().mean().backward()
    for name, p in ga.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in lm.parameters())


def test_long_context_is_chunked_not_truncated(tiny):
    lm, _ = tiny
    ga = _ga(lm, chunk=16)
    ctx = torch.randint(5, 90, (1, 50))  # 4 windows: 16 + 16 + 16 + 2 tokens
    mask = torch.ones_like(ctx)
    total = 0
    for s in range(0, 50, 16):
        inputs = ga._inputs(ctx[:, s : s + 16], mask[:, s : s + 16])
        total = total + torch.stack(
            [g.chunk_state(h, mask[:, s : s + 16]) for g, h in zip(ga.generators, inputs)]
        )
    expected = normalise_state(total.flatten(0, 1), "frobenius", 4).view_as(total)
    torch.testing.assert_close(ga.encode(ctx), expected)
    # the last tokens matter: changing token 49 changes the state
    other = ctx.clone()
    other[0, 49] = (other[0, 49] + 1) % 90 + 5
    assert (ga.encode(other) - ga.encode(ctx)).abs().max() > 1e-6


def test_padding_is_masked(tiny):
    lm, _ = tiny
    ga = _ga(lm, chunk=64)
    ctx = torch.randint(5, 90, (1, 20))
    padded = torch.cat([ctx, torch.zeros(1, 7, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 20), torch.zeros(1, 7)], 1).long()
    torch.testing.assert_close(ga.encode(padded, mask), ga.encode(ctx), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm", ["frobenius", "spectral", "svd"])
def test_states_mode_equals_weights_mode_and_rank_bound(tiny, norm):
    lm, _ = tiny
    ga = _ga(lm, norm=norm)
    for g in ga.generators:
        torch.nn.init.normal_(g.b.weight, std=0.2)
    states = ga.encode(torch.randint(5, 90, (1, 30)))
    x = torch.randn(1, 5, lm.model.layers[2].self_attn.o_proj.base.in_features)
    for k, (g, dw) in enumerate(zip(ga.generators, ga.delta_weights(states))):
        torch.testing.assert_close(g.delta(x, states[k], ga.scale), x @ dw.T, atol=1e-5, rtol=1e-4)
        if norm == "svd":
            assert torch.linalg.matrix_rank(dw) <= 4
    if norm == "frobenius":
        assert torch.allclose(states.flatten(2).norm(dim=-1), torch.ones(2, 1))
    with pytest.raises(ValueError):
        _ga(lm, norm="nope")


def test_generator_training_through_the_engine_lowers_the_loss(tiny, tmp_path):
    from adapterlab.llm.train import (
        GenAdapterData,
        _GenAdapterTrainer,
        collate_genadapter,
        genadapter_loss,
    )

    lm, tok = tiny
    texts = [
        f"Package: pkg{i}\nVersion: {i}.{i + 1}-{i % 3}\nMaintainer: Team {i}" for i in range(12)
    ]
    ga = _ga(lm, chunk=32)
    val = collate_genadapter(list(GenAdapterData(texts[:4], tok)))
    with torch.no_grad():
        before = genadapter_loss(_GenAdapterTrainer(ga), val)["loss"].item()  # = the base LM's loss
    result = train_genadapter(
        ga, tok, texts, texts[:4], run_dir=tmp_path / "ga", steps=30, batch_size=4, lr=1e-2, seed=0
    )
    assert result.best_metric < before - 0.1
    assert (tmp_path / "ga" / "best").is_dir()
