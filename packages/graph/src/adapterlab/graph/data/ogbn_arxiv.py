"""ogbn-arxiv from OGB's raw folder, with titles and abstracts from ``titleabs.tsv``.

Expected layout (OGB's download, plus the raw texts OGB links to)::

    root/raw/edge.csv.gz              (src,dst rows, no header)
    root/raw/node-label.csv.gz        (one label per row)
    root/split/time/{train,valid,test}.csv.gz
    root/mapping/nodeidx2paperid.csv.gz   (header: node idx,paper id)
    root/mapping/labelidx2arxivcategeory.csv.gz   (optional label names)
    root/titleabs.tsv(.gz)           (paper id \\t title \\t abstract)

The split: GraphAdapter's release files ``train.npy``, ``vaild.npy`` (sic) and ``test.npy`` in
``root`` when all three are present (the original's split), OGB's time split otherwise; the one
used is recorded in ``data.split_name``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from torch_geometric.data import Data

from .tag import DataFormatError, build_tag, check_labels, normalise_edges, split_masks

__all__ = ["is_ogbn_arxiv", "load_ogbn_arxiv"]


def _open(path: Path):
    """The core's text reader for ``path`` or ``path.gz`` (a truncated or corrupt gzip stream
    and non-UTF-8 bytes become one-line ``DataFileError``s naming the file)."""
    from adapterlab.core.engine import open_text

    if path.is_file():
        return open_text(path)
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        return open_text(gz)
    raise DataFormatError(f"missing {path} (or {gz.name})")


def is_ogbn_arxiv(root: str | Path) -> bool:
    """True when ``root`` looks like OGB's ogbn-arxiv folder."""
    root = Path(root)
    return (root / "mapping").is_dir() and (root / "raw").is_dir()


def _ints(path: Path, columns: int, skip_header: bool = False) -> np.ndarray:
    """(rows, columns) int64 from a CSV; a row with another number of cells or a non-integer
    cell (NaN too) raises ``DataFormatError`` naming the file and line."""
    out: list[list[int]] = []
    with _open(path) as handle:
        for lineno, row in enumerate(csv.reader(handle), 1):
            if (skip_header and lineno == 1) or not row:
                continue
            if len(row) != columns:
                raise DataFormatError(
                    f"{path}:{lineno}: expected {columns} column(s), got {len(row)}: {row[:4]}"
                )
            try:
                out.append([int(c) for c in row])
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: non-integer value in {row}") from None
    return np.asarray(out, dtype=np.int64).reshape(-1, columns)


RELEASE_SPLIT = ("train.npy", "vaild.npy", "test.npy")


def _release_split(root: Path) -> list[list[int]] | None:
    """The GraphAdapter release's split files (``vaild.npy`` sic), or None when absent."""
    paths = [root / name for name in RELEASE_SPLIT]
    if not all(p.is_file() for p in paths):
        return None
    parts = []
    for p in paths:
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataFormatError(f"{p}: unreadable id array ({err})") from None
        parts.append(_id_list(arr, str(p)))
    return parts


def _id_list(arr: np.ndarray, source: str) -> list[int]:
    """A 1-D integer id array (or a boolean mask) as a list of node ids."""
    arr = np.asarray(arr).reshape(-1)
    if arr.dtype.kind == "b":
        return np.flatnonzero(arr).tolist()
    if arr.dtype.kind not in "iu":
        raise DataFormatError(f"{source}: node ids must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64).tolist()


def load_ogbn_arxiv(root: str | Path, *, allow_unlabelled: bool = False) -> Data:
    """Load ogbn-arxiv with raw texts ("title: abstract"), the release's split files when present
    and OGB's time split otherwise."""
    root = Path(root)
    label_path = root / "raw" / "node-label.csv"
    labels = _ints(label_path, 1).reshape(-1)
    n = len(labels)
    mapping_path = root / "mapping" / "nodeidx2paperid.csv"
    paper_ids = _ints(mapping_path, 2, skip_header=True)
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
    edge_path = root / "raw" / "edge.csv"
    edge_index, stats = normalise_edges(_ints(edge_path, 2), n, str(edge_path))
    release = _release_split(root)
    if release is not None:
        parts, split_name, split_source = release, "graphadapter-release", str(root / "vaild.npy")
    else:
        split_dir = root / "split" / "time"
        parts = [_ints(split_dir / f"{s}.csv", 1).reshape(-1).tolist()
                 for s in ("train", "valid", "test")]  # fmt: skip
        split_name, split_source = "ogb-time", str(split_dir)
    masks = split_masks(n, *parts, source=split_source)
    names_path = root / "mapping" / "labelidx2arxivcategeory.csv"
    names = [f"class{i}" for i in range(int(labels.max()) + 1)]
    if names_path.is_file() or names_path.with_name(names_path.name + ".gz").is_file():
        with _open(names_path) as handle:
            rows = list(csv.reader(handle))[1:]
        names = [r[1] for r in rows if len(r) >= 2] or names
    y = check_labels(labels, len(names), str(label_path), allow_unlabelled=allow_unlabelled)
    data = build_tag(texts, y, names, edge_index, masks, name="ogbn-arxiv", edge_stats=stats,
                     split_source=split_source)  # fmt: skip
    data.split_name = split_name
    return data
