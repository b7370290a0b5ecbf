"""Trans-LoRA (Wang et al., NeurIPS 2024, arXiv 2405.17258, "Trans-LoRA: towards data-free
Transferable Parameter Efficient Finetuning"): move a task adapter from a source base model to
a target base model without the task data.

1. While the real data still exists, a **discriminator** (a LoRA on the source base model) learns
   to tell real task inputs from inputs the source model synthesises.
2. The **target** base model, prompted with a few real seed examples (the paper: 5), writes
   synthetic task inputs (the paper's trap: the target, not the source, generates them).
3. The discriminator **filters** them (kept when it scores them as real).
4. The source model with its LoRA **labels** the kept inputs (completions), and the target
   adapter (LoRA or a bottleneck adapter) is **distilled** on them with the LM loss.

Ablations as in the paper: ``filter="none"`` keeps every synthetic input; ``filter="random"``
replaces them by random token strings (the random-synthetic baseline). A generator that
yields nothing usable stops with an error, never an empty distillation set. The prompts, the
acceptance rule (score > 0) and completion (not logit) distillation are our design where the
paper is silent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from adapterlab.core import delete_adapter, list_adapters, set_active
from torch import nn

from .data.alpaca import Example
from .methods import build_config
from .models.llm import decoder_layers
from .models.top import TopOfModel
from .prompts import eval_prompt
from .task import Tokenised, _encode, eval_mode, generate
from .train import train_lm

__all__ = [
    "EmptySyntheticSet",
    "discriminator_items",
    "filter_inputs",
    "random_inputs",
    "score_real",
    "synthesise_inputs",
    "train_discriminator",
    "distill",
    "activate",
]

_DISC = "Is the following a real question from the task?\n{q}\nAnswer (yes or no):"


class EmptySyntheticSet(ValueError):
    """The generator (after filtering) produced no usable synthetic input."""


def seed_prompt(seeds: Sequence[Example]) -> str:
    """The generator prompt: numbered real questions, then the next number."""
    lines = [f"{i + 1}. {' '.join(e.instruction.split())}" for i, e in enumerate(seeds)]
    return "Here are some example questions:\n" + "\n".join(lines) + f"\n{len(seeds) + 1}."


def synthesise_inputs(
    lm: nn.Module,
    tok,
    seeds: Sequence[Example],
    n: int,
    *,
    rounds: int = 4,
    seed: int = 0,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
) -> list[str]:
    """Up to ``n`` distinct synthetic questions sampled from ``lm`` (the first line of each
    continuation; seeds are reshuffled every sample)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    known = {" ".join(e.instruction.split()) for e in seeds}
    out: list[str] = []
    for _ in range(rounds):
        prompts = []
        for _ in range(max(n - len(out), 1) + 4):
            order = list(seeds)
            rng.shuffle(order)
            prompts.append(seed_prompt(order))
        texts = _sample(lm, tok, prompts, max_new_tokens, temperature)
        for t in texts:
            q = t.strip().split("\n")[0].strip()
            if len(q) >= 8 and q not in known and q not in out:
                out.append(q)
            if len(out) >= n:
                return out
    return out


