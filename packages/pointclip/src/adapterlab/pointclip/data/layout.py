"""Which dataset layout a folder holds, and the labelled split of any classification layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .classes import PLY_NAME

__all__ = ["detect_layout", "load_classification_split"]


def detect_layout(root: str | Path) -> str:
    """Dataset layout of a folder: ``modelnet`` (``<class>/{train,test}/*.off``),
    ``modelnet40_ply`` (CLIP2Point's flat ``<label>_*.ply`` test set), ``modelnet_h5``
    (``ply_data_*.h5``), ``scanobjectnn`` (``main_split/``), ``shapenet``
    (``<synset>/<model>/models/model_normalized.obj``) or ``meshes`` (any other mesh folder)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder '{root}' does not exist")
    if any(root.glob("ply_data_*.h5")):
        return "modelnet_h5"
    if (root / "main_split").is_dir() or (root / "main_split_nobg").is_dir():
        return "scanobjectnn"
    if any(root.glob("*/train/*.off")) or any(root.glob("*/test/*.off")):
        return "modelnet"
    if any(PLY_NAME.match(p.name) for p in root.glob("*.ply")):
        return "modelnet40_ply"
    if any(root.glob("*/*/models/model_normalized.obj")):
        return "shapenet"
    for ext in ("off", "obj", "ply", "stl", "glb"):
        if any(root.rglob(f"*.{ext}")):
            return "meshes"
    raise ValueError(
        f"'{root}' holds no known dataset: expected a ModelNet folder (<class>/train/*.off), "
        "ModelNet40_Ply (<label>_*.ply), "
        "modelnet40_ply_hdf5_2048 (ply_data_*.h5), ScanObjectNN h5_files (main_split/), "
        "ShapeNetCore.v2 (<synset>/<model>/models/model_normalized.obj) or a mesh folder"
    )


def load_classification_split(
    root: str | Path,
    split: str,
    num_points: int = 1024,
    variant: str = "OBJ_BG",
    seed: int = 0,
    skip_bad: bool = False,
) -> Any:
    """A labelled point-cloud split (items ``points``, ``label``; attribute ``classes``) of a
    ModelNet .off folder, ModelNet40_Ply folder (test split only), modelnet40 h5 folder or
    ScanObjectNN h5_files folder. ``skip_bad``
    skips and counts unreadable files (``.skipped``) instead of stopping at the first."""
    from .datasets import ModelNetH5, ModelNetOff, ModelNetPly, ScanObjectNNH5

    layout = detect_layout(root)
    if layout == "modelnet":
        return ModelNetOff(root, split=split, num_points=num_points, seed=seed, skip_bad=skip_bad)
    if layout == "modelnet40_ply":
        return ModelNetPly(root, split=split, num_points=num_points, seed=seed, skip_bad=skip_bad)
    if layout == "modelnet_h5":
        return ModelNetH5(root, split=split, num_points=num_points, seed=seed, skip_bad=skip_bad)
    if layout == "scanobjectnn":
        return ScanObjectNNH5(root, variant=variant, split=split, num_points=num_points, seed=seed)
    raise ValueError(
        f"'{root}' ({layout}) has no labelled train/test splits; classification needs a ModelNet "
        ".off folder, modelnet40_ply_hdf5_2048 or ScanObjectNN h5_files"
    )
