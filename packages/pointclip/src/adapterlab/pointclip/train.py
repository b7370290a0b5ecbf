"""Training through the core engine: CLIP2Point pre-training and the few-shot heads.

Pre-training (Huang et al., ICCV 2023, Sec. 3.2). Deliberate deviations from the original code
(``pretraining.py``):

* The frozen image encoder is applied once per (object, view) before training and its features
  are looked up during training. The original recomputes the same deterministic features every
  step (``image_model(images).detach()``); the result is identical and much cheaper.
* Optimiser: the engine's AdamW (``torch_optimizer.Lamb`` is not a dependency here) with the
  schedule of :func:`~.config.preset_pretrain_config`. The scalar ``w`` gets its own learning
  rate ``w_lr`` (default the original 0.006: Lamb's trust ratio makes a scalar's step about
  ``lr * |w|``, far larger than AdamW's step at a small lr).
* ``freeze_patch_embed`` (on for the random ``tiny`` preset) keeps the patch projection fixed,
  as MoCo v3 (Chen, Xie & He, ICCV 2021) does to stabilise contrastive ViT training.
* Model selection uses held-out *validation* objects carved from the training meshes (depth ->
  image retrieval top-1), with step 0 (the untrained encoder) a candidate. The original kept the
  checkpoint with the best ModelNet40 *test* accuracy. Test retrieval is reported at the
  validation-best checkpoint.

Few-shot heads (CLIP2Point ``fewshot.py``; PointCLIP's adapter): K shots per class are drawn
with a seed after a stratified validation split has been carved from the training split; the
engine selects on validation accuracy and reports test accuracy at that checkpoint (the
original kept the best *test* epoch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import add_adapter, save_adapter, trainable_summary
from adapterlab.core.engine import (
    TrainConfig,
    Trainer,
    atomic_directory,
    atomic_write_json,
    progress_enabled,
    resolve_device,
)
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from .config import FewShotConfig, PretrainConfig
from .data.fewshot import few_shot_split
from .data.training import FeatureDataset, PretrainDataset
from .methods import FEWSHOT_HEADS, pretrain_adapter_config
from .models.adapters import DualPathAdapter, PointCLIPAdapterHead
from .models.clip import ClipBundle
from .models.clip2point import Clip2PointPretrainModel, plain_encoder
from .models.encoders import save_encoder_weights
from .models.features import ViewFeatures, compute_image_features
from .task import (
    FEWSHOT_STEPS,
    logging_metric_fn,
    pretrain_eval_step,
    pretrain_loss,
    pretrain_metric_fn,
    pretrain_param_groups,
)

__all__ = [
    "FewShotResult",
    "PretrainResult",
    "pretrain_train_config",
    "record_in_metrics",
    "run_pretraining",
    "train_fewshot_head",
]


@dataclass
class PretrainResult:
    """What pre-training produced."""

    model: Clip2PointPretrainModel
    untrained: dict[str, float]
    val: dict[str, float]
    test: dict[str, float]
    run_dir: Path
    encoder_path: Path | None
    best_step: int | None
    config: dict[str, Any]
    adapter_dir: Path | None = None
    untrained_val: dict[str, float] = field(default_factory=dict)


def _pretrain_datasets(
    clip: ClipBundle, pairs_root: str | Path, cfg: PretrainConfig, progress: bool
) -> tuple[PretrainDataset, PretrainDataset, PretrainDataset | None]:
    """Train / val / test samples with the frozen image features of every stored view."""
    from .pairs import ImageDepthPairs

    def pairs(split: str, views: str, seed: int | None) -> ImageDepthPairs:
        return ImageDepthPairs(
            pairs_root,
            num_points=cfg.num_points,
            split=split,
            image_size=clip.image_size,
            views=views,
            seed=seed,
        )

    tables = {}
    for split in ("train", "val", "test"):
        ds = pairs(split, "all", 0)
        tables[split] = (
            compute_image_features(clip.visual, ds, progress=progress) if len(ds) else None
        )
    if tables["train"] is None or tables["val"] is None:
        raise ValueError(
            f"Pairs folder '{pairs_root}' needs objects in both the train and the val split "
            "(val is carved from train; add more meshes)"
        )
    train = PretrainDataset(pairs("train", "random", None), tables["train"], cfg.views_per_object)
    val = PretrainDataset(pairs("val", "random", 0), tables["val"], all_views=True)
    test = (
        PretrainDataset(pairs("test", "random", 0), tables["test"], all_views=True)
        if tables["test"] is not None
        else None
    )
    return train, val, test


def record_in_metrics(run_dir: str | Path, **entries: Any) -> None:
    """Add ``entries`` to an engine run's ``metrics.json`` (atomically), e.g. the weights used."""
    path = Path(run_dir) / "metrics.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data.update(entries)
    atomic_write_json(path, data)


