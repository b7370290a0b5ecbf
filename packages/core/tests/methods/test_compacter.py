"""Compacter / Compacter++: the PHM formula, AdapterHub's parameter counts, frozen rules."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    get_adapter_parameters,
    get_config,
    load_adapter,
    save_adapter,
    trainable_summary,
)
from adapterlab.core.tuners.compacter import CompacterConfig, PHMLinear, PHMRule, kron_sum
from transformers import BertConfig, BertModel


def test_kron_sum_is_the_sum_of_kronecker_products() -> None:
    g = torch.Generator().manual_seed(0)
    rule, w = torch.randn(4, 4, 4, generator=g), torch.randn(4, 3, 5, generator=g)
    expected = sum(torch.kron(rule[i], w[i]) for i in range(4))
    torch.testing.assert_close(kron_sum(rule, w), expected)


@pytest.mark.parametrize("factorized", [True, False])
def test_phm_linear_is_x_times_h_plus_b(factorized: bool) -> None:
    config = CompacterConfig(phm_dim=4, phm_rank=2, factorized_phm_W=factorized)
    shared = PHMRule(config, shared=True)
    layer = PHMLinear(16, 8, config, shared)
    with torch.no_grad():
        for p in [*layer.parameters(), *shared.parameters()]:
            p.normal_()
    w = torch.bmm(layer.W_left, layer.W_right) if factorized else layer.W
    h = sum(torch.kron(shared.phm_rule[i], w[i]) for i in range(4))
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(layer(x), x @ h + layer.b)


@pytest.mark.parametrize(("preset", "expected"), [("compacter", 57_088), ("compacter++", 28_576)])
def test_bert_base_counts_equal_adapterhubs(preset: str, expected: int) -> None:
    """AdapterHub 1.3 on bert-base: compacter 57,088, compacter++ 28,576 trainable parameters."""
    config = BertConfig(vocab_size=8, max_position_embeddings=8)  # bert-base layers, tiny vocab
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
        add_adapter(model, get_config(preset))
    assert trainable_summary(model).trainable == expected


def test_learn_phm_false_freezes_the_rules_and_saves_them(tmp_path) -> None:
    """AdapterHub's ``train_adapter`` re-enables the rules even with learn_phm=False; ours stay
    frozen (and are still saved and loaded)."""
    config = BertConfig(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    add_adapter(model, get_config("compacter", bottleneck_dim=4, phm_dim=2, learn_phm=False))
    rules = [p for n, p in model.named_parameters() if "phm_rule" in n]
    assert len(rules) == 1 and not rules[0].requires_grad
    assert all(id(p) != id(rules[0]) for p in get_adapter_parameters(model))
    with torch.no_grad():
        rules[0].fill_(0.5)
    save_adapter(model, tmp_path / "a")
    torch.manual_seed(1)
    fresh = BertModel(config, add_pooling_layer=False)
    load_adapter(fresh, tmp_path / "a")
    loaded = [p for n, p in fresh.named_parameters() if "phm_rule" in n]
    assert torch.equal(loaded[0], rules[0]) and not loaded[0].requires_grad


def test_sizes_not_divisible_by_phm_dim_are_refused() -> None:
    config = BertConfig(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertModel(config, add_pooling_layer=False)
    with pytest.raises(ValueError, match="not divisible by phm_dim=4"):
        add_adapter(model, get_config("compacter", bottleneck_dim=6))
    assert not any("adapters" in n for n, _ in model.named_modules())
