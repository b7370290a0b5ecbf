"""Prompt template, answer extraction (on the release's own examples), data loaders and the
embedded tasks."""

from __future__ import annotations

import json

import pytest
from adapterlab.core.engine import DataFileError
from adapterlab.llm.answers import extract_letter, extract_number, extract_option, is_correct_number
from adapterlab.llm.data.alpaca import load_examples
from adapterlab.llm.data.arith import TEST_TEMPLATES, TRAIN_TEMPLATES, make_arith
from adapterlab.llm.data.documents import load_documents
from adapterlab.llm.data.wordnet_mc import make_wordnet_mc, parse_hyponyms
from adapterlab.llm.prompts import eval_prompt, train_text

P = " " * 16


def test_release_templates_byte_for_byte():
    # finetune.py: the f-string's indentation and the lint comment are in the text
    prompt, out = train_text("Add 2 and 3.", "", "5", style="release")
    assert prompt + out == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.  #" + " noqa: E501\n\n"
        f"{P}### Instruction:\n{P}Add 2 and 3.\n{P}\n{P}### Response:\n{P}5"
    )
    with_input, _ = train_text("Q", "ctx", "A", style="release")
    assert f"{P}### Input:\n{P}ctx\n{P}\n{P}### Response:\n{P}" in with_input
    # commonsense_evaluate.py: a space after "request.", empty blank lines, 16 spaces at the end
    assert eval_prompt("Q", style="release") == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        f"completes the request. \n\n{P}### Instruction:\n{P}Q\n\n{P}### Response:\n{P}"
    )


def test_alpaca_template_is_the_same_in_training_and_evaluation():
    prompt, _ = train_text("Q", "", "A")
    assert prompt == eval_prompt("Q")
    assert prompt.endswith("### Instruction:\nQ\n\n### Response:\n") and "noqa" not in prompt
    assert "### Input:\nctx\n\n" in eval_prompt("Q", "ctx")


def test_number_extraction_on_release_examples():
    # Math10K outputs end "The answer is N."; the release takes the last number, commas removed
    text = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether. The answer is 72."
    assert extract_number(text) == 72.0
    assert is_correct_number(text, "72.0")
    assert extract_number("The answer is 1,234.") == 1234.0
    assert extract_number("-3 degrees") == -3.0
    assert not is_correct_number("no number here", "5")  # the release crashes or uses inf
    assert not is_correct_number("The answer is 7.", "7.01")


def test_letter_extraction_release_bug_and_fix():
    text = "Answer: (C) 12"
    assert extract_letter(text, release=True) == "A"  # the "A" of "Answer" (release behaviour)
    assert extract_letter(text) == "C"
    assert extract_letter("none") == ""


def test_option_extraction_first_option_word():
    assert extract_option("the correct answer is answer2", "ARC-Easy") == "answer2"
    assert extract_option("the correct answer is true", "boolq") == "true"
    assert extract_option("solution2 because solution1 fails", "piqa") == "solution2"
    assert extract_option("the correct answer is ending4", "hellaswag") == "ending4"
    assert extract_option("no idea", "winogrande") == ""


def _write(path, records):
    path.write_text(json.dumps(records, indent=4))
    return path


def test_loader_reads_the_released_layout(tmp_path):
    recs = [
        {"instruction": "Q1", "input": "", "output": "The answer is 3.", "answer": "3"},
        {"instruction": "Q2", "input": "x", "output": "The answer is 4.", "answer": 4},
    ]
    ex = load_examples(_write(tmp_path / "math_10k.json", recs))
    assert [(e.instruction, e.input, e.answer) for e in ex] == [("Q1", "", "3"), ("Q2", "x", "4")]
    assert ex[1].where.endswith("math_10k.json:8")


