"""Data plumbing: deterministic global batches, per-process shards, and bad-sample guarding.

The engine does its own batching instead of ``accelerate``'s dataloader preparation so that the
data order is a pure function of ``(seed, epoch)`` and independent of the number of processes:
every process builds the same list of *global* batches and takes its contiguous slice of each.
Resuming mid-epoch starts the loader at the next unseen batch, so nothing is replayed.
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    default_collate,
    default_convert,
    get_worker_info,
)

from .errors import BadSampleError
from .seeding import derive_seed, seed_sample

__all__ = [
    "BatchPlan",
    "DataSource",
    "GuardedCollate",
    "GuardedDataset",
    "LoadedBatch",
    "as_source",
    "batch_size_of",
    "describe_sample",
    "make_loader",
    "shard_indices",
    "split_collate",
]


@dataclass
class DataSource:
    """A map-style dataset and the collate function that batches its items."""

    dataset: Dataset
    collate_fn: Callable[[list[Any]], Any]


def _own_collate(loader: DataLoader) -> Callable | None:
    """The collate_fn a DataLoader was given, or None when it holds torch's default."""
    fn = loader.collate_fn
    return None if fn in (default_collate, default_convert) else fn


def split_collate(
    collate_fn: Callable | Mapping[str, Callable] | None, split: str
) -> Callable | None:
    """The collate function for ``split``: a mapping is looked up by split name (``"eval"`` also
    serves ``"test"`` when the mapping has no ``"test"``); a callable serves every split."""
    if collate_fn is None or callable(collate_fn):
        return collate_fn
    if split in collate_fn:
        return collate_fn[split]
    if split == "test" and "eval" in collate_fn:
        return collate_fn["eval"]
    return None


def as_source(
    data: Any, collate_fn: Callable | Mapping[str, Callable] | None, split: str
) -> DataSource | None:
    """Accept a map-style ``Dataset`` or a ``DataLoader`` (its dataset and collate_fn are used;
    batching, shuffling and sharding are the engine's, which exact resume needs).

    The collate function of a split is, first to last: the DataLoader's own ``collate_fn`` (one
    given to it, not torch's default), then ``collate_fn`` (a callable, or a mapping from split
    name to callable), then ``default_collate``.
    """
    if data is None:
        return None
    fallback = split_collate(collate_fn, split)
    if isinstance(data, DataLoader):
        sampler = data.sampler
        if not isinstance(sampler, SequentialSampler | RandomSampler):
            raise ValueError(
                f"{split} DataLoader uses a {type(sampler).__name__}; the engine builds its own "
                "deterministic, sharded batches, so pass the Dataset (and collate_fn) instead"
            )
        return DataSource(data.dataset, _own_collate(data) or fallback or default_collate)
    if isinstance(data, IterableDataset):
        raise ValueError(
            f"{split} data is an IterableDataset; the engine needs a map-style Dataset "
            "(__len__ and __getitem__) for exact resume and bad-sample indices"
        )
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise ValueError(
            f"{split} data must be a map-style Dataset or a DataLoader, got {type(data)}"
        )
    return DataSource(data, fallback or default_collate)


def describe_sample(dataset: Any, index: int) -> str:
    """``dataset.describe(index)`` when the dataset offers it (e.g. the file path), else ''."""
    describe = getattr(dataset, "describe", None)
    if not callable(describe):
        return ""
    try:
        return str(describe(index))
    except Exception as err:  # noqa: BLE001 - a failing describe must not hide the real error
        return f"<describe({index}) failed: {err}>"


def _where(split: str, dataset: Any, index: int) -> str:
    source = describe_sample(dataset, index)
    return f"{split} sample {index}" + (f" ({source})" if source else "")


class GuardedDataset(Dataset):
    """Wraps a dataset: items come back as ``(ok, index, item_or_message)``.

    A raising item becomes :class:`BadSampleError` naming split, index and source, or (with
    ``skip``) a marker the collate function drops and counts. In a worker process each item is
    drawn under a seed derived from ``(seed, epoch, index)``.
    """

    def __init__(self, dataset: Dataset, split: str, skip: bool, seed: int) -> None:
        self.dataset = dataset
        self.split = split
        self.skip = skip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[bool, int, Any]:
        if get_worker_info() is not None:
            seed_sample(self.seed, self.epoch, index)
        try:
            return True, index, self.dataset[index]
        except Exception as err:  # noqa: BLE001 - any failure of user data is reported
            message = (
                f"{_where(self.split, self.dataset, index)} failed: {type(err).__name__}: {err}"
            )
            if self.skip:
                return False, index, message
            raise BadSampleError(message) from err


class LoadedBatch(NamedTuple):
    """A collated batch, the dataset indices in it, and the ``(index, message)`` of skipped items."""

    data: Any
    indices: list[int]
    skipped: list[tuple[int, str]]


