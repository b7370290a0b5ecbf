"""Multi-task bottleneck adapters routed per sample by task id, and per-task copies of a module.

VL-Adapter (Sung et al., "VL-Adapter: Parameter-Efficient Transfer Learning for
Vision-and-Language Tasks", CVPR 2022): one adapter shared by all tasks ("single"), one per task
("multiple") or half-shared (one projection shared).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..base import SublayerAdapter
from ..bottleneck.layer import BottleneckAdapter, make_activation
from ..tasks import resolve_task_ids
from ..wrapping import AdapterCarrier
from .config import MultiTaskConfig

__all__ = ["MultiTaskAdapter", "TaskRoutedModule", "routed_linear"]


def routed_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, ids: torch.Tensor | None
) -> torch.Tensor:
    """``x @ weight[t].T + bias[t]`` with ``t = ids[i]`` for sample ``i`` (dim 0 of ``x``);
    ``weight [T, out, in]``, ``bias [T, out]``; one shared copy when ``T == 1``."""
    if weight.shape[0] == 1:
        return F.linear(x, weight[0], bias[0])
    batch = x.shape[0]
    flat = x.reshape(batch, -1, x.shape[-1])
    y = torch.baddbmm(bias[ids].unsqueeze(1), flat, weight[ids].transpose(1, 2))
    return y.reshape(*x.shape[:-1], weight.shape[1])


class MultiTaskAdapter(BottleneckAdapter):
    """``A(h) = up_t(act(down_t(h)))`` with the projections of sample ``i``'s task ``t``
    (shared projections have one copy). Up-projections start at zero (identity at init)."""

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        config: MultiTaskConfig,
        tasks: Any,
        *,
        placement: str = "sequential",
        scaling: float = 1.0,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        SublayerAdapter.__init__(self)
        self.placement, self.scaling, self.residual = placement, scaling, residual
        self.n_tasks = config.n_tasks
        n_down, n_up = config.tasks_of("down"), config.tasks_of("up")
        down = torch.empty(n_down, bottleneck, dim)
        for t in range(n_down):  # nn.Linear's default (Kaiming-uniform) weight init per task
            nn.init.kaiming_uniform_(down[t], a=math.sqrt(5))
        self.down_weight = nn.Parameter(down)
        self.down_bias = nn.Parameter(torch.zeros(n_down, bottleneck))
        self.up_weight = nn.Parameter(torch.zeros(n_up, dim, bottleneck))
        self.up_bias = nn.Parameter(torch.zeros(n_up, dim))
        self.act = make_activation(config.activation)
        self.dropout = nn.Dropout(dropout)
        self.__dict__["_tasks"] = tasks

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        x = h.to(self.down_weight.dtype)
        ids = None
        if max(self.down_weight.shape[0], self.up_weight.shape[0]) > 1:
            ids = resolve_task_ids(
                self.__dict__["_tasks"], x.shape[0], self.n_tasks, x.device, "multi-task adapter"
            )
        z = self.dropout(self.act(routed_linear(x, self.down_weight, self.down_bias, ids)))
        z = routed_linear(z, self.up_weight, self.up_bias, ids)
        return (z * self.scaling).to(h.dtype)


class TaskRoutedModule(AdapterCarrier):
    """Wraps a module (e.g. a classification head): each adapter holds one trainable copy per
    task (``adapters[name][t]``) and sample ``i`` runs through the copy of its task. Inputs and
    outputs are batched on dim 0; the original module stays frozen and runs when disabled."""

    def add_copies(self, name: str, n_tasks: int, tasks: Any) -> nn.ModuleList:
        copies = nn.ModuleList(copy.deepcopy(self.base_layer) for _ in range(n_tasks))
        self.adapters[name] = copies
        self.__dict__.setdefault("_tasks", tasks)
        return copies

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        names = self.running()
        if not names:
            return self.base_layer(x, *args, **kwargs)
        copies = self.adapters[names[0]]
        ids = resolve_task_ids(
            self.__dict__["_tasks"], x.shape[0], len(copies), x.device, "per-task module"
        )
        if len(copies) == 1 or bool((ids == ids[0]).all()):
            return copies[int(ids[0])](x, *args, **kwargs)
        out: torch.Tensor | None = None
        for t in torch.unique(ids).tolist():
            rows = (ids == t).nonzero().squeeze(1)
            y = copies[t](x[rows], *args, **kwargs)
            if out is None:
                out = y.new_zeros((x.shape[0], *y.shape[1:]))
            out = out.index_copy(0, rows, y)
        return out
