"""adapterlab.core.engine: one resumable, distributed-ready training loop on HF accelerate.

Example::

    from adapterlab.core.engine import TrainConfig, Trainer, parse_config

    cfg = parse_config(TrainConfig)          # --config x.yaml, lr=1e-3, --help
    result = Trainer(model, cfg, train_data=train, eval_data=val, test_data=test,
                     loss_fn=loss_fn, eval_step=eval_step).fit()
    print(result.test_metrics)               # computed from the best checkpoint

Run it on several processes or GPUs with ``accelerate launch`` or ``torchrun``.
"""

from .atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_temp_leftovers,
    explain_disk_full,
    to_jsonable,
)
from .checkpoint import list_checkpoints
from .cli_config import build_parser, parse_config
from .config import TrainConfig
from .datafiles import (
    SkipCounter,
    iter_jsonl,
    iter_lines,
    open_gzip_text,
    open_text,
    read_bytes,
    read_json,
    read_text,
)
from .device import native_bf16, resolve_compute_dtype, resolve_device
from .errors import (
    BadSampleError,
    CheckpointError,
    DataFileError,
    DiskFullError,
    NonFiniteLossError,
    PickleRefusedError,
    TrainingInterrupted,
)
from .evaluation import batch_length, default_metric_fn, evaluate
from .plots import plot_curves
from .progress import make_progress, progress, progress_enabled
from .schedules import build_scheduler, lr_at
from .seeding import seed_everything
from .seeds import (
    SeedSpec,
    SeedStats,
    aggregate_seeds,
    format_mean_std,
    paired_difference,
    resolve_seeds,
    seeds_to_json,
)
from .subcommands import Subcommand, run_subcommands
from .trainer import Trainer, TrainResult, resolve_mixed_precision
from .weights import load_weights, refuse_pickle

__all__ = [
    "BadSampleError",
    "CheckpointError",
    "DataFileError",
    "DiskFullError",
    "NonFiniteLossError",
    "PickleRefusedError",
    "SeedSpec",
    "SeedStats",
    "SkipCounter",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "batch_length",
    "build_parser",
    "build_scheduler",
    "clean_temp_leftovers",
    "default_metric_fn",
    "evaluate",
    "aggregate_seeds",
    "explain_disk_full",
    "format_mean_std",
    "iter_jsonl",
    "iter_lines",
    "list_checkpoints",
    "load_weights",
    "lr_at",
    "make_progress",
    "paired_difference",
    "parse_config",
    "plot_curves",
    "progress",
    "progress_enabled",
    "refuse_pickle",
    "native_bf16",
    "open_gzip_text",
    "open_text",
    "read_bytes",
    "read_json",
    "read_text",
    "resolve_compute_dtype",
    "resolve_device",
    "resolve_mixed_precision",
    "resolve_seeds",
    "seed_everything",
    "seeds_to_json",
    "Subcommand",
    "run_subcommands",
    "to_jsonable",
]
