"""Token-type classification (TTC) data: files -> parsed, tokenised, aligned windows.

The work runs through ``datasets.Dataset.map(num_proc=...)`` (parallel over files) and the
result is cached on disk under a fingerprint of the file list (paths, sizes, mtimes), the
tokenizer and the settings, so a second run loads it instead of parsing again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .align import IGNORE_INDEX, char_type_map, label_offsets
from .sources import MAX_FILE_BYTES, MAX_LINE_CHARS, BadSourceError, SourceStats, read_source
from .token_types import TOKEN_TYPES, parse_leaves

__all__ = [
    "TTCSettings",
    "build_ttc_dataset",
    "encode_file",
    "error_threshold",
    "label_counts",
    "tokenizer_fingerprint",
]

CACHE_VERSION = "2"  # 2: per-file size/line limits, unparsable files, NUL check over the file


@dataclass(frozen=True)
class TTCSettings:
    """How files become TTC windows."""

    max_length: int = 256
    """Subword tokens per window (special tokens included); longer files give several windows."""
    keep_parse_errors: bool = True
    """Keep files whose syntax tree holds ERROR/MISSING nodes (their counts are reported) or
    skip them."""
    on_bad_file: str = "skip"
    """Unusable files (empty, binary, undecodable, too large, a too long line, unparsable):
    'skip' (count and name them) or 'error' (stop, naming the file)."""
    max_file_bytes: int | None = MAX_FILE_BYTES
    """Files larger than this are skipped (counted, named) without being read (None: no limit)."""
    max_line_chars: int | None = MAX_LINE_CHARS
    """Files with a longer line are skipped (counted, named): one 10 MB line would otherwise
    become ~150,000 windows (None: no limit)."""
    max_error_rate: float = 0.05
    """A file whose ERROR/MISSING nodes exceed this share of its leaves (counted over at least
    40 leaves, so at least 3 nodes) is not code of its language (random text named .java): it
    is skipped as ``unparsable`` whatever ``keep_parse_errors`` says."""


def encode_text(text: str, language: str, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Parse, tokenise and align one decoded source text (see :func:`encode_file`)."""
    parsed = parse_leaves(text.encode("utf-8"), language)
    char_types = char_type_map(text, parsed.leaves)
    enc = tokenizer(
        text,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=True,
        max_length=max_length,
        return_overflowing_tokens=True,
        add_special_tokens=True,
    )
    windows_ids: list[list[int]] = []
    windows_labels: list[list[int]] = []
    n_tokens = 0
    for ids, offsets, special in zip(
        enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    ):
        labels = label_offsets(char_types, offsets, special)
        if all(label == IGNORE_INDEX for label in labels):
            continue
        windows_ids.append(list(ids))
        windows_labels.append(labels)
        n_tokens += sum(1 for s in special if not s)
    return {
        "input_ids": windows_ids,
        "labels": windows_labels,
        "n_tokens": n_tokens,
        "n_leaves": len(parsed.leaves),
        "error_nodes": parsed.error_nodes + parsed.missing_nodes,
    }


def error_threshold(n_leaves: int, max_error_rate: float) -> float:
    """ERROR/MISSING nodes above which a file counts as unparsable (see ``TTCSettings``)."""
    return max_error_rate * max(n_leaves, 40)


def encode_file(path: str, language: str, tokenizer: Any, settings: TTCSettings) -> dict[str, Any]:
    """One file -> ``{"status", "input_ids", "labels", "n_tokens", "error_nodes", "message"}``.

    ``status`` is ``ok`` or a skip reason (``empty``, ``binary``, ``undecodable``,
    ``too_large``, ``long_line``, ``unparsable``, ``parse_errors``, ``unreadable``) and
    ``message`` names the file and the problem. With ``settings.on_bad_file == 'error'`` an
    unusable file raises :class:`BadSourceError` naming it instead (files with a few parse
    errors follow ``keep_parse_errors``, never an error).
    """
    empty = {"input_ids": [], "labels": [], "n_tokens": 0, "error_nodes": 0}
    n_err = 0
    try:
        text = read_source(
            path, max_bytes=settings.max_file_bytes, max_line_chars=settings.max_line_chars
        )
        out = encode_text(text, language, tokenizer, settings.max_length)
        n_err = out["error_nodes"]
        if n_err > error_threshold(out["n_leaves"], settings.max_error_rate):
            raise BadSourceError(
                path,
                f"unparsable as {language} ({n_err} ERROR/MISSING nodes in "
                f"{out['n_leaves']} leaves, limit {settings.max_error_rate:.0%})",
                "unparsable",
            )
    except BadSourceError as err:
        if settings.on_bad_file == "error":
            raise
        return {**empty, "error_nodes": n_err, "status": err.kind, "message": str(err)}
    if n_err and not settings.keep_parse_errors:
        return {
            **empty,
            "error_nodes": n_err,
            "status": "parse_errors",
            "message": f"{path}: parse errors ({n_err} ERROR/MISSING nodes)",
        }
    return {**out, "status": "ok", "message": ""}


