"""Encoder-decoder, variants through the core (what trains, stacking), downstream training."""

from __future__ import annotations

import json

import pytest
import torch
from adapterlab.code.config import TaskConfig
from adapterlab.code.data.embedded import write_refinement
from adapterlab.code.methods import NER, TASK, add_ner_adapter
from adapterlab.code.models.backbone import load_backbone
from adapterlab.code.models.ner import TokenTypeModel
from adapterlab.code.train import build_task_model, evaluate_run, train_task
from adapterlab.core import adapter_state_dict, save_adapter


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory):
    encoder, _ = load_backbone("tiny", seed=0)
    model = TokenTypeModel(encoder, 17)
    add_ner_adapter(model, "pfeiffer", 4, head="ttc_head")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adapters.ner.up" in name:
                p.normal_(0, 0.5)  # a non-trivial NER adapter
    return save_adapter(model, tmp_path_factory.mktemp("ner") / "ner_adapter", NER)


def cfg(tmp_path, variant, ner_dir=None, **kw):
    base = dict(
        task="refinement", variant=variant, model="tiny", ner_adapter=str(ner_dir) if ner_dir else None,
        out=str(tmp_path / variant), decoder_layers=1, max_source_length=64, max_target_length=48,
        steps=4, batch_size=8, max_train=32, max_eval=8,
    )  # fmt: skip
    base.update(kw)
    return TaskConfig(**base)


def test_decoder_has_no_future_leak(tmp_path):
    model, _ = build_task_model(cfg(tmp_path, "full"))
    model.eval()
    src = torch.randint(5, 100, (2, 10))
    mask = torch.ones_like(src)
    tgt = torch.randint(5, 100, (2, 7))
    memory = model.encode(src, mask)
    a = model.decode(tgt, memory, mask)
    tgt2 = tgt.clone()
    tgt2[:, 4:] = torch.randint(5, 100, (2, 3))
    b = model.decode(tgt2, memory, mask)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5) and not torch.allclose(a[:, 4:], b[:, 4:])
    last = model.decode(tgt, memory, mask, last_only=True)  # what greedy/beam decoding uses
    assert last.shape == (2, 1, a.shape[-1]) and torch.allclose(last, a[:, -1:], atol=1e-5)
    tmask = torch.ones_like(tgt)
    tmask[1, 5:] = 0  # padding: the loss covers exactly the non-padding next tokens
    active = tmask[:, 1:].bool()
    expected = torch.nn.functional.cross_entropy(a[:, :-1][active], tgt[:, 1:][active])
    assert torch.allclose(model(src, mask, tgt, tmask), expected, atol=1e-5)


@pytest.mark.parametrize("variant", ["full", "codeberter", "task_adapter", "ner_task"])
def test_variant_trainability(tmp_path, ner_dir, variant):
    """What trains per variant (#22 item 4): full fine-tuning trains everything; CodeBERTER
    and the adapter variants keep the encoder frozen (the paper's 20-23 % budget) and train an
    adapter and the decoder; CodeBERTER's adapter starts from the TTC weights, ner_task's NER
    adapter stays frozen under the stacked task adapter."""
    from adapterlab.core import trainable_summary
    from safetensors.torch import load_file

    model, _ = build_task_model(cfg(tmp_path, variant, ner_dir))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any("adapters.ner" in n for n in trainable)  # a NER adapter never trains as such
    assert any(n.startswith("decoder.") for n in trainable)
    encoder_base = {n for n in trainable if n.startswith("encoder.") and "adapters" not in n}
    share = trainable_summary(model).percent
    if variant == "full":
        assert "encoder.embeddings.word_embeddings.weight" in encoder_base and share == 100
        return
    assert not encoder_base and any("adapters.task" in n for n in trainable) and share < 50
    wrapper = next(
        m for m in model.encoder.encoder.layer[0].output.modules() if hasattr(m, "running")
    )
    assert list(wrapper.running()) == ([NER, TASK] if variant == "ner_task" else [TASK])
    ttc = {k: v for k, v in load_file(str(ner_dir / "adapter.safetensors")).items()}
    task = adapter_state_dict(model, TASK)
    if variant == "codeberter":  # the TTC weights initialise the adapter that trains
        assert all(torch.equal(task[k], v) for k, v in ttc.items() if not k.startswith("extra."))
    else:  # a fresh task adapter: zero up-projection
        assert all(v.abs().sum() == 0 for k, v in task.items() if ".up." in k)
    if variant == "ner_task":
        saved = adapter_state_dict(model, NER)
        assert all(torch.equal(saved[k], v) for k, v in ttc.items() if not k.startswith("extra."))


