"""WordNet parsing, sentence rendering, splits and masking."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core.engine import DataFileError
from adapterlab.text.data import (
    build_corpora,
    gloss_texts,
    kg_sentences,
    mask_tokens,
    parse_data_noun,
)


def test_parse_and_render_sentences(wordnet_dir) -> None:
    synsets = parse_data_noun(wordnet_dir / "data.noun")
    assert len(synsets) == 33
    dog = next(s for s in synsets.values() if s.lemmas[0] == "dog")
    assert dog.lexname == "animal" and dog.lemmas == ["dog", "dog like"]
    assert kg_sentences(synsets, dog.offset) == [
        "dog is a type of animal.",
        "dog is a synonym of dog like.",
    ]
    wolf = next(s for s in synsets.values() if s.lemmas[0] == "wolf")  # index 3: a part link
    assert "wolf is part of horse." in kg_sentences(synsets, wolf.offset)
    assert gloss_texts(dog) == [
        "dog: a animal called dog with number 0.",
        "the dog is near the animal",
    ]


def test_malformed_line_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "data.noun"
    path.write_text("  licence\n00000100 05 n zz dog 0 | gloss\n")
    with pytest.raises(DataFileError, match=r"data\.noun:2: not a WordNet data\.noun line"):
        parse_data_noun(path)


def test_splits_are_disjoint_by_synset(wordnet_dir) -> None:
    synsets = parse_data_noun(wordnet_dir / "data.noun")
    n = {"train": 1000, "val": 1000, "test": 1000}
    corpora = build_corpora(synsets, n_mlm=n, n_labels=3, n_topics=n)
    assert corpora.labels == ["animal", "artifact", "food"]
    heads = {s: {t.split(" is ")[0] for t in corpora.kg[s]} for s in n}
    assert not heads["train"] & heads["test"] and not heads["train"] & heads["val"]
    assert {y for _, y in corpora.topics["train"]} == {0, 1, 2}


def test_masking_follows_bert() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 100, (200, 40), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mask_tokens(ids, special, mask_id=4, vocab_size=100, generator=g)
    chosen = labels != -100
    assert not chosen[special].any() and chosen.any(dim=1).all()
    assert abs(chosen.float().mean().item() / (38 / 40) - 0.15) < 0.01
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    masked = (inputs[chosen] == 4).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.03 and 0.08 < kept < 0.14  # 10 % kept (+ random hits)


def test_unknown_method_is_refused_before_any_work() -> None:
    from adapterlab.text.config import LangAdaptConfig

    with pytest.raises(ValueError, match=r"methods: unknown \['foo'\]"):
        LangAdaptConfig(methods=["seq_bn", "foo"]).validate()
