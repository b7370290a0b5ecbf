"""CodeXGLUE scoring, exactly: untouched references and the official prediction-file formats,
read back with the official evaluators' logic (code-to-text ``bleu.py``'s ``computeMaps`` /
``bleuFromMaps``; code-refinement ``evaluator.py``)."""

from __future__ import annotations

import re

import pytest
import torch
from adapterlab.code.bleu import corpus_bleu, smoothed_bleu4
from adapterlab.code.data.codexglue import Pair
from adapterlab.code.task import prediction_files, seq2seq_metric_fn
from adapterlab.code.train import task_references


def _split_puncts(line: str) -> str:
    return " ".join(re.findall(r"[\w]+|[^\s\w]", line))


def official_code_to_text(prediction_lines: list[str], gold_lines: list[str]) -> float:
    """CodeXGLUE ``Code-Text/code-to-text/evaluator/bleu.py`` (``computeMaps`` then
    ``bleuFromMaps(...)[0]``) on the lines of the two files; its ``bleu()`` is
    ``smoothed_bleu4`` (tested equal to it in test_code_bleu)."""
    predictions, gold = {}, {}
    for row in prediction_lines:
        cols = row.strip().split("\t")
        rid, pred = (cols[0], "") if len(cols) == 1 else (cols[0], cols[1])
        predictions[rid] = [_split_puncts(pred.strip().lower())]
    for row in gold_lines:
        rid, ref = row.split("\t")  # exactly one tab per gold line, or the script fails
        if rid in predictions:
            gold.setdefault(rid, []).append(_split_puncts(ref.strip().lower()))
    scores = [smoothed_bleu4(gold[k], predictions[k][0]) for k in gold if k in predictions]
    return 100.0 * sum(scores) / len(scores)


def official_refinement(prediction_lines: list[str], gold_lines: list[str]) -> dict[str, float]:
    """CodeXGLUE ``Code-Code/code-refinement/evaluator/evaluator.py``: stripped lines, aligned;
    accuracy = exact line equality; BLEU = ``_bleu`` (smoothed corpus BLEU-4 over whitespace
    tokens, ``corpus_bleu`` tested equal to it)."""
    refs = [x.strip() for x in gold_lines]
    preds = [x.strip() for x in prediction_lines]
    assert len(refs) == len(preds)
    exact = 100.0 * sum(r == p for r, p in zip(refs, preds)) / len(refs)
    return {"exact_match": exact, "bleu": corpus_bleu(refs, preds)}


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1]  # what readlines() gives, without the line ends


def _ids(tokenizer, text: str, keep: int | None = None) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[:keep] if keep is not None else ids


def _outputs(tokenizer, texts: list[list[int]]) -> dict[str, torch.Tensor]:
    width = max(len(t) for t in texts)
    pad = tokenizer.pad_token_id
    rows = [t + [pad] * (width - len(t)) for t in texts]
    return {"pred_ids": torch.tensor(rows), "index": torch.arange(len(texts))}


def test_refinement_scored_against_untouched_references(bpe_tokenizer):
    """A prediction equal to the reference *truncated* to the target length is not an exact
    match; the full reference is. The gold file holds the untouched references."""
    long = " ".join(["if ( VAR_1 == null ) { return VAR_2 ; }"] * 20)  # ~200 subwords
    short = "return VAR_1 ;"
    pairs = [Pair("buggy a", long), Pair("buggy b", long), Pair("buggy c", short)]
    refs = task_references(pairs)
    assert refs == [long, long, short]
    truncated = _ids(bpe_tokenizer, long, 126)  # CodeXGLUE's 128-token target minus specials
    preds = [truncated, _ids(bpe_tokenizer, long), _ids(bpe_tokenizer, short)]
    sink: list = []
    metrics = seq2seq_metric_fn("refinement", bpe_tokenizer, refs, sink=sink)(
        _outputs(bpe_tokenizer, preds)
    )
    assert metrics["exact_match"] == pytest.approx(200 / 3)
    files = prediction_files("refinement", sink, refs)
    assert _lines(files["gold"]) == [long, long, short]
    official = official_refinement(_lines(files["predictions"]), _lines(files["gold"]))
    assert official["exact_match"] == pytest.approx(metrics["exact_match"])
    assert official["bleu"] == pytest.approx(metrics["bleu"])


def test_prediction_files_read_by_the_official_evaluators(bpe_tokenizer):
    """Each task's files in its official format (summarization ``idx<TAB>text``; refinement one
    line per example, aligned), line breaks and tabs inside a prediction kept on its line, and
    the official evaluators' scores on the files equal the reported ones."""
    summaries = ["Return the sum.", "Open a\tfile", "Compute x-1 and stop!", "Get it"]
    predicted = ["return the sum", "open\na file", "compute\tx - 1", ""]
    outputs = _outputs(bpe_tokenizer, [_ids(bpe_tokenizer, p) or [2] for p in predicted])
    outputs["index"] = torch.tensor([2, 0, 3, 1])  # batches arrive in any order
    sink: list = []
    metrics = seq2seq_metric_fn("summarization", bpe_tokenizer, summaries, sink=sink)(outputs)
    files = prediction_files("summarization", sink, summaries)
    lines = _lines(files["predictions"])
    assert [row.split("\t")[0] for row in lines] == ["0", "1", "2", "3"]
    assert all(row.count("\t") == 1 for row in lines + _lines(files["gold"]))
    score = official_code_to_text(lines, _lines(files["gold"]))
    assert score == pytest.approx(metrics["bleu"]) and score > 0

    fixed = ["a = b ;", "return c ;", "x ( ) ;"]
    predicted = ["a = b ;", "return\nc ;", "y ( ) ;"]
    outputs = _outputs(bpe_tokenizer, [_ids(bpe_tokenizer, p) for p in predicted])
    sink = []
    metrics = seq2seq_metric_fn("refinement", bpe_tokenizer, fixed, sink=sink)(outputs)
    files = prediction_files("refinement", sink, fixed)
    assert len(_lines(files["predictions"])) == 3 and "\t" not in files["predictions"][:2]
    official = official_refinement(_lines(files["predictions"]), _lines(files["gold"]))
    assert official == pytest.approx(metrics) and metrics["exact_match"] == pytest.approx(200 / 3)