def test_missing_answer_names_file_and_line(tmp_path):
    recs = [
        {"instruction": "Q1", "input": "", "output": "o", "answer": "1"},
        {"instruction": "Q2", "input": "", "output": "o"},
    ]
    path = _write(tmp_path / "train.json", recs)
    with pytest.raises(DataFileError) as err:
        load_examples(path)
    assert err.value.line == 8 and "'answer'" in str(err.value) and "train.json:8" in str(err.value)


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"instruction": "Q", "answer": "1"}\n{"instruction": "Q2", "answer": \n')
    with pytest.raises(DataFileError) as err:
        load_examples(path, need_output=False)
    assert err.value.line == 2 and "test.jsonl:2" in str(err.value)


def test_malformed_json_list_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '[\n {"instruction": "Q", "output": "o", "answer": "1"},\n {"instruction": oops}\n]\n'
    )
    with pytest.raises(DataFileError) as err:
        load_examples(path)
    assert err.value.line == 3


def test_arith_train_and_test_templates_are_disjoint():
    train, test = make_arith(40, 20, seed=1)
    assert {t.name for t in TRAIN_TEMPLATES}.isdisjoint({t.name for t in TEST_TEMPLATES})
    assert not {e.instruction for e in train} & {e.instruction for e in test}
    for e in train + test:
        assert e.output.endswith(f"The answer is {e.answer}.")
        assert is_correct_number(e.output, e.answer)
    stems = lambda xs: {" ".join(e.instruction.split()[:3]) for e in xs}  # noqa: E731
    assert stems(train).isdisjoint(stems(test))


DATA_NOUN = """  1 This software and database is being provided
00001740 03 n 01 entity 0 000 | that which exists
00002000 05 n 01 animal 0 001 @ 00001740 n 0000 | a living organism
00002100 05 n 01 dog 0 001 @ 00002000 n 0000 | a canine
00002200 05 n 01 cat 0 001 @ 00002000 n 0000 | a feline
00002300 05 n 01 horse 0 001 @ 00002000 n 0000 | an equine
00002400 06 n 01 tool 0 001 @ 00001740 n 0000 | an implement
00002500 06 n 01 hammer 0 001 @ 00002400 n 0000 | a tool
00002600 06 n 01 saw 0 001 @ 00002400 n 0000 | a cutting tool
00002700 06 n 01 drill 0 001 @ 00002400 n 0000 | a boring tool
00002800 13 n 01 bread 0 000 | food
00002900 13 n 01 rice 0 000 | grain
00003000 13 n 01 cheese 0 000 | dairy
"""


def test_wordnet_parse_and_multiple_choice(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(DATA_NOUN)
    children, lex = parse_hyponyms(path)
    assert sorted(children["animal"]) == ["cat", "dog", "horse"] and lex["hammer"] == 6
    train, test = make_wordnet_mc(6, 4, seed=0, data_noun=path)
    for e in train + test:
        k = int(e.answer[-1])
        category = e.instruction.split("a kind of ")[1].split("?")[0]
        chosen = e.instruction.split(f"Answer{k}: ")[1].split()[0]
        assert chosen in children[category]
        assert e.output == f"the correct answer is {e.answer}"
        assert extract_option(e.output, "ARC-Easy") == e.answer
    cats = lambda xs: {e.instruction.split("a kind of ")[1] for e in xs}  # noqa: E731
    assert cats(train).isdisjoint(cats(test))


def test_wordnet_bad_record_names_line(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(DATA_NOUN + "00003100 zz broken\n")
    with pytest.raises(DataFileError) as err:
        parse_hyponyms(path)
    assert err.value.line == 14


def test_documents_from_a_dpkg_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text(
        "Package: foo\nStatus: install ok installed\nMaintainer: Ann Example <ann@example.org>\n"
        "Version: 1.2-3\nDescription: a foo tool\n long text\n\n"
        "Package: bar\nMaintainer: Bob <b@example.org>\nVersion: 0.9\nDescription: bar\n"
    )
    docs = load_documents(2, path=status)
    by = {d.questions[0][1]: d for d in docs}
    assert set(by) == {"1.2-3", "0.9"}
    assert by["1.2-3"].questions[1] == ("Who maintains the Debian package foo?", "Ann Example")
    assert "Version: 1.2-3" in by["1.2-3"].text and "long text" not in by["1.2-3"].text
    with pytest.raises(DataFileError):
        load_documents(3, path=status)
