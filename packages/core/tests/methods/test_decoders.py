"""Prefix and prompt tuning (and the other methods) on decoder LMs: Llama with grouped KV heads
and RoPE, Qwen2, GPT-2 with ``Conv1D``. Equality with PEFT's prefix/prompt tuning, KV-cache
generation, masks, the causal conformer and GPT-2 feature sizes."""

from __future__ import annotations

import copy

import pytest
import torch
from adapterlab.core import add_adapter, get_config
from adapterlab.core.testing import build_backbone
from adapterlab.core.tuners.conformer import ConformerAdapter
from adapterlab.core.tuners.sublayer import feature_dim, input_dim
from torch import nn

N = 3  # virtual tokens


def _lm(kind: str, attn: str = "sdpa") -> nn.Module:
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(0)
    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "attn_implementation": attn}
    small = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "intermediate_size": 32}
    if kind == "llama":  # grouped-query attention: 4 query heads, 2 key/value heads
        model = LlamaForCausalLM(
            LlamaConfig(**small, num_attention_heads=4, num_key_value_heads=2, **ids)
        )
    elif kind == "qwen2":
        model = Qwen2ForCausalLM(
            Qwen2Config(**small, num_attention_heads=4, num_key_value_heads=1, **ids)
        )
    else:
        cfg = GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, **ids)
        model = GPT2LMHeadModel(cfg)
    return model.eval()


def _ids(batch: int = 2, length: int = 6) -> torch.Tensor:
    return torch.randint(3, 50, (batch, length), generator=torch.Generator().manual_seed(5))


def _adapted(kind: str, method: str, attn: str = "sdpa") -> nn.Module:
    model = _lm(kind, attn)
    add_adapter(model, get_config(method, num_tokens=N))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # trained-looking prefixes/prompts
        for name, p in model.named_parameters():
            if ".adapters." in name:
                p.copy_(torch.randn(p.shape, generator=g))
    return model.eval()


def _layers(model: nn.Module) -> list[nn.Module]:
    inner = model.model if hasattr(model, "model") else model.transformer
    return list(inner.layers if hasattr(inner, "layers") else inner.h)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_prompt_tuning_equals_peft(kind: str) -> None:
    """Same prompt embeddings: our logits equal PEFT's at the real positions, exactly."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    lm = _lm(kind)
    peft_model = get_peft_model(
        copy.deepcopy(lm), PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=N)
    ).eval()
    ours = _adapted(kind, "prompt")
    wrapper = ours.model if kind != "gpt2" else ours.transformer
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(
            wrapper.adapters["default"].prompts
        )
        expected = peft_model(input_ids=_ids()).logits[:, N:]
        got = ours(input_ids=_ids()).logits
    assert got.shape == (2, 6, 50)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_prefix_tuning_equals_peft(kind: str) -> None:
    """Same prefixes: our logits equal PEFT's prefix tuning (GQA included). PEFT puts the real
    tokens at positions N..N+T-1, we keep 0..T-1, so ours gets PEFT's positions explicitly."""
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    lm = _lm(kind)
    peft_model = get_peft_model(
        copy.deepcopy(lm), PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=N)
    ).eval()
    ours = _adapted(kind, "prefix")
    layers = _layers(ours)
    with torch.no_grad():
        table = peft_model.prompt_encoder["default"].embedding.weight
        table = table.view(N, 2 * len(layers), -1)  # PEFT: [tokens, (layer, key|value), ...]
        for i, layer in enumerate(layers):
            attn = layer.self_attn if kind != "gpt2" else layer.attn
            table[:, 2 * i] = attn.adapters["default"].key
            table[:, 2 * i + 1] = attn.adapters["default"].value
        expected = peft_model(input_ids=_ids()).logits
        positions = torch.arange(N, N + 6).expand(2, -1)
        got = ours(input_ids=_ids(), position_ids=positions).logits
        plain = ours(input_ids=_ids()).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(plain, got)  # positions matter: the RoPE/wpe path is exercised


