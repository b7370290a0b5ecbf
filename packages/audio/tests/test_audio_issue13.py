"""Reproduction options, bad input, the package contract and the embedded speech demo (issue 13)."""

from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from adapterlab.audio.audio_io import AudioFileError, load_audio, read_audio
from adapterlab.audio.features import FbankConfig
from adapterlab.audio.loaders import (
    compute_features,
    load_dataset,
    load_esc50,
    load_speech_commands,
)
from adapterlab.audio.loaders.common import AudioItem
from adapterlab.audio.methods import adapter_config, apply_method
from adapterlab.audio.model import ASTClassifier, load_ast
from adapterlab.audio.paper import PAPER_ACCURACY, paper_methods
from adapterlab.audio.sweep import SweepConfig, run_sweep
from adapterlab.audio.train import RunConfig, evaluate_run, train

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")
FAST = dict(frames=32, epochs=1, batch_size=8, dim=4, progress=False, seed=0)


def _wav(path: Path, seconds=0.2, sr=16000, value=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(sr * seconds), value, np.float32), sr)


def _esc50(root: Path, rows, encoding="utf-8"):
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with (root / "meta" / "esc50.csv").open("w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    for r in rows:
        _wav(root / "audio" / r[0])


def _esc_rows(folds=range(1, 6), cats=("dog", "rain")):
    return [
        [f"{f}-{t}-A-{t}.wav", f, t, c, "False", "x", "A"]
        for f in folds
        for t, c in enumerate(cats)
    ]


# ---------------------------------------------------------------- 1. folds and the US8K protocol


def test_sweep_over_all_folds_reports_mean_and_std(synth_root, tiny_ckpt, tmp_path):
    cfg = SweepConfig(
        methods="linear",
        folds="all",
        data=str(synth_root),
        model=str(tiny_ckpt),
        out=str(tmp_path),
        **FAST,
    )
    result = run_sweep(cfg)
    assert [r["fold"] for r in result["rows"]] == [1, 2, 3, 4, 5]
    line = result["summary"][0]
    accs = [r["test_accuracy"] for r in result["rows"]]
    assert line["test_accuracy"] == pytest.approx(np.mean(accs))
    assert line["test_std"] == pytest.approx(np.std(accs))
    assert "(5 folds)" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "fold3" / "linear" / "metrics.json").is_file()
    assert SweepConfig(folds="2,4").fold_list("esc50") == [2, 4]
    with pytest.raises(ValueError, match="1..5"):
        SweepConfig(folds="6").fold_list("esc50")
    with pytest.raises(ValueError, match="official splits"):
        SweepConfig(folds="all").fold_list("speech_commands")


def _us8k(root: Path, rows):
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
        )
        w.writerows(rows)


def _us8k_rows():
    return [[f"{f}-{c}.wav", 1, 0, 1, 1, f, c, n] for f in range(1, 11) for c, n in enumerate("ab")]


def test_us8k_original_protocol_trains_on_nine_folds(tmp_path):
    _us8k(tmp_path, _us8k_rows())
    ours = load_dataset("urbansound8k", tmp_path, 10)
    orig = load_dataset("urbansound8k", tmp_path, 10, us8k_protocol="original")
    assert (len(ours.train), len(ours.val), len(ours.test)) == (16, 2, 2)
    assert (len(orig.train), len(orig.val), len(orig.test)) == (18, 2, 2)
    assert orig.val == orig.test  # PETL-AST selects on the test fold
    assert RunConfig().us8k_protocol is None  # 'ours', unless --preset paper


# ---------------------------------------------------------------- 2. published sizes are defaults


def test_each_prompt_method_defaults_to_its_published_size_and_sweeps_mix_sizes():
    assert adapter_config("prompt", hidden_size=64).num_tokens == 300  # SPT-300
    assert adapter_config("prompt_deep", hidden_size=64).num_tokens == 25  # DPT-25
    assert adapter_config("prefix", hidden_size=64).num_tokens == 12  # 12 keys + 12 values
    entries = SweepConfig(methods="prompt,prompt_deep,prompt_deep:100,lora:4").method_list()
    assert entries == [("prompt", None), ("prompt_deep", None), ("prompt_deep", 100), ("lora", 4)]
    with pytest.raises(ValueError, match="no size"):
        SweepConfig(methods="linear:3").method_list()


def test_prefix_init_range_goes_through_the_core_config(tiny_ckpt):
    cfg = adapter_config("prefix", hidden_size=64)
    assert cfg.init_range == 0.0625
    model = ASTClassifier(load_ast(tiny_ckpt, max_length=32), 3)
    apply_method(model, "prefix")
    prefixes = [p for n, p in model.named_parameters() if re.search(r"\.(key|value)$", n)]
    assert prefixes and all(p.abs().max() <= 0.0625 for p in prefixes)
    assert max(p.abs().max() for p in prefixes) > 0.05  # uniform, not N(0, 0.02^2)
    source = (Path(__file__).parents[1] / "src").rglob("*.py")
    assert not any("core.tuners" in f.read_text() for f in source)


