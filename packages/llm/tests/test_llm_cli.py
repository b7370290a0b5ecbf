"""The CLI: bad input is one line naming the file and line (exit 1); usage errors exit 2."""

from __future__ import annotations

import json

from adapterlab.llm.cli import main


def test_missing_answer_field_is_one_line_with_file_and_line(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    recs = [{"instruction": "Q", "input": "", "output": "The answer is 1.", "answer": "1"}] * 3
    recs.append({"instruction": "Q", "input": "", "output": "The answer is 2."})
    (root / "math_10k.json").write_text(json.dumps(recs, indent=1))
    code = main(["adapt", "--model", "tiny-llama", "--data", str(root), "--test_set", "gsm8k"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "math_10k.json:20" in err and "'answer'" in err


def test_unknown_method_and_usage(capsys):
    assert main(["adapt", "--model", "tiny-llama", "--method", "ia3"]) == 1
    assert "unknown method 'ia3'" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["nope"]) == 2
