"""Loaders read the real layouts (written by the synthesiser) and name the file on bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from adapterlab.vl.data import (
    DataError,
    load_coco_captions,
    load_dataset,
    load_image,
    load_snli_ve,
    load_vizwiz,
    load_vqav2,
)
from adapterlab.vl.data.synth import (
    COLORS,
    DISTRACTOR_COLORS,
    SHAPES,
    SynthSpec,
    read_scenes,
    scene_statements,
    synthesize,
)


def test_synthetic_vqav2_and_karpathy_splits(synth_root) -> None:
    train = load_vqav2(synth_root / "vqav2", "train")
    test = load_dataset("vqav2", synth_root / "vqav2", "test")
    assert len(train) == 24 * 3 and len(test) == 8 * 3
    assert not {e.image for e in train} & {e.image for e in test}
    for ex in train[:20]:
        assert len(ex.answers) == 10 and ex.image.is_file()
        if ex.question_type == "what color is the":
            assert ex.answer in COLORS and ex.question.split()[-1].rstrip("?") in SHAPES
    assert all("val2014" in str(e.image) for e in test)  # Karpathy test comes from val2014
    pre = load_coco_captions(synth_root / "coco", "restval")
    down = load_coco_captions(synth_root / "coco", "train")
    assert len(pre) == 24 and len(down) == 24
    assert all(c.captions[0].startswith("a ") for c in pre)
    assert all(c.captions[0].startswith("there ") for c in down)
    assert load_image(down[0].image).size == (48, 48)


def test_answers_describe_the_drawn_scene(synth_root) -> None:
    import numpy as np

    for ex in load_vqav2(synth_root / "vqav2", "train"):
        if ex.question_type == "what color is the" and ex.answers.count(ex.answer) >= 5:
            pixels = np.asarray(load_image(ex.image)).reshape(-1, 3).astype(int)
            dist = np.abs(pixels - np.array(COLORS[ex.answer])).sum(1)
            assert (dist < 60).sum() > 10  # the answer's colour is really painted
            break
    else:  # pragma: no cover
        pytest.fail("no colour question")


def test_scene_statements_are_true_and_never_of_held_out_images(synth_root) -> None:
    scenes = read_scenes(synth_root)
    assert {s["split"] for s in scenes} == {"restval", "train"}  # no val / test scene written
    assert len(scenes) == 24 + 24
    answers = {(e.image, e.question): e.answer for e in load_vqav2(synth_root / "vqav2", "train")}
    path = {synth_root / "coco" / s["filepath"] / s["filename"]: s for s in scenes}
    checked = 0
    for (image, question), answer in answers.items():
        if not question.startswith("is there a "):
            continue
        colour, shape = question.removeprefix("is there a ").rstrip("?").split()
        said = scene_statements(path[image]["objects"])
        assert (f"yes, there is a {colour} {shape}" in said["yes"]) == (answer == "yes")
        assert (f"no, there is no {colour} {shape}" in said["no"]) == (answer == "no")
        checked += 1
    assert checked > 0
    n = len(path[next(iter(path))]["objects"])
    assert all(
        c.startswith(f"{n} shape")
        for c in scene_statements(path[next(iter(path))]["objects"])["count"]
    )


def test_distractors_crowd_only_the_downstream_images_and_never_a_target_cell(synth_root) -> None:
    """The default scenes where p should matter: many distractors in train / val / test images,
    drawn only inside free grid cells and in colours no question names; pre-training stays clean."""
    import numpy as np

    counts = {"restval": [], "train": []}
    for s in read_scenes(synth_root):
        counts[s["split"]].append(len(s["distractors"]))
        cells = {tuple(o["cell"]) for o in s["objects"]}
        pixels = np.asarray(load_image(synth_root / "coco" / s["filepath"] / s["filename"]))
        for d in s["distractors"]:
            assert d["color"] in DISTRACTOR_COLORS and d["color"] not in COLORS
            (x, y), radius = d["xy"], d["radius"]
            row, col = int(y), int(x)
            assert (row, col) not in cells
            # the whole shape stays inside its own free cell
            assert int(x - radius) == int(x + radius - 1e-9) == col
            assert int(y - radius) == int(y + radius - 1e-9) == row
            centre = pixels[int(y * 16), int(x * 16)].astype(int)  # 16 px per cell
            # painted there (in its colour, or in a distractor's drawn over it)
            assert min(np.abs(centre - np.array(c)).sum() for c in DISTRACTOR_COLORS.values()) < 90
    assert all(n == 0 for n in counts["restval"])
    assert all(6 <= n <= 12 for n in counts["train"])  # the default: 6 to 12 per image
    spec = SynthSpec(restval=2, train=4, val=1, test=1, distractors=0, seed=1)
    assert all(not s["distractors"] for s in read_scenes(synthesize(synth_root.parent / "c", spec)))


def test_bad_vqa_files_name_the_file(synth_root, tmp_path) -> None:
    root = tmp_path / "vqa"
    shutil.copytree(synth_root / "vqav2", root)
    ann = root / "v2_mscoco_train2014_annotations.json"
    data = json.loads(ann.read_text())
    data["annotations"][3]["answers"] = []
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotations\.json: question \d+ has no answers"):
        load_vqav2(root, "train", coco_root=synth_root / "coco")
    ann.write_text("{not json")
    with pytest.raises(DataError, match=r"train2014_annotations.json:1: malformed JSON"):
        load_vqav2(root, "train", coco_root=synth_root / "coco")
    with pytest.raises(DataError, match="no VQAv2 files"):
        load_vqav2(tmp_path, "train")


def test_missing_and_corrupt_images(tmp_path) -> None:
    with pytest.raises(DataError, match="nope.jpg: image not found"):
        load_image(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match="bad.jpg: unreadable image"):
        load_image(bad)


def test_vizwiz_layout(tmp_path) -> None:
    (tmp_path / "annotations").mkdir()
    items = [
        {"image": "VizWiz_val_00000000.jpg", "question": "what is this?",
         "answers": [{"answer": "soup", "answer_confidence": "yes"}] * 10,
         "answerable": 1, "answer_type": "other"},
    ]  # fmt: skip
    (tmp_path / "annotations" / "val.json").write_text(json.dumps(items))
    got = load_vizwiz(tmp_path, "val")
    assert got[0].answers == ["soup"] * 10 and got[0].image == tmp_path / "val" / items[0]["image"]
    items[0]["answers"] = []
    (tmp_path / "annotations" / "val.json").write_text(json.dumps(items))
    with pytest.raises(
        DataError, match="val.json: question VizWiz_val_00000000.jpg has no answers"
    ):
        load_vizwiz(tmp_path, "val")


def test_snli_ve_jsonl(tmp_path) -> None:
    rows = [
        {"Flickr30K_ID": "3123", "sentence2": "A dog runs.", "gold_label": "entailment",
         "pairID": "3123.jpg#0r1e"},
        {"Flickr30K_ID": "77", "sentence2": "Nobody.", "gold_label": "contradiction"},
    ]  # fmt: skip
    path = tmp_path / "snli_ve_dev.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = load_snli_ve(tmp_path, "val")
    assert [e.label for e in got] == ["entailment", "contradiction"]
    assert got[0].image == tmp_path / "flickr30k_images" / "3123.jpg"
    path.write_text(json.dumps(rows[0]) + "\n{broken\n")
    with pytest.raises(DataError, match=r"snli_ve_dev.jsonl:2: malformed JSON"):
        load_snli_ve(tmp_path, "dev")
    path.write_text(json.dumps({**rows[0], "gold_label": "maybe"}) + "\n")
    with pytest.raises(DataError, match="gold_label 'maybe'"):
        load_snli_ve(tmp_path, "dev")


def test_a_question_without_ten_human_answers_is_refused(synth_root, tmp_path) -> None:
    root = tmp_path / "vqa"
    shutil.copytree(synth_root / "vqav2", root)
    ann = root / "v2_mscoco_train2014_annotations.json"
    data = json.loads(ann.read_text())
    data["annotations"][5]["answers"] = data["annotations"][5]["answers"][:3]
    qid = data["annotations"][5]["question_id"]
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"annotations\.json: question {qid} has 3 human answers"):
        load_vqav2(root, "train", coco_root=synth_root / "coco")


def test_an_image_in_two_karpathy_splits_is_always_refused(synth_root, tmp_path) -> None:
    coco = tmp_path / "coco"
    (coco / "annotations").mkdir(parents=True)
    data = json.loads((synth_root / "coco" / "annotations" / "dataset_coco.json").read_text())
    train = next(i for i in data["images"] if i["split"] == "train")
    data["images"].append({**train, "split": "test"})  # the same COCO image, also in test
    (coco / "annotations" / "dataset_coco.json").write_text(json.dumps(data))
    leak = rf"dataset_coco\.json: COCO image {train['cocoid']} is listed twice"
    with pytest.raises(DataError, match=leak + r" \(splits 'train' and 'test'\)"):
        load_vqav2(synth_root / "vqav2", "train", coco_root=coco)
    with pytest.raises(DataError, match=leak):
        load_coco_captions(coco, "test")


def test_without_the_karpathy_file_validation_is_carved_from_train(synth_root, tmp_path) -> None:
    coco = tmp_path / "coco"  # the images' folder, no annotations/dataset_coco.json
    coco.mkdir()
    splits = {
        s: load_vqav2(synth_root / "vqav2", s, coco_root=coco) for s in ("train", "val", "test")
    }
    images = {s: {e.image.name for e in ex} for s, ex in splits.items()}
    assert all(images.values())
    assert not images["val"] & images["test"]  # never select on test
    assert not images["val"] & images["train"]  # held out by image
    assert all("train2014" in n for n in images["val"]) and all(
        "val2014" in n for n in images["test"]
    )
    # a tenth of train2014's images, the same every time
    total = len(images["train"]) + len(images["val"])
    assert len(images["val"]) == round(0.1 * total)
    again = load_vqav2(synth_root / "vqav2", "val", coco_root=coco)
    assert [e.question_id for e in again] == [e.question_id for e in splits["val"]]


def test_empty_vizwiz_split_is_refused(tmp_path) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "val.json").write_text("[]")
    with pytest.raises(DataError, match=r"val\.json: the val split has no questions"):
        load_vizwiz(tmp_path, "val")


def test_decompression_bomb_is_one_line_naming_the_file(tmp_path, monkeypatch) -> None:
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("RGB", (48, 48)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 2304 pixels > 2 x 100: a "bomb"
    with pytest.raises(DataError, match=r"huge\.png: image too large") as err:
        load_image(path)
    assert "\n" not in str(err.value)


def test_non_utf8_snli_ve_jsonl_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "snli_ve_test.jsonl"
    good = json.dumps({"Flickr30K_ID": "1", "sentence2": "A dog.", "gold_label": "neutral"})
    path.write_bytes(good.encode() + b"\n" + b'{"sentence2": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"snli_ve_test\.jsonl:2") as err:
        load_snli_ve(tmp_path, "test")
    assert "\n" not in str(err.value)


def test_scene_patch_groups_by_hand() -> None:
    from adapterlab.vl.attention_focus import scene_patch_groups

    scene = {
        "objects": [{"cell": [0, 0]}, {"cell": [2, 1]}],
        "distractors": [
            {"xy": [2.5, 0.5], "radius": 0.1},  # centre of cell (0, 2): 4 patches meet there
            {"xy": [1.3, 1.3], "radius": 0.2},  # cell (1, 1): patches rows/cols 2..3
        ],
    }
    targets, distractors = scene_patch_groups(scene, 6)
    assert targets == {0, 1, 6, 7, 26, 27, 32, 33}  # 2 x 2 patches per cell on a 6 x 6 grid
    assert distractors == {0 * 6 + 4, 0 * 6 + 5, 1 * 6 + 4, 1 * 6 + 5} | {14, 15, 20, 21}
