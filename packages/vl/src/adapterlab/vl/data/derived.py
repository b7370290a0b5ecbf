"""SNLI-VE and VizWiz layouts derived from the embedded synthetic VQAv2 scenes (our design), so
that ``--tasks snli_ve,vizwiz`` run offline through the real loaders.

- **VizWiz** (``<root>/vizwiz``): the synthetic questions with their 10 human answers, in
  VizWiz's ``annotations/{train,val,test}.json`` with the images linked into ``{split}/``. As
  in the real release, ``test.json`` has no answers; Karpathy train -> ``train``, val + test ->
  ``val`` (the task scores the official val, see ``train.py``).
- **SNLI-VE** (``<root>/snli_ve``): hypotheses about each image from its colour and "is there"
  questions (the humans' majority answer): "the circle is red" (entailment), "the circle is
  blue" (contradiction), "the circle is made of wood" (neutral: nothing in the image says);
  "there is a red circle" entailment / contradiction. ``snli_ve_{train,dev,test}.jsonl`` with
  ``Flickr30K_ID`` naming linked images in ``flickr30k_images/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .synth import COLORS
from .vqav2 import load_vqav2

__all__ = ["derive_snli_ve", "derive_vizwiz"]

NEUTRAL = ("made of wood", "wet", "heavy")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src.resolve(), dst)


def _splits(root: Path) -> dict[str, list]:
    return {
        s: load_vqav2(root / "vqav2", s, coco_root=root / "coco") for s in ("train", "val", "test")
    }


def derive_vizwiz(root: str | Path) -> Path:
    """Write ``<root>/vizwiz`` from the synthetic VQAv2 data; returns it."""
    root = Path(root)
    out = root / "vizwiz"
    splits = _splits(root)
    layout = {"train": splits["train"], "val": splits["val"] + splits["test"], "test": []}
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, examples in layout.items():
        items = []
        for ex in examples:
            name = f"VizWiz_{split}_{ex.question_id:08d}.jpg"
            _link(ex.image, out / split / name)
            answers = [{"answer": a, "answer_confidence": "yes"} for a in ex.answers]
            items.append({"image": name, "question": ex.question, "answers": answers,
                          "answerable": 1, "answer_type": "other"})  # fmt: skip
        if split == "test":  # the real test split: questions only
            for ex in splits["test"][:8]:
                name = f"VizWiz_test_{ex.question_id:08d}.jpg"
                _link(ex.image, out / "test" / name)
                items.append({"image": name, "question": ex.question})
        (out / "annotations" / f"{split}.json").write_text(json.dumps(items))
    return out


def _hypotheses(question: str, answer: str, qid: int) -> list[tuple[str, str]]:
    if question.startswith("what color is the "):
        shape = question.removeprefix("what color is the ").rstrip("?")
        if answer not in COLORS:
            return []
        other = sorted(c for c in COLORS if c != answer)[qid % 3]
        return [
            (f"the {shape} is {answer}", "entailment"),
            (f"the {shape} is {other}", "contradiction"),
            (f"the {shape} is {NEUTRAL[qid % len(NEUTRAL)]}", "neutral"),
        ]
    if question.startswith("is there a "):
        thing = question.removeprefix("is there a ").rstrip("?")
        label = {"yes": "entailment", "no": "contradiction"}.get(answer)
        return [(f"there is a {thing}", label)] if label else []
    return []


def derive_snli_ve(root: str | Path) -> Path:
    """Write ``<root>/snli_ve`` from the synthetic VQAv2 data; returns it."""
    root = Path(root)
    out = root / "snli_ve"
    out.mkdir(parents=True, exist_ok=True)
    for split, examples in _splits(root).items():
        rows = []
        for ex in examples:
            flickr = f"{ex.question_id}"
            for n, (hyp, label) in enumerate(_hypotheses(ex.question, ex.answer, ex.question_id)):
                _link(ex.image, out / "flickr30k_images" / f"{flickr}.jpg")
                rows.append({"Flickr30K_ID": flickr, "sentence2": hyp, "gold_label": label,
                             "pairID": f"{flickr}#{n}"})  # fmt: skip
        name = {"val": "dev"}.get(split, split)
        (out / f"snli_ve_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out
