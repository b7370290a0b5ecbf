"""VQAv2 in its released layout, split by Karpathy's COCO split.

    <root>/v2_OpenEnded_mscoco_{train2014,val2014}_questions.json   {"questions": [...]}
    <root>/v2_mscoco_{train2014,val2014}_annotations.json           {"annotations": [...]}
    <coco>/{train2014,val2014}/COCO_{sub}_{image_id:012d}.jpg
    <coco>/annotations/dataset_coco.json                            (Karpathy split, optional)

With the Karpathy file, every question goes to the split of its image (``restval`` counts as
``train``, as BLIP does); an image listed twice (e.g. in train and test, a leak) is refused.
Without it, val2014 is ``test`` and ``val`` is carved out of train2014 by image
(:func:`carve_val`: a fixed, seeded 10 % of its images, at most 5,000), so that validation and
test never coincide and checkpoints are never chosen on the test set.

Every VQAv2 question has 10 human answers; the official accuracy averages over the 10
leave-one-out subsets, so a question with any other number is refused, naming it.
"""

from __future__ import annotations

from pathlib import Path

from .common import DataError, VQAExample, read_json, require

__all__ = ["HUMANS", "carve_val", "karpathy_splits", "load_vqav2"]

SUBSETS = ("train2014", "val2014")
#: human answers per VQAv2 question
HUMANS = 10
#: share and cap of the train2014 images carved out as validation without the Karpathy file
VAL_SHARE, VAL_MAX = 0.1, 5000


def karpathy_splits(path: str | Path) -> dict[int, str]:
    """COCO image id -> Karpathy split (train, restval, val, test)."""
    data = read_json(path)
    path = Path(path)
    require(isinstance(data, dict) and isinstance(data.get("images"), list), path,
            "expected {'images': [...]} (Karpathy dataset_coco.json)")  # fmt: skip
    out: dict[int, str] = {}
    for i, img in enumerate(data["images"]):
        require("cocoid" in img and "split" in img, path, f"images[{i}] lacks cocoid/split")
        cocoid, split = int(img["cocoid"]), str(img["split"])
        if cocoid in out:
            raise DataError(
                path,
                f"COCO image {cocoid} is listed twice (splits {out[cocoid]!r} and "
                f"{split!r}); an image in two splits leaks between them",
            )
        out[cocoid] = split
    return out


def carve_val(image_ids: set, seed: int = 0) -> set:
    """The training image ids held out as validation when no validation split is given (VQAv2
    without the Karpathy file, VizWiz): a seeded ``VAL_SHARE`` of them (at least 1, at most
    ``VAL_MAX``), chosen by image so that no image has questions on both sides."""
    import random

    ids = sorted(image_ids, key=str)
    n = min(VAL_MAX, max(1, round(VAL_SHARE * len(ids))))
    return set(random.Random(seed).sample(ids, n)) if len(ids) > 1 else set()


def _default_coco(root: Path) -> Path:
    sibling = root.parent / "coco"
    return sibling if sibling.is_dir() else root


def load_vqav2(
    root: str | Path,
    split: str,
    *,
    coco_root: str | Path | None = None,
    karpathy: str | Path | None = None,
) -> list[VQAExample]:
    """Questions of ``split`` (train, val or test) with their 10 human answers."""
    root = Path(root)
    coco = Path(coco_root) if coco_root else _default_coco(root)
    if karpathy is None and (coco / "annotations" / "dataset_coco.json").is_file():
        karpathy = coco / "annotations" / "dataset_coco.json"
    image_split = karpathy_splits(karpathy) if karpathy else None
    if split not in ("train", "val", "test"):
        raise ValueError(f"VQAv2 split must be train, val or test, got {split!r}")
    found = False
    out: list[VQAExample] = []
    if image_split is not None:
        wanted = SUBSETS
    else:
        wanted = ("val2014",) if split == "test" else ("train2014",)
    for sub in SUBSETS:
        qpath = root / f"v2_OpenEnded_mscoco_{sub}_questions.json"
        apath = root / f"v2_mscoco_{sub}_annotations.json"
        if not qpath.exists() and not apath.exists():
            continue
        found = True
        if sub in wanted:
            out.extend(_read_subset(qpath, apath, coco, sub, split, image_split))
    if not found:
        raise DataError(
            root,
            "no VQAv2 files (expected v2_OpenEnded_mscoco_train2014_questions.json and "
            "v2_mscoco_train2014_annotations.json, or the val2014 pair)",
        )
    return out


def _read_subset(
    qpath: Path,
    apath: Path,
    coco: Path,
    sub: str,
    split: str,
    image_split: dict[int, str] | None,
) -> list[VQAExample]:
    qdata, adata = read_json(qpath), read_json(apath)
    require(isinstance(qdata, dict) and isinstance(qdata.get("questions"), list), qpath,
            "expected {'questions': [...]}")  # fmt: skip
    require(isinstance(adata, dict) and isinstance(adata.get("annotations"), list), apath,
            "expected {'annotations': [...]}")  # fmt: skip
    answers = {}
    for i, ann in enumerate(adata["annotations"]):
        require("question_id" in ann, apath, f"annotations[{i}] has no question_id")
        given = [a.get("answer") for a in ann.get("answers") or [] if isinstance(a, dict)]
        given = [a for a in given if isinstance(a, str)]
        require(bool(given), apath, f"question {ann['question_id']} has no answers")
        require(len(given) == HUMANS, apath,
                f"question {ann['question_id']} has {len(given)} human answers, VQAv2 has "
                f"{HUMANS} (the official accuracy averages over their leave-one-out subsets)")  # fmt: skip
        answers[ann["question_id"]] = (given, ann)
    held_out: set[int] | None = None
    if image_split is None and sub == "train2014":
        ids = set()
        for i, q in enumerate(qdata["questions"]):
            require("image_id" in q, qpath, f"questions[{i}] has no 'image_id'")
            ids.add(int(q["image_id"]))
        held_out = carve_val(ids)
    out = []
    for i, q in enumerate(qdata["questions"]):
        for key in ("question_id", "image_id", "question"):
            require(key in q, qpath, f"questions[{i}] has no {key!r}")
        qid, image_id = q["question_id"], int(q["image_id"])
        want = split
        if image_split is not None:
            got = image_split.get(image_id)
            if got is None:
                continue
            got = "train" if got == "restval" else got
            if got != want:
                continue
        elif held_out is not None and (image_id in held_out) != (want == "val"):
            continue
        require(qid in answers, apath, f"question {qid} (from {qpath.name}) has no annotation")
        given, ann = answers[qid]
        out.append(
            VQAExample(
                question_id=qid,
                image=coco / sub / f"COCO_{sub}_{image_id:012d}.jpg",
                question=str(q["question"]),
                answers=given,
                question_type=str(ann.get("question_type", "")),
                answer_type=str(ann.get("answer_type", "")),
            )
        )
    return out
