"""Instagram and Reddit as released with GraphAdapter: ``x_text.npy`` (node texts),
``edge_index.npy`` ((E, 2) or (2, E) ints) and ``y.npy`` (labels), with the paper's 10/10/80
random splits (``numpy.random.seed(split); randint(0, 100, n)``; five seeds 0..4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from .tag import DataFormatError, build_tag, check_labels, edge_rows, normalise_edges

__all__ = ["is_graphadapter_release", "load_graphadapter_release", "paper_split_masks"]


def is_graphadapter_release(root: str | Path) -> bool:
    """True when ``root`` holds ``x_text.npy``, ``edge_index.npy`` and ``y.npy``."""
    root = Path(root)
    return all((root / f).is_file() for f in ("x_text.npy", "edge_index.npy", "y.npy"))


def paper_split_masks(
    n: int, split: int, train_pct: int = 10, val_pct: int = 10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original code's random split: each node draws an integer in [0, 100)."""
    draws = np.random.RandomState(split).randint(0, 100, (n,))
    train = torch.from_numpy(draws < train_pct)
    val = torch.from_numpy((draws >= train_pct) & (draws < train_pct + val_pct))
    return train, val, torch.from_numpy(draws >= train_pct + val_pct)


def load_graphadapter_release(
    root: str | Path, *, split: int = 0, allow_unlabelled: bool = False
) -> Data:
    """Load a GraphAdapter release folder (``instagram`` or ``reddit``) as a TAG. Labels must be
    integers in [0, C) (C = largest + 1), or -1 for unlabelled nodes when ``allow_unlabelled``;
    ``edge_index.npy`` is (2, E) as the original's PyG ``edge_index`` (or (E, 2))."""
    root = Path(root)
    loaded = {}
    for name in ("x_text.npy", "edge_index.npy", "y.npy"):
        try:
            loaded[name] = np.load(root / name, allow_pickle=False)
        except ValueError:
            raise DataFormatError(
                f"{root / name}: holds Python objects; re-save it as a plain array "
                "(object arrays are not unpickled for safety)"
            ) from None
        except OSError as err:
            raise DataFormatError(f"{root / name}: unreadable ({err})") from None
    texts = [str(t) for t in loaded["x_text.npy"].tolist()]
    y_raw = loaded["y.npy"]
    if y_raw.ndim != 1 and not (y_raw.ndim == 2 and y_raw.shape[1] == 1):
        raise DataFormatError(f"{root / 'y.npy'}: expected one label per node, shape {y_raw.shape}")
    y = check_labels(y_raw, None, str(root / "y.npy"), allow_unlabelled=allow_unlabelled).numpy()
    if len(y) != len(texts):
        raise DataFormatError(f"{root / 'y.npy'}: {len(y)} labels for {len(texts)} texts")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise DataFormatError(f"{root / 'x_text.npy'}: node {empty[0]} has an empty text")
    edges = edge_rows(loaded["edge_index.npy"], str(root / "edge_index.npy"))
    edge_index, stats = normalise_edges(edges, len(texts), str(root / "edge_index.npy"))
    names = [f"class{i}" for i in range(int(y.max()) + 1)]
    return build_tag(
        texts, torch.from_numpy(y), names, edge_index, paper_split_masks(len(y), split),
        name=root.name, edge_stats=stats,
        split_source=f"{root / 'y.npy'} (the paper's 10/10/80 random split {split})",
    )  # fmt: skip
