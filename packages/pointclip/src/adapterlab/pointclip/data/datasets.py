"""Point-cloud datasets in their real on-disk formats.

Every item is ``{"points": FloatTensor[N, 3], "label": int, "path": str}`` with the points sampled to N
(``"uniform"`` or ``"fps"``), normalised to the unit sphere (CLIP2Point ``pc_normalize``) and optionally turned
by CLIP2Point's ModelNet rotation (``rot=True``: z-up files -> the renderer's y-up frame).
Datasets have ``.classes``, ``.labels`` and ``describe(i)`` (the source of item i). Broken files raise
:class:`~adapterlab.pointclip.data.meshio.MeshLoadError` / ``ValueError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch
from adapterlab.core.engine import DataFileError
from torch.utils.data import Dataset

from .classes import MODELNET40_CLASSES, PLY_NAME, SCANOBJECTNN_CLASSES
from .meshio import load_mesh, sample_surface
from .transforms import Sampling, modelnet_rotation, normalize_unit_sphere, sample_points


def stable_fraction(key: str) -> float:
    """A number in [0, 1) that depends only on ``key`` (for hash-based splits that never change)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def item_seed(seed: int, index: int) -> int:
    """Per-item seed derived from a dataset seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class PointCloudDataset(Dataset):
    """Base class: subclasses fill ``classes``, ``labels`` and implement ``_raw(i)`` and ``describe(i)``."""

    classes: list[str]
    labels: list[int]

    def __init__(
        self,
        num_points: int = 1024,
        sampling: Sampling = "uniform",
        rotate: bool = False,
        seed: int | None = 0,
        cache: bool = True,
    ) -> None:
        if sampling not in ("uniform", "fps"):
            raise ValueError(f"sampling must be 'uniform' or 'fps', got {sampling!r}")
        if num_points < 1:
            raise ValueError(f"num_points must be >= 1, got {num_points}")
        self.num_points = int(num_points)
        self.sampling = sampling
        self.rotate = bool(rotate)
        self.seed = seed
        self.cache = bool(cache) and seed is not None
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self, index: int) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _points(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        """[num_points, 3] float32 points (before normalisation)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        pts = self._cache.get(index)
        if pts is None:
            gen = None
            if self.seed is not None:
                gen = torch.Generator().manual_seed(item_seed(self.seed, index))
            pts = normalize_unit_sphere(self._points(index, gen))
            if self.rotate:
                pts = modelnet_rotation(pts)
            pts = pts.float().contiguous()
            if self.cache:
                self._cache[index] = pts
        return {
            "points": pts.clone(),
            "label": int(self.labels[index]),
            "path": self.describe(index),
        }


