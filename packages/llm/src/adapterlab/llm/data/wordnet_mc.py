"""Embedded commonsense task: WordNet multiple choice in the Commonsense170K format.

"Which of these is a kind of <category>?" with four noun options, one of them a hyponym of the
category in WordNet 3.0 (Debian's ``wordnet-base``), the others drawn from other top-level
branches. The instruction, the option words ``answer1..answer4``, the "Answer format" line and
the response "the correct answer is answerK" follow the ARC / OpenBookQA records of
Commonsense170K. Categories are split between train and test, so no test category is seen in
training.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from adapterlab.core.engine import DataFileError, iter_lines

from .alpaca import Example
from .debian import fetch_debian_package

__all__ = ["make_wordnet_mc", "parse_hyponyms"]


def parse_hyponyms(data_noun: str | Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """``({category lemma: [hyponym lemmas]}, {lemma: lexicographer file number})`` from
    WordNet's ``data.noun`` (single-word lemmas only)."""
    synsets: dict[str, tuple[int, list[str], list[str]]] = {}
    for line_no, line in iter_lines(data_noun):
        if not line or line.startswith("  "):
            continue
        parts = line.split(" | ")[0].split()
        try:
            offset, lex, count = parts[0], int(parts[1]), int(parts[3], 16)
            words = [parts[4 + 2 * i].lower() for i in range(count)]
            k = 4 + 2 * count
            n_ptr = int(parts[k])
            hyper = [
                parts[k + 1 + 4 * j + 1]
                for j in range(n_ptr)
                if parts[k + 1 + 4 * j] in ("@", "@i")
            ]
        except (IndexError, ValueError):
            raise DataFileError(data_noun, "not a WordNet data.noun record", line=line_no) from None
        synsets[offset] = (lex, words, hyper)
    children: dict[str, list[str]] = defaultdict(list)
    lexfile: dict[str, int] = {}
    for lex, words, hyper in synsets.values():
        plain = [w for w in words if w.isalpha()]
        if not plain:
            continue
        lexfile.setdefault(plain[0], lex)
        for h in hyper:
            if h in synsets:
                cats = [w for w in synsets[h][1] if w.isalpha()]
                if cats:
                    children[cats[0]].append(plain[0])
    return dict(children), lexfile


def _record(category: str, options: list[str], correct: int) -> Example:
    listing = " ".join(f"Answer{i + 1}: {w}" for i, w in enumerate(options))
    fmt = "/".join(f"answer{i + 1}" for i in range(len(options)))
    instruction = (
        f"Please choose the correct answer to the question: Which of these is a kind of "
        f"{category}?\n\n{listing}\n\nAnswer format: {fmt}"
    )
    return Example(
        instruction,
        "",
        f"the correct answer is answer{correct + 1}",
        f"answer{correct + 1}",
        "embedded:wordnet",
    )


def make_wordnet_mc(
    n_train: int, n_test: int, seed: int = 0, data_noun: str | Path | None = None
) -> tuple[list[Example], list[Example]]:
    """``(train, test)`` questions; categories (with >= 3 one-word hyponyms) are split 3:1."""
    path = (
        Path(data_noun)
        if data_noun
        else fetch_debian_package("wordnet-base", "usr/share/wordnet/data.noun")
    )
    children, lexfile = parse_hyponyms(path)
    cats = sorted(c for c, kids in children.items() if len(set(kids)) >= 3)
    rng = random.Random(seed)
    rng.shuffle(cats)
    cut = (3 * len(cats)) // 4
    vocab = sorted(lexfile)

    def build(pool: list[str], n: int) -> list[Example]:
        out = []
        for i in range(n):
            cat = pool[i % len(pool)]
            kids = set(children[cat])
            answer = rng.choice(sorted(kids))
            distract: list[str] = []
            while len(distract) < 3:
                w = rng.choice(vocab)
                if (
                    w not in kids
                    and w != cat
                    and lexfile[w] != lexfile.get(answer)
                    and w not in distract
                ):
                    distract.append(w)
            k = rng.randrange(4)
            options = distract[:k] + [answer] + distract[k:]
            out.append(_record(cat, options, k))
        return out

    return build(cats[:cut], n_train), build(cats[cut:], n_test)
