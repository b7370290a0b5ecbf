"""The in-memory text-attributed graph (TAG): a PyG ``Data`` with raw texts, labels and splits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataFormatError

__all__ = ["DataFormatError", "build_tag", "normalise_edges", "random_split_masks", "split_masks"]

log = logging.getLogger("adapterlab.graph")


def normalise_edges(
    edges: np.ndarray, num_nodes: int, source: str = "edges"
) -> tuple[torch.Tensor, dict[str, int]]:
    """Undirected, self-loop-free, duplicate-free ``edge_index`` (2, E) from (M, 2) ``edges``.

    Returns the edge index (both directions, sorted) and the counts of removed self-loops and
    duplicates (``{"self_loops": ..., "duplicates": ..., "undirected_edges": ...}``).
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
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
    if not masks[0].any():
        raise DataFormatError(f"{source}: the 'train' split is empty")
    return masks[0], masks[1], masks[2]


def build_tag(
    texts: list[str],
    labels: torch.Tensor,
    label_names: list[str],
    edge_index: torch.Tensor,
    masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    name: str,
    edge_stats: dict[str, int] | None = None,
) -> Data:
    """Assemble the PyG ``Data`` every loader returns.

    Fields: ``texts`` (list of str), ``y`` (long), ``label_names``, ``edge_index`` (undirected,
    no self-loops), ``train_mask``/``val_mask``/``test_mask``, ``num_nodes``, ``name`` and
    ``edge_stats``.
    """
    if not texts:
        raise DataFormatError(f"{name}: the graph is empty (no nodes)")
    data = Data(edge_index=edge_index, y=labels.long(), num_nodes=len(texts))
    data.texts = list(texts)
    data.label_names = list(label_names)
    data.train_mask, data.val_mask, data.test_mask = masks
    data.name = name
    data.edge_stats = dict(edge_stats or {})
    return data