class _MeshDataset(PointCloudDataset):
    paths: list[Path]

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def _points(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        mesh = load_mesh(self.paths[index])
        seed = (
            None if generator is None else int(torch.randint(2**31 - 1, (1,), generator=generator))
        )
        if self.sampling == "uniform":
            return torch.from_numpy(sample_surface(mesh, self.num_points, seed))
        dense = torch.from_numpy(sample_surface(mesh, 4 * self.num_points, seed))
        return sample_points(dense, self.num_points, "fps")


class ModelNetOff(_MeshDataset):
    """ModelNet10/40 (or ModelNet40-Align, or the embedded dataset) as ``root/<class>/<split>/*.off``.

    ``rotate=True`` (default) applies CLIP2Point's ModelNet rotation (their zero-/few-shot code renders
    ModelNet with ``rot=True``). Points are area-uniform surface samples (CLIP2Point reads .off with open3d
    ``sample_points_uniformly``); ``sampling="fps"`` takes FPS of 4N surface samples.
    ``classes`` is the same list for both splits; a class without files in ``split`` is an error
    unless ``allow_missing_classes`` (then it is listed in ``missing_classes``).
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        num_points: int = 1024,
        sampling: Sampling = "uniform",
        rotate: bool = True,
        seed: int | None = 0,
        cache: bool = True,
        allow_missing_classes: bool = False,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(num_points, sampling, rotate, seed, cache)
        root = Path(root)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not root.is_dir():
            raise FileNotFoundError(
                f"{root}: ModelNet folder not found (expected <root>/<class>/{split}/*.off)"
            )
        self.root, self.split = root, split
        # one class list per dataset (train and test alike), never per split: a class that
        # lacks one split must not shift the labels of the others
        self.classes = sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and ((p / "train").is_dir() or (p / "test").is_dir())
        )
        if not self.classes:
            raise ValueError(
                f"{root}: no <class>/{{train,test}}/ folders found (ModelNet layout expected)"
            )
        self.paths, self.labels = [], []
        self.missing_classes: list[str] = []
        for label, name in enumerate(self.classes):
            files = sorted((root / name / split).glob("*.off"))
            if not files:
                self.missing_classes.append(name)
            for f in files:
                self.paths.append(f)
                self.labels.append(label)
        if self.missing_classes and not allow_missing_classes:
            shown = ", ".join(str(root / c / split) for c in self.missing_classes[:3])
            raise ValueError(
                f"{root}: {len(self.missing_classes)} class(es) have no .off files in their "
                f"{split} split ({shown}{', ...' if len(self.missing_classes) > 3 else ''}); "
                "pass allow_missing_classes=True to keep the class list and go on"
            )
        if not self.paths:
            raise ValueError(f"{root}: no .off files in any <class>/{split}/ folder")
        self.skipped: list[tuple[str, str]] = []
        if skip_bad:
            self._drop_unreadable()

    def _drop_unreadable(self) -> None:
        """Load every mesh once; drop (and list in ``skipped``) the ones that fail."""
        from .meshio import MeshLoadError

        keep = []
        for i, path in enumerate(self.paths):
            try:
                load_mesh(path)
                keep.append(i)
            except MeshLoadError as err:
                self.skipped.append((str(path), err.reason))
        self.paths = [self.paths[i] for i in keep]
        self.labels = [self.labels[i] for i in keep]
        if not self.paths:
            raise ValueError(
                f"{self.root}: every .off file of the {self.split} split is unreadable"
            )


def read_ply_points(path: Path) -> np.ndarray:
    """The ``[n, 3]`` vertices of a PLY point cloud (ASCII or binary); a clear error names the
    file."""
    import trimesh

    try:
        cloud = trimesh.load(path, file_type="ply", process=False)
        points = np.asarray(cloud.vertices, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any parse failure is reported with the path
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataFileError(path, f"not a readable PLY point cloud ({msg})") from exc
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise DataFileError(path, f"PLY file holds no points (vertices {points.shape})")
    if not np.isfinite(points).all():
        raise DataFileError(path, "PLY points contain NaN or inf")
    return points


class ModelNetPly(PointCloudDataset):
    """CLIP2Point's ``ModelNet40_Ply`` (its ``ModelNet40Ply``, on which the zero-shot 49.38 was
    measured): one flat folder of ``<label>_*.ply`` point clouds, ``<label>`` the index into the
    40 ModelNet40 classes in alphabetical order (the original's ``cats``). It is a test set only
    (the original ignores the partition); ``rotate=True`` (default) is the original's ``rot=True``
    for ModelNet40. Stored points are read as they are and sampled to ``num_points``.
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "test",
        num_points: int = 1024,
        sampling: Sampling = "uniform",
        rotate: bool = True,
        seed: int | None = 0,
        cache: bool = True,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(num_points, sampling, rotate, seed, cache)
        root = Path(root)
        if split != "test":
            raise ValueError(
                f"{root}: ModelNet40_Ply (flat <label>_*.ply) is CLIP2Point's test set and has no "
                f"{split!r} split; few-shot training needs ModelNet40 .off folders "
                "(<class>/train/*.off) or modelnet40_ply_hdf5_2048"
            )
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: ModelNet40_Ply folder not found")
        self.root, self.split = root, split
        self.classes = list(MODELNET40_CLASSES)
        found: list[tuple[int, str, Path]] = []
        for path in root.glob("*.ply"):
            match = PLY_NAME.match(path.name)
            if match is None:
                raise DataFileError(
                    path, "ModelNet40_Ply file names must be <label>_*.ply with an integer index"
                )
            label = int(match.group(1))
            if not 0 <= label < len(self.classes):
                raise DataFileError(
                    path,
                    f"label {label} outside the {len(self.classes)} ModelNet40 classes "
                    f"(0..{len(self.classes) - 1})",
                )
            found.append((label, path.name, path))
        found.sort()  # by label, then name: the same order on every file system
        self.paths = [path for _, _, path in found]
        self.labels = [label for label, _, _ in found]
        if not self.paths:
            raise ValueError(f"{root}: no <label>_*.ply files (ModelNet40_Ply expected)")
        self.skipped: list[tuple[str, str]] = []
        if skip_bad:
            keep = []
            for i, path in enumerate(self.paths):
                try:
                    self._read(path)
                    keep.append(i)
                except DataFileError as err:
                    self.skipped.append((str(path), err.problem))
            self.paths = [self.paths[i] for i in keep]
            self.labels = [self.labels[i] for i in keep]
            if not self.paths:
                raise ValueError(f"{root}: every .ply file is unreadable")

    def _read(self, path: Path) -> np.ndarray:
        points = read_ply_points(path)
        if len(points) < self.num_points:
            raise DataFileError(
                path, f"{len(points)} points stored, cannot sample num_points={self.num_points}"
            )
        return points

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def _points(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        stored = torch.from_numpy(self._read(self.paths[index]))
        return sample_points(stored, self.num_points, self.sampling, generator)


class ShapeNetObj(_MeshDataset):
    """ShapeNetCore.v2 as ``root/<synset>/<model>/models/model_normalized.obj`` (CLIP2Point pre-training).

    Labels are synset indices; ``classes`` are the names from ``root/taxonomy.json`` when present (first name of
    each synset), else the synset ids. ShapeNetCore has no official split here: ``"val"`` is a stable hash-chosen
    ``val_fraction`` of the models, ``"train"`` the rest, ``"all"`` everything.
    """

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "val", "all"] = "train",
        num_points: int = 1024,
        sampling: Sampling = "uniform",
        rotate: bool = False,
        seed: int | None = 0,
        cache: bool = True,
        val_fraction: float = 0.1,
    ) -> None:
        super().__init__(num_points, sampling, rotate, seed, cache)
        root = Path(root)
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: ShapeNetCore.v2 folder not found")
        files = sorted(root.glob("*/*/models/model_normalized.obj"))
        if not files:
            raise ValueError(f"{root}: no <synset>/<model>/models/model_normalized.obj files found")
        synsets = sorted({f.parts[-4] for f in files})
        names = dict.fromkeys(synsets)
        tax = root / "taxonomy.json"
        if tax.is_file():
            try:
                for entry in json.loads(tax.read_text()):
                    if entry.get("synsetId") in names:
                        names[entry["synsetId"]] = str(entry["name"]).split(",")[0].strip()
            except (json.JSONDecodeError, AttributeError, TypeError) as exc:
                raise ValueError(f"{tax}: not a valid ShapeNet taxonomy.json ({exc})") from exc
        self.synsets = synsets
        self.classes = [names[s] or s for s in synsets]
        index = {s: i for i, s in enumerate(synsets)}
        self.paths, self.labels, self.ids = [], [], []
        for f in files:
            model_id = f"{f.parts[-4]}_{f.parts[-3]}"
            is_val = stable_fraction(model_id) < val_fraction
            if split == "all" or (split == "val") == is_val:
                self.paths.append(f)
                self.labels.append(index[f.parts[-4]])
                self.ids.append(model_id)


