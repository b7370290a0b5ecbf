"""Small synthetic TAG in the generic layout, for unit tests: class-specific words in the texts
and homophilous edges (most edges join nodes of the same class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .generic import write_generic

__all__ = ["synthesize_tag"]

_TOPICS = [
    ["cat", "dog", "horse", "bird", "fish", "whale"],
    ["hammer", "engine", "wheel", "knife", "lamp", "chair"],
    ["apple", "bread", "cheese", "soup", "rice", "honey"],
    ["river", "mountain", "valley", "island", "desert", "coast"],
    ["joy", "anger", "fear", "grief", "pride", "shame"],
    ["oak", "rose", "fern", "moss", "tulip", "cactus"],
]
_FILLER = ["a", "the", "kind", "of", "thing", "that", "is", "with", "and", "some", "very", "small"]


def synthesize_tag(
    root: str | Path,
    *,
    num_nodes: int = 60,
    num_classes: int = 3,
    avg_degree: float = 4.0,
    homophily: float = 0.9,
    seed: int = 0,
    with_split: bool = True,
) -> Path:
    """Write a synthetic TAG (``nodes.jsonl``, ``edges.csv``, ``split.json``) into ``root``."""
    if not 1 <= num_classes <= len(_TOPICS):
        raise ValueError(f"num_classes must be in 1..{len(_TOPICS)}")
    rng = np.random.default_rng(seed)
    labels = np.arange(num_nodes) % num_classes
    rng.shuffle(labels)
    texts = []
    for c in labels:
        words = list(rng.choice(_TOPICS[c], size=2)) + list(rng.choice(_FILLER, size=4))
        rng.shuffle(words)
        texts.append(" ".join(words))
    edges = []
    for _ in range(int(num_nodes * avg_degree / 2)):
        i = int(rng.integers(num_nodes))
        pool = (
            np.flatnonzero(labels == labels[i])
            if rng.random() < homophily
            else np.arange(num_nodes)
        )
        edges.append((i, int(rng.choice(pool))))
    perm = rng.permutation(num_nodes)
    n_tr, n_va = int(0.6 * num_nodes), int(0.2 * num_nodes)
    split = {
        "train": perm[:n_tr].tolist(),
        "val": perm[n_tr : n_tr + n_va].tolist(),
        "test": perm[n_tr + n_va :].tolist(),
    }
    names = [f"topic{c}" for c in labels]
    return write_generic(root, texts, names, np.asarray(edges), split if with_split else None)
