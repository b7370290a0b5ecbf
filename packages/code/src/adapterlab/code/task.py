"""Everything the engine needs per task: datasets, collate, loss_fn, eval_step, metric_fn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from .bleu import corpus_bleu, summarization_bleu
from .data.align import IGNORE_INDEX
from .data.codexglue import Pair
from .data.token_types import TOKEN_TYPES

__all__ = [
    "PairDataset",
    "class_weights",
    "one_line",
    "pair_collate",
    "prediction_files",
    "seq2seq_eval_step",
    "seq2seq_loss",
    "seq2seq_metric_fn",
    "ttc_collate",
    "ttc_eval_step",
    "ttc_loss_fn",
    "ttc_metrics",
]


# ---------------------------------------------------------------------------- TTC
def ttc_collate(pad_id: int) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
    """Pad ``input_ids`` (with ``pad_id``) and ``labels`` (with -100) to the batch's longest."""

    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), length), pad_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), length), dtype=torch.long)
        for i, it in enumerate(items):
            n = len(it["input_ids"])
            ids[i, :n] = torch.as_tensor(it["input_ids"])
            labels[i, :n] = torch.as_tensor(it["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return collate


def class_weights(counts: np.ndarray, scheme: str) -> torch.Tensor | None:
    """Cross-entropy weights per type: ``none`` -> None; ``inverse_sqrt`` -> 1/sqrt(frequency),
    normalised to mean 1 over the types that occur (absent types get 0)."""
    if scheme == "none":
        return None
    if scheme != "inverse_sqrt":
        raise ValueError(f"class_weighting must be 'none' or 'inverse_sqrt', got {scheme!r}")
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = 1.0 / np.sqrt(counts[present] / counts.sum())
    weights[present] /= weights[present].mean()
    return torch.tensor(weights, dtype=torch.float32)


def ttc_loss_fn(weights: torch.Tensor | None = None) -> Callable[[Any, dict], torch.Tensor]:
    """Token-level cross-entropy over types (ignored positions: -100)."""

    def loss_fn(model: Any, batch: dict) -> torch.Tensor:
        logits = model(batch["input_ids"], batch["attention_mask"])
        w = weights.to(logits.device) if weights is not None else None
        return F.cross_entropy(
            logits.flatten(0, 1), batch["labels"].flatten(), weight=w, ignore_index=IGNORE_INDEX
        )

    return loss_fn


def ttc_eval_step(model: Any, batch: dict) -> dict[str, torch.Tensor]:
    """Predicted and true type of every labelled token (flattened over the batch)."""
    logits = model(batch["input_ids"], batch["attention_mask"])
    labels = batch["labels"]
    keep = labels != IGNORE_INDEX
    return {"pred": logits.argmax(-1)[keep], "target": labels[keep]}


def ttc_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro F1 over the types that occur, and F1 per type."""
    pred, target = np.asarray(pred), np.asarray(target)
    out: dict[str, Any] = {"accuracy": float((pred == target).mean()) if len(target) else 0.0}
    per_type: dict[str, float] = {}
    for k, name in enumerate(TOKEN_TYPES):
        support = int((target == k).sum())
        if support == 0:
            continue
        tp = int(((pred == k) & (target == k)).sum())
        predicted = int((pred == k).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        per_type[name] = 2 * precision * recall / (precision + recall) if tp else 0.0
    out["macro_f1"] = float(np.mean(list(per_type.values()))) if per_type else 0.0
    out["per_type_f1"] = per_type
    return out


def ttc_metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Engine metric_fn: accuracy, macro F1 and ``f1_<type>`` per type."""
    m = ttc_metrics(outputs["pred"].numpy(), outputs["target"].numpy())
    flat = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    flat.update({f"f1_{k}": v for k, v in m["per_type_f1"].items()})
    return flat


# ---------------------------------------------------------------------------- seq2seq
class PairDataset(Dataset):
    """Tokenised source/target pairs (CodeXGLUE's truncation: ``max - 2`` tokens + specials)."""

    def __init__(
        self, pairs: Sequence[Pair], tokenizer: Any, max_source: int, max_target: int
    ) -> None:
        self.pairs = list(pairs)
        self.max_source, self.max_target = max_source, max_target
        self.sources = [self._encode(tokenizer, p.source, max_source) for p in self.pairs]
        self.targets = [self._encode(tokenizer, p.target, max_target) for p in self.pairs]

    @staticmethod
    def _encode(tokenizer: Any, text: str, max_length: int) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 2]
        return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"source": self.sources[index], "target": self.targets[index], "index": index}

    def describe(self, index: int) -> str:
        """For the engine's bad-sample messages."""
        return f"example {index}: {self.pairs[index].source[:60]!r}"


