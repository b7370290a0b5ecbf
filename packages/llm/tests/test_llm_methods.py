"""LLM-Adapters' methods through the core on a tiny Llama: placements, identity at init,
trainable parameters, the cached-top forward and training through the engine."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import add_adapter, get_adapter_parameters, trainable_summary
from adapterlab.llm.config import AdaptConfig, apply_preset
from adapterlab.llm.data.arith import make_arith
from adapterlab.llm.methods import METHODS, build_config, parse_method
from adapterlab.llm.models.top import TopOfModel, hidden_at
from adapterlab.llm.task import CachedLMData, collate_cached, lm_loss, tokenise_examples
from adapterlab.llm.train import top_of, train_adapter

SPECS = ["series@attn", "series@mlp", "series@both", "parallel@attn", "parallel@mlp",
         "parallel@both", "lora@attn", "lora@mlp", "lora@both", "prefix"]  # fmt: skip


def _batch(tok):
    return tok(["The answer is 7.", "ab"], return_tensors="pt", padding=True)


@pytest.mark.parametrize("spec", SPECS)
def test_method_placement_identity_and_top_equivalence(tiny, spec):
    lm, tok = tiny
    enc = _batch(tok)
    before = lm(**enc).logits
    top = TopOfModel(lm, 2)
    add_adapter(top, build_config(spec, range(2, 4), bottleneck=8, lora_r=4), name="a")
    params = dict(top.named_parameters())
    trainable = [n for n, p in params.items() if p.requires_grad]
    method, placement = parse_method(spec)
    # adapters only in the chosen layers and sublayers
    assert trainable and all(".layers.2." in n or ".layers.3." in n for n in trainable)
    if placement == "attn":
        assert all(".self_attn." in n for n in trainable)
    if placement == "mlp":
        assert all(".mlp" in n for n in trainable)
    if placement == "both":
        assert any(".self_attn." in n for n in trainable) and any(".mlp" in n for n in trainable)
    after = lm(**enc).logits
    mask = enc["attention_mask"].bool()
    if method == "prefix":  # prefix tuning changes attention from the first forward on
        assert (after - before)[mask].abs().max() > 1e-4
    else:  # zero-initialised up-projection / LoRA B: a fresh adapter changes nothing
        torch.testing.assert_close(after, before)
    # the top-of-model forward on cached layer-2 inputs equals the full forward
    hidden = hidden_at(lm, 2, enc["input_ids"], enc["attention_mask"])
    logits = lm.lm_head(top(hidden, enc["attention_mask"]))
    torch.testing.assert_close(logits[mask], after[mask], atol=1e-5, rtol=1e-5)


def test_parallel_reads_the_sublayer_input_series_its_output(tiny):
    lm, tok = tiny
    enc = _batch(tok)
    top = TopOfModel(lm, 3)
    handles = add_adapter(top, build_config("series@mlp", range(3, 4), bottleneck=4), name="s")
    mlp = lm.model.layers[3].mlp
    seen = {}
    mlp.register_forward_hook(lambda m, a, out: seen.update(x=a[0], y=out))
    for p in get_adapter_parameters(top, "s"):
        torch.nn.init.normal_(p, std=0.3)
    lm(**enc)
    adapter = mlp.adapters["s"]
    y = mlp.base_layer(seen["x"])
    torch.testing.assert_close(seen["y"], y + adapter.up(torch.tanh(adapter.down(y))))
    del handles


def test_loss_and_gradient_flow_only_to_the_adapter(tiny):
    lm, tok = tiny
    train, _ = make_arith(4, 1)
    items = tokenise_examples(train, tok, cutoff=512)
    top = TopOfModel(lm, 2)
    add_adapter(top, build_config("lora", range(2, 4), lora_r=4, lora_dropout=0.0), name="a")
    for p in get_adapter_parameters(top, "a"):
        torch.nn.init.normal_(p, std=0.1)  # B != 0 so that A gets a gradient too
    batch = collate_cached(list(CachedLMData(items, lm, 2)))
    loss = lm_loss(top, batch)["loss"]
    # the loss equals the full model's cross-entropy on the response tokens
    ids, attn = batch["input_ids"], batch["attention_mask"]
    full = lm(input_ids=ids, attention_mask=attn).logits[:, :-1]
    m = batch["loss_mask"][:, 1:] & attn[:, 1:].bool()
    ref = torch.nn.functional.cross_entropy(full[m], ids[:, 1:][m])
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    loss.backward()
    grads = {n: p.grad for n, p in top.named_parameters() if p.grad is not None}
    assert grads and all("lora_" in n for n in grads)
    assert all(g.abs().sum() > 0 for g in grads.values())


def test_response_only_loss_mask(tiny):
    _, tok = tiny
    train, _ = make_arith(1, 1)
    resp = tokenise_examples(train, tok, cutoff=512)[0]
    full = tokenise_examples(train, tok, cutoff=512, train_on_inputs=True)[0]
    n_resp = len(train[0].output) + 1  # characters + EOS
    assert sum(resp.loss_mask) == n_resp and all(full.loss_mask)


def test_paper_preset_values():
    cfg = apply_preset(AdaptConfig(preset="paper", task="math"))
    assert (cfg.lora_r, cfg.lora_alpha, cfg.bottleneck, cfg.prefix_tokens) == (32, 64.0, 256, 10)
    assert (cfg.batch_size * cfg.grad_accum, cfg.epochs, cfg.num_beams) == (16, 3, 4)
    assert (METHODS["lora"].lr, METHODS["prefix"].lr) == (3e-4, 3e-2)  # the released lrs
    assert cfg.train_on_inputs and cfg.prompt_style == "release" and cfg.top_layers == 0
    assert apply_preset(AdaptConfig(preset="paper", task="commonsense")).max_new_tokens == 32
    with pytest.raises(ValueError):
        apply_preset(AdaptConfig(preset="nope"))


def test_training_through_the_engine_learns(tiny, tmp_path):
    lm, tok = tiny
    train, test = make_arith(40, 4, seed=0)
    cfg = AdaptConfig(model="tiny-llama", method="lora", steps=30, batch_size=8, lr=3e-2,
                      top_layers=2, cutoff=512, out=str(tmp_path / "run"), max_new_tokens=2)  # fmt: skip
    top = top_of(lm, 2)
    val = train[32:]
    items = tokenise_examples(val, tok, cutoff=512)
    before = lm_loss(top, collate_cached(list(CachedLMData(items, lm, 2))))["loss"].item()
    result = train_adapter(top, tok, cfg, train[:32], val, test, kind="number", keep=True)
    assert result.val_loss < before - 0.5  # the validation loss of the best checkpoint fell
    assert "accuracy" in result.test and (tmp_path / "run" / "metrics.json").is_file()
    assert trainable_summary(top).trainable == result.trainable_params > 0
