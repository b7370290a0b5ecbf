"""Straightforward reference renderer: a python loop over clouds, views and splat offsets.

Written independently of :mod:`.depth` (same published formulas, no batching tricks) to check the batched
renderer in the tests and to time it in ``bench/bench_render.py``. Not meant for training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .depth import (
    CLIP_MEAN,
    CLIP_STD,
    REALISTIC_CONV,
    REALISTIC_DEPTH,
    REALISTIC_DEPTH_BIAS,
    REALISTIC_MAXPOOL,
    REALISTIC_MAXPOOL_PAD,
    REALISTIC_OBJ_RATIO,
    DepthRenderConfig,
    check_points,
    gaussian_kernel,
    resolve_views,
)
from .views import (
    POINTCLIP_TRANS,
    POINTCLIP_VIEWS_6,
    POINTCLIP_VIEWS_10,
    REALISTIC_TILTS,
    REALISTIC_VIEWS,
    clip2point_views,
    euler2mat,
    look_at_axes,
)


def _clip2point_view(
    p: Tensor, right, up, fwd, pos, dist: float, size: int, radius: float
) -> Tensor:
    cam = pos * dist
    x = (p / dist - cam) @ right
    y = (p / dist - cam) @ up
    z = (p / dist - cam) @ fwd
    zbuf = torch.full((size * size,), float("inf"), device=p.device)
    colf = (x + 1) * size / 2 - 0.5
    rowf = (1 - y) * size / 2 - 0.5
    reach = int(math.floor(radius * size / 2 + 0.5))
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            col = torch.floor(colf + 0.5) + dc
            row = torch.floor(rowf + 0.5) + dr
            px = (2 * col + 1) / size - 1
            py = 1 - (2 * row + 1) / size
            hit = ((px - x) ** 2 + (py - y) ** 2 < radius**2) & (z >= 0)
            hit &= (col >= 0) & (col < size) & (row >= 0) & (row < size)
            lin = (row[hit] * size + col[hit]).long()
            zbuf.scatter_reduce_(0, lin, z[hit], reduce="amin")
    zbuf = zbuf.view(size, size)
    zbuf[torch.isinf(zbuf)] = -1.0
    mask = zbuf > 0
    zmax = zbuf.max()
    zmin = torch.where(mask, zbuf, torch.ones_like(zbuf)).min()
    img = (zbuf - zmin) / zmax * 200.0 / 255.0
    img[~mask] = 1.0
    return img


def _pointclip_view(p: Tensor, rot: Tensor, trans: float, size: int) -> Tensor:
    q = p @ rot.T
    z = q[:, 2] - trans
    row = torch.ceil((q[:, 0] / (z + 1e-12) + 1) * size / 2 - 0.5)
    col = torch.ceil((q[:, 1] / (z + 1e-12) + 1) * size / 2 - 0.5)
    ok = (row >= 0) & (row <= size - 1) & (col >= 0) & (col <= size - 1) & (z >= 0)
    lin = (row[ok] * size + col[ok]).long()
    inv = torch.zeros(size * size, device=p.device).index_add_(0, lin, 1.0 / (z[ok] + 1e-12))
    num = torch.zeros(size * size, device=p.device).index_add_(0, lin, z[ok] / (z[ok] + 1e-12))
    inv[inv == 0] = 1.0
    return (num / inv).view(size, size)


def _realistic_view(p: Tensor, rot: Tensor, res: int, kernel: Tensor) -> Tensor:
    q = p @ rot.T
    lo, hi = q.min(dim=0).values, q.max(dim=0).values
    q = (q - (lo + hi) / 2) / (hi - lo).max().clamp_min(1e-8) * 2
    x = torch.ceil((q[:, 0] * REALISTIC_OBJ_RATIO + 1) / 2 * res).clamp(1, res - 2).long()
    y = torch.ceil((q[:, 1] * REALISTIC_OBJ_RATIO + 1) / 2 * res).clamp(1, res - 2).long()
    zf = (
        ((q[:, 2] + 1) / 2 + REALISTIC_DEPTH_BIAS)
        / (1 + REALISTIC_DEPTH_BIAS)
        * (REALISTIC_DEPTH - 2)
    )
    zi = torch.ceil(zf).long()
    zf = zf.clamp(1, REALISTIC_DEPTH - 2)
    grid = torch.zeros(REALISTIC_DEPTH, res, res, device=p.device)  # [z, x, y]
    flat = grid.view(-1)
    flat.scatter_reduce_(0, (zi * res + x) * res + y, zf, reduce="amax")
    pooled = F.max_pool3d(
        grid[None, None],
        (1, REALISTIC_MAXPOOL, REALISTIC_MAXPOOL),
        stride=1,
        padding=(0, REALISTIC_MAXPOOL_PAD, REALISTIC_MAXPOOL_PAD),
    )
    smooth = F.conv3d(pooled, kernel, padding=(0, REALISTIC_CONV // 2, REALISTIC_CONV // 2))
    img = smooth[0, 0].max(dim=0).values
    return 1 - img / img.max()


def render_reference(
    points: Tensor,
    config: DepthRenderConfig,
    views: Tensor | Sequence[int] | None = None,
    dist_scale: Tensor | None = None,
) -> Tensor:
    """Loop implementation of :class:`~adapterlab.pointclip.render.DepthRenderer` (no jitter draws: pass
    ``dist_scale`` explicitly). Returns [B, K, 3, H, W]."""
    check_points(points)
    pts = points.float()
    b = pts.shape[0]
    idx = resolve_views(views, b, config.num_views, pts.device)
    size = config.internal_size
    if config.mode == "clip2point":
        axes, pos = look_at_axes(clip2point_views(config.num_views))
        axes, pos = axes.to(pts.device), pos.to(pts.device)
    elif config.mode == "pointclip":
        table = POINTCLIP_VIEWS_6 if config.num_views == 6 else POINTCLIP_VIEWS_10
        rots = euler2mat(torch.tensor(table, dtype=torch.float32)).to(pts.device)
    else:
        r1 = euler2mat(torch.tensor(REALISTIC_VIEWS, dtype=torch.float32))
        r2 = euler2mat(torch.tensor(REALISTIC_TILTS, dtype=torch.float32))
        rots = (r2 @ r1).to(pts.device)
        kernel = gaussian_kernel().to(pts.device)
    mean = torch.tensor(CLIP_MEAN, device=pts.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pts.device).view(3, 1, 1)
    out = []
    for i in range(b):
        per_view = []
        for v in idx[i].tolist():
            if config.mode == "clip2point":
                d = 1.0 if dist_scale is None else float(dist_scale[i])
                img = _clip2point_view(
                    pts[i],
                    axes[v, 0],
                    axes[v, 1],
                    axes[v, 2],
                    pos[v],
                    d,
                    size,
                    config.points_radius,
                )
            elif config.mode == "pointclip":
                img = _pointclip_view(pts[i], rots[v], POINTCLIP_TRANS[config.num_views], size)
            else:
                img = _realistic_view(pts[i], rots[v], size, kernel)
            img = img[None, None]
            if img.shape[-1] != config.image_size:
                s = config.image_size
                img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=True)
            img = img[0].repeat(3, 1, 1)
            if config.clip_normalize:
                img = (img - mean) / std
            per_view.append(img)
        out.append(torch.stack(per_view))
    return torch.stack(out)
