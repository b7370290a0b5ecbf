"""Few-shot classification heads trained with the core engine on frozen view features.

* ``dpa``: CLIP2Point's Dual-Path Adapter (pre-trained depth encoder + original CLIP encoder),
  cross entropy on cosine logits, AdamW lr 1e-3, wd 1e-4, batch 32 (``fewshot.py`` of the
  original; 100 epochs there).
* ``pointclip``: PointCLIP's inter-view adapter on one encoder, label smoothing 0.2.

K-shot training sets (K in 1/2/4/8/16) are drawn with a seed from the training split after a
stratified validation split has been carved from it. The engine selects the checkpoint on the
validation accuracy and reports test accuracy at that checkpoint; the test split is never used for
selection (the original kept the best *test* epoch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from .adapters import DualPathAdapter, PointCLIPAdapterHead, smooth_cross_entropy
from .features import ViewFeatures

__all__ = [
    "FewShotConfig",
    "FewShotResult",
    "FeatureDataset",
    "few_shot_split",
    "train_fewshot_head",
]


@dataclass
class FewShotConfig:
    """Few-shot head settings (paper values in brackets).

    Attributes:
        head: "dpa" (Dual-Path Adapter) or "pointclip" (inter-view adapter, single path).
        shots: samples per class drawn from the training split [16].
        seed: seed of the shot draw and of the engine.
        val_fraction: stratified share of the training split kept for model selection.
        epochs: [100 for DPA, 250 for PointCLIP].
        batch_size: [32].
        lr: [1e-3 AdamW for DPA; PointCLIP used SGD 0.01 + cosine].
        weight_decay: [1e-4].
        mixed_precision: engine autocast on GPU ["no": the original ran fp32].
    """

    head: Literal["dpa", "pointclip"] = "dpa"
    shots: int = 16
    seed: int = 0
    val_fraction: float = 0.2
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    mixed_precision: str = "no"


def few_shot_split(
    labels: list[int] | torch.Tensor, shots: int, seed: int = 0, val_fraction: float = 0.2
) -> tuple[list[int], list[int]]:
    """``(shot_indices, val_indices)`` into a training split.

    A stratified validation share is carved first; then at most ``shots`` samples per class are
    drawn (seeded) from the rest. The two never overlap.
    """
    from ..data import few_shot_indices, train_val_split

    labels = [int(x) for x in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    train_idx, val_idx = train_val_split(labels, val_fraction=val_fraction, seed=seed)
    picked = few_shot_indices([labels[i] for i in train_idx], shots, seed=seed)
    return sorted(train_idx[i] for i in picked), sorted(val_idx)


class FeatureDataset(Dataset):
    """Items ``{"pre": [V, D], "ori": [V, D], "label": int}`` from :class:`ViewFeatures`."""

    def __init__(self, feats: ViewFeatures, pre_key: str = "pre", ori_key: str = "ori") -> None:
        self.pre = feats.features[pre_key]
        self.ori = feats.features[ori_key]
        self.labels = feats.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"pre": self.pre[i], "ori": self.ori[i], "label": self.labels[i]}


def _dpa_loss(model: DualPathAdapter, batch: dict[str, Any]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["pre"], batch["ori"]), batch["label"])


def _dpa_eval(model: DualPathAdapter, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {"logits": model(batch["pre"], batch["ori"]), "target": batch["label"]}


def _pc_loss(model: PointCLIPAdapterHead, batch: dict[str, Any]) -> torch.Tensor:
    return smooth_cross_entropy(model(batch["pre"]), batch["label"], eps=0.2)


def _pc_eval(model: PointCLIPAdapterHead, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {"logits": model(batch["pre"]), "target": batch["label"]}


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
) -> FewShotResult:
    """Draw K shots (+ validation) from ``train``, train the head with the engine, test it.

    ``train``/``test`` hold per-view features under ``pre_key`` (pre-trained depth encoder) and
    ``ori_key`` (original CLIP encoder); the PointCLIP head uses ``pre_key`` only.
    """
    from adapterlab.core import LinearProbeConfig, add_adapter
    from adapterlab.core.engine import TrainConfig, Trainer

    cfg = cfg or FewShotConfig()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    shot_idx, val_idx = few_shot_split(train.labels, cfg.shots, cfg.seed, cfg.val_fraction)
    if not val_idx:
        raise ValueError("The training split is too small to carve a validation split")
    num_views = train.features[pre_key].shape[1]
    with torch.random.fork_rng(devices=[]):  # the head's init depends on cfg.seed only
        torch.manual_seed(cfg.seed)
        if cfg.head == "dpa":
            head: nn.Module = DualPathAdapter(text_features, num_views)
            saved, loss_fn, eval_step = ["pre_adapter", "ori_adapter"], _dpa_loss, _dpa_eval
        elif cfg.head == "pointclip":
            head = PointCLIPAdapterHead(text_features, num_views)
            saved, loss_fn, eval_step = ["adapter"], _pc_loss, _pc_eval
        else:
            raise ValueError(f"Unknown few-shot head {cfg.head!r}; use 'dpa' or 'pointclip'")
    add_adapter(head, LinearProbeConfig(modules_to_save=saved))
    head.to(device)

    train_ds = FeatureDataset(train.subset(shot_idx), pre_key, ori_key)
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
    return FewShotResult(
        val_accuracy=float(result.best_metric),
        test_accuracy=float((result.test_metrics or {}).get("accuracy", float("nan"))),
        best_step=result.best_step,
        run_dir=Path(result.run_dir),
        head=head,
        num_train=n,
        num_val=len(val_ds),
    )
