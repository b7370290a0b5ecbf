"""Image-depth pairs for CLIP2Point pre-training: render a folder of meshes to PNG views plus surface points.

CLIP2Point trains on pre-rendered ``rendering/<id>/<view>.png`` (10 views, downloaded) and ShapeNet-55 point
clouds (8192 points, 1024 drawn per sample). :func:`render_pairs` makes both from any mesh folder, resumably;
:class:`ImageDepthPairs` reads them back.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from adapterlab.core.engine import DataFileError, atomic_write_json, read_json
from adapterlab.core.engine import progress as progress_bar
from PIL import Image
from torch.utils.data import Dataset

from .data.datasets import item_seed, stable_fraction
from .data.meshio import MeshLoadError, load_mesh, sample_surface
from .data.transforms import MODELNET_ROTATION, normalize_unit_sphere
from .render.depth import CLIP_MEAN, CLIP_STD
from .render.views import clip2point_views

MESH_SUFFIXES = (".off", ".obj", ".ply", ".stl", ".glb")
INDEX_FILE = "index.json"
#: The render settings of a pairs folder, written before the first item is rendered.
SETTINGS_FILE = "render_settings.json"
#: Settings version: bump when the renderer's output for the same settings changes.
SETTINGS_VERSION = 1


class RenderSettingsMismatch(DataFileError):
    """A pairs folder holds renders made with other settings (views, size, camera, ...)."""


def render_settings(
    mesh_root: str | Path,
    num_views: int,
    num_points: int,
    image_size: int,
    rotate: bool | None,
    random_light: bool,
    camera: str,
    seed: int,
) -> dict:
    """Everything that decides what a pairs folder's PNGs and points look like."""
    return {
        "version": SETTINGS_VERSION,
        "mesh_root": str(Path(mesh_root).resolve()),
        "num_views": int(num_views),
        "num_points": int(num_points),
        "image_size": int(image_size),
        "rotate": rotate,
        "random_light": bool(random_light),
        "camera": camera,
        "seed": int(seed),
    }


def settings_match(out_root: str | Path, settings: dict) -> bool | None:
    """True when ``out_root`` was rendered with ``settings``, False when with others (or with
    unknown ones), None when it holds no renders yet."""
    out = Path(out_root)
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8")) == settings
        except (OSError, ValueError):
            return False
    has_renders = (out / INDEX_FILE).exists() or any(
        (out / sub).is_dir() and any((out / sub).iterdir()) for sub in ("rendering", "points")
    )
    return False if has_renders else None


def own_folder(base: str | Path, settings: dict) -> Path:
    """``base`` if it is free or holds renders of ``settings``, else a sibling named after the
    settings' digest (``<base>-<sha1[:8]>``): a change of settings re-renders into its own
    folder instead of mixing with (or deleting) the old renders."""
    import hashlib

    base = Path(base)
    if settings_match(base, settings) is not False:
        return base
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return base.with_name(f"{base.name}-{digest}")


