"""RGB renders of meshes from the depth renderer's views (the RGB side of CLIP2Point's image-depth pairs).

CLIP2Point renders ShapeNet meshes with PyTorch3D (``HardPhongShader``, white background, a random directional
light in training) but only ships the PNGs as a download. Here the renders are made with trimesh + pyrender,
headless: ``PYOPENGL_PLATFORM=egl`` is set when unset (works with Mesa's EGL, GPU or llvmpipe). Without EGL,
use OSMesa: install libosmesa and run with ``PYOPENGL_PLATFORM=osmesa``.

Camera conventions are those of :mod:`adapterlab.pointclip.render` (PyTorch3D look-at, +Y up, same view table),
so view ``v`` of a mesh lines up with depth view ``v`` of points sampled from it. ``camera="orthographic"``
(default) lines up exactly with the clip2point depth renderer; ``camera="perspective"`` is CLIP2Point's mesh
camera (60 deg field of view at distance 2, so the object is about 13 % smaller than in the depth view).
Deviation: CLIP2Point used perspective for RGB; we default to orthographic so the pairs align pixel for pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from .render.views import View, camera_to_world, clip2point_views  # noqa: E402

Camera = Literal["orthographic", "perspective"]
#: Flat light grey for meshes without colours/textures (ModelNet .off files have none).
DEFAULT_COLOR = (0.7, 0.7, 0.7, 1.0)


def normalize_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Copy of ``mesh`` centred on its surface centroid (area-weighted) and scaled so that its farthest vertex
    is at distance 1: the whole surface lies in the unit sphere, like CLIP2Point's normalised meshes/points."""
    out = mesh.copy()
    area = out.area_faces
    centre = (out.triangles_center * area[:, None]).sum(axis=0) / area.sum()
    out.apply_translation(-centre)
    radius = float(np.linalg.norm(out.vertices[np.unique(out.faces)], axis=1).max())
    if radius > 0:
        out.apply_scale(1.0 / radius)
    return out


_RENDERER = None


def _shared_renderer(image_size: int):
    """The process-wide pyrender OffscreenRenderer (created on first use).

    One context is shared on purpose: pyrender's EGL backend calls ``eglTerminate`` on the (shared) display when
    a renderer is deleted, which breaks every other live context in the process.
    """
    global _RENDERER
    if _RENDERER is None:
        import pyrender

        try:
            _RENDERER = pyrender.OffscreenRenderer(image_size, image_size)
        except Exception as exc:  # no EGL/OSMesa
            raise RuntimeError(
                f"could not create an offscreen OpenGL context with PYOPENGL_PLATFORM="
                f"{os.environ.get('PYOPENGL_PLATFORM')!r} ({type(exc).__name__}: {exc}). Headless rendering "
                "needs EGL (Mesa libegl1) or OSMesa (libosmesa6, then PYOPENGL_PLATFORM=osmesa)."
            ) from exc
    return _RENDERER


def release_gl() -> None:
    """Delete the shared OpenGL context (optional; the next render creates a new one)."""
    global _RENDERER
    if _RENDERER is not None:
        _RENDERER.delete()
        _RENDERER = None


def _resolve_views(views: int | Sequence[View]) -> tuple[View, ...]:
    return clip2point_views(views) if isinstance(views, int) else tuple(tuple(v) for v in views)


def _look_along(direction: np.ndarray) -> np.ndarray:
    """Pose whose -Z axis points along ``direction`` (pyrender lights shine along their -Z)."""
    z = -direction / np.linalg.norm(direction)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, np.cross(z, x), z
    return pose


