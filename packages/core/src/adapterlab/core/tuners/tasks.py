"""Per-model task ids for task-conditioned adapters (Poly/MHR, Hyperformer, multi-task).

``set_task_ids(model, ids)`` stores the ids once per model; every task-conditioned layer of that
model reads them in its forward pass, so any backbone works without a ``task_ids=`` argument.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = [
    "TASKS_ATTR",
    "TaskIds",
    "resolve_task_ids",
    "set_task_ids",
    "task_state",
    "use_task_ids",
]

TaskIds = torch.Tensor | int | Sequence[int] | None
TASKS_ATTR = "_adapterlab_task_ids"


class _TaskState:
    """The task ids a model's task-conditioned layers use (shared by all its layers)."""

    def __init__(self) -> None:
        self.value: TaskIds = None


def task_state(model: nn.Module) -> _TaskState:
    """The model's shared task-id holder (created on demand)."""
    state = model.__dict__.get(TASKS_ATTR)
    if state is None:
        state = _TaskState()
        model.__dict__[TASKS_ATTR] = state
    return state


def set_task_ids(model: nn.Module, task_ids: TaskIds) -> None:
    """Use ``task_ids`` in the next forward passes of ``model``.

    ``task_ids``: one id per sample (tensor or list, length = batch; a batch may mix tasks), one
    int for the whole batch, or ``None`` (only allowed when every active task-conditioned adapter
    serves a single task).
    """
    if isinstance(task_ids, Sequence) and not isinstance(task_ids, str):
        task_ids = torch.as_tensor(list(task_ids), dtype=torch.long)
    task_state(model).value = task_ids


@contextlib.contextmanager
def use_task_ids(model: nn.Module, task_ids: TaskIds) -> Iterator[nn.Module]:
    """Context manager: :func:`set_task_ids` for the block, then restore the previous ids."""
    state = task_state(model)
    previous = state.value
    set_task_ids(model, task_ids)
    try:
        yield model
    finally:
        state.value = previous


def resolve_task_ids(
    state: _TaskState, batch: int, n_tasks: int, device: torch.device, who: str
) -> torch.Tensor:
    """``[batch]`` long task ids from ``state`` (zeros for a single-task adapter without ids);
    a clear ``ValueError`` for missing ids, a wrong length or an id out of range."""
    value = state.value
    if value is None:
        if n_tasks > 1:
            raise ValueError(
                f"{who} serves {n_tasks} tasks: call set_task_ids(model, ids) or use "
                "`with use_task_ids(model, ids):` first"
            )
        return torch.zeros(batch, dtype=torch.long, device=device)
    ids = torch.as_tensor(value, dtype=torch.long, device=device)
    if ids.dim() == 0 or ids.numel() == 1:
        ids = ids.reshape(1).expand(batch)
    if ids.dim() != 1 or ids.shape[0] != batch:
        raise ValueError(
            f"task ids have shape {tuple(ids.shape)} but the batch has {batch} samples"
        )
    if int(ids.min()) < 0 or int(ids.max()) >= n_tasks:
        raise ValueError(
            f"task id {int(ids.max()) if int(ids.max()) >= n_tasks else int(ids.min())} out of "
            f"range: {who} serves {n_tasks} task(s) (ids 0..{n_tasks - 1})"
        )
    return ids
