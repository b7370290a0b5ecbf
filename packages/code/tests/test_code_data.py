"""Preprocessing over folders (parallel, cached), bad input, CodeXGLUE layouts, embedded data."""

from __future__ import annotations

import json

import pytest
from adapterlab.code.data.codexglue import load_code_to_text, load_refinement
from adapterlab.code.data.embedded import function_summaries, module_split, write_refinement
from adapterlab.code.data.sources import BadSourceError, find_sources
from adapterlab.code.data.ttc import TTCSettings, build_ttc_dataset, label_counts


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("def f(x):\n    return x + 1\n")
    (tmp_path / "pkg" / "B.java").write_text("class B { int g() { return 2; } }\n")
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n    return )\n")
    (tmp_path / "empty.py").write_text("  \n")
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.java").write_bytes('class C { String s = "caf\xe9"; }'.encode("latin-1"))
    (tmp_path / "notes.txt").write_text("not code")
    return tmp_path


def test_find_sources_by_extension(folder):
    found = find_sources(folder)
    names = sorted(p.rsplit("/", 1)[-1] for p, _ in found)
    assert names == ["B.java", "a.py", "blob.py", "broken.py", "empty.py", "latin1.java"]
    assert {lang for _, lang in find_sources(folder, ["java"])} == {"java"}
    with pytest.raises(FileNotFoundError):
        find_sources(folder / "missing")
    with pytest.raises(ValueError, match="no source files"):
        find_sources(folder / "notes.txt")


def test_bad_files_skipped_and_counted(folder, bpe_tokenizer):
    files = find_sources(folder)
    data, stats = build_ttc_dataset(files, bpe_tokenizer, TTCSettings(max_length=64))
    assert stats.files == 6 and stats.kept == 3
    assert dict(stats.skipped) == {"empty": 1, "binary": 1, "undecodable": 1}
    assert stats.files_with_parse_errors == 1 and stats.error_nodes >= 1
    assert sorted({p.rsplit("/", 1)[-1] for p in data["path"]}) == ["B.java", "a.py", "broken.py"]
    strict, stats2 = build_ttc_dataset(
        files, bpe_tokenizer, TTCSettings(max_length=64, keep_parse_errors=False)
    )
    assert stats2.kept == 2 and stats2.skipped["parse_errors"] == 1
    assert "broken.py" not in " ".join(strict["path"])


@pytest.mark.parametrize(
    "name,problem", [("empty.py", "empty"), ("blob.py", "binary"), ("latin1.java", "undecodable")]
)
def test_bad_file_error_names_it(folder, bpe_tokenizer, name, problem):
    files = [(str(folder / name), "python" if name.endswith(".py") else "java")]
    with pytest.raises(BadSourceError, match=rf"{name}(:\d+)?( \(byte \d+\))?: {problem}"):
        build_ttc_dataset(files, bpe_tokenizer, TTCSettings(on_bad_file="error"))


def test_parallel_equals_serial_and_cache(folder, bpe_tokenizer, tmp_path_factory):
    files = find_sources(folder / "pkg")
    cache = tmp_path_factory.mktemp("cache")
    serial, _ = build_ttc_dataset(files, bpe_tokenizer, TTCSettings(max_length=32))
    parallel, stats = build_ttc_dataset(
        files, bpe_tokenizer, TTCSettings(max_length=32), num_proc=2, cache_dir=cache
    )
    assert serial["input_ids"] == parallel["input_ids"] and serial["labels"] == parallel["labels"]
    entries = list(cache.iterdir())
    assert len(entries) == 1 and (entries[0] / "stats.json").is_file()
    again, stats_again = build_ttc_dataset(
        files, bpe_tokenizer, TTCSettings(max_length=32), cache_dir=cache
    )
    assert again["labels"] == parallel["labels"] and stats_again.as_dict() == stats.as_dict()
    assert len(list(cache.iterdir())) == 1  # loaded, not rebuilt
    build_ttc_dataset(files, bpe_tokenizer, TTCSettings(max_length=48), cache_dir=cache)
    assert len(list(cache.iterdir())) == 2  # other settings -> another entry; none deleted
    assert label_counts(again["labels"]).sum() > 0


def test_code_to_text_layout(tmp_path):
    good = {"code_tokens": ["def", "f", "(", ")"], "docstring_tokens": ["Do", "it", "."]}
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + "{not json\n" + json.dumps({"code_tokens": []}) + "\n"
    )
    with pytest.raises(ValueError, match=r"train\.jsonl:2: malformed"):
        load_code_to_text(tmp_path, "train")
    loaded = load_code_to_text(tmp_path, "train", skip_bad=True)
    assert loaded.skipped == 2 and loaded.pairs[0].source == "def f ( )"
    assert [m.split("train.jsonl")[1][:3] for m in loaded.skipped_lines] == [":2:", ":3:"]
    assert loaded.pairs[0].target == "Do it ."
    with pytest.raises(FileNotFoundError, match="valid.jsonl"):
        load_code_to_text(tmp_path, "valid")


