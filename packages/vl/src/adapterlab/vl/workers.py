"""Train a sweep's runs ``workers`` at a time in fresh (spawned) processes (our design).

The tiny BLIP runs on one torch thread (its small matrices only lose time to threads), so on a
2-core machine two runs side by side halve the sweep's wall time. Every run is seeded, so the
scores equal a serial sweep's (tested). Each worker reads and preprocesses a task's data once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from .train import Prepared, train

__all__ = ["train_runs"]

_WORKER_PREP: Prepared | None = None


def _init_worker(prep: Prepared, threads: int) -> None:
    global _WORKER_PREP
    torch.set_num_threads(threads)
    _WORKER_PREP = prep


def _train_in_worker(fn: Callable, cfg: Any, run_dir: str) -> dict[str, Any]:
    assert _WORKER_PREP is not None, "worker not initialised"
    return fn(cfg, _WORKER_PREP, run_dir)


def train_runs(
    jobs: list[tuple[Any, str]],
    prep: Prepared,
    workers: int,
    threads: int,
    fn: Callable[[Any, Prepared, str], dict[str, Any]] = train,
) -> list[dict[str, Any]]:
    """Results of ``fn`` (default :func:`train`) for each ``(config, run_dir)`` of ``jobs``, in
    ``jobs`` order; ``workers`` processes with ``threads`` torch threads each (1 worker: in this
    process). ``fn`` must be a module-level function (it is pickled); a config has ``task`` and
    ``method``. Each result is printed as it arrives."""
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for cfg, run_dir in jobs:
            print(f"[vl] {cfg.task} / {cfg.method}: training", flush=True)
            results.append(fn(cfg, prep, run_dir))
            _report(cfg, results[-1])
        return results
    light = Prepared(prep.vqa_root, prep.coco_root, prep.sources)  # tensors stay here
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    print(f"[vl] training {len(jobs)} runs, {workers} at a time (spawned processes)", flush=True)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(light, threads)
    ) as pool:
        futures = [pool.submit(_train_in_worker, fn, cfg, run_dir) for cfg, run_dir in jobs]
        results = []
        for (cfg, _), future in zip(jobs, futures, strict=True):
            results.append(future.result())
            _report(cfg, results[-1])
    return results


def _report(cfg: Any, result: dict[str, Any]) -> None:
    seconds = result.get("train_seconds", 0.0)
    print(f"[vl] {cfg.task} / {cfg.method}: test {result['test']} ({seconds:.0f} s)", flush=True)
