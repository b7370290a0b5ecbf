"""Few-shot subsets and stratified validation splits (seeded, reproducible)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _by_class(labels: Sequence[int]) -> dict[int, np.ndarray]:
    arr = np.asarray(list(labels), dtype=np.int64)
    return {int(c): np.flatnonzero(arr == c) for c in np.unique(arr)}


def few_shot_indices(labels: Sequence[int], k: int, seed: int = 0) -> list[int]:
    """``k`` random indices per class (all of a class that has fewer), sorted. Same seed -> same subset,
    and the k-shot subset is contained in the (k+1)-shot subset of the same seed."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for _, idx in sorted(_by_class(labels).items()):
        chosen.extend(int(i) for i in rng.permutation(idx)[:k])
    return sorted(chosen)


def train_val_split(
    labels: Sequence[int], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Stratified split: about ``val_fraction`` of every class (at least 1 when the class has >= 2 items)
    goes to validation. Returns sorted (train, val) index lists."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for _, idx in sorted(_by_class(labels).items()):
        perm = rng.permutation(idx)
        n_val = 0 if len(perm) < 2 or val_fraction == 0 else max(1, round(val_fraction * len(perm)))
        val.extend(int(i) for i in perm[:n_val])
        train.extend(int(i) for i in perm[n_val:])
    return sorted(train), sorted(val)


def few_shot_split(
    labels: Sequence[int], shots: int, seed: int = 0, val_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """``(shot_indices, val_indices)`` into a training split.

    A stratified validation share is carved first; then at most ``shots`` samples per class are
    drawn (seeded) from the rest. The two never overlap.
    """
    labels = [int(x) for x in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    train_idx, val_idx = train_val_split(labels, val_fraction=val_fraction, seed=seed)
    picked = few_shot_indices([labels[i] for i in train_idx], shots, seed=seed)
    return sorted(train_idx[i] for i in picked), sorted(val_idx)
