"""The embedded default: procedurally drawn scenes of coloured shapes, written in the real
on-disk layouts of VQAv2 (questions + annotations json, COCO images) and COCO Captions
(Karpathy ``dataset_coco.json``), so the real loaders read them.

Scenes hold one to three shapes (circle, square, triangle in red, green, blue, yellow) on a
3 x 3 grid; two-shape scenes share a row or a column, so "left of" / "above" are unambiguous.

- Karpathy ``restval`` images carry captions in style A ("a red circle left of a blue square"):
  the captioning pre-training of the tiny BLIP.
- ``train`` / ``val`` / ``test`` images carry captions in style B ("there is a red circle to the
  left of a blue square") and three VQAv2 questions each (colour, shape, count, yes/no,
  position), answered by 10 simulated humans who are right 90 % of the time.

Distractors (the default; ``SynthSpec.distractors``): every ``train`` / ``val`` / ``test`` image
also holds many small shapes in four other colours (grey, purple, brown, black), scattered over
the grid cells that no target shape occupies. Questions and captions are about the large shapes
only, so the few patches that answer a question compete, in every cross-attention, with many
salient patches that never do: the attention graphs the p-adapter paper is about (pGNN's
heterophilic neighbourhoods). The ``restval`` images of the pre-training stay clean, so the
frozen model's attention has never learnt to ignore the clutter (our design).

Answers are balanced within each question type (our design, in the spirit of VQAv2's
complementary pairs, which exist to stop a question-only prior from scoring): one, two or three
shapes are equally likely, "is there a ...?" is true half of the time, and colours, shapes and
relations are drawn uniformly. The question prior still scores about 47 % under the official
metric (partial credit from the 10 % noisy humans), which leaves room to see
whether a method looks at the image.

``scenes.json`` (next to ``coco/`` and ``vqav2/``, outside the real layouts) keeps the drawn
objects (and distractors) of the ``restval`` and ``train`` images only: the ground truth the pre-training may use
(:func:`scene_statements`). Scenes of ``val`` / ``test`` images are not written anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from adapterlab.core.engine import atomic_directory
from PIL import Image, ImageDraw

__all__ = [
    "DISTRACTOR_COLORS",
    "QUESTION_TYPES",
    "SCENE_SPLITS",
    "SynthSpec",
    "read_scenes",
    "scene_statements",
    "synthesize",
]

COLORS = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 225),
    "yellow": (230, 200, 30),
}
SHAPES = ("circle", "square", "triangle")
#: colours of the distractor shapes: none is a colour any question or caption names
DISTRACTOR_COLORS = {
    "grey": (120, 120, 120),
    "purple": (135, 55, 165),
    "brown": (125, 80, 40),
    "black": (25, 25, 25),
}
NUMBERS = {1: "one", 2: "two", 3: "three"}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
#: the splits whose scene ground truth is written to ``scenes.json`` (pre-training may use them)
SCENE_SPLITS = ("restval", "train")
#: version of the written layout (part of the reuse key: a folder of an older layout is rebuilt)
FORMAT = 3


@dataclass(frozen=True)
class SynthSpec:
    """Sizes of the generated dataset."""

    image_size: int = 48
    restval: int = 800
    train: int = 500
    val: int = 100
    test: int = 150
    questions_per_image: int = 3
    human_accuracy: float = 0.9
    #: at most this many distractor shapes per train / val / test image (drawn uniformly from
    #: half of it to all of it); 0: the clean scenes. ``restval`` images never have any.
    distractors: int = 12
    seed: int = 0

    def key(self) -> str:
        return json.dumps({**self.__dict__, "format": FORMAT}, sort_keys=True)


def _scene(rng: np.random.Generator) -> list[dict]:
    count = int(rng.integers(1, 4))  # uniform: "how many" has no majority answer
    pairs = [(c, s) for c in COLORS for s in SHAPES]
    picks = rng.choice(len(pairs), size=count, replace=False)
    if count == 2:
        if rng.random() < 0.5:  # same row
            row = int(rng.integers(3))
            cols = rng.choice(3, size=2, replace=False)
            cells = [(row, int(cols[0])), (row, int(cols[1]))]
        else:
            col = int(rng.integers(3))
            rows = rng.choice(3, size=2, replace=False)
            cells = [(int(rows[0]), col), (int(rows[1]), col)]
    else:
        flat = rng.choice(9, size=count, replace=False)
        cells = [(int(f) // 3, int(f) % 3) for f in flat]
    objs = [{"color": pairs[p][0], "shape": pairs[p][1], "cell": c} for p, c in zip(picks, cells)]
    return sorted(objs, key=lambda o: (o["cell"][0], o["cell"][1]))


def _distractors(objs: list[dict], most: int, rng: np.random.Generator) -> list[dict]:
    """Small shapes in :data:`DISTRACTOR_COLORS` at random points of the grid cells no target
    occupies (``xy`` in cell units, ``radius`` as a share of a cell)."""
    if most <= 0:
        return []
    taken = {tuple(o["cell"]) for o in objs}
    free = [(r, c) for r in range(3) for c in range(3) if (r, c) not in taken]
    count = int(rng.integers(max(1, most // 2), most + 1))
    out = []
    for _ in range(count):
        r, c = free[int(rng.integers(len(free)))]
        out.append(
            {
                "color": str(rng.choice(list(DISTRACTOR_COLORS))),
                "shape": str(rng.choice(SHAPES)),
                "xy": [c + float(rng.uniform(0.2, 0.8)), r + float(rng.uniform(0.2, 0.8))],
                "radius": float(rng.uniform(0.12, 0.2)),
            }
        )
    return out


def _shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, h: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    else:
        draw.polygon([(cx, cy - h), (cx - h, cy + h), (cx + h, cy + h)], fill=fill)


def _draw(
    objs: list[dict], size: int, rng: np.random.Generator, clutter: list[dict] = ()
) -> Image.Image:
    base = rng.integers(200, 236, size=(size, size, 3), dtype=np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    cell = size / 3
    for o in objs:
        r, c = o["cell"]
        cx = (c + 0.5) * cell + rng.uniform(-1.5, 1.5)
        cy = (r + 0.5) * cell + rng.uniform(-1.5, 1.5)
        h = cell * rng.uniform(0.32, 0.42)
        _shape(draw, o["shape"], cx, cy, h, COLORS[o["color"]])
    for d in clutter:
        x, y = d["xy"]
        _shape(
            draw, d["shape"], x * cell, y * cell, d["radius"] * cell, DISTRACTOR_COLORS[d["color"]]
        )
    return img


def _relation(a: dict, b: dict) -> str:
    (ra, ca), (rb, cb) = a["cell"], b["cell"]
    if ra == rb:
        return "left" if ca < cb else "right"
    return "above" if ra < rb else "below"


def _name(o: dict) -> str:
    return f"{o['color']} {o['shape']}"


def _listing(objs: list[dict]) -> str:
    names = [f"a {_name(o)}" for o in objs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def captions_a(objs: list[dict]) -> list[str]:
    """Pre-training style."""
    if len(objs) == 2:
        a, b = objs
        rel = _relation(a, b)
        word = {"left": "left of", "right": "right of", "above": "above", "below": "below"}
        back = word[OPPOSITE[rel]]
        return [
            f"a {_name(a)} {word[rel]} a {_name(b)}",
            f"a {_name(b)} {back} a {_name(a)}",
        ]
    return [_listing(objs), _listing(objs[::-1])]


def captions_b(objs: list[dict]) -> list[str]:
    """Downstream style."""
    n = len(objs)
    if n == 2:
        a, b = objs
        rel = _relation(a, b)
        word = {
            "left": "to the left of",
            "right": "to the right of",
            "above": "above",
            "below": "below",
        }
        return [
            f"there is a {_name(a)} {word[rel]} a {_name(b)}",
            f"a {_name(b)} is {word[OPPOSITE[rel]]} a {_name(a)}",
            f"there are two shapes with a {_name(a)} {word[rel]} a {_name(b)}",
        ]
    if n == 1:
        return [f"there is one {_name(objs[0])}", f"only one {_name(objs[0])} is shown"]
    return [f"there are three shapes {_listing(objs)}", f"three shapes are shown {_listing(objs)}"]


def scene_statements(objs: list[dict]) -> dict[str, list[str]]:
    """Statements true of one scene, by kind, for the pre-training (our design).

    ``count``: the number of shapes as a digit, then the shapes ("2 shapes, a red circle and a
    blue square"); ``yes``: "yes, there is a <present shape>" for every drawn shape; ``no``:
    "no, there is no <absent shape>" for every colour-shape pair not drawn. Real BLIP's text
    modules start from BERT, which has seen "yes", "no" and digits in contexts that tell them
    apart; these statements give the tiny BLIP's words the same (learned text-only, so
    captioning never drifts into them). They are statements, never a question with its answer,
    and only ``restval`` scenes (the pre-training split) are used.
    """
    n = len(objs)
    noun = "shape" if n == 1 else "shapes"
    count = [f"{n} {noun}, {_listing(objs)}"]
    if n > 1:
        count.append(f"{n} {noun}, {_listing(objs[::-1])}")
    present = _names(objs)
    return {
        "count": count,
        "yes": [f"yes, there is a {c} {s}" for c, s in sorted(present)],
        "no": [f"no, there is no {c} {s}" for c in COLORS for s in SHAPES if (c, s) not in present],
    }


def read_scenes(root: str | Path) -> list[dict]:
    """The scene ground truth written by :func:`synthesize` (``restval`` and ``train`` images:
    ``filepath``, ``filename``, ``split``, ``objects``)."""
    path = Path(root) / "scenes.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scene ground truth (write the data with synthesize)")
    return json.loads(path.read_text())["images"]


def _names(objs: list[dict]) -> set[tuple[str, str]]:
    return {(o["color"], o["shape"]) for o in objs}


def _questions(objs: list[dict], rng: np.random.Generator, k: int) -> list[tuple[str, str, str]]:
    """(question, answer, question type) candidates, ``k`` of them drawn."""
    out = []
    shapes = [o["shape"] for o in objs]
    colors = [o["color"] for o in objs]
    for o in objs:
        if shapes.count(o["shape"]) == 1:
            out.append((f"what color is the {o['shape']}?", o["color"], "what color is the"))
        if colors.count(o["color"]) == 1:
            out.append((f"what shape is the {o['color']} object?", o["shape"], "what shape is"))
    out.append(("how many shapes are there?", str(len(objs)), "how many"))
    if rng.random() < 0.5:  # balanced yes / no, as VQAv2's complementary pairs intend
        o = objs[int(rng.integers(len(objs)))]
        c, s, present = o["color"], o["shape"], True
    else:
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in _names(objs)]
        c, s = absent[int(rng.integers(len(absent)))]
        present = False
    out.append((f"is there a {c} {s}?", "yes" if present else "no", "is there a"))
    if len(objs) == 2:
        a, b = objs if rng.random() < 0.5 else objs[::-1]
        out.append(
            (f"where is the {_name(a)} relative to the {_name(b)}?", _relation(a, b), "where is")
        )
    idx = rng.choice(len(out), size=min(k, len(out)), replace=False)
    return [out[int(i)] for i in idx]


#: short names of the generated question types (VQAv2 ``question_type`` strings)
QUESTION_TYPES = {
    "what color is the": "colour",
    "what shape is": "shape",
    "how many": "count",
    "is there a": "exists",
    "where is": "position",
}

ANSWER_SETS = {
    "what color is the": list(COLORS),
    "what shape is": list(SHAPES),
    "how many": ["1", "2", "3"],
    "is there a": ["yes", "no"],
    "where is": list(OPPOSITE),
}


def _humans(answer: str, qtype: str, rng: np.random.Generator, accuracy: float) -> list[str]:
    others = [a for a in ANSWER_SETS[qtype] if a != answer]
    return [answer if rng.random() < accuracy else str(rng.choice(others)) for _ in range(10)]


def synthesize(out: str | Path, spec: SynthSpec | None = None) -> Path:
    """Write the dataset under ``out`` (``coco/`` and ``vqav2/``) and return ``out``.

    A folder written with the same spec is reused; the folder is built in a temporary sibling
    and swapped in only when complete.
    """
    spec = spec or SynthSpec()
    out = Path(out)
    marker = out / "synth.json"
    if marker.is_file() and marker.read_text() == spec.key():
        return out
    atomic_directory(out, lambda tmp: _write(tmp, spec))
    return out


def _write(root: Path, spec: SynthSpec) -> None:
    rng = np.random.default_rng(spec.seed)
    coco = root / "coco"
    for sub in ("train2014", "val2014", "annotations"):
        (coco / sub).mkdir(parents=True)
    (root / "vqav2").mkdir()
    karpathy = []
    scenes = []
    questions: dict[str, list] = {"train2014": [], "val2014": []}
    annotations: dict[str, list] = {"train2014": [], "val2014": []}
    plan = [
        ("restval", spec.restval),
        ("train", spec.train),
        ("val", spec.val),
        ("test", spec.test),
    ]
    image_id = 1
    for split, count in plan:
        sub = "train2014" if split == "train" else "val2014"
        for _ in range(count):
            objs = _scene(rng)
            clutter = _distractors(objs, 0 if split == "restval" else spec.distractors, rng)
            name = f"COCO_{sub}_{image_id:012d}.jpg"
            _draw(objs, spec.image_size, rng, clutter).save(coco / sub / name, quality=95)
            caps = captions_a(objs) if split == "restval" else captions_b(objs)
            if split in SCENE_SPLITS:
                scenes.append({"filepath": sub, "filename": name, "split": split,
                               "objects": [{**o, "cell": list(o["cell"])} for o in objs],
                               "distractors": clutter})  # fmt: skip
            karpathy.append(
                {
                    "filepath": sub,
                    "filename": name,
                    "imgid": image_id - 1,
                    "cocoid": image_id,
                    "split": split,
                    "sentences": [{"raw": c, "tokens": c.split()} for c in caps],
                }
            )
            if split != "restval":
                for q, a, qtype in _questions(objs, rng, spec.questions_per_image):
                    qid = image_id * 10 + len(
                        [x for x in questions[sub] if x["image_id"] == image_id]
                    )
                    questions[sub].append({"image_id": image_id, "question": q, "question_id": qid})
                    humans = _humans(a, qtype, rng, spec.human_accuracy)
                    annotations[sub].append(
                        {
                            "question_id": qid,
                            "image_id": image_id,
                            "question_type": qtype,
                            "answer_type": "yes/no" if qtype == "is there a" else "other",
                            "multiple_choice_answer": max(humans, key=humans.count),
                            "answers": [
                                {"answer": h, "answer_confidence": "yes", "answer_id": i + 1}
                                for i, h in enumerate(humans)
                            ],
                        }
                    )
            image_id += 1
    (coco / "annotations" / "dataset_coco.json").write_text(
        json.dumps({"images": karpathy, "dataset": "coco"})
    )
    for sub in ("train2014", "val2014"):
        info = {"data_subtype": sub, "data_type": "mscoco", "license": {}, "info": {}}
        (root / "vqav2" / f"v2_OpenEnded_mscoco_{sub}_questions.json").write_text(
            json.dumps({**info, "task_type": "Open-Ended", "questions": questions[sub]})
        )
        (root / "vqav2" / f"v2_mscoco_{sub}_annotations.json").write_text(
            json.dumps({**info, "annotations": annotations[sub]})
        )
    (root / "scenes.json").write_text(json.dumps({"images": scenes}))
    (root / "synth.json").write_text(spec.key())
