"""Splits of the WordNet text (by synset, 80/10/10 as the paper's GlotCC split) and the datasets
the engine trains on: masked-LM sentences and lexicographer-file classification."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import torch

from .wordnet import Synset, gloss_texts, kg_sentences

__all__ = ["Corpora", "MLMDataset", "TopicDataset", "build_corpora", "mask_tokens"]


@dataclass
class Corpora:
    """Per split (``train``/``val``/``test``): KG sentences, free-text sentences and topic
    examples (``(text, label)``), plus the label names."""

    kg: dict[str, list[str]]
    text: dict[str, list[str]]
    topics: dict[str, list[tuple[str, int]]]
    labels: list[str]


def build_corpora(
    synsets: dict[int, Synset],
    *,
    seed: int = 42,
    n_mlm: dict[str, int],
    n_labels: int,
    n_topics: dict[str, int],
) -> Corpora:
    """Split the synsets 80/10/10 (seeded), then sample per split ``n_mlm[split]`` KG sentences
    and as many free-text sentences, and ``n_topics[split]`` topic examples (``"lemmas:
    definition"`` -> lexicographer file, the ``n_labels`` most frequent files, balanced)."""
    rng = random.Random(seed)
    offsets = sorted(synsets)
    rng.shuffle(offsets)
    cut1, cut2 = int(0.8 * len(offsets)), int(0.9 * len(offsets))
    parts = {"train": offsets[:cut1], "val": offsets[cut1:cut2], "test": offsets[cut2:]}
    counts = Counter(synsets[o].lexname for o in offsets)
    labels = sorted(name for name, _ in counts.most_common(n_labels))
    kg, text, topics = {}, {}, {}
    for split, members in parts.items():
        kg_all = [s for o in members for s in kg_sentences(synsets, o)]
        text_all = [t for o in members for t in gloss_texts(synsets[o])]
        rng.shuffle(kg_all)
        rng.shuffle(text_all)
        kg[split] = kg_all[: n_mlm[split]]
        text[split] = text_all[: n_mlm[split]]
        per_label = max(1, n_topics[split] // len(labels))
        chosen: list[tuple[str, int]] = []
        for k, name in enumerate(labels):
            pool = [o for o in members if synsets[o].lexname == name and synsets[o].gloss]
            for o in pool[:per_label]:
                s = synsets[o]
                definition = s.gloss.split(";")[0].strip()
                chosen.append((f"{', '.join(s.lemmas)}: {definition}", k))
        rng.shuffle(chosen)
        topics[split] = chosen
    return Corpora(kg, text, topics, labels)


def mask_tokens(
    ids: torch.Tensor,
    special: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: ``prob`` of the non-special tokens become targets; of those 80 % -> [MASK],
    10 % -> a random token, 10 % unchanged. Returns ``(inputs, labels)`` (labels -100 elsewhere);
    at least one target per row."""
    probs = torch.rand(ids.shape, generator=generator)
    chosen = (probs < prob) & ~special
    first = (~special).float().argmax(dim=-1)
    none = ~chosen.any(dim=-1)
    chosen[none, first[none]] = True  # every row scores at least one token
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, labels


class MLMDataset(torch.utils.data.Dataset):
    """Tokenised sentences; training items are masked afresh each time (global RNG, seeded by
    the engine), evaluation items once with a fixed generator (the same for every method)."""

    def __init__(
        self, sentences: list[str], tokenizer, max_len: int, fixed_seed: int | None = None
    ):
        enc = tokenizer(
            sentences,
            truncation=True,
            max_length=max_len,
            padding="max_length",
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        self.ids = enc["input_ids"]
        self.attention = enc["attention_mask"]
        self.special = enc["special_tokens_mask"].bool() | (self.attention == 0)
        self.mask_id = tokenizer.mask_token_id
        self.vocab = len(tokenizer)
        self.fixed = None
        if fixed_seed is not None:
            g = torch.Generator().manual_seed(fixed_seed)
            self.fixed = mask_tokens(self.ids, self.special, self.mask_id, self.vocab, g)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.fixed is not None:
            inputs, labels = self.fixed[0][i], self.fixed[1][i]
        else:
            inputs, labels = mask_tokens(
                self.ids[i : i + 1], self.special[i : i + 1], self.mask_id, self.vocab
            )
            inputs, labels = inputs[0], labels[0]
        return {"input_ids": inputs, "attention_mask": self.attention[i], "labels": labels}


class TopicDataset(torch.utils.data.Dataset):
    """``(text, label)`` pairs, tokenised."""

    def __init__(self, examples: list[tuple[str, int]], tokenizer, max_len: int):
        enc = tokenizer(
            [t for t, _ in examples],
            truncation=True,
            max_length=max_len,
            padding="max_length",
            return_tensors="pt",
        )
        self.ids, self.attention = enc["input_ids"], enc["attention_mask"]
        self.target = torch.tensor([y for _, y in examples], dtype=torch.long)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": self.attention[i],
            "target": self.target[i],
        }
