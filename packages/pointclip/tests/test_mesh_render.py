"""pyrender mesh views: headless rendering, white background, alignment with the depth renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from adapterlab.pointclip.data import sample_surface
from adapterlab.pointclip.mesh_render import MeshViewRenderer, normalize_mesh, render_mesh_views
from adapterlab.pointclip.render import DepthRenderer

torch.set_num_threads(1)


def lopsided_mesh() -> trimesh.Trimesh:
    """A box with a ball on its +X/+Y corner and a rod along +Z: no view looks like another."""
    parts = [
        trimesh.creation.box(extents=(1.0, 0.6, 0.4)),
        trimesh.creation.icosphere(subdivisions=2, radius=0.3).apply_translation((0.5, 0.4, 0.0)),
        trimesh.creation.cylinder(radius=0.08, segment=[(0, 0, 0), (-0.2, 0.0, 0.9)]),
    ]
    return normalize_mesh(trimesh.util.concatenate(parts))


@pytest.fixture(scope="module")
def renderer():
    with MeshViewRenderer(image_size=48) as r:
        yield r


def test_normalize_mesh_fits_unit_sphere():
    m = lopsided_mesh()
    assert np.linalg.norm(m.vertices, axis=1).max() == pytest.approx(1.0)
    area = m.area_faces
    centre = (m.triangles_center * area[:, None]).sum(0) / area.sum()
    assert np.allclose(centre, 0.0, atol=1e-9)


def test_rgb_views_line_up_with_depth_views(renderer):
    mesh = lopsided_mesh()
    rgb = renderer.render(mesh, views=10)
    assert rgb.shape == (10, 48, 48, 3) and rgb.dtype == np.uint8
    assert (rgb[:, 0, 0] == 255).all()  # white background
    rgb_mask = (rgb < 250).any(axis=-1)
    pts = torch.from_numpy(sample_surface(mesh, 30000, seed=0))[None]
    depth = DepthRenderer(mode="clip2point", image_size=48, normalize=False)(pts)[0, :, 0]
    depth_mask = (depth < 1.0).numpy()
    for v in range(10):
        inter = (rgb_mask[v] & depth_mask[v]).sum()
        union = (rgb_mask[v] | depth_mask[v]).sum()
        assert inter / union > 0.8, f"view {v}: IoU {inter / union:.2f}"
        # and a mismatched view does not line up as well (the test can tell views apart)
        other = (v + 1) % 10
        iou_other = (rgb_mask[v] & depth_mask[other]).sum() / (
            rgb_mask[v] | depth_mask[other]
        ).sum()
        assert iou_other < inter / union


def test_shading_and_random_light(renderer):
    mesh = lopsided_mesh()
    fixed = renderer.render(mesh, views=[(0, 0)])
    a = renderer.render(mesh, views=[(0, 0)], random_light=True, rng=1)
    b = renderer.render(mesh, views=[(0, 0)], random_light=True, rng=1)
    c = renderer.render(mesh, views=[(0, 0)], random_light=True, rng=2)
    assert np.array_equal(a, b)  # seeded
    assert not np.array_equal(a, c)
    mask = (fixed < 250).any(-1)
    assert fixed[mask].std() > 3  # shaded, not a flat silhouette
    assert (c[~mask] == 255).all() or (
        c[~mask] == 255
    ).mean() > 0.95  # light moves, background stays white


def test_perspective_camera_shows_smaller_object():
    mesh = lopsided_mesh()
    ortho = render_mesh_views(mesh, views=[(0, 0)], image_size=48, camera="orthographic")
    persp = render_mesh_views(mesh, views=[(0, 0)], image_size=48, camera="perspective")
    assert (persp < 250).any(-1).sum() < (ortho < 250).any(-1).sum()
    with pytest.raises(ValueError, match="camera"):
        MeshViewRenderer(image_size=16, camera="fisheye")