def _read_h5(
    path: Path, data_key: str = "data", label_key: str = "label"
) -> tuple[np.ndarray, np.ndarray]:
    """``(clouds [n, points, 3], labels [n])`` of one h5 file; a clear error names the file."""
    try:
        with h5py.File(path, "r") as f:
            if data_key not in f or label_key not in f:
                raise ValueError(
                    f"{path}: h5 file lacks '{data_key}' or '{label_key}' (keys: {list(f.keys())})"
                )
            data = np.asarray(f[data_key][()], dtype=np.float32)
            raw_labels = np.asarray(f[label_key][()]).reshape(-1)
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if data.ndim != 3 or data.shape[-1] < 3:
        raise ValueError(f"{path}: '{data_key}' must be [n, points, >=3], got {data.shape}")
    if len(data) == 0:
        raise ValueError(f"{path}: the file holds zero clouds")
    if len(raw_labels) != len(data):
        raise ValueError(f"{path}: {len(data)} clouds but {len(raw_labels)} labels")
    kind = raw_labels.dtype.kind
    whole = kind in "iu" or (
        kind == "f" and bool(np.all(np.isfinite(raw_labels) & (raw_labels == np.round(raw_labels))))
    )
    if not whole:
        raise ValueError(
            f"{path}: '{label_key}' must hold integer class indices, got {raw_labels.dtype} "
            f"values such as {raw_labels[:3].tolist()}"
        )
    labels = raw_labels.astype(np.int64)
    if not np.isfinite(data[..., :3]).all():
        raise ValueError(f"{path}: '{data_key}' contains NaN or inf")
    return data[..., :3], labels


