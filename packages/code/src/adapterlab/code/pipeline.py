"""The main job (``run-all`` / ``make train-code``): stdlib data -> TTC -> every variant on
summarization -> one summary table (``summary.md``, ``summary.json``)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import atomic_write_json, atomic_write_text

from .config import PipelineConfig, TaskConfig, TTCConfig
from .data.embedded import write_summarization
from .data.token_types import TOKEN_TYPES
from .methods import variant
from .train import train_task, train_ttc

__all__ = ["markdown_summary", "run_all"]


def _summaries(cfg: PipelineConfig, root: Path) -> Path:
    folder = root / "summarization"
    marker = folder / "python" / "test.jsonl"
    if not marker.is_file():  # earlier data is reused, never deleted
        limits = {
            "train": cfg.train_examples,
            "valid": cfg.eval_examples,
            "test": cfg.eval_examples,
        }
        write_summarization(folder, max_per_split=limits, max_code=160)
    return folder


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (datasets workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _Clock:
    """Wall and CPU seconds per stage (the job's own profile, printed in the summary)."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        self.start = self._wall

    def lap(self, name: str) -> str:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        self.stages[name] = {
            "wall_s": round(wall - self._wall, 1),
            "cpu_s": round(cpu - self._cpu, 1),
        }
        self._wall, self._cpu = wall, cpu
        return f"{wall - self.start:.0f} s wall, stage {self.stages[name]['cpu_s']:.0f} CPU-s"


def run_all(cfg: PipelineConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the whole comparison; returns the summary dict (also written to ``<out>``)."""
    out = Path(cfg.out)
    names = [v.strip() for v in cfg.variants.split(",") if v.strip()]
    for name in names:
        variant(name)
    torch.set_num_threads(cfg.threads)
    clock = _Clock()
    data = _summaries(cfg, out / "data")
    print(f"[1/3] summarization data: {data} ({clock.lap('summarization data')})", flush=True)
    ttc_cfg = TTCConfig(
        model=cfg.model,
        out=str(out / "ttc"),
        cache_dir=str(out / "data" / "cache"),
        max_files=cfg.ttc_files,
        max_length=cfg.ttc_max_length,
        lr=cfg.ttc_lr,
        steps=cfg.ttc_steps,
        eval_every=cfg.ttc_steps,  # one validation pass, at the end (best = final)
        seed=cfg.seed,
    )
    tasks = [
        TaskConfig(
            task="summarization",
            data=str(data),
            variant=name,
            model=cfg.model,
            out=str(out / name),
            decoder_layers=cfg.decoder_layers,
            decoder_ffn=cfg.decoder_ffn,
            decoder_lr=cfg.decoder_lr,
            max_source_length=cfg.max_source_length,
            max_target_length=cfg.max_target_length,
            steps=cfg.task_steps,
            max_train=cfg.train_examples,
            max_eval=cfg.eval_examples,
            max_valid=cfg.valid_examples,
            seed=cfg.seed,
        )
        for name in names
    ]
    workers = max(1, min(cfg.workers, len(tasks) + 1))

    def ttc_done(ttc: dict[str, Any]) -> None:
        print(
            f"[2/3] TTC: accuracy {100 * ttc['test']['accuracy']:.1f}% vs majority "
            f"({ttc['majority_type']}) {100 * ttc['majority_accuracy']:.1f}% "
            f"({ttc['wall_seconds']:.0f} s wall, {ttc['cpu_seconds']:.0f} CPU-s)",
            flush=True,
        )

    ttc, rows = ttc_and_variants(
        ttc_cfg, tasks, cfg.threads, workers, progress=progress and workers == 1, ttc_done=ttc_done
    )
    clock.lap(
        "ttc + summarization variants "
        + (f"({workers} processes, overlapped)" if workers > 1 else "(one after another)")
    )
    summary = {
        "model": cfg.model,
        "ttc": ttc,
        "variants": rows,
        "ner_helps": _verdict(rows),
        "stages": clock.stages,
        "total_seconds": round(time.perf_counter() - clock.start, 1),
        "total_cpu_seconds": round(sum(v["cpu_s"] for v in clock.stages.values()), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }
    atomic_write_json(out / "summary.json", summary)
    text = markdown_summary(summary)
    atomic_write_text(out / "summary.md", text)
    print(text)
    return summary


def _run_timed(
    run: Callable[..., dict[str, Any]], cfg: TaskConfig | TTCConfig, threads: int, progress: bool
) -> dict[str, Any]:
    """``run(cfg)`` (``train_task`` or ``train_ttc``, in a worker process or in this one) with
    ``threads`` torch threads; its report gets the run's own wall and CPU seconds."""
    torch.set_num_threads(threads)
    wall, cpu = time.perf_counter(), time.process_time()
    report = run(cfg, progress=progress)
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu, 1)
    return report


def _variant_done(report: dict[str, Any]) -> None:
    print(
        f"[3/3] {report['variant']}: test BLEU-4 {report['test']['bleu']:.2f} "
        f"({report['wall_seconds']:.0f} s wall, {report['cpu_seconds']:.0f} CPU-s)",
        flush=True,
    )


def ttc_and_variants(
    ttc_cfg: TTCConfig,
    tasks: list[TaskConfig],
    threads: int,
    workers: int,
    *,
    progress: bool,
    ttc_done: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """TTC, then every variant with the NER adapter it wrote; reports in ``tasks`` order.

    With ``workers`` > 1 (our scheduling): fresh (spawned) processes, and the variants that do
    not read the NER adapter (full, task_adapter) start beside TTC instead of after it; the
    ones that do (codeberter, ner_task) are queued once TTC has finished. Every run is seeded
    and single-process, so the reports equal the serial ones (tested).
    """
    if workers <= 1:
        ttc = _run_timed(train_ttc, ttc_cfg, threads, progress)
        if ttc_done:
            ttc_done(ttc)
        rows = []
        for task in tasks:
            rows.append(_run_timed(train_task, _with_ner(task, ttc), threads, progress))
            _variant_done(rows[-1])
        return ttc, rows
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        ttc_future = pool.submit(_run_timed, train_ttc, ttc_cfg, threads, False)
        futures = {
            pool.submit(_run_timed, train_task, task, threads, False): task
            for task in tasks
            if not variant(task.variant).uses_ner
        }
        ttc = ttc_future.result()
        if ttc_done:
            ttc_done(ttc)
        for task in tasks:
            if variant(task.variant).uses_ner:
                reads_ner = _with_ner(task, ttc)
                futures[pool.submit(_run_timed, train_task, reads_ner, threads, False)] = task
        for future in as_completed(futures):
            _variant_done(future.result())
    return ttc, _in_order(futures, tasks)


def _with_ner(task: TaskConfig, ttc: dict[str, Any]) -> TaskConfig:
    return dataclasses.replace(task, ner_adapter=ttc["ner_adapter"])


def _in_order(futures: dict[Future, TaskConfig], tasks: list[TaskConfig]) -> list[dict[str, Any]]:
    by_task = {id(task): future for future, task in futures.items()}
    return [by_task[id(task)].result() for task in tasks]


def _verdict(rows: list[dict[str, Any]]) -> dict[str, float]:
    """BLEU-4 and test-loss differences: with NER adapters minus without (loss: lower is
    better, so a negative loss difference means the NER adapter helped)."""
    test = {r["variant"]: r["test"] for r in rows}
    out = {}
    for ner, base in (("codeberter", "full"), ("ner_task", "task_adapter")):
        if ner in test and base in test:
            out[f"{ner}_minus_{base}_bleu"] = round(test[ner]["bleu"] - test[base]["bleu"], 2)
            if "loss" in test[ner] and "loss" in test[base]:
                out[f"{ner}_minus_{base}_loss"] = round(test[ner]["loss"] - test[base]["loss"], 3)
    return out


def markdown_summary(summary: dict[str, Any]) -> str:
    """The tables printed at the end of the main job."""
    ttc = summary["ttc"]
    test = ttc["test"]
    lines = [
        f"## TTC (NER adapter on {summary['model']}, held-out stdlib modules, "
        f"{ttc['test_tokens']:,} tokens)",
        "",
        "| | accuracy % | macro F1 % | trainable % |",
        "|---|---:|---:|---:|",
        f"| NER adapter + head | {100 * test['accuracy']:.1f} | {100 * test['macro_f1']:.1f} | "
        f"{ttc['trainable_percent']:.2f} |",
        f"| majority type ({ttc['majority_type']}) | {100 * ttc['majority_accuracy']:.1f} | "
        f"{100 * ttc['majority_macro_f1']:.1f} | - |",
        "",
        "| type | " + " | ".join(t for t in TOKEN_TYPES if t in test["per_type_f1"]) + " |",
        "|---|" + "---:|" * len(test["per_type_f1"]),
        "| F1 % | "
        + " | ".join(
            f"{100 * test['per_type_f1'][t]:.0f}" for t in TOKEN_TYPES if t in test["per_type_f1"]
        )
        + " |",
        "",
        "## Code summarization (stdlib function -> first docstring line, split by module)",
        "",
        "| variant | description | test BLEU-4 | test loss | valid BLEU-4 | trainable % | train s "
        "| CPU-s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["variants"]:
        lines.append(
            f"| {r['variant']} | {r['description']} | {r['test']['bleu']:.2f} | "
            f"{r['test'].get('loss', float('nan')):.3f} | {r['valid'].get('bleu', float('nan')):.2f} | {r['trainable_percent']:.2f} | "
            f"{r['train_seconds']:.0f} | {r.get('cpu_seconds', float('nan')):.0f} |"
        )
    verdict = summary["ner_helps"]
    if verdict:
        lines += [
            "",
            "NER adapters, as measured on the test modules (with minus without; BLEU-4 higher is "
            "better, test cross-entropy lower is better):",
        ]
        lines += [f"- {k.replace('_', ' ')}: {v:+.3f}" for k, v in verdict.items()]
    stages = summary.get("stages", {})
    if stages:
        lines += ["", "| stage | wall s | CPU-s |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['wall_s']:.0f} | {v['cpu_s']:.0f} |" for k, v in stages.items()]
    lines += [
        "",
        f"total {summary['total_seconds']:.0f} s wall, {summary.get('total_cpu_seconds', 0):.0f} "
        f"CPU-s (load average at the end: {summary.get('load_average')})",
    ]
    return "\n".join(lines) + "\n"
