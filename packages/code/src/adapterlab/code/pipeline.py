"""The main job (``run-all`` / ``make train-code``): stdlib data -> TTC -> every variant on
summarization for every seed -> one summary table (``summary.md``, ``summary.json``): mean ±
std per variant, trainable share, and paired with/without-NER comparisons on the same seeds."""

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
from adapterlab.core.engine.seeds import format_mean_std, resolve_seeds

from .comparison import PAPER_DIRECTION, aggregate_variants, paired_comparisons, verdict
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
    seeds = resolve_seeds(cfg.seeds)
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
        seed=seeds[0],  # one NER adapter: the seeds vary the fine-tuning, not TTC
    )
    tasks = [_task(cfg, data, out, name, seed) for seed in seeds for name in names]
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
    variants = aggregate_variants(rows)
    pairs = paired_comparisons(variants)
    summary = {
        "model": cfg.model,
        "seeds": seeds,
        "preset": cfg.preset,
        "ttc": ttc,
        "runs": rows,
        "variants": {
            k: {kk: vv for kk, vv in v.items() if kk != "stats"} for k, v in variants.items()
        },
        "paired": [{**p, "verdict": verdict(p)} for p in pairs],
        "paper_direction": PAPER_DIRECTION,
        "stages": clock.stages,
        "total_seconds": round(time.perf_counter() - clock.start, 1),
        "total_cpu_seconds": round(sum(v["cpu_s"] for v in clock.stages.values()), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }
    atomic_write_json(out / "summary.json", summary)
    text = markdown_summary(summary, variants)
    atomic_write_text(out / "summary.md", text)
    print(text)
    return summary


def _task(cfg: PipelineConfig, data: Path, out: Path, name: str, seed: int) -> TaskConfig:
    """One variant's fine-tuning at one seed (its run folder: ``<out>/<variant>/seed<N>``)."""
    if cfg.preset is not None:  # the preset sets the fine-tuning; the demo's sizes stay out
        return TaskConfig(
            task="summarization", data=str(data), variant=name, model=cfg.model,
            out=str(out / name / f"seed{seed}"), seed=seed, preset=cfg.preset,
        )  # fmt: skip
    return TaskConfig(
        task="summarization",
        data=str(data),
        variant=name,
        model=cfg.model,
        out=str(out / name / f"seed{seed}"),
        decoder_layers=cfg.decoder_layers,
        decoder_ffn=cfg.decoder_ffn,
        decoder_lr=cfg.decoder_lr,
        max_source_length=cfg.max_source_length,
        max_target_length=cfg.max_target_length,
        steps=cfg.task_steps,
        max_train=cfg.train_examples,
        max_eval=cfg.eval_examples,
        max_valid=cfg.valid_examples,
        seed=seed,
    )


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
        f"[3/3] {report['variant']} seed {report['seed']}: test BLEU-4 "
        f"{report['test']['bleu']:.2f}, loss {report['test'].get('loss', float('nan')):.3f} "
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


def markdown_summary(summary: dict[str, Any], variants: dict[str, dict[str, Any]]) -> str:
    """The tables printed at the end of the main job."""
    ttc = summary["ttc"]
    test = ttc["test"]
    seeds = summary["seeds"]
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
        f"## Code summarization (stdlib function -> first docstring line, split by module), "
        f"mean ± std over seeds {', '.join(map(str, seeds))}",
        "",
        "| variant | description | test BLEU-4 | test loss | valid BLEU-4 | trainable % "
        "| paper % | train s / seed | CPU-s (all seeds) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in variants.items():
        st = v["stats"]

        def cell(key: str, digits: int, st: dict = st) -> str:
            return format_mean_std(st[key], digits) if key in st else "-"

        lines.append(
            f"| {name} | {v['description']} | {cell('bleu', 2)} | {cell('loss', 3)} | "
            f"{cell('valid_bleu', 2)} | {v['trainable_percent']:.2f} | {v['paper_trainable']} | "
            f"{v['train_seconds']:.0f} | {v['cpu_seconds']:.0f} |"
        )
    pairs = summary["paired"]
    if pairs:
        lines += [
            "",
            "Paired on the same seeds (with NER minus without; BLEU-4 higher is better, test "
            "cross-entropy lower is better):",
            "",
            "| with NER | without | metric | "
            + " | ".join(f"seed {s}" for s in seeds)
            + " | mean ± std | t | p | NER better | verdict |",
            "|---|---|---|" + "---:|" * len(seeds) + "---:|---:|---:|---:|---|",
        ]
        for p in pairs:
            digits = 3 if p["metric"] == "loss" else 2
            per_seed = " | ".join(f"{p['differences'][str(s)]:+.{digits}f}" for s in seeds)
            t = f"{p['t']:+.2f}" if p["t"] is not None else "-"
            pv = f"{p['p_value']:.3f}" if p["p_value"] is not None else "-"
            lines.append(
                f"| {p['with']} | {p['without']} | {p['metric']} | {per_seed} | "
                f"{p['mean']:+.{digits}f} ± {p['std']:.{digits}f} | {t} | {pv} | "
                f"{p['ner_better_seeds']}/{p['n']} | {p['verdict']} |"
            )
        main = [p for p in pairs if (p["with"], p["without"]) == ("ner_task", "task_adapter")]
        if main:
            said = "; ".join(f"test {p['metric']}: {p['verdict']}" for p in main)
            lines += ["", f"**Did the NER adapter help (ner_task vs task_adapter)?** {said}."]
        lines += ["", f"Paper's direction: {summary['paper_direction']}."]
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
