"""Issue 25 (audio, items 9-13): last-epoch testing under the original UrbanSound8K protocol, BitFit-original
files the core reloads, ``--model demo`` on any folder, the demo's baselines, and the sweep's options."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from adapterlab.audio.loaders import load_esc50, load_fluent_speech
from adapterlab.audio.methods import parse_method
from adapterlab.audio.model import ASTClassifier, load_ast
from adapterlab.audio.sweep import SweepConfig, run_config, run_sweep
from adapterlab.audio.train import RunConfig, evaluate_run, prepare, train
from adapterlab.core import load_adapter

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")
FAST = dict(frames=32, epochs=2, batch_size=8, dim=4, progress=False, seed=0)


def _tone(path: Path, freq: float, seconds=0.4, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sr)


def _us8k(root: Path) -> Path:
    """UrbanSound8K layout: 10 folds x 2 classes (a low and a high tone) x 1 clip."""
    (root / "metadata").mkdir(parents=True)
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
        )
        for fold in range(1, 11):
            for cid, name in enumerate(("low", "high")):
                fname = f"{fold}-{cid}.wav"
                w.writerow([fname, 1, 0, 1, 1, fold, cid, name])
                _tone(root / "audio" / f"fold{fold}" / fname, 300 + 1500 * cid, seed=fold)
    return root


def _speech(root: Path, words=("yes", "no", "up"), n=4) -> Path:
    """Speech Commands layout: ``n`` clips per word, one validation and one test clip per word."""
    for k, w in enumerate(words):
        for i in range(n):
            _tone(root / w / f"{w}_nohash_{i}.wav", 250 + 400 * k, seconds=0.3, seed=i)
    (root / "validation_list.txt").write_text("".join(f"{w}/{w}_nohash_1.wav\n" for w in words))
    (root / "testing_list.txt").write_text("".join(f"{w}/{w}_nohash_2.wav\n" for w in words))
    return root


# ---------------------------------------------------------------- 9. original US8K protocol: last epoch


def test_paper_preset_on_us8k_tests_the_last_epoch_and_says_so(tmp_path, tiny_ckpt):
    root = _us8k(tmp_path / "us8k")
    cfg = SweepConfig(
        preset="paper",
        methods="linear",  # explicit --methods win over the preset's list (item 13)
        dataset="urbansound8k",
        data=str(root),
        model=str(tiny_ckpt),
        folds="10",
        out=str(tmp_path / "sweep"),
        **FAST,
    )
    assert cfg.with_preset().us8k_protocol == "original"
    result = run_sweep(cfg)
    (row,) = result["rows"]
    assert row["label"] == "linear" and row["test_from"] == "last"
    run = Path(row["run_dir"])
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert not [r for r in records if r["split"] == "eval"]  # nothing selected on the test fold
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_from"] == "last" and metrics["global_step"] == 2 * 3  # 18 clips, batch 8
    assert not (run / "best").exists() and (run / "last" / "adapter.safetensors").is_file()
    assert evaluate_run(run)["accuracy"] == pytest.approx(row["test_accuracy"])
    header = (tmp_path / "sweep" / "sweep.md").read_text().split("\n\n")[1]
    assert "last epoch" in header and "best-validation" not in header
    # the tiny model is not the paper's checkpoint: no paper column (item 13)
    assert "paper %" not in (tmp_path / "sweep" / "sweep.md").read_text()
    # an explicit protocol wins over the preset
    assert SweepConfig(preset="paper", us8k_protocol="ours").with_preset().us8k_protocol == "ours"


# ---------------------------------------------------------------- 10. bitfit_original through the core


def test_bitfit_original_adapter_reloads_through_the_core(
    synth_root, tiny_ckpt, tmp_path, monkeypatch
):
    import adapterlab.audio.train as train_module

    built = []
    real = train_module.build_model
    monkeypatch.setattr(train_module, "build_model", lambda *a: built.append(real(*a)) or built[-1])
    cfg = RunConfig(
        method="bitfit_original",
        data=str(synth_root),
        model=str(tiny_ckpt),
        out=str(tmp_path),
        **FAST,
    )
    train(cfg)
    trained = built[0].eval()
    fresh = ASTClassifier(load_ast(tiny_ckpt, max_length=32), 14)
    load_adapter(fresh, tmp_path / "bitfit_original" / "best")  # the core alone, no audio helper
    fresh.eval()
    x = torch.randn(4, 32, 128)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained(x), atol=1e-5, rtol=1e-5)
        untrained = ASTClassifier(load_ast(tiny_ckpt, max_length=32), 14)
        untrained.head.load_state_dict(fresh.head.state_dict())
        assert (untrained(x) - trained(x)).abs().max() > 1e-3  # the biases did train
    cfg_json = json.loads(
        (tmp_path / "bitfit_original" / "best" / "adapter_config.json").read_text()
    )
    assert cfg_json["method"] == "bitfit"


# ---------------------------------------------------------------- 11. --model demo on any folder


@pytest.fixture(scope="module")
def demo_voice(tmp_path_factory, voice_dir):
    """The demo's Debian voice replaced by tones, with small copy counts and a short pre-training;
    returns the demo folder (shared by this module's tests: the backbone is pre-trained once)."""
    import adapterlab.audio.demo as demo
    import adapterlab.audio.loaders.spoken_words as sw
    from adapterlab.audio.pretrain import PretrainSettings

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sw, "PRETRAIN_COUNTS", (4, 1, 1))
        mp.setattr(sw, "TRANSFER_COUNTS", (2, 1, 1))
        mp.setattr(
            demo, "embedded_speech", functools.partial(sw.embedded_speech, voice_dir=voice_dir)
        )
        mp.setattr(demo, "PRETRAIN", PretrainSettings(frames=32, epochs=3, batch_size=6))
        yield tmp_path_factory.mktemp("demo") / "home"


