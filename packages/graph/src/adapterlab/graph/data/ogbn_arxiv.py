"""ogbn-arxiv from OGB's raw folder, with titles and abstracts from ``titleabs.tsv``.

Expected layout (OGB's download, plus the raw texts OGB links to)::

    root/raw/edge.csv.gz              (src,dst rows, no header)
    root/raw/node-label.csv.gz        (one label per row)
    root/split/time/{train,valid,test}.csv.gz
    root/mapping/nodeidx2paperid.csv.gz   (header: node idx,paper id)
    root/mapping/labelidx2arxivcategeory.csv.gz   (optional label names)
    root/titleabs.tsv(.gz)           (paper id \\t title \\t abstract)
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from .tag import DataFormatError, build_tag, normalise_edges, split_masks

__all__ = ["is_ogbn_arxiv", "load_ogbn_arxiv"]


def _open(path: Path):
    if path.is_file():
        return path.open(encoding="utf-8", newline="")
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        return gzip.open(gz, "rt", encoding="utf-8", newline="")
    raise DataFormatError(f"missing {path} (or {gz.name})")


def is_ogbn_arxiv(root: str | Path) -> bool:
    """True when ``root`` looks like OGB's ogbn-arxiv folder."""
    root = Path(root)
    return (root / "mapping").is_dir() and (root / "raw").is_dir()


def _ints(path: Path, skip_header: bool = False) -> np.ndarray:
    with _open(path) as handle:
        rows = list(csv.reader(handle))
    if skip_header:
        rows = rows[1:]
    try:
        return np.asarray([[int(c) for c in r] for r in rows if r], dtype=np.int64)
    except ValueError as err:
        raise DataFormatError(f"{path}: non-integer value ({err})") from None


def load_ogbn_arxiv(root: str | Path) -> Data:
    """Load ogbn-arxiv with raw texts ("title: abstract") and OGB's time split."""
    root = Path(root)
    labels = _ints(root / "raw" / "node-label.csv").reshape(-1)
    n = len(labels)
    mapping_path = root / "mapping" / "nodeidx2paperid.csv"
    paper_ids = _ints(mapping_path, skip_header=True)
    if len(paper_ids) != n:
        raise DataFormatError(f"{mapping_path}: {len(paper_ids)} rows for {n} nodes")
    texts_by_paper: dict[int, str] = {}
    tsv = root / "titleabs.tsv"
    with _open(tsv) as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or not row[0].strip().isdigit():
                continue  # header or blank
            texts_by_paper[int(row[0])] = f"{row[1].strip()}: {row[2].strip()}"
    texts = []
    for idx, pid in paper_ids:
        if int(pid) not in texts_by_paper:
            raise DataFormatError(f"{tsv}: no title/abstract for paper {pid} (node {idx})")
        texts.append(texts_by_paper[int(pid)])
    edge_index, stats = normalise_edges(_ints(root / "raw" / "edge.csv"), n, "ogbn-arxiv edge.csv")
    split_dir = root / "split" / "time"
    parts = [_ints(split_dir / f"{s}.csv").reshape(-1).tolist() for s in ("train", "valid", "test")]
    masks = split_masks(n, *parts, source=str(split_dir))
    names_path = root / "mapping" / "labelidx2arxivcategeory.csv"
    names = [f"class{i}" for i in range(int(labels.max()) + 1)]
    if names_path.is_file() or names_path.with_name(names_path.name + ".gz").is_file():
        with _open(names_path) as handle:
            rows = list(csv.reader(handle))[1:]
        names = [r[1] for r in rows if len(r) >= 2] or names
    y = torch.from_numpy(labels)
    return build_tag(texts, y, names, edge_index, masks, name="ogbn-arxiv", edge_stats=stats)
