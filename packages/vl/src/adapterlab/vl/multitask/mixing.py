"""VL-Adapter's task mixing: single-task batches, round-robin over every batch of every task.

``MultitaskLoader`` of the VL-Adapter code (``multitask_data.py``, sampling "roundrobin"): each
epoch uses every batch of every task exactly once, each task's samples reshuffled, and the
order of the batches shuffled with a RNG seeded per epoch. :func:`round_robin` is that plan;
:class:`TaskBatches` turns it into a map-style dataset whose items are whole single-task batches,
so the core engine (batch size 1, no shuffling of its own) runs it unchanged, with exact resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["TaskBatches", "round_robin", "unwrap_collate"]


def round_robin(
    sizes: Sequence[int], batch_sizes: Sequence[int], *, seed: int, epoch: int, shuffle: bool = True
) -> list[tuple[int, list[int]]]:
    """``(task, sample indices)`` of every batch of one epoch.

    Each task's samples are permuted (seeded by ``(seed, epoch, task)``) and cut into batches of
    its own size (the last may be smaller); the batches of all tasks are then shuffled together
    (seeded by ``(seed, epoch)``). ``shuffle=False``: tasks in order, samples in order (evaluation).
    """
    if len(sizes) != len(batch_sizes) or not sizes:
        raise ValueError(f"one batch size per task: {len(sizes)} tasks, {len(batch_sizes)} sizes")
    plan: list[tuple[int, list[int]]] = []
    for task, (n, b) in enumerate(zip(sizes, batch_sizes, strict=True)):
        if n < 1 or b < 1:
            raise ValueError(f"task {task}: {n} samples, batch size {b} (both must be >= 1)")
        order = (
            np.random.default_rng([seed, epoch, task]).permutation(n) if shuffle else np.arange(n)
        )
        plan += [(task, order[i : i + b].tolist()) for i in range(0, n, b)]
    if shuffle:
        perm = np.random.default_rng([seed, epoch]).permutation(len(plan))
        plan = [plan[i] for i in perm]
    return plan


class TaskBatches(Dataset):
    """Single-task batches as dataset items: item ``i`` is ``(task, [samples])``.

    ``epochs`` epochs of :func:`round_robin` one after the other (train), or one unshuffled
    epoch (``shuffle=False``: evaluation). ``names`` name the tasks in bad-sample messages.
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        batch_sizes: Sequence[int],
        *,
        names: Sequence[str],
        seed: int = 0,
        epochs: int = 1,
        shuffle: bool = True,
    ) -> None:
        self.datasets, self.names = list(datasets), list(names)
        sizes = [len(d) for d in self.datasets]  # type: ignore[arg-type]
        self.plan = [
            batch
            for epoch in range(epochs)
            for batch in round_robin(sizes, batch_sizes, seed=seed, epoch=epoch, shuffle=shuffle)
        ]
        self.batches_per_epoch = len(self.plan) // max(1, epochs)

    def __len__(self) -> int:
        return len(self.plan)

    def describe(self, index: int) -> str:
        task, indices = self.plan[index]
        return f"{self.names[task]} batch of samples {indices[0]}..{indices[-1]}"

    def __getitem__(self, index: int) -> tuple[int, list[Any]]:
        task, indices = self.plan[index]
        return task, [self.datasets[task][i] for i in indices]


def unwrap_collate(
    collate: Callable[[list[Any]], dict[str, torch.Tensor]],
) -> Callable[[list[tuple[int, list[Any]]]], dict[str, torch.Tensor]]:
    """The engine's collate for :class:`TaskBatches` (engine batch size 1): ``collate`` of the
    one batch's samples, plus ``task``, the batch's task id for every sample."""

    def run(items: list[tuple[int, list[Any]]]) -> dict[str, torch.Tensor]:
        if len(items) != 1:
            raise ValueError(f"task batches are collated one at a time, got {len(items)}")
        task, samples = items[0]
        batch = collate(samples)
        batch["task"] = torch.full((len(samples),), task, dtype=torch.long)
        return batch

    return run
