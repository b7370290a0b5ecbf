"""Issue #26: one bad-input error style for every package (DataFileError and the careful readers)."""

from __future__ import annotations

import gzip
import json
import pickle

import pytest
from adapterlab.core.engine import (
    DataFileError,
    SkipCounter,
    iter_jsonl,
    iter_lines,
    open_gzip_text,
    read_json,
    read_text,
)


def test_message_is_one_line_naming_file_line_and_byte(tmp_path):
    p = tmp_path / "x.jsonl"
    assert str(DataFileError(p, "bad")) == f"{p}: bad"
    assert str(DataFileError(p, "bad", line=3)) == f"{p}:3: bad"
    assert str(DataFileError(p, "bad", byte=17)) == f"{p} (byte 17): bad"
    assert str(DataFileError(p, "bad", line=3, byte=17)) == f"{p}:3 (byte 17): bad"
    err = DataFileError(p, "two\nlines  here", line=2)
    assert "\n" not in str(err) and err.problem == "two lines here"
    assert (err.path, err.line, err.byte) == (str(p), 2, None)
    assert isinstance(err, ValueError)


def test_error_survives_pickling_for_worker_processes(tmp_path):
    err = DataFileError(tmp_path / "a.txt", "broken", line=4, byte=9)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DataFileError and str(back) == str(err) and back.line == 4


def test_read_text_names_line_and_byte_of_non_utf8(tmp_path):
    p = tmp_path / "nodes.txt"
    p.write_bytes(b"id,text\n1,ok\n2,caf\xe9\n")
    with pytest.raises(DataFileError) as info:
        read_text(p)
    assert (info.value.line, info.value.byte) == (3, 18)
    assert str(info.value).startswith(f"{p}:3 (byte 18): not valid utf-8")
    assert read_text(p, encoding="latin-1").endswith("café\n")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(DataFileError, match="is a directory"):
        list(iter_lines(tmp_path))


def test_iter_lines_splits_on_newline_only(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("a\fb\u2028c\r\nd\u2029e\nlast".encode())
    assert list(iter_lines(p)) == [(1, "a\fb\u2028c"), (2, "d\u2029e"), (3, "last")]


def test_iter_lines_non_utf8_names_line_and_absolute_byte(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"ok\nfine\nab\xffc\n")
    with pytest.raises(DataFileError) as info:
        list(iter_lines(p))
    assert (info.value.line, info.value.byte) == (3, 10)


def test_iter_lines_refuses_overlong_line_before_reading_it(tmp_path):
    p = tmp_path / "big.py"
    p.write_bytes(b"x = 1\r\n" + b"y" * 5000 + b"\nz\n")
    assert [n for n, _ in iter_lines(p, max_line_bytes=5000)] == [1, 2, 3]
    with pytest.raises(DataFileError, match=r":2 \(byte 7\): line longer than 4999 bytes"):
        list(iter_lines(p, max_line_bytes=4999))


def test_iter_jsonl_names_the_malformed_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n')
    rows = []
    with pytest.raises(DataFileError) as info:
        for number, row in iter_jsonl(p):
            rows.append((number, row))
    assert rows == [(1, {"a": 1}), (3, {"a": 2})]
    assert info.value.line == 4 and "malformed JSON" in str(info.value)
    p.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataFileError, match=r":2: expected a JSON object, got list"):
        list(iter_jsonl(p))
    assert list(iter_jsonl(p, require_object=False))[1] == (2, [1, 2])


def test_read_json_names_line(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(DataFileError, match=r"a\.json:4: malformed JSON"):
        read_json(p)
    p.write_text(json.dumps({"a": [1]}))
    assert read_json(p) == {"a": [1]}


def test_truncated_gzip_is_one_line_naming_the_file(tmp_path):
    p = tmp_path / "edges.csv.gz"
    data = gzip.compress(("src,dst\n" + "1,2\n" * 2000).encode())
    p.write_bytes(data[: len(data) // 2])
    with (
        pytest.raises(DataFileError, match=r"edges\.csv\.gz: truncated gzip file"),
        open_gzip_text(p) as fh,
    ):
        fh.read()
    with pytest.raises(DataFileError, match="truncated gzip"):
        list(iter_lines(p))
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match="corrupt gzip"):
        read_text(p)
    p.write_bytes(gzip.compress(b"src,dst\r\n1,2\r\n"))
    with open_gzip_text(p) as fh:
        assert fh.read() == "src,dst\r\n1,2\r\n"
    assert list(iter_lines(p)) == [(1, "src,dst"), (2, "1,2")]


def test_skip_counter_counts_names_and_reraises_when_not_skipping(tmp_path):
    errors = [DataFileError(tmp_path / f"{i}.wav", "empty file") for i in range(7)]
    skipped = SkipCounter(what="bad clips", show=2)
    for err in errors:
        skipped.add(err)
    assert skipped.count == len(skipped) == 7
    line = skipped.summary()
    assert line.startswith("skipped 7 bad clips: ") and line.endswith("; and 5 more")
    assert str(errors[0]) in line and str(errors[2]) not in line
    assert skipped.to_json()["skipped"][6] == str(errors[6])
    assert SkipCounter().summary() == ""
    with pytest.raises(DataFileError):
        SkipCounter(skip=False).add(errors[0])
