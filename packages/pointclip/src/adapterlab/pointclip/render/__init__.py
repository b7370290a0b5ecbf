"""Multi-view depth rendering of point clouds (CLIP2Point, PointCLIP, PointCLIP V2 projections)."""

from .depth import (
    CLIP_MEAN,
    CLIP_STD,
    MODES,
    DepthRenderConfig,
    DepthRenderer,
    check_points,
)
from .presets import PUBLISHED_VIEWS, make_depth_renderer, published_views
from .reference import render_reference
from .views import (
    VIEWS_6,
    VIEWS_10,
    camera_to_world,
    clip2point_views,
    look_at_axes,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "MODES",
    "PUBLISHED_VIEWS",
    "VIEWS_6",
    "VIEWS_10",
    "DepthRenderConfig",
    "DepthRenderer",
    "camera_to_world",
    "check_points",
    "clip2point_views",
    "look_at_axes",
    "make_depth_renderer",
    "published_views",
    "render_reference",
]
