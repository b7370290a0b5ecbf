"""CLIP2Point's pre-training model (Huang et al., ICCV 2023, Sec. 3.2) and loading its result.

The image encoder (CLIP's visual tower) is frozen and used outside this module (its features are
computed once, :func:`~.features.compute_image_features`); the depth encoder starts as a copy of
it and is trained (fully, or through any core adapter). For each object one view is drawn; two
depth maps of that view are rendered with a +-10 % camera-distance jitter; the loss is
:class:`~.losses.Clip2PointLoss`: NT-Xent(mean(depth1, depth2), image) + NT-Xent(depth1, depth2)/w^2
+ log(w+1). Training itself is ``adapterlab.pointclip.train.run_pretraining``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .clip import ClipBundle
from .encoders import encoder_metadata, load_encoder_weights
from .losses import DEFAULT_TEMPERATURE, Clip2PointLoss

__all__ = ["Clip2PointPretrainModel", "load_depth_encoder", "plain_encoder"]


class Clip2PointPretrainModel(nn.Module):
    """Depth encoder + depth renderer + loss (with the learnable ``w``).

    Only ``depth_encoder`` and ``criterion`` hold parameters, so the core adapter API sees one
    open_clip backbone and the saved checkpoint holds the depth encoder (plus ``w``).
    """

    def __init__(
        self,
        visual: nn.Module,
        image_size: int,
        num_views: int = 10,
        jitter: float = 0.1,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        super().__init__()
        from ..render import DepthRenderer

        self.depth_encoder = copy.deepcopy(visual)
        for p in self.depth_encoder.parameters():
            p.requires_grad_(True)
        self.criterion = Clip2PointLoss(temperature)
        self.renderer = DepthRenderer(
            mode="clip2point", num_views=num_views, image_size=image_size, jitter=jitter
        )

    def render_view(
        self, points: torch.Tensor, view: torch.Tensor, jitter: bool = True
    ) -> torch.Tensor:
        """Depth maps ``[B, 3, S, S]`` of one view per cloud (``view``: ``[B]`` indices)."""
        dist = None if jitter else torch.ones(points.shape[0], device=points.device)
        return self.renderer(points, views=view.view(-1, 1), dist_scale=dist)[:, 0]

    def forward(
        self, points: torch.Tensor, view: torch.Tensor, image_feat: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Loss dict for a batch: two jittered renders of ``view`` vs the frozen image feature."""
        b = points.shape[0]
        depths = torch.cat([self.render_view(points, view), self.render_view(points, view)])
        feats = self.depth_encoder(depths)
        return self.criterion(feats[:b], feats[b:], image_feat)

    @torch.no_grad()
    def embed_depth(self, points: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """Depth features of un-jittered renders (for retrieval and evaluation)."""
        return self.depth_encoder(self.render_view(points, view, jitter=False))


def plain_encoder(model: Clip2PointPretrainModel) -> nn.Module | None:
    """The trained depth encoder as a plain open_clip module (adapters merged), or None.

    Full training returns ``model.depth_encoder`` itself; LoRA / BitFit are merged into a copy;
    adapters that cannot merge (bottleneck, prompts) give None - their artefact is the engine's
    adapter folder (``best/``), loadable with :func:`load_depth_encoder`.
    """
    from adapterlab.core import list_adapters, merge_adapter

    cfg = list_adapters(model).get("default")
    if cfg is None or cfg.method in ("linear_probe", "full"):
        return model.depth_encoder
    merged = copy.deepcopy(model)
    try:
        merge_adapter(merged)
    except ValueError:
        return None
    return merged.depth_encoder


def load_depth_encoder(clip: ClipBundle, path: str | Path) -> nn.Module:
    """A pre-trained depth encoder from a ``.safetensors``/``.pth`` file (plain encoder weights,
    e.g. ``depth_encoder.safetensors`` or an original CLIP2Point checkpoint) or from an adapter
    folder written by pre-training (``adapter_config.json`` + ``adapter.safetensors``)."""
    from adapterlab.core import load_adapter

    path = Path(path)
    if path.is_dir():
        if not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"'{path}' is a folder without adapter_config.json; pass a "
                "depth_encoder.safetensors file or a pre-training adapter folder (<run>/pretrain/best)"
            )
        model = Clip2PointPretrainModel(clip.visual, clip.image_size)
        load_adapter(model, path)
        model.to(next(clip.model.parameters()).device)
        return model.depth_encoder.eval()
    trained_with = encoder_metadata(path).get("quick_gelu")
    using = clip.weights.get("quick_gelu")
    if (
        trained_with in ("true", "false")
        and using is not None
        and (trained_with == "true") != using
    ):
        raise ValueError(
            f"Depth encoder '{path}' was pre-trained with quick_gelu={trained_with}, but this CLIP "
            f"was built with quick_gelu={str(using).lower()} ({clip.weights.get('quick_gelu_from')}); "
            f"pass --quick_gelu {trained_with}"
        )
    encoder = clip.copy_visual()
    return load_encoder_weights(encoder, path).eval()
