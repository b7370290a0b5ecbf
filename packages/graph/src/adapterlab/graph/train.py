"""Training of every stage through the core engine's ``Trainer``; evaluation through it too."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapterlab.core import LinearProbeConfig, add_adapter, trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer, seed_everything
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from torch_geometric.data import Data

from .cache import LLMCache
from .config import FinetuneConfig, PretrainConfig
from .models.baselines import FeatureMLP, GraphSAGE
from .models.graphadapter import GraphAdapter, GraphAdapterClassifier, GraphAdapterPretrainer
from .task import (
    ClassificationBatches,
    NodeIds,
    PretrainBatches,
    classification_eval_step,
    classification_loss,
    classification_metrics,
    pretrain_eval_step,
    pretrain_loss,
    pretrain_metrics,
)

__all__ = ["StageResult", "finetune", "pretrain", "ADAPTER_FILE"]

ADAPTER_FILE = "graphadapter.safetensors"


@dataclass
class StageResult:
    """Outcome of one training stage."""

    method: str
    seed: int
    val: dict[str, float]
    test: dict[str, float]
    trainable_params: int
    seconds: float
    run_dir: Path


def _fanouts(values: list[int]) -> list[int | None]:
    return [None if v <= 0 else int(v) for v in values]


def pretrain(
    cache: LLMCache,
    data: Data,
    cfg: PretrainConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Pre-train GraphAdapter on all nodes (first 90 % of each node's tokens; the last 10 % are
    the evaluation set); writes the adapter to ``run_dir/graphadapter.safetensors``."""
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    adapter = GraphAdapter(cache.hidden_size, cfg.hidden, cfg.gnn)
    model = GraphAdapterPretrainer(adapter, cache.lm_head())
    add_adapter(model, LinearProbeConfig(modules_to_save=["adapter"]))
    nodes = NodeIds(range(cache.num_nodes))
    fanouts = _fanouts(cfg.fanouts)
    steps_per_epoch = -(-len(nodes) // cfg.batch_size)
    train_cfg = TrainConfig(
        output_dir=str(run_dir), epochs=cfg.epochs, max_steps=cfg.max_steps,
        batch_size=cfg.batch_size, eval_batch_size=cfg.batch_size * 4, lr=cfg.lr,
        weight_decay=cfg.weight_decay, scheduler="linear_warmup", warmup_steps=cfg.warmup_steps,
        eval_every_epochs=1, metric="loss", metric_mode="min", keep_last=1, seed=cfg.seed,
        log_every=max(1, steps_per_epoch // 4), overwrite=overwrite, progress=show_progress,
    )  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(
        model, train_cfg, train_data=nodes,
        eval_data=DataLoader(nodes, collate_fn=PretrainBatches(cache, data.edge_index, fanouts, "eval")),
        loss_fn=lambda m, b: pretrain_loss(m, b, cfg.smoothing),
        eval_step=lambda m, b: pretrain_eval_step(m, b, cfg.smoothing),
        metric_fn=pretrain_metrics,
        collate_fn=PretrainBatches(cache, data.edge_index, fanouts, "train"),
        run_config={"stage": "pretrain", "pretrain": cfg.__dict__},
    )  # fmt: skip
    result = trainer.fit()
    save_file(
        {k: v.contiguous() for k, v in adapter.state_dict().items()}, str(run_dir / ADAPTER_FILE)
    )
    return StageResult(
        "pretrain", cfg.seed, result.final_metrics, result.final_metrics,
        trainable_summary(model).trainable, time.perf_counter() - start, run_dir,
    )  # fmt: skip


def build_classifier(
    method: str, cache: LLMCache, num_classes: int, cfg: FinetuneConfig, pretrained: Path | None
) -> nn.Module:
    """The model of a classification method, with its trainable part declared to the core."""
    if method in ("graphadapter", "graphadapter_nopretrain"):
        adapter = GraphAdapter(cache.hidden_size, cfg.hidden, cfg.gnn)
        if method == "graphadapter":
            if pretrained is None or not Path(pretrained).is_file():
                raise FileNotFoundError(f"pre-trained GraphAdapter weights not found: {pretrained}")
            adapter.load_state_dict(load_file(str(pretrained)))
        model: nn.Module = GraphAdapterClassifier(adapter, num_classes)
        add_adapter(model, LinearProbeConfig(modules_to_save=["adapter", "head"]))
    elif method == "graphsage":
        model = GraphSAGE(cache.hidden_size, 2 * cfg.hidden, num_classes)
        add_adapter(model, LinearProbeConfig(modules_to_save=["conv1", "conv2"]))
    elif method == "mlp":
        model = FeatureMLP(cache.hidden_size, 2 * cfg.hidden, num_classes)
        add_adapter(model, LinearProbeConfig(modules_to_save=["net"]))
    else:
        raise ValueError(f"unknown method {method!r}")
    return model


def finetune(
    method: str,
    cache: LLMCache,
    data: Data,
    cfg: FinetuneConfig,
    run_dir: str | Path,
    *,
    pretrained: Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Train a node classifier (GraphAdapter with or without pre-training, GraphSAGE, MLP) on the
    train split; the test metrics come from the checkpoint with the best validation accuracy."""
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    model = build_classifier(method, cache, len(data.label_names), cfg, pretrained)
    collate = ClassificationBatches(cache, data.edge_index, data.y, _fanouts(cfg.fanouts))
    train_ids = NodeIds(data.train_mask.nonzero().view(-1))
    val_ids = NodeIds(data.val_mask.nonzero().view(-1))
    test_ids = NodeIds(data.test_mask.nonzero().view(-1))
    train_cfg = TrainConfig(
        output_dir=str(run_dir), max_steps=cfg.steps, batch_size=min(cfg.batch_size, len(train_ids)),
        eval_batch_size=4096, lr=cfg.lr, weight_decay=cfg.weight_decay,
        eval_every_steps=cfg.eval_every, metric="accuracy", metric_mode="max", keep_last=1,
        seed=cfg.seed, log_every=cfg.eval_every, overwrite=overwrite, progress=show_progress,
    )  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(
        model, train_cfg, train_data=train_ids, eval_data=val_ids, test_data=test_ids,
        loss_fn=classification_loss, eval_step=classification_eval_step,
        metric_fn=classification_metrics, collate_fn=collate,
        run_config={"stage": "finetune", "method": method, "finetune": cfg.__dict__},
    )  # fmt: skip
    result = trainer.fit()
    val = {k: v for k, v in result.final_metrics.items()}
    return StageResult(
        method, cfg.seed, val, dict(result.test_metrics or {}),
        trainable_summary(model).trainable, time.perf_counter() - start, run_dir,
    )  # fmt: skip


def describe(result: StageResult) -> dict[str, Any]:
    """JSON-ready record of a stage."""
    return {
        "method": result.method, "seed": result.seed, "val": result.val, "test": result.test,
        "trainable_params": result.trainable_params, "seconds": result.seconds,
        "run_dir": str(result.run_dir),
    }  # fmt: skip
