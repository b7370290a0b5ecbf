"""``Trainer``: the resumable, distributed-ready training loop on HF accelerate.

One loop for every adapterlab package: AdamW/SGD with per-group learning rates, schedules per
batch or epoch, gradient accumulation and clipping, GPU autocast, periodic evaluation with the
best adapter kept by a metric, early stopping, and testing from the *best* checkpoint (the
PETL-AST code tests the last epoch by mistake). Checkpoints hold adapter-only weights plus the
optimiser, scheduler, RNG and step state, so ``resume=True`` continues bit-identically.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedType
from accelerate.utils import (
    broadcast_object_list,
    gather_object,
    parse_flag_from_env,
    send_to_device,
)
from torch import nn

from .. import get_adapter_parameters, list_adapters, load_adapter
from .checkpoint import (
    clean_run_leftovers,
    load_checkpoint,
    restore_best,
    save_best,
    save_checkpoint,
    set_aside,
    step_dirs,
    verify_checkpoint,
)
from .config import TrainConfig
from .data import (
    BatchPlan,
    DataSource,
    GuardedCollate,
    GuardedDataset,
    as_source,
    loader_iter,
    make_loader,
    shard_indices,
)
from .errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from .evaluation import MetricFn, default_metric_fn, evaluation_loop, merge_payloads, split_loss
from .optim import ParamGroups, build_optimizer, resolve_param_groups
from .plots import plot_curves
from .progress import make_progress, progress_enabled
from .run_dir import RunLogger
from .schedules import build_scheduler
from .seeding import capture_rng, restore_rng, seed_everything
from .signals import StopRequest

__all__ = ["TrainResult", "Trainer", "resolve_mixed_precision"]

log = logging.getLogger("adapterlab.core.engine")

LossFn = Callable[[nn.Module, Any], Any]
EvalStep = Callable[[nn.Module, Any], dict[str, torch.Tensor]]

# files and folders the engine owns inside a run directory (removed by overwrite=True)
_RUN_FILES = (
    "checkpoints",
    "best",
    "tensorboard",
    "metrics.jsonl",
    "metrics.json",
    "curves.png",
    "config.yaml",
)
# config fields whose change makes a resumed run differ from an uninterrupted one
_VOLATILE = {
    "resume",
    "overwrite",
    "progress",
    "plots",
    "output_dir",
    "log_every",
    "epochs",
    "max_steps",
    "num_workers",
}


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`."""

    best_metric: float | None
    best_step: int | None
    final_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    run_dir: Path
    skipped_samples: int
    global_step: int = 0
    stopped_early: bool = False


