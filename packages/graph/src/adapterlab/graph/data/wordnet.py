"""Embedded default: a real text-attributed graph from WordNet 3.0's noun hierarchy.

The project fetches Debian's ``wordnet-base`` package itself (``apt-get download`` +
``dpkg-deb -x`` into a cache folder), parses ``data.noun`` into a TAG (node = noun synset,
text = its lemmas and gloss, edge = hypernym / instance hypernym, label = lexicographer file such
as ``noun.animal``), subsamples it by snowball sampling over the hypernym graph so that the main
job fits its budget, and writes it in the generic layout (``nodes.jsonl``, ``edges.csv``,
``split.json``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WordNetUnavailable
from .generic import is_generic, write_generic
from .tag import DataFormatError

__all__ = [
    "NOUN_LEXNAMES",
    "WordNetUnavailable",
    "WordNetSynset",
    "ensure_wordnet",
    "fetch_wordnet_base",
    "parse_data_noun",
    "default_cache_dir",
]

# WordNet's lexicographer files for nouns (lexnames(5WN)); the numbers are lex_filenum
NOUN_LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact", 7: "noun.attribute",
    8: "noun.body", 9: "noun.cognition", 10: "noun.communication", 11: "noun.event",
    12: "noun.feeling", 13: "noun.food", 14: "noun.group", 15: "noun.location",
    16: "noun.motive", 17: "noun.object", 18: "noun.person", 19: "noun.phenomenon",
    20: "noun.plant", 21: "noun.possession", 22: "noun.process", 23: "noun.quantity",
    24: "noun.relation", 25: "noun.shape", 26: "noun.state", 27: "noun.substance",
    28: "noun.time",
}  # fmt: skip

DEBIAN_PACKAGE = "wordnet-base"


@dataclass
class WordNetSynset:
    """One noun synset of ``data.noun``."""

    offset: int
    lexname: str
    lemmas: list[str]
    hypernyms: list[int]
    gloss: str

    @property
    def text(self) -> str:
        """Node text: ``"lemma, lemma: gloss"``."""
        return f"{', '.join(self.lemmas)}: {self.gloss}"


def default_cache_dir() -> Path:
    """``$ADAPTERLAB_CACHE`` or ``~/.cache/adapterlab``, then ``graph/``."""
    base = os.environ.get("ADAPTERLAB_CACHE") or Path.home() / ".cache" / "adapterlab"
    return Path(base) / "graph"


def fetch_wordnet_base(cache_dir: str | Path | None = None) -> Path:
    """``data.noun`` of Debian's wordnet-base, downloaded and unpacked into ``cache_dir`` once.

    Raises ``WordNetUnavailable`` with the manual fix when apt-get or dpkg-deb fail.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / "wordnet-base"
    data_noun = target / "usr" / "share" / "wordnet" / "data.noun"
    if data_noun.is_file():
        return data_noun
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise WordNetUnavailable(
                f"{tool} not found: the embedded WordNet graph needs Debian's {DEBIAN_PACKAGE}. "
                f"Unpack it yourself into {target} (so that {data_noun} exists), or pass --data "
                "with a dataset folder"
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
                "with a dataset folder"
            ) from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpack, target)
    if not data_noun.is_file():
        raise WordNetUnavailable(f"{DEBIAN_PACKAGE} has no {data_noun.name}")
    return data_noun


def parse_data_noun(path: str | Path) -> dict[int, WordNetSynset]:
    """Parse WordNet's ``data.noun`` (wndb(5WN) format) into synsets keyed by offset."""
    path = Path(path)
    out: dict[int, WordNetSynset] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            try:
                offset, lexnum = int(fields[0]), int(fields[1])
                n_words = int(fields[3], 16)
                lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
                pos = 4 + 2 * n_words
                n_ptrs = int(fields[pos])
                hypernyms = []
                for i in range(n_ptrs):
                    symbol, target, target_pos = fields[pos + 1 + 4 * i : pos + 4 + 4 * i]
                    if symbol in ("@", "@i") and target_pos == "n":
                        hypernyms.append(int(target))
            except (IndexError, ValueError):
                raise DataFormatError(f"{path}:{lineno}: not a wndb data line") from None
            lemmas = [lem.split("(")[0] for lem in lemmas]  # drop adjective markers like (a)
            out[offset] = WordNetSynset(
                offset, NOUN_LEXNAMES.get(lexnum, f"lex{lexnum}"), lemmas, hypernyms, gloss.strip()
            )
    if not out:
        raise DataFormatError(f"{path}: no synsets found")
    return out


