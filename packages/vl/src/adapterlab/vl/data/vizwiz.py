"""VizWiz-VQA in its released layout.

    <root>/annotations/{train,val,test}.json   [{"image", "question", "answers": [{"answer"}], ...}]
    <root>/{train,val,test}/VizWiz_<split>_<n>.jpg

(``<root>/{split}.json`` next to the image folders is accepted too.) The test split has no
answers; it loads with empty answer lists.
"""

from __future__ import annotations

from pathlib import Path

from .common import VQAExample, read_json, require

__all__ = ["load_vizwiz"]


def load_vizwiz(root: str | Path, split: str) -> list[VQAExample]:
    """Questions of ``split`` (train, val or test) with their human answers."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise ValueError(f"VizWiz split must be train, val or test, got {split!r}")
    path = root / "annotations" / f"{split}.json"
    if not path.is_file() and (root / f"{split}.json").is_file():
        path = root / f"{split}.json"
    data = read_json(path)
    require(isinstance(data, list), path, "expected a JSON list of questions")
    out = []
    for i, item in enumerate(data):
        require(isinstance(item, dict), path, f"item {i} is not an object")
        for key in ("image", "question"):
            require(key in item, path, f"item {i} has no {key!r}")
        answers = [a.get("answer") for a in item.get("answers") or [] if isinstance(a, dict)]
        answers = [a for a in answers if isinstance(a, str) and a.strip()]
        require(bool(answers) or split == "test", path, f"question {item['image']} has no answers")
        out.append(
            VQAExample(
                question_id=str(item["image"]),
                image=root / split / str(item["image"]),
                question=str(item["question"]),
                answers=answers,
                answer_type=str(item.get("answer_type", "")),
            )
        )
    return out
