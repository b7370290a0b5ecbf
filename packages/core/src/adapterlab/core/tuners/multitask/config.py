"""Multi-task bottleneck config: shared, per-task or half-shared adapters (VL-Adapter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import register_preset
from ..bottleneck.config import BottleneckConfig

__all__ = ["SHARINGS", "MultiTaskConfig"]

SHARINGS = ("shared", "per_task", "half_shared")


@dataclass
class MultiTaskConfig(BottleneckConfig):
    """Bottleneck adapters for ``n_tasks`` tasks in one model, selected per sample by task id
    (:func:`~adapterlab.core.set_task_ids`), so one batch may mix tasks.

    Attributes:
        n_tasks: number of tasks (ids ``0..n_tasks-1``).
        sharing: ``shared`` (one adapter for all tasks: VL-Adapter's "single adapter"),
            ``per_task`` (one adapter per task: "multiple adapters") or ``half_shared`` (one
            projection shared, the other per task).
        shared_projection: for ``half_shared``, the projection all tasks share (``down``: a
            shared down-projection with per-task up-projections, or ``up``).
        task_heads: modules (e.g. ``["classifier"]``) that get one trainable copy per task,
            routed by the same task ids (per-task heads; the originals stay frozen).
    """

    method = "multitask"

    n_tasks: int = 1
    sharing: Literal["shared", "per_task", "half_shared"] = "per_task"
    shared_projection: Literal["down", "up"] = "down"
    task_heads: list[str] = field(default_factory=list)

    def validate(self) -> None:
        super().validate()
        if self.n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {self.n_tasks}")
        if self.sharing not in SHARINGS:
            raise ValueError(f"sharing must be one of {SHARINGS}, got {self.sharing!r}")
        if self.shared_projection not in ("down", "up"):
            raise ValueError(
                f"shared_projection must be 'down' or 'up', got {self.shared_projection!r}"
            )
        if self.placement != "sequential":
            raise ValueError("multi-task adapters are sequential (placement='sequential')")

    def tasks_of(self, projection: str) -> int:
        """How many copies of ``projection`` (``down``/``up``) there are."""
        if self.sharing == "shared":
            return 1
        if self.sharing == "half_shared" and projection == self.shared_projection:
            return 1
        return self.n_tasks


# VL-Adapter's placement (after every attention and FFN sublayer), reduction 8 in the paper.
for _name, _sharing in (
    ("multitask_shared", "shared"),
    ("multitask_per_task", "per_task"),
    ("multitask_half_shared", "half_shared"),
):
    register_preset(_name, "multitask", locations=("attn", "ffn"), sharing=_sharing)
