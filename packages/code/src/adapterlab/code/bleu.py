"""BLEU as CodeXGLUE computes it (re-derived from its description, not copied).

Two scores:

- :func:`smoothed_bleu4` / :func:`summarization_bleu`: code summarization (code-to-text). Each
  prediction is scored *alone* with BLEU-4 in the MOSES ``bleu.py`` form CodeXGLUE ships, then the
  sentence scores are averaged and multiplied by 100:

  * preprocessing: reference and prediction are lower-cased and split into ``\\w+`` runs and single
    punctuation characters (``splitPuncts``), then NIST-normalised (``<skipped>`` removed,
    hyphenated line ends joined, ASCII punctuation split off except the apostrophe, the dash (only after a digit) and a
    period/comma between digits; lower-cased) and split on whitespace;
  * clipped n-gram matches for n = 1..4 against the *maximum* count over the references;
    candidates ``max(len - n + 1, 0)``;
  * log BLEU = mean over n of ``log(m_n + s_n + tiny) - log(c_n + s_n + tiny)`` with ``s_1 = 0``
    and ``s_n = 1`` for n > 1 (add-one smoothing of the higher orders), ``tiny`` the smallest
    positive float;
  * brevity penalty (in log space) ``min(0, 1 - (r + 1) / (c + 1))`` with ``r`` the *shortest*
    reference length and ``c`` the prediction length.

- :func:`corpus_bleu`: code refinement. The TensorFlow-NMT ``compute_bleu`` CodeXGLUE's refinement
  evaluator uses: whitespace tokens, n-gram matches and candidates summed over the corpus,
  precisions ``(m_n + 1) / (c_n + 1)`` when smoothed, geometric mean, brevity penalty
  ``exp(1 - r / c)`` when ``c <= r``; times 100.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from xml.sax.saxutils import unescape as _xml_unescape_base

__all__ = ["corpus_bleu", "nist_tokenize", "smoothed_bleu4", "split_puncts", "summarization_bleu"]

_TINY = sys.float_info.min

# NIST mteval-v11a language-independent and language-dependent steps.
_NIST_JOIN = [(re.compile("<skipped>"), ""), (re.compile(r"-\n"), ""), (re.compile(r"\n"), " ")]
_NIST_SPLIT = [
    # every ASCII punctuation character except the apostrophe, period and comma
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def _xml_unescape(text: str) -> str:
    return _xml_unescape_base(text, {"&quot;": '"'})


def nist_tokenize(text: str) -> list[str]:
    """NIST mteval-v11a normalisation + tokenisation (lower-cased)."""
    for pattern, repl in _NIST_JOIN:
        text = pattern.sub(repl, text)
    text = _xml_unescape(text)
    text = f" {text} ".lower()
    for pattern, repl in _NIST_SPLIT:
        text = pattern.sub(repl, text)
    return text.split()


def split_puncts(line: str) -> str:
    """``\\w+`` runs and single non-space, non-word characters, joined by spaces."""
    return " ".join(re.findall(r"[\w]+|[^\s\w]", line))


def _ngrams(words: Sequence[str], n: int = 4) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def smoothed_bleu4(references: Sequence[str], prediction: str, n: int = 4) -> float:
    """Sentence-level smoothed BLEU-4 of ``prediction`` (in [0, 1]); see the module docstring."""
    refs = [nist_tokenize(r) for r in references]
    if not refs:
        raise ValueError("smoothed_bleu4 needs at least one reference")
    max_ref: Counter = Counter()
    for ref in refs:
        for gram, count in _ngrams(ref, n).items():
            max_ref[gram] = max(max_ref[gram], count)
    hyp = nist_tokenize(prediction)
    correct = [0] * n
    for gram, count in _ngrams(hyp, n).items():
        correct[len(gram) - 1] += min(max_ref.get(gram, 0), count)
    guess = [max(len(hyp) - k, 0) for k in range(n)]
    log_bleu = 0.0
    for k in range(n):
        add = 1 if k > 0 else 0
        log_bleu += math.log(correct[k] + add + _TINY) - math.log(guess[k] + add + _TINY)
    log_bleu /= n
    ref_len = min(len(r) for r in refs)
    log_bleu += min(0.0, 1.0 - (ref_len + 1) / (len(hyp) + 1))
    return math.exp(log_bleu)


def summarization_bleu(references: Sequence[str], predictions: Sequence[str]) -> float:
    """CodeXGLUE code-to-text score: mean sentence smoothed BLEU-4 x 100.

    Each reference/prediction is ``strip().lower()``-ed and punctuation-split first, as
    CodeXGLUE's ``computeMaps`` does with its gold and prediction files.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        return float("nan")
    total = 0.0
    for ref, pred in zip(references, predictions):
        total += smoothed_bleu4(
            [split_puncts(ref.strip().lower())], split_puncts(pred.strip().lower())
        )
    return 100.0 * total / len(references)


def corpus_bleu(
    references: Sequence[str], predictions: Sequence[str], smooth: bool = True, n: int = 4
) -> float:
    """Corpus BLEU-4 x 100 over whitespace tokens (CodeXGLUE refinement's ``_bleu``)."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    matches = [0] * n
    possible = [0] * n
    ref_len = hyp_len = 0
    for ref_text, hyp_text in zip(references, predictions):
        ref, hyp = ref_text.strip().split(), hyp_text.strip().split()
        ref_len += len(ref)
        hyp_len += len(hyp)
        overlap = _ngrams(hyp, n) & _ngrams(ref, n)
        for gram, count in overlap.items():
            matches[len(gram) - 1] += count
        for k in range(n):
            if len(hyp) - k > 0:
                possible[k] += len(hyp) - k
    if smooth:
        precisions = [(matches[k] + 1.0) / (possible[k] + 1.0) for k in range(n)]
    else:
        precisions = [matches[k] / possible[k] if possible[k] else 0.0 for k in range(n)]
    if min(precisions) <= 0 or ref_len == 0:
        return 0.0
    geo = math.exp(sum(math.log(p) for p in precisions) / n)
    ratio = hyp_len / ref_len
    bp = 1.0 if ratio > 1.0 else (math.exp(1 - 1.0 / ratio) if ratio > 0 else 0.0)
    return 100.0 * geo * bp