@dataclass
class _Progress:
    """Trainer progress saved in every checkpoint (JSON)."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    last_eval_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    last_train: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    finished: bool = False
    log_lines: int = 0


@dataclass
class _Window:
    """Training statistics since the last log line."""

    loss: float = 0.0
    extras: dict[str, float] = field(default_factory=dict)
    micro: int = 0
    samples: int = 0
    grad_norm: float | None = None
    lrs: list[float] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)


def _cpu_only() -> bool:
    """True without any accelerator (or with ``ACCELERATE_USE_CPU``): then accelerate needs
    ``cpu=True`` to run several processes (torchrun) as MULTI_CPU over gloo."""
    if parse_flag_from_env("ACCELERATE_USE_CPU"):
        return True
    xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    return not (torch.cuda.is_available() or xpu or torch.backends.mps.is_available())


def resolve_mixed_precision(requested: str) -> str:
    """``auto`` -> bf16 (or fp16 without bf16 support) on CUDA; always ``no`` off CUDA."""
    on_cuda = torch.cuda.is_available() and not parse_flag_from_env("ACCELERATE_USE_CPU")
    if not on_cuda:
        if requested in ("fp16", "bf16"):
            log.warning(
                "mixed_precision=%s ignored: autocast is only used on GPU (fp32 on CPU)", requested
            )
        return "no"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


class Trainer:
    """Train ``model``'s adapter ``adapter_name`` with ``loss_fn(model, batch)``.

    Args:
        model: a model with an adapter added by ``adapterlab.core.add_adapter``; only the
            adapter's parameters (incl. its ``modules_to_save``) may be trainable.
        config: the engine settings.
        train_data / eval_data / test_data: map-style Datasets (or DataLoaders, whose dataset and
            collate_fn are used; a DataLoader's own collate_fn wins over ``collate_fn`` for its
            split). A dataset may offer ``describe(index) -> str`` (e.g. the file) for
            bad-sample messages.
        loss_fn: ``(model, batch) -> loss`` or a dict holding ``"loss"`` (other scalars are logged).
        eval_step: ``(model, batch) -> dict`` of per-sample tensors (scalars are averaged);
            default: ``loss_fn``'s output.
        metric_fn: ``outputs -> dict[str, float]`` over the concatenated split; default: accuracy
            from ``"logits"`` and ``"target"``.
        param_groups: None (all trainable, ``config.lr``), a list of ``{"params", "lr", ...}``
            dicts, or a callable ``model -> list``.
        collate_fn: batches items: one callable for every split, or a mapping
            ``{"train": f, "eval": g, "test": h}`` (``"eval"`` also serves ``"test"`` when there is
            no ``"test"``); default ``torch.utils.data.default_collate``.
        adapter_name: the adapter that is trained and checkpointed.
        run_config: the caller's resolved config, written to ``config.yaml`` (the engine's own
            settings are added under ``train`` when it has no such key).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        train_data: Any,
        loss_fn: LossFn,
        eval_data: Any = None,
        test_data: Any = None,
        eval_step: EvalStep | None = None,
        metric_fn: MetricFn | None = None,
        param_groups: ParamGroups = None,
        collate_fn: Callable | Mapping[str, Callable] | None = None,
        adapter_name: str = "default",
        run_config: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.loss_fn = loss_fn
        self.eval_step = eval_step
        self.metric_fn = metric_fn or default_metric_fn
        self.adapter_name = adapter_name
        self.run_config = run_config
        self.collate_fn = collate_fn
        self.run_dir = Path(config.output_dir)
        self._check_adapter(model)
        self._raw_model = model
        self._param_groups = param_groups
        self.train_source = as_source(train_data, collate_fn, "train")
        if self.train_source is None:
            raise ValueError("train_data is required")
        self.eval_source = as_source(eval_data, collate_fn, "eval")
        self.test_source = as_source(test_data, collate_fn, "test")
        self.accelerator = Accelerator(
            mixed_precision=resolve_mixed_precision(config.mixed_precision),
            cpu=_cpu_only(),
            step_scheduler_with_optimizer=False,
        )
        kind = self.accelerator.distributed_type
        if kind in (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM):
            raise NotImplementedError(
                f"{kind.value} is not supported yet: its sharded parameters would make the "
                "adapter-only checkpoints wrong; launch with DDP (accelerate launch --multi_gpu, "
                "or torchrun)"
            )
        self.plan = BatchPlan(
            len(self.train_source.dataset),  # type: ignore[arg-type]
            config.batch_size,
            shuffle=config.shuffle,
            drop_last=config.drop_last,
            seed=config.seed,
            world_size=self.accelerator.num_processes,
        )
        self.steps_per_epoch = self.plan.steps_per_epoch(config.grad_accum)
        self._skipped: dict[str, set[int]] = {"train": set(), "eval": set(), "test": set()}
        self._skip_visits: dict[str, int] = {"train": 0, "eval": 0, "test": 0}
        self._prepared = False
        self._last_checkpoint: Path | None = None
        self._stop: StopRequest | None = None
        self.logger: RunLogger | None = None

    # ------------------------------------------------------------------ setup
    def _check_adapter(self, model: nn.Module) -> None:
        adapters = list_adapters(model)
        if self.adapter_name not in adapters:
            raise ValueError(
                f"the model has no adapter named {self.adapter_name!r} (adapters: {list(adapters)}); "
                "add one with adapterlab.core.add_adapter(model, get_config(...), name=...): "
                "the engine checkpoints adapter weights only"
            )
        covered = {id(p) for p in get_adapter_parameters(model, self.adapter_name)}
        stray = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
        if stray:
            raise ValueError(
                f"trainable parameters outside adapter {self.adapter_name!r} would not be "
                f"checkpointed: {stray[:8]}{' ...' if len(stray) > 8 else ''}; freeze them or "
                "declare them in the adapter config's modules_to_save"
            )

    def _setup(self) -> None:
        if self._prepared:
            return
        groups = resolve_param_groups(self._raw_model, self._param_groups)
        self._params = [p for g in groups for p in g["params"]]
        optimizer = build_optimizer(groups, self.config)
        self.scheduler = build_scheduler(optimizer, self.config, self.steps_per_epoch)
        self.model, self.optimizer = self.accelerator.prepare(self._raw_model, optimizer)
        self._prepared = True

    @property
    def unwrapped_model(self) -> nn.Module:
        """The model without distributed wrappers."""
        return self._raw_model

    # ------------------------------------------------------------------ helpers
    @property
    def _world(self) -> int:
        return self.accelerator.num_processes

    def _any(self, *flags: bool) -> list[bool]:
        """Element-wise OR of boolean flags over all processes."""
        if self._world == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self.accelerator.device)
        return [bool(v > 0) for v in self.accelerator.reduce(t, "sum").tolist()]

    def _guard(self, source: DataSource, split: str) -> tuple[GuardedDataset, GuardedCollate]:
        skip = self.config.skip_bad_samples
        return (
            GuardedDataset(source.dataset, split, skip, self.config.seed),
            GuardedCollate(source.collate_fn, split, source.dataset, skip),
        )

    def _note_skipped(self, split: str, skipped: list[tuple[int, str]]) -> None:
        for index, message in skipped:
            self._skip_visits[split] += 1
            if index not in self._skipped[split]:
                self._skipped[split].add(index)
                log.warning("skipping bad sample (skip_bad_samples=True): %s", message)

    def _pin(self) -> bool:
        return self.accelerator.device.type == "cuda"

    def _config_dict(self) -> dict[str, Any]:
        if self.run_config is None:
            return self.config.to_dict()
        out = dict(self.run_config)
        out.setdefault("train", self.config.to_dict())
        return out

    # ------------------------------------------------------------------ run directory
    def _prepare_run_dir(self) -> Path | None:
        """Decide (on the main process) whether to resume; returns the checkpoint or None."""
        decision: list[Any] = [None, None]
        if self.accelerator.is_main_process:
            try:
                decision[0] = self._decide_resume()
            except (FileExistsError, CheckpointError) as err:
                decision[1] = (type(err).__name__, str(err))
        if self._world > 1:
            broadcast_object_list(decision)
        if decision[1]:
            kind, message = decision[1]
            raise (CheckpointError if kind == "CheckpointError" else FileExistsError)(message)
        return Path(decision[0]) if decision[0] else None

    def _earlier_results(self) -> list[str]:
        """What an earlier run left that starting afresh would delete."""
        run = self.run_dir
        found = []
        steps = step_dirs(run)
        if steps:
            found.append(f"{len(steps)} checkpoint folder(s) in checkpoints/")
        if (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step_*.corrupt*")):
            found.append("checkpoints set aside as corrupt")
        jsonl = run / "metrics.jsonl"
        if jsonl.is_file() and jsonl.stat().st_size > 0:
            n = len(jsonl.read_text().splitlines())
            found.append(f"metrics.jsonl with {n} record{'' if n == 1 else 's'}")
        if (run / "best").exists():
            found.append("best/")
        return found

    def _find_resumable(self) -> Path | None:
        """The newest intact checkpoint; newer unusable ones are set aside (renamed, not deleted)
        with a warning. ``CheckpointError`` when checkpoints exist but none is intact."""
        problems: list[tuple[Path, str]] = []
        for checkpoint in reversed(step_dirs(self.run_dir)):
            problem = verify_checkpoint(checkpoint, self._world)
            if problem is None:
                for bad, why in problems:
                    moved = set_aside(bad)
                    log.warning(
                        "checkpoint %s is unusable (%s): resuming from the older intact %s "
                        "instead; the bad one is kept as %s",
                        bad.name,
                        why,
                        checkpoint.name,
                        moved.name,
                    )
                return checkpoint
            problems.append((checkpoint, problem))
        if problems:
            listing = "; ".join(f"{p.name}: {why}" for p, why in problems)
            raise CheckpointError(
                f"resume=True but no checkpoint in {self.run_dir / 'checkpoints'} is intact "
                f"({listing}); nothing was deleted. Pass overwrite=True to start the run again "
                "(this deletes it), or choose another output_dir"
            )
        return None

    def _decide_resume(self) -> str | None:
        cfg, run = self.config, self.run_dir
        existing = [name for name in _RUN_FILES if (run / name).exists()]
        if cfg.resume:
            try:
                checkpoint = self._find_resumable()
            except CheckpointError:
                if not cfg.overwrite:
                    raise
                checkpoint = None
            if checkpoint is not None:
                self._clean_leftovers()
                log.info("resuming from %s", checkpoint)
                return str(checkpoint)
        if existing and not cfg.overwrite:
            earlier = self._earlier_results() if cfg.resume else existing
            if earlier:
                why = "has no checkpoint to resume from and " if cfg.resume else ""
                raise FileExistsError(
                    f"{run} {why}already holds a run ({', '.join(earlier)}); nothing was deleted. "
                    + ("Pass" if cfg.resume else "Pass resume=True to continue it,")
                    + " overwrite=True to replace it, or choose another output_dir"
                )
        if cfg.resume:
            log.warning("resume=True but %s has no checkpoint: starting a fresh run", run)
        self._clean_leftovers()
        for name in existing:
            path = run / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return None

    def _clean_leftovers(self) -> None:
        removed = clean_run_leftovers(self.run_dir)
        if removed:
            log.warning(
                "removed %d leftover(s) of an interrupted write in %s: %s",
                len(removed),
                self.run_dir,
                ", ".join(str(p.relative_to(self.run_dir)) for p in removed),
            )

    # ------------------------------------------------------------------ checkpoints
    def _save(self, state: _Progress) -> Path:
        rank_state = {
            "rng": capture_rng(),
            "skipped": {k: sorted(v) for k, v in self._skipped.items()},
            "skip_visits": dict(self._skip_visits),
        }
        if self.logger is not None:
            state.log_lines = self.logger.lines
        scaler = self.accelerator.scaler
        optim_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
        }
        trainer_state = {
            **dataclasses.asdict(state),
            "world_size": self._world,
            "config": self.config.to_dict(),
        }
        self._last_checkpoint = save_checkpoint(
            self.accelerator,
            self.run_dir,
            state.global_step,
            model=self._raw_model,
            adapter_name=self.adapter_name,
            optim_state=optim_state,
            trainer_state=trainer_state,
            rank_state=rank_state,
            keep_last=self.config.keep_last,
        )
        return self._last_checkpoint

    def _load(self, checkpoint: Path) -> _Progress:
        trainer_state, optim_state, rank_state = load_checkpoint(
            self.accelerator, checkpoint, model=self._raw_model, adapter_name=self.adapter_name
        )
        self.optimizer.load_state_dict(optim_state["optimizer"])
        self.scheduler.load_state_dict(optim_state["scheduler"])
        if optim_state.get("scaler") is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(optim_state["scaler"])
        ids = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        if any(
            id(p) not in ids for p in get_adapter_parameters(self._raw_model, self.adapter_name)
        ):
            raise RuntimeError(
                "load_adapter replaced parameter objects; the optimiser lost track of them"
            )
        saved = trainer_state.get("config", {})
        changed = sorted(
            k
            for k, v in self.config.to_dict().items()
            if k not in _VOLATILE and k in saved and saved[k] != v
        )
        if changed:
            log.warning(
                "resuming with changed settings %s: the run will not match an uninterrupted one",
                changed,
            )
        if int(trainer_state.get("world_size", 1)) != self._world:
            log.warning(
                "resuming on %d processes, checkpoint had %s: RNG streams differ",
                self._world,
                trainer_state.get("world_size"),
            )
        fields = {f.name for f in dataclasses.fields(_Progress)}
        state = _Progress(**{k: v for k, v in trainer_state.items() if k in fields})
        self._pending_rng = rank_state["rng"]  # restored last, after every other setup step
        self._skipped = {k: set(v) for k, v in rank_state["skipped"].items()}
        self._skip_visits = dict(rank_state["skip_visits"])
        if self.accelerator.is_main_process:
            restore_best(checkpoint, self.run_dir)
        self.accelerator.wait_for_everyone()
        self._last_checkpoint = checkpoint
        return state

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, data: Any, split: str = "eval", *, collate_fn: Callable | None = None
    ) -> dict[str, float]:
        """Metrics of the current model on ``data`` (sharded over processes, then gathered).

        Collation: ``collate_fn`` if given, else a DataLoader's own collate_fn, else the
        Trainer's collate function for ``split``.
        """
        self._setup()
        source = as_source(data, self.collate_fn, split)
        if source is not None and collate_fn is not None:
            source.collate_fn = collate_fn
        assert source is not None
        return self._evaluate(source, split)

    def _evaluate(self, source: DataSource, split: str) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        guarded, collate = self._guard(source, split)
        shard = shard_indices(len(guarded), acc.process_index, self._world)
        size = cfg.eval_batch_size or cfg.batch_size
        batches = [shard[i : i + size] for i in range(0, len(shard), size)]
        loader = make_loader(
            guarded, collate, batches, epoch=0, num_workers=cfg.num_workers, pin_memory=self._pin()
        )

        def pairs(iterator: Any) -> Any:
            for loaded in iterator:
                self._note_skipped(split, loaded.skipped)
                if loaded.data is not None:
                    yield loaded.data, len(loaded.indices)

        with loader_iter(loader) as iterator:
            acc_out = evaluation_loop(
                self._raw_model,
                pairs(iterator),
                self.eval_step or self.loss_fn,
                device=acc.device,
                autocast=acc.autocast,
                non_blocking=self._pin(),
            )
        payloads = [acc_out.payload()]
        if self._world > 1:
            payloads = gather_object(payloads)
        return merge_payloads(payloads, self.metric_fn)

    def _better(self, value: float, best: float | None) -> bool:
        if math.isnan(value):
            return False
        if best is None:
            return True
        return value > best if self.config.metric_mode == "max" else value < best

    def _eval_and_track(self, state: _Progress) -> None:
        assert self.eval_source is not None and self.logger is not None
        cfg = self.config
        metrics = self._evaluate(self.eval_source, "eval")
        self.logger.log("eval", state.global_step, state.epoch, metrics)
        state.last_eval, state.last_eval_step = metrics, state.global_step
        if cfg.metric not in metrics:
            raise ValueError(
                f"metric {cfg.metric!r} is not among the evaluation results {sorted(metrics)}; set "
                "TrainConfig.metric (metric_mode='min' for losses) or return 'logits' and 'target' "
                "from eval_step"
            )
        value = metrics[cfg.metric]
        if self._better(value, state.best_metric):
            state.best_metric, state.best_step, state.evals_since_best = value, state.global_step, 0
            if self.accelerator.is_main_process:
                info = {
                    "step": state.global_step,
                    "epoch": state.epoch,
                    "metric": cfg.metric,
                    "value": value,
                }
                save_best(self._raw_model, self.run_dir, self.adapter_name, info)
            self.accelerator.wait_for_everyone()
        else:
            state.evals_since_best += 1
            patience = cfg.early_stopping_patience
            if patience is not None and state.evals_since_best >= patience:
                state.stopped_early = True
                log.info(
                    "early stopping: %d evaluations without improvement of %s", patience, cfg.metric
                )

    # ------------------------------------------------------------------ training
    def _total_steps(self) -> int:
        cfg = self.config
        return cfg.max_steps if cfg.max_steps is not None else cfg.epochs * self.steps_per_epoch

    def _done(self, state: _Progress) -> bool:
        cfg = self.config
        if state.stopped_early:
            return True
        if cfg.max_steps is not None:
            return state.global_step >= cfg.max_steps
        return state.epoch >= cfg.epochs

    def _check_stop(self, state: _Progress, saved: bool) -> None:
        requested = self._stop is not None and self._stop.signum is not None
        if not self._any(requested)[0]:
            return
        path = self._last_checkpoint if saved else self._save(state)
        signum = self._stop.signum if self._stop is not None and self._stop.signum else 15
        raise TrainingInterrupted(
            f"training stopped by signal {signum} at step {state.global_step}; checkpoint {path} "
            "written, run again with resume=True to continue",
            signum=signum,
            checkpoint=str(path),
        )

    def _micro_step(
        self,
        loaded: Any,
        global_size: int,
        cycle_len: int,
        last: bool,
        state: _Progress,
        window: _Window,
        index: int,
    ) -> None:
        acc, cfg = self.accelerator, self.config
        self._note_skipped("train", loaded.skipped)
        empty = loaded.data is None
        if self._world > 1 and cfg.skip_bad_samples:
            empty = self._any(empty)[0]
        if empty:
            if last and self._unsynced and self._world > 1:
                self._sync_grads()
            return
        batch = send_to_device(loaded.data, acc.device, non_blocking=self._pin())
        with nullcontext() if last else acc.no_sync(self.model):
            with acc.autocast():
                out = self.loss_fn(self.model, batch)
            loss, extras = split_loss(out)
            value = float(loss.detach().float())
            if self._any(not math.isfinite(value))[0]:
                where = self._last_checkpoint or "none written yet"
                raise NonFiniteLossError(
                    f"training loss is {value} at step {state.global_step + 1} (epoch {state.epoch}, "
                    f"batch {index}, samples {loaded.indices[:8]}{' ...' if len(loaded.indices) > 8 else ''}); "
                    f"the run was stopped before applying it. Last good checkpoint: {where}. "
                    "Try a lower lr, max_grad_norm, or mixed_precision='no'."
                )
            acc.backward(loss / cycle_len)
        self._unsynced = not last
        window.loss += value
        window.micro += 1
        window.samples += global_size
        for key, v in extras.items():
            window.extras[key] = window.extras.get(key, 0.0) + float(v.detach().float())

    def _sync_grads(self) -> None:
        """All-reduce gradients by hand when a cycle's last micro-batch was skipped everywhere
        (its earlier micro-batches ran under ``no_sync``)."""
        for p in self._params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.copy_(self.accelerator.reduce(p.grad, "mean"))
        self._unsynced = False

    def _optimizer_step(self, state: _Progress, window: _Window) -> None:
        acc, cfg = self.accelerator, self.config
        if cfg.max_grad_norm is not None:
            norm = acc.clip_grad_norm_(self._params, cfg.max_grad_norm)
            window.grad_norm = float(norm) if norm is not None else None
        window.lrs = [float(g["lr"]) for g in self.optimizer.param_groups]  # used by this step
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.schedule_per == "batch" and not acc.optimizer_step_was_skipped:
            self.scheduler.step()
        state.global_step += 1

    def _log_train(self, state: _Progress, window: _Window, bar: Any) -> _Window:
        if window.micro == 0:
            return _Window()
        keys = sorted(window.extras)
        totals = torch.tensor(
            [window.loss, window.micro] + [window.extras[k] for k in keys], dtype=torch.float64
        )
        if self._world > 1:
            totals = self.accelerator.reduce(totals.to(self.accelerator.device), "sum").cpu()
        n = totals[1].item()
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        values = {"loss": totals[0].item() / n}
        values.update({k: totals[2 + i].item() / n for i, k in enumerate(keys)})
        for i, lr in enumerate(window.lrs):
            values["lr" if i == 0 else f"lr_{i}"] = lr
        values["samples_per_s"] = window.samples / elapsed
        if window.grad_norm is not None:
            values["grad_norm"] = window.grad_norm
        assert self.logger is not None
        self.logger.log("train", state.global_step, state.epoch, values)
        state.last_train = {"loss": values["loss"]}
        bar.set_postfix(loss=f"{values['loss']:.4g}", samples_s=f"{values['samples_per_s']:.1f}")
        return _Window()

    def _train(self, state: _Progress) -> None:
        cfg, acc = self.config, self.accelerator
        n_micro, ga = self.plan.num_batches(), cfg.grad_accum
        rank = acc.process_index
        guarded, collate = self._guard(self.train_source, "train")
        bar = make_progress(
            self._total_steps(),
            state.global_step,
            progress_enabled(cfg.progress, acc.is_main_process),
        )
        window = _Window()
        self._unsynced = False
        self.model.train()
        try:
            while not self._done(state):
                batches = self.plan.epoch_batches(state.epoch)
                start = state.batch_in_epoch
                interrupted_mid_epoch = False
                if start < n_micro:
                    local = [self.plan.local(b, rank) for b in batches[start:]]
                    loader = make_loader(
                        guarded,
                        collate,
                        local,
                        epoch=state.epoch,
                        num_workers=cfg.num_workers,
                        pin_memory=self._pin(),
                    )
                    with loader_iter(loader) as iterator:
                        for i, loaded in enumerate(iterator, start):
                            cycle_start = i - i % ga
                            cycle_len = min(ga, n_micro - cycle_start)
                            last = i == cycle_start + cycle_len - 1
                            self._micro_step(
                                loaded, len(batches[i]), cycle_len, last, state, window, i
                            )
                            if not last:
                                continue
                            self._optimizer_step(state, window)
                            state.batch_in_epoch = i + 1
                            bar.update(1)
                            if state.global_step % cfg.log_every == 0:
                                window = self._log_train(state, window, bar)
                            saved = False
                            if (
                                self.eval_source is not None
                                and cfg.eval_every_steps
                                and state.global_step % cfg.eval_every_steps == 0
                            ):
                                self._eval_and_track(state)
                                self._save(state)
                                saved = True
                            elif (
                                cfg.save_every_steps
                                and state.global_step % cfg.save_every_steps == 0
                            ):
                                self._save(state)
                                saved = True
                            self._check_stop(state, saved)
                            if self._done(state):
                                interrupted_mid_epoch = state.batch_in_epoch < n_micro
                                break
                    del loader
                if interrupted_mid_epoch:
                    break
                # end of epoch
                if cfg.schedule_per == "epoch":
                    self.scheduler.step()
                state.epoch += 1
                state.batch_in_epoch = 0
                if (
                    self.eval_source is not None
                    and cfg.eval_every_steps is None
                    and cfg.eval_every_epochs
                    and state.epoch % cfg.eval_every_epochs == 0
                    and state.last_eval_step != state.global_step
                ):
                    self._eval_and_track(state)
                self._save(state)
                self._check_stop(state, saved=True)
            window = self._log_train(state, window, bar)
        finally:
            bar.close()

    # ------------------------------------------------------------------ fit
    def _skipped_total(self, gather: bool) -> dict[str, Any]:
        sets = {k: set(v) for k, v in self._skipped.items()}
        visits = dict(self._skip_visits)
        if gather and self._world > 1:
            parts = gather_object([(sets, visits)])
            sets = {k: set().union(*(p[0][k] for p in parts)) for k in sets}
            visits = {k: sum(p[1][k] for p in parts) for k in visits}
        return {
            "skipped_samples": sum(len(v) for v in sets.values()),
            "skipped_samples_by_split": {k: len(v) for k, v in sets.items()},
            "skipped_indices": {k: sorted(v)[:100] for k, v in sets.items() if v},
            "skipped_sample_visits": visits,
        }

    def _summary(
        self, state: _Progress, status: str, test: dict[str, float] | None, gather: bool
    ) -> dict[str, Any]:
        cfg = self.config
        summary = {
            "status": status,
            "metric": cfg.metric,
            "metric_mode": cfg.metric_mode,
            "best_metric": state.best_metric,
            "best_step": state.best_step,
            "final": {**state.last_eval, **{f"train_{k}": v for k, v in state.last_train.items()}},
            "test": test,
            "test_from": "best"
            if (test is not None and state.best_step is not None)
            else ("last" if test is not None else None),
            "global_step": state.global_step,
            "epochs_completed": state.epoch,
            "stopped_early": state.stopped_early,
            **self._skipped_total(gather),
            "world_size": self._world,
            "mixed_precision": self.accelerator.mixed_precision,
            "device": str(self.accelerator.device),
            "adapter_name": self.adapter_name,
            "trainable_parameters": sum(p.numel() for p in self._params),
            "last_checkpoint": str(self._last_checkpoint) if self._last_checkpoint else None,
        }
        return summary

    def _finish_failed(self, summary: dict[str, Any]) -> None:
        """Write the summary of a failed run without hiding the original error (a full disk may
        make this write fail too)."""
        try:
            self._finish_files(summary)
        except Exception as err:  # noqa: BLE001 - the original error is what the user must see
            log.warning("could not write the run summary: %s", err)

    def _finish_files(self, summary: dict[str, Any]) -> None:
        if self.logger is None:
            return
        try:
            self.logger.write_summary(summary)
        finally:
            self.logger.close()
        jsonl = self.run_dir / "metrics.jsonl"
        if self.config.plots and self.accelerator.is_main_process and jsonl.exists():
            try:
                plot_curves(jsonl, self.run_dir / "curves.png")
            except Exception as err:  # noqa: BLE001 - a plotting failure must not lose the run
                log.warning("could not draw curves.png: %s", err)

    def fit(self) -> TrainResult:
        """Train (or resume), keep the best adapter, test it, and write the run directory."""
        cfg, acc = self.config, self.accelerator
        self._setup()
        checkpoint = self._prepare_run_dir()
        state = _Progress()
        if checkpoint is not None:
            state = self._load(checkpoint)
        self.logger = RunLogger(
            self.run_dir,
            enabled=acc.is_main_process,
            keep_lines=state.log_lines if checkpoint is not None else None,
            purge_step=state.global_step + 1 if checkpoint is not None else None,
        )
        if checkpoint is None:
            self.logger.write_config(self._config_dict())
            seed_everything(cfg.seed + acc.process_index)
        else:
            restore_rng(self._pending_rng)
        try:
            with StopRequest() as stop:
                self._stop = stop
                if state.finished and not self._done(state):
                    log.warning("the run had finished; training on to the new epochs/max_steps")
                    state.finished = False
                if not state.finished:
                    self._train(state)
                    if self.eval_source is not None and state.last_eval_step != state.global_step:
                        self._eval_and_track(state)
                    state.finished = True
                    self._save(state)
        except TrainingInterrupted:
            self._finish_failed(self._summary(state, "interrupted", None, gather=False))
            raise
        except NonFiniteLossError:
            self._finish_failed(self._summary(state, "failed: non-finite loss", None, gather=False))
            raise
        except BaseException:
            self._finish_failed(self._summary(state, "failed", None, gather=False))
            raise
        finally:
            self._stop = None
        test = None
        if self.eval_source is not None and state.best_step is not None:
            acc.wait_for_everyone()
            load_adapter(self._raw_model, self.run_dir / "best", self.adapter_name, strict=True)
        elif self.test_source is not None:
            log.warning("no eval_data: testing the final weights (there is no best checkpoint)")
        if self.test_source is not None:
            test = self._evaluate(self.test_source, "test")
            self.logger.log("test", state.global_step, state.epoch, test)
        summary = self._summary(state, "completed", test, gather=True)
        self._finish_files(summary)
        acc.wait_for_everyone()
        return TrainResult(
            best_metric=state.best_metric,
            best_step=state.best_step,
            final_metrics=summary["final"],
            test_metrics=test,
            run_dir=self.run_dir,
            skipped_samples=summary["skipped_samples"],
            global_step=state.global_step,
            stopped_early=state.stopped_early,
        )
