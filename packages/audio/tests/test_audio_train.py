"""Training through the core engine (learning, validation-selected checkpoints), eval and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from adapterlab.audio.cli import main
from adapterlab.audio.loaders import synthesize_esc50
from adapterlab.audio.sweep import SweepConfig, beats_linear, markdown_table, run_sweep, summarise
from adapterlab.audio.train import RunConfig, evaluate_run, prepare, set_threads, train

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

FAST = dict(frames=128, epochs=15, batch_size=8, dim=8, progress=False, seed=0)


@pytest.fixture(scope="module")
def four_class_root(tmp_path_factory):
    """4 synthetic classes (tone, up-chirp, down-chirp, noise bursts) x 15 clips: 36 train / 12 val / 12 test."""
    root = tmp_path_factory.mktemp("four") / "esc"
    return synthesize_esc50(root, num_classes=4, clips_per_class=15, seed=3, progress=False)


def test_conformer_learns_and_test_uses_the_best_validation_checkpoint(
    four_class_root, tiny_ckpt, tmp_path
):
    cfg = RunConfig(
        method="conformer",
        data=str(four_class_root),
        model=str(tiny_ckpt),
        out=str(tmp_path),
        **FAST,
    )
    prep = prepare(cfg)
    assert prep.settings["spec_augment"] and prep.settings["task"] == "sound"
    row = train(cfg, prep)
    lines = [
        json.loads(x) for x in (tmp_path / "conformer" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [x["loss"] for x in lines if x["split"] == "train"]
    evals = [x for x in lines if x["split"] == "eval"]
    assert losses[-1] < 0.75 * losses[0]  # it learns
    assert row["val_accuracy"] == max(e["accuracy"] for e in evals)  # best validation epoch is kept
    assert row["test_accuracy"] >= 0.5  # chance is 0.25
    # re-loading best/ (adapter_config.json + adapter.safetensors) reproduces the engine's test number
    again = evaluate_run(tmp_path / "conformer", split="test")
    assert again["accuracy"] == pytest.approx(row["test_accuracy"])
    assert row["trainable_params"] < 0.1 * row["total_params"]


def test_embedded_sweep_writes_tables(monkeypatch, tmp_path, tiny_ckpt):
    """The sweep plumbing on the embedded default (data synthesised into <out>/data), 1 epoch each."""
    import adapterlab.audio.loaders.synth as synth

    real = synth.synthesize_esc50
    monkeypatch.setattr(
        "adapterlab.audio.demo.synthesize_esc50",
        lambda root, progress=None: real(root, num_classes=3, clips_per_class=5, progress=progress),
    )
    cfg = SweepConfig(
        methods="linear,lora",
        demo="synth",
        out=str(tmp_path),
        model=str(tiny_ckpt),
        epochs=1,
        frames=32,
        progress=False,
    )
    result = run_sweep(cfg)
    assert (tmp_path / "data" / "meta" / "esc50.csv").is_file()
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert (
        [r["method"] for r in saved["rows"]]
        == ["linear", "lora"]
        == [r["method"] for r in result["rows"]]
    )
    assert set(saved["beats_linear"]) == {"lora"}
    table = (tmp_path / "sweep.md").read_text()
    assert "| linear |" in table and "| lora |" in table and "trainable params" in table
    for r in saved["rows"]:
        assert 0 <= r["test_accuracy"] <= 1 and r["trainable_params"] > 0 and r["train_seconds"] > 0


def test_table_helpers():
    def row(name, acc, fold=None):
        return {
            "label": name,
            "method": name,
            "description": "d",
            "fold": fold,
            "test_accuracy": acc,
            "val_accuracy": 0.6,
            "trainable_params": 20,
            "percent_trainable": 0.2,
            "train_seconds": 2.0,
            "skipped_samples": 0,
        }

    lines = summarise(
        [row("linear", 0.5), row("lora", 0.75, 1), row("lora", 0.25, 2), row("parallel", 0.5)]
    )
    assert beats_linear(lines) == {"lora": False, "parallel": False}
    table = markdown_table(lines)
    assert "| lora | d | 50.00 ± 25.00 (2 folds) | - | 60.00 | 20 | 0.20 | 4.0 |" in table


def test_cli_help_and_errors(capsys, tmp_path, synth_root):
    assert main(["--help"]) == 0
    assert "sweep" in capsys.readouterr().out
    for cmd in ("train", "sweep", "eval"):
        with pytest.raises(SystemExit) as info:
            main([cmd, "--help"])
        assert info.value.code == 0
        assert "--data" in capsys.readouterr().out or cmd == "eval"
    with pytest.raises(SystemExit):  # typed booleans: "maybe" is not a bool
        main(["train", "--residual", "maybe"])
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 1
    assert "not a ESC-50 folder" in capsys.readouterr().err
    rc = main(
        [
            "train",
            "--data",
            str(synth_root),
            "--out",
            str(tmp_path),
            "--model",
            "MIT/ast-finetuned-audioset-10-10-0.4593",
            "--frames",
            "32",
            "--progress",
            "false",
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "could not load the AST checkpoint" in err and "--model tiny" in err
    assert main(["bogus"]) == 2


def test_run_config_validation():
    with pytest.raises(ValueError, match="unknown method"):
        RunConfig(method="adapter")
    with pytest.raises(TypeError, match="bool"):
        RunConfig(residual="False")
    with pytest.raises(ValueError, match="few_shot"):
        RunConfig(few_shot=0)
    with pytest.raises(ValueError, match="threads"):
        set_threads(0, True)
    set_threads(None, True)  # the tiny model runs on one thread
    assert torch.get_num_threads() == 1
