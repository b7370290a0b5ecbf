"""End to end with two tiny LMs of different sizes and vocabularies, and the CLI."""

from __future__ import annotations

import json

import pytest
from adapterlab.graph.cli import main
from adapterlab.graph.config import RunAllConfig
from adapterlab.graph.pipeline import run_all


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-gpt2"])
def test_run_all_with_tiny_lms_of_different_sizes(model, synth_dir, tmp_path):
    cfg = RunAllConfig(
        data=str(synth_dir), model=model, out=str(tmp_path / "run"), cache=str(tmp_path / "cache"),
        seeds=[0], pretrain_epochs=1, finetune_steps=20, finetune_lr=1e-2, hidden=16,
        lora_nodes=16, lora_steps=2, lora_layers=1,
    )  # fmt: skip
    metrics = run_all(cfg, show_progress=False)
    hidden = {"tiny-llama": 32, "tiny-gpt2": 24}[model]
    assert metrics["cache"]["bytes"] > 0
    titles = {r["title"] for r in metrics["summary"]}
    assert titles >= {
        "GraphAdapter (pre-trained)", "GraphAdapter w/o pre-training", "GraphSAGE on LLM features",
        "MLP on LLM features", "majority class",
    }  # fmt: skip
    assert any(t.startswith("LoRA on the LLM + head") for t in titles)
    for name in ("metrics.json", "summary.md", "curves.png", "config.json"):
        assert (tmp_path / "run" / name).is_file()
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["hidden_size"] == hidden
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        run_all(cfg, show_progress=False)


def test_cli_help_and_errors(tmp_path, capsys):
    assert main(["--help"]) == 0
    assert "run-all" in capsys.readouterr().out
    for command in ("prepare", "pretrain", "finetune", "run-all"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--data" in capsys.readouterr().out
    assert main(["nope"]) == 2
    (tmp_path / "nodes.jsonl").write_text('{"id": 0, "text": "a", "label": "x"}\n')
    (tmp_path / "edges.csv").write_text("src,dst\n0,5\n")
    assert main(["prepare", "--data", str(tmp_path), "--model", "tiny-llama"]) == 1
    assert "edges.csv:2" in capsys.readouterr().err


def test_cli_reports_an_interruption_and_exits(monkeypatch, capsys):
    """SIGTERM in a training stage: the engine's TrainingInterrupted reaches the CLI, which
    prints one line and exits 128 + signal (nothing catches it on the way)."""
    from adapterlab.core.engine import TrainingInterrupted
    from adapterlab.graph import pipeline

    def interrupted(cfg, **_):
        raise TrainingInterrupted("stopped", signum=15, checkpoint="run/step_1")

    monkeypatch.setattr(pipeline, "run_all", interrupted)
    assert main(["run-all", "--out", "unused"]) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted by signal 15" in err[0]


def test_auto_llm_dtype_is_native_bf16_only_and_keys_the_cache(monkeypatch, synth_dir):
    from adapterlab.core.engine import device as device_module
    from adapterlab.graph.config import PrepareConfig
    from adapterlab.graph.data import load_dataset
    from adapterlab.graph.pipeline import cache_dir, cache_spec, llm_dtype

    cfg = PrepareConfig(data=str(synth_dir), model="tiny-llama", device="cpu")
    data = load_dataset(synth_dir)
    monkeypatch.setattr(device_module, "native_bf16", lambda device: False)
    assert llm_dtype(cfg) == "float32"  # emulated bf16 is several times slower than fp32
    emulated = cache_dir(cfg, cache_spec(cfg, data), data)
    monkeypatch.setattr(device_module, "native_bf16", lambda device: True)
    assert llm_dtype(cfg) == "bfloat16"
    assert cache_dir(cfg, cache_spec(cfg, data), data) != emulated
    explicit = PrepareConfig(data=str(synth_dir), model="tiny-llama", llm_dtype="float32")
    assert llm_dtype(explicit) == "float32"