def test_codeberter_encodes_as_the_ttc_encoder(tmp_path, ner_dir):
    """CodeBERTER's encoder, before fine-tuning, computes exactly what the TTC-trained encoder
    (frozen backbone + NER adapter) computed: the adapter is loaded whole and active."""
    from adapterlab.core import load_adapter

    encoder, _ = load_backbone("tiny", seed=0)
    ttc = TokenTypeModel(encoder, 17)
    add_ner_adapter(ttc, "pfeiffer", 4, head="ttc_head")
    load_adapter(ttc, ner_dir, NER)
    model, _ = build_task_model(cfg(tmp_path, "codeberter", ner_dir))
    ttc.eval(), model.eval()
    src = torch.randint(5, 100, (2, 12))
    mask = torch.ones_like(src)
    expected = ttc.encoder(input_ids=src, attention_mask=mask)[0]
    assert torch.allclose(model.encode(src, mask), expected, atol=1e-6)
    bare, _ = build_task_model(cfg(tmp_path, "full"))
    bare.eval()
    assert not torch.allclose(bare.encode(src, mask), expected, atol=1e-3)  # the adapter matters


def test_min_length_forbids_an_empty_output(tmp_path):
    model, _ = build_task_model(cfg(tmp_path, "full"))
    model.eval()
    plain = model.decode

    def eos_first(ids, memory, mask, *, last_only=False):  # a decoder that always prefers EOS
        logits = plain(ids, memory, mask, last_only=last_only).clone()
        logits[..., model.eos_id] = 1e4
        return logits

    model.decode = eos_first
    src = torch.randint(5, 100, (3, 10))
    mask = torch.ones_like(src)
    for beam in (1, 3):
        empty = model.generate(src, mask, 6, beam, min_length=0)
        assert (empty == model.pad_id).all()  # CodeXGLUE's decoding: an empty output
        one = model.generate(src, mask, 6, beam, min_length=1)
        assert (one[:, 0] != model.pad_id).all() and (one[:, 1:] == model.pad_id).all()


def test_ner_adapter_from_other_model_is_rejected(tmp_path, ner_dir):
    with pytest.raises(FileNotFoundError, match="no NER adapter"):
        build_task_model(cfg(tmp_path, "codeberter", tmp_path / "nothing"))
    for name in ("ner_task", "codeberter"):
        with pytest.raises(ValueError, match="needs --ner_adapter"):
            build_task_model(cfg(tmp_path, name, None))


def test_refinement_training_and_eval(tmp_path, ner_dir):
    data = write_refinement(tmp_path / "ref", {"train": 32, "valid": 8, "test": 8})
    config = cfg(tmp_path, "ner_task", ner_dir, data=str(data))
    model, _ = build_task_model(config)
    ner_before = {k: v.clone() for k, v in adapter_state_dict(model, NER).items()}
    report = train_task(config, progress=False)
    assert set(report["test"]) >= {"bleu", "exact_match", "loss"}
    assert 0 <= report["test"]["bleu"] <= 100 and report["test_examples"] == 8
    assert report["trainable_percent"] < 100
    # the NER adapter stored in the trained run is the loaded one, unchanged
    trained, _ = build_task_model(config)
    from adapterlab.core import load_adapter

    load_adapter(trained, tmp_path / "ner_task" / "best", TASK)
    for key, value in adapter_state_dict(trained, NER).items():
        assert torch.equal(value, ner_before[key])
    # the run's files are CodeXGLUE's refinement format: one line per test example, aligned
    from adapterlab.code.data.codexglue import load_refinement

    run = tmp_path / "ner_task"
    gold = (run / "test_gold.txt").read_text().split("\n")[:-1]
    preds = (run / "test_predictions.txt").read_text().split("\n")[:-1]
    assert gold == [p.target for p in load_refinement(data, "test").pairs][:8] and len(preds) == 8
    exact = 100 * sum(g.strip() == p.strip() for g, p in zip(gold, preds)) / 8
    assert exact == pytest.approx(report["test"]["exact_match"])
    again = evaluate_run(str(tmp_path / "ner_task"), "test")
    assert again["bleu"] == pytest.approx(report["test"]["bleu"])
    assert (
        json.loads((tmp_path / "ner_task" / "task_report.json").read_text())["variant"]
        == "ner_task"
    )


