"""Batched multi-view depth rendering of point clouds in pure torch (no PyTorch3D, any device).

Three projection settings (see ``DepthRenderConfig.mode``):

* ``"clip2point"`` - CLIP2Point (Huang et al., ICCV 2023, ``render/render.py``): PyTorch3D point rasterizer with
  an orthographic camera at distance 1, points scaled by 1/dist, every point splatted as a disk of radius 0.02 NDC,
  nearest depth wins (K = 1). Per-image normalisation ``(z - min) / max * 200/255`` with background 1.0 (the code
  divides by max, not by max - min), 3 channels, CLIP mean/std.
* ``"pointclip"`` - PointCLIP V1 (Zhang et al., CVPR 2022, ``mv_utils_zs.py``/``mv_utils_fs.py``): rotate, shift
  along z, perspective x/z, y/z, one pixel per point, pixel value = harmonic mean of its depths, background 0.
  6 views at 128 px bilinearly upsampled (zero-shot) or 10 views rendered at full size (few-shot).
* ``"realistic"`` - PointCLIP V2 (Zhu et al., ICCV 2023, ``mv_utils_zs.py``): voxelise into an 8 x 112 x 112 grid
  (scatter max), densify (max-pool 1x7x7), smooth (fixed Gaussian 1x3x3), max over depth, divide by the image
  max and invert, resize to the output size.

Everything is batched over clouds x views: no python loop over views or points (the one over the 5 x 5 splat
stencil is folded into tensor dimensions too). Deviations from the originals are listed in ``DepthRenderConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

Mode = Literal["clip2point", "pointclip", "realistic"]
MODES = ("clip2point", "pointclip", "realistic")

# PointCLIP V2 realistic-projection constants (zeroshot_cls/trainers/mv_utils_zs.py ``params``)
REALISTIC_DEPTH = 8
REALISTIC_RESOLUTION = 112
REALISTIC_OBJ_RATIO = 0.8
REALISTIC_DEPTH_BIAS = 0.2
REALISTIC_MAXPOOL = 7
REALISTIC_MAXPOOL_PAD = 2
REALISTIC_CONV = 3
REALISTIC_SIGMA = 3.0


@dataclass
class DepthRenderConfig:
    """Settings of :class:`DepthRenderer`.

    Args:
        mode: projection setting, ``"clip2point"``, ``"pointclip"`` or ``"realistic"``.
        num_views: clip2point 6 or 10; pointclip 6 (zero-shot) or 10 (few-shot); realistic 10.
        image_size: output height = width. The paper settings are 224. For other sizes the internal resolutions
            scale with it (pointclip zero-shot renders at round(128 * size / 224) and upsamples; realistic uses a
            round(112 * size / 224) grid) while kernels stay as published.
        jitter: clip2point only. Camera distance is multiplied by ``1 + U(-jitter, jitter)``, one draw per cloud
            (CLIP2Point pre-training uses 0.1: ``dist * (1 + (rand - 0.5) / 5)``).
        normalize: CLIP mean/std normalisation of the 3-channel output. ``None`` = the original choice of the
            mode (clip2point yes, pointclip and realistic no).
        points_radius: clip2point splat radius in NDC units (0.02 is about 2.2 px at 224 px).
    """

    mode: Mode = "clip2point"
    num_views: int = 10
    image_size: int = 224
    jitter: float = 0.0
    normalize: bool | None = None
    points_radius: float = 0.02

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        allowed = {"clip2point": (6, 10), "pointclip": (6, 10), "realistic": (10,)}[self.mode]
        if self.num_views not in allowed:
            raise ValueError(
                f"mode {self.mode!r} supports num_views in {allowed}, got {self.num_views}"
            )
        if not isinstance(self.image_size, int) or self.image_size < 8:
            raise ValueError(f"image_size must be an int >= 8, got {self.image_size!r}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.jitter > 0 and self.mode != "clip2point":
            raise ValueError(
                f"jitter only applies to mode 'clip2point' (camera distance); mode {self.mode!r} "
                "re-normalises every view, so set jitter=0"
            )
        if self.points_radius <= 0:
            raise ValueError(f"points_radius must be > 0, got {self.points_radius}")

    @property
    def clip_normalize(self) -> bool:
        """Whether the output gets CLIP mean/std normalisation."""
        return self.mode == "clip2point" if self.normalize is None else bool(self.normalize)

    @property
    def internal_size(self) -> int:
        """Resolution at which the projection is computed before any resize."""
        if self.mode == "pointclip" and self.num_views == 6:
            return max(8, round(128 * self.image_size / 224))
        if self.mode == "realistic":
            return max(16, round(REALISTIC_RESOLUTION * self.image_size / 224))
        return self.image_size

    def to_dict(self) -> dict:
        return asdict(self)


def check_points(points: Tensor) -> None:
    """Raise a clear ``ValueError`` for anything that is not a finite, non-empty ``[B, N, 3]`` float tensor."""
    if not isinstance(points, Tensor):
        raise TypeError(f"points must be a torch.Tensor [B, N, 3], got {type(points).__name__}")
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape [B, N, 3], got {tuple(points.shape)}")
    if points.shape[0] == 0 or points.shape[1] == 0:
        raise ValueError(
            f"points is empty: shape {tuple(points.shape)} (need B >= 1 clouds of N >= 1 points)"
        )
    if not points.is_floating_point():
        raise ValueError(f"points must be a floating point tensor, got {points.dtype}")
    finite = torch.isfinite(points).all(dim=-1).all(dim=-1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        raise ValueError(f"points contain NaN or inf values in cloud(s) {bad[:10]}")


def gaussian_kernel(size: int = REALISTIC_CONV, sigma: float = REALISTIC_SIGMA) -> Tensor:
    """PointCLIP V2's smoothing kernel: 2D Gaussian (depth extent 1) normalised to sum 1, shape [1,1,1,k,k]."""
    xs = torch.arange(size, dtype=torch.float64) - size // 2
    k1 = torch.exp(-(xs**2) / (2 * sigma**2))
    k2 = k1[:, None] * k1[None, :]
    return (k2 / k2.sum()).float().reshape(1, 1, 1, size, size)


