"""The generic TAG layout any user can write: ``nodes.jsonl``, ``edges.csv``, ``split.json``.

- ``nodes.jsonl``: one JSON object per line with ``id`` (0..N-1), ``text`` and ``label`` (a
  string; ``null`` marks an unlabelled node, accepted only when unlabelled nodes are declared
  with ``allow_unlabelled``/``--unlabelled``); other keys are ignored.
- ``edges.csv``: a header with ``src`` and ``dst`` columns (others ignored); edges are undirected.
- ``split.json`` (optional): ``train``, ``val`` and ``test`` id lists; other keys are ignored.
  Without it: a seeded 60/20/20 split.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from .tag import DataFormatError, build_tag, normalise_edges, random_split_masks, split_masks

__all__ = ["is_generic", "load_generic", "write_generic"]


def is_generic(root: str | Path) -> bool:
    """True when ``root`` holds ``nodes.jsonl`` and ``edges.csv``."""
    root = Path(root)
    return (root / "nodes.jsonl").is_file() and (root / "edges.csv").is_file()


def _read_nodes(
    path: Path, label_names: list[str] | None, allow_unlabelled: bool = False
) -> tuple[list[str], list[str | None]]:
    from adapterlab.core.engine import iter_jsonl

    rows: dict[int, tuple[str, str | None]] = {}
    # the core's reader: malformed JSON / non-UTF-8 bytes name the file and line
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("id", "text", "label"):
            if key not in obj or (obj[key] is None and key != "label"):
                raise DataFormatError(f"{where}: missing {key!r}")
        node_id, text, label = obj["id"], obj["text"], obj["label"]
        if label is None and not allow_unlabelled:
            raise DataFormatError(
                f"{where}: node {node_id} has no label (null); declare unlabelled nodes "
                "with --unlabelled"
            )
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 0:
            raise DataFormatError(f"{where}: 'id' must be a non-negative integer")
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(f"{where}: node {node_id} has an empty text")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise DataFormatError(f"{where}: node {node_id} has an empty or non-string label")
        if label is not None and label_names is not None and label not in label_names:
            raise DataFormatError(
                f"{where}: unknown label {label!r} (known: {', '.join(label_names)})"
            )
        if node_id in rows:
            raise DataFormatError(f"{where}: duplicate id {node_id}")
        rows[node_id] = (text, label)
    if not rows:
        raise DataFormatError(f"{path}: the graph is empty (no nodes)")
    n = len(rows)
    missing = sorted(set(range(n)) - set(rows))
    if missing:
        raise DataFormatError(f"{path}: ids must be 0..{n - 1}; missing {missing[:5]}")
    return [rows[i][0] for i in range(n)], [rows[i][1] for i in range(n)]


def _read_edges(path: Path, num_nodes: int) -> np.ndarray:
    from adapterlab.core.engine import open_text

    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataFormatError(f"{path}: empty file (expected a 'src,dst' header)")
        cols = [c.strip() for c in header]
        if "src" not in cols or "dst" not in cols:
            raise DataFormatError(f"{path}:1: header must name 'src' and 'dst' columns, got {cols}")
        i_src, i_dst = cols.index("src"), cols.index("dst")
        out = []
        for lineno, row in enumerate(reader, 2):
            if not row or not any(cell.strip() for cell in row):
                continue
            try:
                src, dst = int(row[i_src]), int(row[i_dst])
            except (ValueError, IndexError):
                raise DataFormatError(
                    f"{path}:{lineno}: expected two integer ids, got {row}"
                ) from None
            if not (0 <= src < num_nodes and 0 <= dst < num_nodes):
                raise DataFormatError(
                    f"{path}:{lineno}: edge ({src}, {dst}) points outside the node range "
                    f"0..{num_nodes - 1}"
                )
            out.append((src, dst))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def load_generic(
    root: str | Path,
    *,
    seed: int = 0,
    label_names: list[str] | None = None,
    allow_unlabelled: bool = False,
) -> Data:
    """Load a generic-layout folder as a TAG ``Data`` (see the module docstring).

    ``label_names`` fixes the label set and its order (unknown labels then raise); by default it
    is the sorted set of labels found. ``allow_unlabelled`` accepts ``"label": null`` (the node
    stays in the graph and leaves every split).
    """
    root = Path(root)
    nodes_path, edges_path = root / "nodes.jsonl", root / "edges.csv"
    for path in (nodes_path, edges_path):
        if not path.is_file():
            raise DataFormatError(
                f"{root}: missing {path.name} (generic layout: nodes.jsonl, edges.csv)"
            )
    texts, labels = _read_nodes(nodes_path, label_names, allow_unlabelled)
    found = {lab for lab in labels if lab is not None}
    names = list(label_names) if label_names is not None else sorted(found)
    index = {name: i for i, name in enumerate(names)}
    y = torch.tensor([-1 if lab is None else index[lab] for lab in labels], dtype=torch.long)
    raw = _read_edges(edges_path, len(texts))
    edge_index, stats = normalise_edges(raw, len(texts), source=str(edges_path))
    split_path = root / "split.json"
    if split_path.is_file():
        try:
            split = json.loads(split_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{split_path}: malformed JSON ({err.msg})") from None
        if not isinstance(split, dict) or any(k not in split for k in ("train", "val", "test")):
            raise DataFormatError(
                f"{split_path}: expected an object with train, val and test lists"
            )
        masks = split_masks(
            len(texts), split["train"], split["val"], split["test"], str(split_path)
        )
        split_source = str(split_path)
    else:
        masks = random_split_masks(len(texts), (0.6, 0.2, 0.2), seed)
        split_source = f"{nodes_path} (seeded 60/20/20 split, no split.json)"
    return build_tag(texts, y, names, edge_index, masks, name=root.name, edge_stats=stats,
                     split_source=split_source)  # fmt: skip


def write_generic(
    root: str | Path,
    texts: list[str],
    labels: list[str],
    edges: np.ndarray,
    split: dict[str, list[int]] | None = None,
) -> Path:
    """Write a generic-layout folder (atomically per file); returns ``root``."""
    from adapterlab.core.engine import atomic_write_json, atomic_write_text

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": i, "text": t, "label": lab}, ensure_ascii=False)
        for i, (t, lab) in enumerate(zip(texts, labels, strict=True))
    ]
    atomic_write_text(root / "nodes.jsonl", "\n".join(lines) + "\n")
    rows = ["src,dst"] + [f"{int(s)},{int(d)}" for s, d in np.asarray(edges).reshape(-1, 2)]
    atomic_write_text(root / "edges.csv", "\n".join(rows) + "\n")
    if split is not None:
        atomic_write_json(root / "split.json", {k: [int(i) for i in v] for k, v in split.items()})
    return root
