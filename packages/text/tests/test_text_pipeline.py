"""The main job end to end on a tiny BERT: language adapters learn, the invertible adapter's
inverse sits on the MLM decoder, the summary has mean ± std rows."""

from __future__ import annotations

import json
import math

import torch
from adapterlab.text.config import LangAdaptConfig
from adapterlab.text.data import MLMDataset
from adapterlab.text.pipeline import load_corpora, run_all
from adapterlab.text.train import build_model, evaluate_mlm, train_language_adapter


def _cfg(wordnet_dir, tmp_path, **extra) -> LangAdaptConfig:
    base = dict(
        out=str(tmp_path / "run"), data=str(wordnet_dir), model="tiny", seeds="2", max_len=16,
        mlm_train=60, mlm_eval=16, mlm_steps=30, mlm_batch=8, mlm_lr=3e-3, n_labels=3,
        task_train=24, task_test=9, task_steps=6, task_batch=8,
    )  # fmt: skip
    base.update(extra)
    return LangAdaptConfig(**base)


def test_language_adapter_lowers_held_out_mlm_loss(wordnet_dir, tmp_path, tokenizer) -> None:
    cfg = _cfg(wordnet_dir, tmp_path)
    corpora = load_corpora(cfg)
    train = MLMDataset(corpora.kg["train"] + corpora.text["train"], tokenizer, cfg.max_len)
    val = MLMDataset(corpora.kg["val"], tokenizer, cfg.max_len, fixed_seed=1)
    test = MLMDataset(
        corpora.kg["test"] + corpora.text["test"], tokenizer, cfg.max_len, fixed_seed=2
    )
    model, _ = build_model(cfg, 3, 0, tokenizer)
    before = evaluate_mlm(model, test, 8)["mlm_loss"]
    train_language_adapter(model, "seq_bn_inv", train, val, cfg, 0, tmp_path / "mlm")
    after = evaluate_mlm(model, test, 8)["mlm_loss"]
    assert after < before - 0.3, (before, after)
    decoder = model.mlm.cls.predictions.decoder
    assert type(decoder).__name__ == "InverseCouplingWrapper" and "lang" in decoder.adapter_names()


def test_run_all_writes_a_mean_std_table(wordnet_dir, tmp_path, tokenizer) -> None:
    cfg = _cfg(wordnet_dir, tmp_path, mlm_steps=4)
    summary = run_all(cfg, tokenizer=tokenizer)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["table"] == summary["table"]
    for method in ("head_only", "seq_bn", "seq_bn_inv", "lora"):
        assert f"| {method} |" in summary["table"]
        stats = saved["mean_std"][method]
        assert stats["topic_acc"]["n"] == 2 and math.isfinite(stats["kg_mlm_loss"]["mean"])
    assert saved["adapter_params"]["head_only"] == 0 < saved["adapter_params"]["lora"]
    assert "seq_bn_inv - seq_bn: topic_acc" in saved["paired"]
    assert torch.get_num_threads() >= 1
