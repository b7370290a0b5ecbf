"""Align syntax-tree leaf types to a fast tokenizer's subword tokens through character offsets.

Rules (ours; the paper does not state its alignment):

- tree-sitter reports UTF-8 *byte* spans; they are converted to *character* spans of the decoded
  text, so non-ASCII text aligns exactly (the tokenizer's offsets count characters);
- every subword gets the type of the leaf it overlaps; a subword that overlaps several leaves
  (a BPE merge such as ``();``) gets the type covering most of its characters, the earliest on a
  tie;
- trailing whitespace of a leaf (the ``\r`` of a CRLF that a comment token swallows) is not
  part of it;
- special tokens (``<s>``, ``[CLS]``, padding) and subwords that cover only whitespace (BPE's
  newline/indent tokens) get ``-100``, the label cross-entropy ignores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .token_types import Leaf

__all__ = ["IGNORE_INDEX", "char_type_map", "label_offsets"]

IGNORE_INDEX = -100
_TRAILING_SPACE = frozenset(" \t\r\n\f\v")


def _byte_to_char(text: str) -> np.ndarray | None:
    """``map[b]`` = index of the character that byte ``b`` starts (or lies in); None for ASCII."""
    if text.isascii():
        return None
    widths = np.fromiter((len(ch.encode("utf-8")) for ch in text), dtype=np.int64, count=len(text))
    return np.repeat(np.arange(len(text), dtype=np.int64), widths)


def char_type_map(text: str, leaves: Sequence[Leaf]) -> np.ndarray:
    """Per-character type id of ``text`` (``-1`` outside any leaf)."""
    out = np.full(len(text) + 1, -1, dtype=np.int64)
    b2c = _byte_to_char(text)
    n_bytes = len(text) if b2c is None else len(b2c)
    for leaf in leaves:
        start, end = leaf.start, min(leaf.end, n_bytes)
        if b2c is not None:
            start = int(b2c[start]) if start < n_bytes else len(text)
            end = int(b2c[end - 1]) + 1 if end > 0 else 0
        while end > start and text[end - 1] in _TRAILING_SPACE:
            end -= 1  # tree-sitter comments keep a CRLF's "\r"; whitespace is never a token
        out[start:end] = leaf.type_id
    return out[: len(text)]


def label_offsets(
    char_types: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    special_mask: Sequence[int] | None = None,
) -> list[int]:
    """One label per subword from its ``(start, end)`` character offsets (see module rules)."""
    labels: list[int] = []
    for i, (start, end) in enumerate(offsets):
        if (special_mask is not None and special_mask[i]) or end <= start:
            labels.append(IGNORE_INDEX)
            continue
        span = char_types[start:end]
        first = span[0]
        if (span == first).all():
            labels.append(int(first) if first >= 0 else IGNORE_INDEX)
            continue
        span = span[span >= 0]
        if span.size == 0:
            labels.append(IGNORE_INDEX)
            continue
        values, first_pos, counts = np.unique(span, return_index=True, return_counts=True)
        best = max(range(len(values)), key=lambda k: (counts[k], -first_pos[k]))
        labels.append(int(values[best]))
    return labels
