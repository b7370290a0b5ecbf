"""render-pairs: outputs, resume, bad meshes skipped and counted; ImageDepthPairs items."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh
from adapterlab.pointclip.data import MeshLoadError, generate_embedded_modelnet
from adapterlab.pointclip.pairs import ImageDepthPairs, discover_meshes, render_pairs
from adapterlab.pointclip.render import CLIP_MEAN, CLIP_STD, DepthRenderer

torch.set_num_threads(1)
SIZE = 32


@pytest.fixture()
def mesh_root(tmp_path):
    root = generate_embedded_modelnet(
        tmp_path / "meshes", per_class_train=2, per_class_test=1, classes=["chair", "cup", "table"]
    )
    (root / "cup" / "train" / "cup_0099.off").write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n")  # truncated
    (root / "table" / "test" / "table_0098.off").write_text("")  # empty
    return root


def test_discover_meshes_layouts(mesh_root, tmp_path):
    items = discover_meshes(mesh_root)
    assert len(items) == 11
    chair = next(it for it in items if it.id == "chair_0003")
    assert chair.label == "chair" and chair.split == "test"
    shapenet = tmp_path / "sn" / "02691156" / "abc" / "models"
    shapenet.mkdir(parents=True)
    trimesh.creation.box().export(shapenet / "model_normalized.obj")
    (item,) = discover_meshes(tmp_path / "sn")
    assert item.id == "02691156_abc" and item.label == "02691156"


def test_render_pairs_resume_and_bad_meshes(mesh_root, tmp_path):
    out = tmp_path / "pairs"
    s1 = render_pairs(mesh_root, out, num_points=300, image_size=SIZE, progress=False)
    assert (s1.total, s1.rendered, s1.skipped_existing, s1.num_bad) == (11, 9, 0, 2)
    bad = dict(s1.bad)
    assert set(bad) == {
        str(mesh_root / "cup/train/cup_0099.off"),
        str(mesh_root / "table/test/table_0098.off"),
    }
    assert "empty" in bad[str(mesh_root / "table/test/table_0098.off")]
    assert "9 rendered" in str(s1) and "2 bad" in str(s1)
    for v in range(10):
        assert (out / "rendering" / "chair_0001" / f"{v}.png").is_file()
    pts = np.load(out / "points" / "chair_0001.npy")
    assert (
        pts.shape == (300, 3)
        and pts.dtype == np.float32
        and np.linalg.norm(pts, axis=1).max() <= 1 + 1e-5
    )
    index = json.loads((out / "index.json").read_text())
    assert index["classes"] == ["chair", "cup", "table"] and len(index["items"]) == 9
    assert len(index["bad"]) == 2
    # resume: nothing to do; then a removed output is rebuilt and nothing else is touched
    mtime = (out / "points" / "cup_0001.npy").stat().st_mtime_ns
    s2 = render_pairs(mesh_root, out, num_points=300, image_size=SIZE, progress=False)
    assert (s2.rendered, s2.skipped_existing, s2.num_bad) == (0, 9, 2)
    (out / "rendering" / "chair_0002" / "7.png").unlink()
    s3 = render_pairs(mesh_root, out, num_points=300, image_size=SIZE, progress=False)
    assert (s3.rendered, s3.skipped_existing) == (1, 8)
    assert (out / "points" / "cup_0001.npy").stat().st_mtime_ns == mtime
    assert not list(out.rglob(".*tmp*"))  # nothing half-written left behind
    with pytest.raises(MeshLoadError, match="cup_0099.off"):
        render_pairs(
            mesh_root, tmp_path / "strict", image_size=SIZE, skip_bad=False, progress=False
        )


def test_image_depth_pairs_items_line_up(mesh_root, tmp_path):
    out = tmp_path / "pairs"
    render_pairs(mesh_root, out, num_points=2000, image_size=SIZE, progress=False)
    train = ImageDepthPairs(out, num_points=1500, split="all", seed=0)
    test = ImageDepthPairs(out, num_points=256, split="test")
    assert len(train) == 9 and set(test.ids) == {"chair_0003", "cup_0003", "table_0003"}
    tr, va = (
        ImageDepthPairs(out, split="train", val_fraction=0.5),
        ImageDepthPairs(out, split="val", val_fraction=0.5),
    )
    assert set(tr.ids).isdisjoint(va.ids) and len(tr) + len(va) == 6
    item = train[0]
    assert item["points"].shape == (1500, 3) and item["images"].shape == (10, 3, SIZE, SIZE)
    assert (
        item["view"].tolist() == list(range(10))
        and item["label"] == 0
        and item["id"] == "chair_0001"
    )
    assert torch.equal(item["points"], train[0]["points"])  # seeded
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    rgb = item["images"] * std + mean
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5
    assert torch.allclose(rgb[:, :, 0, 0], torch.ones(10, 3), atol=1e-5)  # white background
    # the RGB silhouette of each view lines up with the depth render of the item's points
    depth = DepthRenderer(mode="clip2point", image_size=SIZE, normalize=False)(
        item["points"][None]
    )[0, :, 0]
    rgb_mask, depth_mask = (rgb < 0.98).any(1), depth < 1
    iou = (rgb_mask & depth_mask).sum((1, 2)) / (rgb_mask | depth_mask).sum((1, 2))
    assert iou.min() > 0.6, iou
    one = ImageDepthPairs(out, split="all", views="random", image_size=16)[3]
    assert one["images"].shape == (1, 3, 16, 16) and 0 <= one["view"].item() < 10
    with pytest.raises(ValueError, match="2000 points stored"):
        ImageDepthPairs(out, num_points=4096)
    with pytest.raises(FileNotFoundError, match="render-pairs"):
        ImageDepthPairs(tmp_path / "nothing")


def test_resume_redoes_truncated_files_and_cleans_kill_leftovers(tmp_path):
    import os
    import stat

    root = generate_embedded_modelnet(
        tmp_path / "m", per_class_train=2, per_class_test=1, classes=["chair", "cup"]
    )
    out = tmp_path / "pairs"
    old = os.umask(0o022)
    try:
        s1 = render_pairs(root, out, num_points=200, image_size=SIZE, progress=False)
    finally:
        os.umask(old)
    assert s1.rendered == 6
    item = out / "rendering" / "chair_0001"
    # folders follow the umask (mkdtemp alone would leave them 0700)
    assert stat.S_IMODE(item.stat().st_mode) == 0o755
    # a crash truncated one PNG; a SIGKILL left a partial temp folder and a half .npy
    png = item / "3.png"
    png.write_bytes(png.read_bytes()[:40])
    leftover = out / "rendering" / ".cup_0002.tmp-abc"
    leftover.mkdir()
    (leftover / "0.png").write_bytes(b"\x89PNG")
    (out / "points" / ".cup_0001.npy.tmp123").write_bytes(b"xx")
    s2 = render_pairs(root, out, num_points=200, image_size=SIZE, progress=False)
    assert (s2.rendered, s2.skipped_existing) == (1, 5)
    from PIL import Image

    with Image.open(png) as img:
        img.load()
        assert img.size == (SIZE, SIZE)
    assert not leftover.exists()
    assert not list((out / "points").glob(".*"))


def test_resume_with_other_render_settings_refuses_or_gets_its_own_folder(tmp_path):
    """10 orthographic views, then 6 perspective views into the same folder: the 6- and 10-view
    angle tables differ, so a resume would pair depth and RGB views wrongly. The settings are
    stored with the renders; a mismatch is refused (naming each difference) and leaves the folder
    as it was, --overwrite re-renders it whole, and run-all's folder choice gives other settings
    a folder of their own."""
    from adapterlab.pointclip.pairs import (
        SETTINGS_FILE,
        RenderSettingsMismatch,
        own_folder,
        render_settings,
    )

    meshes = generate_embedded_modelnet(
        tmp_path / "m", per_class_train=1, per_class_test=1, classes=["chair"]
    )
    out = tmp_path / "pairs"
    render_pairs(meshes, out, num_views=10, num_points=64, image_size=SIZE, progress=False)
    stored = json.loads((out / SETTINGS_FILE).read_text())
    assert (stored["num_views"], stored["camera"], stored["image_size"]) == (10, "orthographic", 32)
    index_before = (out / "index.json").read_bytes()
    with pytest.raises(RenderSettingsMismatch) as info:
        render_pairs(
            meshes,
            out,
            num_views=6,
            camera="perspective",
            num_points=64,
            image_size=SIZE,
            progress=False,
        )
    msg = str(info.value)
    assert "num_views 10" in msg and "camera 'orthographic'" in msg and str(out) in msg
    assert (out / "index.json").read_bytes() == index_before
    assert len(list((out / "rendering" / "chair_0001").glob("*.png"))) == 10
    # a folder from a version that stored no settings cannot be verified: refused too
    legacy = tmp_path / "legacy"
    (legacy / "rendering" / "x").mkdir(parents=True)
    with pytest.raises(RenderSettingsMismatch, match="without render_settings.json"):
        render_pairs(meshes, legacy, num_points=64, image_size=SIZE, progress=False)
    # --overwrite: the old renders go, the new ones are complete and alone
    s = render_pairs(
        meshes,
        out,
        num_views=6,
        camera="perspective",
        num_points=64,
        image_size=SIZE,
        progress=False,
        overwrite=True,
    )
    assert s.rendered == 2 and s.skipped_existing == 0
    assert sorted(p.name for p in (out / "rendering" / "chair_0001").iterdir()) == [
        f"{v}.png" for v in range(6)
    ]
    assert json.loads((out / "index.json").read_text())["num_views"] == 6
    # run-all: same settings reuse the folder, other settings get a sibling of their own
    six = render_settings(meshes, 6, 64, SIZE, None, False, "perspective", 0)
    ten = render_settings(meshes, 10, 64, SIZE, None, False, "orthographic", 0)
    assert own_folder(out, six) == out
    other = own_folder(out, ten)
    assert other != out and other.parent == out.parent and other.name.startswith("pairs-")
    assert own_folder(tmp_path / "fresh", ten) == tmp_path / "fresh"
