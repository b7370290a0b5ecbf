"""What the engine needs for causal-LM adaptation: tokenised examples with their cached bottom
hidden states, the language-model loss on response tokens, and generation-based evaluation with
LLM-Adapters' answer extraction."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .answers import extract_letter, extract_number, extract_option
from .data.alpaca import Example
from .models.top import TopOfModel, hidden_at
from .prompts import PromptStyle, eval_prompt, train_text

__all__ = [
    "CachedLMData",
    "Tokenised",
    "accuracy_metrics",
    "answer_checker",
    "collate_cached",
    "eval_mode",
    "generate",
    "generation_eval_step",
    "lm_loss",
    "tokenise_examples",
    "tokenise_texts",
]


@dataclass
class Tokenised:
    """One training sequence: token ids and which of them carry the loss."""

    ids: list[int]
    loss_mask: list[bool]


def _encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _bos(tok) -> list[int]:
    return (
        [tok.bos_token_id]
        if getattr(tok, "bos_token_id", None) is not None and getattr(tok, "add_bos_token", False)
        else []
    )


def tokenise_examples(
    examples: Sequence[Example],
    tok,
    *,
    style: PromptStyle = "alpaca",
    train_on_inputs: bool = False,
    cutoff: int = 256,
) -> list[Tokenised]:
    """Prompt + response + EOS, cut at ``cutoff`` tokens; the loss covers the response (and the
    prompt too with ``train_on_inputs``, the release's default)."""
    out = []
    for e in examples:
        prompt, response = train_text(e.instruction, e.input, e.output, style)
        p = _bos(tok) + _encode(tok, prompt)
        r = _encode(tok, response) + ([tok.eos_token_id] if tok.eos_token_id is not None else [])
        ids = (p + r)[:cutoff]
        mask = ([train_on_inputs] * len(p) + [True] * len(r))[:cutoff]
        if any(mask[1:]):  # a response cut off entirely leaves nothing to learn
            out.append(Tokenised(ids, mask))
    if examples and not out:
        raise ValueError(f"every example is longer than cutoff={cutoff} tokens before its response")
    return out


def tokenise_texts(texts: Sequence[str], tok, *, cutoff: int = 256) -> list[Tokenised]:
    """Plain text for language modelling (loss on every token but the first)."""
    out = []
    for text in texts:
        ids = (_bos(tok) + _encode(tok, text))[:cutoff]
        out.append(Tokenised(ids, [True] * len(ids)))
    return out


#: per model: ``(start, token ids) -> hidden states``, shared by every run on that model (the
#: layers below ``start`` never carry an adapter, so their outputs never change)
_HIDDEN: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, tuple[int, ...]], torch.Tensor]]
_HIDDEN = weakref.WeakKeyDictionary()


class CachedLMData(Dataset):
    """Sequences with the hidden states entering decoder layer ``start`` precomputed (the
    layers below are frozen, so these never change during training; they are computed once per
    model and sequence and reused by later runs)."""

    def __init__(
        self, items: Sequence[Tokenised], lm: nn.Module, start: int, *, batch_size: int = 16
    ) -> None:
        self.items = list(items)
        if not self.items:
            raise ValueError("no training sequences")
        device = next(lm.parameters()).device
        memo = _HIDDEN.setdefault(lm, {})
        todo = [c for c in self.items if (start, tuple(c.ids)) not in memo]
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            ids, mask = _pad([c.ids for c in chunk], 0)
            h = hidden_at(lm, start, ids.to(device), mask.to(device)).float().cpu()
            for j, c in enumerate(chunk):
                memo[(start, tuple(c.ids))] = h[j, : len(c.ids)].clone()
        self.hidden = [memo[(start, tuple(c.ids))] for c in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[int], list[bool]]:
        item = self.items[index]
        return self.hidden[index], item.ids, item.loss_mask


