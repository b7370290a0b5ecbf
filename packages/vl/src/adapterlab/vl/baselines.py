"""Frozen-backbone VQA baselines: the question prior and a linear head on frozen features.

Both say what can be scored without adapting the backbone: the prior answers every question with
the most frequent training answer of its question type (no image); the linear head is a linear
classifier over the training answers, trained with the core engine on features of the frozen
BLIP: the mean of the image-encoder tokens, and the question encoder's first ([CLS]) and mean
token (the question encoder cross-attends to the image, so these features see both).
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import add_adapter, get_config
from adapterlab.core.engine import TrainConfig, Trainer, atomic_write_json
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import CommonConfig
from .data import load_vqav2
from .task import SPLIT_CODES, collate, vqa_scores
from .train import Prepared, prepare_task

__all__ = [
    "LINEAR_HEAD_LRS",
    "LinearHead",
    "frozen_features",
    "linear_head_baseline",
    "question_prior",
    "question_prior_scores",
]

#: learning rates tried for the linear head; the one with the best validation score is kept
LINEAR_HEAD_LRS = (3e-3, 1e-2, 3e-2)


def question_prior(vqa_root: Path, coco_root: Path) -> float:
    """VQA accuracy on test of answering every question with the most frequent training answer
    of its question type (no image)."""
    return question_prior_scores(vqa_root, coco_root)["vqa_accuracy"]


def question_prior_scores(vqa_root: Path, coco_root: Path) -> dict[str, float]:
    """:func:`question_prior` overall and per question type (``vqa_scores``)."""
    train = load_vqav2(vqa_root, "train", coco_root=coco_root)
    test = load_vqav2(vqa_root, "test", coco_root=coco_root)
    by_type: dict[str, Counter] = {}
    for ex in train:
        by_type.setdefault(ex.question_type, Counter())[ex.answer] += 1
    overall = Counter(ex.answer for ex in train).most_common(1)[0][0]
    preds = [
        by_type[ex.question_type].most_common(1)[0][0] if ex.question_type in by_type else overall
        for ex in test
    ]
    return vqa_scores(preds, test)


class LinearHead(nn.Module):
    """A linear classifier over answers, on frozen features."""

    def __init__(self, dim: int, answers: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, answers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


@torch.no_grad()
def frozen_features(
    model: nn.Module, dataset: Dataset, pad_id: int, batch: int = 64
) -> torch.Tensor:
    """``[N, 3 * width]``: mean image token, question [CLS] and mean question token of a frozen
    ``BlipForQuestionAnswering`` (a frozen feature extraction loop, no training)."""
    model.eval()
    rows = []
    loader = DataLoader(
        dataset, batch_size=batch, collate_fn=functools.partial(collate, pad_id=pad_id)
    )
    for b in loader:
        image = model.vision_model(pixel_values=b["pixel_values"])[0]
        mask = torch.ones(image.shape[:2], dtype=torch.long)
        q = model.text_encoder(
            input_ids=b["input_ids"],
            attention_mask=b["attention_mask"],
            encoder_hidden_states=image,
            encoder_attention_mask=mask,
        )[0]
        m = b["attention_mask"].unsqueeze(-1).to(q.dtype)
        rows.append(torch.cat([image.mean(1), q[:, 0], (q * m).sum(1) / m.sum(1)], -1))
    return torch.cat(rows)


class _Features(Dataset):
    def __init__(self, features: torch.Tensor, labels: list[int], split: str) -> None:
        self.features, self.labels, self.split = features, labels, SPLIT_CODES[split]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "features": self.features[i],
            "label": self.labels[i],
            "index": i,
            "split": self.split,
        }


def linear_head_baseline(
    cfg: CommonConfig,
    prep: Prepared,
    out: Path,
    *,
    epochs: int = 40,
    lrs: tuple[float, ...] = LINEAR_HEAD_LRS,
) -> dict[str, Any]:
    """Train a linear answer classifier on frozen VQA-model features, one run per learning rate
    (``out/lr<lr>``); the test scores are those of the run with the best validation score."""
    data = prepare_task(cfg, prep, "vqa")
    backbone = data.backbone()
    answers = sorted({ex.answer for ex in data.datasets["train"].examples})
    code = {a: i for i, a in enumerate(answers)}
    splits = {}
    for split, ds in data.datasets.items():
        feats = frozen_features(backbone.model, ds, backbone.pad_id)
        labels = [code.get(ex.answer, -100) for ex in ds.examples]
        splits[split] = _Features(feats, labels, split)
    mean = splits["train"].features.mean(0)
    std = splits["train"].features.std(0) + 1e-6
    for ds in splits.values():
        ds.features = (ds.features - mean) / std

    def loss_fn(model: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(model(b["features"]), b["label"], ignore_index=-100)

    def eval_step(model: nn.Module, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"pred": model(b["features"]).argmax(-1), "index": b["index"], "split": b["split"]}

    def metric_fn(o: dict[str, torch.Tensor]) -> dict[str, float]:
        if "pred" not in o or not len(o["pred"]):
            return {}
        split = {v: k for k, v in SPLIT_CODES.items()}[int(o["split"][0])]
        exs = data.datasets[split].examples
        preds = [answers[p] for p in o["pred"].tolist()]
        return vqa_scores(preds, [exs[i] for i in o["index"].tolist()])

    runs = {}
    for lr in lrs:
        torch.manual_seed(cfg.seed)
        head = LinearHead(splits["train"].features.shape[1], len(answers))
        add_adapter(head, get_config("full"))
        tcfg = TrainConfig(
            output_dir=str(out / f"lr{lr:g}"),
            epochs=epochs,
            batch_size=64,
            lr=lr,
            weight_decay=0.05,
            scheduler="cosine",
            metric="vqa_accuracy",
            eval_every_epochs=max(1, epochs // 4),
            keep_last=1,
            seed=cfg.seed,
            overwrite=True,
            progress=cfg.progress,
            log_every=50,
        )
        runs[lr] = Trainer(
            head,
            tcfg,
            train_data=splits["train"],
            eval_data=splits["val"],
            test_data=splits["test"],
            loss_fn=loss_fn,
            eval_step=eval_step,
            metric_fn=metric_fn,
            run_config={"vl_linear_head": {**cfg.to_dict(), "answers": answers, "lr": lr}},
        ).fit()
    best = max(lrs, key=lambda lr: runs[lr].best_metric)
    test = runs[best].test_metrics or {}
    summary = {
        "vqa_accuracy": test.get("vqa_accuracy"),
        "test": {k: v for k, v in test.items() if k != "num_samples"},
        "lr": best,
        "val_by_lr": {f"{lr:g}": runs[lr].best_metric for lr in lrs},
        "run_dir": str(out / f"lr{best:g}"),
        "features": int(splits["train"].features.shape[1]),
        "answers": len(answers),
        "trainable_params": splits["train"].features.shape[1] * len(answers) + len(answers),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