class _H5Dataset(PointCloudDataset):
    def _load(self, files: list[Path], skip_bad: bool = False) -> None:
        """Read and check every file; with ``skip_bad`` a bad file is listed in ``skipped``
        (path, reason) and left out instead of stopping."""
        clouds, labels, self._where = [], [], []
        self.skipped: list[tuple[str, str]] = []
        for f in files:
            try:
                data, lab = _read_h5(f)
                bad = sorted({int(x) for x in lab if not 0 <= x < len(self.classes)})
                if bad:
                    raise ValueError(
                        f"{f}: labels {bad[:5]} outside the {len(self.classes)} classes "
                        f"(0..{len(self.classes) - 1})"
                    )
                if clouds and data.shape[1] != clouds[0].shape[1]:
                    first = self._where[0][0]
                    raise ValueError(
                        f"{f}: clouds have {data.shape[1]} points but {first} has "
                        f"{clouds[0].shape[1]}; all files of a split must agree"
                    )
            except ValueError as err:
                if not skip_bad:
                    raise
                self.skipped.append((str(f), str(err).removeprefix(f"{f}: ")))
                continue
            clouds.append(data)
            labels.append(lab)
            self._where.extend((f, i) for i in range(len(data)))
        if not clouds:
            raise ValueError(
                f"{files[0].parent}: no readable h5 file among {[f.name for f in files]}"
            )
        self.data = np.concatenate(clouds)
        self.labels = [int(x) for x in np.concatenate(labels)]
        if self.num_points > self.data.shape[1]:
            raise ValueError(
                f"{files[0]}: clouds have {self.data.shape[1]} points, cannot sample num_points={self.num_points}"
            )

    def describe(self, index: int) -> str:
        f, i = self._where[index]
        return f"{f}[{i}]"

    def _points(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        return sample_points(
            torch.from_numpy(self.data[index]), self.num_points, self.sampling, generator
        )


class ModelNetH5(_H5Dataset):
    """The common ``modelnet40_ply_hdf5_2048`` files (``ply_data_{train,test}*.h5``, 2048 points per cloud,
    keys ``data``/``label``; class names from ``shape_names.txt``). These clouds are y-up already, so
    ``rotate`` defaults to False."""

    def __init__(
        self,
        root: str | Path,
        split: Literal["train", "test"] = "train",
        num_points: int = 1024,
        sampling: Sampling = "uniform",
        rotate: bool = False,
        seed: int | None = 0,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(
            num_points, sampling, rotate, seed, cache=sampling == "fps" and seed is not None
        )
        root = Path(root)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        files = sorted(root.glob(f"ply_data_{split}*.h5"))
        if not files:
            raise FileNotFoundError(
                f"{root}: no ply_data_{split}*.h5 files (modelnet40_ply_hdf5_2048 expected)"
            )
        names = root / "shape_names.txt"
        if names.is_file():
            self.classes = [ln.strip() for ln in names.read_text().splitlines() if ln.strip()]
        else:
            self.classes = list(MODELNET40_CLASSES)
        self._load(files, skip_bad)


SCANOBJECTNN_FILES = {
    "OBJ_BG": ("main_split", "{split}_objectdataset.h5"),
    "OBJ_ONLY": ("main_split_nobg", "{split}_objectdataset.h5"),
    "PB_T50_RS": ("main_split", "{split}_objectdataset_augmentedrot_scale75.h5"),
}


class ScanObjectNNH5(_H5Dataset):
    """ScanObjectNN ``h5_files`` (``main_split`` variants): ``OBJ_BG`` = main_split/*_objectdataset.h5,
    ``OBJ_ONLY`` = main_split_nobg/*_objectdataset.h5, ``PB_T50_RS`` =
    main_split/*_objectdataset_augmentedrot_scale75.h5. ``root`` is the folder holding ``main_split/`` (or the
    split folder itself). FPS to 1024 by default, as CLIP2Point's zero-shot code; no rotation."""

    def __init__(
        self,
        root: str | Path,
        variant: Literal["OBJ_BG", "OBJ_ONLY", "PB_T50_RS"] = "OBJ_BG",
        split: Literal["train", "test"] = "test",
        num_points: int = 1024,
        sampling: Sampling = "fps",
        rotate: bool = False,
        seed: int | None = 0,
    ) -> None:
        super().__init__(
            num_points, sampling, rotate, seed, cache=sampling == "fps" and seed is not None
        )
        if variant not in SCANOBJECTNN_FILES:
            raise ValueError(
                f"variant must be one of {sorted(SCANOBJECTNN_FILES)}, got {variant!r}"
            )
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        sub, pattern = SCANOBJECTNN_FILES[variant]
        name = pattern.format(split="training" if split == "train" else "test")
        root = Path(root)
        candidates = [root / sub / name, root / name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise FileNotFoundError(
                f"ScanObjectNN {variant} {split}: none of {[str(c) for c in candidates]} exists"
            )
        self.variant, self.split = variant, split
        self.classes = list(SCANOBJECTNN_CLASSES)
        self._load([path])
