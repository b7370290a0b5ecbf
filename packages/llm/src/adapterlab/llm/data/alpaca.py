"""The LLM-Adapters data format: Math10K / Commonsense170K training files and the math and
commonsense test sets (``dataset/<name>/test.json``).

A file is a JSON list of objects ``{"instruction", "input", "output", "answer"}`` (the released
layout) or JSON lines with the same fields. Training files need ``output`` and ``answer``; test
files need ``answer``. A malformed record or a missing field raises ``DataFileError`` naming the
file and the line where the record starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adapterlab.core.engine import DataFileError, iter_jsonl, read_text

__all__ = ["Example", "load_examples", "write_examples"]


@dataclass(frozen=True)
class Example:
    """One instruction example."""

    instruction: str
    input: str
    output: str
    answer: str
    where: str = ""
    """``file:line`` of the record (for messages)."""


def _records(path: Path) -> list[tuple[int, object]]:
    """``(line, record)`` of a JSON list file (line where each element starts) or JSON lines."""
    if path.suffix == ".jsonl":
        return list(iter_jsonl(path, require_object=False))
    text = read_text(path)
    decoder = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if not text[i:].startswith("["):
        return list(iter_jsonl(path, require_object=False))  # JSON lines under a .json name
    out: list[tuple[int, object]] = []
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise DataFileError(
                path, "malformed JSON: the list is not closed", line=text.count("\n") + 1
            )
        if text[i] == "]":
            return out
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as err:
            raise DataFileError(
                path, f"malformed JSON: {err.msg} (column {err.colno})", line=err.lineno
            ) from None
        out.append((text.count("\n", 0, i) + 1, record))
        i = end


def load_examples(
    path: str | Path, *, need_output: bool = True, limit: int | None = None
) -> list[Example]:
    """Read a Math10K / Commonsense170K-format file (``need_output=False`` for test sets)."""
    path = Path(path)
    required = ("instruction", "output", "answer") if need_output else ("instruction", "answer")
    out: list[Example] = []
    for line, record in _records(path):
        if not isinstance(record, dict):
            raise DataFileError(
                path, f"expected a JSON object, got {type(record).__name__}", line=line
            )
        for key in required:
            value = record.get(key)
            if value is None or (isinstance(value, str) and not value.strip() and key != "input"):
                raise DataFileError(path, f"record has no {key!r} field", line=line)
        answer = record["answer"]
        if not isinstance(answer, (str, int, float)):
            raise DataFileError(
                path, f"'answer' must be a string or number, got {answer!r}", line=line
            )
        out.append(
            Example(
                str(record["instruction"]), str(record.get("input") or ""),
                str(record.get("output") or ""), str(answer), f"{path}:{line}",
            )
        )  # fmt: skip
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataFileError(path, "no examples")
    return out


def write_examples(path: str | Path, examples: list[Example]) -> None:
    """Write examples in the released JSON-list layout (atomically)."""
    from adapterlab.core.engine import atomic_write_text

    records = [
        {"instruction": e.instruction, "input": e.input, "output": e.output, "answer": e.answer}
        for e in examples
    ]
    atomic_write_text(Path(path), json.dumps(records, indent=4, ensure_ascii=False) + "\n")
