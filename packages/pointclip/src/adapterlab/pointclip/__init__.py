"""adapterlab.pointclip: CLIP2Point (Huang et al., ICCV 2023) with its PointCLIP (Zhang et al.,
CVPR 2022) and PointCLIP V2 (Zhu et al., ICCV 2023) baselines on adapterlab.

The public API, re-exported here; heavy modules (torch, open_clip, pyrender) load on first use::

    from adapterlab.pointclip import load_clip, preset_pretrain_config, run_pretraining, run_all
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # models
    "ClipBundle": ".models.clip",
    "PretrainedWeightsError": ".models.clip",
    "load_clip": ".models.clip",
    "needs_quick_gelu": ".models.clip",
    "Clip2PointLoss": ".models.losses",
    "nt_xent": ".models.losses",
    "DualPathAdapter": ".models.adapters",
    "PointCLIPAdapterHead": ".models.adapters",
    "load_encoder_weights": ".models.encoders",
    "save_encoder_weights": ".models.encoders",
    "Clip2PointPretrainModel": ".models.clip2point",
    "load_depth_encoder": ".models.clip2point",
    "ImageFeatureTable": ".models.features",
    "ViewFeatures": ".models.features",
    "compute_image_features": ".models.features",
    "TEMPLATES": ".models.zeroshot",
    "build_text_features": ".models.zeroshot",
    "zero_shot_logits": ".models.zeroshot",
    "extract_view_features": ".models.features",
    # rendering and data
    "DepthRenderConfig": ".render",
    "DepthRenderer": ".render",
    "render_pairs": ".pairs",
    "ImageDepthPairs": ".pairs",
    "ModelNetOff": ".data",
    "ModelNetH5": ".data",
    "ModelNetPly": ".data",
    "ScanObjectNNH5": ".data",
    "generate_embedded_modelnet": ".data",
    "fetch_cgal_meshes": ".data",
    "PretrainDataset": ".data.training",
    "FeatureDataset": ".data.training",
    "few_shot_split": ".data.fewshot",
    # configs (one per CLI subcommand + training settings)
    "PretrainConfig": ".config",
    "FewShotConfig": ".config",
    "PipelineConfig": ".config",
    "RunAllOptions": ".config",
    "RenderPairsConfig": ".config",
    "PretrainCommandConfig": ".config",
    "ZeroShotConfig": ".config",
    "FewShotCommandConfig": ".config",
    "preset_pretrain_config": ".config",
    # methods, task and training
    "FEWSHOT_HEADS": ".methods",
    "pretrain_adapter_config": ".methods",
    "retrieval_metrics": ".task",
    "pretrain_loss": ".task",
    "pretrain_eval_step": ".task",
    "pretrain_metric_fn": ".task",
    "PretrainResult": ".train",
    "run_pretraining": ".train",
    "FewShotResult": ".train",
    "train_fewshot_head": ".train",
    # main job
    "run_all": ".pipeline",
    "published_views": ".render.presets",
    "make_depth_renderer": ".render.presets",
    "load_classification_split": ".data.layout",
    "detect_layout": ".data.layout",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'adapterlab.pointclip' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value
