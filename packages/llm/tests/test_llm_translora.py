"""Trans-LoRA on a tiny pair of models: synthesis, discriminator filter, distillation LoRA ->
LoRA and LoRA -> bottleneck, ablations and the empty-set error."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import list_adapters
from adapterlab.llm import translora as tl
from adapterlab.llm.data.arith import make_arith
from adapterlab.llm.methods import build_config
from adapterlab.llm.task import CachedLMData, collate_cached, lm_loss, tokenise_examples
from adapterlab.llm.train import top_of, train_lm


def test_seed_prompt_and_synthesis_returns_distinct_new_questions(tiny):
    lm, tok = tiny
    seeds, _ = make_arith(5, 0)
    prompt = tl.seed_prompt(seeds)
    assert prompt.startswith("Here are some example questions:\n1. ") and prompt.endswith("\n6.")
    out = tl.synthesise_inputs(lm, tok, seeds, 4, rounds=2, seed=0, max_new_tokens=12)
    assert len(out) == len(set(out)) <= 4
    assert all("\n" not in q and len(q) >= 8 for q in out)
    assert not set(out) & {e.instruction for e in seeds}


def test_filter_keeps_what_the_discriminator_calls_real():
    assert tl.filter_inputs(["a", "b", "c"], [0.5, -0.1, 0.0]) == ["a"]


def test_discriminator_learns_real_from_synthetic(tiny, tmp_path):
    lm, tok = tiny
    train, _ = make_arith(24, 0)
    real = [e.instruction for e in train]
    fake = tl.random_inputs(tok, 24, seed=0, length=40)
    top = top_of(lm, 2)
    tl.train_discriminator(
        top, tok, real[:20], fake[:20], run_dir=str(tmp_path / "d"), steps=40, lr=3e-2, seed=0
    )
    assert "disc" in list_adapters(top)
    real_s, fake_s = tl.score_real(lm, tok, real[20:]), tl.score_real(lm, tok, fake[20:])
    assert min(real_s) > max(fake_s)  # held-out real and random inputs are separated
    items = tl.discriminator_items(tok, ["q"], ["z"])
    assert [sum(i.loss_mask) for i in items] == [len("yes"), len("no")]


def _source(tiny, tmp_path):
    lm, tok = tiny
    train, _ = make_arith(24, 0)
    top = top_of(lm, 2)
    items = tokenise_examples(train, tok, cutoff=512)
    train_lm(top, build_config("lora", range(2, 4), lora_r=4), items[:20], items[20:], run_dir=tmp_path / "src",
             name="src", steps=20, batch_size=8, lr=3e-2, seed=0)  # fmt: skip
    return lm, tok, top, train


@pytest.mark.parametrize("method", ["lora", "series"])
def test_distillation_lora_to_lora_and_to_bottleneck_on_another_model(
    tiny, tiny_b, tmp_path, method
):
    s_lm, s_tok, s_top, train = _source(tiny, tmp_path)
    t_lm, t_tok = tiny_b
    target = top_of(t_lm, 1)
    inputs = [e.instruction for e in train[:16]]
    d = tl.distill(s_lm, s_tok, target, t_tok, inputs, method=method, steps=25, batch_size=8,
                   lr=3e-2, seed=0, run_dir=str(tmp_path / "t"), max_new_tokens=12, bottleneck=16, lora_r=4)  # fmt: skip
    assert d.inputs == inputs and len(d.labels) == 16
    # the labels are the source model's completions (with its LoRA)
    from adapterlab.llm.prompts import eval_prompt
    from adapterlab.llm.task import generate

    assert (
        d.labels[0] == generate(s_lm, s_tok, [eval_prompt(inputs[0])], max_new_tokens=12)[0].strip()
    )
    assert d.name in list_adapters(target)
    assert list_adapters(target)[d.name].method == ("lora" if method == "lora" else "bottleneck")
    # the target learned the source's completions: its loss on them is below the bare target's
    from adapterlab.llm.data.alpaca import Example

    items = tokenise_examples(
        [Example(q, "", y, "") for q, y in zip(d.inputs, d.labels)], t_tok, cutoff=512
    )
    batch = collate_cached(list(CachedLMData(items, t_lm, target.start)))
    with torch.no_grad():
        adapted = lm_loss(target, batch)["loss"].item()
        tl.activate(target, [])
        bare = lm_loss(target, batch)["loss"].item()
    assert adapted < bare - 0.2


def test_empty_synthetic_set_stops_with_a_clear_message(tiny, tiny_b, tmp_path):
    s_lm, s_tok = tiny
    t_lm, t_tok = tiny_b
    with pytest.raises(tl.EmptySyntheticSet, match="no synthetic input left"):
        tl.distill(s_lm, s_tok, top_of(t_lm, 1), t_tok, [], method="lora", steps=2, batch_size=2,
                   lr=1e-3, seed=0, run_dir=str(tmp_path / "t"))  # fmt: skip
    assert not (tmp_path / "t").exists()


def test_random_synthetic_baseline():
    from adapterlab.llm.models.llm import char_tokenizer

    tok = char_tokenizer()
    a, b = tl.random_inputs(tok, 5, seed=0), tl.random_inputs(tok, 5, seed=0)
    assert a == b and len(a) == 5 and len(set(a)) == 5