def resolve_views(
    views: Tensor | Sequence[int] | None, batch: int, num_views: int, device
) -> Tensor:
    """View indices as LongTensor [B, K] (validated)."""
    if views is None:
        return torch.arange(num_views, device=device).expand(batch, num_views)
    idx = torch.as_tensor(views, device=device).long()
    if idx.dim() == 1:
        idx = idx.expand(batch, idx.shape[0])
    if idx.dim() != 2 or idx.shape[0] != batch or idx.shape[1] == 0:
        raise ValueError(
            f"views must be [K] or [B={batch}, K] view indices, got shape {tuple(idx.shape)}"
        )
    if bool(((idx < 0) | (idx >= num_views)).any()):
        raise ValueError(f"view indices must be in [0, {num_views}), got {idx.unique().tolist()}")
    return idx


class DepthRenderer(nn.Module):
    """Render ``[B, N, 3]`` point clouds to ``[B, V, 3, H, W]`` depth images (no trainable parameters).

    ``DepthRenderer(DepthRenderConfig(...))`` or ``DepthRenderer(mode="clip2point", image_size=64)``.
    """

    def __init__(self, config: DepthRenderConfig | None = None, **overrides) -> None:
        super().__init__()
        config = replace(config or DepthRenderConfig(), **overrides) if overrides else config
        self.config = config or DepthRenderConfig()
        cfg = self.config
        if cfg.mode == "clip2point":
            axes, pos = look_at_axes(clip2point_views(cfg.num_views))
            self.register_buffer("axes", axes, persistent=False)  # [V,3,3] rows right, up, forward
            self.register_buffer("cam_pos", pos, persistent=False)  # [V,3] at distance 1
        elif cfg.mode == "pointclip":
            table = POINTCLIP_VIEWS_6 if cfg.num_views == 6 else POINTCLIP_VIEWS_10
            rot = euler2mat(torch.tensor(table, dtype=torch.float32))
            self.register_buffer("rot", rot, persistent=False)  # p' = rot @ p
            self.trans = POINTCLIP_TRANS[cfg.num_views]
        else:
            r1 = euler2mat(torch.tensor(REALISTIC_VIEWS, dtype=torch.float32))
            r2 = euler2mat(torch.tensor(REALISTIC_TILTS, dtype=torch.float32))
            self.register_buffer("rot", r2 @ r1, persistent=False)  # p' = r2 @ (r1 @ p)
            self.register_buffer("kernel", gaussian_kernel(), persistent=False)
        mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
        std = torch.tensor(CLIP_STD).view(3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def num_views(self) -> int:
        return self.config.num_views

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.to_dict().items())

    def sample_dist_scale(self, batch: int, generator: torch.Generator | None, device) -> Tensor:
        """Per-cloud camera-distance factors ``1 + U(-jitter, jitter)`` (ones when jitter is 0)."""
        if self.config.jitter <= 0:
            return torch.ones(batch, device=device)
        gdev = generator.device if generator is not None else device
        u = torch.rand(batch, generator=generator, device=gdev).to(device)
        return 1.0 + (2.0 * u - 1.0) * self.config.jitter

    def forward(
        self,
        points: Tensor,
        generator: torch.Generator | None = None,
        views: Tensor | Sequence[int] | None = None,
        dist_scale: Tensor | None = None,
    ) -> Tensor:
        """Render ``points`` [B, N, 3] from all views (or the ``views`` indices, [K] or [B, K]).

        Returns float32 [B, K, 3, H, W]. ``dist_scale`` [B] overrides the jitter draw (clip2point only).
        """
        check_points(points)
        pts = points.float()
        b = pts.shape[0]
        idx = resolve_views(views, b, self.num_views, pts.device)
        k = idx.shape[1]
        cfg = self.config
        if cfg.mode == "clip2point":
            if dist_scale is None:
                dist_scale = self.sample_dist_scale(b, generator, pts.device)
            dist = torch.as_tensor(dist_scale, dtype=torch.float32, device=pts.device).reshape(-1)
            if dist.shape[0] != b or bool((dist <= 0).any()):
                raise ValueError(
                    f"dist_scale must be [B={b}] positive factors, got {tuple(dist.shape)}"
                )
            img = self._clip2point(pts, idx, dist)
        elif dist_scale is not None:
            raise ValueError(f"dist_scale only applies to mode 'clip2point', not {cfg.mode!r}")
        elif cfg.mode == "pointclip":
            img = self._pointclip(pts, idx)
        else:
            img = self._realistic(pts, idx)
        s = cfg.image_size
        img = img.reshape(b * k, 1, img.shape[-2], img.shape[-1])
        if img.shape[-1] != s:
            img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=True)
        if cfg.clip_normalize:  # (v - mean) / std as v * (1 / std) + (-mean / std), written once
            img = (img * (1.0 / self.std)).add_(-self.mean / self.std)
        else:
            img = img.expand(b * k, 3, s, s).contiguous()
        return img.reshape(b, k, 3, s, s)

    # ---------------------------------------------------------------- clip2point
    def _clip2point(self, pts: Tensor, idx: Tensor, dist: Tensor) -> Tensor:
        b, k = idx.shape
        s = self.config.internal_size
        axes = self.axes[idx]  # [B,K,3,3]
        # PyTorch3D: X = p / dist, view = (X - C) @ R with C = dist * cam_pos (orthographic, scale 1)
        offset = torch.einsum("bkdc,bkc->bkd", axes, self.cam_pos[idx]) * dist[:, None, None]
        proj = torch.einsum("bnc,bkdc->bknd", pts, axes) / dist[:, None, None, None]
        proj = proj - offset[:, :, None, :]
        return clip2point_normalize(
            splat_min_depth(proj.reshape(b * k, -1, 3), s, self.config.points_radius)
        )

    # ----------------------------------------------------------------- pointclip
    def _pointclip(self, pts: Tensor, idx: Tensor) -> Tensor:
        b, k = idx.shape
        s = self.config.internal_size
        proj = torch.einsum("bnc,bkdc->bknd", pts, self.rot[idx]).reshape(b * k, -1, 3)
        return harmonic_depth(proj, self.trans, s)

    # ----------------------------------------------------------------- realistic
    def _realistic(self, pts: Tensor, idx: Tensor) -> Tensor:
        b, k = idx.shape
        proj = torch.einsum("bnc,bkdc->bknd", pts, self.rot[idx]).reshape(b * k, -1, 3)
        return pooled_to_image(realistic_pooled(proj, self.config.internal_size), self.kernel)


