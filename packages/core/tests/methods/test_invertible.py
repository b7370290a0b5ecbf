"""Invertible adapters (NICE, GLOW): exact inverses, identity at init, the inverse on the
output embedding of masked and causal LMs."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import add_adapter, delete_adapter, disable_adapters, get_config
from adapterlab.core.tuners.invertible import GLOWCoupling, NICECoupling
from transformers import LlamaConfig, LlamaForCausalLM


def _randomize(module: torch.nn.Module, std: float = 0.5) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


@pytest.mark.parametrize("cls", [NICECoupling, GLOWCoupling])
@pytest.mark.parametrize("dim", [16, 17])
def test_couplings_invert_exactly(cls, dim: int) -> None:
    coupling = cls(dim, 2.0, "relu")
    _randomize(coupling, 0.2)
    x = torch.randn(3, 7, dim, generator=torch.Generator().manual_seed(0))
    y = coupling(x)
    assert (y - x).abs().max() > 0.1
    torch.testing.assert_close(coupling(y, rev=True), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(coupling(coupling(x, rev=True)), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls", [NICECoupling, GLOWCoupling])
def test_fresh_coupling_is_the_identity(cls) -> None:
    x = torch.randn(2, 5, 16)
    coupling = cls(16, 2.0, "swish")
    assert torch.equal(coupling(x), x) and torch.equal(coupling(x, rev=True), x)


def _llama() -> tuple[LlamaForCausalLM, torch.Tensor]:
    config = LlamaConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), torch.randint(3, 40, (2, 6))


@pytest.mark.parametrize("kind", ["nice", "glow"])
def test_causal_lm_runs_the_inverse_before_its_output_embedding(kind: str) -> None:
    model, ids = _llama()
    base = model(ids).logits
    add_adapter(model, get_config("seq_bn_inv", bottleneck_dim=4, inv_adapter=kind))
    assert torch.equal(model(ids).logits, base)  # identity at init
    coupling = model.model.embed_tokens.adapters["default"]
    _randomize(coupling, 0.3)
    with torch.no_grad():
        hidden = model.model(ids).last_hidden_state  # the forward coupling ran on embed_tokens
        expected = model.lm_head.base_layer(coupling(hidden, rev=True))
        torch.testing.assert_close(model(ids).logits, expected, atol=1e-6, rtol=0)
        with disable_adapters(model):
            assert torch.equal(model(ids).logits, base)
    delete_adapter(model, "default")
    assert type(model.lm_head).__name__ == "Linear"
    assert type(model.model.embed_tokens).__name__ == "Embedding"
    assert torch.equal(model(ids).logits, base)


def test_inverse_of_the_first_active_adapter_only() -> None:
    """Two invertible adapters active: only the first one's coupling runs (AdapterHub)."""
    model, ids = _llama()
    add_adapter(model, get_config("seq_bn_inv", bottleneck_dim=4), "a")
    add_adapter(model, get_config("seq_bn_inv", bottleneck_dim=4), "b")
    _randomize(model.model.embed_tokens.adapters["b"], 0.3)
    from adapterlab.core import set_active

    set_active(model, ["a", "b"])
    with torch.no_grad():
        first_a = model(ids).logits
        set_active(model, ["a"])
        only_a = model(ids).logits
    torch.testing.assert_close(first_a, only_a)
