"""Bad input: each case is a clear error naming the file, or skipped and counted on request."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import trimesh
from adapterlab.pointclip.data import MeshLoadError, ModelNetH5, ModelNetOff, load_mesh
from adapterlab.pointclip.pipeline import load_classification_split

TETRA = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"


def test_off_truncated_in_its_face_list(tmp_path):
    good = tmp_path / "good.off"
    good.write_text(TETRA)
    assert len(load_mesh(good).faces) == 4
    cut = tmp_path / "cut.off"
    cut.write_text(TETRA.rsplit("3 0 2 3", 1)[0])  # two of four faces survive
    with pytest.raises(MeshLoadError, match=r"cut.off: truncated in its face list.*4 faces.*2"):
        load_mesh(cut)
    half = tmp_path / "half.off"
    half.write_text(TETRA[:-4])  # the last face line is cut mid-way: "3 1 "
    with pytest.raises(MeshLoadError, match=r"half.off: truncated in its face list"):
        load_mesh(half)
    # a real export with an inline header ("OFF8 12 0", a ModelNet quirk) still loads whole
    box = trimesh.exchange.off.export_off(trimesh.creation.box()).splitlines()
    inline = tmp_path / "inline.off"
    inline.write_text("\n".join([box[0] + box[1], *box[2:]]) + "\n")
    assert len(load_mesh(inline).faces) == 12


def _modelnet(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_modelnet_truncated_file_is_an_error_or_skipped_and_counted(tmp_path):
    root = _modelnet(
        tmp_path / "mn",
        {
            "chair/test/chair_0001.off": TETRA,
            "chair/test/chair_0002.off": TETRA[:-10],
            "table/test/table_0001.off": TETRA,
        },
    )
    ds = ModelNetOff(root, "test", num_points=32)
    with pytest.raises(MeshLoadError, match="chair_0002.off: truncated"):
        [ds[i] for i in range(len(ds))]
    ds = ModelNetOff(root, "test", num_points=32, skip_bad=True)
    assert len(ds) == 2 and ds.labels == [0, 1]
    assert [Path(p).name for p, _ in ds.skipped] == ["chair_0002.off"]
    assert "truncated" in ds.skipped[0][1]
    split = load_classification_split(root, "test", 32, skip_bad=True)
    assert len(split) == 2 and len(split.skipped) == 1


def test_modelnet_empty_or_missing_class_split(tmp_path):
    root = _modelnet(
        tmp_path / "mn",
        {"chair/train/chair_0001.off": TETRA, "chair/test/chair_0002.off": TETRA},
    )
    (root / "table" / "train").mkdir(parents=True)  # empty train split, no test folder
    (root / "table" / "test").mkdir()
    with pytest.raises(ValueError, match=r"1 class\(es\) have no .off files in their train split"):
        ModelNetOff(root, "train")
    with pytest.raises(ValueError, match=r"table/test"):
        load_classification_split(root, "test")
    empty = tmp_path / "nothing"
    (empty / "chair" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .off files"):
        ModelNetOff(empty, "train", allow_missing_classes=True)


def _h5(path: Path, data: np.ndarray, labels: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["label"] = labels
    return path


def _clouds(n: int, p: int = 64) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, p, 3)).astype(np.float32)


def test_h5_float_labels_are_refused_unless_whole(tmp_path):
    _h5(tmp_path / "ply_data_train0.h5", _clouds(2), np.array([[1.5], [2.0]], dtype=np.float32))
    with pytest.raises(ValueError, match=r"ply_data_train0.h5: 'label' must hold integer class"):
        ModelNetH5(tmp_path, "train", num_points=32)
    _h5(tmp_path / "ply_data_test0.h5", _clouds(2), np.array([[1.0], [2.0]], dtype=np.float32))
    assert ModelNetH5(tmp_path, "test", num_points=32).labels == [1, 2]


def test_h5_labels_out_of_range_name_the_file(tmp_path):
    _h5(tmp_path / "ply_data_train0.h5", _clouds(2), np.array([[0], [1]], dtype=np.uint8))
    _h5(tmp_path / "ply_data_train1.h5", _clouds(2), np.array([[3], [40]], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"ply_data_train1.h5: labels \[40\] outside the 40"):
        ModelNetH5(tmp_path, "train", num_points=32)
    _h5(tmp_path / "ply_data_test0.h5", _clouds(1), np.array([[-1]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"ply_data_test0.h5: labels \[-1\]"):
        ModelNetH5(tmp_path, "test", num_points=32)


def test_h5_point_counts_differ_between_files(tmp_path):
    _h5(tmp_path / "ply_data_train0.h5", _clouds(2, 64), np.array([[0], [1]]))
    _h5(tmp_path / "ply_data_train1.h5", _clouds(2, 48), np.array([[2], [3]]))
    with pytest.raises(ValueError, match=r"ply_data_train1.h5: clouds have 48 points but .*train0"):
        ModelNetH5(tmp_path, "train", num_points=32)
    ds = ModelNetH5(tmp_path, "train", num_points=32, skip_bad=True)
    assert len(ds) == 2 and ds.labels == [0, 1]
    assert [Path(p).name for p, _ in ds.skipped] == ["ply_data_train1.h5"]


def test_h5_with_zero_clouds(tmp_path):
    _h5(tmp_path / "ply_data_train0.h5", np.zeros((0, 64, 3), np.float32), np.zeros((0, 1)))
    with pytest.raises(ValueError, match="ply_data_train0.h5: the file holds zero clouds"):
        ModelNetH5(tmp_path, "train", num_points=32)
    with pytest.raises(ValueError, match="no readable h5 file"):
        ModelNetH5(tmp_path, "train", num_points=32, skip_bad=True)
    _h5(tmp_path / "ply_data_train1.h5", _clouds(3), np.array([[0], [1], [2]]))
    ds = ModelNetH5(tmp_path, "train", num_points=32, skip_bad=True)
    assert len(ds) == 3 and len(ds.skipped) == 1 and "zero clouds" in ds.skipped[0][1]


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from adapterlab.pointclip.cli import main

    _h5(tmp_path / "ply_data_test0.h5", _clouds(2), np.array([[0.5], [1.0]]))
    code = main(["zeroshot", "--data", str(tmp_path), "--num-points", "32", "--image-size", "32"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "ply_data_test0.h5" in err