def snowball_sample(
    synsets: dict[int, WordNetSynset], labels: list[str], num_nodes: int, seed: int
) -> list[int]:
    """Offsets of about ``num_nodes`` synsets of the given labels, an equal quota per label,
    grown breadth-first over hypernym/hyponym links from random seeds (so the sample keeps
    edges)."""
    rng = np.random.default_rng(seed)
    allowed = {o for o, s in synsets.items() if s.lexname in labels}
    neighbours: dict[int, list[int]] = {o: [] for o in allowed}
    for o in allowed:
        for h in synsets[o].hypernyms:
            if h in allowed:
                neighbours[o].append(h)
                neighbours[h].append(o)
    quota = {lab: num_nodes // len(labels) for lab in labels}
    chosen: list[int] = []
    taken: set[int] = set()
    by_label = {lab: sorted(o for o in allowed if synsets[o].lexname == lab) for lab in labels}
    while any(q > 0 for q in quota.values()):
        open_labels = [lab for lab in labels if quota[lab] > 0 and by_label[lab]]
        if not open_labels:
            break
        lab = open_labels[int(rng.integers(len(open_labels)))]
        start = by_label[lab][int(rng.integers(len(by_label[lab])))]
        if start in taken:
            by_label[lab].remove(start)
            continue
        queue, grown = deque([start]), 0
        while queue and grown < 60:
            o = queue.popleft()
            if o in taken or quota[synsets[o].lexname] <= 0:
                continue
            taken.add(o)
            chosen.append(o)
            quota[synsets[o].lexname] -= 1
            grown += 1
            nbrs = list(neighbours[o])
            rng.shuffle(nbrs)
            queue.extend(n for n in nbrs if n not in taken)
    return chosen


def build_wordnet_tag(
    out_dir: str | Path,
    *,
    num_nodes: int = 1200,
    num_labels: int = 12,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> Path:
    """Write the embedded WordNet TAG in the generic layout into ``out_dir`` (once); returns it.

    The ``num_labels`` most frequent noun lexicographer files (without ``noun.Tops``) are the
    classes; a stratified 60/20/20 split is written to ``split.json``.
    """
    out = Path(out_dir)
    if is_generic(out) and (out / "split.json").is_file():
        return out
    synsets = parse_data_noun(fetch_wordnet_base(cache_dir))
    counts: dict[str, int] = {}
    for s in synsets.values():
        counts[s.lexname] = counts.get(s.lexname, 0) + 1
    counts.pop("noun.Tops", None)
    labels = sorted(sorted(counts, key=lambda k: -counts[k])[:num_labels])
    chosen = snowball_sample(synsets, labels, num_nodes, seed)
    index = {o: i for i, o in enumerate(chosen)}
    texts = [synsets[o].text for o in chosen]
    node_labels = [synsets[o].lexname for o in chosen]
    edges = [(index[o], index[h]) for o in chosen for h in synsets[o].hypernyms if h in index]
    rng = np.random.default_rng(seed)
    split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for lab in labels:
        ids = np.array([i for i, nl in enumerate(node_labels) if nl == lab])
        rng.shuffle(ids)
        n_tr, n_va = int(round(0.6 * len(ids))), int(round(0.2 * len(ids)))
        split["train"] += ids[:n_tr].tolist()
        split["val"] += ids[n_tr : n_tr + n_va].tolist()
        split["test"] += ids[n_tr + n_va :].tolist()
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    write_generic(tmp, texts, node_labels, np.asarray(edges, dtype=np.int64), split)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def ensure_wordnet(
    root: str | Path | None = None, *, num_nodes: int = 1200, num_labels: int = 12, seed: int = 0
) -> Path:
    """The embedded WordNet TAG folder (built on first use under the cache dir)."""
    cache = default_cache_dir()
    root = Path(root) if root else cache / f"wordnet-{num_nodes}-{num_labels}-s{seed}"
    return build_wordnet_tag(
        root, num_nodes=num_nodes, num_labels=num_labels, seed=seed, cache_dir=cache
    )