# ---------------------------------------------------------------- 3. BitFit semantics


def test_bitfit_original_decays_the_biases_themselves(tiny_ckpt):
    torch.manual_seed(0)
    model = ASTClassifier(load_ast(tiny_ckpt, max_length=32), 3).eval()
    x = torch.randn(2, 32, 128)
    with torch.no_grad():
        base = model(x)
    fc1_bias = model.ast.layers[0].mlp.fc1.bias.detach().clone()
    apply_method(model, "bitfit_original")
    with torch.no_grad():
        torch.testing.assert_close(model(x), base)  # same function at step 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "ast.layernorm.weight" not in trainable  # final LN weight frozen
    assert any(
        n.startswith("ast.layernorm.") and "deltas" in n for n in trainable
    )  # its bias trains
    delta = model.ast.layers[0].mlp.fc1.parametrizations.bias[0].deltas["default"]
    torch.testing.assert_close(delta.detach(), fc1_bias)  # the trainable tensor is the whole bias
    # AdamW decay with zero gradient shrinks the bias itself towards 0 (the delta form keeps it)
    opt = torch.optim.AdamW([delta], lr=0.1, weight_decay=0.5)
    delta.grad = torch.zeros_like(delta)
    opt.step()
    torch.testing.assert_close(model.ast.layers[0].mlp.fc1.bias, fc1_bias * 0.95)
    assert RunConfig(method="bitfit").method == "bitfit"  # the default keeps the core semantics


def test_bitfit_original_run_reloads_to_the_same_accuracy(synth_root, tiny_ckpt, tmp_path):
    cfg = RunConfig(
        method="bitfit_original",
        data=str(synth_root),
        model=str(tiny_ckpt),
        out=str(tmp_path),
        **{**FAST, "epochs": 2},
    )
    row = train(cfg)
    again = evaluate_run(tmp_path / "bitfit_original", split="test")
    assert again["accuracy"] == pytest.approx(row["test_accuracy"])


# ---------------------------------------------------------------- 4. the paper preset, 5. versions


def test_paper_preset_runs_every_table_method_with_the_published_numbers():
    cfg = SweepConfig(preset="paper")
    methods = [m for m, _ in cfg.method_list()]
    assert len(methods) == 11 and set(methods) == set(PAPER_ACCURACY)
    assert {"parallel", "houlsby_parallel", "conformer", "conformer_houlsby"} <= set(methods)
    assert cfg.fold_list("esc50") == [1, 2, 3, 4, 5]
    assert cfg.fold_list("urbansound8k") == list(range(1, 11))
    assert PAPER_ACCURACY["conformer"]["esc50"] == 88.30
    assert methods == paper_methods()