@torch.no_grad()
def _sample(
    lm: nn.Module, tok, prompts: list[str], max_new_tokens: int, temperature: float
) -> list[str]:
    device = next(lm.parameters()).device
    side, tok.padding_side = tok.padding_side, "left"
    try:
        out = []
        for i in range(0, len(prompts), 16):
            enc = tok(
                prompts[i : i + 16], return_tensors="pt", padding=True, add_special_tokens=False
            )
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with eval_mode(lm):
                seqs = lm.generate(
                    **enc, do_sample=True, temperature=temperature, top_k=50,
                    max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                )  # fmt: skip
            out.extend(
                tok.batch_decode(seqs[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            )
        return out
    finally:
        tok.padding_side = side


def random_inputs(tok, n: int, seed: int = 0, length: int = 16) -> list[str]:
    """The random-synthetic baseline: ``n`` strings of random vocabulary tokens."""
    rng = random.Random(seed)
    vocab = [i for i in range(len(tok)) if i not in set(tok.all_special_ids)]
    return [tok.decode([rng.choice(vocab) for _ in range(length)]).strip() or "?" for _ in range(n)]


def discriminator_items(tok, real: Sequence[str], fake: Sequence[str]) -> list[Tokenised]:
    """LM-format items: the question, then "yes" (real) or "no" (synthetic); loss on the answer."""
    items = []
    for text, label in [(q, "yes") for q in real] + [(q, "no") for q in fake]:
        p = _encode(tok, _DISC.format(q=" ".join(text.split())))
        a = _encode(tok, label)
        items.append(Tokenised(p + a, [False] * len(p) + [True] * len(a)))
    return items


def train_discriminator(
    top: TopOfModel,
    tok,
    real: Sequence[str],
    fake: Sequence[str],
    *,
    run_dir: str,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 8,
) -> None:
    """A LoRA (adapter ``disc``, left active) on the source model ``top`` trained to answer yes for real, no for synthetic."""
    if not real or not fake:
        raise ValueError("the discriminator needs real and synthetic examples")
    items = discriminator_items(tok, real, fake)
    rng = random.Random(seed)
    rng.shuffle(items)
    n_val = max(2, len(items) // 8)
    layers = range(top.start, len(decoder_layers(top.lm)))
    train_lm(
        top, build_config("lora@attn", layers, lora_r=8, lora_alpha=16.0), items[n_val:], items[:n_val],
        run_dir=run_dir, name="disc", steps=steps, batch_size=batch_size, lr=lr,
        seed=seed, run_config={"stage": "translora-discriminator"},
    )  # fmt: skip


@torch.no_grad()
def score_real(lm: nn.Module, tok, questions: Sequence[str]) -> list[float]:
    """``logit(yes) - logit(no)`` of the active discriminator for each question."""
    yes, no = _encode(tok, "yes")[0], _encode(tok, "no")[0]
    if yes == no:
        raise ValueError("the tokenizer gives 'yes' and 'no' the same first token")
    device = next(lm.parameters()).device
    out: list[float] = []
    side, tok.padding_side = tok.padding_side, "left"
    try:
        for i in range(0, len(questions), 16):
            prompts = [_DISC.format(q=" ".join(q.split())) for q in questions[i : i + 16]]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            with eval_mode(lm):
                logits = lm(
                    input_ids=enc["input_ids"].to(device),
                    attention_mask=enc["attention_mask"].to(device),
                ).logits[:, -1]
            out.extend((logits[:, yes] - logits[:, no]).float().tolist())
    finally:
        tok.padding_side = side
    return out


def filter_inputs(candidates: Sequence[str], scores: Sequence[float]) -> list[str]:
    """Keep the candidates the discriminator takes for real (score > 0)."""
    return [c for c, s in zip(candidates, scores) if s > 0]


@dataclass
class Distilled:
    """The transfer set and the trained target adapter."""

    inputs: list[str]
    labels: list[str]
    top: TopOfModel
    name: str
    best_val_loss: float | None


def distill(
    source_lm: nn.Module,
    source_tok,
    target: TopOfModel,
    target_tok,
    inputs: Sequence[str],
    *,
    method: str,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    run_dir: str,
    max_new_tokens: int = 32,
    bottleneck: int = 64,
    lora_r: int = 8,
    lora_alpha: float = 16.0,
) -> Distilled:
    """Label ``inputs`` with the source model (its active adapter) and train the target adapter
    (``method``: lora / series / parallel; it stays active on ``target``) on the labelled set."""
    from .task import tokenise_examples

    if not inputs:
        raise EmptySyntheticSet(
            "Trans-LoRA: no synthetic input left to distil on (the generator produced nothing "
            "usable or the discriminator rejected everything); raise n_synthetic / max_tries or "
            "use filter=none"
        )
    labels = generate(
        source_lm, source_tok, [eval_prompt(q) for q in inputs], max_new_tokens=max_new_tokens
    )
    examples = [Example(q, "", y.strip(), "") for q, y in zip(inputs, labels)]
    n_val = max(1, len(examples) // 8)
    layers = range(target.start, len(decoder_layers(target.lm)))
    name = f"target_{method.replace('@', '_')}"
    result, top = train_lm(
        target,
        build_config(method, layers, bottleneck=bottleneck, lora_r=lora_r, lora_alpha=lora_alpha),
        tokenise_examples(examples[n_val:], target_tok), tokenise_examples(examples[:n_val], target_tok),
        run_dir=run_dir, name=name, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        run_config={"stage": "translora-distill", "method": method, "n_inputs": len(inputs)},
    )  # fmt: skip
    return Distilled(list(inputs), [e.output for e in examples], top, name, result.best_metric)


def activate(top: TopOfModel, names: Sequence[str]) -> None:
    """Run exactly adapters ``names`` of ``top`` (none: the base model)."""
    if list_adapters(top):
        set_active(top, list(names))


def remove(top: TopOfModel, name: str) -> None:
    """Delete adapter ``name``."""
    delete_adapter(top, name)