def _pad(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def collate_cached(
    items: list[tuple[torch.Tensor, list[int], list[bool]]],
) -> dict[str, torch.Tensor]:
    """Right-padded batch: cached hidden states, attention mask, ids and loss mask."""
    ids, attn = _pad([i for _, i, _ in items], 0)
    hidden = torch.zeros(len(items), ids.shape[1], items[0][0].shape[-1])
    loss = torch.zeros_like(ids, dtype=torch.bool)
    for j, (h, i, m) in enumerate(items):
        hidden[j, : len(i)] = h
        loss[j, : len(m)] = torch.tensor(m, dtype=torch.bool)
    return {"hidden": hidden, "attention_mask": attn, "input_ids": ids, "loss_mask": loss}


def lm_loss(model: TopOfModel, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Next-token cross-entropy at the positions whose *next* token carries the loss; the LM head
    runs only there."""
    param = next(p for p in model.parameters())
    hidden = batch["hidden"].to(param.dtype)
    final = model(hidden, batch["attention_mask"])
    target_mask = batch["loss_mask"][:, 1:] & batch["attention_mask"][:, 1:].bool()
    logits = model.logits_at(final[:, :-1], target_mask)
    targets = batch["input_ids"][:, 1:][target_mask]
    if targets.numel() == 0:  # no labelled token in this batch
        return {"loss": final.sum() * 0.0}
    loss = F.cross_entropy(logits.float(), targets)
    return {"loss": loss}


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode (no dropout, e.g. LoRA's) inside the block, restored after."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


@torch.no_grad()
def generate(
    lm: nn.Module,
    tok,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    num_beams: int = 1,
    batch_size: int = 16,
) -> list[str]:
    """Greedy (or beam) continuations of ``prompts`` (left-padded batches); only the new text."""
    device = next(lm.parameters()).device
    out: list[str] = []
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tok(
                list(prompts[i : i + batch_size]),
                return_tensors="pt",
                padding=True,
                add_special_tokens=bool(_bos(tok)),
            )
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with eval_mode(lm):
                seqs = lm.generate(
                    **enc, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                )  # fmt: skip
            new = seqs[:, enc["input_ids"].shape[1] :]
            out.extend(tok.batch_decode(new, skip_special_tokens=True))
    finally:
        tok.padding_side = side
    return out


def answer_checker(kind: str) -> Callable[[str, str], bool]:
    """``(generated text, label) -> correct`` for ``kind``: ``number`` (math), ``letter`` (AQuA),
    ``option`` (commonsense option words, first match) or ``contains`` (the label appears)."""
    if kind == "number":
        return lambda text, label: (
            (p := extract_number(text)) is not None and abs(float(label) - p) <= 0.001
        )
    if kind == "letter":
        return lambda text, label: extract_letter(text) == label
    if kind == "option":

        def check(text: str, label: str) -> bool:
            opts = tuple(f"answer{i}" for i in range(1, 6))
            return extract_option(text, opts) == label

        return check
    if kind == "contains":
        return lambda text, label: label.strip().lower() in text.lower()
    raise ValueError(f"unknown answer kind {kind!r}")


def generation_eval_step(
    tok, kind: str, *, style: PromptStyle = "alpaca", max_new_tokens: int = 32, num_beams: int = 1
) -> Callable[[nn.Module, list[Example]], dict[str, torch.Tensor]]:
    """An ``eval_step`` for :func:`adapterlab.core.engine.evaluate`: generate from the prompt
    and score the extracted answer; batches are lists of :class:`Example`."""
    check = answer_checker(kind)

    def step(model: nn.Module, batch: list[Example]) -> dict[str, torch.Tensor]:
        prompts = [eval_prompt(e.instruction, e.input, style) for e in batch]
        texts = generate(
            model,
            tok,
            prompts,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            batch_size=len(batch),
        )
        correct = [float(check(t, e.answer)) for t, e in zip(texts, batch)]
        return {"correct": torch.tensor(correct)}

    return step


def accuracy_metrics(outputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy (%) from per-sample ``correct``."""
    return {"accuracy": 100.0 * float(outputs["correct"].float().mean())}
