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


def load_dataset(root: str | Path, layout: str = "auto", *, seed: int = 0) -> Data:
    """Load a TAG folder: ``generic`` (nodes.jsonl + edges.csv), ``ogbn-arxiv`` (OGB's raw
    folder + titleabs.tsv) or ``graphadapter`` (x_text.npy, edge_index.npy, y.npy); ``auto``
    detects the layout. ``seed`` picks the random split where the layout has none."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: no such dataset folder")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "generic" or (layout == "auto" and is_generic(root)):
        return load_generic(root, seed=seed)
    if layout == "ogbn-arxiv" or (layout == "auto" and is_ogbn_arxiv(root)):
        return load_ogbn_arxiv(root)
    if layout == "graphadapter" or (layout == "auto" and is_graphadapter_release(root)):
        return load_graphadapter_release(root, split=seed)
    raise DataFormatError(
        f"{root}: unknown dataset layout (expected nodes.jsonl + edges.csv, OGB's ogbn-arxiv "
        "folder, or GraphAdapter's x_text.npy/edge_index.npy/y.npy)"
    )
