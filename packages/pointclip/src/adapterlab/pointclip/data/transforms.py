"""Point-cloud normalisation, the ModelNet rotation and farthest/uniform point sampling."""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)
Sampling = Literal["uniform", "fps"]


def normalize_unit_sphere(points: ArrayT) -> ArrayT:
    """CLIP2Point ``pc_normalize``: subtract the centroid (mean) and divide by the largest L2 norm.

    Works on [N, 3] or batched [B, N, 3] arrays/tensors. A cloud of identical points is only centred.
    """
    if isinstance(points, Tensor):
        centred = points - points.mean(dim=-2, keepdim=True)
        scale = centred.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None]
        return centred / torch.where(scale > 0, scale, torch.ones_like(scale))
    centred = points - points.mean(axis=-2, keepdims=True)
    scale = np.linalg.norm(centred, axis=-1).max(axis=-1, keepdims=True)[..., None]
    return centred / np.where(scale > 0, scale, 1.0).astype(centred.dtype)


_R1 = np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
)  # axis_angle_to_matrix([pi/2, 0, 0])
_R2 = np.array(
    [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
)  # axis_angle_to_matrix([0, -pi/2, 0])
#: CLIP2Point ``rot=True`` as one matrix applied to row vectors: ``points @ MODELNET_ROTATION``.
MODELNET_ROTATION = _R1 @ _R2


def modelnet_rotation(points: ArrayT) -> ArrayT:
    """CLIP2Point's ModelNet rotation ``points @ Rx(+90 deg) @ Ry(-90 deg)``: z-up (x, y, z) -> (-y, z, -x)."""
    if isinstance(points, Tensor):
        return points @ torch.as_tensor(MODELNET_ROTATION, dtype=points.dtype, device=points.device)
    return (points @ MODELNET_ROTATION).astype(points.dtype)


def farthest_point_sample(
    points: Tensor, k: int, generator: torch.Generator | None = None, random_start: bool = False
) -> Tensor:
    """Batched farthest point sampling: [B, N, 3] -> LongTensor [B, k] indices.

    Starts from index 0 like pointnet2_ops' ``furthest_point_sample`` (or a random index with
    ``random_start``); each step adds the point farthest from the ones chosen so far. Batched over clouds;
    the k steps are inherently sequential.
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be [B, N, 3], got {tuple(points.shape)}")
    b, n, _ = points.shape
    if not 1 <= k <= n:
        raise ValueError(f"cannot pick k={k} points out of N={n}")
    dev = points.device
    if random_start:
        gdev = generator.device if generator is not None else dev
        far = torch.randint(n, (b,), generator=generator, device=gdev).to(dev)
    else:
        far = torch.zeros(b, dtype=torch.long, device=dev)
    if (
        dev.type == "cpu"
    ):  # numpy has far less per-step overhead than torch for this sequential loop
        return torch.from_numpy(_fps_numpy(points.detach().float().numpy(), k, far.numpy()))
    return _fps_torch(points, k, far)


def _fps_torch(points: Tensor, k: int, far: Tensor) -> Tensor:
    b, n, _ = points.shape
    idx = torch.empty(b, k, dtype=torch.long, device=points.device)
    mind = torch.full((b, n), float("inf"), device=points.device, dtype=points.dtype)
    rows = torch.arange(b, device=points.device)
    for i in range(k):
        idx[:, i] = far
        d = (points - points[rows, far][:, None, :]).pow(2).sum(-1)
        mind = torch.minimum(mind, d)
        far = mind.argmax(dim=-1)
    return idx


def _fps_numpy(points: np.ndarray, k: int, start: np.ndarray) -> np.ndarray:
    b, n, _ = points.shape
    idx = np.empty((b, k), dtype=np.int64)
    for j in range(b):
        x, y, z = np.ascontiguousarray(points[j].T)
        mind = np.full(n, np.inf, dtype=x.dtype)
        far = int(start[j])
        for i in range(k):
            idx[j, i] = far
            dx, dy, dz = x - x[far], y - y[far], z - z[far]
            np.minimum(mind, dx * dx + dy * dy + dz * dz, out=mind)
            far = int(mind.argmax())
    return idx


def sample_points(
    points: Tensor, k: int, method: Sampling = "uniform", generator: torch.Generator | None = None
) -> Tensor:
    """Pick ``k`` of the [N, 3] points: ``"uniform"`` = random subset without replacement, ``"fps"`` = farthest
    point sampling. Returns [k, 3]."""
    n = points.shape[0]
    if k > n:
        raise ValueError(f"cannot pick {k} points out of {n}")
    if method == "uniform":
        perm = torch.randperm(n, generator=generator)[:k]
        return points[perm.to(points.device)]
    if method == "fps":
        return points[farthest_point_sample(points[None], k)[0]]
    raise ValueError(f"sampling must be 'uniform' or 'fps', got {method!r}")


def scale_and_shift(
    points: Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (2.0 / 3.0, 1.5),
    shift: float = 0.2,
) -> Tensor:
    """PointCLIP's few-shot augmentation (``PointcloudScaleAndTranslate``): every cloud of a
    ``[B, N, 3]`` batch (or one ``[N, 3]`` cloud) gets a per-axis scale U(2/3, 3/2) and a per-axis
    shift U(-0.2, 0.2)."""
    batch = points if points.dim() == 3 else points[None]
    b = batch.shape[0]
    lo, hi = scale
    s = lo + (hi - lo) * torch.rand(b, 1, 3, generator=generator)
    t = shift * (2 * torch.rand(b, 1, 3, generator=generator) - 1)
    out = batch * s.to(batch) + t.to(batch)
    return out if points.dim() == 3 else out[0]
