"""The multi-task main job: every method on VQA + captioning in one model, the frozen
references, optional learning-rate selection on validation, and one table (``multitask.md``,
``metrics.json``)."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import (
    SeedStats,
    aggregate_seeds,
    atomic_write_json,
    atomic_write_text,
    format_mean_std,
)

from ..baselines import question_prior_scores
from ..pipeline import frozen_captioner, paired_on_common_seeds, prepare
from ..train import Prepared
from ..workers import train_runs
from .config import TASK_NAMES, MultiTaskConfig
from .methods import MT_METHODS
from .train import MTJob, _data_config, train_multitask

__all__ = ["mt_markdown_table", "mt_row", "run_multitask", "train_job"]

#: table columns: (metric key, header, scale)
COLUMNS = (
    ("vqa_accuracy", "VQA acc %", 100.0),
    ("cider", "caption CIDEr-D", 1.0),
    ("bleu4", "caption BLEU-4", 100.0),
    ("average", "average (VQA, BLEU-4)", 100.0),
)


def train_job(job: MTJob, prep: Prepared, run_dir: str) -> dict[str, Any]:
    """One run (module level: the worker processes pickle it)."""
    return train_multitask(job, prep, run_dir)


def _run_dir(out: Path, job: MTJob, grid: bool) -> str:
    scale = f"-lrx{job.scale:g}" if grid else ""
    return str(out / f"{job.method}{scale}-seed{job.seed}")


def mt_row(method: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from a method's runs (one per seed): mean ± std of every test metric."""
    by_seed = {r["seed"]: r["test"] for r in results}
    stats = aggregate_seeds(by_seed)
    first = results[0]
    return {
        "method": method,
        "paper_name": MT_METHODS[method].paper_name,
        "percent": first["percent_trainable"],
        "percent_text": first["percent_text"],
        "trainable": first["trainable_params"],
        "lr": first["lr"],
        "seeds": sorted(by_seed),
        "stats": {k: v.to_json() for k, v in stats.items()},
        "seconds": sum(r["train_seconds"] for r in results),
    }


def _cell(row: dict[str, Any], key: str, scale: float) -> str:
    if "stats" in row:
        st = row["stats"].get(key)
        if st is None:
            return "-"
        return format_mean_std(SeedStats(st["mean"], st["std"], st["n"]), 2, scale)
    value = row.get(key)
    return "-" if value is None else f"{scale * value:.2f}"


def mt_markdown_table(rows: list[dict[str, Any]]) -> str:
    """Method | VL-Adapter's name | trainable % (model, text modules) | lr | scores | seconds."""
    lines = [
        "| method | VL-Adapter row | trainable % of model | % without image encoder | lr | "
        + " | ".join(h for _, h, _ in COLUMNS)
        + " | train s |",
        "|---|---|---:|---:|---:|" + "---:|" * len(COLUMNS) + "---:|",
    ]
    for r in rows:
        lr = "-" if r.get("lr") is None else f"{r['lr']:.0e}"
        text = "-" if r.get("percent_text") is None else f"{r['percent_text']:.2f}"
        cells = [_cell(r, key, scale) for key, _, scale in COLUMNS]
        lines.append(
            f"| {r['method']} | {r.get('paper_name', '-')} | {r['percent']:.2f} | {text} | {lr} | "
            + " | ".join(cells)
            + f" | {r.get('seconds', 0):.0f} |"
        )
    return "\n".join(lines)


