"""The main job (``adapterlab-text run-all``): WordNet text -> for every seed and method: MLM
adaptation, held-out MLM loss on KG sentences and on free text, downstream topic accuracy ->
mean ± std table and ``summary.json``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import (
    aggregate_seeds,
    atomic_write_json,
    format_mean_std,
    paired_difference,
    resolve_seeds,
    seeds_to_json,
)

from .config import LangAdaptConfig
from .data import MLMDataset, TopicDataset, build_corpora, fetch_wordnet_base, parse_data_noun
from .models import load_mlm
from .train import build_model, evaluate_mlm, train_language_adapter, train_topic_task

__all__ = ["load_corpora", "run_all"]

PAPER_DIRECTION = (
    "paper (Gurgurov et al. 2025): seq_bn lowest MLM loss, seq_bn_inv slightly best downstream"
)


def load_corpora(cfg: LangAdaptConfig):
    """Parse WordNet (``--data`` folder or Debian's wordnet-base) and split it."""
    data_noun = Path(cfg.data) / "data.noun" if cfg.data else fetch_wordnet_base()
    synsets = parse_data_noun(data_noun)
    n_mlm = {"train": cfg.mlm_train, "val": cfg.mlm_eval, "test": cfg.mlm_eval}
    n_topics = {"train": cfg.task_train, "val": cfg.task_test // 2, "test": cfg.task_test}
    return build_corpora(synsets, n_mlm=n_mlm, n_labels=cfg.n_labels, n_topics=n_topics)


def run_all(cfg: LangAdaptConfig, tokenizer: Any = None) -> dict[str, Any]:
    """Run every method for every seed; print the table, write ``<out>/summary.json``."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    out = Path(cfg.out)
    corpora = load_corpora(cfg)
    _, tok = load_mlm(cfg.model, tokenizer)
    train = MLMDataset(corpora.kg["train"] + corpora.text["train"], tok, cfg.max_len)
    val = MLMDataset(corpora.kg["val"] + corpora.text["val"], tok, cfg.max_len, fixed_seed=1)
    tests = {
        c: MLMDataset(getattr(corpora, c)["test"], tok, cfg.max_len, fixed_seed=2)
        for c in ("kg", "text")
    }
    topics = {
        s: TopicDataset(corpora.topics[s], tok, cfg.max_len) for s in ("train", "val", "test")
    }
    methods = ["head_only", *cfg.methods]
    per_method: dict[str, dict[int, dict[str, float]]] = {m: {} for m in methods}
    params: dict[str, int] = {}
    for seed in resolve_seeds(cfg.seeds):
        for method in methods:
            model, _ = build_model(cfg, len(corpora.labels), seed, tok)
            where = out / f"seed{seed}" / method
            params[method] = train_language_adapter(
                model, method, train, val, cfg, seed, where / "mlm"
            )
            row = {
                f"{c}_mlm_loss": evaluate_mlm(model, d, cfg.eval_batch)["mlm_loss"]
                for c, d in tests.items()
            }
            row["topic_acc"] = train_topic_task(
                model, topics["train"], topics["val"], topics["test"], cfg, seed, where / "topic"
            )
            per_method[method][seed] = row
            print(
                f"seed {seed} {method}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()),
                flush=True,
            )
    summary = _summarise(cfg, corpora, per_method, params, time.perf_counter() - start)
    atomic_write_json(out / "summary.json", summary)
    print(summary["table"])
    return summary


def _summarise(cfg, corpora, per_method, params, seconds: float) -> dict[str, Any]:
    stats = {m: aggregate_seeds(v) for m, v in per_method.items()}
    lines = [
        "| method | adapter params | KG MLM loss | free-text MLM loss | topic acc (%) |",
        "|---|---|---|---|---|",
    ]
    for m, s in stats.items():
        lines.append(
            f"| {m} | {params[m]:,} | {format_mean_std(s['kg_mlm_loss'], 3)} | "
            f"{format_mean_std(s['text_mlm_loss'], 3)} | {format_mean_std(s['topic_acc'], 1, 100)} |"
        )
    diffs = {}
    if "seq_bn" in per_method and "seq_bn_inv" in per_method:
        for metric in ("kg_mlm_loss", "text_mlm_loss", "topic_acc"):
            a = {k: v[metric] for k, v in per_method["seq_bn_inv"].items()}
            b = {k: v[metric] for k, v in per_method["seq_bn"].items()}
            diffs[f"seq_bn_inv - seq_bn: {metric}"] = paired_difference(a, b)
    table = "\n".join(lines) + f"\n\n{PAPER_DIRECTION}; runtime {seconds:.0f} s"
    return {
        "table": table,
        "labels": corpora.labels,
        "sizes": {
            "mlm_train": len(corpora.kg["train"]) + len(corpora.text["train"]),
            "mlm_test_kg": len(corpora.kg["test"]),
            "mlm_test_text": len(corpora.text["test"]),
            "topic_train": len(corpora.topics["train"]),
            "topic_test": len(corpora.topics["test"]),
        },
        "config": vars(cfg),
        "adapter_params": params,
        "mean_std": {m: {k: v.to_json() for k, v in s.items()} for m, s in stats.items()},
        "paired": diffs,
        "seeds": {m: seeds_to_json(v) for m, v in per_method.items()},
        "seconds": seconds,
    }
