"""The main job (``adapterlab-graph run-all``): prepare the data and the LLM cache, pre-train
GraphAdapter once, fine-tune it and the baselines over several seeds, write the summary."""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import (
    atomic_write_json,
    atomic_write_text,
    resolve_compute_dtype,
    resolve_device,
)
from torch_geometric.data import Data

from .cache import CacheSpec, LLMCache, build_cache, cache_fingerprint
from .config import FinetuneConfig, PrepareConfig, PretrainConfig, RunAllConfig
from .data import ensure_wordnet, load_dataset
from .data.wordnet import default_cache_dir
from .methods import METHODS
from .train import ADAPTER_FILE, describe, finetune, pretrain, train_lora

__all__ = ["prepare", "run_all", "summary_table"]

log = logging.getLogger("adapterlab.graph")

WORDNET_TEMPLATE = "WordNet noun: "
WORDNET_QUESTION = '.\nQuestion: which kind of thing is this?\nAnswer: "'


def load_data(cfg: PrepareConfig) -> Data:
    """The dataset of ``cfg`` (the embedded WordNet graph when ``cfg.data`` is None)."""
    if cfg.data:
        return load_dataset(cfg.data, cfg.layout, seed=cfg.seed)
    root = ensure_wordnet(num_nodes=cfg.wordnet_nodes, num_labels=cfg.wordnet_labels, seed=cfg.seed)
    return load_dataset(root)


def llm_device(cfg: PrepareConfig) -> torch.device:
    """The frozen LLM's device (``cfg.device``; auto: CUDA, then MPS, then CPU)."""
    return resolve_device(cfg.device)


def llm_dtype(cfg: PrepareConfig) -> str:
    """The frozen LLM's compute type name (``cfg.llm_dtype``, ``auto`` resolved for the device:
    bfloat16 only where it is native)."""
    return str(resolve_compute_dtype(cfg.llm_dtype, llm_device(cfg))).removeprefix("torch.")


def cache_spec(cfg: PrepareConfig, data: Data) -> CacheSpec:
    """The cache settings (WordNet gets its own short template and question)."""
    spec = CacheSpec(
        model=cfg.model, llm_dtype=llm_dtype(cfg), max_text_tokens=cfg.max_text_tokens, dtype=cfg.dtype,
        chunk_nodes=cfg.chunk_nodes, batch_size=cfg.llm_batch_size,
    )  # fmt: skip
    if not cfg.data:
        spec.template, spec.question = WORDNET_TEMPLATE, WORDNET_QUESTION
    return spec


def cache_dir(cfg: PrepareConfig, spec: CacheSpec, data: Data) -> Path:
    """``cfg.cache`` or a folder named by the model and the cache fingerprint."""
    if cfg.cache:
        return Path(cfg.cache)
    slug = Path(cfg.model).name.replace("/", "_")
    return default_cache_dir() / "llm" / f"{slug}-{cache_fingerprint(spec, data.texts)}"


def prepare(cfg: PrepareConfig, *, llm: Any = None, show_progress: bool = True) -> dict[str, Any]:
    """Load the data and build (or resume, or reuse) the LLM cache; returns timings and sizes."""
    from .models.llm import load_llm

    data = load_data(cfg)
    spec = cache_spec(cfg, data)
    root = cache_dir(cfg, spec, data)
    info: dict[str, Any] = {"data": data, "spec": spec, "cache_dir": root, "llm": llm}
    try:
        info["cache"] = LLMCache(root)
        info["cache_seconds"] = 0.0
        info["cache_reused"] = True
    except Exception:
        t0 = time.perf_counter()
        if llm is None:
            llm = load_llm(
                cfg.model, vocab_words=_words(data), dtype=llm_dtype(cfg), device=llm_device(cfg)
            )
        info["llm"] = llm
        info["load_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        info["cache"] = build_cache(
            root, data.texts, llm[0], llm[1], spec, show_progress=show_progress
        )
        info["cache_seconds"] = time.perf_counter() - t0
        info["cache_reused"] = False
    cache = info["cache"]
    info["cache_bytes"] = cache.bytes_on_disk()
    info["bytes_per_1k_nodes"] = cache.bytes_on_disk() * 1000 / cache.num_nodes
    return info