def test_ttc_and_variants_overlapped_equal_one_after_another(tmp_path):
    """run-all's two-process path (variants without the NER adapter beside TTC, the others
    queued after it) gives TTC's and each variant's report exactly as the serial path, in the
    order asked for, and the NER variants read the adapter this TTC wrote."""
    import shutil

    from adapterlab.code.config import TTCConfig
    from adapterlab.code.data.sources import stdlib_root
    from adapterlab.code.pipeline import ttc_and_variants

    src = tmp_path / "src"
    src.mkdir()
    for name in ("bisect.py", "heapq.py", "colorsys.py", "keyword.py", "fnmatch.py", "glob.py"):
        shutil.copy(stdlib_root() / name, src / name)
    data = write_refinement(tmp_path / "ref", {"train": 16, "valid": 4, "test": 4})
    reports = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        ttc_cfg = TTCConfig(
            model="tiny", source=str(src), out=str(root / "ttc"), cache_dir=None, max_length=64,
            max_files=None, num_proc=1, steps=4, batch_size=8, eval_every=4, reduction_factor=4,
        )  # fmt: skip
        tasks = [
            cfg(root, v, data=str(data), steps=2, max_train=16, max_eval=4)
            for v in ("ner_task", "task_adapter")
        ]
        reports[workers] = ttc_and_variants(ttc_cfg, tasks, 1, workers, progress=False)
    (ttc1, rows1), (ttc2, rows2) = reports[1], reports[2]
    for key in ("accuracy", "macro_f1"):
        assert ttc2["test"][key] == pytest.approx(ttc1["test"][key])
    assert [r["variant"] for r in rows2] == ["ner_task", "task_adapter"]
    for serial, parallel in zip(rows1, rows2, strict=True):
        assert parallel["test"]["loss"] == pytest.approx(serial["test"]["loss"], abs=1e-6)
        assert parallel["test"]["bleu"] == pytest.approx(serial["test"]["bleu"])
        assert parallel["cpu_seconds"] > 0
    written = str(tmp_path / "w2" / "ttc" / "ner_adapter")
    assert written in (tmp_path / "w2" / "ner_task" / "config.yaml").read_text()


def test_paper_preset_reduced_size(tmp_path, ner_dir):
    """``--preset paper`` fills in the paper's (CodeXGLUE's) settings for the task, explicit
    options win, and the preset's code path (2048-wide decoder FFN, one lr 5e-5, batch 32,
    beam 5, validation every N steps) trains and evaluates at a reduced size."""
    from adapterlab.code.config import PAPER_SETTINGS, apply_preset

    summ = apply_preset(TaskConfig(preset="paper"))
    assert (summ.max_source_length, summ.max_target_length, summ.beam_size) == (256, 128, 10)
    assert summ.epochs == 10 and summ.min_length == 0 and summ.lr == summ.decoder_lr == 5e-5
    data = write_refinement(tmp_path / "ref", {"train": 24, "valid": 4, "test": 4})
    config = cfg(
        tmp_path, "codeberter", ner_dir, data=str(data), preset="paper", steps=2,
        max_train=24, max_eval=4, max_source_length=40, max_target_length=16, eval_every=1,
        batch_size=16,  # the default: the preset sets it
    )  # fmt: skip
    resolved = apply_preset(config)
    paper = PAPER_SETTINGS["refinement"]
    assert resolved.decoder_ffn == paper["decoder_ffn"] == 2048
    assert (resolved.batch_size, resolved.beam_size, resolved.lr) == (32, 5, 5e-5)
    assert (resolved.steps, resolved.max_target_length, resolved.eval_every) == (2, 16, 1)
    model, _ = build_task_model(config)
    assert model.decoder.layers[0].linear1.out_features == 2048
    report = train_task(config, progress=False)
    assert report["preset"] == "paper" and report["steps"] == 2
    assert set(report["test"]) >= {"bleu", "exact_match", "loss"}
    evals = [
        json.loads(x)
        for x in (tmp_path / "codeberter" / "metrics.jsonl").read_text().split("\n")
        if x
    ]
    assert sum(1 for e in evals if "bleu" in json.dumps(e)) >= 2  # validated every step


def _encode(model, src):
    model.eval()
    with torch.no_grad():
        return model.encode(src, torch.ones_like(src))


def test_variants_start_from_identical_shared_weights(tmp_path, ner_dir):
    """#22 item 2: at the same seed every variant's decoder starts from the same weights, and
    ner_task's task adapter from exactly task_adapter's (the NER adapter loaded first draws
    nothing from the global RNG), so a paired difference measures the NER adapter, not init."""
    from adapterlab.code.methods import DECODER_MODULES

    models = {
        v: build_task_model(cfg(tmp_path, v, ner_dir, seed=3))[0]
        for v in ("full", "codeberter", "task_adapter", "ner_task")
    }
    decoders = {
        v: {k: p for k, p in m.named_parameters() if k.split(".")[0] in DECODER_MODULES}
        for v, m in models.items()
    }
    ref = decoders["task_adapter"]
    for v, dec in decoders.items():
        assert dec.keys() == ref.keys() and all(torch.equal(dec[k], ref[k]) for k in ref), v
    a = adapter_state_dict(models["task_adapter"], TASK)
    b = adapter_state_dict(models["ner_task"], TASK)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = adapter_state_dict(build_task_model(cfg(tmp_path, "task_adapter", seed=4))[0], TASK)
    assert any(not torch.equal(a[k], other[k]) for k in a if ".down." in k)  # seeds do matter


