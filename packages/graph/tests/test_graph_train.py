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
    with pytest.raises(CacheError, match="holds a cache with fingerprint"):
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


def test_pretraining_validates_on_held_out_tokens_of_val_nodes(synth_data, tiny_cache, tmp_path):
    """The validation loss (which picks the saved adapter) is the held-out 10 % of the tokens of
    the validation nodes, not training tokens: recomputed here from the saved adapter."""
    import json

    from adapterlab.graph.models.graphadapter import GraphAdapter, GraphAdapterPretrainer
    from adapterlab.graph.task import PretrainBatches, pretrain_eval_step

    res = pretrain(tiny_cache, synth_data, PretrainConfig(hidden=16, epochs=2, batch_size=16),
                   tmp_path / "pre", show_progress=False)  # fmt: skip
    rows = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("split") == "eval"]
    assert len(evals) >= 2 and any(r.get("split") == "train" for r in rows)
    best = min(evals, key=lambda r: r["loss"])
    assert res.val == {"metric": "loss", "loss": best["loss"], "best_step": best["step"]}
    adapter = GraphAdapter(tiny_cache.hidden_size, 16, "sage")
    adapter.load_state_dict(load_file(str(res.run_dir / ADAPTER_FILE)))
    model = GraphAdapterPretrainer(adapter, tiny_cache.lm_head()).eval()
    val_ids = synth_data.val_mask.nonzero().view(-1).tolist()
    with torch.no_grad():
        held_out = PretrainBatches(tiny_cache, synth_data.edge_index, [10, 10], "eval")(val_ids)
        train_tok = PretrainBatches(tiny_cache, synth_data.edge_index, [10, 10], "train")(
            list(range(tiny_cache.num_nodes))
        )
        expected = pretrain_eval_step(model, held_out)["loss"].item()
        on_train = pretrain_eval_step(model, train_tok)["loss"].item()
    assert best["loss"] == pytest.approx(expected, rel=1e-4)
    assert abs(on_train - expected) > 1e-3  # the two token sets really give other numbers


def test_binary_task_selects_and_reports_roc_auc(tmp_path):
    """Two classes (the original's Instagram/Reddit): the checkpoint is chosen by validation
    ROC-AUC, and the chosen step is the one with the best validation ROC-AUC in the log."""
    import json

    from adapterlab.graph.data import load_dataset, synthesize_tag

    data = load_dataset(synthesize_tag(tmp_path / "bin", num_nodes=40, num_classes=2, seed=1))
    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    cache = build_cache(tmp_path / "c", data.texts, model, tok,
                        CacheSpec(model="tiny-llama", dtype="float32"), show_progress=False)  # fmt: skip
    res = finetune("mlp", cache, data, FinetuneConfig(hidden=8, steps=12, lr=1e-2, eval_every=3),
                   tmp_path / "ft", show_progress=False)  # fmt: skip
    assert res.val["metric"] == "roc_auc"
    rows = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("split") == "eval"]
    best = max(evals, key=lambda r: r["roc_auc"])  # first of equal maxima, as the engine keeps
    assert res.val["roc_auc"] == best["roc_auc"] and res.val["best_step"] == best["step"]


def test_tfidf_baseline_picks_c_on_validation_and_learns(synth_data):
    from adapterlab.graph.train import tfidf_baseline

    val, test = tfidf_baseline(synth_data, [0.01, 10.0])
    assert val["metric"] == "accuracy" and val["C"] in (0.01, 10.0)
    assert val["accuracy"] == max(val["grid"].values())
    assert test["accuracy"] > 0.8  # class words are in the texts; chance is 1/3


def test_lora_baseline_starts_from_the_cached_prompt_embedding(synth_data, tiny_cache):
    """Not broken: before training, the LoRA classifier reads exactly the state the cache
    stores as the prompt embedding (same tokens, same position; LoRA's B starts at zero)."""
    from adapterlab.core import LoraConfig, add_adapter
    from adapterlab.graph.cache import _sequences
    from adapterlab.graph.models.llm_classifier import LLMClassifier, lora_targets

    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    clf = LLMClassifier(model, 3)
    targets = [f"llm.{t}" for t in lora_targets(model, 1)]
    add_adapter(clf, LoraConfig(r=8, alpha=16, target_modules=targets, modules_to_save=["head"]))
    spec = CacheSpec(model="tiny-llama", chunk_nodes=16, batch_size=8, dtype="float32")
    seqs = [s for s, _, _ in _sequences(spec, tok, synth_data.texts[:4])]
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    with torch.no_grad():
        hidden = clf.llm.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        last = hidden[torch.arange(4), mask.sum(1) - 1]
    torch.testing.assert_close(last, torch.from_numpy(np.array(tiny_cache.prompts[:4])),
                               atol=1e-5, rtol=1e-4)  # fmt: skip