def _words(data: Data) -> list[str]:
    return sorted({w for t in data.texts for w in t.split()})


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: method, accuracy and macro-F1 (mean ± std), seeds, params, time."""
    lines = [
        "| method | test accuracy | test macro-F1 | test ROC-AUC | seeds | trainable params | time/seed (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc, f1, auc = r["accuracy"], r["macro_f1"], r["roc_auc"]
        lines.append(
            f"| {r['title']} | {acc[0]:.3f} ± {acc[1]:.3f} | {f1[0]:.3f} ± {f1[1]:.3f} | "
            f"{auc[0]:.3f} ± {auc[1]:.3f} | {r['seeds']} | {r['params']:,} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def _aggregate(title: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": title,
        "accuracy": _mean_std([r["test"].get("accuracy", float("nan")) for r in results]),
        "macro_f1": _mean_std([r["test"].get("macro_f1", float("nan")) for r in results]),
        "roc_auc": _mean_std([r["test"].get("roc_auc", float("nan")) for r in results]),
        "seeds": len(results),
        "params": results[0]["trainable_params"] if results else 0,
        "seconds": statistics.fmean(r["seconds"] for r in results) if results else 0.0,
    }


def _majority(data: Data) -> dict[str, Any]:
    train_y = data.y[data.train_mask]
    label = int(torch.bincount(train_y).argmax())
    test_y = data.y[data.test_mask]
    acc = float((test_y == label).float().mean())
    k = len(data.label_names)
    f1 = (2 * acc / (1 + acc)) / len(torch.unique(test_y)) if acc > 0 else 0.0
    return {"title": "majority class", "accuracy": (acc, 0.0), "macro_f1": (f1, 0.0),
            "roc_auc": (0.5, 0.0), "seeds": 1, "params": 0, "seconds": 0.0, "classes": k}  # fmt: skip


def _plot(out: Path, runs: dict[str, list[dict[str, Any]]], pretrain_dir: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    rows = [json.loads(x) for x in (pretrain_dir / "metrics.jsonl").read_text().splitlines() if x]
    for split, key in (("train", "loss"), ("eval", "loss")):
        pts = [(r["step"], r[key]) for r in rows if r.get("split") == split and key in r]
        if pts:
            ax1.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=f"{split} loss")
    ax1.set_title("GraphAdapter pre-training (residual learning)")
    ax1.set_xlabel("step")
    ax1.legend()
    for method, results in runs.items():
        if not results:
            continue
        path = Path(results[0]["run_dir"]) / "metrics.jsonl"
        pts = [
            (r["step"], r["accuracy"])
            for r in map(json.loads, path.read_text().splitlines())
            if r.get("split") == "eval" and "accuracy" in r
        ]
        if pts:
            ax2.plot(*zip(*pts, strict=True), label=METHODS[method].title)
    ax2.set_title("validation accuracy (first seed)")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=7)
    fig.savefig(out / "curves.png", dpi=110)


def _finetune_all(
    cfg: RunAllConfig,
    cache: LLMCache,
    data: Data,
    out: Path,
    adapter_path: Path,
    runs: dict[str, list[dict[str, Any]]],
    show_progress: bool,
) -> None:
    """Every fine-tuning method for every seed (results appended to ``runs``)."""
    for seed in cfg.seeds:
        for method in runs:
            lr = getattr(cfg, METHODS[method].lr_field)
            ft_cfg = FinetuneConfig(hidden=cfg.hidden, gnn=cfg.gnn, steps=cfg.finetune_steps,
                                    lr=lr, seed=seed)  # fmt: skip
            res = finetune(method, cache, data, ft_cfg, out / "finetune" / method / f"seed{seed}",
                           pretrained=adapter_path, overwrite=True, show_progress=show_progress)  # fmt: skip
            runs[method].append(describe(res))
            log.info("%s seed %d: test %s", method, seed, res.test)


def run_all(cfg: RunAllConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Run the whole comparison into ``cfg.out``; returns the metrics written to metrics.json."""
    out = Path(cfg.out)
    if (out / "metrics.json").exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a finished run; pass --overwrite or --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", asdict(cfg))
    timings: dict[str, float] = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    info = prepare(cfg, show_progress=show_progress)
    data, cache, spec = info["data"], info["cache"], info["spec"]
    timings["prepare_s"] = time.perf_counter() - t0
    timings["prepare_cpu_s"] = time.process_time() - c0
    log.info("cache: %s (%.1f MB)", info["cache_dir"], info["cache_bytes"] / 1e6)

    t0, c0 = time.perf_counter(), time.process_time()
    if cfg.pretrained:
        adapter_path = Path(cfg.pretrained)
        if not adapter_path.is_file():
            raise FileNotFoundError(f"--pretrained {adapter_path}: no such file")
        pre_record: dict[str, Any] = {"reused": str(adapter_path)}
        pretrain_dir = adapter_path.parent
    else:
        pre_cfg = PretrainConfig(hidden=cfg.hidden, gnn=cfg.gnn, epochs=cfg.pretrain_epochs,
                                 lr=cfg.pretrain_lr, seed=cfg.seed)  # fmt: skip
        pre = pretrain(cache, data, pre_cfg, out / "pretrain", overwrite=True,
                       show_progress=show_progress)  # fmt: skip
        pre_record = describe(pre)
        pretrain_dir = out / "pretrain"
        adapter_path = pretrain_dir / ADAPTER_FILE
    timings["pretrain_s"] = time.perf_counter() - t0
    timings["pretrain_cpu_s"] = time.process_time() - c0

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS if m != "lora"}
    t0, c0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    if cfg.finetune_threads > 0:
        torch.set_num_threads(cfg.finetune_threads)
    try:
        _finetune_all(cfg, cache, data, out, adapter_path, runs, show_progress)
    finally:
        torch.set_num_threads(threads)
    timings["finetune_s"] = time.perf_counter() - t0
    timings["finetune_cpu_s"] = time.process_time() - c0

    lora: list[dict[str, Any]] = []
    if cfg.lora_nodes > 0 and cfg.lora_steps > 0:
        from .models.llm import load_llm

        t0, c0 = time.perf_counter(), time.process_time()
        model, tok = info["llm"] or load_llm(
            cfg.model, vocab_words=_words(data), dtype=llm_dtype(cfg), device=llm_device(cfg)
        )
        res = train_lora(model, tok, data, spec, out / "lora" / f"seed{cfg.seeds[0]}",
                         train_nodes=cfg.lora_nodes, steps=cfg.lora_steps,
                         last_layers=cfg.lora_layers, seed=cfg.seeds[0], overwrite=True,
                         show_progress=show_progress)  # fmt: skip
        lora.append(describe(res))
        timings["lora_s"] = time.perf_counter() - t0
        timings["lora_cpu_s"] = time.process_time() - c0

    rows = [_aggregate(METHODS[m].title, r) for m, r in runs.items()]
    if lora:
        rows.append(_aggregate(
            f"{METHODS['lora'].title} ({cfg.lora_nodes} train nodes, {cfg.lora_steps} steps)", lora
        ))  # fmt: skip
    rows.append(_majority(data))
    table = summary_table(rows)
    metrics = {
        "dataset": {"name": data.name, "nodes": data.num_nodes, "classes": len(data.label_names),
                    "labels": data.label_names, "edges": data.edge_stats},
        "cache": {"dir": str(info["cache_dir"]), "bytes": info["cache_bytes"],
                  "bytes_per_1k_nodes": info["bytes_per_1k_nodes"], "reused": info["cache_reused"],
                  "seconds": info["cache_seconds"],
                  "nodes_per_s": (data.num_nodes / info["cache_seconds"]) if info["cache_seconds"] else None},
        "pretrain": pre_record,
        "runs": runs, "lora": lora, "summary": rows, "timings": timings,
    }  # fmt: skip
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "summary.md", table + "\n")
    _plot(out, runs, pretrain_dir)
    return metrics
