"""p-adapter: the paper's equations, p = 2 reduction, identity, causality, pooling, bf16."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    get_adapter_parameters,
    get_config,
    load_adapter,
    save_adapter,
)
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.p_adapter import (
    PAdapterBranch,
    dense_reference,
    p_adapter_modules,
    pool_assignment,
)
from torch import nn


def _tiny_blip(seed: int = 0):
    from transformers import BlipConfig, BlipForConditionalGeneration

    cfg = BlipConfig(
        text_config=dict(
            vocab_size=40,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            bos_token_id=1,
            sep_token_id=2,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=16,
            patch_size=4,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return BlipForConditionalGeneration(cfg).eval()


def _blip_batch():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 40, (2, 7), generator=g)
    pixels = torch.randn(2, 3, 16, 16, generator=g)
    return ids, pixels


def _logits(model, ids, pixels):
    return model(input_ids=ids, pixel_values=pixels).logits


def _branch(dim: int, heads: int, **kw) -> PAdapterBranch:
    return PAdapterBranch(dim, heads, 4, **kw)


@pytest.mark.parametrize("degree", ["unit", "column"])
@pytest.mark.parametrize(("p", "mu"), [(1.3, 0.25), (2.6, 0.0), (2.0, 0.7)])
def test_layer_equals_dense_reference_of_the_equations(degree: str, p: float, mu: float) -> None:
    g = torch.Generator().manual_seed(0)
    heads, dh, d, n, m = 2, 3, 5, 4, 6
    M = torch.softmax(torch.randn(1, heads, n, m, generator=g) * 2, -1)
    M[0, 0, 1, 2] = 0.0  # a masked edge: no weight, no gradient trouble
    q = torch.randn(1, heads, n, dh, generator=g)
    v = torch.randn(1, heads, m, dh, generator=g)
    w_o = nn.Linear(heads * dh, d)
    nn.init.normal_(w_o.weight, generator=g)
    br = PAdapterBranch(d, heads, 4, p_init=p, mu_init=mu, value_degree=degree, eps=1e-9)
    br._dense = [w_o]
    attn_out = torch.cat([M[0, h] @ v[0, h] for h in range(heads)], -1) @ w_o.weight.T
    got = attn_out + br._paper_delta(M.double().float(), q, v, cross=False)[0]
    want = torch.zeros(n, d)
    for h in range(heads):
        w_h = w_o.weight[:, h * dh : (h + 1) * dh]
        want += dense_reference(M[0, h], q[0, h] @ w_h.T, v[0, h] @ w_h.T, p, mu, 1e-9, degree)
    torch.testing.assert_close(got, want.detach(), rtol=1e-4, atol=1e-5)


def test_cached_gram_follows_changes_of_the_frozen_output_projection() -> None:
    g = torch.Generator().manual_seed(1)
    M = torch.softmax(torch.randn(1, 2, 3, 4, generator=g), -1)
    q, v = torch.randn(1, 2, 3, 3, generator=g), torch.randn(1, 2, 4, 3, generator=g)
    w_o = nn.Linear(6, 5).requires_grad_(False)
    br = PAdapterBranch(5, 2, 4, p_init=1.5, mu_init=0.2)
    br._dense = [w_o]

    def fresh() -> torch.Tensor:  # the same branch on a trainable copy: G from scratch
        w = nn.Linear(6, 5)
        w.load_state_dict(w_o.state_dict())
        other = PAdapterBranch(5, 2, 4, p_init=1.5, mu_init=0.2)
        other._dense = [w]
        return other._paper_delta(M, q, v, cross=False).detach()

    first = br._paper_delta(M, q, v, cross=False)
    torch.testing.assert_close(first.detach(), fresh(), rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        w_o.weight.mul_(2.0)  # in place (an optimiser step, load_state_dict): same tensor
    torch.testing.assert_close(br._paper_delta(M, q, v, cross=False).detach(), fresh())
    w_o.weight = nn.Parameter(torch.randn(5, 6, generator=g), requires_grad=False)
    torch.testing.assert_close(br._paper_delta(M, q, v, cross=False).detach(), fresh())


def test_dense_reference_on_a_hand_made_graph() -> None:
    # one query, two values at distance 1 and 2 (unit degrees, p = 1, mu = 0):
    # Mbar = [0.5 * (0.5 * 1)^(-1/2), 0.5 * (0.5 * 4)^(-1/2)] = [0.7071, 0.3536]
    M = torch.tensor([[0.5, 0.5]])
    q = torch.zeros(1, 1)
    v = torch.tensor([[1.0], [2.0]])
    u = dense_reference(M, q, v, p=1.0, mu=0.0, eps=0.0)
    m_bar = torch.tensor([0.5 * 0.5**-0.5, 0.5 * 2.0**-0.5])
    expected = (m_bar @ v) / m_bar.sum()  # alpha = 1 / sum(Mbar) with D_ii = 1
    torch.testing.assert_close(u[0], expected)


def _plain_twin(p_model, b_model) -> None:
    """Copy the p-adapter bottlenecks into the plain adapters at the same places."""
    plain = {
        n.replace(".bottleneck", ""): m
        for n, m in b_model.__dict__["_adapterlab_state"].handles["default"].items()
    }
    for name, branch in p_adapter_modules(p_model).items():
        nn.init.normal_(branch.up.weight, std=0.3)
        nn.init.normal_(branch.down.bias, std=0.3)
        plain[name].load_state_dict({k: v for k, v in branch.state_dict().items() if "." in k})


@pytest.mark.parametrize("kind", ["roberta", "blip"])
def test_p_equal_2_is_the_plain_adapter_on_the_attention_output(kind: str) -> None:
    if kind == "roberta":
        p_model, x = build_backbone("roberta")
        b_model, _ = build_backbone("roberta")
        run = lambda m: m(x)  # noqa: E731
    else:
        p_model, b_model = _tiny_blip(), _tiny_blip()
        ids, pixels = _blip_batch()
        run = lambda m: _logits(m, ids, pixels)  # noqa: E731
    add_adapter(p_model, get_config("p_adapter", bottleneck_dim=4, ffn_adapter=False))
    targets = r".*(attention|crossattention)\.output\.dense"
    add_adapter(
        b_model, get_config("houlsby", target_modules=targets, bottleneck_dim=4, activation="gelu")
    )
    _plain_twin(p_model, b_model)
    with torch.no_grad():
        torch.testing.assert_close(run(p_model), run(b_model), rtol=1e-5, atol=1e-5)
        for br in p_adapter_modules(p_model).values():
            br.p_raw.fill_(-4.0)  # p far from 2: now the re-weighting changes the output
        assert not torch.allclose(run(p_model), run(b_model), atol=1e-4)


@pytest.mark.parametrize("preset", ["p_adapter", "p_adapter_code"])
def test_identity_at_init_training_and_round_trip_on_blip(preset: str, tmp_path) -> None:
    ids, pixels = _blip_batch()
    base = _tiny_blip()
    with torch.no_grad():
        base_out = _logits(base, ids, pixels)
    model = _tiny_blip()
    add_adapter(model, get_config(preset, bottleneck_dim=4, cross_pool_nodes=5))
    branches = p_adapter_modules(model)
    assert len(branches) == 4  # self + cross attention of both decoder layers
    assert (
        sum(".output.dense.bottleneck" in k for k in model._adapterlab_state.handles["default"])
        == 2
    )
    with torch.no_grad():
        torch.testing.assert_close(_logits(model, ids, pixels), base_out, rtol=0, atol=1e-6)
    params = get_adapter_parameters(model)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    before = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1e-2)
    model.train()
    for _ in range(3):
        loss = model(input_ids=ids, pixel_values=pixels, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert all(not torch.equal(b, p.detach()) for b, p in zip(before, params))
    ids_params = {id(p) for p in params}
    for name, p in model.named_parameters():
        if id(p) not in ids_params:
            assert torch.equal(p, base_state[name.replace(".base_layer", "")]), name
    ps = [float(b.p().detach()) for b in branches.values()]
    assert all(1.0 < p < 3.0 for p in ps)
    with torch.no_grad():
        trained = _logits(model, ids, pixels)
    assert not torch.allclose(trained, base_out, atol=1e-4)
    save_adapter(model, tmp_path / "a")
    fresh = _tiny_blip()
    load_adapter(fresh, tmp_path / "a")
    with torch.no_grad():
        torch.testing.assert_close(_logits(fresh, ids, pixels), trained, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["p_adapter", "p_adapter_code"])
def test_no_future_token_leak_in_the_decoder(preset: str) -> None:
    model = _tiny_blip()
    add_adapter(model, get_config(preset, bottleneck_dim=4, p_init=1.4, mu_init=0.3))
    with torch.no_grad():
        for br in p_adapter_modules(model).values():
            nn.init.normal_(br.up.weight, std=0.5)
    ids, pixels = _blip_batch()
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 7) % 37 + 3
    with torch.no_grad():
        a, b = _logits(model, ids, pixels), _logits(model, changed, pixels)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_probabilities_recomputed_from_q_and_k_match_the_returned_ones() -> None:
    model = _tiny_blip()
    add_adapter(model, get_config("p_adapter", bottleneck_dim=4, p_init=1.5, mu_init=0.2))
    ids, pixels = _blip_batch()
    with torch.no_grad():
        want = _logits(model, ids, pixels)
        # drop the returned probabilities: the branch must rebuild them from q, k and the mask
        for module in model.modules():
            for hook in list(module._forward_hooks.values()):
                if getattr(hook, "__name__", "") == "post":
                    module._forward_hooks.clear()
                    break
        got = _logits(model, ids, pixels)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_pooling_partitions_tokens_and_keeps_p2_exact() -> None:
    a = pool_assignment(10, 4, torch.device("cpu"))
    assert a.shape == (10, 4) and torch.equal(a.sum(1), torch.ones(10))
    assert a.sum(0).tolist() == [3, 2, 3, 2]
    g = torch.Generator().manual_seed(1)
    M = torch.softmax(torch.randn(2, 2, 3, 10, generator=g), -1)
    q, v = torch.randn(2, 2, 3, 4, generator=g), torch.randn(2, 2, 10, 4, generator=g)
    pooled = _branch(8, 2, cross_pool_nodes=4)
    pooled._dense = [nn.Linear(8, 8)]
    delta = pooled._paper_delta(M, q, v, cross=True)
    torch.testing.assert_close(delta, torch.zeros_like(delta), rtol=0, atol=1e-6)
    with torch.no_grad():
        pooled.p_raw.fill_(-1.0)
    full = _branch(8, 2, cross_pool_nodes=None)
    full._dense, full.p_raw = pooled._dense, pooled.p_raw
    d_pool, d_full = pooled._paper_delta(M, q, v, True), full._paper_delta(M, q, v, True)
    assert d_pool.abs().max() > 1e-3 and not torch.allclose(d_pool, d_full)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("preset", ["p_adapter", "p_adapter_code"])
@pytest.mark.parametrize("p_init", [1.02, 1.5, 2.98])
def test_gradients_wrt_p_and_mu_are_finite(dtype, preset: str, p_init: float) -> None:
    model = _tiny_blip()
    add_adapter(model, get_config(preset, bottleneck_dim=4, p_init=p_init, mu_init=0.1))
    with torch.no_grad():
        for br in p_adapter_modules(model).values():
            nn.init.normal_(br.up.weight, std=0.1)
    model.to(dtype).train()
    ids, pixels = _blip_batch()
    loss = model(input_ids=ids, pixel_values=pixels.to(dtype), labels=ids).loss
    assert torch.isfinite(loss)
    loss.backward()
    grads = [t.grad for br in p_adapter_modules(model).values() for t in (br.p_raw, br.mu_raw)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs()) > 0 for g in grads)


def test_config_validation_and_bad_targets() -> None:
    with pytest.raises(ValueError, match="p_init"):
        get_config("p_adapter", p_init=3.5)
    with pytest.raises(ValueError, match="variant"):
        get_config("p_adapter", variant="other")
    model, _ = build_backbone("toy")
    with pytest.raises(ValueError, match="BERT-layout"):
        add_adapter(model, get_config("p_adapter"))
    model, _ = build_backbone("roberta")
    with pytest.raises(ValueError, match="not a BERT-layout"):
        add_adapter(model, get_config("p_adapter", target_modules=["layer.0.output.dense"]))
