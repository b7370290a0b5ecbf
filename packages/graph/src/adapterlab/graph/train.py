"""Training of every stage through the core engine's ``Trainer``; evaluation through it too."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import LinearProbeConfig, add_adapter, delete_adapter, trainable_summary
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
    FullBatchSteps,
    NodeIds,
    PretrainBatches,
    classification_eval_step,
    classification_loss,
    classification_metrics,
    pretrain_eval_step,
    pretrain_loss,
    pretrain_metrics,
)

__all__ = [
    "ADAPTER_FILE",
    "StageResult",
    "describe",
    "finetune",
    "pretrain",
    "selection_metric",
    "tfidf_baseline",
    "stratified_subset",
    "test_lora",
    "train_lora",
]

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


def selection_metric(num_classes: int) -> str:
    """The metric that selects the checkpoint and is reported first: ROC-AUC for a binary task
    (as the original on Instagram and Reddit), accuracy for a multi-class one (arxiv)."""
    return "roc_auc" if num_classes == 2 else "accuracy"


def pretrain(
    cache: LLMCache,
    data: Data,
    cfg: PretrainConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Pre-train GraphAdapter on all nodes (first 90 % of each node's tokens, as the original);
    validation (the loss that picks the best checkpoint) reads the held-out last 10 % of the
    tokens of the validation-split nodes only, through its own collate. Writes the adapter of
    the best validation loss to ``run_dir/graphadapter.safetensors``."""
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    adapter = GraphAdapter(cache.hidden_size, cfg.hidden, cfg.gnn)
    model = GraphAdapterPretrainer(adapter, cache.lm_head())
    add_adapter(model, LinearProbeConfig(modules_to_save=["adapter"]))
    nodes = NodeIds(range(cache.num_nodes))
    val_nodes = NodeIds(data.val_mask.nonzero().view(-1))
    fanouts = _fanouts(cfg.fanouts)
    steps_per_epoch = -(-len(nodes) // cfg.batch_size)
    train_cfg = TrainConfig(
        output_dir=str(run_dir), epochs=cfg.epochs, max_steps=cfg.max_steps,
        batch_size=cfg.batch_size, eval_batch_size=cfg.batch_size * 4, lr=cfg.lr,
        weight_decay=cfg.weight_decay, scheduler="linear_warmup", warmup_steps=cfg.warmup_steps,
        schedule_per=cfg.schedule_per, eval_every_epochs=1, metric="loss", metric_mode="min",
        keep_last=1, seed=cfg.seed, log_every=max(1, steps_per_epoch // 4), overwrite=overwrite,
        progress=show_progress,
    )  # fmt: skip
    start = time.perf_counter()
    # each split brings its own collate (training tokens / held-out tokens); no shared collate_fn
    train_collate = PretrainBatches(cache, data.edge_index, fanouts, "train")
    eval_collate = PretrainBatches(cache, data.edge_index, fanouts, "eval")
    trainer = Trainer(
        model, train_cfg, train_data=DataLoader(nodes, collate_fn=train_collate),
        eval_data=DataLoader(val_nodes, collate_fn=eval_collate),
        loss_fn=lambda m, b: pretrain_loss(m, b, cfg.smoothing),
        eval_step=lambda m, b: pretrain_eval_step(m, b, cfg.smoothing),
        metric_fn=pretrain_metrics,
        run_config={"stage": "pretrain", "pretrain": cfg.__dict__, "eval": "val nodes, held-out tokens"},
    )  # fmt: skip
    result = trainer.fit()  # leaves the adapter of the best validation loss in the model
    save_file(
        {k: v.contiguous() for k, v in adapter.state_dict().items()}, str(run_dir / ADAPTER_FILE)
    )
    val = {"metric": "loss", "loss": result.best_metric, "best_step": result.best_step}
    return StageResult(
        "pretrain", cfg.seed, val, result.final_metrics,
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
    plots: bool = True,
) -> StageResult:
    """Train a node classifier (GraphAdapter with or without pre-training, GraphSAGE, MLP) on the
    train split; the test metrics come from the checkpoint with the best validation score
    (:func:`selection_metric`: ROC-AUC for two classes, accuracy otherwise)."""
    run_dir = Path(run_dir)
    seed_everything(cfg.seed)
    model = build_classifier(method, cache, len(data.label_names), cfg, pretrained)
    metric = selection_metric(len(data.label_names))
    collate = ClassificationBatches(cache, data.edge_index, data.y, _fanouts(cfg.fanouts))
    train_nodes = data.train_mask.nonzero().view(-1)
    full_batch = cfg.batch_size >= len(train_nodes)
    train_ids = FullBatchSteps(train_nodes, cfg.steps) if full_batch else NodeIds(train_nodes)
    val_ids = NodeIds(data.val_mask.nonzero().view(-1))
    test_ids = NodeIds(data.test_mask.nonzero().view(-1))
    train_cfg = TrainConfig(
        output_dir=str(run_dir), max_steps=cfg.steps, batch_size=1 if full_batch else cfg.batch_size,
        eval_batch_size=4096, lr=cfg.lr, weight_decay=cfg.weight_decay,
        eval_every_steps=cfg.eval_every, metric=metric, metric_mode="max", keep_last=1,
        seed=cfg.seed, log_every=cfg.eval_every, overwrite=overwrite, progress=show_progress,
        plots=plots,
    )  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(
        model, train_cfg, train_data=train_ids, eval_data=val_ids, test_data=test_ids,
        loss_fn=classification_loss, eval_step=classification_eval_step,
        metric_fn=classification_metrics, collate_fn=collate,
        run_config={"stage": "finetune", "method": method, "finetune": cfg.__dict__},
    )  # fmt: skip
    result = trainer.fit()
    val = {"metric": metric, metric: result.best_metric, "best_step": result.best_step}
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


class _TokenisedNodes(torch.utils.data.Dataset):
    """(token ids, label) per node: template + text + question, as in the cache."""

    def __init__(self, seqs: list[list[int]], labels: list[int]) -> None:
        self.seqs, self.labels = seqs, labels

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.seqs[index], self.labels[index]


def _pad_collate(pad_id: int):
    def collate(items: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        width = max(len(s) for s, _ in items)
        ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (s, _) in enumerate(items):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask,
                "target": torch.tensor([y for _, y in items])}  # fmt: skip

    return collate


def _lora_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(
        model(batch["input_ids"], batch["attention_mask"]), batch["target"]
    )


def _lora_eval(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    return {"logits": model(batch["input_ids"], batch["attention_mask"]), "target": batch["target"]}


def stratified_subset(
    ids: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int
) -> list[int]:
    """Up to ``limit`` of ``ids``, the classes taking turns (seeded order within each class), so
    a budget subset covers every class equally (the first ``limit`` ids by node number covered 4
    of WordNet's 12 classes: node ids follow the snowball sampling)."""
    ids = ids.view(-1)
    if limit is None or limit >= len(ids):
        return ids.tolist()
    gen = torch.Generator().manual_seed(seed)
    per_class = [
        ids[y[ids] == c][torch.randperm(int((y[ids] == c).sum()), generator=gen)].tolist()
        for c in sorted(set(y[ids].tolist()))
    ]
    out: list[int] = []
    for rank in range(max(len(p) for p in per_class)):
        out.extend(p[rank] for p in per_class if rank < len(p))
    return sorted(out[:limit])


def _lora_model(llm: nn.Module, num_classes: int, last_layers: int) -> tuple[nn.Module, list[str]]:
    from adapterlab.core import LoraConfig

    from .models.llm_classifier import LLMClassifier, lora_targets

    model = LLMClassifier(llm, num_classes)
    targets = lora_targets(llm, last_layers)
    add_adapter(model, LoraConfig(r=8, alpha=16, target_modules=[f"llm.{t}" for t in targets],
                                  modules_to_save=["head"]))  # fmt: skip
    return model, targets


class _LoraData:
    """Tokenised node subsets for the LoRA baseline (template + text + question, as the cache)."""

    def __init__(self, tokenizer, data: Data, spec, llm: nn.Module) -> None:
        from .cache import _max_positions, _sequences

        self.seqs = [s for s, _, _ in _sequences(spec, tokenizer, data.texts, _max_positions(llm))]
        self.y = data.y.tolist()

    def subset(self, ids: list[int], by_length: bool = False) -> _TokenisedNodes:
        if by_length:  # evaluation order does not change the metrics; sorting cuts padding
            ids = sorted(ids, key=lambda i: len(self.seqs[i]))
        return _TokenisedNodes([self.seqs[i] for i in ids], [self.y[i] for i in ids])


def train_lora(
    llm: nn.Module,
    tokenizer,
    data: Data,
    spec,
    run_dir: str | Path,
    *,
    train_nodes: int,
    steps: int,
    last_layers: int = 4,
    lr: float = 1e-3,
    batch_size: int = 8,
    val_nodes: int | None = None,
    test: bool = True,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
    plots: bool = True,
) -> StageResult:
    """LoRA (core ``LoraConfig``, r=8, targets from the architecture) on the LLM's last
    ``last_layers`` layers plus a linear head, on a budget: ``train_nodes`` training nodes drawn
    evenly over the classes, ``steps`` steps. Validated once at the end (the selection metric on
    ``val_nodes`` validation nodes drawn the same way; None: all), which picks the learning rate
    in ``run_all``; ``test`` also reads the test split from the same final weights (else use
    :func:`test_lora` on the chosen run)."""
    run_dir = Path(run_dir)
    seed_everything(seed)
    model, targets = _lora_model(llm, len(data.label_names), last_layers)
    nodes = _LoraData(tokenizer, data, spec, llm)
    train_ids = stratified_subset(data.train_mask.nonzero(), data.y, train_nodes, seed)
    val_ids = stratified_subset(data.val_mask.nonzero(), data.y, val_nodes, seed)
    metric = selection_metric(len(data.label_names))
    train_cfg = TrainConfig(
        output_dir=str(run_dir), max_steps=steps, batch_size=batch_size, eval_batch_size=64,
        lr=lr, eval_every_steps=steps, metric=metric, metric_mode="max", keep_last=1, seed=seed,
        log_every=max(1, steps // 6), overwrite=overwrite, progress=show_progress, plots=plots,
    )  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(
        model, train_cfg, train_data=nodes.subset(train_ids),
        eval_data=nodes.subset(val_ids, by_length=True),
        test_data=nodes.subset(data.test_mask.nonzero().view(-1).tolist(), by_length=True) if test else None,
        loss_fn=_lora_loss, eval_step=_lora_eval, metric_fn=classification_metrics,
        collate_fn=_pad_collate(tokenizer.pad_token_id),
        run_config={"stage": "lora", "targets": targets, "train_nodes": len(train_ids), "lr": lr},
    )  # fmt: skip
    result = trainer.fit()
    val = {"metric": metric, metric: result.best_metric, "best_step": result.best_step, "lr": lr,
           "train_nodes": len(train_ids), "val_nodes": len(val_ids)}  # fmt: skip
    res = StageResult(
        "lora", seed, val, dict(result.test_metrics or {}),
        trainable_summary(model).trainable, time.perf_counter() - start, run_dir,
    )  # fmt: skip
    delete_adapter(model, "default")  # the shared LLM is clean again for the next grid point
    llm.requires_grad_(False).eval()
    return res


def test_lora(
    llm: nn.Module, tokenizer, data: Data, spec, run_dir: str | Path, *, last_layers: int = 4,
    show_progress: bool = True,
) -> dict[str, float]:  # fmt: skip
    """Test metrics of the LoRA adapter + head saved in ``run_dir/best`` (the chosen grid
    point), on the whole test split."""
    from adapterlab.core import load_adapter
    from adapterlab.core.engine import evaluate

    model, _ = _lora_model(llm, len(data.label_names), last_layers)
    delete_adapter(model, "default")
    load_adapter(model, Path(run_dir) / "best")
    nodes = _LoraData(tokenizer, data, spec, llm)
    test_ids = data.test_mask.nonzero().view(-1).tolist()
    try:
        return evaluate(model.eval(), nodes.subset(test_ids, by_length=True), _lora_eval,
                        classification_metrics, batch_size=64,
                        collate_fn=_pad_collate(tokenizer.pad_token_id),
                        device=next(llm.parameters()).device, progress=show_progress)  # fmt: skip
    finally:
        delete_adapter(model, "default")
        llm.requires_grad_(False).eval()


def tfidf_baseline(
    data: Data, cs: list[float], *, max_features: int = 50_000
) -> tuple[dict[str, Any], dict[str, Any]]:
    """TF-IDF (word 1-2 grams, sublinear tf; fitted on the training texts) + logistic regression
    on the full texts; C chosen on validation by the selection metric. Returns (val, test)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    metric = selection_metric(len(data.label_names))
    idx = {
        s: getattr(data, f"{s}_mask").nonzero().view(-1).numpy() for s in ("train", "val", "test")
    }
    texts = np.asarray(data.texts, dtype=object)
    vec = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=max_features
    )
    x_train = vec.fit_transform(texts[idx["train"]])
    x = {s: vec.transform(texts[i]) for s, i in idx.items()}
    y = {s: data.y[torch.from_numpy(i)] for s, i in idx.items()}
    k = len(data.label_names)

    def scores(clf, split: str) -> dict[str, float]:
        proba = np.zeros((len(idx[split]), k))
        proba[:, clf.classes_] = clf.predict_proba(x[split])
        logits = torch.from_numpy(np.log(np.clip(proba, 1e-12, None)))
        return classification_metrics({"logits": logits, "target": y[split]})

    best: tuple[float, float, Any] | None = None
    grid = {}
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y["train"].numpy())
        val = scores(clf, "val")
        grid[c] = val[metric]
        if best is None or val[metric] > best[0]:
            best = (val[metric], c, clf)
    assert best is not None
    val = {"metric": metric, metric: best[0], "C": best[1], "grid": grid}
    return val, scores(best[2], "test")