def pretrain_train_config(
    cfg: PretrainConfig,
    steps_per_epoch: int,
    out_dir: str | Path,
    progress: bool = False,
    overwrite: bool = False,
) -> TrainConfig:
    """The engine settings of pre-training: the schedule of ``cfg`` (warm-up, warm restarts every
    ``restart_epochs`` epochs but at least ``min_restart_steps`` steps, floor
    :meth:`PretrainConfig.schedule_min_lr`), drop_last and selection on validation retrieval."""
    warmup = cfg.warmup_steps
    if warmup is None:
        warmup = min(500, cfg.epochs * steps_per_epoch // 10)
    return TrainConfig(
        output_dir=str(out_dir),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        scheduler=cfg.scheduler,
        warmup_steps=warmup,
        restart_period=max(cfg.restart_epochs * steps_per_epoch, cfg.min_restart_steps),
        drop_last=True,  # the original's DataLoader; NT-Xent needs >= 2 pairs per batch
        mixed_precision=cfg.mixed_precision,
        min_lr=cfg.schedule_min_lr(),
        metric="retrieval_top1",
        metric_mode="max",
        seed=cfg.seed,
        progress=progress,
        overwrite=overwrite,
    )


def _keep_step0_as_best(
    model: nn.Module, run_dir: Path, value: float, test_metrics: dict[str, float]
) -> Path:
    """Step 0 (the untrained encoder) won validation selection: make it *the* best, i.e. replace
    ``<run>/best`` (which holds the best trained step) and fix ``metrics.json``, so that
    ``best/`` and ``depth_encoder.safetensors`` hold the same encoder."""
    info = {"step": 0, "epoch": 0, "metric": "retrieval_top1", "value": value}

    def write(tmp: Path) -> None:
        save_adapter(model, tmp)
        (tmp / "best.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    atomic_directory(run_dir / "best", write)
    record_in_metrics(
        run_dir,
        best_step=0,
        best_metric=value,
        test=test_metrics or None,
        test_from="best",
        best_note="step 0 (the untrained encoder) beat every trained step on validation",
    )
    return run_dir / "best"


def run_pretraining(
    clip: ClipBundle,
    pairs_root: str | Path,
    out_dir: str | Path,
    cfg: PretrainConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> PretrainResult:
    """Pre-train a depth encoder on an image-depth pairs folder with the core engine.

    Splits: ``train`` (training), ``val`` (model selection), ``test`` (reported, may be empty).
    Writes the engine run dir under ``out_dir`` and ``out_dir/depth_encoder.safetensors``
    (merged depth encoder at the validation-best step).
    """
    cfg = cfg or PretrainConfig()
    out_dir = Path(out_dir)
    train, val, test = _pretrain_datasets(clip, pairs_root, cfg, progress)
    model = Clip2PointPretrainModel(
        clip.visual,
        clip.image_size,
        num_views=train.num_views,
        jitter=cfg.jitter,
        temperature=cfg.temperature,
    )
    add_adapter(model, pretrain_adapter_config(cfg.adapter, cfg.adapter_overrides))
    if cfg.freeze_patch_embed:
        for name, p in model.depth_encoder.named_parameters():
            if name.startswith("conv1."):
                p.requires_grad_(False)
    model.to(next(clip.model.parameters()).device)
    if len(train) < cfg.batch_size:
        raise ValueError(
            f"Pre-training needs at least batch_size={cfg.batch_size} training samples per epoch "
            f"(drop_last, as the original); '{pairs_root}' gives {len(train)}. Lower --batch_size "
            "or add meshes."
        )
    steps_per_epoch = len(train) // cfg.batch_size
    train_cfg = pretrain_train_config(cfg, steps_per_epoch, out_dir, progress, overwrite)
    trainer = Trainer(
        model,
        train_cfg,
        train_data=train,
        loss_fn=pretrain_loss,
        eval_data=val,
        test_data=test,
        eval_step=pretrain_eval_step,
        metric_fn=logging_metric_fn(cfg.epochs)
        if progress and not progress_enabled()
        else pretrain_metric_fn,
        param_groups=lambda m: pretrain_param_groups(m, cfg.w_lr),
        run_config={
            "pretrain": asdict(cfg),
            "clip": clip_info(clip),
            "trainable": str(trainable_summary(model)),
        },
    )
    untrained = trainer.evaluate(test if test is not None else val)
    untrained_val = trainer.evaluate(val)
    start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result = trainer.fit()
    best_step, test_metrics = result.best_step, dict(result.test_metrics or {})
    adapter_dir: Path | None = Path(result.run_dir) / "best"
    start_value = untrained_val.get("retrieval_top1", float("-inf"))
    if result.best_metric is None or start_value > result.best_metric:
        # step 0 (the untrained encoder) is a candidate too: never return a worse encoder,
        # and keep one best: <run>/best and depth_encoder.safetensors both hold step 0
        model.load_state_dict(start_state)
        best_step = 0
        test_metrics = trainer.evaluate(test) if test is not None else {}
        adapter_dir = _keep_step0_as_best(model, Path(result.run_dir), start_value, test_metrics)
    del start_state
    plain = plain_encoder(model)
    encoder_path = (
        save_encoder_weights(plain, out_dir / "depth_encoder.safetensors", clip.weights)
        if plain is not None
        else None
    )
    record_in_metrics(
        result.run_dir,
        weights=clip.weights,
        untrained_val=untrained_val,
        depth_encoder=str(encoder_path) if encoder_path else None,
    )
    return PretrainResult(
        model=model,
        untrained=untrained,
        val=trainer.evaluate(val),
        test=test_metrics,
        run_dir=Path(result.run_dir),
        encoder_path=encoder_path,
        best_step=best_step,
        config=asdict(cfg),
        adapter_dir=adapter_dir,
        untrained_val=untrained_val,
    )


def clip_info(clip: ClipBundle) -> dict[str, Any]:
    """The CLIP model's identity for config files."""
    return {
        "model": clip.model_name,
        "pretrained": clip.pretrained,
        "image_size": clip.image_size,
        "embed_dim": clip.embed_dim,
        "quick_gelu": clip.weights.get("quick_gelu"),
    }


@dataclass
class FewShotResult:
    """Outcome of one few-shot run."""

    val_accuracy: float
    test_accuracy: float
    best_step: int | None
    run_dir: Path
    head: nn.Module
    num_train: int
    num_val: int


def train_fewshot_head(
    train: ViewFeatures,
    test: ViewFeatures,
    text_features: torch.Tensor,
    out_dir: str | Path,
    cfg: FewShotConfig | None = None,
    pre_key: str = "pre",
    ori_key: str = "ori",
    progress: bool = True,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    augmented: Callable[[list[int]], Sequence[ViewFeatures]] | None = None,
    weights: dict[str, Any] | None = None,
) -> FewShotResult:
    """Draw K shots (+ validation) from ``train``, train the head with the engine, test it.

    ``train``/``test`` hold per-view features under ``pre_key`` (pre-trained depth encoder) and
    ``ori_key`` (original CLIP encoder); the PointCLIP head uses ``pre_key`` only.
    ``augmented(shot_indices)`` (optional) returns features of augmented copies of those training
    rows (PointCLIP's scale/shift); they join the training set, validation stays un-augmented.
    ``weights`` (the CLIP weights behind the features, :attr:`ClipBundle.weights`) is recorded in
    the run's ``metrics.json``.
    """
    from adapterlab.core import LinearProbeConfig

    cfg = cfg or FewShotConfig()
    if cfg.head not in FEWSHOT_HEADS:
        raise ValueError(f"Unknown few-shot head {cfg.head!r}; use 'dpa' or 'pointclip'")
    device = resolve_device(device)
    shot_idx, val_idx = few_shot_split(train.labels, cfg.shots, cfg.seed, cfg.val_fraction)
    if not val_idx:
        raise ValueError("The training split is too small to carve a validation split")
    num_views = train.features[pre_key].shape[1]
    with torch.random.fork_rng(devices=[]):  # the head's init depends on cfg.seed only
        torch.manual_seed(cfg.seed)
        head_cls = DualPathAdapter if cfg.head == "dpa" else PointCLIPAdapterHead
        head: nn.Module = head_cls(text_features, num_views)
    add_adapter(head, LinearProbeConfig(modules_to_save=FEWSHOT_HEADS[cfg.head]))
    head.to(device)
    loss_fn, eval_step = FEWSHOT_STEPS[cfg.head]

    train_ds: Dataset = FeatureDataset(train.subset(shot_idx), pre_key, ori_key)
    if augmented is not None:
        copies = [FeatureDataset(f, pre_key, ori_key) for f in augmented(shot_idx)]
        train_ds = ConcatDataset([train_ds, *copies])
    val_ds = FeatureDataset(train.subset(val_idx), pre_key, ori_key)
    test_ds = FeatureDataset(test, pre_key, ori_key)
    n = len(train_ds)
    if n < 2:
        raise ValueError("Few-shot training needs at least 2 samples (BatchNorm in the adapter)")
    train_cfg = TrainConfig(
        output_dir=str(out_dir),
        epochs=cfg.epochs,
        batch_size=min(cfg.batch_size, n),
        eval_batch_size=256,
        # BatchNorm cannot train on a batch of one: drop a last batch of size 1
        drop_last=n > cfg.batch_size and n % cfg.batch_size == 1,
        lr=cfg.lr,
        optimizer=cfg.optimizer,
        scheduler=cfg.scheduler,
        warmup_steps=cfg.warmup_epochs * max(1, n // min(cfg.batch_size, n)),
        weight_decay=cfg.weight_decay,
        metric="accuracy",
        metric_mode="max",
        mixed_precision=cfg.mixed_precision,
        seed=cfg.seed,
        progress=progress,
        overwrite=overwrite,
    )
    trainer = Trainer(
        head,
        train_cfg,
        train_data=train_ds,
        loss_fn=loss_fn,
        eval_data=val_ds,
        test_data=test_ds,
        eval_step=eval_step,
        run_config={"fewshot": asdict(cfg), "num_train": n, "num_val": len(val_ds)},
    )
    result = trainer.fit()
    if weights is not None:
        record_in_metrics(result.run_dir, weights=weights)
    return FewShotResult(
        val_accuracy=float(result.best_metric),
        test_accuracy=float((result.test_metrics or {}).get("accuracy", float("nan"))),
        best_step=result.best_step,
        run_dir=Path(result.run_dir),
        head=head,
        num_train=n,
        num_val=len(val_ds),
    )
