"""BLIP's VQA recipe: soft-score targets (every human answer, weighted) and ranking inference
over an answer list (top-k by first token, then full log-likelihood)."""

from __future__ import annotations

import pytest
import torch
from adapterlab.vl.data import VQAExample
from adapterlab.vl.images import EncodedImages
from adapterlab.vl.models import tiny_backbone
from adapterlab.vl.task import (
    AnswerList,
    QADataset,
    answer_weights,
    collate,
    loss_fn,
    make_eval_step,
    rank_answers,
)

ANSWERS = ["yes", "no", "red", "blue", "2", "red circle", "blue square"]
TEXTS = ["what color is the circle?", "is there a square?", *ANSWERS]


@pytest.fixture(scope="module")
def vqa(tmp_path_factory):
    bb = tiny_backbone("vqa", TEXTS, tmp_path_factory.mktemp("tok"), image_size=16, seed=3)
    torch.manual_seed(0)
    with torch.no_grad():  # a decoder that prefers some answers over others
        for p in bb.model.text_decoder.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return bb


def _batch(bb, answers_per_question, soft=True):
    g = torch.Generator().manual_seed(0)
    examples, pixels = [], {}
    for i, answers in enumerate(answers_per_question):
        path = f"img{i}.jpg"
        pixels[path] = torch.randn(3, 16, 16, generator=g)
        examples.append(VQAExample(i, path, "what color is the circle?", answers))
    ds = QADataset(examples, bb, EncodedImages(pixels, []), "train", soft_targets=soft)
    return collate([ds[i] for i in range(len(ds))], pad_id=bb.pad_id)


def test_answer_weights_are_the_share_of_humans() -> None:
    got = answer_weights(["yes"] * 6 + ["no"] * 3 + ["maybe"])
    assert [a for a, _ in got] == ["yes", "no", "maybe"]
    assert [w for _, w in got] == pytest.approx([0.6, 0.3, 0.1])


def test_soft_loss_is_the_weighted_sum_of_answer_losses(vqa) -> None:
    with torch.no_grad():
        yes = loss_fn(vqa.model, _batch(vqa, [["yes"] * 10]))
        no = loss_fn(vqa.model, _batch(vqa, [["no"] * 10]))
        mixed = loss_fn(vqa.model, _batch(vqa, [["yes"] * 7 + ["no"] * 3]))
        # unanimous humans: the answer's summed token loss = HF's token mean x its 2 tokens
        hard = _batch(vqa, [["yes"] * 10], soft=False)
        mean = loss_fn(vqa.model, hard)
        pair = loss_fn(vqa.model, _batch(vqa, [["yes"] * 10, ["no"] * 10]))
    assert float(mixed) == pytest.approx(0.7 * float(yes) + 0.3 * float(no), rel=1e-5)
    assert float(yes) == pytest.approx(2 * float(mean), rel=1e-5)  # "yes" + [SEP]
    assert float(pair) == pytest.approx((float(yes) + float(no)) / 2, rel=1e-5)  # / questions


def _log_likelihoods(bb, batch, answers: AnswerList) -> torch.Tensor:
    """Brute force: the summed log-likelihood of every answer for every question."""
    from adapterlab.vl.task import _memory

    memory, mask = _memory(bb.model, batch)
    out = []
    for a in range(len(answers.texts)):
        ids = answers.ids[a : a + 1, : int(answers.mask[a].sum())].expand(memory.shape[0], -1)
        nll = bb.model.text_decoder(
            input_ids=ids, encoder_hidden_states=memory, encoder_attention_mask=mask,
            labels=ids, reduction="none",
        ).loss  # fmt: skip
        out.append(-nll)
    return torch.stack(out, 1)


def test_ranking_picks_the_likeliest_answer_of_the_list(vqa) -> None:
    answers = AnswerList.build(ANSWERS, vqa)
    batch = _batch(vqa, [["red"] * 10, ["blue"] * 10, ["2"] * 10], soft=False)
    with torch.no_grad():
        ll = _log_likelihoods(vqa, batch, answers)
        exhaustive = rank_answers(vqa.model, batch, answers, k=len(ANSWERS))
        assert torch.equal(exhaustive, ll.argmax(1))
        # k = 1: the answer whose first token is likeliest after [DEC], whatever follows
        one = rank_answers(vqa.model, batch, answers, k=1)
        from adapterlab.vl.task import _memory

        memory, mask = _memory(vqa.model, batch)
        start = vqa.model.text_decoder(
            input_ids=answers.ids[:1, :1].expand(3, 1),
            encoder_hidden_states=memory,
            encoder_attention_mask=mask,
        ).logits[:, 0]
        assert torch.equal(one, start.softmax(-1)[:, answers.ids[:, 1]].argmax(1))
        # the engine's eval step returns the chosen answers' ids, decodable to their texts
        step = make_eval_step(vqa, 5, answers, k=len(ANSWERS))(vqa.model, batch)
    texts = [vqa.tokenizer.decode(r, skip_special_tokens=True) for r in step["generated"]]
    assert texts == [ANSWERS[i] for i in exhaustive.tolist()]
