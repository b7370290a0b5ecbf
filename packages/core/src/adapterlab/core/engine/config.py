"""``TrainConfig``: every setting of the training engine, with defaults and help text.

Field help comes from the attribute docstrings below; :func:`adapterlab.core.engine.parse_config`
shows it in ``--help``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["TrainConfig"]

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("none", "cosine", "cosine_restarts", "linear_warmup")
PRECISIONS = ("auto", "no", "fp16", "bf16")


@dataclass
class TrainConfig:
    """Settings of the adapterlab training engine (optimiser, schedule, evaluation, checkpoints)."""

    output_dir: str = "runs/run"
    """Run directory: config.yaml, metrics.jsonl, metrics.json, TensorBoard events, curves.png,
    checkpoints/ and best/."""
    epochs: int = 10
    """Number of passes over the training data (ignored when max_steps is set)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps; overrides epochs and sets the schedule length."""
    batch_size: int = 32
    """Global training batch (all processes together); split evenly across processes."""
    eval_batch_size: int | None = None
    """Per-process batch for evaluation and testing (None: batch_size)."""
    lr: float = 1e-3
    """Peak learning rate of parameter groups that do not set their own."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """Optimiser: adamw (torch.optim.AdamW) or sgd (torch.optim.SGD with momentum)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    weight_decay: float = 0.0
    """Weight decay (decoupled for AdamW, L2 for SGD) of groups that do not set their own."""
    momentum: float = 0.9
    """SGD momentum."""
    scheduler: Literal["none", "cosine", "cosine_restarts", "linear_warmup"] = "none"
    """LR schedule after warmup: none (constant), cosine (to min_lr at the end), cosine_restarts
    (SGDR, period restart_period, growing by restart_mult), linear_warmup (linear decay to min_lr)."""
    warmup_steps: int = 0
    """Linear warmup length in schedule units (optimiser steps, or epochs if schedule_per=epoch)."""
    min_lr: float = 0.0
    """Lowest learning rate of the cosine and linear schedules (eta_min)."""
    restart_period: int | None = None
    """First cosine_restarts period in schedule units (None: one epoch)."""
    restart_mult: int = 1
    """Factor by which each cosine_restarts period grows (T_mult)."""
    schedule_per: Literal["batch", "epoch"] = "batch"
    """Step the schedule after every optimiser step (batch) or after every epoch (epoch)."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step (the epoch's last step may use fewer)."""
    max_grad_norm: float | None = None
    """Clip the global gradient norm to this value (None: no clipping)."""
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    """Autocast precision on GPU: auto picks bf16 when supported, else fp16. Always fp32 on CPU."""
    eval_every_steps: int | None = None
    """Evaluate every N optimiser steps; when set, eval_every_epochs is ignored."""
    eval_every_epochs: int | None = 1
    """Evaluate every N epochs (None: only at the end)."""
    metric: str = "accuracy"
    """Evaluation metric that selects the best checkpoint and drives early stopping."""
    metric_mode: Literal["max", "min"] = "max"
    """Whether a larger (max) or smaller (min) metric is better."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement (None: never)."""
    keep_last: int = 2
    """Number of most recent checkpoints kept in checkpoints/."""
    save_every_steps: int | None = None
    """Also checkpoint every N optimiser steps (checkpoints are always written after every
    evaluation, at the end of every epoch and on SIGINT/SIGTERM)."""
    seed: int = 0
    """One seed for Python, NumPy, torch, the data order and data-loader workers."""
    shuffle: bool = True
    """Shuffle the training data every epoch (the order depends only on seed and epoch)."""
    drop_last: bool = False
    """Drop the last incomplete training batch of every epoch."""
    skip_bad_samples: bool = False
    """Skip (and count) data items that raise instead of stopping the run."""
    fsdp: bool = False
    """Shard the frozen backbone over the processes with FSDP2 fully_shard (trainable tensors
    stay whole); also on under `accelerate launch --use_fsdp --fsdp_version 2`."""
    num_workers: int = 0
    """Data-loader worker processes per training process."""
    log_every: int = 10
    """Write training loss/lr/throughput every N optimiser steps."""
    resume: bool = False
    """Continue from the latest checkpoint in output_dir (starts fresh when there is none)."""
    overwrite: bool = False
    """Allow starting a fresh run in an output_dir that already holds one (it is replaced)."""
    plots: bool = True
    """Draw curves.png (loss, learning rate and metrics against the step) when the run ends."""
    progress: bool = True
    """Show a progress bar (never when stderr is not a TTY or the CI variable is set)."""

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        checks: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "must be >= 1 or None"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            (
                "eval_batch_size",
                self.eval_batch_size is None or self.eval_batch_size >= 1,
                "must be >= 1",
            ),
            ("lr", self.lr >= 0, "must be >= 0"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"must be one of {OPTIMIZERS}"),
            (
                "betas",
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                "must be two values in [0, 1)",
            ),
            ("scheduler", self.scheduler in SCHEDULERS, f"must be one of {SCHEDULERS}"),
            ("warmup_steps", self.warmup_steps >= 0, "must be >= 0"),
            ("min_lr", self.min_lr >= 0, "must be >= 0"),
            (
                "restart_period",
                self.restart_period is None or self.restart_period >= 1,
                "must be >= 1",
            ),
            ("restart_mult", self.restart_mult >= 1, "must be >= 1"),
            ("schedule_per", self.schedule_per in ("batch", "epoch"), "must be 'batch' or 'epoch'"),
            ("grad_accum", self.grad_accum >= 1, "must be >= 1"),
            ("max_grad_norm", self.max_grad_norm is None or self.max_grad_norm > 0, "must be > 0"),
            ("mixed_precision", self.mixed_precision in PRECISIONS, f"must be one of {PRECISIONS}"),
            (
                "eval_every_steps",
                self.eval_every_steps is None or self.eval_every_steps >= 1,
                "must be >= 1",
            ),
            (
                "eval_every_epochs",
                self.eval_every_epochs is None or self.eval_every_epochs >= 1,
                "must be >= 1",
            ),
            ("metric_mode", self.metric_mode in ("max", "min"), "must be 'max' or 'min'"),
            (
                "early_stopping_patience",
                self.early_stopping_patience is None or self.early_stopping_patience >= 1,
                "must be >= 1",
            ),
            ("keep_last", self.keep_last >= 1, "must be >= 1"),
            (
                "save_every_steps",
                self.save_every_steps is None or self.save_every_steps >= 1,
                "must be >= 1",
            ),
            ("seed", 0 <= self.seed < 2**63, "must be a non-negative integer"),
            ("num_workers", self.num_workers >= 0, "must be >= 0"),
            ("log_every", self.log_every >= 1, "must be >= 1"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} {why}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) suitable for YAML/JSON."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out
