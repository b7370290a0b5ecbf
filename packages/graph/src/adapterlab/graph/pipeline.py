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
    SeedStats,
    aggregate_seeds,
    atomic_write_json,
    atomic_write_text,
    format_mean_std,
    resolve_compute_dtype,
    resolve_device,
    seeds_to_json,
)
from torch_geometric.data import Data

from .cache import CacheSpec, LLMCache, build_cache, cache_fingerprint, fingerprint_mismatch
from .config import FinetuneConfig, PrepareConfig, PretrainConfig, RunAllConfig
from .data import ensure_wordnet, load_dataset
from .data.tag import keep_per_class
from .data.wordnet import default_cache_dir
from .errors import CacheError
from .methods import METHODS
from .presets import apply_preset
from .prompts import resolve_prompt
from .task import classification_metrics
from .train import (
    ADAPTER_FILE,
    describe,
    finetune,
    pretrain,
    selection_metric,
    tfidf_baseline,
    train_lora,
)

__all__ = ["prepare", "run_all", "summary_table"]

log = logging.getLogger("adapterlab.graph")

#: Labelled training nodes per class of the default task (WordNet): with all 600 training nodes
#: the methods sit at the ceiling (0.96-0.97); with 5 per class they separate.
WORDNET_TRAIN_PER_CLASS = 5


def load_data(cfg: PrepareConfig) -> Data:
    """The dataset of ``cfg`` (the embedded WordNet graph when ``cfg.data`` is None), with only
    ``cfg.train_per_class`` labelled training nodes per class when that is set (-1: 5 on the
    embedded WordNet graph, all for ``--data``)."""
    if cfg.data:
        data = load_dataset(cfg.data, cfg.layout, seed=cfg.seed, allow_unlabelled=cfg.unlabelled)
    else:
        root = ensure_wordnet(num_nodes=cfg.wordnet_nodes, num_labels=cfg.wordnet_labels,
                              seed=cfg.seed)  # fmt: skip
        data = load_dataset(root)
    per_class = cfg.train_per_class
    if per_class < 0:
        per_class = 0 if cfg.data else WORDNET_TRAIN_PER_CLASS
    return keep_per_class(data, per_class, cfg.seed)


