"""CodeXGLUE on-disk layouts: code-to-text jsonl and code-refinement buggy/fixed line files.

- code summarization (``Code-Text/code-to-text``): ``<root>/{train,valid,test}.jsonl`` (or
  ``<root>/<language>/...``), one JSON object per line with ``code_tokens`` and
  ``docstring_tokens`` (lists of strings). As CodeXGLUE's ``read_examples``: source =
  ``" ".join(code_tokens)`` with newlines replaced by spaces, target = ``" ".join(docstring_tokens)``
  with newlines removed.
- code refinement (``Code-Code/code-refinement``, ``data/small``): ``<root>/{split}.buggy-fixed.buggy``
  and ``<root>/{split}.buggy-fixed.fixed``, line-aligned abstracted Java methods.

Files are read with the core's careful readers: lines split on ``\\n`` only (a form feed or
``\\u2028`` inside a line never shifts the pairs), non-UTF-8 bytes and malformed JSON raise
:class:`~adapterlab.core.engine.DataFileError` naming the file and the line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from adapterlab.core.engine import DataFileError, SkipCounter, iter_lines

__all__ = ["Pair", "PairSet", "SPLITS", "load_code_to_text", "load_refinement", "load_task"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Pair:
    """One source -> target example."""

    source: str
    target: str


@dataclass
class PairSet:
    """Examples of one split plus how many bad lines were skipped."""

    pairs: list[Pair]
    skipped: int = 0
    path: str = ""
    skipped_lines: list[str] | None = None
    """Each skipped line, named (``file:line: problem``)."""


def _split_file(root: Path, split: str, suffix: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return root / f"{split}{suffix}"


def load_code_to_text(
    root: str | Path, split: str, *, language: str | None = None, skip_bad: bool = False
) -> PairSet:
    """Read one split of a code-to-text folder (see the module docstring).

    Raises:
        FileNotFoundError: the split file is missing.
        DataFileError: a malformed line (bad JSON, missing or non-list ``code_tokens`` /
            ``docstring_tokens``), naming the file and line, unless ``skip_bad``; bytes that
            are not UTF-8 (always: the rest of the file cannot be trusted).
    """
    root = Path(root)
    if language and (root / language).is_dir():
        root = root / language
    path = _split_file(root, split, ".jsonl")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a code-to-text folder holds train.jsonl, valid.jsonl, test.jsonl"
        )
    pairs: list[Pair] = []
    skipped = SkipCounter(skip=skip_bad, what="malformed code-to-text lines")
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(f"expected a JSON object, got {type(record).__name__}")
            code, doc = record["code_tokens"], record["docstring_tokens"]
            if not isinstance(code, list) or not isinstance(doc, list):
                raise TypeError("code_tokens and docstring_tokens must be lists of strings")
            if not all(isinstance(t, str) for t in code + doc):
                raise TypeError("code_tokens and docstring_tokens must be lists of strings")
            if not code or not doc:
                raise ValueError("empty code_tokens or docstring_tokens")
        except (KeyError, TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
            what = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            problem = DataFileError(path, f"malformed code-to-text line: {what}", line=number)
            skipped.add(problem)  # raises it unless skip_bad
            continue
        source = " ".join(code).replace("\n", " ")
        target = " ".join(doc).replace("\n", "")
        pairs.append(Pair(" ".join(source.strip().split()), target))
    if not pairs:
        raise DataFileError(path, "no usable examples")
    if skipped.count:
        print(skipped.summary(), file=sys.stderr)
    return PairSet(pairs, skipped.count, str(path), skipped.errors)


def load_refinement(root: str | Path, split: str) -> PairSet:
    """Read one split of a code-refinement folder (``{split}.buggy-fixed.{buggy,fixed}``).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the two files have different line counts (naming both).
    """
    root = Path(root)
    buggy = _split_file(root, split, ".buggy-fixed.buggy")
    fixed = _split_file(root, split, ".buggy-fixed.fixed")
    for path in (buggy, fixed):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: a refinement folder holds <split>.buggy-fixed.buggy and "
                "<split>.buggy-fixed.fixed for train, valid and test"
            )
    sources = [line for _, line in iter_lines(buggy)]  # "\n" only, never \f or \u2028
    targets = [line for _, line in iter_lines(fixed)]
    if len(sources) != len(targets):
        raise DataFileError(
            buggy,
            f"inconsistent refinement split: {len(sources)} lines, but {fixed} has {len(targets)}",
        )
    pairs = [Pair(s.strip(), t.strip()) for s, t in zip(sources, targets) if s.strip()]
    if not pairs:
        raise DataFileError(buggy, "no usable examples")
    return PairSet(pairs, 0, str(buggy))


def load_task(task: str, root: str | Path, split: str, *, skip_bad: bool = False) -> PairSet:
    """``summarization`` (code-to-text, Python or any language folder) or ``refinement``."""
    if task == "summarization":
        return load_code_to_text(root, split, language="python", skip_bad=skip_bad)
    if task == "refinement":
        return load_refinement(root, split)
    raise ValueError(f"task must be 'summarization' or 'refinement', got {task!r}")
