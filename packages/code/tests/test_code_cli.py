"""The ``adapterlab-code`` command line: help, usage errors (2), one-line errors (1), prepare."""

from __future__ import annotations

import json

from adapterlab.code.cli import main


def test_help_and_usage(capsys):
    assert main(["--help"]) == 0
    assert "run-all" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["nonsense"]) == 2


def test_errors_are_one_line(tmp_path, capsys):
    code = main(["train", "--model", "tiny", "--data", str(tmp_path / "missing")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "train.jsonl not found" in err
    code = main(["ttc", "--model", str(tmp_path)])  # a folder that is not a model
    err = capsys.readouterr().err.strip()
    assert code == 1 and "is not a model folder" in err


def test_prepare_on_a_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"m{i}.py").write_text(
            f'def f{i}(x):\n    """Return x plus {i} always."""\n    return x + {i}\n'
        )
    (src / "empty.py").write_text("")
    out = tmp_path / "out"
    code = main(["prepare", "--source", str(src), "--out", str(out), "--model", "tiny",
                 "--num_proc", "1"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "prepare.json").read_text())
    total = {k: sum(s.get(k, 0) for s in report["ttc"].values()) for k in ("files", "kept")}
    assert total["files"] - total["kept"] == 1  # (a split too small to exist borrows a file)
    assert sum(s.get("skipped_empty", 0) for s in report["ttc"].values()) == 1
    summaries = report["summarization"]
    assert summaries["train"] + summaries["valid"] + summaries["test"] == 3
    assert summaries["skipped_files"] == 1  # empty.py, counted (and named on stderr)
    assert (out / "refinement" / "train.buggy-fixed.buggy").is_file()
    capsys.readouterr()
