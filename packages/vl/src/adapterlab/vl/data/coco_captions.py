"""COCO Captions with Karpathy's split file.

    <coco>/annotations/dataset_coco.json   {"images": [{"filepath", "filename", "cocoid",
                                             "split", "sentences": [{"raw", "tokens"}]}]}
    <coco>/<filepath>/<filename>           e.g. val2014/COCO_val2014_000000391895.jpg

Splits: train, restval, val, test, and ``train+restval`` (BLIP's training set). An image
listed twice (in two splits: a train/test leak) is refused.
"""

from __future__ import annotations

from pathlib import Path

from .common import CaptionExample, read_json, require

__all__ = ["load_coco_captions"]

SPLITS = ("train", "restval", "val", "test", "train+restval")


def load_coco_captions(
    root: str | Path, split: str, *, karpathy: str | Path | None = None
) -> list[CaptionExample]:
    """Images of ``split`` with their reference captions."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"COCO captions split must be one of {SPLITS}, got {split!r}")
    path = Path(karpathy) if karpathy else root / "annotations" / "dataset_coco.json"
    data = read_json(path)
    require(isinstance(data, dict) and isinstance(data.get("images"), list), path,
            "expected {'images': [...]} (Karpathy dataset_coco.json)")  # fmt: skip
    wanted = {"train", "restval"} if split == "train+restval" else {split}
    out = []
    seen: dict[str, str] = {}
    for i, img in enumerate(data["images"]):
        for key in ("filepath", "filename", "split", "sentences"):
            require(key in img, path, f"images[{i}] has no {key!r}")
        key = str(img.get("cocoid", f"{img['filepath']}/{img['filename']}"))
        require(key not in seen, path,
                f"COCO image {key} is listed twice (splits {seen.get(key)!r} and "
                f"{img['split']!r}); an image in two splits leaks between them")  # fmt: skip
        seen[key] = str(img["split"])
        if img["split"] not in wanted:
            continue
        captions = [s.get("raw", "") for s in img["sentences"] if isinstance(s, dict)]
        captions = [c for c in captions if isinstance(c, str) and c.strip()]
        require(bool(captions), path, f"image {img['filename']} has no captions")
        out.append(
            CaptionExample(
                image_id=img.get("cocoid", i),
                image=root / img["filepath"] / img["filename"],
                captions=captions,
            )
        )
    return out