def test_model_demo_is_the_pretrained_backbone_on_any_folder(demo_voice, tmp_path):
    data = _speech(tmp_path / "words")
    cfg = RunConfig(
        method="lora",
        model="demo",
        demo_dir=str(demo_voice),
        dataset="speech_commands",
        data=str(data),
        out=str(tmp_path / "run"),
        frames=32,
        epochs=1,
        batch_size=4,
        progress=False,
    )
    prep = prepare(cfg)
    ckpt = demo_voice / "pretrained-ast"
    assert prep.model_source == str(ckpt) and (ckpt / "pretrain.json").is_file()
    # the tiny backbone's recipe (dim 8, LoRA scale 4, full-FT lr 1e-3), not the 86M model's
    assert (prep.settings["dim"], prep.settings["lora_scale"], prep.settings["full_lr"]) == (
        8,
        4.0,
        1e-3,
    )
    row = train(cfg, prep)
    assert evaluate_run(row["run_dir"])["accuracy"] == pytest.approx(row["test_accuracy"])


# ---------------------------------------------------------------- 12. the demo's reference rows and seeds


def test_demo_sweep_has_logmel_and_random_backbone_rows_over_seeds(demo_voice, tmp_path):
    cfg = SweepConfig(
        methods="linear",
        demo_dir=str(demo_voice),
        out=str(tmp_path / "s"),
        frames=32,
        epochs=1,
        progress=False,
    )
    assert cfg.baseline_list() == ["logmel", "random:conformer"] and cfg.seed_list() == [0, 1, 2]
    result = run_sweep(dataclasses.replace(cfg, seeds="2", baselines="logmel,random:linear"))
    assert [(r["label"], r["seed"]) for r in result["rows"]] == [
        ("linear", 0),
        ("logmel_logreg", 0),
        ("random:linear", 0),
        ("linear", 1),
        ("logmel_logreg", 1),
        ("random:linear", 1),
    ]
    random_run = Path(result["rows"][2]["run_dir"])
    assert "random-ast" in (random_run / "config.yaml").read_text()
    line = next(r for r in result["summary"] if r["label"] == "linear")
    accs = [r["test_accuracy"] for r in result["rows"] if r["label"] == "linear"]
    assert line["test_accuracy"] == pytest.approx(np.mean(accs))
    assert line["test_std"] == pytest.approx(np.std(accs, ddof=1))
    assert "(2 seeds)" in (tmp_path / "s" / "sweep.md").read_text()
    assert result["clips_featurised"] == 20 + 10 + 10  # the second seed reuses every feature


