"""WordNet 3.0 nouns as text: knowledge-graph sentences and free-text glosses.

The project fetches Debian's ``wordnet-base`` itself (``apt-get download`` + ``dpkg-deb -x``
into a cache folder) and parses ``data.noun`` (wndb(5WN)). Each relation becomes an English
sentence with a ConceptNet-style template, as "Small Models, Big Impact" renders ConceptNet
triples ("X is a type of Y."); each synset's gloss gives free text (its definition and the quoted
usage examples).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from adapterlab.core.engine import DataFileError, read_text

__all__ = [
    "LEXNAMES",
    "RELATION_TEMPLATES",
    "Synset",
    "WordNetUnavailable",
    "fetch_wordnet_base",
    "gloss_texts",
    "kg_sentences",
    "parse_data_noun",
]

DEBIAN_PACKAGE = "wordnet-base"

# lexicographer files of nouns (lexnames(5WN)), by lex_filenum
LEXNAMES = {
    3: "Tops", 4: "act", 5: "animal", 6: "artifact", 7: "attribute", 8: "body", 9: "cognition",
    10: "communication", 11: "event", 12: "feeling", 13: "food", 14: "group", 15: "location",
    16: "motive", 17: "object", 18: "person", 19: "phenomenon", 20: "plant", 21: "possession",
    22: "process", 23: "quantity", 24: "relation", 25: "shape", 26: "state", 27: "substance",
    28: "time",
}  # fmt: skip

# WordNet pointer -> sentence about (this synset X, target Y); ConceptNet's English wording
RELATION_TEMPLATES = {
    "@": "{x} is a type of {y}.",  # hypernym (ConceptNet IsA)
    "@i": "{x} is an instance of {y}.",  # instance hypernym
    "#p": "{x} is part of {y}.",  # part holonym (PartOf)
    "#m": "{x} is a member of {y}.",  # member holonym
    "#s": "{y} is made of {x}.",  # substance holonym: X is a substance of Y (MadeOf)
    "=": "{x} is related to {y}.",  # attribute
    "+": "{x} is derived from {y}.",  # derivationally related form (RelatedTo)
}


class WordNetUnavailable(RuntimeError):
    """Debian's wordnet-base could not be fetched (the message names the manual fix)."""


@dataclass
class Synset:
    """One noun synset of ``data.noun``."""

    offset: int
    lexname: str
    lemmas: list[str]
    pointers: list[tuple[str, int]] = field(default_factory=list)  # (symbol, target offset)
    gloss: str = ""


def default_cache_dir() -> Path:
    """``$ADAPTERLAB_CACHE`` or ``~/.cache/adapterlab``, then ``text/``."""
    base = os.environ.get("ADAPTERLAB_CACHE") or Path.home() / ".cache" / "adapterlab"
    return Path(base) / "text"


def fetch_wordnet_base(cache_dir: str | Path | None = None) -> Path:
    """``data.noun`` of Debian's wordnet-base, downloaded and unpacked into ``cache_dir`` once."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / "wordnet-base"
    data_noun = target / "usr" / "share" / "wordnet" / "data.noun"
    if data_noun.is_file():
        return data_noun
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise WordNetUnavailable(
                f"{tool} not found: the text demo needs Debian's {DEBIAN_PACKAGE}. Unpack it "
                f"yourself into {target} (so that {data_noun} exists), or pass --data with a "
                "folder holding WordNet's data.noun"
            )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".wordnet-") as tmp:
        try:
            subprocess.run(
                ["apt-get", "download", DEBIAN_PACKAGE],
                cwd=tmp, check=True, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            debs = sorted(Path(tmp).glob(f"{DEBIAN_PACKAGE}_*.deb"))
            if not debs:
                raise WordNetUnavailable(f"apt-get download {DEBIAN_PACKAGE} wrote no .deb")
            unpack = Path(tmp) / "unpacked"
            subprocess.run(
                ["dpkg-deb", "-x", str(debs[0]), str(unpack)],
                check=True, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            detail = (getattr(err, "stderr", "") or str(err)).strip().splitlines()
            raise WordNetUnavailable(
                f"could not fetch Debian's {DEBIAN_PACKAGE} ({detail[-1] if detail else err}); "
                "check that the Debian archive is reachable (apt-get update), or pass --data "
                "with a folder holding WordNet's data.noun"
            ) from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpack, target)
    if not data_noun.is_file():
        raise WordNetUnavailable(f"{DEBIAN_PACKAGE} has no {data_noun.name}")
    return data_noun


def parse_data_noun(path: str | Path) -> dict[int, Synset]:
    """Synsets of WordNet's ``data.noun`` keyed by offset; a malformed line raises
    :class:`DataFileError` naming the file and line."""
    path = Path(path)
    out: dict[int, Synset] = {}
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip() or line.startswith("  "):  # licence header
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        try:
            offset, lexnum = int(fields[0]), int(fields[1])
            n_words = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ").split("(")[0] for i in range(n_words)]
            pos = 4 + 2 * n_words
            pointers = []
            for i in range(int(fields[pos])):
                symbol, target, target_pos = fields[pos + 1 + 4 * i : pos + 4 + 4 * i]
                if target_pos == "n":
                    pointers.append((symbol, int(target)))
        except (IndexError, ValueError):
            raise DataFileError(path, "not a WordNet data.noun line", line=lineno) from None
        out[offset] = Synset(
            offset, LEXNAMES.get(lexnum, f"lex{lexnum}"), lemmas, pointers, gloss.strip()
        )
    if not out:
        raise DataFileError(path, "no synsets found")
    return out


def kg_sentences(synsets: dict[int, Synset], offset: int) -> list[str]:
    """The knowledge-graph sentences about synset ``offset`` (self-loops dropped), plus one
    synonym sentence when it has several lemmas."""
    s = synsets[offset]
    x = s.lemmas[0]
    out = []
    for symbol, target in s.pointers:
        template = RELATION_TEMPLATES.get(symbol)
        other = synsets.get(target)
        if template is None or other is None or other.lemmas[0] == x:
            continue
        out.append(template.format(x=x, y=other.lemmas[0]))
    if len(s.lemmas) > 1 and s.lemmas[1] != x:
        out.append(f"{x} is a synonym of {s.lemmas[1]}.")
    return out


def gloss_texts(synset: Synset) -> list[str]:
    """Free text of a gloss: the definition (as ``"X: definition."``) and each quoted example."""
    parts = [p.strip() for p in synset.gloss.split(";") if p.strip()]
    out = []
    definitions = [p for p in parts if not p.startswith('"')]
    if definitions:
        out.append(f"{synset.lemmas[0]}: {definitions[0].rstrip('.')}.")
    for p in parts:
        if p.startswith('"'):
            example = p.strip('"').strip()
            if len(example.split()) >= 3:
                out.append(example)
    return out
