"""The config of ``adapterlab-vl multitask`` (every field's docstring is its ``--help``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import CommonConfig
from .methods import MT_METHODS, mt_spec

__all__ = ["EMBEDDED_RECIPE", "MultiTaskConfig", "PAPER_RECIPE", "TASK_NAMES"]

#: the tasks of the multi-task model, by task id
TASK_NAMES = ("vqa", "caption")

#: VL-Adapter's recipe (bart-base, scripts/image/*.sh): AdamW, warm-up 0.1, clip 5, 20 epochs,
#: batch B per VQA batch and B x 50/60 per caption batch, beam 5, reduction 8, prompt length 40,
#: Hyperformer task embedding 512 / hidden 128 / projected 8, learning rates per method
PAPER_RECIPE: dict[str, Any] = {
    "epochs": 20, "batch_size": 32, "warmup_ratio": 0.1, "max_grad_norm": 5.0, "beams": 5,
    "reduction": 8.0, "prompt_tokens": 40, "hyper": (512, 128, 8), "lr_scale": {},
}  # fmt: skip
#: the embedded demo (tiny BLIP, 2 CPU cores): the paper's recipe shrunk; learning rates are the
#: paper's times a per-method scale chosen on validation (README: "Multi-task")
EMBEDDED_RECIPE: dict[str, Any] = {
    "epochs": 8, "batch_size": 32, "warmup_ratio": 0.1, "max_grad_norm": 5.0, "beams": 1,
    "reduction": 2.0, "prompt_tokens": 8, "hyper": (64, 64, 8),
    "lr_scale": {"per_task": 10.0, "shared": 10.0, "half_shared": 3.0, "hyperformer": 10.0,
                 "compacter": 10.0, "prompt": 100.0, "full": 3.0},
}  # fmt: skip
#: VL-Adapter's per-task batch: caption batches are B x 50/60
CAPTION_BATCH_RATIO = 50 / 60


@dataclass
class MultiTaskConfig(CommonConfig):
    """One BLIP for VQA and captioning: VL-Adapter's multi-task comparison (adapterlab-vl
    multitask). --preset paper: VL-Adapter's settings (AdamW, lr 1e-4 full / 3e-4 per-task
    adapters / 1e-3 the others, warm-up 0.1, clip 5, 20 epochs, beam 5, reduction 8, prompt length
    40, Hyperformer 512/128/8, Compacter n=2), for real data (--data, --pretrained)."""

    methods: str = ",".join(MT_METHODS)
    """Comma-separated methods: per_task, shared, half_shared, hyperformer, compacter, prompt, full."""
    out: str = "runs/vl-multitask"
    """Output folder: one run directory per method and seed, multitask.md, metrics.json."""
    seeds: str | None = "3"
    """Seeds: a count ("2" -> 0, 1) or a list ("0,1,2"); cells are mean ± std over them."""
    seed_methods: str | None = None
    """Comma-separated methods that run on every seed (the others: the first seed only). None:
    every method."""
    lr_scales: str | None = None
    """Comma-separated multipliers of each method's paper learning rate, tried on the first seed
    (every method the same grid); the best validation average is kept and the other seeds run
    at it. None: the embedded recipe's chosen scale (1 with --data or --preset paper)."""
    train_layer_norms: bool = True
    """Train every text LayerNorm with the parameter-efficient methods (VL-Adapter's
    --unfreeze_layer_norms), shared across tasks."""
    workers: int | None = None
    """Runs trained at a time in spawned processes. None: 2 on the embedded data without a GPU."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.method_list()
        self.seed_list()
        self.scale_list()
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")

    @property
    def recipe(self) -> dict[str, Any]:
        """The paper's recipe (``--preset paper`` or real data) or the embedded one, with the
        explicit options (--epochs, --batch_size, --reduction, --prefix_tokens) on top."""
        base = PAPER_RECIPE if (self.preset == "paper" or not self.embedded) else EMBEDDED_RECIPE
        r = dict(base)
        r["epochs"] = self.epochs or r["epochs"]
        r["batch_size"] = self.batch_size or r["batch_size"]
        r["reduction"] = self.reduction or r["reduction"]
        if self.preset != "paper" and self.prefix_tokens != 8:
            r["prompt_tokens"] = self.prefix_tokens
        r["caption_batch_size"] = max(1, round(r["batch_size"] * CAPTION_BATCH_RATIO))
        return r

    def lr_of(self, method: str, scale: float | None = None) -> float:
        """The learning rate of ``method``: --lr, else the paper's times ``scale`` (default: the
        recipe's chosen scale)."""
        if self.lr is not None:
            return self.lr
        if scale is None:
            scale = self.recipe["lr_scale"].get(method, 1.0)
        return mt_spec(method).paper_lr * scale

    def method_list(self) -> list[str]:
        names = [m.strip() for m in self.methods.split(",") if m.strip()]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"--methods must list distinct methods, got {self.methods!r}")
        for m in names:
            mt_spec(m)
        if self.seed_methods:
            for m in self.seed_methods.split(","):
                mt_spec(m.strip())
        return names

    def seed_list(self) -> list[int]:
        from adapterlab.core.engine import resolve_seeds

        return resolve_seeds(self.seeds, default=(self.seed,), start=self.seed)

    def seeded(self, method: str) -> bool:
        return self.seed_methods is None or method in {
            m.strip() for m in self.seed_methods.split(",")
        }

    def scale_list(self) -> list[float] | None:
        if self.lr_scales is None:
            return None
        try:
            scales = [float(s) for s in self.lr_scales.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--lr_scales must be numbers, got {self.lr_scales!r}") from None
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"--lr_scales must be positive numbers, got {self.lr_scales!r}")
        return scales

    def resolved_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        import torch

        return 2 if self.embedded and not torch.cuda.is_available() else 1
