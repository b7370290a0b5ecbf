"""End to end with two tiny LMs of different sizes and vocabularies, and the CLI."""

from __future__ import annotations

import json

import pytest
from adapterlab.graph.cli import main
from adapterlab.graph.config import RunAllConfig
from adapterlab.graph.pipeline import run_all

ARCHS = {"tiny-llama": 32, "tiny-gpt2": 24, "tiny-neox": 16, "tiny-gptj": 16, "tiny-qwen2": 16}


@pytest.mark.parametrize("model", list(ARCHS))
def test_run_all_with_five_tiny_architectures(model, synth_dir, tmp_path):
    """Llama, GPT-2, GPT-NeoX, GPT-J and Qwen2 end to end (LoRA targets from the architecture:
    GPT-NeoX and GPT-J crashed at the LoRA baseline before)."""
    cfg = RunAllConfig(
        data=str(synth_dir), model=model, out=str(tmp_path / "run"), cache=str(tmp_path / "cache"),
        seeds=[0], pretrain_epochs=1, finetune_steps=6, finetune_eval_every=3, finetune_lr=1e-2,
        hidden=8, baseline_lrs=[1e-2], tfidf_cs=[1.0], lora_nodes=8, lora_steps=1, lora_layers=1,
        finetune_threads=0,
    )  # fmt: skip
    metrics = run_all(cfg, show_progress=False)
    assert metrics["status"] == "completed"
    titles = {r["title"] for r in metrics["summary"]}
    assert titles >= {
        "GraphAdapter (pre-trained)", "GraphAdapter w/o pre-training", "GraphSAGE on LLM features",
        "MLP on LLM features", "TF-IDF + logistic regression (full texts)", "majority class",
    }  # fmt: skip
    assert any(t.startswith("LoRA on the LLM + head") for t in titles)
    for name in ("metrics.json", "summary.md", "curves.png", "config.json"):
        assert (tmp_path / "run" / name).is_file()
    assert "val accuracy (selection)" in (tmp_path / "run" / "summary.md").read_text()
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["hidden_size"] == ARCHS[model]
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        run_all(cfg, show_progress=False)


def test_metrics_json_is_written_after_every_finished_method(synth_dir, tmp_path, monkeypatch):
    from adapterlab.graph import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("LoRA failed at the end")

    monkeypatch.setattr(pipeline, "train_lora", broken)
    cfg = RunAllConfig(
        data=str(synth_dir), model="tiny-llama", out=str(tmp_path / "run"),
        cache=str(tmp_path / "cache"), seeds=[0, 1], pretrain_epochs=1, finetune_steps=6,
        finetune_eval_every=3, hidden=8, baseline_lrs=[1e-3, 1e-2], tfidf_cs=[1.0], lora_nodes=8,
        lora_steps=1,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="LoRA failed"):
        run_all(cfg, show_progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "running"
    assert len(metrics["summary"]) == 5 and metrics["summary"][0]["seeds"] == 2
    grid = metrics["choices"]["graphsage"]["grid"]  # the baseline's lr, chosen on validation
    assert set(grid) == {"0.001", "0.01"}
    assert metrics["choices"]["graphsage"]["lr"] == float(max(grid, key=grid.get))
    assert "GraphSAGE" in (tmp_path / "run" / "summary.md").read_text()


def test_cache_is_never_reused_for_other_texts(tmp_path):
    """Two graphs with the same node count and other texts: the second prepare refuses the
    first's --cache folder (naming both fingerprints); without --cache each gets its own."""
    from adapterlab.graph.cache import CacheError
    from adapterlab.graph.config import PrepareConfig
    from adapterlab.graph.data import synthesize_tag
    from adapterlab.graph.pipeline import prepare

    a = synthesize_tag(tmp_path / "a", num_nodes=30, seed=0)
    b = synthesize_tag(tmp_path / "b", num_nodes=30, seed=5)
    cache = tmp_path / "cache"
    first = prepare(PrepareConfig(data=str(a), model="tiny-llama", cache=str(cache)),
                    show_progress=False)  # fmt: skip
    with pytest.raises(
        CacheError, match=rf"fingerprint {first['fingerprint']}.* give [0-9a-f]{{16}}"
    ):
        prepare(
            PrepareConfig(data=str(b), model="tiny-llama", cache=str(cache)), show_progress=False
        )
    again = prepare(PrepareConfig(data=str(a), model="tiny-llama", cache=str(cache)),
                    show_progress=False)  # fmt: skip
    assert again["cache_reused"]
    cfg_b = PrepareConfig(data=str(b), model="tiny-llama")
    from adapterlab.graph.pipeline import cache_dir, cache_spec, load_data

    data_a, data_b = load_data(PrepareConfig(data=str(a))), load_data(cfg_b)
    assert cache_dir(cfg_b, cache_spec(cfg_b, data_a), data_a) != cache_dir(
        cfg_b, cache_spec(cfg_b, data_b), data_b
    )


def test_model_fingerprint_follows_the_weights(tmp_path):
    from adapterlab.graph.models.llm import model_fingerprint

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    before = model_fingerprint(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert model_fingerprint(str(tmp_path)) != before
    assert model_fingerprint("tiny-llama") != model_fingerprint("tiny-gpt2")


def test_paper_preset_runs_at_reduced_size(tmp_path):
    """--preset paper on a binary 'instagram' graph at 2 % of its epochs: the original's
    settings (hidden 64, per-epoch LR schedule, whole texts, the instagram prompt) and ROC-AUC
    as the selection metric."""
    from adapterlab.graph.data import synthesize_tag
    from adapterlab.graph.presets import apply_preset
    from adapterlab.graph.prompts import PROMPTS

    root = synthesize_tag(tmp_path / "instagram", num_nodes=40, num_classes=2)
    cfg = RunAllConfig(data=str(root), model="tiny-llama", out=str(tmp_path / "run"),
                       cache=str(tmp_path / "cache"), preset="paper", preset_scale=0.02,
                       seeds=[0], baseline_lrs=[1e-2], tfidf_cs=[1.0], lora_nodes=0)  # fmt: skip
    applied = apply_preset(cfg)
    assert (applied.hidden, applied.pretrain_epochs, applied.finetune_steps) == (64, 1, 7)
    assert applied.pretrain_schedule_per == "epoch" and applied.max_text_tokens is None
    metrics = run_all(cfg, show_progress=False)
    assert metrics["selection_metric"] == "roc_auc"
    assert metrics["cache"]["template"] == PROMPTS["instagram"][0]
    assert metrics["cache"]["max_text_tokens"] is None
    assert "val roc_auc (selection)" in (tmp_path / "run" / "summary.md").read_text()


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
