"""What the engine needs for GraphAdapter: batches, the residual-learning loss, eval steps and
metrics (accuracy, macro-F1, one-vs-rest ROC-AUC for any number of classes)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn

from .cache import LLMCache
from .sampling import NeighborSampler

__all__ = [
    "ClassificationBatches",
    "FullBatchSteps",
    "NodeIds",
    "PretrainBatches",
    "classification_eval_step",
    "classification_loss",
    "classification_metrics",
    "pretrain_eval_step",
    "pretrain_loss",
    "pretrain_metrics",
    "mixed_log_probs",
    "residual_loss",
    "smoothed_kl",
    "split_tokens",
    "token_weights",
]


class NodeIds(torch.utils.data.Dataset):
    """A map-style dataset of node ids (the collate function builds the graph batch)."""

    def __init__(self, ids: torch.Tensor | list[int]) -> None:
        self.ids = [int(i) for i in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> int:
        return self.ids[index]


class FullBatchSteps(torch.utils.data.Dataset):
    """``steps`` items, each the whole list of training node ids: full-batch training (the
    original's) as one engine epoch of ``steps`` batches of one item. With one item per node and
    a full batch, every step would end an epoch, and the engine checkpoints at every epoch end."""

    def __init__(self, ids: torch.Tensor | list[int], steps: int) -> None:
        self.ids, self.steps = [int(i) for i in ids], int(steps)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> list[int]:
        if not 0 <= index < self.steps:
            raise IndexError(index)
        return self.ids


def _flat_ids(items: list) -> list[int]:
    """Node ids of a batch whose items are ids (``NodeIds``) or id lists (``FullBatchSteps``)."""
    out: list[int] = []
    for item in items:
        out.extend(item if isinstance(item, list | tuple) else [item])
    return [int(i) for i in out]


def token_weights(labels: np.ndarray) -> np.ndarray:
    """1 / (count of each token id within the node), normalised to sum to 1 over the node."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.float32)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return (w / w.sum()).astype(np.float32)


def split_tokens(n_tokens: int, held_out: float = 0.1) -> int:
    """Index where a node's held-out tokens start (the last ``held_out`` share, as the original:
    ``mid = int(0.9 T)``, at least one held out when T >= 2; a 1-token node trains on it)."""
    if n_tokens < 2:
        return n_tokens
    mid = int(n_tokens * (1.0 - held_out))
    return n_tokens - 1 if mid == n_tokens else mid


def mixed_log_probs(adapted_logits: torch.Tensor, original_logits: torch.Tensor) -> torch.Tensor:
    """log p with p = (softmax(original).detach() + softmax(adapted)) / 2, computed stably as
    ``logaddexp(log_softmax(adapted), log_softmax(original)) - log 2``."""
    log_a = F.log_softmax(adapted_logits.float(), -1)
    log_o = F.log_softmax(original_logits.detach().float(), -1)
    return torch.logaddexp(log_a, log_o) - math.log(2.0)


def smoothed_kl(log_p: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-token KL(q || p) from the label-smoothed target q (1 - eps on the label, eps / (V - 1)
    elsewhere), in closed form: sum_v q log q - (eps / (V - 1)) sum_v log p_v
    - (1 - eps - eps / (V - 1)) log p_label. Equal to ``kl_div(log_p, q).sum(-1)`` without
    building q (a (T, V) tensor)."""
    vocab = log_p.size(-1)
    other = smoothing / (vocab - 1)
    keep = 1.0 - smoothing
    entropy_term = (keep * math.log(keep) if keep > 0 else 0.0) + (
        smoothing * math.log(other) if smoothing > 0 else 0.0
    )
    at_label = log_p.gather(1, labels.view(-1, 1)).squeeze(1)
    return entropy_term - other * log_p.sum(-1) - (1.0 - smoothing - other) * at_label


def residual_loss(
    adapted_logits: torch.Tensor,
    original_logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    num_nodes: int,
    smoothing: float = 0.1,
    *,
    return_log_probs: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """GraphAdapter's residual-learning loss (Eq. 11-14; the original's ``LabelSmoothing``).

    p = (softmax(original).detach() + softmax(adapted)) / 2; per token the KL divergence from the
    label-smoothed target (1 - eps on the label, eps / (V - 1) elsewhere) to p, weighted by the
    per-node-normalised token weights, summed and divided by the number of nodes in the batch.
    The KL is taken in closed form (:func:`smoothed_kl`), which keeps the number of (T, V)
    temporaries, the cost of this loss, low. ``return_log_probs`` also returns log p.
    """
    log_p = mixed_log_probs(adapted_logits, original_logits)
    loss = (smoothed_kl(log_p, labels, smoothing) * weights).sum() / num_nodes
    return (loss, log_p) if return_log_probs else loss


class _GraphBatches:
    def __init__(self, cache: LLMCache, edge_index: torch.Tensor, fanouts: list[int | None]):
        self.cache = cache
        self.sampler = NeighborSampler(edge_index, cache.num_nodes, fanouts)

    def subgraph(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        nodes, edges = self.sampler.sample(torch.tensor(ids, dtype=torch.long))
        x = torch.from_numpy(np.ascontiguousarray(self.cache.node_features[nodes.numpy()])).float()
        return nodes, edges, x


class PretrainBatches(_GraphBatches):
    """Collate for pre-training: sampled subgraph + the batch nodes' (train or held-out) tokens."""

    def __init__(
        self,
        cache: LLMCache,
        edge_index: torch.Tensor,
        fanouts: list[int | None],
        part: str = "train",
        held_out: float = 0.1,
    ) -> None:
        super().__init__(cache, edge_index, fanouts)
        if part not in ("train", "eval"):
            raise ValueError("part must be 'train' or 'eval'")
        self.part, self.held_out = part, held_out

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        ids = _flat_ids(items)
        nodes, edges, x = self.subgraph(ids)
        states, labels, weights, rows = [], [], [], []
        for i, node in enumerate(ids):
            s, lab = self.cache.tokens_of(node)
            mid = split_tokens(len(lab), self.held_out)
            sl = slice(0, mid) if self.part == "train" else slice(mid, len(lab))
            s, lab = s[sl], lab[sl]
            states.append(np.asarray(s, dtype=np.float32))
            labels.append(np.asarray(lab))
            weights.append(token_weights(np.asarray(lab)))
            rows.append(np.full(len(lab), i))
        return {
            "node_ids": torch.tensor(ids, dtype=torch.long),
            "x": x,
            "edge_index": edges,
            "rows": torch.from_numpy(np.concatenate(rows)).long(),
            "states": torch.from_numpy(np.concatenate(states)),
            "labels": torch.from_numpy(np.concatenate(labels)).long(),
            "weights": torch.from_numpy(np.concatenate(weights)),
        }


class ClassificationBatches(_GraphBatches):
    """Collate for node classification: sampled subgraph, prompt embeddings, targets."""

    def __init__(
        self,
        cache: LLMCache,
        edge_index: torch.Tensor,
        labels: torch.Tensor,
        fanouts: list[int | None],
    ) -> None:
        super().__init__(cache, edge_index, fanouts)
        self.labels = labels
        # without sampling (all fanouts None) a batch of the same nodes is always the same
        self.deterministic = all(f is None for f in fanouts)
        self._memo: dict[tuple[int, ...], dict[str, torch.Tensor]] = {}

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        ids = _flat_ids(items)
        key = tuple(ids)
        if key in self._memo:  # the full-neighbourhood batch of these nodes never changes
            return dict(self._memo[key])
        nodes, edges, x = self.subgraph(ids)
        prompts = np.asarray(self.cache.prompts[np.asarray(ids)], dtype=np.float32)
        batch = {
            "node_ids": torch.tensor(ids, dtype=torch.long),
            "x": x,
            "edge_index": edges,
            "rows": torch.arange(len(ids)),
            "prompts": torch.from_numpy(prompts),
            "target": self.labels[torch.tensor(ids)],
        }
        if self.deterministic and len(self._memo) < 8:
            self._memo[key] = batch
        return dict(batch)


def _forward_pretrain(model: nn.Module, batch: dict, smoothing: float) -> dict[str, torch.Tensor]:
    adapted, original = model(batch["x"], batch["edge_index"], batch["rows"], batch["states"])
    n = len(batch["node_ids"])
    loss, log_p = residual_loss(
        adapted, original, batch["labels"], batch["weights"], n, smoothing, return_log_probs=True
    )
    return {"loss": loss, "log_p": log_p, "original": original}


def pretrain_loss(model: nn.Module, batch: dict, smoothing: float = 0.1) -> dict[str, torch.Tensor]:
    """Training loss of the pre-training stage (the residual-learning loss)."""
    out = _forward_pretrain(model, batch, smoothing)
    return {"loss": out["loss"]}


def pretrain_eval_step(
    model: nn.Module, batch: dict, smoothing: float = 0.1
) -> dict[str, torch.Tensor]:
    """Held-out loss plus per-token top-1 hits of the mixed prediction and of the LLM alone."""
    out = _forward_pretrain(model, batch, smoothing)
    return {
        "loss": out["loss"],
        "hit_mixed": (out["log_p"].argmax(-1) == batch["labels"]).float(),
        "hit_llm": (out["original"].argmax(-1) == batch["labels"]).float(),
    }


def pretrain_metrics(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Next-token accuracy of GraphAdapter's mixed prediction vs the LLM alone."""
    if "hit_mixed" not in outputs or not len(outputs["hit_mixed"]):
        return {}
    return {
        "token_acc": float(outputs["hit_mixed"].mean()),
        "token_acc_llm": float(outputs["hit_llm"].mean()),
    }


def classification_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """Cross-entropy (the original's NLL on log-softmax, without its 2-class weight)."""
    logits = model(batch["x"], batch["edge_index"], batch["rows"], batch["prompts"])
    return F.cross_entropy(logits, batch["target"])


def classification_eval_step(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """Logits and targets of the batch nodes."""
    logits = model(batch["x"], batch["edge_index"], batch["rows"], batch["prompts"])
    return {"logits": logits, "target": batch["target"]}


def classification_metrics(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy, macro-F1 and one-vs-rest macro ROC-AUC (any number of classes; ROC-AUC is
    over the classes present in the split, NaN when fewer than two are)."""
    if "logits" not in outputs or not len(outputs["logits"]):
        return {}
    logits, target = outputs["logits"].float(), outputs["target"].long().numpy()
    pred = logits.argmax(-1).numpy()
    probs = F.softmax(logits, -1).numpy().astype(np.float64)
    present = np.unique(target)
    if len(present) < 2:
        auc = float("nan")
    elif logits.shape[1] == 2:
        auc = float(roc_auc_score(target, probs[:, 1]))
    else:
        sub = probs[:, present]
        sub = sub / sub.sum(1, keepdims=True)
        auc = float(
            roc_auc_score(target, sub, multi_class="ovr", average="macro", labels=present)
            if len(present) > 2
            else roc_auc_score(target == present[1], sub[:, 1])
        )
    return {
        "accuracy": float((pred == target).mean()),
        "macro_f1": float(f1_score(target, pred, average="macro", labels=present, zero_division=0)),
        "roc_auc": auc,
    }
