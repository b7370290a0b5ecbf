"""Shared fixtures: a small WordNet ``data.noun`` in the real wndb(5WN) format and a tokenizer
whose vocabulary covers it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ANIMALS = ["dog", "cat", "horse", "wolf", "fox", "bear", "lion", "tiger", "mouse", "rabbit"]
TOOLS = ["hammer", "saw", "drill", "wrench", "chisel", "shovel", "rake", "axe", "file", "plane"]
FOODS = ["bread", "cheese", "apple", "pear", "rice", "soup", "cake", "honey", "salt", "butter"]
GROUPS = {5: ("animal", ANIMALS), 6: ("tool", TOOLS), 13: ("food", FOODS)}


def _line(
    offset: int, lexnum: int, words: list[str], pointers: list[tuple[str, int]], gloss: str
) -> str:
    ws = " ".join(f"{w} 0" for w in words)
    ps = " ".join(f"{sym} {target:08d} n 0000" for sym, target in pointers)
    return f"{offset:08d} {lexnum:02d} n {len(words):02x} {ws} {len(pointers):03d} {ps} | {gloss}  "


def make_data_noun(path) -> None:
    """Three lexicographer files, a root per file, hyponyms with hypernym and part links,
    glosses with a definition and a quoted example."""
    lines = ["  1 This software and database is being provided (licence header)"]
    offset = 100
    for lexnum, (root, members) in GROUPS.items():
        root_off = offset
        lines.append(
            _line(root_off, lexnum, [root], [], f'a kind of {root}; "every {root} is here"')
        )
        offset += 100
        previous = None
        for i, word in enumerate(members):
            pointers = [("@", root_off)]
            if previous is not None and i % 3 == 0:
                pointers.append(("#p", previous))
            lines.append(
                _line(
                    offset,
                    lexnum,
                    [word, f"{word}_like"],
                    pointers,
                    f'a {root} called {word} with number {i}; "the {word} is near the {root}"',
                )  # fmt: skip
            )
            previous = offset
            offset += 100
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def wordnet_dir(tmp_path):
    make_data_noun(tmp_path / "data.noun")
    return tmp_path


@pytest.fixture(scope="session")
def tokenizer():
    from adapterlab.text.models import tiny_tokenizer

    words = {"is", "a", "type", "of", "part", "synonym", "kind", "every", "here", "called",
             "with", "number", "the", "near", "like", "an", "instance", "member", "made"}  # fmt: skip
    for _, (root, members) in GROUPS.items():
        words.add(root)
        words.update(members)
    words.update(str(i) for i in range(10))
    return tiny_tokenizer(sorted(words))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