@pytest.mark.parametrize("method", ["prefix", "prompt", "prompt_deep"])
@pytest.mark.parametrize("kind", ["llama", "qwen2", "gpt2"])
def test_generate_with_kv_cache_equals_full_recompute(kind: str, method: str) -> None:
    model = _adapted(kind, method)
    ids = _ids(2, 5)
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False
    )
    seq, logits_steps = ids, []
    with torch.no_grad():
        for _ in range(6):
            logits = model(input_ids=seq, use_cache=False).logits[:, -1]
            logits_steps.append(logits)
            seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)
    # and the cached decoding step gives the same logits as the full pass
    with torch.no_grad():
        first = model(input_ids=seq[:, :-1], use_cache=True)
        step = model(
            input_ids=seq[:, -1:], past_key_values=first.past_key_values, use_cache=True
        ).logits[:, -1]
        full = model(input_ids=seq, use_cache=False).logits[:, -1]
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_eager_and_sdpa_agree_and_padding_is_masked(method: str) -> None:
    """eager gets the model's 4-D float mask, sdpa none (implicit causal): both paths must agree;
    right padding must not change the real positions."""
    sdpa, eager = _adapted("llama", method, "sdpa"), _adapted("llama", method, "eager")
    ids = _ids(2, 6)
    with torch.no_grad():
        a, b = sdpa(input_ids=ids).logits, eager(input_ids=ids).logits
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        padded = torch.cat([ids, torch.zeros(2, 3, dtype=ids.dtype)], dim=1)
        mask = torch.cat([torch.ones_like(ids), torch.zeros(2, 3, dtype=ids.dtype)], dim=1)
        for model in (sdpa, eager):
            got = model(input_ids=padded, attention_mask=mask).logits[:, :6]
            torch.testing.assert_close(got, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_deep_prompts_replace_the_prompt_positions_at_every_layer(kind: str) -> None:
    model = _adapted(kind, "prompt_deep")
    wrapper = model.model if kind != "gpt2" else model.transformer
    tokens = wrapper.adapters["default"]
    seen: dict[int, torch.Tensor] = {}
    layers = _layers(model)
    for index, layer in enumerate(layers):

        def capture(module, args, kwargs, index=index):  # noqa: ANN001
            seen[index] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        # registered after the adapter's own hook, so it sees the replaced input
        layer.register_forward_pre_hook(capture, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=_ids())
    embeds = wrapper.get_input_embeddings()(_ids())
    if kind == "llama":  # GPT-2 adds position embeddings before the first layer
        torch.testing.assert_close(seen[0][:, N:], embeds)
        torch.testing.assert_close(seen[0][0, :N], tokens.prompts)
    for index in range(1, len(layers)):
        torch.testing.assert_close(seen[index][0, :N], tokens.deep_prompts[index - 1])


def test_prefix_follows_gqa_head_count() -> None:
    model = _adapted("qwen2", "prefix")  # 4 query heads sharing 1 key/value head of size 4
    prefix = model.model.layers[0].self_attn.adapters["default"]
    assert prefix.key.shape == (N, 4)
    with torch.no_grad():
        assert model(input_ids=_ids()).logits.isfinite().all()


def test_prefix_refuses_flash_attention_clearly() -> None:
    model = _adapted("llama", "prefix")
    model.config._attn_implementation_internal = "flash_attention_2"
    for layer in model.model.layers:
        layer.self_attn.config._attn_implementation_internal = "flash_attention_2"
    with pytest.raises(ValueError, match="'eager' or 'sdpa'"):
        model(input_ids=_ids())


def test_prompt_refuses_a_foreign_cache() -> None:
    from transformers import DynamicCache

    model = _adapted("llama", "prompt")
    plain = _lm("llama")
    cache = plain(input_ids=_ids(), past_key_values=DynamicCache(), use_cache=True)
    with pytest.raises(ValueError, match="not built with this prompt"):
        model(input_ids=_ids(2, 1), past_key_values=cache.past_key_values)


def test_conformer_depthwise_conv_is_causal_on_decoders_only() -> None:
    torch.manual_seed(0)
    causal = ConformerAdapter(8, 4, kernel_size=5, causal=True).eval()
    same = ConformerAdapter(8, 4, kernel_size=5, causal=False).eval()
    same.load_state_dict(causal.state_dict())
    for adapter in (causal, same):
        nn.init.normal_(adapter.pointwise_out.weight)
    x = torch.randn(2, 9, 8)
    later = x.clone()
    later[:, 6] = torch.randn(2, 8)  # (a constant shift would vanish in the LayerNorm)
    with torch.no_grad():
        c, c2 = causal.adapt(x), causal.adapt(later)
        s, s2 = same.adapt(x), same.adapt(later)
    torch.testing.assert_close(c2[:, :6], c[:, :6], rtol=0, atol=0)
    assert not torch.allclose(s2[:, :6], s[:, :6])  # "same" padding reads ahead
    assert causal.depthwise.padding == (0,)

    decoder, _ = build_backbone("llama")
    encoder, _ = build_backbone("roberta")
    for model, expected in ((decoder, True), (encoder, False)):
        add_adapter(model, get_config("conformer", bottleneck_dim=4))
        adapters = [m for m in model.modules() if isinstance(m, ConformerAdapter)]
        assert adapters and all(a.causal is expected for a in adapters)


def test_bottleneck_sizes_on_gpt2_conv1d() -> None:
    model, _ = build_backbone("gpt2")
    block = model.backbone.h[0]
    assert feature_dim(block.mlp) == 16 and input_dim(block.mlp) == 16
    assert feature_dim(block.attn) == 16
    assert feature_dim(block.mlp.c_fc) == 64 and input_dim(block.mlp.c_fc) == 16
    add_adapter(model, get_config("houlsby", bottleneck_dim=4))
    assert model.backbone.h[1].attn.adapters["default"].down.in_features == 16


def test_mixda_refuses_a_sequence_pooled_gate_on_decoders() -> None:
    model, _ = build_backbone("llama")
    with pytest.raises(ValueError, match="gate_pool='token'"):
        add_adapter(model, get_config("mixda", bottleneck_dim=4, gate_hidden=8))
