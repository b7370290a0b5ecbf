"""Train and evaluate one PETL method on AST with the ``adapterlab.core`` engine.

The recipe is PETL-AST's (``hparams/train.yaml``, ``main.py``): AdamW (betas 0.9/0.98, eps 1e-6, weight
decay 0.1), per-batch cosine schedule without warmup, cross-entropy, fp32, seed 10, the method's learning rate,
SpecAugment for ESC-50/US8K. Deviation (a fix): the test accuracy comes from the checkpoint with the best
*validation* accuracy (the engine restores it before testing); PETL-AST reported the last epoch's model
(its ``best_params = model.state_dict()`` holds references to the live weights). Under the original
UrbanSound8K protocol, whose only held-out fold is the test fold, there is nothing to select on, so the
test accuracy is the last epoch's, as PETL-AST's actually is (:func:`test_from`).

With no ``data`` the embedded demo is used (see :mod:`.demo`), with settings sized for a CPU.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from adapterlab.core import load_adapter, save_adapter, trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer, atomic_write_json, evaluate

from .demo import (
    DEMO,
    EMBEDDED,
    EMBEDDED_SPEECH,
    TINY_MODEL_SETTINGS,
    embedded_data,
    resolve_model,
)
from .features import FbankConfig
from .loaders import (
    AudioClipDataset,
    AudioSplits,
    cached_features,
    compute_features,
    few_shot,
    load_dataset,
)
from .loaders.cache import FeatureSet, reuse_features
from .methods import BITFIT_ORIGINAL, OPTIMIZER, apply_method, spec, unfold_biases_from_bitfit
from .model import (
    DEFAULT_CHECKPOINT,
    TINY,
    ASTClassifier,
    build_classifier,
    check_source,
    is_tiny,
    load_ast,
)
from .specaug import SpecAugment
from .task import clip_datasets, eval_step, loss_fn


@dataclass
class CommonConfig:
    """Data, model and recipe settings shared by ``train`` and ``sweep``."""

    data: str | None = None
    """Dataset folder (e.g. an ESC-50 checkout). None: synthesise the embedded ESC-50-format data in <out>/data."""
    dataset: str = "esc50"
    """Layout of --data: esc50, urbansound8k, speech_commands or fluent_speech."""
    fold: int | None = None
    """Test fold for ESC-50 (1-5, default 5) and UrbanSound8K (1-10, default 10); val is the fold before it."""
    us8k_protocol: str | None = None
    """UrbanSound8K split: 'ours' (8 train folds, the fold before the test fold validates, test accuracy of
    the best-validation checkpoint) or 'original' (PETL-AST: 9 train folds, no validation fold, test
    accuracy of the last epoch). None: 'ours', or 'original' under --preset paper."""
    demo: str = "speech"
    """Embedded data when --data is not given: 'speech' (real recordings from Debian's
    asterisk-core-sounds-en-wav; a tiny AST pre-trained on 172 words, transferred to the 10 digits) or
    'synth' (synthetic ESC-50-format sounds on a random tiny AST: mechanics only, no download)."""
    model: str | None = None
    """AST checkpoint: hub id, local folder, 'demo' (the tiny AST pre-trained on the embedded speech; works
    on any dataset) or 'tiny' (a random tiny AST). None: 'demo' on the embedded speech data, 'tiny' with
    --demo synth, else MIT/ast-finetuned-audioset-10-10-0.4593."""
    demo_dir: str | None = None
    """Folder of the demo's speech data and pre-trained backbone (built on first use, then reused).
    None: ~/.cache/adapterlab/ast-demo."""
    out: str = "runs/ast"
    """Output folder (run directories, the tiny checkpoint, the embedded data)."""
    frames: int | None = None
    """Input frames (10 ms each). None: the study's value for the dataset (ESC-50 500, US8K 400, GSC 100, FSC 400)."""
    epochs: int | None = None
    """Epochs. None: the study's (ESC-50 50, US8K 30, GSC/FSC 75)."""
    batch_size: int | None = None
    """Batch size. None: the study's (32; GSC 128)."""
    lr: float | None = None
    """Learning rate. None: the method's (5e-3 adapters/LoRA/BitFit, 1e-2 prompt/prefix, 5e-5 full, 1e-3 linear)."""
    weight_decay: float = OPTIMIZER["weight_decay"]
    """AdamW weight decay (betas 0.9/0.98, eps 1e-6)."""
    task: str | None = None
    """'sound' or 'speech' (conformer kernel 8 or 31). None: from the dataset."""
    dim: int | None = None
    """Bottleneck dimension / LoRA rank. None: the study's 12/8/6 for d=768, scaled to the model width."""
    kernel_size: int | None = None
    """Conformer depthwise kernel. None: 8 for sound, 31 for speech."""
    residual: bool | None = None
    """Adapter residual (true/false). None: on for sequential, off for parallel adapters."""
    lora_scale: float | None = None
    """LoRA scale alpha/r. None: the study's 0.125."""
    scaling: float = 1.0
    """Adapter output scale (PETL-AST: 1)."""
    num_prompts: int | None = None
    """Prompt tokens. None: the method's published size (SPT 300, DPT 25)."""
    num_prefix: int | None = None
    """Prefix key (and value) vectors per layer. None: the published 12 (+ 12)."""
    few_shot: int | None = None
    """Keep at most this many training clips per class (seeded)."""
    spec_augment: bool | None = None
    """SpecAugment on training clips. None: on for ESC-50 and UrbanSound8K."""
    freq_mask: int = 24
    """SpecAugment frequency-mask width (mel bins)."""
    time_mask: int | None = None
    """SpecAugment time-mask width (frames). None: 80 (20 on the embedded 128-frame clips)."""
    seed: int = 10
    """Seed (PETL-AST: 10)."""
    skip_bad_samples: bool = False
    """Skip and count unreadable audio files instead of stopping."""
    cache_dir: str | None = None
    """Cache features here as Arrow (datasets); None keeps them in RAM only."""
    fbank_batch: int = 32
    """Clips per batched fbank call when precomputing features."""
    threads: int | None = None
    """torch CPU threads. None: 1 for the tiny model (its small matrices only lose time to thread
    synchronisation, badly so on a busy machine), torch's default otherwise."""
    progress: bool = True
    """Progress bars (never when not a TTY or under CI)."""

    def __post_init__(self) -> None:
        if self.us8k_protocol not in (None, "ours", "original"):
            raise ValueError(
                f"us8k_protocol must be 'ours' or 'original', got {self.us8k_protocol!r}"
            )
        if self.demo not in ("speech", "synth"):
            raise ValueError(f"demo must be 'speech' or 'synth', got {self.demo!r}")
        for name in ("residual", "spec_augment", "skip_bad_samples", "progress"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
        if self.few_shot is not None and (isinstance(self.few_shot, bool) or self.few_shot < 1):
            raise ValueError(f"few_shot must be a positive int, got {self.few_shot!r}")

    @property
    def embedded(self) -> bool:
        return self.data is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunConfig(CommonConfig):
    """Train one PETL method on the Audio Spectrogram Transformer (adapterlab.audio)."""

    method: str = "conformer"
    """Method: linear, full, bitfit, prompt, prompt_deep, prefix, lora, pfeiffer, houlsby, parallel,
    houlsby_parallel, conformer, conformer_houlsby, conformer_sequential, conformer_houlsby_sequential."""

    def __post_init__(self) -> None:
        super().__post_init__()
        spec(self.method)


@dataclass
class Prepared:
    """Data shared by the runs of a sweep: splits, features and the resolved settings."""

    splits: AudioSplits
    fbank: FbankConfig
    features: dict[str, FeatureSet]
    settings: dict[str, Any]
    model_source: str
    root: Path
    dataset: str = "esc50"
    #: clips whose features were computed (not reused from an earlier fold or shot count)
    computed: int = 0

    @property
    def skipped(self) -> list[dict[str, str]]:
        """Clips left out while computing features (``--skip_bad_samples true``), with the reason."""
        return [
            {"split": split, "path": path, "problem": problem}
            for split, fs in self.features.items()
            for path, problem in fs.bad
        ]


def resolve_settings(cfg: CommonConfig, splits: AudioSplits, tiny: bool = False) -> dict[str, Any]:
    """Dataset / embedded defaults filled into the ``None`` fields of ``cfg`` (``tiny``: the backbone is
    the tiny AST, whose recipe then applies, see :data:`.demo.TINY_MODEL_SETTINGS`)."""
    d = splits.defaults
    emb: dict[str, Any] = {}
    if cfg.embedded:
        emb = EMBEDDED_SPEECH if cfg.demo == "speech" else EMBEDDED
    elif tiny:
        emb = TINY_MODEL_SETTINGS
    pick = lambda value, key, fallback: value if value is not None else emb.get(key, fallback)  # noqa: E731
    return {
        "frames": pick(cfg.frames, "frames", d.get("target_frames", 1024)),
        "epochs": pick(cfg.epochs, "epochs", d.get("epochs", 50)),
        "batch_size": pick(cfg.batch_size, "batch_size", d.get("batch_size", 32)),
        "task": cfg.task or d.get("task", "sound"),
        "spec_augment": d.get("spec_augment", False)
        if cfg.spec_augment is None
        else cfg.spec_augment,
        "time_mask": pick(cfg.time_mask, "time_mask", 80),
        "dim": pick(cfg.dim, "dim", None),
        "lora_scale": pick(cfg.lora_scale, "lora_scale", 0.125),
        "full_lr": emb.get("full_lr"),
        "test_from": test_from(splits),
    }


def test_from(splits: AudioSplits) -> str:
    """``"best"`` (the best-validation checkpoint is tested) or ``"last"`` (the last epoch's weights).

    ``"last"`` for UrbanSound8K under the original protocol: PETL-AST validates on the test fold, but its
    ``best_params = model.state_dict()`` holds references to the live weights, so the model it tests is
    the last epoch's; selecting the best epoch on the test fold would be our addition (and a leak).
    """
    return "last" if splits.defaults.get("protocol") == "original" else "best"


def set_threads(threads: int | None, tiny: bool) -> None:
    """Apply ``--threads`` (see :class:`CommonConfig`)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif tiny:
        torch.set_num_threads(1)


def prepare(cfg: CommonConfig, previous: Sequence[Prepared] = ()) -> Prepared:
    """Load the data, pick the model source and precompute the features of every split.

    ``previous`` (earlier folds or shot counts of a sweep): features of clips they already hold are reused
    by reference instead of being decoded and computed again.
    """
    progress = bool(cfg.progress)
    if cfg.embedded or cfg.model == DEMO:
        set_threads(cfg.threads, True)  # the demo backbone's pre-training is tiny too
    if cfg.embedded:
        root, dataset, source = embedded_data(cfg.out, cfg.demo, cfg.model, cfg.demo_dir, progress)
    else:
        model = resolve_model(cfg.model, cfg.demo_dir, progress)
        root, dataset, source = Path(cfg.data), cfg.dataset, model or DEFAULT_CHECKPOINT
    splits = load_dataset(dataset, root, cfg.fold, us8k_protocol=cfg.us8k_protocol or "ours")
    tiny = is_tiny(check_source(source))  # fails before the expensive feature extraction
    set_threads(cfg.threads, tiny)
    if cfg.few_shot is not None:
        splits.train = few_shot(splits.train, cfg.few_shot, seed=cfg.seed)
    settings = resolve_settings(cfg, splits, tiny)
    fcfg = FbankConfig(target_frames=settings["frames"])
    known = [fs for prep in previous if prep.fbank == fcfg for fs in prep.features.values()]
    kw = dict(batch_size=cfg.fbank_batch, skip_bad=cfg.skip_bad_samples, progress=cfg.progress)

    def compute(todo: list) -> FeatureSet:
        if cfg.cache_dir:
            return cached_features(todo, fcfg, cfg.cache_dir, **kw)
        return compute_features(todo, fcfg, **kw)

    features: dict[str, FeatureSet] = {}
    computed = 0
    for split in ("train", "val", "test"):
        items = getattr(splits, split)
        if split == "val" and settings["test_from"] == "last":
            items = []  # no checkpoint selection: the validation split is not used
        fs, n = reuse_features(items, known, compute)
        computed += n
        for path, problem in fs.bad:
            print(f"skipped bad {split} clip {path}: {problem}")
        features[split] = fs
    return Prepared(splits, fcfg, features, settings, source, Path(root), dataset, computed)


def _datasets(prep: Prepared, cfg: CommonConfig) -> dict[str, AudioClipDataset]:
    s = prep.settings
    aug = SpecAugment(cfg.freq_mask, s["time_mask"]) if s["spec_augment"] else None
    return clip_datasets(prep.features, prep.fbank, aug)


def build_model(cfg: RunConfig, prep: Prepared) -> ASTClassifier:
    """The classifier for ``cfg`` with its method added through ``adapterlab.core``."""
    s = prep.settings
    model = build_classifier(
        prep.model_source,
        prep.splits.num_classes,
        s["frames"],
        tiny_dir=tiny_dir(cfg),
        seed=cfg.seed,
    )
    apply_method(model, cfg.method, **method_kwargs(cfg, s))
    return model


def tiny_dir(cfg: CommonConfig) -> Path:
    """Where ``--model tiny`` writes its random checkpoint."""
    return Path(cfg.out) / "tiny-ast"


def method_lr(cfg: RunConfig, settings: dict[str, Any]) -> float:
    """``--lr``, else the embedded demo's full-FT rate (for the tiny AST), else the method's."""
    if cfg.lr is not None:
        return cfg.lr
    if cfg.method == "full" and settings.get("full_lr"):
        return settings["full_lr"]
    return spec(cfg.method).lr


def method_kwargs(cfg: RunConfig, settings: dict[str, Any]) -> dict[str, Any]:
    return dict(
        task=settings["task"],
        residual=cfg.residual,
        dim=settings["dim"],
        kernel_size=cfg.kernel_size,
        lora_scale=settings["lora_scale"],
        num_prompts=cfg.num_prompts,
        num_prefix=cfg.num_prefix,
        scaling=cfg.scaling,
    )


def train(
    cfg: RunConfig, prep: Prepared | None = None, run_dir: str | Path | None = None
) -> dict[str, Any]:
    """Train ``cfg.method``; return the test accuracy, sizes and timing.

    The test accuracy is the best-validation checkpoint's (``best/``), or the last epoch's (``last/``) under
    the original UrbanSound8K protocol (see :func:`test_from`).
    """
    prep = prep or prepare(cfg)
    s = prep.settings
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, prep)
    summary = trainable_summary(model)
    data = _datasets(prep, cfg)
    run_dir = Path(run_dir or Path(cfg.out) / cfg.method)
    tcfg = TrainConfig(
        output_dir=str(run_dir),
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=method_lr(cfg, s),
        optimizer="adamw",
        betas=OPTIMIZER["betas"],
        eps=OPTIMIZER["eps"],
        weight_decay=cfg.weight_decay,
        scheduler="cosine",
        schedule_per="batch",
        mixed_precision="no",
        eval_every_epochs=1,
        metric="accuracy",
        keep_last=1,
        seed=cfg.seed,
        skip_bad_samples=cfg.skip_bad_samples,
        overwrite=True,
        progress=cfg.progress,
    )
    resolved = {
        **cfg.to_dict(),
        **s,
        "model": prep.model_source if prep.model_source != TINY else str(tiny_dir(cfg)),
        "data_root": str(prep.root),
        "resolved_dataset": prep.dataset,
        "num_classes": prep.splits.num_classes,
        "classes": prep.splits.classes,
    }
    last = s["test_from"] == "last"
    trainer = Trainer(
        model,
        tcfg,
        train_data=data["train"],
        eval_data=None if last else data["val"],
        test_data=data["test"],
        loss_fn=loss_fn,
        eval_step=eval_step,
        run_config={"audio": resolved, "train": tcfg.to_dict()},
    )
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    saved = result.run_dir / ("last" if last else "best")
    if cfg.method == BITFIT_ORIGINAL:
        # training held each whole bias in its delta; store the core's form (trained - pretrained)
        unfold_biases_from_bitfit(model, load_ast(resolved["model"]))
    if last or cfg.method == BITFIT_ORIGINAL:
        save_adapter(model, saved)  # the weights that were tested
    skipped = record_skipped(result.run_dir, prep.skipped)
    test = result.test_metrics or {}
    return {
        "method": cfg.method,
        "description": spec(cfg.method).description,
        "test_accuracy": test.get("accuracy"),
        "val_accuracy": result.best_metric,
        "best_step": result.best_step,
        "test_from": s["test_from"],
        "trainable_params": summary.trainable,
        "total_params": summary.total,
        "percent_trainable": summary.percent,
        "train_seconds": seconds,
        "skipped_samples": result.skipped_samples + len(skipped),
        "run_dir": str(result.run_dir),
    }


def record_skipped(run_dir: Path, skipped: list[dict[str, str]]) -> list[dict[str, str]]:
    """Add the clips skipped before training (unreadable files) to the run's ``metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if skipped and path.is_file():
        metrics = json.loads(path.read_text())
        metrics["skipped_samples"] = metrics.get("skipped_samples", 0) + len(skipped)
        by_split = metrics.setdefault("skipped_samples_by_split", {})
        for row in skipped:
            key = {"val": "eval"}.get(row["split"], row["split"])
            by_split[key] = by_split.get(key, 0) + 1
        metrics["skipped_files"] = skipped
        atomic_write_json(path, metrics)
    return skipped


def load_trained(run_dir: str | Path) -> tuple[ASTClassifier, dict[str, Any]]:
    """Rebuild a trained classifier from a run directory (``config.yaml`` + the tested adapter: ``best/``,
    or ``last/`` for runs tested on their last epoch)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    audio = yaml.safe_load(cfg_path.read_text()).get("audio") if cfg_path.is_file() else None
    tested = run_dir / ("last" if (audio or {}).get("test_from") == "last" else "best")
    if not cfg_path.is_file() or not (tested / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir}: not a finished adapterlab-ast run (needs config.yaml and {tested.name}/)"
        )
    if not audio:
        raise ValueError(f"{cfg_path}: no 'audio' section (not an adapterlab-ast run)")
    backbone = load_ast(audio["model"], max_length=audio["frames"])
    model = ASTClassifier(backbone, audio["num_classes"])
    load_adapter(model, tested)  # injects the saved adapter config, then loads its tensors
    model.eval()
    return model, audio


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    data: str | None = None,
    batch_size: int = 32,
    skip_bad_samples: bool = False,
) -> dict[str, Any]:
    """Accuracy of a trained run's tested weights (see :func:`load_trained`) on ``split`` of its dataset
    (or of ``data``)."""
    model, audio = load_trained(run_dir)
    root = data or audio["data_root"]
    dataset = audio.get("resolved_dataset") or audio["dataset"]
    splits = load_dataset(
        dataset, root, audio.get("fold"), us8k_protocol=audio.get("us8k_protocol") or "ours"
    )
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    items = getattr(splits, split)
    fcfg = FbankConfig(target_frames=audio["frames"])
    fs = compute_features(items, fcfg, skip_bad=skip_bad_samples, progress=False)
    metrics = evaluate(
        model,
        AudioClipDataset(fs.items, fcfg, features=fs.features),
        eval_step,
        batch_size=batch_size,
        progress=False,
    )
    return {
        "run_dir": str(run_dir),
        "split": split,
        "accuracy": metrics["accuracy"],
        "num_clips": len(fs.items),
        "skipped": len(fs.bad),
        "skipped_files": [{"path": p, "problem": why} for p, why in fs.bad],
    }