def splat_min_depth(proj: Tensor, size: int, radius: float) -> Tensor:
    """Nearest depth per pixel of disks of ``radius`` (NDC) around [M, N, 3] (x right, y up, z) points.

    Follows PyTorch3D's rasterize_points: pixel centres at NDC ``(2i + 1) / S - 1``, a point covers a pixel when
    the squared NDC distance is ``< radius**2``, points with z < 0 are skipped. Returns [M, S, S] with +inf for
    empty pixels (PyTorch3D writes -1 there).
    """
    m, n, _ = proj.shape
    dev = proj.device
    x, y, z = proj.unbind(-1)
    half = size / 2.0
    colf = (x + 1.0) * half - 0.5
    rowf = (1.0 - y) * half - 0.5
    reach = int(math.floor(radius * half + 0.5))  # stencil half-width in pixels
    off = torch.arange(-reach, reach + 1, device=dev, dtype=proj.dtype)
    cc = torch.floor(colf + 0.5)[..., None, None] + off  # [M,N,1,S]
    rr = torch.floor(rowf + 0.5)[..., None, None] + off[:, None]  # [M,N,S,1]
    dx = (2.0 * cc + 1.0) / size - 1.0 - x[..., None, None]
    dy = 1.0 - (2.0 * rr + 1.0) / size - y[..., None, None]
    valid = (dx * dx + dy * dy) < radius * radius
    valid &= (cc >= 0) & (cc < size) & (rr >= 0) & (rr < size)
    valid &= (z >= 0)[..., None, None]
    base = torch.arange(m, device=dev).view(m, 1, 1, 1) * (size * size)
    flat = base + rr.long() * size + cc.long()
    dump = m * size * size
    flat = torch.where(valid, flat, dump)
    zsrc = z[..., None, None].expand_as(flat)
    buf = torch.full((dump + 1,), float("inf"), device=dev, dtype=proj.dtype)
    buf.scatter_reduce_(0, flat.reshape(-1), zsrc.reshape(-1), reduce="amin", include_self=True)
    return buf[:dump].view(m, size, size)


