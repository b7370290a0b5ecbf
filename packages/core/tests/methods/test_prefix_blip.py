"""Prefix tuning on an attention module that keeps a transformers config but computes attention
by hand (BLIP's text attention): the prefix must take effect, not be silently dropped."""

from __future__ import annotations

import math

import torch
from adapterlab.core import add_adapter, get_config


def _tiny_blip_decoder():
    from transformers import BlipTextConfig
    from transformers.models.blip.modeling_blip_text import BlipTextLMHeadModel

    cfg = BlipTextConfig(
        vocab_size=30,
        hidden_size=16,
        encoder_hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        bos_token_id=1,
        sep_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    return BlipTextLMHeadModel(cfg).eval()


def _manual(attn, hidden, mask, pk, pv):
    """Eager attention of BLIP's self-attention with the prefix keys/values in front."""
    b, t, _ = hidden.shape
    heads, size = attn.num_attention_heads, attn.attention_head_size

    def split(x):
        return x.reshape(b, x.shape[1], heads, size).transpose(1, 2)

    q = split(attn.query(hidden))
    k = split(torch.cat([pk.expand(b, -1, -1), attn.key(hidden)], 1))
    v = split(torch.cat([pv.expand(b, -1, -1), attn.value(hidden)], 1))
    scores = q @ k.transpose(-1, -2) / math.sqrt(size)
    full = torch.cat([torch.zeros(*mask.shape[:-1], pk.shape[0]), mask], -1)
    probs = (scores + full).softmax(-1)
    return (probs @ v).transpose(1, 2).reshape(b, t, -1)


def test_prefix_on_blip_text_attention_matches_manual_and_trains() -> None:
    model = _tiny_blip_decoder()
    add_adapter(
        model, get_config("prefix", target_modules=r".*layer\.0\.attention\.self", num_tokens=3)
    )
    wrapper = model.bert.encoder.layer[0].attention.self
    prefix = wrapper.adapters["default"]
    with torch.no_grad():
        prefix.key.normal_(0, 1.0)
        prefix.value.normal_(0, 1.0)
    hidden = torch.randn(2, 5, 16)
    causal = torch.tril(torch.ones(5, 5))
    mask = ((1.0 - causal) * -10000.0)[None, None].expand(2, 1, 5, 5)
    out, _ = wrapper(hidden, attention_mask=mask)
    ref = _manual(wrapper.base_layer, hidden, mask, prefix.key, prefix.value)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    base, _ = wrapper.base_layer(hidden, attention_mask=mask)
    assert (out - base).abs().max() > 1e-3  # the prefix changes the output

    ids = torch.randint(3, 30, (2, 6))
    image = torch.randn(2, 4, 16)
    loss = model(input_ids=ids, encoder_hidden_states=image, labels=ids).loss
    loss.backward()
    assert prefix.key.grad is not None and prefix.key.grad.abs().sum() > 0
    assert prefix.value.grad.abs().sum() > 0
