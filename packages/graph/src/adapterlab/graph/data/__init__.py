"""Text-attributed graph loaders: ``load_dataset(root)`` reads any supported layout."""

from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from .generic import is_generic, load_generic, write_generic
from .graphadapter_release import is_graphadapter_release, load_graphadapter_release
from .ogbn_arxiv import is_ogbn_arxiv, load_ogbn_arxiv
from .synth import synthesize_tag
from .tag import DataFormatError, normalise_edges
from .wordnet import WordNetUnavailable, ensure_wordnet

__all__ = [
    "DataFormatError",
    "WordNetUnavailable",
    "ensure_wordnet",
    "load_dataset",
    "normalise_edges",
    "synthesize_tag",
    "write_generic",
]

LAYOUTS = ("auto", "generic", "ogbn-arxiv", "graphadapter")


def load_dataset(
    root: str | Path, layout: str = "auto", *, seed: int = 0, allow_unlabelled: bool = False
) -> Data:
    """Load a TAG folder: ``generic`` (nodes.jsonl + edges.csv), ``ogbn-arxiv`` (OGB's raw
    folder + titleabs.tsv) or ``graphadapter`` (x_text.npy, edge_index.npy, y.npy); ``auto``
    detects the layout. ``seed`` picks the random split where the layout has none;
    ``allow_unlabelled`` declares unlabelled nodes (generic ``"label": null``, otherwise -1),
    which then leave every split."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: no such dataset folder")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "generic" or (layout == "auto" and is_generic(root)):
        data = load_generic(root, seed=seed, allow_unlabelled=allow_unlabelled)
        data.split_name = (
            "split.json" if (root / "split.json").is_file() else f"random-60/20/20-s{seed}"
        )
        return data
    if layout == "ogbn-arxiv" or (layout == "auto" and is_ogbn_arxiv(root)):
        return load_ogbn_arxiv(root, allow_unlabelled=allow_unlabelled)
    if layout == "graphadapter" or (layout == "auto" and is_graphadapter_release(root)):
        data = load_graphadapter_release(root, split=seed, allow_unlabelled=allow_unlabelled)
        data.split_name = f"paper-10/10/80-split{seed}"
        return data
    raise DataFormatError(
        f"{root}: unknown dataset layout (expected nodes.jsonl + edges.csv, OGB's ogbn-arxiv "
        "folder, or GraphAdapter's x_text.npy/edge_index.npy/y.npy)"
    )
