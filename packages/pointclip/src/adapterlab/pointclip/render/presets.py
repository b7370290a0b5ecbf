"""Each method's published view count and the classification-time depth renderer."""

from __future__ import annotations

import torch

__all__ = ["PUBLISHED_VIEWS", "make_depth_renderer", "published_views"]


#: Each method's published number of views per task (CLIP2Point: 6 zero-shot, 10 few-shot;
#: PointCLIP V1: 6 zero-shot at 128 px and TRANS -1.6, 10 few-shot at 224 px and TRANS -1.4;
#: PointCLIP V2: 10).
PUBLISHED_VIEWS: dict[tuple[str, str], int] = {
    ("clip2point", "zeroshot"): 6,
    ("clip2point", "fewshot"): 10,
    ("pointclip", "zeroshot"): 6,
    ("pointclip", "fewshot"): 10,
    ("realistic", "zeroshot"): 10,
    ("realistic", "fewshot"): 10,
}


def published_views(projection: str, task: str) -> int:
    """The number of views ``projection`` used for ``task`` ("zeroshot" or "fewshot")."""
    try:
        return PUBLISHED_VIEWS[(projection, task)]
    except KeyError:
        raise ValueError(
            f"no published view count for projection {projection!r}, {task!r}"
        ) from None


def make_depth_renderer(
    image_size: int, num_views: int = 10, projection: str = "clip2point"
) -> torch.nn.Module:
    """The classification-time depth renderer (no jitter) with each projection's original
    output convention: CLIP mean/std for ``clip2point``, raw [0, 1] maps for ``pointclip`` and
    ``realistic`` (PointCLIP V1/V2 feed them to CLIP unnormalised)."""
    from .depth import DepthRenderer

    return DepthRenderer(mode=projection, num_views=num_views, image_size=image_size)
