"""VL-Adapter's multi-task comparison (Sung et al., CVPR 2022) on BLIP: VQA and captioning in
one model, per-task / shared / half-shared adapters, Hyperformer, Compacter, prompt (prefix)
tuning and full fine-tuning, task chosen per batch by id."""

from .config import EMBEDDED_RECIPE, PAPER_RECIPE, TASK_NAMES, MultiTaskConfig
from .methods import MT_METHODS, apply_mt_method, method_config, mt_spec
from .mixing import TaskBatches, round_robin, unwrap_collate

__all__ = [
    "EMBEDDED_RECIPE",
    "MT_METHODS",
    "PAPER_RECIPE",
    "TASK_NAMES",
    "MultiTaskConfig",
    "TaskBatches",
    "apply_mt_method",
    "method_config",
    "mt_spec",
    "round_robin",
    "run_multitask",
    "train_multitask",
    "unwrap_collate",
]


def __getattr__(name: str):
    if name == "run_multitask":
        from .pipeline import run_multitask

        return run_multitask
    if name == "train_multitask":
        from .train import train_multitask

        return train_multitask
    raise AttributeError(name)