def clip2point_normalize(zbuf: Tensor) -> Tensor:
    """CLIP2Point ``Renderer.norm`` on a [M,S,S] depth buffer (+inf or <= 0 = empty, as PyTorch3D's ``zbuf > 0``).

    Foreground ``(z - min) / max * 200/255`` where max is over the foreground and min over the image with the
    background set to 1 (so min <= 1); background 1.0.
    """
    m = zbuf.shape[0]
    flat = zbuf.reshape(m, -1)
    fg = (flat > 0) & (flat < float("inf"))
    zmax = torch.where(fg, flat, -1.0).amax(dim=1, keepdim=True)
    zmin = torch.where(fg, flat, 1.0).amin(dim=1, keepdim=True)
    img = torch.where(fg, (flat - zmin) * ((200.0 / 255.0) / zmax), 1.0)
    return img.view_as(zbuf)


def harmonic_depth(proj: Tensor, trans: float, size: int) -> Tensor:
    """PointCLIP ``points2depth`` with splat size 1: [M,N,3] rotated points -> [M,S,S] harmonic-mean depth."""
    m = proj.shape[0]
    dev = proj.device
    x, y, z = proj.unbind(-1)
    z = z - trans
    eps = 1e-12
    # the original maps x to rows and y to columns: pixel = ceil((c + 1) * S / 2 - 0.5)
    row = torch.ceil((x / (z + eps) + 1.0) * size / 2.0 - 0.5)
    col = torch.ceil((y / (z + eps) + 1.0) * size / 2.0 - 0.5)
    valid = (row >= 0) & (row <= size - 1) & (col >= 0) & (col <= size - 1) & (z >= 0)
    weight = torch.where(valid, 1.0 / (z + eps), torch.zeros_like(z))
    flat = torch.arange(m, device=dev).view(m, 1) * (size * size) + row.long() * size + col.long()
    dump = m * size * size
    flat = torch.where(valid, flat, dump).reshape(-1)
    wsum = torch.zeros(dump + 1, device=dev, dtype=proj.dtype).index_add_(
        0, flat, weight.reshape(-1)
    )
    vsum = torch.zeros(dump + 1, device=dev, dtype=proj.dtype).index_add_(
        0, flat, (z * weight).reshape(-1)
    )
    # empty pixels have vsum = wsum = 0 (the original divides by 1 there): 0 / tiny = 0 as well
    return (vsum[:dump] / wsum[:dump].clamp_min(1e-30)).view(m, size, size)