def test_logmel_logistic_regression_learns(synth_root, tiny_ckpt, tmp_path):
    from adapterlab.audio.baselines import logmel_logreg, logmel_stats

    prep = prepare(
        RunConfig(
            data=str(synth_root), model=str(tiny_ckpt), out=str(tmp_path), frames=32, progress=False
        )
    )
    stats = logmel_stats(prep.features["test"])
    x = prep.features["test"].features
    np.testing.assert_allclose(stats[:, :128], x.mean(1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[:, 128:], x.std(1).numpy(), rtol=1e-5, atol=1e-6)
    row = logmel_logreg(prep.features, prep.splits.num_classes)
    assert row["test_accuracy"] >= 0.3  # 14 classes, 3 training clips each: chance 0.07
    assert row["trainable_params"] == (256 + 1) * 14


# ---------------------------------------------------------------- 13. options and bad input


def test_folds_on_the_embedded_speech_demo_are_refused(tmp_path, monkeypatch):
    def no_fetch(*a, **k):
        raise AssertionError("the data must not be fetched before the options are checked")

    monkeypatch.setattr("adapterlab.audio.demo.embedded_speech", no_fetch)
    with pytest.raises(ValueError, match=r"\(the embedded speech demo\) has official splits"):
        run_sweep(SweepConfig(folds="all", out=str(tmp_path), progress=False))
    assert SweepConfig(demo="synth", folds="2,3").fold_list("esc50") == [2, 3]


def test_paper_column_only_where_the_comparison_holds(tmp_path):
    from types import SimpleNamespace

    from adapterlab.audio.sweep import is_paper_checkpoint, paper_number

    assert is_paper_checkpoint("MIT/ast-finetuned-audioset-10-10-0.4593")
    assert is_paper_checkpoint("/models/ast-finetuned-audioset-10-10-0.4593")
    assert not is_paper_checkpoint("tiny") and not is_paper_checkpoint(str(tmp_path / "my-ast"))

    def number(model="MIT/ast-finetuned-audioset-10-10-0.4593", size=None, **kw):
        cfg = SweepConfig(data=str(tmp_path), **kw)
        prep = SimpleNamespace(
            model_source=model,
            dataset=kw.get("dataset", "esc50"),
            settings={"test_from": "last" if kw.get("us8k_protocol") == "original" else "best"},
        )
        return paper_number(cfg, prep, "conformer", size, None)

    assert number() == 88.30
    assert number(model=str(tmp_path / "my-ast")) is None  # another model
    assert number(size=16) is None  # a sized variant
    assert number(dataset="urbansound8k", us8k_protocol="original") == 84.57
    assert number(dataset="urbansound8k", us8k_protocol="ours") is None  # another protocol


def test_prefix_size_counts_keys_and_values_like_the_paper():
    assert parse_method("prefix:24") == ("prefix", 24)
    assert run_config({}, "prefix", 24).num_prefix == 12  # the paper's Prefix-24 = 12 + 12
    assert run_config({}, "prompt_deep", 24).num_prompts == 24
    with pytest.raises(ValueError, match="must be even"):
        parse_method("prefix:25")


def test_esc50_refuses_a_clip_listed_twice_in_one_fold(tmp_path):
    (tmp_path / "meta").mkdir()
    rows = [[f"{f}-{t}.wav", f, t, c] for f in range(1, 6) for t, c in enumerate(("dog", "rain"))]
    rows.append(["3-1.wav", 3, 1, "rain"])
    with (tmp_path / "meta" / "esc50.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["filename", "fold", "target", "category"], *rows])
    with pytest.raises(ValueError, match=r"esc50.csv:12: clip 3-1.wav is listed twice in fold 3"):
        load_esc50(tmp_path)


def _fsc(root: Path, rows: dict[str, list[list[str]]], encoding="utf-8") -> Path:
    (root / "data").mkdir(parents=True)
    for split, body in rows.items():
        with (root / "data" / f"{split}_data.csv").open("w", newline="", encoding=encoding) as f:
            csv.writer(f).writerows(
                [["", "path", "speakerId", "transcription", "action", "object", "location"], *body]
            )
    return root


def test_fluent_speech_csvs_are_checked(tmp_path):
    row = ["0", "wavs/a.wav", "s1", "Turn on the lights", "activate", "lights", "none"]
    bad = ["0", "wavs/a.wav", "s1", "Allumez la lumière", "activate", "lumière", "none"]
    _fsc(tmp_path / "latin1", {"train": [bad], "valid": [bad], "test": [bad]}, encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin1/data/train_data.csv:2: not UTF-8"):
        load_fluent_speech(tmp_path / "latin1")
    _fsc(tmp_path / "empty", {"train": [row], "valid": [], "test": [row]})
    with pytest.raises(ValueError, match=r"valid_data.csv: no clips listed"):
        load_fluent_speech(tmp_path / "empty")
    assert (
        len(
            load_fluent_speech(
                _fsc(tmp_path / "ok", {s: [row] for s in ("train", "valid", "test")})
            ).test
        )
        == 1
    )


def test_prepare_reuses_features_across_folds_and_shots(
    synth_root, tiny_ckpt, tmp_path, monkeypatch
):
    import adapterlab.audio.train as train_module

    computed = []
    real = train_module.compute_features
    monkeypatch.setattr(
        train_module,
        "compute_features",
        lambda items, *a, **k: computed.append(len(items)) or real(items, *a, **k),
    )
    common = dict(
        data=str(synth_root), model=str(tiny_ckpt), out=str(tmp_path), frames=32, progress=False
    )
    first = prepare(RunConfig(fold=5, **common))
    assert sum(computed) == 70 and first.computed == 70
    preps = [first]
    for fold, shots in ((5, 1), (4, None), (3, 1)):
        preps.append(prepare(RunConfig(fold=fold, few_shot=shots, **common), preps))
    assert sum(computed) == 70 and [p.computed for p in preps] == [70, 0, 0, 0]
    fresh = prepare(RunConfig(fold=3, few_shot=1, **common))
    for split in ("train", "val", "test"):
        a, b = preps[-1].features[split], fresh.features[split]
        assert a.items == b.items
        torch.testing.assert_close(
            torch.stack([a.features[i] for i in range(len(a.items))]), b.features
        )
