"""PEFT's Poly layer and router, extended with MHR-mu, a temperature and per-model task ids.

What PEFT (``peft.tuners.poly``) already provides and is used as is: the parameters
(``poly_lora_A``: splits x skills x d_in/splits x r, ``poly_lora_B``: splits x skills x r x
d_out/splits, ``poly_router.module_logits``: tasks x splits*skills), their init, the mixing of
skills per split (einsum) and the ``/ r`` scaling. What is added here:

- :class:`MHRRouter`: ``routing="average"`` (MHR-mu: uniform weights, no learned router) and a
  RelaxedBernoulli temperature;
- :class:`MHRLinear`: task ids come from the model (:func:`set_task_ids` / :func:`use_task_ids`)
  so any backbone works without a ``task_ids=`` forward argument, inputs of any rank are
  accepted (the first dimension is the batch) and ``n_tasks == 1`` needs no task ids at all.
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.poly.layer import Linear as PeftPolyLinear
from peft.tuners.poly.router import EPS, PolyRouter
from torch import nn
from torch.distributions.relaxed_bernoulli import RelaxedBernoulli

from ..tasks import TASKS_ATTR, TaskIds, set_task_ids, task_state, use_task_ids

__all__ = [
    "MHRLinear",
    "MHRRouter",
    "TaskIds",
    "routing_weights",
    "set_task_ids",
    "use_task_ids",
]

_TASKS_ATTR = TASKS_ATTR


def routing_weights(
    logits: torch.Tensor, n_splits: int, n_skills: int, training: bool, temperature: float = 1.0
) -> torch.Tensor:
    """Mixing weights ``[B, n_splits, n_skills]`` from routing logits ``[B, n_splits*n_skills]``.

    Training: a RelaxedBernoulli sample (reparameterised); eval: ``sigmoid``. Each split is then
    normalised to sum to 1 over its skills (mttl ``mhr-camera-ready``, PEFT ``PolyRouter``).
    """
    logits = logits.view(-1, n_splits, n_skills)
    if training:
        probs = RelaxedBernoulli(temperature=temperature, logits=logits).rsample()
    else:
        probs = torch.sigmoid(logits)
    return probs / (probs.sum(dim=-1, keepdim=True) + EPS)


class MHRRouter(PolyRouter):
    """PEFT's ``PolyRouter`` plus ``routing="average"`` (MHR-mu) and a temperature."""

    def __init__(self, poly_config: Any, routing: str = "learned", temperature: float = 1.0):
        super().__init__(poly_config)
        self.routing = routing
        self.temperature = temperature

    def forward(self, task_ids: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        if task_ids is None:
            raise ValueError("task_ids should not be None.")
        if self.routing == "average":
            return torch.full(
                (task_ids.shape[0], self.n_splits, self.n_skills),
                1.0 / self.n_skills,
                dtype=self.module_logits.dtype,
                device=self.module_logits.device,
            )
        if int(task_ids.max()) >= self.n_tasks or int(task_ids.min()) < 0:
            raise ValueError(
                f"task id {int(task_ids.max())} out of range: this adapter routes over "
                f"{self.n_tasks} task(s)"
            )
        logits = self.module_logits[task_ids.to(self.module_logits.device)]
        return routing_weights(
            logits, self.n_splits, self.n_skills, self.training, self.temperature
        )


class MHRLinear(PeftPolyLinear):
    """PEFT's Poly ``Linear`` reading its task ids from the model (see module docstring)."""

    def _running(self) -> list[str]:
        if self.disable_adapters:
            return []
        return [a for a in self.active_adapters if a in self.poly_lora_A]

    def _resolve(self, batch: int, device: torch.device) -> torch.Tensor:
        value = self.__dict__[_TASKS_ATTR].value
        running = self._running()
        if value is None:
            multi = [a for a in running if self.n_tasks[a] > 1]
            if multi:
                raise ValueError(
                    f"Poly adapter(s) {multi} route over {self.n_tasks[multi[0]]} tasks: call "
                    "set_task_ids(model, ids) or use `with use_task_ids(model, ids):` first"
                )
            return torch.zeros(batch, dtype=torch.long, device=device)
        ids = torch.as_tensor(value, dtype=torch.long, device=device)
        if ids.dim() == 0 or ids.numel() == 1:
            return ids.reshape(1).expand(batch)
        if ids.dim() != 1 or ids.shape[0] != batch:
            raise ValueError(
                f"task ids have shape {tuple(ids.shape)} but the batch has {batch} samples"
            )
        return ids

    def forward(
        self, x: torch.Tensor, *args: Any, task_ids: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        if not self._running():
            return self.base_layer(x, *args, **kwargs)
        if task_ids is None:
            task_ids = self._resolve(x.shape[0], x.device)
        shape = x.shape
        x3 = x if x.dim() == 3 else x.reshape(shape[0], -1, shape[-1])
        out = super().forward(x3, *args, task_ids=task_ids, **kwargs)
        return out.reshape(*shape[:-1], out.shape[-1])


def attach(layer: PeftPolyLinear, model: nn.Module, name: str, routing: str, temp: float) -> None:
    """Turn a freshly injected PEFT Poly layer into an :class:`MHRLinear` for adapter ``name``."""
    old = layer.poly_router[name]
    router = MHRRouter(_RouterSpec(old), routing=routing, temperature=temp)
    router.module_logits = old.module_logits
    layer.poly_router[name] = router
    if not isinstance(layer, MHRLinear):
        layer.__class__ = MHRLinear
    layer.__dict__[_TASKS_ATTR] = task_state(model)


class _RouterSpec:
    """The fields ``PolyRouter.__init__`` reads, copied from an existing router."""

    def __init__(self, router: PolyRouter) -> None:
        self.poly_type = router.poly_type
        self.n_tasks = router.n_tasks
        self.n_skills = router.n_skills
        self.n_splits = router.n_splits