def pair_collate(pad_id: int) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
    """Pad sources and targets; keep each example's index for the metric."""

    def pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.as_tensor(r)
            mask[i, : len(r)] = 1
        return ids, mask

    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        source_ids, source_mask = pad([it["source"] for it in items])
        target_ids, target_mask = pad([it["target"] for it in items])
        return {
            "source_ids": source_ids,
            "source_mask": source_mask,
            "target_ids": target_ids,
            "target_mask": target_mask,
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        }

    return collate


def seq2seq_loss(model: Any, batch: dict) -> torch.Tensor:
    """Teacher-forced cross-entropy of the target."""
    return model(
        batch["source_ids"], batch["source_mask"], batch["target_ids"], batch["target_mask"]
    )


def seq2seq_eval_step(
    max_length: int, beam_size: int = 1, min_length: int = 0
) -> Callable[[Any, dict], dict]:
    """Decode every source; return the token ids and the example index."""

    def step(model: Any, batch: dict) -> dict[str, torch.Tensor]:
        loss = seq2seq_loss(model, batch)
        ids = model.generate(
            batch["source_ids"], batch["source_mask"], max_length, beam_size, min_length
        )
        return {"loss": loss, "pred_ids": ids, "index": batch["index"]}

    return step


def decode_predictions(tokenizer: Any, pred_ids: torch.Tensor) -> list[str]:
    """Token ids -> text, as CodeXGLUE (special tokens dropped, spaces cleaned)."""
    return [
        tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
        for row in pred_ids.tolist()
    ]


def one_line(text: str, *, tabs: bool = False) -> str:
    """``text`` as one line of a CodeXGLUE prediction/gold file: line breaks (and, for the
    ``idx<TAB>text`` files, tabs) become spaces, so the file stays aligned; then stripped, as
    the evaluators strip every line they read."""
    for ch in "\r\n" + ("\t" if tabs else ""):
        text = text.replace(ch, " ")
    return text.strip()


def seq2seq_metric_fn(
    task: str, tokenizer: Any, references: Sequence[str], sink: list | None = None
) -> Callable[[dict[str, torch.Tensor]], dict[str, float]]:
    """CodeXGLUE's evaluators on the lines :func:`prediction_files` writes. Summarization:
    smoothed BLEU-4 (code-to-text ``bleu.py``). Refinement: corpus BLEU-4 and exact match
    (``evaluator.py``: stripped prediction line == stripped reference line), against the
    untouched references (never truncated to the target length). ``sink`` receives the
    ``(index, prediction)`` pairs of the last call."""

    def metric_fn(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        tabs = task == "summarization"
        preds = [one_line(p, tabs=tabs) for p in decode_predictions(tokenizer, outputs["pred_ids"])]
        refs = [one_line(references[int(i)], tabs=tabs) for i in outputs["index"]]
        if sink is not None:
            sink[:] = list(zip(outputs["index"].tolist(), preds))
        if task == "summarization":
            return {"bleu": summarization_bleu(refs, preds)}
        exact = float(np.mean([r == p for r, p in zip(refs, preds)])) if refs else 0.0
        return {"bleu": corpus_bleu(refs, preds), "exact_match": 100.0 * exact}

    return metric_fn


def prediction_files(
    task: str, predictions: Sequence[tuple[int, str]], references: Sequence[str]
) -> dict[str, str]:
    """The text of CodeXGLUE's prediction and gold files for ``(index, prediction)`` pairs:
    summarization ``idx<TAB>text`` lines (what code-to-text's ``bleu.py`` reads, as its
    ``test_0.output`` / ``test_0.gold``); refinement one line per example, aligned (what the
    refinement ``evaluator.py`` reads). Keys: ``predictions``, ``gold``."""
    ordered = sorted(predictions)
    if task == "summarization":
        preds = "".join(f"{i}\t{one_line(p, tabs=True)}\n" for i, p in ordered)
        gold = "".join(f"{i}\t{one_line(references[i], tabs=True)}\n" for i, _ in ordered)
    else:
        preds = "".join(f"{one_line(p)}\n" for _, p in ordered)
        gold = "".join(f"{one_line(references[i])}\n" for i, _ in ordered)
    return {"predictions": preds, "gold": gold}