class MeshViewRenderer:
    """Mesh renderer with fixed image size, camera and lighting (all instances share one OpenGL context)."""

    def __init__(
        self,
        image_size: int = 224,
        camera: Camera = "orthographic",
        ambient: float = 0.25,
        light_intensity: float = 1.8,
    ) -> None:
        import pyrender

        if camera not in ("orthographic", "perspective"):
            raise ValueError(f"camera must be 'orthographic' or 'perspective', got {camera!r}")
        self.image_size, self.camera, self.ambient, self.light_intensity = (
            image_size,
            camera,
            ambient,
            light_intensity,
        )
        self._pyrender = pyrender
        self._renderer = _shared_renderer(image_size)

    def __enter__(self) -> MeshViewRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop using the (process-wide, shared) OpenGL context; see :func:`release_gl`."""
        self._renderer = None

    def _scene_mesh(self, mesh: trimesh.Trimesh):
        pr = self._pyrender
        has_colour = mesh.visual is not None and mesh.visual.kind in ("vertex", "face", "texture")
        if has_colour:
            node_mesh = pr.Mesh.from_trimesh(mesh, smooth=False)
            for prim in node_mesh.primitives:
                if prim.material is not None:
                    prim.material.doubleSided = True
            return node_mesh
        material = pr.MetallicRoughnessMaterial(
            baseColorFactor=DEFAULT_COLOR, metallicFactor=0.0, roughnessFactor=0.8, doubleSided=True
        )
        return pr.Mesh.from_trimesh(mesh, material=material, smooth=False)

    def render(
        self,
        mesh: trimesh.Trimesh,
        views: int | Sequence[View] = 10,
        random_light: bool = False,
        rng: np.random.Generator | int | None = None,
        dist: float = 1.0,
    ) -> np.ndarray:
        """Render ``mesh`` (as given: pass a unit-sphere mesh) from each view -> uint8 [V, H, W, 3].

        Light: from the camera (CLIP2Point's evaluation "relative" light) or, with ``random_light``, a random
        direction per view drawn uniformly from [-1, 1]^3 (CLIP2Point training).
        """
        if self._renderer is None:
            raise RuntimeError("renderer is closed")
        pr = self._pyrender
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        scene = pr.Scene(bg_color=[1.0, 1.0, 1.0, 1.0], ambient_light=[self.ambient] * 3)
        scene.add(self._scene_mesh(mesh))
        if self.camera == "orthographic":
            cam = pr.OrthographicCamera(xmag=1.0, ymag=1.0, znear=0.01, zfar=10.0)
            cam_dist = (
                2.0 * dist
            )  # any distance > 1 works; depth does not change an orthographic image
        else:
            cam = pr.PerspectiveCamera(
                yfov=np.deg2rad(60.0), aspectRatio=1.0, znear=0.01, zfar=10.0
            )
            cam_dist = 2.0 * dist  # CLIP2Point renders meshes with dist * 2
        cam_node = scene.add(cam)
        light_node = scene.add(
            pr.DirectionalLight(color=np.ones(3), intensity=self.light_intensity)
        )
        out = []
        for view in _resolve_views(views):
            pose = camera_to_world(view, cam_dist)
            scene.set_pose(cam_node, pose)
            if random_light:
                toward_light = 1.0 - 2.0 * gen.random(3)
                scene.set_pose(light_node, _look_along(-toward_light))
            else:
                scene.set_pose(light_node, pose)
            self._renderer.viewport_width = self._renderer.viewport_height = self.image_size
            colour, _ = self._renderer.render(scene)
            out.append(np.asarray(colour[..., :3], dtype=np.uint8))
        return np.stack(out)


def render_mesh_views(
    mesh: trimesh.Trimesh,
    views: int | Sequence[View] = 10,
    image_size: int = 224,
    random_light: bool = False,
    rng: np.random.Generator | int | None = None,
    camera: Camera = "orthographic",
) -> np.ndarray:
    """One-off convenience wrapper around :class:`MeshViewRenderer` -> uint8 [V, H, W, 3]."""
    with MeshViewRenderer(image_size=image_size, camera=camera) as renderer:
        return renderer.render(mesh, views, random_light=random_light, rng=rng)