def test_ner_task_stacks_as_adapterhub(tmp_path, ner_dir):
    """#22 item 1 (AdapterHub ``Stack("ner", "task")`` for seq_bn adapters): the task adapter
    adds its change to the NER adapter's output, so a fresh task adapter leaves exactly the
    TTC-trained encoder (the NER adapter's token-type predictions survive the stacking), and
    removing the NER adapter from a trained ner_task model changes what it computes."""
    from adapterlab.core import load_adapter, set_active

    src = torch.randint(5, 100, (2, 12))
    # the NER adapter with its TTC head: the token types it predicts alone
    encoder, _ = load_backbone("tiny", seed=0)
    ttc = TokenTypeModel(encoder, 17)
    add_ner_adapter(ttc, "pfeiffer", 4, head="ttc_head")
    load_adapter(ttc, ner_dir, NER)
    ttc.eval()
    with torch.no_grad():
        alone = ttc.encoder(input_ids=src, attention_mask=torch.ones_like(src))[0]
        types_alone = ttc.ttc_head(alone).argmax(-1)
    stacked, _ = build_task_model(cfg(tmp_path, "ner_task", ner_dir))
    fresh = _encode(stacked, src)
    assert torch.allclose(fresh, alone, atol=1e-5)  # a fresh task adapter adds nothing
    assert torch.equal(ttc.ttc_head(fresh).argmax(-1), types_alone)
    # a trained task adapter (non-zero up-projection) on top: the NER adapter still matters
    with torch.no_grad():
        for name, p in stacked.named_parameters():
            if "adapters.task.up" in name:
                p.normal_(0, 0.2)
    both = _encode(stacked, src)
    set_active(stacked, TASK)  # the NER adapter removed from the stack
    task_only = _encode(stacked, src)
    assert not torch.allclose(both, task_only, atol=1e-3)
    assert not torch.allclose(both, alone, atol=1e-3)  # and the task adapter acts too


def test_seed_comparison_table():
    """Mean ± sample std per variant over seeds, paired differences on the same seeds, and a
    verdict that calls a difference real only when every seed agrees and p < 0.05."""
    import statistics

    from adapterlab.code.comparison import aggregate_variants, paired_comparisons, verdict
    from adapterlab.code.pipeline import markdown_summary

    def row(name, seed, loss, bleu):
        return {"variant": name, "seed": seed, "description": name, "test": {"loss": loss,
                "bleu": bleu}, "valid": {"bleu": bleu}, "trainable_percent": 30.0,
                "trainable_params": 10, "train_seconds": 2.0, "cpu_seconds": 2.5}  # fmt: skip

    base = {0: 6.50, 1: 6.71, 2: 6.43}
    rows = [row("task_adapter", s, v, 1.0 + s) for s, v in base.items()]
    rows += [row("ner_task", s, v - 0.10 - 0.01 * s, 1.0 + s) for s, v in base.items()]
    rows += [row("codeberter", s, v + (0.05 if s else -0.05), 1.0) for s, v in base.items()]
    variants = aggregate_variants(rows)
    loss = variants["ner_task"]["stats"]["loss"]
    expected = [base[s] - 0.10 - 0.01 * s for s in (0, 1, 2)]
    assert loss.mean == pytest.approx(statistics.mean(expected))
    assert loss.std == pytest.approx(statistics.stdev(expected)) and loss.n == 3
    pairs = {(p["with"], p["without"], p["metric"]): p for p in paired_comparisons(variants)}
    ner = pairs["ner_task", "task_adapter", "loss"]
    assert ner["differences"] == pytest.approx({"0": -0.10, "1": -0.11, "2": -0.12})
    assert ner["ner_better_seeds"] == 3 and verdict(ner).startswith("helped beyond seed noise")
    mixed = pairs["codeberter", "task_adapter", "loss"]
    assert verdict(mixed).startswith("no difference beyond seed noise")
    assert verdict(pairs["ner_task", "task_adapter", "bleu"]).startswith("no difference (identical")
    summary = {
        "model": "tiny", "seeds": [0, 1, 2], "paired": [{**p, "verdict": verdict(p)} for p in
        pairs.values()], "paper_direction": "helps", "total_seconds": 1.0,
        "ttc": {"test": {"accuracy": 0.5, "macro_f1": 0.2, "per_type_f1": {"keyword": 0.5}},
                "test_tokens": 10, "trainable_percent": 1.0, "majority_type": "string",
                "majority_accuracy": 0.4, "majority_macro_f1": 0.1},
    }  # fmt: skip
    text = markdown_summary(summary, variants)
    assert "| ner_task | ner_task | 2.00 ± 1.00 | 6.437 ± 0.148 |" in text
    assert "**Did the NER adapter help (ner_task vs task_adapter)?** test loss: helped" in text