def _build_as_rank(root, texts, rank, world, llm):
    model, tok = llm
    spec = CacheSpec(model="tiny-llama", chunk_nodes=8, batch_size=4, dtype="float16")
    build_cache(root, texts, model, tok, spec, show_progress=False, rank=rank, world=world,
                wait_timeout=120)  # fmt: skip


def test_cache_built_by_two_processes_is_byte_identical(synth_data, tmp_path):
    """Two CPU processes share the chunks (rank r builds chunks r, r + 2, ...); the joined cache
    equals a 1-process build byte for byte."""
    import multiprocessing

    texts = synth_data.texts[:40]
    llm = load_llm("tiny-llama", vocab_words=VOCAB)
    _build_as_rank(tmp_path / "one", texts, 0, 1, llm)
    ctx = multiprocessing.get_context("fork")  # the children share the loaded model
    procs = [ctx.Process(target=_build_as_rank, args=(tmp_path / "two", texts, r, 2, llm))
             for r in (1, 0)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    one = sorted(
        p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file()
    )
    two = sorted(
        p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file()
    )
    assert one == two and "token_states.npy" in {p.name for p in one}
    for rel in one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_lora_budget_covers_every_class_and_the_chosen_run_tests_the_same(synth_data, tmp_path):
    """The LoRA budget subset takes the classes in turn (the first N training ids covered 4 of
    WordNet's 12 classes), and re-testing the chosen grid point from its saved adapter + head
    gives the numbers of testing it in place."""
    from adapterlab.graph.train import stratified_subset, test_lora, train_lora

    ids = stratified_subset(synth_data.train_mask.nonzero(), synth_data.y, 12, seed=0)
    assert torch.bincount(synth_data.y[ids], minlength=3).tolist() == [4, 4, 4]
    model, tok = load_llm("tiny-llama", vocab_words=VOCAB)
    spec = CacheSpec(model="tiny-llama")
    res = train_lora(model, tok, synth_data, spec, tmp_path / "l", train_nodes=12, steps=4,
                     last_layers=1, lr=1e-2, show_progress=False, plots=False)  # fmt: skip
    assert res.val["train_nodes"] == 12
    assert not any(p.requires_grad for p in model.parameters())  # the shared LLM is clean again
    again = test_lora(
        model, tok, synth_data, spec, tmp_path / "l", last_layers=1, show_progress=False
    )
    assert again == res.test


@pytest.mark.parametrize("per", ["epoch", "batch"])
def test_pretraining_lr_schedule_per_epoch_as_the_original(synth_data, tiny_cache, tmp_path, per):
    import json

    cfg = PretrainConfig(hidden=8, epochs=3, batch_size=16, warmup_steps=1, schedule_per=per)
    res = pretrain(tiny_cache, synth_data, cfg, tmp_path / "pre", show_progress=False)
    rows = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    lrs = [(r["epoch"], r["lr"]) for r in rows if r.get("split") == "train" and "lr" in r]
    by_epoch = {e: {lr for e2, lr in lrs if e2 == e} for e, _ in lrs}
    assert len(by_epoch) == 3
    if per == "epoch":  # warmup epoch at the peak, then linear decay: one rate per epoch
        assert all(len(v) == 1 for v in by_epoch.values()) and len({lr for _, lr in lrs}) > 1
    else:
        assert any(len(v) > 1 for v in by_epoch.values())


def test_joint_tokenisation_keeps_a_text_token_that_starts_in_the_template():
    """BPE-style tokens carry their leading space: in "noun: dog ..." the token " dog" starts at
    the template's last character; it is still the text's first token (it was dropped)."""
    from adapterlab.graph.cache import _sequences
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = ["<pad>", "<unk>", "noun", ":", " dog", " cat", " barks", ".", " Answer", ' "', " "]
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[A-Za-z]+| ?\"|[:.]| "), "isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")
    spec = CacheSpec(model="x", template="noun: ", question='. Answer "', max_text_tokens=None)
    ((ids, first, n),) = _sequences(spec, tok, ["dog barks"], model_max=64)
    assert [vocab[i] for i in ids[first : first + n]] == [" dog", " barks"]
    assert vocab[ids[-1]] == ' "'  # the prompt embedding's token: the opening quote