def _encode_batch(batch: dict[str, list], tokenizer: Any, settings: dict) -> dict[str, list]:
    cfg = TTCSettings(**settings)
    cols: dict[str, list] = {
        k: [] for k in ("status", "message", "input_ids", "labels", "n_tokens", "error_nodes")
    }
    for path, language in zip(batch["path"], batch["language"]):
        out = encode_file(path, language, tokenizer, cfg)
        for key in cols:
            cols[key].append(out[key])
    return cols


def _flatten(batch: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {"input_ids": [], "labels": [], "path": []}
    for path, ids, labels in zip(batch["path"], batch["input_ids"], batch["labels"]):
        out["input_ids"].extend(ids)
        out["labels"].extend(labels)
        out["path"].extend([path] * len(ids))
    return out


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of a fast tokenizer's full definition (vocab, merges, normaliser)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(tokenizer)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _files_fingerprint(files: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for path, language in files:
        try:
            st = os.stat(path)
            h.update(f"{path}\0{language}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{path}\0{language}\0missing\n".encode())
    return h.hexdigest()[:16]


def build_ttc_dataset(
    files: list[tuple[str, str]],
    tokenizer: Any,
    settings: TTCSettings,
    *,
    num_proc: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[Any, SourceStats]:
    """TTC windows (a ``datasets.Dataset`` with ``input_ids``, ``labels``, ``path``) and stats.

    Args:
        files: ``(path, language)`` pairs (see :func:`~adapterlab.code.data.sources.find_sources`).
        tokenizer: a *fast* tokenizer (offsets are needed).
        settings: window length and bad-input policy.
        num_proc: worker processes for ``datasets.map`` (None or 1: in process).
        cache_dir: where finished datasets are stored by fingerprint (None: no cache).
        progress: show the ``datasets`` progress bars.
    """
    import datasets

    if settings.on_bad_file not in ("skip", "error"):
        raise ValueError(f"on_bad_file must be 'skip' or 'error', got {settings.on_bad_file!r}")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("TTC alignment needs a fast tokenizer (offset mappings)")
    key = hashlib.sha256(
        json.dumps(
            [
                CACHE_VERSION,
                _files_fingerprint(files),
                tokenizer_fingerprint(tokenizer),
                asdict(settings),
            ]
        ).encode()
    ).hexdigest()[:20]
    target = Path(cache_dir) / f"ttc-{key}" if cache_dir is not None else None
    if target is not None and (target / "stats.json").is_file():
        stats_dict = json.loads((target / "stats.json").read_text())
        stats = SourceStats(
            files=stats_dict["files"],
            kept=stats_dict["kept"],
            skipped=Counter(stats_dict["skipped"]),
            files_with_parse_errors=stats_dict["files_with_parse_errors"],
            error_nodes=stats_dict["error_nodes"],
            skipped_files=stats_dict.get("skipped_files", []),
        )
        return datasets.load_from_disk(str(target / "data")), stats
    if not progress:
        datasets.disable_progress_bars()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    table = datasets.Dataset.from_dict(
        {"path": [p for p, _ in files], "language": [lang for _, lang in files]}
    )
    procs = num_proc if num_proc and num_proc > 1 and len(files) > 1 else None
    per_file = table.map(
        _encode_batch,
        batched=True,
        batch_size=8,
        num_proc=procs,
        fn_kwargs={"tokenizer": tokenizer, "settings": asdict(settings)},
        desc="parse + tokenise + align",
    )
    stats = SourceStats(files=len(files))
    statuses = per_file["status"]
    errors = per_file["error_nodes"]
    for status, n_err, message in zip(statuses, errors, per_file["message"]):
        if status == "ok":
            stats.kept += 1
        else:
            stats.skipped[status] += 1
            stats.skipped_files.append(message)
        if n_err:
            stats.files_with_parse_errors += 1
            stats.error_nodes += n_err
    kept = per_file.filter(lambda s: s == "ok", input_columns="status")
    windows = kept.map(
        _flatten,
        batched=True,
        remove_columns=kept.column_names,
        desc="windows",
    )
    if target is not None:
        from adapterlab.core.engine import atomic_directory

        def write(tmp: Path) -> None:
            windows.save_to_disk(str(Path(tmp) / "data"))
            (Path(tmp) / "stats.json").write_text(
                json.dumps(
                    {
                        **stats.as_dict(),
                        "skipped": dict(stats.skipped),
                        "skipped_files": stats.skipped_files,
                    },
                    indent=2,
                )
            )

        atomic_directory(target, write)
        windows = datasets.load_from_disk(str(target / "data"))
    return windows, stats


def label_counts(labels: Any) -> np.ndarray:
    """Tokens per type over a sequence of label lists (ignored positions left out)."""
    counts = np.zeros(len(TOKEN_TYPES), dtype=np.int64)
    for row in labels:
        arr = np.asarray(row)
        arr = arr[arr >= 0]
        counts += np.bincount(arr, minlength=len(TOKEN_TYPES))
    return counts
