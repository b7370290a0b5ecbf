"""Metrics: the official VQA accuracy, SNLI-VE accuracy, BLEU-4 and CIDEr-D."""

from __future__ import annotations

import math
import shutil

import pytest
from adapterlab.vl.metrics import (
    CaptionTokenizerWarning,
    bleu4,
    caption_tokens,
    cider,
    normalize_answer,
    snli_ve_accuracy,
    tokenize_captions,
    vqa_accuracy,
    vqa_score,
)


@pytest.mark.parametrize(
    ("matching", "expected"),
    # the VQA evaluation's rule: min(#humans/3, 1) averaged over the 10 choose 9 subsets
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)],
)
def test_vqa_score_averages_over_leave_one_out_subsets(matching: int, expected: float) -> None:
    answers = ["2"] * matching + ["3"] * (10 - matching)
    assert vqa_score("2", answers) == pytest.approx(expected)


def test_vqa_normalisation_as_the_official_evaluation() -> None:
    assert normalize_answer("Two") == "2"
    assert normalize_answer("the dog.") == "dog"
    assert normalize_answer("isnt") == "isn't"
    assert normalize_answer("yes!") == "yes"
    assert normalize_answer("red, white") == "red white"
    assert vqa_score("Two dogs", ["2 dogs"] * 5 + ["3 dogs"] * 5) == pytest.approx(1.0)
    # identical gt answers are compared unnormalised, exactly as vqaEval.py does
    assert vqa_score("two", ["two"] * 10) == 0.0
    assert vqa_accuracy(["yes", "no"], [["yes"] * 10, ["yes"] * 10]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one"):
        vqa_score("yes", [])


# (prediction, human answers, score of LAVIS's vqa_eval.py). Each value follows from the script's
# loop by hand: the prediction is always normalised; the humans' answers are compared as given
# when identical, and get only the punctuation step when they disagree.
LAVIS_CASES = [
    ("ten", ["ten"] * 10, 0.0),  # prediction -> "10"; identical humans stay "ten"
    ("10", ["ten"] * 10, 0.0),
    ("ten", ["10"] * 10, 1.0),
    ("two", ["2"] * 6 + ["two"] * 4, 1.0),  # "2" given by 6 (>= 3 of every 9)
    ("2", ["2"] * 2 + ["two"] * 8, 0.6),  # "two" is not digit-mapped on the human side
    ("yes", ["Yes"] * 9 + ["yes"], 0.3),  # humans are not lower-cased: one "yes" matches
    ("Yes", ["yes"] * 10, 1.0),
    ("yes", ["yes "] * 10, 0.0),  # identical humans are not even stripped
    ("yes", ["yes "] * 9 + ["yes"], 0.3),  # punctuation step keeps the trailing space
    ("the dog", ["dog"] * 3 + ["the dog"] * 7, 0.9),  # articles stay on the human side
    ("dog", ["a dog"] * 10, 0.0),
    ("dog", ["dog."] * 5 + ["cat"] * 5, 1.0),  # "dog." -> "dog" by the period rule
    ("red, white", ["red white"] * 4 + ["red"] * 6, 1.0),
    ("isnt", ["isn't"] * 5 + ["no"] * 5, 1.0),
    ("3", ["3"] * 3 + ["4"] * 7, 0.9),
    ("  yes\n", ["yes"] * 10, 1.0),
    ("1,000", ["1000"] * 5 + ["1,000"] * 5, 1.0),
    ("none", ["0"] * 5 + ["none"] * 5, 1.0),
    ("black-and-white", ["black and white"] * 6 + ["gray"] * 4, 1.0),
    ("2", ["2"] * 10, 1.0),
]


@pytest.mark.parametrize(("prediction", "answers", "expected"), LAVIS_CASES)
def test_vqa_score_equals_lavis_vqa_eval(prediction: str, answers: list, expected: float) -> None:
    assert vqa_score(prediction, answers) == pytest.approx(expected, abs=1e-12)


def test_snli_ve_accuracy() -> None:
    assert snli_ve_accuracy(["entailment", "Neutral "], ["entailment", "contradiction"]) == 0.5


def test_bleu4_matches_the_definition_on_a_hand_computed_sentence() -> None:
    # Papineni et al. 2002: clipped n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths (BP = 1)
    got = bleu4(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert got == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-6)
    # brevity penalty: 4-word candidate, 6-word reference -> exp(1 - 6/4)
    got = bleu4(["the cat sat on"], [["the cat sat on the mat"]])
    assert got == pytest.approx(math.exp(1 - 6 / 4), rel=1e-6)
    assert bleu4(["a b c d"], [["a b c d"]]) == pytest.approx(1.0, rel=1e-6)


def test_cider_d_values() -> None:
    refs = [["a red circle left of a blue square"], ["there is one green triangle"]]
    # a candidate equal to its only reference: every n-gram cosine is 1 -> 10 (CIDEr-D x 10)
    assert cider([r[0] for r in refs], refs) == pytest.approx(10.0, rel=1e-6)
    assert cider(["nothing alike here", "zzz"], refs) == pytest.approx(0.0, abs=1e-9)
    partial = cider(["a red circle", "there is one green triangle"], refs)
    assert 0.0 < partial < 10.0
    assert caption_tokens("A Red circle, left!") == "a red circle left"
    with pytest.raises(ValueError, match="reference"):
        cider(["x"], [[]])


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (PTBTokenizer)")
def test_captions_are_tokenised_by_the_ptb_tokenizer_with_java() -> None:
    got = tokenize_captions([["A man's dog, running.", ""], ["Isn't it (red)?"]])
    # PTB splits clitics; with -lowerCase its bracket tokens become "-lrb-" / "-rrb-", which the
    # official punctuation list (upper case) does not remove: kept, as in the COCO evaluation
    assert got == [["a man 's dog running", ""], ["is n't it -lrb- red -rrb-"]]
    # the official pipeline: "dog's" and "dog 's" are the same tokens, so BLEU-4 is 1
    assert bleu4(["a dog's red ball here"], [["A dog 's red ball here."]]) == pytest.approx(1.0)


def test_without_java_the_fallback_warns(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.warns(CaptionTokenizerWarning, match="no Java"):
        got = tokenize_captions([["A man's dog, running."]])
    assert got == [["a man's dog running"]]