class GuardedCollate:
    """Drops skipped items, collates the rest; a failing collate names the batch's samples."""

    def __init__(self, collate_fn: Callable, split: str, dataset: Any, skip: bool) -> None:
        self.collate_fn = collate_fn
        self.split = split
        self.dataset = dataset
        self.skip = skip

    def __call__(self, items: list[tuple[bool, int, Any]]) -> LoadedBatch:
        good = [(i, x) for ok, i, x in items if ok]
        skipped = [(i, x) for ok, i, x in items if not ok]
        if not good:
            return LoadedBatch(None, [], skipped)
        try:
            data = self.collate_fn([x for _, x in good])
        except Exception as err:  # noqa: BLE001
            where = ", ".join(_where(self.split, self.dataset, i) for i, _ in good[:8])
            message = f"collating {where}{' ...' if len(good) > 8 else ''} failed: {type(err).__name__}: {err}"
            if self.skip:
                return LoadedBatch(None, [], skipped + [(i, message) for i, _ in good])
            raise BadSampleError(message) from err
        return LoadedBatch(data, [i for i, _ in good], skipped)


class BatchPlan:
    """The global batches of every epoch, and each process's slice of them."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        world_size: int,
    ) -> None:
        if size == 0:
            raise ValueError("the training dataset is empty")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size={batch_size} (global) must be divisible by the {world_size} processes"
            )
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.drop_last, self.seed, self.world_size = drop_last, seed, world_size
        if len(self.epoch_batches(0)) == 0:
            raise ValueError(
                f"{size} training samples do not fill one batch of {batch_size} (drop_last=True)"
            )

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Global batches of ``epoch`` (a permutation seeded by ``(seed, epoch)`` when shuffling)."""
        if self.shuffle:
            order = np.random.default_rng(derive_seed(self.seed, epoch)).permutation(self.size)
        else:
            order = np.arange(self.size)
        batches = [
            order[i : i + self.batch_size].tolist() for i in range(0, self.size, self.batch_size)
        ]
        last = batches[-1]
        if len(last) < self.batch_size and (self.drop_last or len(last) < self.world_size):
            batches.pop()
        return batches

    def num_batches(self) -> int:
        """Micro-batches per epoch (the same every epoch)."""
        full, rest = divmod(self.size, self.batch_size)
        keep_rest = rest and not self.drop_last and rest >= self.world_size
        return full + (1 if keep_rest else 0)

    def steps_per_epoch(self, grad_accum: int) -> int:
        """Optimiser steps per epoch."""
        return math.ceil(self.num_batches() / grad_accum)

    def local(self, batch: Sequence[int], rank: int) -> list[int]:
        """This process's contiguous slice of a global batch."""
        n = len(batch)
        return list(batch[rank * n // self.world_size : (rank + 1) * n // self.world_size])


def shard_indices(size: int, rank: int, world_size: int) -> list[int]:
    """Contiguous evaluation shard of ``rank`` (concatenating the shards in rank order restores
    the dataset order)."""
    return list(range(rank * size // world_size, (rank + 1) * size // world_size))


def _worker_init(worker_id: int) -> None:
    """Workers ignore SIGINT (Ctrl-C reaches the whole process group): the main process handles
    it by checkpointing first. SIGTERM keeps its default, which torch uses to end workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def loader_iter(loader: DataLoader) -> Iterator[Iterator[Any]]:
    """Iterate ``loader``; its worker processes are shut down on exit, also when an error
    propagates (the traceback would otherwise keep them alive and hang interpreter exit)."""
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        del iterator


def make_loader(
    guarded: GuardedDataset,
    collate: GuardedCollate,
    batches: list[list[int]],
    *,
    epoch: int,
    num_workers: int,
    pin_memory: bool,
) -> DataLoader:
    """A ``DataLoader`` over explicit index batches (its generator is seeded, so creating it
    never consumes the global torch RNG)."""
    guarded.epoch = epoch
    return DataLoader(
        guarded,
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(derive_seed(guarded.seed, epoch, 1)),
        worker_init_fn=_worker_init if num_workers > 0 else None,
    )


def batch_size_of(data: Any) -> int:
    """Number of samples in a collated batch (first dimension of its first tensor, or its length)."""
    if isinstance(data, torch.Tensor):
        return int(data.shape[0]) if data.dim() else 1
    if isinstance(data, dict):
        for value in data.values():
            return batch_size_of(value)
    if isinstance(data, list | tuple) and data:
        first = data[0]
        if isinstance(first, torch.Tensor | dict | list | tuple):
            return batch_size_of(first)
        return len(data)
    raise ValueError(f"cannot tell the batch size of a {type(data).__name__}")
