"""SNLI-VE in its released layout (visual entailment over Flickr30k images).

    <root>/snli_ve_{train,dev,test}.jsonl     one SNLI pair per line, with "Flickr30K_ID"
    <flickr>/flickr30k_images/<Flickr30K_ID>.jpg    (default <root>/flickr30k_images)

Each line keeps SNLI's fields; we read ``Flickr30K_ID``, ``sentence2`` (the hypothesis),
``gold_label`` and ``pairID``. ``val`` is accepted for ``dev``.
"""

from __future__ import annotations

from pathlib import Path

from .common import VEExample, read_jsonl, require

__all__ = ["LABELS", "load_snli_ve"]

LABELS = ("entailment", "neutral", "contradiction")


def load_snli_ve(
    root: str | Path, split: str, *, flickr_root: str | Path | None = None
) -> list[VEExample]:
    """Pairs of ``split`` (train, dev/val or test)."""
    root = Path(root)
    name = {"val": "dev"}.get(split, split)
    if name not in ("train", "dev", "test"):
        raise ValueError(f"SNLI-VE split must be train, dev (val) or test, got {split!r}")
    images = Path(flickr_root) if flickr_root else root / "flickr30k_images"
    path = root / f"snli_ve_{name}.jsonl"
    out = []
    for number, row in enumerate(read_jsonl(path), 1):
        for key in ("Flickr30K_ID", "sentence2", "gold_label"):
            require(key in row, path, f"line {number} has no {key!r}")
        label = str(row["gold_label"]).strip().lower()
        require(label in LABELS, path, f"line {number}: gold_label {label!r} not in {LABELS}")
        out.append(
            VEExample(
                pair_id=str(row.get("pairID", number)),
                image=images / f"{row['Flickr30K_ID']}.jpg",
                hypothesis=str(row["sentence2"]),
                label=label,
            )
        )
    return out