def paired_lines(rows: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> list[str]:
    """``a - b`` of the average on the same seeds (paired t-test) for each pair with >= 2 seeds."""
    by_name = {r["method"]: r for r in rows if "stats" in r}
    out = []
    for a, b in pairs:
        if a not in by_name or b not in by_name:
            continue
        va, vb = (by_name[m]["stats"]["average"]["values"] for m in (a, b))
        d = paired_on_common_seeds(va, vb)
        if d is None:
            continue
        p = "n/a" if d["p_value"] is None else f"{d['p_value']:.3f}"
        out.append(
            f"{a} - {b} (average, {d['n']} seeds): {100 * d['mean']:+.2f} ± "
            f"{100 * d['std']:.2f} points; p = {p}; {a} ahead on {d['wins']} of {d['n']} seeds."
        )
    return out


def _select_scales(
    cfg: MultiTaskConfig, prep: Prepared, out: Path, workers: int
) -> tuple[dict[str, float], list[dict[str, Any]], list[dict[str, Any]]]:
    """Each method at every ``--lr_scales`` on the first seed; the scale with the best
    validation average wins (test scores are never looked at). Returns the chosen scales, the
    winning runs and the grid's validation scores."""
    seed, scales = cfg.seed_list()[0], cfg.scale_list() or []
    jobs = [
        (MTJob(cfg, m, seed, s), _run_dir(out, MTJob(cfg, m, seed, s), True))
        for m in cfg.method_list()
        for s in scales
    ]
    runs = train_runs(jobs, prep, workers, torch.get_num_threads(), fn=train_job)
    chosen, best, grid = {}, {}, []
    for (job, _), res in zip(jobs, runs, strict=True):
        grid.append({"method": job.method, "lr_scale": job.scale, "lr": job.lr,
                     "val_average": res["val_best"]})  # fmt: skip
        if job.method not in best or res["val_best"] > best[job.method]["val_best"]:
            best[job.method], chosen[job.method] = res, job.scale
    return chosen, list(best.values()), grid


def _grid_table(grid: list[dict[str, Any]]) -> str:
    scales = sorted({g["lr_scale"] for g in grid})
    lines = ["| method | " + " | ".join(f"lr x{s:g}" for s in scales) + " |",
             "|---|" + "---:|" * len(scales)]  # fmt: skip
    for m in dict.fromkeys(g["method"] for g in grid):
        vals = {g["lr_scale"]: g for g in grid if g["method"] == m}
        lines.append(
            f"| {m} | "
            + " | ".join(
                f"{100 * vals[s]['val_average']:.2f} ({vals[s]['lr']:.0e})" if s in vals else "-"
                for s in scales
            )
            + " |"
        )
    return "\n".join(lines)


def run_multitask(cfg: MultiTaskConfig) -> dict[str, Any]:
    """Every method of ``cfg`` on VQA + captioning in one model; writes ``multitask.md`` and
    ``metrics.json`` under ``cfg.out``."""
    if cfg.preset == "paper" and not cfg.embedded and not cfg.pretrained:
        raise ValueError(
            "--preset paper adapts the pre-trained BLIP: convert model_base_capfilt_large.pth "
            "with `adapterlab-vl convert` and pass --pretrained DIR"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prep = prepare(cfg, TASK_NAMES)
    workers = cfg.resolved_workers()
    prior = question_prior_scores(prep.vqa_root, prep.coco_root)
    frozen = frozen_captioner(_data_config(cfg), prep)
    rows: list[dict[str, Any]] = [
        {"method": "frozen: question prior (no image)", "percent": 0.0,
         "vqa_accuracy": prior["vqa_accuracy"]},
        {"method": "frozen: captioner as is", "percent": 0.0, "cider": frozen["cider"],
         "bleu4": frozen["bleu4"]},
    ]  # fmt: skip
    methods, seeds = cfg.method_list(), cfg.seed_list()
    grid: list[dict[str, Any]] = []
    done: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    scales: dict[str, float | None] = {m: None for m in methods}
    if cfg.scale_list():
        chosen, first_runs, grid = _select_scales(cfg, prep, out, workers)
        scales.update(chosen)
        for res in first_runs:
            done[res["method"]].append(res)
    jobs = [
        (MTJob(cfg, m, s, scales[m]), _run_dir(out, MTJob(cfg, m, s, scales[m]), False))
        for m in methods
        for s in (seeds if cfg.seeded(m) else seeds[:1])
        if not any(r["seed"] == s for r in done[m])
    ]
    runs = train_runs(jobs, prep, workers, torch.get_num_threads(), fn=train_job)
    for (job, _), res in zip(jobs, runs, strict=True):
        done[job.method].append(res)
    rows += [mt_row(m, sorted(done[m], key=lambda r: r["seed"])) for m in methods]
    table = mt_markdown_table(rows)
    extra = paired_lines(rows, [("shared", "per_task"), ("shared", "full"), ("per_task", "full")])
    if extra:
        table += "\n\n" + "\n".join(f"- {line}" for line in extra)
    if grid:
        table += (
            "\n\nLearning-rate selection (first seed; validation average %, lr in brackets):\n\n"
            + _grid_table(grid)
        )
    total = time.perf_counter() - start
    recipe = cfg.recipe
    result = {
        "embedded": cfg.embedded,
        "sources": prep.sources,
        "config": cfg.to_dict(),
        "recipe": {**recipe, "hyper": list(recipe["hyper"])},
        "rows": rows,
        "lr_grid": grid,
        "runs": {m: done[m] for m in methods},
        "total_seconds": total,
        "torch_threads": torch.get_num_threads(),
        "workers": workers,
        "machine": platform.processor() or platform.machine(),
    }
    header = (
        "# adapterlab-vl multitask (VL-Adapter's comparison: VQA + captioning in one BLIP)\n\n"
        f"Models: {prep.sources}. Test scores of the best-validation checkpoint (validation "
        "average of VQA accuracy and BLEU-4); mean ± std over seeds "
        f"{', '.join(map(str, seeds))} where a row ran on several, else one seed. CIDEr-D x1 "
        "(as pycocoevalcap prints it).\n\n"
    )
    atomic_write_text(out / "multitask.md", header + table + "\n")
    atomic_write_json(out / "metrics.json", result)
    print()
    print(table)
    print(f"\nWrote {out / 'multitask.md'} and {out / 'metrics.json'} ({total:.0f}s total).")
    return result
