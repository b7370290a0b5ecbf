"""VizWiz-VQA in its released layout.

    <root>/annotations/{train,val,test}.json   [{"image", "question", "answers": [{"answer"}], ...}]
    <root>/{train,val,test}/VizWiz_<split>_<n>.jpg

(``<root>/{split}.json`` next to the image folders is accepted too.) The test split has no
answers; it loads with empty answer lists. Like VQAv2, every answered question has 10 human
answers, and an empty split is refused.
"""

from __future__ import annotations

from pathlib import Path

from .common import VQAExample, read_json, require
from .vqav2 import HUMANS

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
    require(bool(data), path, f"the {split} split has no questions")
    out = []
    for i, item in enumerate(data):
        require(isinstance(item, dict), path, f"item {i} is not an object")
        for key in ("image", "question"):
            require(key in item, path, f"item {i} has no {key!r}")
        answers = [a.get("answer") for a in item.get("answers") or [] if isinstance(a, dict)]
        answers = [a for a in answers if isinstance(a, str)]
        require(bool(answers) or split == "test", path, f"question {item['image']} has no answers")
        require(not answers or len(answers) == HUMANS, path,
                f"question {item['image']} has {len(answers)} human answers, VizWiz has "
                f"{HUMANS} (the official accuracy averages over their leave-one-out subsets)")  # fmt: skip
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