def test_refinement_layout(tmp_path):
    root = write_refinement(tmp_path / "ref", {"train": 20, "valid": 5, "test": 5})
    pairs = load_refinement(root, "train").pairs
    assert len(pairs) == 20 and all(p.source != p.target for p in pairs)
    (root / "test.buggy-fixed.fixed").write_text("only one line\n")
    with pytest.raises(ValueError, match="inconsistent refinement split"):
        load_refinement(root, "test")


def test_stdlib_summaries_and_module_split(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        'def add(a, b):\n    """Add two numbers together.\n\n    More text.\n    """\n'
        "    # comment\n    return a + b\n\ndef nodoc():\n    return 1\n"
    )
    (record,) = function_summaries(src, "mod.py")
    assert record["docstring_tokens"] == ["Add", "two", "numbers", "together", "."]
    assert record["code_tokens"] == ["def", "add", "(", "a", ",", "b", ")", ":", "return", "a", "+", "b"]  # fmt: skip
    assert module_split("os") == module_split("os") and {
        module_split(f"m{i}") for i in range(50)
    } == {"train", "valid", "test"}


def test_oversized_binary_and_unparsable_files_are_skipped_and_named(tmp_path, bpe_tokenizer):
    """#26 / #22: a huge single-line file, a NUL byte past the first 8 KiB and random text named
    .java never become windows: each is skipped, counted under its reason and named; a file
    with one syntax error is still kept (and counted as having parse errors)."""
    good = "def f(x):\n    return x + 1\n"
    (tmp_path / "ok.py").write_text(good)
    (tmp_path / "broken.py").write_text("def f(:\n    return )\n")
    (tmp_path / "one_line.py").write_text("x = [" + "1, " * 20_000 + "]\n")  # 60 KB, one line
    (tmp_path / "huge.py").write_bytes(b"y = 0\n" * 200_000)  # 1.2 MB: never read
    (tmp_path / "late_nul.py").write_bytes(good.encode() * 400 + b"\x00")  # NUL at byte 10,800
    words = [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "that",
        "with",
        "as",
        "by",
        "it",
        "at",
        "from",
        "an",
        "were",
        "are",
    ]
    text = "".join(
        " ".join(words[(i * 7 + j) % len(words)] for j in range(10)) + ".\n" for i in range(30)
    )
    (tmp_path / "Notes.java").write_text(text)
    files = find_sources(tmp_path)
    data, stats = build_ttc_dataset(files, bpe_tokenizer, TTCSettings(max_length=64))
    assert dict(stats.skipped) == {"long_line": 1, "too_large": 1, "binary": 1, "unparsable": 1}
    assert sorted({p.rsplit("/", 1)[-1] for p in data["path"]}) == ["broken.py", "ok.py"]
    assert stats.files_with_parse_errors >= 2  # broken.py (kept) and Notes.java (skipped)
    named = " | ".join(stats.skipped_files)
    for name in ("one_line.py", "huge.py", "late_nul.py", "Notes.java"):
        assert str(tmp_path / name) in named
    assert "one_line.py:1: long line (60,006 characters" in named
    assert f"late_nul.py:801 (byte {27 * 400}): binary" in named
    with pytest.raises(BadSourceError, match=r"Notes\.java: unparsable as java"):
        build_ttc_dataset(
            [(str(tmp_path / "Notes.java"), "java")],
            bpe_tokenizer,
            TTCSettings(on_bad_file="error"),
        )
    # limits are settings: lifted, the long line is kept (as several windows)
    _, lifted = build_ttc_dataset(
        [(str(tmp_path / "one_line.py"), "python")],
        bpe_tokenizer,
        TTCSettings(max_length=64, max_line_chars=None),
    )
    assert lifted.kept == 1


def test_codexglue_files_split_on_newlines_only_and_name_bad_bytes(tmp_path):
    """#22 / #26: a form feed, U+2028 or U+2029 inside a refinement line does not shift the
    buggy/fixed pairs; a code-to-text jsonl with non-UTF-8 bytes is one error naming the file
    and the line (not a bare UnicodeDecodeError)."""
    from adapterlab.core.engine import DataFileError

    buggy = ["a ( ) ;\fb ( ) ;", "c\u2028d ;", "e\u2029f ;", "g ;"]
    fixed = ["a ( ) ; b ( ) ;", "c d ;", "e f ;", "g ( ) ;"]
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.buggy-fixed.buggy").write_text("\n".join(buggy) + "\n")
        (tmp_path / f"{split}.buggy-fixed.fixed").write_text("\r\n".join(fixed) + "\r\n")
    pairs = load_refinement(tmp_path, "test").pairs
    assert [(p.source, p.target) for p in pairs] == list(zip(buggy, fixed))
    good = json.dumps({"code_tokens": ["def", "f"], "docstring_tokens": ["Do", "it"]})
    (tmp_path / "train.jsonl").write_bytes(
        (good + "\n" + good + "\n").encode() + b'{"code_tokens": ["caf\xe9"]}\n'
    )
    with pytest.raises(DataFileError, match=r"train\.jsonl:3 \(byte \d+\): not valid utf-8"):
        load_code_to_text(tmp_path, "train")
    with pytest.raises(DataFileError, match=r"train\.jsonl:3"):
        load_code_to_text(tmp_path, "train", skip_bad=True)  # bad bytes are never skipped
