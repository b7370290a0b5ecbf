"""Mesh loading with clear errors (ModelNet .off, ShapeNet .obj and whatever else trimesh reads)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import trimesh
from adapterlab.core.engine.errors import DataFileError


class MeshLoadError(DataFileError):
    """A mesh file is missing, unreadable, corrupt or empty. The message names the file and the problem."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(path, reason)
        self.reason = reason


def _fix_off_header(data: bytes) -> bytes:
    """ModelNet has files whose first line is ``OFF<nv> <nf> <ne>`` (missing newline); split it."""
    head, sep, rest = data.partition(b"\n")
    stripped = head.strip()
    if stripped.startswith(b"OFF") and len(stripped) > 3 and stripped[3:4].isdigit():
        return b"OFF\n" + stripped[3:] + sep + rest
    return data


def _check_off_counts(path: Path, data: bytes) -> None:
    """The vertex and face lists are as long as the header says (trimesh silently loads the
    faces of a file truncated in its face list)."""
    lines = [ln.split(b"#", 1)[0].strip() for ln in _fix_off_header(data).splitlines()]
    lines = [ln for ln in lines if ln]
    head = lines[0][3:].split() if len(lines[0]) > 3 else []
    body = lines[1:]
    if not head:
        if not body:
            raise MeshLoadError(path, "OFF header has no vertex/face counts")
        head, body = body[0].split(), body[1:]
    try:
        nv, nf = int(head[0]), int(head[1])
    except (IndexError, ValueError):
        raise MeshLoadError(path, f"OFF counts line is malformed: {b' '.join(head)!r}") from None
    if len(body) < nv:
        raise MeshLoadError(
            path, f"truncated: the header declares {nv} vertices, the file has {len(body)}"
        )
    faces = body[nv : nv + nf]
    if len(faces) < nf:
        raise MeshLoadError(
            path,
            f"truncated in its face list: the header declares {nf} faces, the file has {len(faces)}",
        )
    if nf:
        last = faces[-1].split()
        if not last[0].isdigit() or len(last) < 1 + int(last[0]):
            raise MeshLoadError(
                path, f"truncated in its face list: last face line is {faces[-1]!r}"
            )


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Load one mesh as a single :class:`trimesh.Trimesh` (scenes are concatenated).

    Raises :class:`MeshLoadError` when the file is missing, cannot be parsed, or has no usable triangles
    (no faces, non-finite vertices or zero surface area).
    """
    path = Path(path)
    if not path.is_file():
        raise MeshLoadError(path, "file not found")
    suffix = path.suffix.lower().lstrip(".")
    try:
        if suffix == "off":
            data = path.read_bytes()
            if not data.strip():
                raise MeshLoadError(path, "file is empty")
            if not data.lstrip().startswith(b"OFF"):
                raise MeshLoadError(path, "not an OFF file (first line must start with 'OFF')")
            _check_off_counts(path, data.lstrip())
            mesh = trimesh.load(
                io.BytesIO(_fix_off_header(data)), file_type="off", force="mesh", process=False
            )
        else:
            if path.stat().st_size == 0:
                raise MeshLoadError(path, "file is empty")
            mesh = trimesh.load(path, force="mesh", process=False)
    except MeshLoadError:
        raise
    except Exception as exc:  # trimesh raises many different types on corrupt files
        raise MeshLoadError(
            path, f"could not parse {suffix or 'mesh'} file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(mesh, trimesh.Trimesh):
        raise MeshLoadError(path, f"no triangle mesh in file (got {type(mesh).__name__})")
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise MeshLoadError(path, "mesh has no faces")
    if not np.isfinite(mesh.vertices).all():
        raise MeshLoadError(path, "mesh has NaN or inf vertex coordinates")
    if not float(mesh.area) > 0:
        raise MeshLoadError(path, "mesh has zero surface area")
    return mesh


def sample_surface(mesh: trimesh.Trimesh, count: int, seed: int | None = None) -> np.ndarray:
    """``count`` area-uniform points on the surface (float32 [count, 3]), like open3d's sample_points_uniformly
    used by CLIP2Point."""
    points, _ = trimesh.sample.sample_surface(mesh, int(count), seed=seed)
    return np.asarray(points, dtype=np.float32)
