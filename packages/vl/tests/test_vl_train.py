"""The engine path end to end on the embedded data: pre-training learns, adapters learn,
eval reproduces the test score, and the CLI answers help and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from adapterlab.vl.cli import main
from adapterlab.vl.config import RunConfig
from adapterlab.vl.pipeline import pretrain_tiny, question_prior
from adapterlab.vl.train import evaluate_run, train


def _losses(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def test_pretraining_learns_and_is_reused(prepared, synth_root) -> None:
    out, _ = prepared
    losses = _losses(out / "pretrain")
    assert losses[-1] < 0.9 * losses[0]
    marker = (out / "pretrained-blip" / "pretrain.json").read_text()
    assert json.loads(marker)["val_cider"] > 0.3  # a random captioner scores ~0
    cfg = RunConfig(out=str(out), pretrain_epochs=8, progress=False)
    pretrain_tiny(cfg, synth_root)  # same settings: the folder is reused untouched
    assert (out / "pretrained-blip" / "pretrain.json").read_text() == marker


# The paper's variant on VQA, the code's on captions (one run each keeps the suite short).
@pytest.mark.parametrize(("task", "method"), [("vqa", "p_adapter"), ("caption", "p_adapter_code")])
def test_adapter_learns_and_eval_matches(prepared, task: str, method: str) -> None:
    out, prep = prepared
    cfg = RunConfig(out=str(out), task=task, method=method, epochs=3, batch_size=16, progress=False)
    row = train(cfg, prep)
    losses = _losses(out / f"{task}-{method}")
    half = len(losses) // 2
    assert sum(losses[half:]) / (len(losses) - half) < sum(losses[:half]) / half
    key = "vqa_accuracy" if task == "vqa" else "cider"
    assert row["test"][key] >= 0.0
    assert 0 < row["percent_trainable"] < 20  # bottleneck 32 of width 64 on the tiny BLIP
    assert all(1.0 < p < 3.0 for p in row["p_values"]) and len(row["p_values"]) == (
        8 if task == "vqa" else 4
    )
    again = evaluate_run(row["run_dir"], "test")
    assert again[key] == pytest.approx(row["test"][key])


def test_question_prior_is_a_real_floor(synth_root) -> None:
    acc = question_prior(synth_root / "vqav2", synth_root / "coco")
    assert 0.2 < acc < 0.8


def test_cli_help_and_errors(capsys, tmp_path) -> None:
    assert main(["--help"]) == 0
    assert "sweep" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["nope"]) == 2
    with pytest.raises(SystemExit) as err:
        main(["train", "--help"])
    assert err.value.code == 0
    assert "p_adapter_code" in capsys.readouterr().out
    assert main(["train", "--method", "nope"]) == 1
    assert "unknown method" in capsys.readouterr().err
    assert main(["eval", "--run", str(tmp_path)]) == 1
    assert main(["synth", "--out", str(tmp_path / "s"), "--restval", "2", "--train", "2",
                 "--val", "1", "--test", "1"]) == 0  # fmt: skip
    assert (tmp_path / "s" / "coco" / "annotations" / "dataset_coco.json").is_file()


def test_linear_head_baseline_sees_the_image(prepared) -> None:
    import torch
    from adapterlab.vl.baselines import frozen_features, linear_head_baseline
    from adapterlab.vl.train import prepare_task

    out, prep = prepared
    cfg = RunConfig(out=str(out), progress=False)
    data = prepare_task(cfg, prep, "vqa")
    bb = data.backbone()
    ds = data.datasets["train"]
    before = {k: v.clone() for k, v in bb.model.state_dict().items()}
    feats = frozen_features(bb.model, ds, bb.pad_id)
    assert feats.shape == (len(ds), 3 * 64)
    same_q = {}
    for i, ex in enumerate(ds.examples):
        same_q.setdefault(ex.question, []).append(i)
    i, j = next(v[:2] for v in same_q.values() if len(v) > 1)
    # the question encoder cross-attends to the image: same question, other image, other feature
    assert not torch.allclose(feats[i, 64:128], feats[j, 64:128])
    assert all(torch.equal(before[k], v) for k, v in bb.model.state_dict().items())
    summary = linear_head_baseline(cfg, prep, out / "vqa-linear_head", epochs=2, lrs=(1e-2, 3e-2))
    assert 0.0 <= summary["vqa_accuracy"] <= 1.0 and summary["features"] == 192
    assert summary["val_by_lr"][f"{summary['lr']:g}"] == max(summary["val_by_lr"].values())
    assert (Path(summary["run_dir"]) / "metrics.json").is_file()
    assert (out / "vqa-linear_head" / "summary.json").is_file()
