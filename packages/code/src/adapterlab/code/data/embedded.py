"""The embedded default: the CPython standard library of the running interpreter.

- TTC data: its ``.py`` modules (tests, IDLE, demos and bundled packages left out);
- code summarization: every function with a docstring -> the docstring's first line, written as a
  CodeXGLUE code-to-text folder (``python/{train,valid,test}.jsonl`` with ``code_tokens`` /
  ``docstring_tokens``; the code tokens leave out the docstring and comments, as CodeSearchNet's);
- code refinement: small synthetic buggy/fixed Java method pairs in CodeXGLUE's abstracted form
  (``{split}.buggy-fixed.{buggy,fixed}``), since no real Java corpus ships offline.

Splits are by *module* (a hash of the top-level module name), so test functions come from
modules never seen in training.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from .sources import BadSourceError, read_source, stdlib_root
from .token_types import TYPE_TO_ID, get_parser, parse_leaves

__all__ = [
    "function_summaries",
    "module_split",
    "split_files",
    "stdlib_files",
    "write_refinement",
    "write_summarization",
]

_EXCLUDED_DIRS = {
    "test",
    "tests",
    "idlelib",
    "turtledemo",
    "site-packages",
    "dist-packages",
    "lib2to3",
    "ensurepip",
    "__pycache__",
    "config-3",
}
_DOC_TOKEN = re.compile(r"\w+|[^\w\s]")


def module_split(module: str, valid_share: int = 1, test_share: int = 1) -> str:
    """``train`` / ``valid`` / ``test`` from a hash of the module name (10 buckets)."""
    bucket = int(hashlib.sha1(module.encode()).hexdigest(), 16) % 10
    if bucket < test_share:
        return "test"
    if bucket < test_share + valid_share:
        return "valid"
    return "train"


def _module_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    return rel.parts[0].removesuffix(".py")


def stdlib_files(root: str | Path | None = None, max_bytes: int = 200_000) -> list[Path]:
    """Standard-library ``.py`` files (sorted), without tests, IDLE, demos, bundled packages and
    files over ``max_bytes``."""
    root = Path(root) if root is not None else stdlib_root()
    if not root.is_dir():
        raise FileNotFoundError(f"standard library folder {root} not found")
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(part in _EXCLUDED_DIRS or part.startswith("config-") for part in rel[:-1]):
            continue
        if rel[-1].startswith("test_") or path.stat().st_size > max_bytes:
            continue
        out.append(path)
    if not out:
        raise ValueError(f"no Python sources under {root}")
    return out


def split_files(files: list[Path], root: str | Path) -> dict[str, list[Path]]:
    """Files grouped by :func:`module_split` of their top-level module."""
    root = Path(root)
    groups: dict[str, list[Path]] = {"train": [], "valid": [], "test": []}
    for path in files:
        groups[module_split(_module_of(path, root))].append(path)
    return groups


def _first_line(node: Any) -> str | None:
    try:
        value = ast.literal_eval(node.text.decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, str):
        return None
    for line in value.strip().splitlines():
        if line.strip():
            return line.strip()
    return None


def _functions(tree: Any) -> list[Any]:
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "function_definition":
            found.append(node)
        stack.extend(reversed(node.children))
    return found


def function_summaries(
    path: Path, rel: str, *, min_doc: int = 3, max_doc: int = 20, max_code: int = 256
) -> list[dict[str, Any]]:
    """CodeXGLUE code-to-text records for the documented functions of one Python file.

    Raises:
        BadSourceError: the file is unusable (empty, binary, undecodable, over the per-file
            size or line-length limit), naming it.
    """
    text = read_source(path)
    source = text.encode("utf-8")
    tree = get_parser("python").parse(source)
    leaves = parse_leaves(source, "python").leaves
    starts = [leaf.start for leaf in leaves]
    records = []
    for func in _functions(tree):
        body = func.child_by_field_name("body")
        name = func.child_by_field_name("name")
        if body is None or name is None or not body.named_children:
            continue
        first = body.named_children[0]
        if first.type != "expression_statement" or not first.named_children:
            continue
        doc_node = first.named_children[0]
        if doc_node.type != "string":
            continue
        line = _first_line(doc_node)
        if line is None:
            continue
        doc_tokens = _DOC_TOKEN.findall(line)
        if not min_doc <= len(doc_tokens) <= max_doc:
            continue
        lo = bisect.bisect_left(starts, func.start_byte)
        hi = bisect.bisect_left(starts, func.end_byte)
        code_tokens = [
            source[leaf.start : leaf.end].decode("utf-8")
            for leaf in leaves[lo:hi]
            if not doc_node.start_byte <= leaf.start < doc_node.end_byte
            and leaf.type_id != TYPE_TO_ID["comment"]
        ]
        if len(code_tokens) > max_code:
            continue
        code = func.text.decode("utf-8")
        records.append(
            {
                "repo": "python/cpython-stdlib",
                "path": rel,
                "func_name": name.text.decode("utf-8"),
                "original_string": code,
                "language": "python",
                "code": code,
                "code_tokens": code_tokens,
                "docstring": line,
                "docstring_tokens": doc_tokens,
                "url": f"stdlib://{rel}#L{func.start_point[0] + 1}",
            }
        )
    return records


def write_summarization(
    out: str | Path,
    *,
    root: str | Path | None = None,
    max_per_split: dict[str, int] | None = None,
    max_code: int = 256,
) -> dict[str, int]:
    """Write ``<out>/python/{train,valid,test}.jsonl`` from the Python files under ``root``
    (default: the standard library), split by module; returns examples per split and
    ``skipped_files`` (unusable files, each named on stderr).

    ``max_per_split`` caps each split: files are read in a fixed hash order until it is full.
    """
    from adapterlab.core.engine import atomic_write_text

    root = Path(root) if root is not None else stdlib_root()
    files = stdlib_files(root)
    groups = split_files(files, root)
    counts: dict[str, int] = {}
    skipped: list[str] = []
    folder = Path(out) / "python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, paths in groups.items():
        limit = (max_per_split or {}).get(split)
        # a fixed pseudo-random file order, so a capped split still mixes many modules
        paths = sorted(
            paths, key=lambda p: hashlib.sha1(str(p.relative_to(root)).encode()).digest()
        )
        records: list[dict[str, Any]] = []
        for path in paths:
            if limit is not None and len(records) >= limit:
                break
            rel = str(path.relative_to(root))
            try:
                records.extend(function_summaries(path, rel, max_code=max_code))
            except BadSourceError as err:  # counted and named, never silently dropped
                skipped.append(str(err))
        records = records[:limit] if limit is not None else records
        for record in records:
            record["partition"] = split
        atomic_write_text(folder / f"{split}.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        counts[split] = len(records)
    counts["skipped_files"] = len(skipped)
    if skipped:
        more = f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else ""
        print(
            f"summaries: skipped {len(skipped)} files: {'; '.join(skipped[:3])}{more}",
            file=sys.stderr,
        )
    return counts


# ---------------------------------------------------------------------------- refinement
_COMPARE_FIX = {"<": "<=", ">": ">=", "<=": "<", ">=": ">", "==": "!=", "!=": "=="}


def _java_method(rng: random.Random) -> tuple[str, str]:
    """One abstracted Java method and a buggy copy (one seeded mistake)."""
    ret = rng.choice(["int", "boolean", "TYPE_1", "void"])
    var, arg, field = "VAR_1", "VAR_2", "VAR_3"
    op = rng.choice(list(_COMPARE_FIX))
    body = [
        f"if ( {arg} {op} INT_{rng.randint(1, 3)} ) {{ return {var} ; }}",
        f"{var} = {arg} . METHOD_{rng.randint(2, 4)} ( ) ;",
        f"this . {field} = {var} ;",
        f"for ( int i = 0 ; i < {arg} . size ( ) ; i ++ ) {{ {var} += i ; }}",
    ]
    rng.shuffle(body)
    body = body[: rng.randint(2, 4)]
    tail = "" if ret == "void" else f" return {var} ;"
    fixed = (
        f"public {ret} METHOD_1 ( TYPE_2 {arg} ) {{ {' '.join(body)}{tail} }}"
        if ret != "void"
        else f"public void METHOD_1 ( TYPE_2 {arg} ) {{ {' '.join(body)} }}"
    )
    kind = rng.choice(["compare", "return", "null"])
    if kind == "compare" and f" {op} " in fixed:
        buggy = fixed.replace(f" {op} ", f" {_COMPARE_FIX[op]} ", 1)
    elif kind == "return" and tail:
        buggy = fixed.replace(f"return {var} ; }}", f"return {arg} ; }}")
        if buggy == fixed:
            buggy = fixed.replace(tail, " return null ;")
    else:
        buggy = fixed.replace(f"this . {field} = {var} ;", f"{field} = null ;")
        if buggy == fixed:
            buggy = fixed.replace("{ ", "{ if ( VAR_2 == null ) return ; ", 1)
    return buggy, fixed


def write_refinement(out: str | Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write a small synthetic code-refinement folder in CodeXGLUE's layout; returns it."""
    from adapterlab.core.engine import atomic_write_text

    sizes = sizes or {"train": 400, "valid": 50, "test": 50}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, n in sizes.items():
        pairs = [_java_method(rng) for _ in range(n)]
        atomic_write_text(
            folder / f"{split}.buggy-fixed.buggy", "".join(b + "\n" for b, _ in pairs)
        )
        atomic_write_text(
            folder / f"{split}.buggy-fixed.fixed", "".join(f + "\n" for _, f in pairs)
        )
    return folder