def realistic_pooled(proj: Tensor, resolution: int, depth: int = REALISTIC_DEPTH) -> Tensor:
    """PointCLIP V2 ``points2grid`` followed by the densifying MaxPool3d((1,7,7), pad (0,2,2)), fused.

    [M,N,3] rotated points -> [M, D', R-2 (rows follow x), R-2] with D' the depth slices that hold points
    (slices outside that range are all zero in the original and cannot win the later max over depth).
    Instead of scattering into the dense 8 x R x R grid and max-pooling it, every occupied voxel is scattered
    (reduce = max) straight onto the 7 x 7 block of pooled pixels whose window contains it: same values,
    about N * 49 writes per view instead of two dense passes over the grid.
    """
    m = proj.shape[0]
    dev = proj.device
    pmax, pmin = proj.max(dim=1).values, proj.min(dim=1).values
    cent = ((pmax + pmin) / 2)[:, None, :]
    # deviation: the range is clamped so a single-point cloud does not divide by zero
    prange = (pmax - pmin).max(dim=-1).values.clamp_min(1e-8)[:, None, None]
    p = (proj - cent) / prange * 2.0
    scale = torch.tensor([REALISTIC_OBJ_RATIO, REALISTIC_OBJ_RATIO, 1.0], device=dev, dtype=p.dtype)
    p = p * scale
    gx = torch.ceil((p[..., 0] + 1) / 2 * resolution).clamp(1, resolution - 2).long()
    gy = torch.ceil((p[..., 1] + 1) / 2 * resolution).clamp(1, resolution - 2).long()
    gz = ((p[..., 2] + 1) / 2 + REALISTIC_DEPTH_BIAS) / (1 + REALISTIC_DEPTH_BIAS) * (depth - 2)
    zi = torch.ceil(gz).long().clamp(0, depth - 1)
    gz = gz.clamp(1, depth - 2)
    lo, hi = int(zi.min()), int(zi.max()) + 1
    nd, s = hi - lo, resolution - 2
    # pooled[i] = max(grid[i-2 .. i+4])  <=>  voxel u feeds pooled rows u-4 .. u+2
    reach = REALISTIC_MAXPOOL - 1 - REALISTIC_MAXPOOL_PAD
    off = torch.arange(-reach, REALISTIC_MAXPOOL_PAD + 1, device=dev)
    rows = gx[..., None, None] + off[:, None]  # [M,N,7,1]
    cols = gy[..., None, None] + off  # [M,N,1,7]
    valid = (rows >= 0) & (rows < s) & (cols >= 0) & (cols < s)
    plane = (torch.arange(m, device=dev).view(m, 1) * nd + (zi - lo)) * (s * s)  # [M,N]
    flat = plane[..., None, None] + rows * s + cols
    dump = m * nd * s * s
    flat = torch.where(valid, flat, dump)
    out = torch.zeros(dump + 1, device=dev, dtype=p.dtype)
    src = gz[..., None, None].expand_as(flat)
    out.scatter_reduce_(0, flat.reshape(-1), src.reshape(-1), reduce="amax", include_self=True)
    return out[:dump].view(m, nd, s, s)


def _smooth3(x: Tensor, w: Tensor, dim: int) -> Tensor:
    """1-D correlation with the 3 weights ``w`` along ``dim``, zero padding 1 (same length)."""
    n = x.shape[dim]
    xp = F.pad(x, (1, 1) if dim == -1 else (0, 0, 1, 1))
    out = xp.narrow(dim, 0, n) * w[0]
    out.add_(xp.narrow(dim, 1, n), alpha=float(w[1])).add_(xp.narrow(dim, 2, n), alpha=float(w[2]))
    return out


def pooled_to_image(pooled: Tensor, kernel: Tensor) -> Tensor:
    """Rest of PointCLIP V2 ``Grid2Image`` on max-pooled slices [M, D', S, S]: Gaussian smoothing (zero pad 1),
    max over depth, divide by the image max, invert. The 3 x 3 Gaussian is applied as two 1-D passes (it is the
    outer product of one normalised 1-D kernel), equal to the Conv3d up to float rounding."""
    k = kernel.reshape(REALISTIC_CONV, REALISTIC_CONV)[REALISTIC_CONV // 2]
    w = (k / k.sum()).tolist()
    x = _smooth3(_smooth3(pooled, w, -1), w, -2)
    img = x.amax(dim=1)  # [M, S, S]
    img = img / img.amax(dim=(-1, -2), keepdim=True)
    return 1.0 - img
