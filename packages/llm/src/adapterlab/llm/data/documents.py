"""Embedded documents for Generative Adapter: Debian package records with questions about facts
a language model cannot know without them (the exact version string, the maintainer).

Records come from the machine's installed-package database (``/var/lib/dpkg/status``, Debian's
RFC 822-style stanzas); each document lists a package's name, version, maintainer and the first
line of its description.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from adapterlab.core.engine import DataFileError, read_text

__all__ = ["DPKG_STATUS", "Document", "load_documents", "qa_prompt"]

DPKG_STATUS = Path("/var/lib/dpkg/status")


@dataclass(frozen=True)
class Document:
    """A context and the questions (with answers) it settles."""

    text: str
    questions: list[tuple[str, str]]


def qa_prompt(question: str, context: str | None = None) -> str:
    """The question prompt, with the context in front for the prompting baseline."""
    head = f"{context}\n\n" if context else ""
    return f"{head}Question: {question}\nAnswer:"


def _stanzas(path: Path) -> list[tuple[int, dict[str, str]]]:
    text = read_text(path)
    out, line_no = [], 1
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for raw in block.splitlines():
            if raw.startswith((" ", "\t")) and key:
                continue
            if ":" not in raw:
                if raw.strip():
                    raise DataFileError(
                        path, f"not a 'Field: value' line: {raw[:40]!r}", line=line_no
                    )
                continue
            key, _, value = raw.partition(":")
            fields[key.strip()] = value.strip()
        if fields:
            out.append((line_no, fields))
        line_no += block.count("\n") + 2
    return out


def load_documents(n: int, seed: int = 0, path: str | Path = DPKG_STATUS) -> list[Document]:
    """``n`` package documents (sampled with ``seed``) with a version and a maintainer question."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            path, "no such file (the embedded documents need a Debian-based system's dpkg database)"
        )
    docs = []
    for _, f in _stanzas(path):
        name, version, maint = f.get("Package"), f.get("Version"), f.get("Maintainer", "")
        desc = f.get("Description", "")
        who = re.sub(r"\s*<.*", "", maint).strip()
        if not (name and version and who and desc):
            continue
        text = f"Package: {name}\nVersion: {version}\nMaintainer: {who}\nDescription: {desc}"
        docs.append(Document(text, [
            (f"What is the version of the Debian package {name}?", version),
            (f"Who maintains the Debian package {name}?", who),
        ]))  # fmt: skip
    if len(docs) < n:
        raise DataFileError(path, f"only {len(docs)} usable package records, {n} needed")
    rng = random.Random(seed)
    return rng.sample(docs, n)