def test_paper_preset_table_holds_paper_numbers(synth_root, tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr("adapterlab.audio.sweep.paper_methods", lambda: ["linear", "lora"])
    monkeypatch.setattr("adapterlab.audio.sweep.PAPER_FEW_SHOT", {"esc50": {1: {"lora": 31.8}}})
    monkeypatch.setattr("adapterlab.audio.sweep.is_paper_checkpoint", lambda source: True)
    cfg = SweepConfig(
        preset="paper", data=str(synth_root), model=str(tiny_ckpt), out=str(tmp_path), **FAST
    )
    monkeypatch.setattr(SweepConfig, "fold_list", lambda self, d: [5])
    result = run_sweep(cfg)
    labels = [(r["label"], r["few_shot"]) for r in result["summary"]]
    assert labels == [("linear", None), ("lora", None), ("lora", 1)]
    table = (tmp_path / "sweep.md").read_text()
    assert "| 75.85 |" in table and "| 86.45 |" in table and "| 31.80 |" in table


def test_transformers_floor_has_the_module_names_the_code_uses():
    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    floor = next(d for d in meta["project"]["dependencies"] if d.startswith("transformers"))
    version = tuple(int(x) for x in floor.split(">=")[1].split(".")[:2])
    # ASTLayer.attention.q_proj / mlp.fc1 / layers (the names our targets use) arrived in 5.9
    assert version >= (5, 9)
    from adapterlab.audio.model import tiny_ast_config
    from transformers import ASTModel

    names = {n for n, _ in ASTModel(tiny_ast_config(num_hidden_layers=1)).named_modules()}
    assert {"layers.0.attention.q_proj", "layers.0.mlp.fc1", "layers.0.layernorm_after"} <= names


# ---------------------------------------------------------------- bad input


def test_esc50_bad_inputs_name_the_file(tmp_path):
    dup = _esc_rows() + [["1-0-A-0.wav", 3, 0, "dog", "False", "x", "A"]]
    _esc50(tmp_path / "dup", dup)
    with pytest.raises(
        ValueError, match=r"esc50.csv:\d+: clip 1-0-A-0.wav is listed in folds 1 and 3"
    ):
        load_esc50(tmp_path / "dup")
    _esc50(tmp_path / "gap", _esc_rows(folds=(1, 2, 3, 4)))  # fold 5 (the test fold) is empty
    with pytest.raises(ValueError, match=r"esc50.csv: the test split is empty"):
        load_esc50(tmp_path / "gap", test_fold=5)
    rows = _esc_rows(cats=("dög", "rain"))
    _esc50(tmp_path / "latin1", rows, encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin1/meta/esc50.csv:2: not UTF-8"):
        load_esc50(tmp_path / "latin1")


def test_us8k_bad_inputs(tmp_path):
    rows = _us8k_rows() + [["x.wav", 1, 0, 1, 1, 11, 0, "a"]]
    _us8k(tmp_path / "fold", rows)
    with pytest.raises(ValueError, match=r"UrbanSound8K.csv:\d+: fold 11 outside 1..10"):
        load_dataset("urbansound8k", tmp_path / "fold")
    rows = _us8k_rows() + [["y.wav", 1, 0, 1, 1, 2, 0, "engine"]]
    _us8k(tmp_path / "names", rows)
    with pytest.raises(ValueError, match=r"classID 0 has two class names \('a', 'engine'\)"):
        load_dataset("urbansound8k", tmp_path / "names")


def _speech(root: Path):
    for w in ("yes", "no"):
        for i in range(3):
            _wav(root / w / f"{w}_nohash_{i}.wav")
    (root / "validation_list.txt").write_text("yes/yes_nohash_1.wav\nno/no_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("yes/yes_nohash_2.wav\nno/no_nohash_2.wav\n")


def test_speech_commands_bad_inputs(tmp_path):
    _speech(tmp_path)
    assert load_speech_commands(tmp_path).classes == ["no", "yes"]
    (tmp_path / "_background_noise_").mkdir()  # ignored, as in the real dataset
    (tmp_path / "maybe").mkdir()
    with pytest.raises(ValueError, match=r"word folder\(s\) \['maybe'\] hold no .wav"):
        load_speech_commands(tmp_path)
    (tmp_path / "maybe").rmdir()
    with (tmp_path / "validation_list.txt").open("a") as f:
        f.write("yes/yes_nohash_9.wav\n")
    with pytest.raises(
        ValueError, match=r"validation_list.txt: names 1 clip\(s\) that do not exist"
    ):
        load_speech_commands(tmp_path)


def test_absurd_sample_rate_and_tiny_clip_are_refused(tmp_path):
    sf.write(tmp_path / "one_hz.wav", np.zeros(200, np.float32), 1)
    with pytest.raises(AudioFileError, match=r"one_hz.wav: header claims a sample rate of 1 Hz"):
        load_audio(tmp_path / "one_hz.wav")
    sf.write(tmp_path / "ten.wav", np.zeros(10, np.float32), 16000)
    with pytest.raises(AudioFileError, match=r"ten.wav: only 10 samples"):
        load_audio(tmp_path / "ten.wav")


def test_long_files_read_only_the_needed_frames(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(
        tmp_path / "long.wav", rng.uniform(-0.5, 0.5, (44100 * 30, 2)).astype(np.float32), 44100
    )
    data, sr = read_audio(tmp_path / "long.wav", max_seconds=1.0)
    assert data.shape == (44100, 2) and sr == 44100
    cfg = FbankConfig(target_frames=64)
    item = [AudioItem(tmp_path / "long.wav", 0)]
    from adapterlab.audio.features import fbank

    full = fbank([load_audio(tmp_path / "long.wav")], cfg)
    torch.testing.assert_close(compute_features(item, cfg).features, full, atol=1e-4, rtol=0)


def test_skipped_clips_are_recorded_in_metrics_json(synth_root, tiny_ckpt, tmp_path):
    root = tmp_path / "esc"
    import shutil

    shutil.copytree(synth_root, root)
    victim = sorted((root / "audio").glob("1-*.wav"))[0]
    victim.write_bytes(b"RIFF0000WAVEjunk")
    cfg = RunConfig(
        method="linear",
        data=str(root),
        model=str(tiny_ckpt),
        out=str(tmp_path / "run"),
        skip_bad_samples=True,
        **FAST,
    )
    row = train(cfg)
    metrics = json.loads((tmp_path / "run" / "linear" / "metrics.json").read_text())
    assert row["skipped_samples"] == metrics["skipped_samples"] == 1
    assert metrics["skipped_files"][0]["path"].endswith(victim.name)


# ---------------------------------------------------------------- package contract


def test_evaluation_goes_through_the_core_engine(synth_root, tiny_ckpt, tmp_path, monkeypatch):
    cfg = RunConfig(
        method="linear", data=str(synth_root), model=str(tiny_ckpt), out=str(tmp_path), **FAST
    )
    row = train(cfg)
    import adapterlab.audio.train as train_module

    calls = []
    real = train_module.evaluate
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = evaluate_run(tmp_path / "linear")
    assert calls and again["accuracy"] == pytest.approx(row["test_accuracy"])
    assert not (Path(train_module.__file__).parent / "progress.py").exists()
