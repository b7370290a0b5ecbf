"""Camera views of the three projection settings.

* CLIP2Point (Huang et al., ICCV 2023, ``render/selector.py``): (elevation, azimuth) in degrees at distance 1,
  turned into a camera with PyTorch3D's ``look_at_view_transform`` (up = +Y). :func:`look_at_axes` re-implements
  that function in float32, including its fallback for the top/bottom views where ``up`` is parallel to the
  viewing direction, so our images have the same orientation as the original renders.
* PointCLIP (Zhang et al., CVPR 2022, ``trainers/mv_utils_*.py``) and PointCLIP V2 (Zhu et al., ICCV 2023,
  ``zeroshot_cls/trainers/mv_utils_zs.py``): Euler angles (SimpleView's ``euler2mat``) plus a shift along z.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

View = tuple[float, float]

#: CLIP2Point 6 views (elev, azim) in degrees: front, right, back, left, top, bottom.
VIEWS_6: tuple[View, ...] = ((0, 0), (0, 90), (0, 180), (0, 270), (90, 0), (-90, 180))
#: CLIP2Point 10 views (elev, azim) in degrees, in the order of the pre-rendered ``<view>.png`` files.
VIEWS_10: tuple[View, ...] = (
    (0, 0),
    (90, 0),
    (180, 0),
    (270, 0),
    (225, -45),
    (225, 45),
    (315, -45),
    (315, 45),
    (0, -90),
    (0, 90),
)

_PI = np.pi
#: PointCLIP zero-shot views (Euler x, y, z) and their z shift (TRANS = -1.6, 128 px).
POINTCLIP_VIEWS_6: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, _PI / 2),
    (_PI / 2, 0.0, _PI / 2),
    (_PI, 0.0, _PI / 2),
    (3 * _PI / 2, 0.0, _PI / 2),
    (0.0, -_PI / 2, _PI / 2),
    (0.0, _PI / 2, _PI / 2),
)
#: PointCLIP few-shot views: the 6 above plus 4 diagonals (TRANS = -1.4, 224 px).
POINTCLIP_VIEWS_10: tuple[tuple[float, float, float], ...] = POINTCLIP_VIEWS_6[:4] + (
    (5 * _PI / 4, -_PI / 4, _PI / 2),
    (5 * _PI / 4, _PI / 4, _PI / 2),
    (7 * _PI / 4, -_PI / 4, _PI / 2),
    (7 * _PI / 4, _PI / 4, _PI / 2),
    (0.0, -_PI / 2, _PI / 2),
    (0.0, _PI / 2, _PI / 2),
)
POINTCLIP_TRANS = {6: -1.6, 10: -1.4}

#: PointCLIP V2 realistic projection: 4 diagonals, 4 sides, top, bottom ...
REALISTIC_VIEWS: tuple[tuple[float, float, float], ...] = (
    (_PI / 4, 0.0, _PI / 2),
    (3 * _PI / 4, 0.0, _PI / 2),
    (5 * _PI / 4, 0.0, _PI / 2),
    (7 * _PI / 4, 0.0, _PI / 2),
    (0.0, 0.0, _PI / 2),
    (_PI / 2, 0.0, _PI / 2),
    (_PI, 0.0, _PI / 2),
    (3 * _PI / 2, 0.0, _PI / 2),
    (0.0, -_PI / 2, _PI / 2),
    (0.0, _PI / 2, _PI / 2),
)
#: ... each followed by a tilt "to reveal more surface": 20 deg for the first 8, 12 deg for top/bottom.
REALISTIC_TILTS: tuple[tuple[float, float, float], ...] = ((0.0, _PI / 9, 0.0),) * 8 + (
    (0.0, _PI / 15, 0.0),
) * 2
REALISTIC_TRANS = -1.5


def clip2point_views(num_views: int) -> tuple[View, ...]:
    """The CLIP2Point view table for 6 or 10 views."""
    if num_views == 10:
        return VIEWS_10
    if num_views == 6:
        return VIEWS_6
    raise ValueError(f"CLIP2Point defines 6 or 10 views, got num_views={num_views}")


def _normalize(v: Tensor, eps: float = 1e-5) -> Tensor:
    # same as torch.nn.functional.normalize(v, eps=1e-5), the value PyTorch3D uses
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


def look_at_axes(views: tuple[View, ...] | list[View]) -> tuple[Tensor, Tensor]:
    """Camera axes of PyTorch3D's ``look_at_view_transform(dist=1, elev, azim)`` (degrees), in float32.

    Returns ``(axes, position)``: ``axes`` [V, 3, 3] with rows (image-right, image-up, viewing direction) in
    world coordinates and ``position`` [V, 3], the camera centre at distance 1. PyTorch3D's camera x axis points
    to the image *left*; we return its negation so that ``column ~ (p - C) . right``.
    """
    ang = torch.tensor(views, dtype=torch.float32).reshape(-1, 2)
    elev = math.pi / 180.0 * ang[:, 0]
    azim = math.pi / 180.0 * ang[:, 1]
    pos = torch.stack(
        [torch.cos(elev) * torch.sin(azim), torch.sin(elev), torch.cos(elev) * torch.cos(azim)],
        dim=-1,
    )
    up = torch.tensor([[0.0, 1.0, 0.0]]).expand_as(pos)
    z_axis = _normalize(-pos)
    x_axis = _normalize(torch.cross(up, z_axis, dim=-1))
    y_axis = _normalize(torch.cross(z_axis, x_axis, dim=-1))
    is_close = torch.isclose(x_axis, torch.zeros(()), atol=5e-3).all(dim=-1, keepdim=True)
    if bool(is_close.any()):
        replacement = _normalize(torch.cross(y_axis, z_axis, dim=-1))
        x_axis = torch.where(is_close, replacement, x_axis)
    axes = torch.stack([-x_axis, y_axis, z_axis], dim=1)
    return axes, pos


def camera_to_world(view: View, dist: float = 1.0) -> np.ndarray:
    """OpenGL camera-to-world pose (pyrender convention: camera looks down its -Z) for a CLIP2Point view."""
    axes, pos = look_at_axes([view])
    right, up, forward = (axes[0, i].double().numpy() for i in range(3))
    pose = np.eye(4)
    pose[:3, 0] = right
    pose[:3, 1] = up
    pose[:3, 2] = -forward
    pose[:3, 3] = pos[0].double().numpy() * dist
    return pose


def euler2mat(angles: Tensor) -> Tensor:
    """SimpleView/PointCLIP ``euler2mat``: [V, 3] angles (x, y, z) -> [V, 3, 3] = Rx @ Ry @ Rz."""
    x, y, z = angles.unbind(-1)
    zero, one = torch.zeros_like(z), torch.ones_like(z)
    rz = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], -1)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], -1)
    rx = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], -1)
    shape = (*angles.shape[:-1], 3, 3)
    return rx.reshape(shape) @ ry.reshape(shape) @ rz.reshape(shape)
