"""Config of Poly / MHR / MHR-z / MHR-mu adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...config import AdapterConfig

if TYPE_CHECKING:
    import peft

__all__ = ["PolyConfig", "ROUTINGS"]

ROUTINGS = ("learned", "average")


@dataclass
class PolyConfig(AdapterConfig):
    """Polytropon / Multi-Head Routing: an inventory of LoRA skills mixed per task.

    Ponti et al. 2023, "Combining Parameter-efficient Modules for Task-level Generalisation"
    (Poly); Caccia et al. 2023, "Multi-Head Adapter Routing for Cross-Task Generalization"
    (MHR, MHR-z, MHR-mu). Defaults are PEFT's ``PolyConfig`` (r=8, n_skills=4, n_splits=1).

    Attributes:
        r: rank of every skill's LoRA.
        n_skills: skills (LoRA modules) per layer.
        n_splits: heads the input/output dimensions are split into, each routed on its own;
            ``> 1`` is MHR (both dimensions must be divisible by it).
        n_tasks: rows of the routing matrix (one per training task).
        routing: ``"learned"`` (RelaxedBernoulli in training, sigmoid at eval, normalised over
            the skills of each split) or ``"average"`` (uniform ``1/n_skills``: MHR-mu).
        train_only_router: MHR-z, only the routing logits train (the skills stay frozen).
        temperature: RelaxedBernoulli temperature (1.0 in mttl and PEFT).
        init_weights: PEFT's init (True: B = 0, so a fresh adapter changes nothing).
    """

    method = "poly"

    r: int = 8
    n_skills: int = 4
    n_splits: int = 1
    n_tasks: int = 1
    routing: str = "learned"
    train_only_router: bool = False
    temperature: float = 1.0
    init_weights: bool = True

    def validate(self) -> None:
        for field_name in ("r", "n_skills", "n_splits", "n_tasks"):
            if int(getattr(self, field_name)) < 1:
                raise ValueError(
                    f"poly: {field_name} must be >= 1, got {getattr(self, field_name)}"
                )
        if self.routing not in ROUTINGS:
            raise ValueError(f"poly: routing must be one of {ROUTINGS}, got {self.routing!r}")
        if self.temperature <= 0:
            raise ValueError(f"poly: temperature must be > 0, got {self.temperature}")
        if self.routing == "average" and self.train_only_router:
            raise ValueError(
                "poly: routing='average' (MHR-mu) has no router to train; "
                "train_only_router=True (MHR-z) needs routing='learned'"
            )

    def to_peft(self, target_modules: list[str]) -> peft.PolyConfig:
        """The equivalent ``peft.PolyConfig`` for explicit module names."""
        import peft

        return peft.PolyConfig(
            r=self.r,
            n_tasks=self.n_tasks,
            n_skills=self.n_skills,
            n_splits=self.n_splits,
            init_weights=self.init_weights,
            target_modules=target_modules,
        )