def check_render_settings(out_root: str | Path, settings: dict, overwrite: bool = False) -> None:
    """Make ``out_root`` a pairs folder of ``settings``: record them in a fresh folder, accept a
    folder rendered with the same settings, and refuse (:class:`RenderSettingsMismatch`, naming
    every difference) a folder rendered otherwise or by a version that did not record them. With
    ``overwrite`` the renders of such a folder are deleted instead."""
    out = Path(out_root)
    path = out / SETTINGS_FILE
    has_renders = (out / INDEX_FILE).exists() or any(
        (out / sub).is_dir() and any((out / sub).iterdir()) for sub in ("rendering", "points")
    )
    problem = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            stored, problem = None, f"has an unreadable {SETTINGS_FILE} ({exc})"
        if isinstance(stored, dict):
            diff = [
                f"{k} {stored.get(k)!r} (asked {v!r})"
                for k, v in settings.items()
                if stored.get(k) != v
            ]
            if not diff:
                return
            problem = "holds renders made with other settings: " + ", ".join(diff)
    elif has_renders:
        problem = f"holds renders without {SETTINGS_FILE} (unknown settings)"
    if problem is not None:
        if not overwrite:
            raise RenderSettingsMismatch(
                out, f"{problem}; render into another folder, or pass --overwrite to delete them"
            )
        import shutil

        for sub in ("rendering", "points"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for name in (INDEX_FILE, SETTINGS_FILE):
            (out / name).unlink(missing_ok=True)
    atomic_write_json(path, settings)


@dataclass
class MeshItem:
    """One mesh found under a mesh root."""

    id: str
    path: Path
    label: str | None
    split: str  # "train" or "test"


def discover_meshes(mesh_root: str | Path) -> list[MeshItem]:
    """Meshes under ``mesh_root``, sorted by id.

    ModelNet layout ``<class>/{train,test}/<name>.off`` -> id ``<name>``, label ``<class>``, split from the folder;
    ShapeNetCore.v2 ``<synset>/<model>/models/model_normalized.obj`` -> id ``<synset>_<model>``, label
    ``<synset>``, split "train"; any other mesh file -> id from its relative path, no label, split "train".
    """
    root = Path(mesh_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: mesh folder not found")
    items: dict[str, MeshItem] = {}
    for path in sorted(
        p for p in root.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()
    ):
        rel = path.relative_to(root)
        parts = rel.parts
        if len(parts) == 3 and parts[1] in ("train", "test"):
            item = MeshItem(path.stem, path, parts[0], parts[1])
        elif len(parts) == 4 and parts[2] == "models" and path.stem == "model_normalized":
            item = MeshItem(f"{parts[0]}_{parts[1]}", path, parts[0], "train")
        else:
            item = MeshItem("__".join(rel.with_suffix("").parts), path, None, "train")
        if item.id in items:
            raise ValueError(
                f"{root}: two meshes map to the id {item.id!r}: {items[item.id].path} and {path}"
            )
        items[item.id] = item
    return sorted(items.values(), key=lambda it: it.id)


@dataclass
class PairsSummary:
    """What :func:`render_pairs` did."""

    total: int
    rendered: int
    skipped_existing: int
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0
    out_root: Path | None = None

    @property
    def num_bad(self) -> int:
        return len(self.bad)

    def __str__(self) -> str:
        return (
            f"render-pairs: {self.total} meshes, {self.rendered} rendered, {self.skipped_existing} already done, "
            f"{self.num_bad} bad (skipped) in {self.seconds:.1f}s -> {self.out_root}"
        )


def _is_done(out_root: Path, item_id: str, num_views: int, image_size: int | None = None) -> bool:
    """An item counts as done only if its points load with shape ``[N, 3]`` and every view PNG
    decodes fully (at ``image_size`` when given): a file truncated by a crash is redone."""
    folder = out_root / "rendering" / item_id
    points = out_root / "points" / f"{item_id}.npy"
    if not points.is_file() or not all((folder / f"{v}.png").is_file() for v in range(num_views)):
        return False
    try:
        arr = np.load(points, mmap_mode="r", allow_pickle=False)
        if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
            return False
        for v in range(num_views):
            with Image.open(folder / f"{v}.png") as img:
                img.load()  # decodes every byte: raises on a truncated file
                if image_size is not None and img.size != (image_size, image_size):
                    return False
    except (OSError, ValueError, SyntaxError):
        return False
    return True


def _write_item(out_root: Path, item_id: str, images: np.ndarray, points: np.ndarray) -> None:
    """Write the PNGs (one folder, swapped in whole) and the points of one item atomically."""
    from adapterlab.core.engine import atomic_directory, atomic_write_bytes

    def write_pngs(tmp: Path) -> None:
        for v, img in enumerate(images):
            Image.fromarray(img).save(tmp / f"{v}.png", compress_level=1)

    atomic_directory(out_root / "rendering" / item_id, write_pngs)
    buf = io.BytesIO()
    np.save(buf, points.astype(np.float32), allow_pickle=False)
    atomic_write_bytes(out_root / "points" / f"{item_id}.npy", buf.getvalue())


def render_pairs(
    mesh_root: str | Path,
    out_root: str | Path,
    num_views: int = 10,
    num_points: int = 8192,
    image_size: int = 224,
    skip_bad: bool = True,
    rotate: bool | None = None,
    random_light: bool = False,
    camera: Literal["orthographic", "perspective"] = "orthographic",
    seed: int = 0,
    limit: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> PairsSummary:
    """Render every mesh under ``mesh_root`` into ``out_root``.

    Writes ``rendering/<id>/<v>.png`` (the CLIP2Point view order, v < num_views), ``points/<id>.npy``
    (float32 [num_points, 3] area-uniform surface samples in the same unit-sphere frame as the PNGs) and
    ``index.json``. Finished items are skipped (resumable); each item is written atomically. A corrupt or empty
    mesh is reported by path and skipped when ``skip_bad`` (else :class:`MeshLoadError` is raised).
    ``rotate=None`` applies CLIP2Point's ModelNet rotation to ``.off`` meshes (z-up) and not to others.
    The settings (views, size, points, camera, light, rotation, seed, mesh root) are stored in
    ``render_settings.json`` before anything is rendered; resuming with other settings raises
    :class:`RenderSettingsMismatch` (``overwrite=True``: delete the old renders and start again).
    """
    start = time.perf_counter()
    from .mesh_render import (
        MeshViewRenderer,
        normalize_mesh,
    )  # imports pyrender / sets PYOPENGL_PLATFORM

    views = clip2point_views(num_views)
    out = Path(out_root)
    items = discover_meshes(mesh_root)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ValueError(f"{mesh_root}: no mesh files ({', '.join(MESH_SUFFIXES)}) found")
    settings = render_settings(
        mesh_root, num_views, num_points, image_size, rotate, random_light, camera, seed
    )
    out.mkdir(parents=True, exist_ok=True)
    check_render_settings(out, settings, overwrite=overwrite)
    (out / "rendering").mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(parents=True, exist_ok=True)
    from adapterlab.core.engine import clean_temp_leftovers

    # leftovers of a killed run (partial PNG folders, half-written .npy): removed, then redone
    for sub in ("rendering", "points"):
        clean_temp_leftovers(out / sub)
    clean_temp_leftovers(out, INDEX_FILE)
    todo = [it for it in items if not _is_done(out, it.id, num_views, image_size)]
    summary = PairsSummary(
        total=len(items), rendered=0, skipped_existing=len(items) - len(todo), out_root=out
    )
    bad_ids: set[str] = set()
    renderer = MeshViewRenderer(image_size=image_size, camera=camera) if todo else None
    try:
        for it in progress_bar(todo, desc="render-pairs", enabled=progress, unit="mesh"):
            try:
                mesh = load_mesh(it.path)
                turn = it.path.suffix.lower() == ".off" if rotate is None else rotate
                if turn:
                    mesh.vertices = np.asarray(mesh.vertices) @ MODELNET_ROTATION
                mesh = normalize_mesh(mesh)
                s = item_seed(seed, int(stable_fraction(it.id) * 2**31))
                points = sample_surface(mesh, num_points, seed=s)
                images = renderer.render(mesh, views, random_light=random_light, rng=s)
            except MeshLoadError as exc:
                if not skip_bad:
                    raise
                summary.bad.append((str(it.path), exc.reason))
                bad_ids.add(it.id)
                continue
            _write_item(out, it.id, images, points)
            summary.rendered += 1
    finally:
        if renderer is not None:
            renderer.close()
    done = [it for it in items if it.id not in bad_ids and _is_done(out, it.id, num_views)]
    labels = sorted({it.label for it in done if it.label is not None})
    index = {
        "settings": settings,
        "num_views": num_views,
        "image_size": image_size,
        "num_points": num_points,
        "camera": camera,
        "mesh_root": str(Path(mesh_root).resolve()),
        "classes": labels,
        "items": [
            {
                "id": it.id,
                "label": labels.index(it.label) if it.label is not None else -1,
                "split": it.split,
                "source": str(it.path),
            }
            for it in done
        ],
        "bad": [{"path": p, "reason": r} for p, r in summary.bad],
    }
    atomic_write_json(out / INDEX_FILE, index, indent=1)
    summary.seconds = time.perf_counter() - start
    return summary


class ImageDepthPairs(Dataset):
    """Items of a :func:`render_pairs` output folder.

    Each item: ``{"points": FloatTensor[num_points, 3], "images": FloatTensor[V, 3, H, W]`` (CLIP mean/std),
    ``"view": LongTensor[V]`` (view indices), ``"label": int`` (-1 when unknown), ``"id": str}``.
    ``views="random"`` returns one random view per item (V = 1), as CLIP2Point's pre-training does.
    Points are a random subset of the stored surface samples; they keep the PNGs' normalisation (so depth
    renders line up with the RGB views) unless ``renormalize`` (CLIP2Point's per-subset ``pc_norm``).
    Splits: "test" = meshes from a ``test`` folder; "val" = a stable hash-chosen ``val_fraction`` of the others;
    "train" = the rest; "all". ``seed=None``: fresh random subset/view every call; an int: fixed per item.
    """

    def __init__(
        self,
        out_root: str | Path,
        num_points: int = 1024,
        split: Literal["train", "val", "test", "all"] = "train",
        image_size: int | None = None,
        views: Literal["all", "random"] = "all",
        val_fraction: float = 0.1,
        seed: int | None = None,
        renormalize: bool = False,
    ) -> None:
        self.root = Path(out_root)
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{index_path} not found: run render-pairs on a mesh folder first"
            )
        index = read_json(index_path)  # malformed: DataFileError naming file, line and column
        if split not in ("train", "val", "test", "all"):
            raise ValueError(f"split must be train, val, test or all, got {split!r}")
        if views not in ("all", "random"):
            raise ValueError(f"views must be 'all' or 'random', got {views!r}")
        if num_points > index["num_points"]:
            raise ValueError(
                f"{index_path}: only {index['num_points']} points stored, asked for {num_points}"
            )
        self.num_views = int(index["num_views"])
        self.stored_size = int(index["image_size"])
        self.image_size = int(image_size or self.stored_size)
        self.classes: list[str] = list(index["classes"])
        self.num_points, self.views, self.seed, self.renormalize = (
            num_points,
            views,
            seed,
            renormalize,
        )

        def keep(entry: dict) -> bool:
            if split == "all":
                return True
            if entry["split"] == "test":
                return split == "test"
            is_val = stable_fraction(entry["id"]) < val_fraction
            return split == ("val" if is_val else "train")

        entries = [e for e in index["items"] if keep(e)]
        self.ids: list[str] = [e["id"] for e in entries]
        self.labels: list[int] = [int(e["label"]) for e in entries]
        self._points: dict[int, np.ndarray] = {}
        self._mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self, index: int) -> str:
        return str(self.root / "rendering" / self.ids[index])

    def _stored_points(self, index: int) -> np.ndarray:
        pts = self._points.get(index)
        if pts is None:
            path = self.root / "points" / f"{self.ids[index]}.npy"
            try:
                pts = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: unreadable points file ({exc})") from exc
            if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < self.num_points:
                raise ValueError(
                    f"{path}: expected [>= {self.num_points}, 3] points, got {pts.shape}"
                )
            self._points[index] = pts
        return pts

    def _image(self, index: int, view: int) -> torch.Tensor:
        path = self.root / "rendering" / self.ids[index] / f"{view}.png"
        try:
            with Image.open(path) as im:
                arr = np.array(im.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            raise ValueError(f"{path}: unreadable image ({exc})") from exc
        return torch.from_numpy(arr).permute(2, 0, 1)

    def _generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(item_seed(self.seed, index))

    def _sample_points(self, index: int, gen: torch.Generator | None) -> torch.Tensor:
        stored = self._stored_points(index)
        pick = torch.randperm(len(stored), generator=gen)[: self.num_points]
        pts = torch.from_numpy(stored)[pick].float()
        return normalize_unit_sphere(pts) if self.renormalize else pts

    def points(self, index: int) -> torch.Tensor:
        """The ``[num_points, 3]`` cloud of item ``index`` (as in ``self[index]``, no PNG read)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return self._sample_points(index, self._generator(index))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        gen = self._generator(index)
        pts = self._sample_points(index, gen)
        if self.views == "all":
            view = torch.arange(self.num_views)
        else:
            view = torch.randint(self.num_views, (1,), generator=gen)
        imgs = torch.stack([self._image(index, int(v)) for v in view]).float() / 255.0
        if self.image_size != imgs.shape[-1]:
            imgs = F.interpolate(
                imgs,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        imgs = (imgs - self._mean) / self._std
        return {
            "points": pts,
            "images": imgs,
            "view": view,
            "label": self.labels[index],
            "id": self.ids[index],
        }
