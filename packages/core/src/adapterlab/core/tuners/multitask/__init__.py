"""Multi-task adapters as a first-class option (VL-Adapter, Sung et al., CVPR 2022).

One adapter set for several tasks, selected per sample by task id (``set_task_ids``): ``shared``
(VL-Adapter's single adapter), ``per_task`` (multiple adapters) or ``half_shared`` (a shared
down-projection with per-task up-projections, or the reverse). ``task_heads`` gives modules one
trainable copy per task, routed by the same ids. Alternatively, one adapter per task with its own
``modules_to_save`` head, switched with ``set_active``, serves single-task batches.
"""

from __future__ import annotations

from torch import nn

from ...targeting import match_modules, resolve_module
from ..base import replace_submodule
from ..bottleneck import inject_bottleneck_adapters
from ..registry import AdapterMethod, register_method
from ..sublayer import adapter_kwargs
from ..tasks import task_state
from .config import SHARINGS, MultiTaskConfig
from .layer import MultiTaskAdapter, TaskRoutedModule, routed_linear

__all__ = ["SHARINGS", "MultiTaskAdapter", "MultiTaskConfig", "TaskRoutedModule", "routed_linear"]


def _inject(model: nn.Module, config: MultiTaskConfig, name: str) -> dict[str, nn.Module]:
    tasks = task_state(model)
    heads = match_modules(model, config.task_heads) if config.task_heads else []

    def build(dim: int) -> MultiTaskAdapter:
        return MultiTaskAdapter(dim, config.size(dim), config, tasks, **adapter_kwargs(config))

    handles = inject_bottleneck_adapters(model, config, name, build, "multitask")
    for clean, _ in heads:
        path, module = resolve_module(model, clean)
        if not isinstance(module, TaskRoutedModule):
            module = TaskRoutedModule(module)
            replace_submodule(model, path, module)
        handles[f"{clean}.task_heads"] = module.add_copies(name, config.n_tasks, tasks)
    return handles


register_method(MultiTaskConfig, AdapterMethod(inject=_inject))