def llm_device(cfg: PrepareConfig) -> torch.device:
    """The frozen LLM's device (``cfg.device``; auto: CUDA, then MPS, then CPU; under
    ``accelerate launch`` each process takes the GPU of its ``LOCAL_RANK``)."""
    import os

    device = resolve_device(cfg.device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def llm_dtype(cfg: PrepareConfig) -> str:
    """The frozen LLM's compute type name (``cfg.llm_dtype``, ``auto`` resolved for the device:
    bfloat16 only where it is native)."""
    return str(resolve_compute_dtype(cfg.llm_dtype, llm_device(cfg))).removeprefix("torch.")


def cache_spec(cfg: PrepareConfig, data: Data) -> CacheSpec:
    """The cache settings: prompt preset (or your template/question), text length, dtypes and
    the model's identity (weights and tokenizer hash)."""
    from .models.llm import model_fingerprint

    _, template, question = resolve_prompt(cfg.prompt, data.name, cfg.template, cfg.question)
    return CacheSpec(
        model=cfg.model, template=template, question=question,
        max_text_tokens=cfg.max_text_tokens or None, dtype=cfg.dtype, llm_dtype=llm_dtype(cfg),
        chunk_nodes=cfg.chunk_nodes, batch_size=cfg.llm_batch_size,
        model_hash=model_fingerprint(cfg.model),
    )  # fmt: skip


def cache_dir(cfg: PrepareConfig, spec: CacheSpec, data: Data) -> Path:
    """``cfg.cache`` or a folder named by the model and the cache fingerprint."""
    if cfg.cache:
        return Path(cfg.cache)
    slug = Path(cfg.model).name.replace("/", "_")
    return default_cache_dir() / "llm" / f"{slug}-{cache_fingerprint(spec, data.texts)}"


def prepare(cfg: PrepareConfig, *, llm: Any = None, show_progress: bool = True) -> dict[str, Any]:
    """Load the data and build (or resume, or reuse) the LLM cache; returns timings and sizes.

    A cache folder is reused only when its fingerprint (texts, model identity, template,
    question, token limit, dtypes) equals this run's; a folder holding another fingerprint is
    refused with a message naming both (never reused, never overwritten)."""
    from .models.llm import load_llm

    data = load_data(cfg)
    spec = cache_spec(cfg, data)
    root = cache_dir(cfg, spec, data)
    fingerprint = cache_fingerprint(spec, data.texts)
    info: dict[str, Any] = {"data": data, "spec": spec, "cache_dir": root, "llm": llm,
                            "fingerprint": fingerprint}  # fmt: skip
    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is not None and meta.get("fingerprint") != fingerprint:
        raise CacheError(fingerprint_mismatch(root, meta, fingerprint))
    if meta is not None and meta.get("complete"):
        info["cache"] = LLMCache(root, fingerprint)
        info["cache_seconds"] = 0.0
        info["cache_reused"] = True
    else:
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


_COLUMNS = ("val", "accuracy", "macro_f1", "roc_auc")


def _cell(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return "n/a"
    mean, std = row[key]
    return format_mean_std(SeedStats(mean, std, row["seeds"], {}), digits=3)


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: method, the validation score it was selected on, test accuracy, macro-F1
    and ROC-AUC (mean ± sample std over seeds, the core's ``format_mean_std``), seeds, trainable
    params, settings chosen on validation, time per seed."""
    metric = rows[0].get("metric", "accuracy") if rows else "accuracy"
    lines = [
        f"| method | val {metric} (selection) | test accuracy | test macro-F1 | test ROC-AUC "
        "| seeds | trainable params | chosen on val | time/seed (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = " | ".join(_cell(r, k) for k in _COLUMNS)
        lines.append(
            f"| {r['title']} | {cells} | {r['seeds']} | {r['params']:,} | {r.get('chosen', '')} "
            f"| {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def _aggregate(title: str, results: list[dict[str, Any]], chosen: str = "") -> dict[str, Any]:
    """One table row: the core's seed statistics of every test metric and the selection score."""
    metric = results[0]["val"].get("metric", "accuracy") if results else "accuracy"
    per_seed = {int(r["seed"]): {**r["test"], "val": r["val"].get(metric)} for r in results}
    stats = aggregate_seeds(per_seed)
    return {
        "title": title,
        "metric": metric,
        **{k: (stats[k].mean, stats[k].std) for k in _COLUMNS if k in stats},
        "seeds": len(results),
        "params": results[0]["trainable_params"] if results else 0,
        "seconds": statistics.fmean(r["seconds"] for r in results) if results else 0.0,
        "chosen": chosen,
        "per_seed": seeds_to_json(per_seed),
    }


def _majority(data: Data) -> dict[str, Any]:
    """The majority class of the training split, scored like every method."""
    train_y = data.y[data.train_mask]
    label = int(torch.bincount(train_y, minlength=len(data.label_names)).argmax())
    k = len(data.label_names)

    def score(mask: torch.Tensor) -> dict[str, float]:
        logits = torch.full((int(mask.sum()), k), -1.0)
        logits[:, label] = 1.0
        return classification_metrics({"logits": logits, "target": data.y[mask]})

    res = {"method": "majority", "seed": 0, "val": {"metric": selection_metric(k),
           **score(data.val_mask)}, "test": score(data.test_mask), "trainable_params": 0,
           "seconds": 0.0}  # fmt: skip
    return _aggregate("majority class", [res])


def _plot(out: Path, runs: dict[str, list[dict[str, Any]]], pretrain_dir: Path | None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    log_path = pretrain_dir / "metrics.jsonl" if pretrain_dir else None
    if log_path is not None and log_path.is_file():
        rows = [json.loads(x) for x in log_path.read_text().splitlines() if x]
        for split, label in (("train", "train loss (training tokens)"),
                             ("eval", "val loss (held-out tokens, val nodes)")):  # fmt: skip
            pts = [(r["step"], r["loss"]) for r in rows if r.get("split") == split and "loss" in r]
            if pts:
                ax1.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=label)
        ax1.legend(fontsize=7)
    ax1.set_title("GraphAdapter pre-training (residual learning)")
    ax1.set_xlabel("step")
    metric = "accuracy"
    for method, results in runs.items():
        if method in ("tfidf", "lora") or not results or "run_dir" not in results[0]:
            continue
        metric = results[0]["val"].get("metric", "accuracy")
        path = Path(results[0]["run_dir"]) / "metrics.jsonl"
        pts = [
            (r["step"], r[metric])
            for r in map(json.loads, path.read_text().splitlines())
            if r.get("split") == "eval" and metric in r
        ]
        if pts:
            ax2.plot(*zip(*pts, strict=True), label=METHODS[method].title)
    ax2.set_title(f"validation {metric} (first seed)")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=7)
    fig.savefig(out / "curves.png", dpi=110)


class _Record:
    """metrics.json, summary.md and curves.png, rewritten after every finished method (a failure
    later in the run never loses the finished work)."""

    def __init__(self, out: Path, metrics: dict[str, Any]) -> None:
        self.out, self.metrics = out, metrics
        self.rows: dict[str, dict[str, Any]] = {}

    def row(self, key: str, row: dict[str, Any]) -> None:
        self.rows[key] = row
        self.write()

    def write(self, status: str = "running") -> None:
        self.metrics["status"] = status
        self.metrics["summary"] = list(self.rows.values())
        atomic_write_json(self.out / "metrics.json", self.metrics)
        if self.rows:
            atomic_write_text(
                self.out / "summary.md", summary_table(list(self.rows.values())) + "\n"
            )


def _finetune_method(
    cfg: RunAllConfig,
    method: str,
    cache: LLMCache,
    data: Data,
    out: Path,
    adapter_path: Path | None,
    show_progress: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One fine-tuning method over the seeds; the GraphSAGE/MLP baselines first pick their
    learning rate from ``cfg.baseline_lrs`` on validation (first seed). Returns (runs, choice)."""
    lrs = [cfg.finetune_lr] if METHODS[method].lr_field == "finetune_lr" else list(cfg.baseline_lrs)

    def run(seed: int, lr: float, tag: str) -> dict[str, Any]:
        ft_cfg = FinetuneConfig(hidden=cfg.hidden, gnn=cfg.gnn, steps=cfg.finetune_steps, lr=lr,
                                eval_every=cfg.finetune_eval_every, seed=seed)  # fmt: skip
        res = finetune(method, cache, data, ft_cfg, out / "finetune" / method / tag,
                       pretrained=adapter_path, overwrite=True, show_progress=show_progress,
                       plots=False)  # fmt: skip
        return describe(res)

    choice: dict[str, Any] = {"lr": lrs[0]}
    first: dict[str, Any] | None = None
    if len(lrs) > 1:
        grid = {lr: run(cfg.seeds[0], lr, f"seed{cfg.seeds[0]}-lr{lr:g}") for lr in lrs}
        metric = next(iter(grid.values()))["val"]["metric"]
        best = max(lrs, key=lambda lr: grid[lr]["val"][metric])
        choice = {"lr": best, "grid": {f"{lr:g}": grid[lr]["val"][metric] for lr in lrs}}
        first = grid[best]
    results = []
    for seed in cfg.seeds:
        if first is not None and seed == cfg.seeds[0]:
            results.append(first)
            continue
        results.append(run(seed, choice["lr"], f"seed{seed}"))
        log.info("%s seed %d: test %s", method, seed, results[-1]["test"])
    return results, choice


def run_all(cfg: RunAllConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Run the whole comparison into ``cfg.out``; returns the metrics written to metrics.json
    (rewritten after every finished method)."""
    cfg = apply_preset(cfg)
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
    k = len(data.label_names)
    metrics: dict[str, Any] = {
        "dataset": {"name": data.name, "nodes": data.num_nodes, "classes": k,
                    "labels": data.label_names, "edges": data.edge_stats,
                    "split": getattr(data, "split_name", ""), "split_sizes": data.split_sizes,
                    "unlabelled": data.unlabelled, "train_per_class": cfg.train_per_class},
        "selection_metric": selection_metric(k),
        "seeds": list(cfg.seeds),
        "split_per_seed": "fixed (seeds change initialisation and data order)",
        "preset": cfg.preset,
        "cache": {"dir": str(info["cache_dir"]), "fingerprint": info["fingerprint"],
                  "bytes": info["cache_bytes"], "bytes_per_1k_nodes": info["bytes_per_1k_nodes"],
                  "reused": info["cache_reused"], "seconds": info["cache_seconds"],
                  "max_text_tokens": spec.max_text_tokens, "template": spec.template,
                  "question": spec.question, "model_hash": spec.model_hash,
                  "nodes_per_s": (data.num_nodes / info["cache_seconds"]) if info["cache_seconds"] else None},
        "runs": {}, "choices": {}, "timings": timings,
    }  # fmt: skip
    record = _Record(out, metrics)
    record.write()

    t0, c0 = time.perf_counter(), time.process_time()
    pretrain_dir: Path | None = None
    adapter_path: Path | None = None
    if cfg.pretrained:
        adapter_path = Path(cfg.pretrained)
        if not adapter_path.is_file():
            raise FileNotFoundError(f"--pretrained {adapter_path}: no such file")
        metrics["pretrain"] = {"reused": str(adapter_path)}
        pretrain_dir = adapter_path.parent
    elif cfg.pretrain_epochs > 0:
        pre_cfg = PretrainConfig(hidden=cfg.hidden, gnn=cfg.gnn, epochs=cfg.pretrain_epochs,
                                 lr=cfg.pretrain_lr, batch_size=cfg.pretrain_batch_size,
                                 warmup_steps=cfg.pretrain_warmup,
                                 schedule_per=cfg.pretrain_schedule_per, seed=cfg.seed)  # fmt: skip
        pre = pretrain(cache, data, pre_cfg, out / "pretrain", overwrite=True,
                       show_progress=show_progress)  # fmt: skip
        metrics["pretrain"] = describe(pre)
        pretrain_dir = out / "pretrain"
        adapter_path = pretrain_dir / ADAPTER_FILE
    timings["pretrain_s"] = time.perf_counter() - t0
    timings["pretrain_cpu_s"] = time.process_time() - c0
    record.write()

    methods = [m for m in METHODS if m not in ("lora", "tfidf")]
    if adapter_path is None:
        methods.remove("graphadapter")
    t0, c0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    if cfg.finetune_threads > 0:
        torch.set_num_threads(cfg.finetune_threads)
    try:
        for method in methods:
            results, choice = _finetune_method(cfg, method, cache, data, out, adapter_path,
                                               show_progress)  # fmt: skip
            metrics["runs"][method], metrics["choices"][method] = results, choice
            chosen = f"lr {choice['lr']:g}" + (" (grid)" if "grid" in choice else "")
            record.row(method, _aggregate(METHODS[method].title, results, chosen))
    finally:
        torch.set_num_threads(threads)
    timings["finetune_s"] = time.perf_counter() - t0
    timings["finetune_cpu_s"] = time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    val, test = tfidf_baseline(data, list(cfg.tfidf_cs))
    tfidf = {"method": "tfidf", "seed": cfg.seeds[0], "val": val, "test": test,
             "trainable_params": 0, "seconds": time.perf_counter() - t0}  # fmt: skip
    metrics["runs"]["tfidf"], metrics["choices"]["tfidf"] = (
        [tfidf],
        {"C": val["C"], "grid": val["grid"]},
    )
    record.row("tfidf", _aggregate(METHODS["tfidf"].title, [tfidf], f"C {val['C']:g} (grid)"))
    timings["tfidf_s"], timings["tfidf_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0

    if cfg.lora_nodes > 0 and cfg.lora_steps > 0:
        from .models.llm import load_llm

        t0, c0 = time.perf_counter(), time.process_time()
        model, tok = info["llm"] or load_llm(
            cfg.model, vocab_words=_words(data), dtype=llm_dtype(cfg), device=llm_device(cfg)
        )
        seed = cfg.seeds[0]
        grid = [
            describe(
                train_lora(
                    model,
                    tok,
                    data,
                    spec,
                    out / "lora" / f"seed{seed}-lr{lr:g}",
                    train_nodes=cfg.lora_nodes,
                    steps=cfg.lora_steps,
                    last_layers=cfg.lora_layers,
                    lr=lr,
                    seed=seed,
                    overwrite=True,
                    show_progress=show_progress,
                    plots=False,
                )
            )  # fmt: skip
            for lr in cfg.lora_lrs
        ]
        metric = grid[0]["val"]["metric"]
        best = max(grid, key=lambda r: r["val"][metric])
        lr = best["val"]["lr"]
        metrics["runs"]["lora"] = [best]
        metrics["choices"]["lora"] = {"lr": lr, "grid": {f"{r['val']['lr']:g}": r["val"][metric] for r in grid},
                                      "train_nodes": cfg.lora_nodes, "steps": cfg.lora_steps}  # fmt: skip
        n_train = best["val"]["train_nodes"]
        title = f"{METHODS['lora'].title} ({n_train} train nodes, {cfg.lora_steps} steps)"
        chosen = f"lr {lr:g}" + (" (grid)" if len(grid) > 1 else "")
        record.row("lora", _aggregate(title, [best], chosen))
        timings["lora_s"] = time.perf_counter() - t0
        timings["lora_cpu_s"] = time.process_time() - c0

    record.row("majority", _majority(data))
    record.write("completed")
    _plot(out, metrics["runs"], pretrain_dir)
    return metrics
