"""Residual-learning loss, frozen parts, cache resume and learning on the synthetic graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapterlab.graph.cache import CacheError, CacheSpec, LLMCache, build_cache
from adapterlab.graph.config import FinetuneConfig, PretrainConfig
from adapterlab.graph.models.llm import load_llm
from adapterlab.graph.task import residual_loss, split_tokens, token_weights
from adapterlab.graph.train import ADAPTER_FILE, finetune, pretrain
from safetensors.torch import load_file

from .conftest import VOCAB


def test_residual_loss_matches_hand_computation():
    adapted = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]], requires_grad=True)
    original = torch.tensor([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 2])
    weights = torch.tensor([0.25, 0.75])
    eps, v = 0.1, 3
    expected = 0.0
    for t in range(2):
        p = (
            np.exp(adapted[t].detach().numpy()) / np.exp(adapted[t].detach().numpy()).sum()
            + np.exp(original[t].detach().numpy()) / np.exp(original[t].detach().numpy()).sum()
        ) / 2
        q = np.full(v, eps / (v - 1))
        q[labels[t]] = 1 - eps
        expected += weights[t].item() * float((q * (np.log(q) - np.log(p))).sum())
    loss = residual_loss(adapted, original, labels, weights, num_nodes=2, smoothing=eps)
    assert loss.item() == pytest.approx(expected / 2, rel=1e-5)
    loss.backward()
    assert original.grad is None  # no gradient reaches the LLM branch
    assert adapted.grad is not None and adapted.grad.abs().sum() > 0


def test_token_weights_and_held_out_split():
    w = token_weights(np.array([5, 7, 5, 9]))
    np.testing.assert_allclose(w, np.array([0.5, 1, 0.5, 1]) / 3)
    assert [split_tokens(t) for t in (1, 2, 9, 10, 30)] == [1, 1, 8, 9, 27]


def test_cache_resume_is_identical(synth_data, tmp_path):
    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    spec = CacheSpec(model="tiny-llama", chunk_nodes=16, batch_size=8, dtype="float16")
    full = build_cache(tmp_path / "a", synth_data.texts, model, tok, spec, show_progress=False)
    assert (
        build_cache(
            tmp_path / "b",
            synth_data.texts,
            model,
            tok,
            spec,
            show_progress=False,
            stop_after_chunks=2,
        )
        is None
    )
    with pytest.raises(CacheError, match="incomplete"):
        LLMCache(tmp_path / "b")
    assert any((tmp_path / "b" / "tokens").iterdir())
    resumed = build_cache(tmp_path / "b", synth_data.texts, model, tok, spec, show_progress=False)
    # once joined, the chunk files are gone: the token states are stored once
    assert not (tmp_path / "a" / "tokens").exists() and not (tmp_path / "b" / "tokens").exists()
    for name in ("node_features", "prompts", "token_states", "token_labels", "token_ptr"):
        np.testing.assert_array_equal(getattr(full, name), getattr(resumed, name))
    assert full.token_states.dtype == np.float16
    other = CacheSpec(model="tiny-llama", chunk_nodes=16, batch_size=8, max_text_tokens=3)
    with pytest.raises(CacheError, match="another model, dataset or setting"):
        build_cache(tmp_path / "a", synth_data.texts, model, tok, other, show_progress=False)


def test_cache_contents_follow_the_original_preprocessing(synth_data, tiny_cache):
    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    spec = CacheSpec(model="tiny-llama")
    node = 5
    prefix = tok(spec.template, add_special_tokens=False)["input_ids"]
    text = tok(synth_data.texts[node], add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # separate pass over template + text only
        h = model.base_model(input_ids=torch.tensor([prefix + text])).last_hidden_state[0]
    states, labels = tiny_cache.tokens_of(node)
    assert labels.tolist() == text  # each text token is the label of the previous state
    torch.testing.assert_close(
        torch.from_numpy(np.array(states)), h[len(prefix) - 1 : -1], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(
        torch.from_numpy(np.array(tiny_cache.node_features[node])), h[-1], atol=1e-5, rtol=1e-4
    )
    assert not np.allclose(tiny_cache.prompts[node], tiny_cache.node_features[node])


def test_pretraining_trains_only_the_adapter(synth_data, tiny_cache, tmp_path):
    head_before = tiny_cache.lm_head().weight.clone()
    res = pretrain(
        tiny_cache,
        synth_data,
        PretrainConfig(hidden=16, max_steps=6, batch_size=16),
        tmp_path / "pre",
        show_progress=False,
    )
    trained = load_file(str(res.run_dir / ADAPTER_FILE))
    torch.manual_seed(0)
    from adapterlab.graph.models.graphadapter import GraphAdapter

    fresh = GraphAdapter(tiny_cache.hidden_size, 16, "sage").state_dict()
    changed = {k for k in trained if not torch.equal(trained[k], fresh[k])}
    assert any(k.startswith("gnn.") for k in changed) and any(
        k.startswith("fusion.") for k in changed
    )
    assert torch.equal(tiny_cache.lm_head().weight, head_before)  # the LLM head is bit-identical
    assert res.trainable_params == sum(v.numel() for v in trained.values())


def test_finetuning_from_pretrained_adapter_learns(synth_data, tiny_cache, tmp_path):
    pre = pretrain(
        tiny_cache,
        synth_data,
        PretrainConfig(hidden=16, max_steps=4, batch_size=16),
        tmp_path / "pre",
        show_progress=False,
    )
    cfg = FinetuneConfig(hidden=16, steps=60, lr=1e-2, eval_every=10)
    res = finetune(
        "graphadapter",
        tiny_cache,
        synth_data,
        cfg,
        tmp_path / "ft",
        pretrained=pre.run_dir / ADAPTER_FILE,
        show_progress=False,
    )
    assert res.test["accuracy"] > 0.6  # 3 balanced classes: chance is 1/3
    assert set(res.test) >= {"accuracy", "macro_f1", "roc_auc"}


def test_closed_form_smoothed_kl_equals_kl_div_with_the_full_target():
    from adapterlab.graph.task import mixed_log_probs, smoothed_kl

    torch.manual_seed(0)
    adapted = (torch.randn(7, 50) * 3).requires_grad_()
    original = torch.randn(7, 50) * 3
    labels = torch.randint(0, 50, (7,))
    for eps in (0.0, 0.1, 0.3):
        log_p = mixed_log_probs(adapted, original)
        target = torch.full_like(log_p, eps / 49).scatter_(1, labels.view(-1, 1), 1 - eps)
        ref = torch.nn.functional.kl_div(log_p, target, reduction="none").sum(-1)
        ours = smoothed_kl(log_p, labels, eps)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
        g_ref, g_ours = (
            torch.autograd.grad(v.sum(), adapted, retain_graph=True)[0] for v in (ref, ours)
        )
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-6)
