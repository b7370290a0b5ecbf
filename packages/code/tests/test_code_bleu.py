"""BLEU equals CodeXGLUE's own computation on fixed examples.

The expected numbers were produced once by running CodeXGLUE's scripts
(``Code-Text/code-to-text/code/bleu.py``: ``bleuFromMaps`` / ``bleu``;
``Code-Code/code-refinement/evaluator/bleu.py``: ``compute_bleu``) on exactly these inputs.
"""

from __future__ import annotations

import math

import pytest
from adapterlab.code.bleu import corpus_bleu, nist_tokenize, smoothed_bleu4, summarization_bleu

REFS = [
    "Return the number of items in the queue.",
    "Compute x-1 and 3.5, then (maybe) stop!",
    "Open a file &amp; read it",
    "a b c d e f",
    "Get the value.",
]
PREDS = [
    "return number of items in queue",
    "compute x - 1 and 3.5 then stop",
    "open the file and read",
    "",
    "Get the value.",
]
# CodeXGLUE bleu.bleu([ref], pred)[0] on the raw strings, one per pair
SENTENCE = [
    0.43564355400687105,
    0.17696111930254138,
    0.26768102483623846,
    0.0024787521766663585,
    1.0,
]


def test_summarization_bleu_matches_codexglue():
    assert summarization_bleu(REFS, PREDS) == pytest.approx(43.09088934434451, abs=1e-9)


@pytest.mark.parametrize("index", range(len(REFS)))
def test_sentence_bleu_matches_codexglue(index):
    assert smoothed_bleu4([REFS[index]], PREDS[index]) == pytest.approx(SENTENCE[index], abs=1e-12)


def test_multi_reference_and_formula():
    refs = ["the cat sat on the mat", "a cat is on the mat"]
    assert smoothed_bleu4(refs, "the cat is on the mat") == pytest.approx(0.8801117367933934)
    # by hand: 6/6 unigrams, 5/5 bigrams, 3/4 trigrams, 2/3 4-grams (clipped by the max count
    # over references), add-one smoothing above n=1, log brevity 1 - (6+1)/(6+1) = 0
    by_hand = math.exp((math.log(6 / 6) + math.log(6 / 6) + math.log(4 / 5) + math.log(3 / 4)) / 4)
    assert smoothed_bleu4(refs, "the cat is on the mat") == pytest.approx(by_hand)


def test_nist_tokenisation():
    # as CodeXGLUE's normalize(): a dash is only split off after a digit
    assert nist_tokenize("Compute x-1, 3.5 (maybe)!") == [
        "compute", "x-1", ",", "3.5", "(", "maybe", ")", "!",
    ]  # fmt: skip
    assert nist_tokenize("range 2-3") == ["range", "2", "-", "3"]
    assert nist_tokenize("a &amp; b &lt;c&gt;") == ["a", "&", "b", "<", "c", ">"]


def test_corpus_bleu_matches_codexglue_refinement():
    refs = ["public int METHOD_1 ( ) { return VAR_1 ; }", "if ( VAR_1 < 2 ) { return ; }", "a b c"]
    hyps = [
        "public int METHOD_1 ( ) { return VAR_2 ; }",
        "if ( VAR_1 <= 2 ) { return ; }",
        "a b c d",
    ]
    assert corpus_bleu(refs, hyps) == pytest.approx(68.07327430297, abs=1e-9)
    assert corpus_bleu(refs, hyps, smooth=False) == pytest.approx(66.03268024302409, abs=1e-9)
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
