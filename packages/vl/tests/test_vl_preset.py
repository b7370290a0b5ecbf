"""``--preset paper`` at reduced size (the release's settings reach the run), the SNLI-VE and
VizWiz tasks on their derived embedded layouts, and the seed-aggregated sweep table."""

from __future__ import annotations

import pytest
import yaml
from adapterlab.vl.config import RunConfig
from adapterlab.vl.data import load_vizwiz
from adapterlab.vl.pipeline import _method_row, markdown_table, p_layer_table, paired_line
from adapterlab.vl.train import prepare_task, resolve_sources, train


def _run_config(run_dir) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.mark.parametrize(("task", "method"), [("vqa", "p_adapter_code"), ("caption", "p_adapter")])
def test_paper_preset_runs_with_the_release_settings(prepared, task: str, method: str) -> None:
    out, prep = prepared
    cfg = RunConfig(out=str(out), task=task, method=method, preset="paper", epochs=1,
                    max_train=16, progress=False)  # fmt: skip
    row = train(cfg, prep, out / f"paper-{task}-{method}")
    conf = _run_config(out / f"paper-{task}-{method}")
    assert conf["train"]["lr"] == {"vqa": 5e-4, "caption": 3e-4}[task]
    assert conf["train"]["warmup_steps"] == 0 and conf["train"]["batch_size"] == (
        8 if task == "vqa" else 16
    )
    adapter = conf["vl"]["adapter"]["config"]
    assert adapter["p_param"] == "direct" and adapter["init"] == "normal"
    assert adapter["ffn_placement"] == "parallel" and adapter["ffn_activation"] == "relu"
    assert adapter["p_init"] == {"vqa": 1.25, "caption": 1.75}[task]
    assert adapter["variant"] == ("code" if method == "p_adapter_code" else "paper")
    key = "vqa_accuracy" if task == "vqa" else "cider"
    assert row["test"][key] >= 0.0
    if task == "caption":  # the prompt is input, never a target
        data = prepare_task(cfg, prep, "caption")
        item = data.datasets["train"][0]
        assert item["prompt_len"] > 0
        from adapterlab.vl.task import collate

        batch = collate([item])
        assert (batch["labels"][0, 1 : 1 + item["prompt_len"]] == -100).all()


def test_paper_preset_on_real_data_needs_the_pretrained_blip() -> None:
    with pytest.raises(ValueError, match="--pretrained"):
        resolve_sources(RunConfig(data="/data", preset="paper"), None)
    got = resolve_sources(RunConfig(data="/data", preset="paper", pretrained="/m"), None)
    assert got["vqa"] == "/m/vqa" and got["caption"] == "/m/caption" and got["snli_ve"] == "/m/vqa"


def test_snli_ve_and_vizwiz_tasks_train_on_their_layouts(prepared, synth_root) -> None:
    out, prep = prepared
    for task, metric in (("snli_ve", "accuracy"), ("vizwiz", "vqa_accuracy")):
        cfg = RunConfig(out=str(out), task=task, method="adapter", epochs=1, progress=False)
        row = train(cfg, prep, out / f"{task}-adapter")
        assert 0.0 <= row["test"][metric] <= 1.0
    data = prepare_task(cfg, prep, "vizwiz")
    # VizWiz: the official val is the test split; validation is carved out of train by image
    official_val = load_vizwiz(synth_root / "vizwiz", "val")
    assert len(data.datasets["test"]) == len(official_val)
    train_imgs = {e.image for e in data.datasets["train"].examples}
    val_imgs = {e.image for e in data.datasets["val"].examples}
    assert val_imgs and not train_imgs & val_imgs
    assert prepare_task(cfg, prep, "snli_ve").answer_texts == [
        "entailment", "neutral", "contradiction",
    ]  # fmt: skip


def _result(seed: int, vqa: float, p: float) -> dict:
    return {
        "train_seconds": 1.0,
        "test": {"vqa_accuracy": vqa, "vqa_colour": vqa},
        "final_train_loss": 0.5,
        "percent_trainable": 14.4,
        "p_by_layer": {"text_decoder.bert.encoder.layer.0.attention": p},
    }


def test_sweep_rows_report_mean_std_paired_test_and_p_per_layer() -> None:
    runs = {
        "adapter": [(0, 0.80, None), (1, 0.82, None), (2, 0.84, None)],
        "p_adapter": [(0, 0.83, 1.9), (1, 0.83, 2.1), (2, 0.86, 2.0)],
    }
    rows = []
    for method, values in runs.items():
        results = []
        for seed, vqa, p in values:
            res = _result(seed, vqa, p)
            if p is None:
                res["p_by_layer"] = {}
            results.append((RunConfig(method=method, task="vqa", seed=seed), res))
        rows.append(_method_row(method, results))
    table = markdown_table(rows)
    assert "| adapter | 14.40 | 82.00 ± 2.00 |" in table  # sample std of 80, 82, 84
    assert "| p_adapter | 14.40 | 84.00 ± 1.73 |" in table and "| 2.000 |" in table
    line = paired_line(rows, "p_adapter", "adapter")
    assert "+2.00 ± 1.00 points" in line and "ahead on 3 of 3 seeds" in line
    assert "| p_adapter | vqa | text_decoder.0.attention | 2.000 ± 0.100 |" in p_layer_table(rows)
