"""The in-memory text-attributed graph (TAG): a PyG ``Data`` with raw texts, labels and splits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataFormatError

__all__ = [
    "DataFormatError",
    "build_tag",
    "check_labels",
    "keep_per_class",
    "edge_rows",
    "normalise_edges",
    "random_split_masks",
    "split_masks",
]

log = logging.getLogger("adapterlab.graph")


def normalise_edges(
    edges: np.ndarray, num_nodes: int, source: str = "edges"
) -> tuple[torch.Tensor, dict[str, int]]:
    """Undirected, self-loop-free, duplicate-free ``edge_index`` (2, E) from (M, 2) ``edges``.

    Returns the edge index (both directions, sorted) and the counts of removed self-loops and
    duplicates (``{"self_loops": ..., "duplicates": ..., "undirected_edges": ...}``).
    """
    edges = np.asarray(edges)
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise DataFormatError(
            f"{source}: expected (rows, 2) src/dst pairs, got an array of shape {edges.shape}"
        )
    edges = edges.astype(np.int64)
    if len(edges) and (edges.min() < 0 or edges.max() >= num_nodes):
        bad = int(np.flatnonzero((edges < 0).any(1) | (edges >= num_nodes).any(1))[0])
        raise DataFormatError(
            f"{source}: edge {bad} ({edges[bad, 0]}, {edges[bad, 1]}) points outside the node "
            f"range 0..{num_nodes - 1}"
        )
    loops = edges[:, 0] == edges[:, 1]
    kept = edges[~loops]
    lo, hi = np.minimum(kept[:, 0], kept[:, 1]), np.maximum(kept[:, 0], kept[:, 1])
    keys = np.unique(lo * num_nodes + hi)
    stats = {
        "rows": int(len(edges)),
        "self_loops": int(loops.sum()),
        "duplicates": int(len(kept) - len(keys)),
        "undirected_edges": int(len(keys)),
    }
    src, dst = keys // num_nodes, keys % num_nodes
    both = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])
    order = np.lexsort((both[0], both[1]))  # sorted by target, then source
    if stats["self_loops"] or stats["duplicates"]:
        log.info(
            "%s: removed %d self-loops and %d duplicate edges",
            source,
            stats["self_loops"],
            stats["duplicates"],
        )
    return torch.from_numpy(both[:, order].copy()), stats


def random_split_masks(
    num_nodes: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded random train/val/test masks with the given fractions (the rest of the nodes go to
    test)."""
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    n_train = int(round(fractions[0] * num_nodes))
    n_val = int(round(fractions[1] * num_nodes))
    masks = [torch.zeros(num_nodes, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[:n_train]] = True
    masks[1][perm[n_train : n_train + n_val]] = True
    masks[2][perm[n_train + n_val :]] = True
    return masks[0], masks[1], masks[2]


def split_masks(
    num_nodes: int, train: Sequence[int], val: Sequence[int], test: Sequence[int], source: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masks from id lists; ids out of range or in two splits raise ``DataFormatError``."""
    masks = []
    seen = torch.zeros(num_nodes, dtype=torch.bool)
    for name, ids in (("train", train), ("val", val), ("test", test)):
        ids_t = torch.as_tensor(list(ids), dtype=torch.long)
        if len(ids_t) and (ids_t.min() < 0 or ids_t.max() >= num_nodes):
            raise DataFormatError(f"{source}: {name!r} holds ids outside 0..{num_nodes - 1}")
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[ids_t] = True
        if (mask & seen).any():
            raise DataFormatError(f"{source}: {name!r} shares ids with an earlier split")
        seen |= mask
        masks.append(mask)
    return masks[0], masks[1], masks[2]


def edge_rows(array: np.ndarray, source: str) -> np.ndarray:
    """(M, 2) int64 src/dst rows from an edge array: (2, E) as PyG's ``edge_index`` (the
    original's layout; a (2, 2) array is read this way too) or (E, 2) rows. Any other shape,
    a non-integer value or NaN raises ``DataFormatError`` (nothing is reshaped silently)."""
    arr = np.asarray(array)
    if arr.ndim != 2 or 2 not in arr.shape:
        raise DataFormatError(
            f"{source}: expected a (2, E) or (E, 2) array of node ids, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = tuple(int(v) for v in np.argwhere(bad)[0])
            raise DataFormatError(
                f"{source}: entry {i} = {arr[i].item()!r} is not an integer node id"
            )
    elif arr.dtype.kind not in "iu":
        raise DataFormatError(f"{source}: node ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    return arr.T.copy() if arr.shape[0] == 2 else arr


def check_labels(
    labels: np.ndarray | torch.Tensor,
    num_classes: int | None,
    source: str,
    *,
    allow_unlabelled: bool = False,
) -> torch.Tensor:
    """Labels as int64 in [0, C), or -1 for a declared unlabelled node. NaN, fractions, and any
    label outside [0, C) (-1 too, unless ``allow_unlabelled``) raise ``DataFormatError`` naming
    ``source`` and the node. ``num_classes`` None: C = the largest label + 1."""
    arr = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    arr = arr.reshape(-1)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{source}: node {i} has label {arr[i].item()!r}, not an integer")
    elif arr.dtype.kind not in "iub":
        raise DataFormatError(f"{source}: labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    unlabelled = arr == -1
    known = arr[~unlabelled]
    c = int(known.max()) + 1 if num_classes is None and len(known) else int(num_classes or 0)
    bad = (arr < 0) | (arr >= c)
    if allow_unlabelled:
        bad &= ~unlabelled
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hint = " (declare unlabelled nodes with --unlabelled)" if arr[i] == -1 else ""
        raise DataFormatError(f"{source}: node {i} has label {int(arr[i])}, outside [0, {c}){hint}")
    if not len(known):
        raise DataFormatError(f"{source}: no node has a label")
    return torch.from_numpy(arr)


def build_tag(
    texts: list[str],
    labels: torch.Tensor,
    label_names: list[str],
    edge_index: torch.Tensor,
    masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    name: str,
    edge_stats: dict[str, int] | None = None,
    split_source: str | None = None,
) -> Data:
    """Assemble the PyG ``Data`` every loader returns.

    Fields: ``texts`` (list of str), ``y`` (long), ``label_names``, ``edge_index`` (undirected,
    no self-loops), ``train_mask``/``val_mask``/``test_mask``, ``num_nodes``, ``name`` and
    ``edge_stats``, ``unlabelled`` (count) and ``split_sizes``.

    Labels must be in [0, len(label_names)) or -1 (a declared unlabelled node: it is dropped from
    every split, so from every loss and metric). An empty train, val or test split raises
    ``DataFormatError`` naming ``split_source`` (a table of NaN would follow).
    """
    if not texts:
        raise DataFormatError(f"{name}: the graph is empty (no nodes)")
    labels = labels.long()
    if len(labels) != len(texts):
        raise DataFormatError(f"{name}: {len(labels)} labels for {len(texts)} nodes")
    bad = (labels < -1) | (labels >= len(label_names))
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise DataFormatError(
            f"{name}: node {i} has label {int(labels[i])}, outside [0, {len(label_names)})"
        )
    labelled = labels >= 0
    masks = tuple(m & labelled for m in masks)
    where = split_source or f"{name} (its split)"
    for split, mask in zip(("train", "val", "test"), masks, strict=True):
        if not mask.any():
            raise DataFormatError(f"{where}: the {split!r} split has no labelled node")
    data = Data(edge_index=edge_index, y=labels, num_nodes=len(texts))
    data.texts = list(texts)
    data.label_names = list(label_names)
    data.train_mask, data.val_mask, data.test_mask = masks
    data.name = name
    data.edge_stats = dict(edge_stats or {})
    data.unlabelled = int((~labelled).sum())
    data.split_sizes = {
        s: int(m.sum()) for s, m in zip(("train", "val", "test"), masks, strict=True)
    }
    return data


def keep_per_class(data: Data, per_class: int, seed: int = 0) -> Data:
    """Keep ``per_class`` training nodes of each class (seeded draw; all of a class when it has
    fewer): the semi-supervised protocol. The other training nodes leave every split (their
    texts still feed the LLM cache and pre-training, which use no labels)."""
    if per_class <= 0:
        return data
    gen = torch.Generator().manual_seed(seed)
    keep = torch.zeros_like(data.train_mask)
    for c in range(len(data.label_names)):
        ids = (data.train_mask & (data.y == c)).nonzero().view(-1)
        keep[ids[torch.randperm(len(ids), generator=gen)[:per_class]]] = True
    data.train_mask = keep
    data.split_sizes = dict(getattr(data, "split_sizes", {}), train=int(keep.sum()))
    return data
