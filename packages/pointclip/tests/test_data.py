"""Loaders in the real formats (.off, .obj, h5), sampling, few-shot subsets and the embedded generator."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import trimesh
from adapterlab.pointclip.data import (
    EMBEDDED_CLASSES,
    MODELNET40_CLASSES,
    MeshLoadError,
    ModelNetH5,
    ModelNetOff,
    ScanObjectNNH5,
    ShapeNetObj,
    farthest_point_sample,
    few_shot_indices,
    generate_embedded_modelnet,
    load_mesh,
    modelnet_rotation,
    normalize_unit_sphere,
    train_val_split,
)
from adapterlab.pointclip.data.datasets import item_seed
from adapterlab.pointclip.data.transforms import _fps_torch

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- embedded generator


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    return generate_embedded_modelnet(
        tmp_path_factory.mktemp("emb") / "mn", per_class_train=3, per_class_test=2
    )


def test_generator_writes_valid_modelnet_folder(embedded):
    assert len(EMBEDDED_CLASSES) >= 10 and set(EMBEDDED_CLASSES) <= set(MODELNET40_CLASSES)
    for name in EMBEDDED_CLASSES:
        train = sorted((embedded / name / "train").glob("*.off"))
        test = sorted((embedded / name / "test").glob("*.off"))
        assert [p.name for p in train] == [f"{name}_{i:04d}.off" for i in (1, 2, 3)]
        assert [p.name for p in test] == [f"{name}_{i:04d}.off" for i in (4, 5)]
        for p in train + test:
            assert p.read_text().startswith("OFF")
            mesh = load_mesh(p)
            assert len(mesh.faces) > 20 and mesh.area > 0
            lo, hi = mesh.bounds
            assert lo[2] > -0.1 * (
                hi[2] - lo[2]
            )  # z-up, standing on the floor (ModelNet convention)


def test_generator_is_deterministic_and_reusable(tmp_path, embedded):
    a = generate_embedded_modelnet(tmp_path / "a", per_class_train=1, per_class_test=1, seed=3)
    b = generate_embedded_modelnet(tmp_path / "b", per_class_train=1, per_class_test=1, seed=3)
    c = generate_embedded_modelnet(tmp_path / "c", per_class_train=1, per_class_test=1, seed=4)
    fa = (a / "chair" / "train" / "chair_0001.off").read_text()
    assert fa == (b / "chair" / "train" / "chair_0001.off").read_text()
    assert fa != (c / "chair" / "train" / "chair_0001.off").read_text()
    assert generate_embedded_modelnet(a, per_class_train=1, per_class_test=1, seed=3) == a  # reused
    with pytest.raises(FileExistsError):
        generate_embedded_modelnet(a, per_class_train=2, per_class_test=1, seed=3)
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written folders left behind


def test_classes_differ_in_shape(embedded):
    # the classes are told apart by their proportions: e.g. benches are long, cones/bottles are tall
    def extents(name):
        return np.mean(
            [load_mesh(p).extents for p in (embedded / name / "train").glob("*.off")], axis=0
        )

    bench, bottle, bowl = extents("bench"), extents("bottle"), extents("bowl")
    assert max(bench[:2]) > 2.5 * bench[2]
    assert bottle[2] > 1.5 * max(bottle[:2])
    assert bowl[2] < 0.8 * max(bowl[:2])


# ----------------------------------------------------------------------------- ModelNet .off


def test_modelnet_off_loader(embedded):
    ds = ModelNetOff(embedded, "train", num_points=256)
    assert ds.classes == list(EMBEDDED_CLASSES) and len(ds) == 3 * len(EMBEDDED_CLASSES)
    item = ds[4]
    pts = item["points"]
    assert pts.shape == (256, 3) and pts.dtype == torch.float32
    assert pts.norm(dim=-1).max().item() == pytest.approx(1.0, abs=1e-5)
    assert pts.mean(0).abs().max() < 1e-5
    assert (
        item["label"] == ds.labels[4]
        and item["path"] == ds.describe(4)
        and item["path"].endswith(".off")
    )
    assert torch.equal(
        ds[4]["points"], ModelNetOff(embedded, "train", num_points=256)[4]["points"]
    )  # seeded
    plain = ModelNetOff(embedded, "train", num_points=256, rotate=False)[4]["points"]
    assert torch.allclose(pts, torch.stack([-plain[:, 1], plain[:, 2], -plain[:, 0]], 1), atol=1e-6)
    fps = ModelNetOff(embedded, "test", num_points=64, sampling="fps")[0]["points"]
    assert fps.shape == (64, 3)
    assert len(ModelNetOff(embedded, "test")) == 2 * len(EMBEDDED_CLASSES)


def test_broken_modelnet_off_header_and_corrupt_files(tmp_path):
    box = trimesh.creation.box()
    text = trimesh.exchange.off.export_off(box)
    lines = text.splitlines()
    broken = tmp_path / "broken.off"  # ModelNet bug: "OFF8 12 0" on one line
    broken.write_text("\n".join([lines[0] + lines[1], *lines[2:]]) + "\n")
    assert len(load_mesh(broken).faces) == 12
    bad = tmp_path / "bad.off"
    bad.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")  # truncated
    with pytest.raises(MeshLoadError, match="bad.off"):
        load_mesh(bad)
    empty = tmp_path / "empty.off"
    empty.write_text("")
    with pytest.raises(MeshLoadError, match="empty.off: file is empty"):
        load_mesh(empty)
    notoff = tmp_path / "x.off"
    notoff.write_text("hello\n")
    with pytest.raises(MeshLoadError, match="not an OFF file"):
        load_mesh(notoff)
    flat = tmp_path / "flat.off"
    flat.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")
    with pytest.raises(MeshLoadError, match="zero surface area"):
        load_mesh(flat)
    root = tmp_path / "mn"
    (root / "chair" / "test").mkdir(parents=True)
    (root / "chair" / "test" / "chair_0001.off").write_text("OFF\n1 1 0\nnan 0 0\n3 0 0 0\n")
    ds = ModelNetOff(root, "test")
    with pytest.raises(MeshLoadError, match="chair_0001.off"):
        ds[0]
    with pytest.raises(ValueError, match=r"no .off files in their train split \(.*chair/train\)"):
        ModelNetOff(root, "train")


# ----------------------------------------------------------------------------- h5 formats


def _cloud_batch(n: int, p: int = 2048, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, p, 3)).astype(np.float32)


def test_modelnet_h5(tmp_path):
    data = _cloud_batch(3)
    for i, (lo, hi) in enumerate([(0, 2), (2, 3)]):
        with h5py.File(tmp_path / f"ply_data_train{i}.h5", "w") as f:
            f["data"] = data[lo:hi]
            f["label"] = np.array([[5], [7], [9]], dtype=np.uint8)[lo:hi]
            f["normal"] = np.zeros_like(data[lo:hi])
    (tmp_path / "shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    ds = ModelNetH5(tmp_path, "train", num_points=1024)
    assert len(ds) == 3 and ds.labels == [5, 7, 9] and ds.classes == list(MODELNET40_CLASSES)
    assert ds.describe(2).endswith("ply_data_train1.h5[0]")
    pts = ds[0]["points"]
    # a seeded random subset (without replacement) of the stored cloud, unit-sphere normalised
    gen = torch.Generator().manual_seed(item_seed(0, 0))
    rows = torch.randperm(2048, generator=gen)[:1024]
    assert pts.shape == (1024, 3) and len(set(rows.tolist())) == 1024
    assert torch.allclose(pts, normalize_unit_sphere(torch.from_numpy(data[0])[rows]), atol=1e-6)
    assert not torch.equal(pts, ModelNetH5(tmp_path, "train", num_points=1024, seed=1)[0]["points"])
    fps = ModelNetH5(tmp_path, "train", num_points=128, sampling="fps")[1]["points"]
    idx = farthest_point_sample(torch.from_numpy(data[1])[None], 128)[0]
    assert torch.allclose(fps, normalize_unit_sphere(torch.from_numpy(data[1])[idx]), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="ply_data_test"):
        ModelNetH5(tmp_path, "test")


def test_h5_errors_name_the_file(tmp_path):
    (tmp_path / "ply_data_train0.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="ply_data_train0.h5: not a readable HDF5"):
        ModelNetH5(tmp_path, "train")
    with h5py.File(tmp_path / "ply_data_test0.h5", "w") as f:
        f["data"] = _cloud_batch(1)
    with pytest.raises(ValueError, match="ply_data_test0.h5: h5 file lacks"):
        ModelNetH5(tmp_path, "test")


def test_scanobjectnn_variants(tmp_path):
    files = {
        "OBJ_BG": tmp_path / "main_split" / "test_objectdataset.h5",
        "OBJ_ONLY": tmp_path / "main_split_nobg" / "test_objectdataset.h5",
        "PB_T50_RS": tmp_path / "main_split" / "test_objectdataset_augmentedrot_scale75.h5",
    }
    for i, path in enumerate(files.values()):
        path.parent.mkdir(exist_ok=True)
        with h5py.File(path, "w") as f:
            f["data"] = _cloud_batch(2, seed=i)
            f["label"] = np.array([i, 14], dtype=np.int64)
            f["mask"] = np.zeros((2, 2048), dtype=np.int64)
    for i, variant in enumerate(files):
        ds = ScanObjectNNH5(tmp_path, variant=variant, split="test", num_points=256)
        assert ds.labels == [i, 14] and len(ds.classes) == 15 and ds.classes[14] == "toilet"
        assert ds.describe(0).startswith(str(files[variant]))
        pts = ds[0]["points"]
        assert pts.shape == (256, 3) and pts.norm(dim=-1).max().item() == pytest.approx(
            1.0, abs=1e-5
        )
    with pytest.raises(FileNotFoundError, match="training_objectdataset"):
        ScanObjectNNH5(tmp_path, variant="OBJ_BG", split="train")
    with pytest.raises(ValueError, match="variant"):
        ScanObjectNNH5(tmp_path, variant="OBJ_XYZ")


# ----------------------------------------------------------------------------- ShapeNet .obj


def test_shapenet_obj_loader(tmp_path):
    synsets = {"03001627": "chair,seat", "04379243": "table"}
    for k, syn in enumerate(synsets):
        for j in range(6):
            d = tmp_path / syn / f"model{k}{j}" / "models"
            d.mkdir(parents=True)
            mesh = trimesh.creation.box(extents=(1 + j, 1, 1 + k))
            (d / "model_normalized.obj").write_text(trimesh.exchange.obj.export_obj(mesh))
    (tmp_path / "taxonomy.json").write_text(
        json.dumps([{"synsetId": s, "name": n} for s, n in synsets.items()])
    )
    full = ShapeNetObj(tmp_path, "all", num_points=128)
    assert full.classes == ["chair", "table"] and len(full) == 12
    train, val = (
        ShapeNetObj(tmp_path, "train", val_fraction=0.3),
        ShapeNetObj(tmp_path, "val", val_fraction=0.3),
    )
    assert set(train.ids).isdisjoint(val.ids) and set(train.ids) | set(val.ids) == set(full.ids)
    item = full[0]
    assert item["points"].shape == (128, 3) and item["path"].endswith("model_normalized.obj")
    assert full.labels == [0] * 6 + [1] * 6
    bad = tmp_path / "03001627" / "model00" / "models" / "model_normalized.obj"
    bad.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(MeshLoadError, match="model00"):
        ShapeNetObj(tmp_path, "all", cache=False)[0]


# ----------------------------------------------------------------------------- sampling


def _naive_fps(p: np.ndarray, k: int) -> list[int]:
    chosen = [0]
    for _ in range(k - 1):
        d = [min(float(np.sum((p[i] - p[j]) ** 2)) for j in chosen) for i in range(len(p))]
        chosen.append(int(np.argmax(d)))
    return chosen


def test_farthest_point_sampling_matches_naive_and_is_batched():
    pts = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 60, 3)).astype(np.float32))
    idx = farthest_point_sample(pts, 12)
    for b in range(3):
        assert idx[b].tolist() == _naive_fps(pts[b].numpy(), 12)
    assert torch.equal(
        _fps_torch(pts, 12, torch.zeros(3, dtype=torch.long)), idx
    )  # GPU code path, on CPU
    # four tight clusters: 4 FPS picks hit all of them
    centres = torch.tensor([[5.0, 0, 0], [-5, 0, 0], [0, 5, 0], [0, 0, 5]])
    cloud = (centres[:, None] + 0.01 * torch.randn(4, 50, 3)).reshape(1, 200, 3)
    picks = farthest_point_sample(cloud, 4)[0] // 50
    assert sorted(picks.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="k=61"):
        farthest_point_sample(pts, 61)


def test_normalisation_and_rotation():
    p = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]])
    q = normalize_unit_sphere(p)
    assert torch.allclose(q.mean(0), torch.zeros(3), atol=1e-6)
    assert q.norm(dim=-1).max().item() == pytest.approx(1.0)
    assert np.allclose(normalize_unit_sphere(p.numpy()), q.numpy(), atol=1e-6)
    r = modelnet_rotation(torch.tensor([[1.0, 2.0, 3.0]]))
    assert r.tolist() == [[-2.0, 3.0, -1.0]]  # z-up (x, y, z) -> y-up (-y, z, -x)


# ----------------------------------------------------------------------------- few-shot


def test_few_shot_indices():
    labels = [0] * 20 + [1] * 20 + [2] * 3
    a = few_shot_indices(labels, 4, seed=0)
    assert len(a) == 4 + 4 + 3
    assert all(sum(labels[i] == c for i in a) == (4 if c < 2 else 3) for c in range(3))
    assert a == few_shot_indices(labels, 4, seed=0)
    assert a != few_shot_indices(labels, 4, seed=1)
    assert set(few_shot_indices(labels, 2, seed=0)) <= set(a)  # nested k-shot subsets
    train, val = train_val_split(labels, 0.25, seed=0)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(len(labels)))
    assert [sum(labels[i] == c for i in val) for c in range(3)] == [5, 5, 1]


def test_modelnet_class_list_is_shared_by_splits(tmp_path):
    """A class without a test folder must not shift the test labels (one class list)."""
    from adapterlab.pointclip.data import ModelNetOff, generate_embedded_modelnet

    root = generate_embedded_modelnet(
        tmp_path / "mn", per_class_train=1, per_class_test=1, classes=("bowl", "chair", "cup")
    )
    import shutil

    shutil.rmtree(root / "bowl" / "test")
    train = ModelNetOff(root, "train", num_points=64)
    with pytest.raises(ValueError, match=r"bowl/test"):
        ModelNetOff(root, "test", num_points=64)
    test = ModelNetOff(root, "test", num_points=64, allow_missing_classes=True)
    assert test.classes == train.classes == ["bowl", "chair", "cup"]
    assert test.missing_classes == ["bowl"]
    assert sorted(test.labels) == [1, 2]


def test_cgal_fetch_without_apt_is_a_clear_error(tmp_path, monkeypatch):
    from adapterlab.pointclip.data import MeshFetchError, fetch_cgal_meshes

    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get here
    with pytest.raises(MeshFetchError, match="apt-get.*procedural meshes"):
        fetch_cgal_meshes(tmp_path / "cgal")
    assert not (tmp_path / "cgal").exists()


def test_embedded_folder_follows_the_umask_and_a_killed_run_leaves_nothing(tmp_path):
    """The dataset folder gets the umask's permissions (mkdtemp made it 0700), and the
    temporary folder a SIGKILL leaves behind (the process cannot clean up) is removed by the
    next run."""
    import os

    leftover = tmp_path / ".mn.tmp-k1ll3d"  # what a run killed mid-way leaves
    (leftover / "chair" / "train").mkdir(parents=True)
    (leftover / "chair" / "train" / "chair_0001.off").write_text("OFF\n")
    old = os.umask(0o022)
    try:
        root = generate_embedded_modelnet(
            tmp_path / "mn", per_class_train=1, per_class_test=1, classes=("cup",)
        )
    finally:
        os.umask(old)
    assert root.stat().st_mode & 0o777 == 0o755
    assert (root / "cup" / "train").stat().st_mode & 0o777 == 0o755
    assert not list(tmp_path.glob(".mn.tmp*")) and not list(tmp_path.glob(".mn.old*"))


def test_modelnet40_ply_flat_label_files(tmp_path):
    """CLIP2Point's ModelNet40_Ply (its zero-shot 49.38 was measured on it): a flat folder of
    <label>_*.ply clouds, label = index into the 40 alphabetical classes; a test set only."""
    from adapterlab.pointclip.data import ModelNetPly, detect_layout, load_classification_split

    root = tmp_path / "ModelNet40_Ply"
    root.mkdir()
    rng = np.random.default_rng(0)
    clouds = {}
    for name in ("0_1.ply", "8_17.ply", "33_250.ply"):
        pts = (rng.normal(size=(300, 3)) * [1.0, 2.0, 0.5] + 3.0).astype(np.float32)
        trimesh.PointCloud(pts).export(root / name)
        clouds[name] = pts
    assert detect_layout(root) == "modelnet40_ply"
    ds = load_classification_split(root, "test", num_points=256)
    assert isinstance(ds, ModelNetPly) and list(ds.classes) == list(MODELNET40_CLASSES)
    assert ds.labels == [0, 8, 33] and ds.classes[8] == "chair" and ds.classes[33] == "table"
    item = ds[1]
    assert item["points"].shape == (256, 3) and item["label"] == 8
    assert item["path"].endswith("8_17.ply")
    # all stored points, normalised to the unit sphere and turned as the original (rot=True)
    stored = torch.from_numpy(clouds["8_17.ply"])
    expected = modelnet_rotation(normalize_unit_sphere(stored))
    got = ModelNetPly(root, num_points=300)[1]["points"]
    dist = torch.cdist(got, expected, compute_mode="donot_use_mm_for_euclid_dist")
    assert dist.min(dim=1).values.max() < 1e-5
    with pytest.raises(ValueError, match="test set and has no 'train' split"):
        load_classification_split(root, "train")
    with pytest.raises(ValueError, match="300 points stored"):
        ModelNetPly(root, num_points=1024)[0]
    (root / "40_x.ply").write_bytes((root / "0_1.ply").read_bytes())
    with pytest.raises(ValueError, match="40_x.ply: label 40 outside"):
        ModelNetPly(root)
    (root / "40_x.ply").unlink()
    (root / "7_broken.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\n")
    with pytest.raises(ValueError, match="7_broken.ply: not a readable PLY"):
        ModelNetPly(root, num_points=256)[1]
    kept = ModelNetPly(root, num_points=256, skip_bad=True)
    assert kept.labels == [0, 8, 33] and [p for p, _ in kept.skipped] == [
        str(root / "7_broken.ply")
    ]


def test_readme_is_self_contained_and_no_local_copies_of_core_helpers():
    """Users do not have the maintainers' notes; atomic writes, devices and progress bars come
    from the core (adapterlab.core.engine), not from copies in this package."""
    import re

    pkg = Path(__file__).parents[1]
    readme = (pkg / "README.md").read_text()
    assert "area note" not in readme and "../shared" not in readme
    pattern = re.compile(
        r"tempfile\.mk|os\.replace\(|from tqdm|import tqdm|cuda\.is_available\(\)|"
        r"mkdtemp|\.rename\("
    )
    offenders = [
        f"{path.relative_to(pkg)}:{n}"
        for path in sorted((pkg / "src").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
