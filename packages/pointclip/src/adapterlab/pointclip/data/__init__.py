"""Data: loaders for ModelNet (.off and h5), ScanObjectNN (h5), ShapeNetCore.v2 (.obj), the embedded
procedural ModelNet-format dataset, sampling/normalisation helpers and few-shot subsets."""

from .cgal import MeshFetchError, fetch_cgal_meshes
from .classes import MODELNET10_CLASSES, MODELNET40_CLASSES, SCANOBJECTNN_CLASSES
from .datasets import (
    ModelNetH5,
    ModelNetOff,
    ModelNetPly,
    PointCloudDataset,
    ScanObjectNNH5,
    ShapeNetObj,
    stable_fraction,
)
from .embedded import EMBEDDED_CLASSES, generate_embedded_modelnet, make_shape
from .fewshot import few_shot_indices, few_shot_split, train_val_split
from .layout import detect_layout, load_classification_split
from .meshio import MeshLoadError, load_mesh, sample_surface
from .transforms import (
    MODELNET_ROTATION,
    farthest_point_sample,
    modelnet_rotation,
    normalize_unit_sphere,
    sample_points,
)

__all__ = [
    "MeshFetchError",
    "fetch_cgal_meshes",
    "EMBEDDED_CLASSES",
    "MODELNET10_CLASSES",
    "MODELNET40_CLASSES",
    "MODELNET_ROTATION",
    "SCANOBJECTNN_CLASSES",
    "MeshLoadError",
    "ModelNetH5",
    "ModelNetOff",
    "ModelNetPly",
    "PointCloudDataset",
    "ScanObjectNNH5",
    "ShapeNetObj",
    "detect_layout",
    "farthest_point_sample",
    "load_classification_split",
    "few_shot_indices",
    "few_shot_split",
    "generate_embedded_modelnet",
    "load_mesh",
    "make_shape",
    "modelnet_rotation",
    "normalize_unit_sphere",
    "sample_points",
    "sample_surface",
    "stable_fraction",
    "train_val_split",
]
