"""What the engine needs per task: datasets, collate, ``loss_fn``, ``eval_step``, metrics.

VQA follows BLIP's ``blip_vqa.py`` (which the p-adapter release trains too): every distinct
human answer of a question is a target, weighted by the share of humans who gave it
(:func:`answer_weights`; loss = sum over answers of weight x the answer's summed token loss,
divided by the number of questions), and at test time the answers of an answer list are ranked
(:func:`rank_answers`: the k candidates whose first token is likeliest after [DEC], then the
full log-likelihood of each; BLIP's ``rank_answer``). Free generation stays an option
(``vqa_inference="generate"``). Captions are generated: greedy decoding with no key/value
cache, so attention-graph adapters see every value in every step. ``eval_step`` returns the
answer / caption ids padded to a fixed length plus each sample's index and split code;
:class:`GenerationMetrics` decodes them and scores them against that split's references.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from .data import QUESTION_TYPES, CaptionExample, VEExample, VQAExample
from .images import EncodedImages
from .metrics import caption_scores, snli_ve_accuracy, vqa_accuracy_by_type
from .models import Backbone

__all__ = [
    "AnswerList",
    "CaptionDataset",
    "GenerationMetrics",
    "LanguageMixDataset",
    "QADataset",
    "collate",
    "answer_weights",
    "beam_search",
    "generate",
    "loss_fn",
    "make_eval_step",
    "pretrain_loss_fn",
    "rank_answers",
    "vqa_scores",
]

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def answer_weights(answers: Sequence[str]) -> list[tuple[str, float]]:
    """Each distinct answer with the share of humans who gave it, in first-seen order (BLIP's
    and the p-adapter release's ``vqa_dataset``: weight += 1 / len(answers) per human)."""
    weights: dict[str, float] = {}
    for a in answers:
        weights[a] = weights.get(a, 0.0) + 1 / len(answers)
    return list(weights.items())


class QADataset(Dataset):
    """VQA (or SNLI-VE, answer = label) items: image, question ids, answer ids.

    With ``soft_targets`` (VQA training), an item carries every distinct human answer with its
    weight (:func:`answer_weights`); otherwise the single most frequent answer (weight 1).
    """

    def __init__(
        self,
        examples: Sequence[VQAExample | VEExample],
        backbone: Backbone,
        images: EncodedImages,
        split: str,
        max_question: int = 30,
        soft_targets: bool = False,
    ) -> None:
        self.examples = [e for e in examples if e.image in images.pixels]
        self.skipped = len(examples) - len(self.examples)
        self.backbone, self.images, self.split = backbone, images, split
        self.max_question = max_question
        self.soft_targets = soft_targets

    def __len__(self) -> int:
        return len(self.examples)

    def describe(self, index: int) -> str:
        return str(self.examples[index].image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ex, bb = self.examples[index], self.backbone
        text = ex.question if isinstance(ex, VQAExample) else ex.hypothesis
        answer = ex.answer if isinstance(ex, VQAExample) else ex.label
        q = bb.tokenizer(text, truncation=True, max_length=self.max_question)["input_ids"]
        a = [bb.bos_id, *_ids(bb.tokenizer, answer), bb.sep_id]
        item = {
            "pixel_values": self.images.pixels[ex.image],
            "question": q,
            "target": a,
            "index": index,
            "split": SPLIT_CODES[self.split],
        }
        if self.soft_targets and isinstance(ex, VQAExample):
            pairs = answer_weights(ex.answers)
            item["answers"] = [[bb.bos_id, *_ids(bb.tokenizer, t), bb.sep_id] for t, _ in pairs]
            item["weights"] = [w for _, w in pairs]
        return item


class CaptionDataset(Dataset):
    """Captioning items; training expands every (image, caption) pair, evaluation has one
    item per image."""

    def __init__(
        self,
        examples: Sequence[CaptionExample],
        backbone: Backbone,
        images: EncodedImages,
        split: str,
        *,
        expand: bool,
        captions_per_image: int | None = None,
        max_caption: int = 30,
        prompt: str = "",
    ) -> None:
        self.prompt = _ids(backbone.tokenizer, prompt) if prompt else []
        self.examples = [e for e in examples if e.image in images.pixels]
        self.skipped = len(examples) - len(self.examples)
        self.backbone, self.images, self.split = backbone, images, split
        self.items = []
        for i, ex in enumerate(self.examples):
            caps = ex.captions[:captions_per_image] if expand else ex.captions[:1]
            self.items.extend((i, c) for c in caps)
        self.max_caption = max_caption

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, index: int) -> str:
        return str(self.examples[self.items[index][0]].image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i, caption = self.items[index]
        bb, ex = self.backbone, self.examples[i]
        ids = _ids(bb.tokenizer, caption)[: self.max_caption - 2]
        item = {
            "pixel_values": self.images.pixels[ex.image],
            "target": [bb.bos_id, *self.prompt, *ids, bb.sep_id],
            "index": i,
            "split": SPLIT_CODES[self.split],
        }
        if self.prompt:  # BLIP: the prompt is input, never a target
            item["prompt_len"] = len(self.prompt)
        return item


class LanguageMixDataset(Dataset):
    """Captioning items, each with one text-only sentence drawn from a language corpus and,
    when ``statements`` are given, one true statement about the item's own scene.

    BLIP's text modules start from BERT, which learned the language from text alone before any
    image was seen; the tiny BLIP gets the same from a text-only language-modelling loss on
    ``corpus`` (see :func:`pretrain_loss_fn`), mixed into its captioning pre-training.
    ``statements`` maps an image path to its statements by kind (see
    :func:`adapterlab.vl.data.scene_statements`); each item draws a kind uniformly, then one
    statement of that kind about its own scene, learned text-only like the corpus sentence.
    """

    def __init__(
        self,
        captions: CaptionDataset,
        corpus: Sequence[str],
        seed: int = 0,
        statements: Mapping[Path, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.captions = captions
        self.corpus = [self._encode(t) for t in corpus]
        self.rng = random.Random(seed)
        self.statements: list[list[list[int]]] | None = None
        if statements is not None:
            missing = [str(e.image) for e in captions.examples if e.image not in statements]
            if missing:
                raise ValueError(f"no scene statements for {len(missing)} images: {missing[0]}")
            self.statements = [
                [[self._encode(t) for t in kind] for kind in statements[e.image].values() if kind]
                for e in captions.examples
            ]
            self.statement_rng = random.Random(seed + 1)

    def _encode(self, text: str) -> list[int]:
        bb = self.captions.backbone
        return [bb.bos_id, *_ids(bb.tokenizer, text)[:28], bb.sep_id]

    def __len__(self) -> int:
        return len(self.captions)

    def describe(self, index: int) -> str:
        return self.captions.describe(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.captions[index]
        item["text"] = self.corpus[self.rng.randrange(len(self.corpus))]
        if self.statements is not None:
            kinds = self.statements[item["index"]]
            kind = kinds[self.statement_rng.randrange(len(kinds))]
            item["statement"] = kind[self.statement_rng.randrange(len(kind))]
        return item


def _pad(seqs: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    return ids, mask


def collate(items: list[dict[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack pixels, pad token ids (labels use -100 on padding)."""
    batch: dict[str, torch.Tensor] = {
        "pixel_values": torch.stack([it["pixel_values"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
        "split": torch.tensor([it["split"] for it in items]),
    }
    target, tmask = _pad([it["target"] for it in items], pad_id)
    batch["target_ids"], batch["target_mask"] = target, tmask
    batch["labels"] = target.masked_fill(tmask == 0, -100)
    if "prompt_len" in items[0]:
        for row, it in enumerate(items):
            batch["labels"][row, 1 : 1 + it["prompt_len"]] = -100
    if "text" in items[0]:
        batch["text_ids"], batch["text_mask"] = _pad([it["text"] for it in items], pad_id)
    if "statement" in items[0]:
        batch["statement_ids"], batch["statement_mask"] = _pad(
            [it["statement"] for it in items], pad_id
        )
    if "question" in items[0]:
        batch["input_ids"], batch["attention_mask"] = _pad([it["question"] for it in items], pad_id)
    if "answers" in items[0]:  # soft targets: every (question, answer) pair, weighted
        seqs = [a for it in items for a in it["answers"]]
        ids, mask = _pad(seqs, pad_id)
        batch["answer_ids"], batch["answer_mask"] = ids, mask
        batch["answer_labels"] = ids.masked_fill(mask == 0, -100)
        batch["answer_owner"] = torch.tensor(
            [row for row, it in enumerate(items) for _ in it["answers"]]
        )
        batch["answer_weights"] = torch.tensor([w for it in items for w in it["weights"]])
    return batch


def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """BLIP's language-modelling loss on the answer / caption (label smoothing as the text config
    sets it: 0 in transformers' default, the tiny BLIP's). With soft VQA targets: BLIP's
    ``weights * loss`` summed over every (question, answer) pair and divided by the number of
    questions, each answer's loss summed over its tokens (``reduction="none"``)."""
    if "answer_ids" in batch:
        memory, memory_mask = _memory(model, batch)
        owner = batch["answer_owner"]
        per_answer = model.text_decoder(
            input_ids=batch["answer_ids"],
            attention_mask=batch["answer_mask"],
            encoder_hidden_states=memory[owner],
            encoder_attention_mask=memory_mask[owner],
            labels=batch["answer_labels"],
            reduction="none",
        ).loss
        weights = batch["answer_weights"].to(per_answer.dtype)
        return (weights * per_answer).sum() / memory.shape[0]
    if "input_ids" in batch:
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            decoder_input_ids=batch["target_ids"],
            decoder_attention_mask=batch["target_mask"],
            labels=batch["labels"],
        )
    else:
        out = model(
            pixel_values=batch["pixel_values"],
            input_ids=batch["target_ids"],
            attention_mask=batch["target_mask"],
            labels=batch["labels"],
        )
    return out.loss


def _memory(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    image = model.vision_model(pixel_values=batch["pixel_values"])[0]
    image_mask = torch.ones(image.shape[:2], dtype=torch.long, device=image.device)
    if "input_ids" not in batch:
        return image, image_mask
    question = model.text_encoder(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        encoder_hidden_states=image,
        encoder_attention_mask=image_mask,
    )[0]
    return question, batch["attention_mask"]


def _lm_loss(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, image: Any) -> torch.Tensor:
    return model.text_decoder(
        input_ids=ids,
        attention_mask=mask,
        encoder_hidden_states=image,
        labels=ids.masked_fill(mask == 0, -100),
        reduction="mean",
    ).loss


def pretrain_loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Captioning loss plus the text-only language-modelling loss of the decoder on the corpus
    sentence and, when the batch has them, on the scene statements (no image: BLIP's text layers
    skip cross-attention without ``encoder_hidden_states``). The statements are text-only so
    that greedy captioning from [DEC] never drifts into them."""
    loss = loss_fn(model, batch) + _lm_loss(model, batch["text_ids"], batch["text_mask"], None)
    if "statement_ids" in batch:
        loss = loss + _lm_loss(model, batch["statement_ids"], batch["statement_mask"], None)
    return loss


@torch.no_grad()
def beam_search(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    start: list[int],
    sep: int,
    pad: int,
    beams: int,
    max_length: int,
    min_length: int,
) -> torch.Tensor:
    """BLIP's caption decoding: beam search from ``start`` ([DEC] + prompt) with total
    ``max_length`` / ``min_length`` (as BLIP passes them), no key/value cache; returns the
    tokens after ``start``, ``[B, max_length]`` padded."""
    memory, memory_mask = _memory(model, batch)
    b = memory.shape[0]
    ids = torch.tensor([start] * b, dtype=torch.long, device=memory.device)
    out = model.text_decoder.generate(
        input_ids=ids,
        encoder_hidden_states=memory,
        encoder_attention_mask=memory_mask,
        num_beams=beams,
        max_length=max_length,
        min_length=min_length,
        eos_token_id=sep,
        pad_token_id=pad,
        use_cache=False,
        do_sample=False,
    )[:, len(start) :]
    return F.pad(out, (0, max_length - out.shape[1]), value=pad)


@torch.no_grad()
def generate(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    bos: int,
    sep: int,
    pad: int,
    max_new: int,
    prefix: Sequence[int] = (),
) -> torch.Tensor:
    """Greedy decoding without a key/value cache from [DEC] (+ ``prefix``, e.g. a prompt):
    ``[B, max_new]`` new ids, ``pad`` after [SEP]."""
    memory, memory_mask = _memory(model, batch)
    b = memory.shape[0]
    ids = torch.tensor([[bos, *prefix]] * b, dtype=torch.long, device=memory.device)
    done = torch.zeros(b, dtype=torch.bool, device=memory.device)
    out = torch.full((b, max_new), pad, dtype=torch.long, device=memory.device)
    for step in range(max_new):
        logits = model.text_decoder(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_mask,
            use_cache=False,
        ).logits[:, -1]
        nxt = logits.argmax(-1).masked_fill(done, pad)
        out[:, step] = nxt
        done |= nxt == sep
        ids = torch.cat([ids, nxt[:, None]], 1)
        if bool(done.all()):
            break
    return out


@dataclass
class AnswerList:
    """The candidate answers of ranking inference: texts and their ``[DEC] a [SEP]`` ids."""

    texts: list[str]
    ids: torch.Tensor  # [A, L], padded
    mask: torch.Tensor  # [A, L]

    @classmethod
    def build(cls, texts: Sequence[str], backbone: Backbone) -> AnswerList:
        if not texts:
            raise ValueError("ranking inference needs a non-empty answer list")
        seqs = [[backbone.bos_id, *_ids(backbone.tokenizer, t), backbone.sep_id] for t in texts]
        ids, mask = _pad(seqs, backbone.pad_id)
        return cls(list(texts), ids, mask)


@torch.no_grad()
def rank_answers(
    model: nn.Module, batch: dict[str, torch.Tensor], answers: AnswerList, k: int
) -> torch.Tensor:
    """BLIP's ``rank_answer``: per question, the ``k`` answers whose first token is likeliest
    after [DEC], then the one of those with the highest summed log-likelihood (the decoder's
    loss with ``reduction="none"``; first of equals). Returns indices into ``answers``."""
    memory, memory_mask = _memory(model, batch)
    b, device = memory.shape[0], memory.device
    ids, mask = answers.ids.to(device), answers.mask.to(device)
    k = min(k, ids.shape[0])
    start = model.text_decoder(
        input_ids=ids[:1, :1].expand(b, 1),
        encoder_hidden_states=memory,
        encoder_attention_mask=memory_mask,
        use_cache=False,
    ).logits[:, 0]
    first = start.float().softmax(-1).index_select(1, ids[:, 1])  # [B, A]
    topk = first.topk(k, dim=1).indices  # [B, k]
    cand, cand_mask = ids[topk].flatten(0, 1), mask[topk].flatten(0, 1)
    owner = torch.arange(b, device=device).repeat_interleave(k)
    nll = model.text_decoder(
        input_ids=cand,
        attention_mask=cand_mask,
        encoder_hidden_states=memory[owner],
        encoder_attention_mask=memory_mask[owner],
        labels=cand.masked_fill(cand_mask == 0, -100),
        reduction="none",
        use_cache=False,
    ).loss.view(b, k)
    best = (-nll).argmax(dim=1)
    return topk[torch.arange(b, device=device), best]


def make_eval_step(
    backbone: Backbone,
    max_new: int,
    answers: AnswerList | None = None,
    k: int = 32,
    *,
    beams: int = 1,
    min_new: int = 0,
    prompt: str = "",
):
    """``eval_step(model, batch)`` for the engine: answer / caption ids + index + split.

    With ``answers``, answers are ranked over that list (:func:`rank_answers`, top ``k``);
    otherwise generated after [DEC] + ``prompt``: greedily, or with ``beams`` > 1 by beam search
    (``max_new`` / ``min_new`` are then BLIP's total max / min length)."""
    prefix = _ids(backbone.tokenizer, prompt) if prompt else []
    bb = backbone

    def eval_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if answers is not None:
            chosen = rank_answers(model, batch, answers, k)
            ids = answers.ids.to(chosen.device)[chosen, 1:]  # drop [DEC]
            ids = F.pad(ids, (0, max(0, max_new - ids.shape[1])), value=bb.pad_id)
        elif beams > 1:
            ids = beam_search(
                model, batch, start=[bb.bos_id, *prefix], sep=bb.sep_id, pad=bb.pad_id,
                beams=beams, max_length=max_new, min_length=min_new,
            )  # fmt: skip
        else:
            ids = generate(
                model, batch, bos=bb.bos_id, sep=bb.sep_id, pad=bb.pad_id, max_new=max_new,
                prefix=prefix,
            )  # fmt: skip
        return {"generated": ids, "index": batch["index"], "split": batch["split"]}

    return eval_step


def vqa_scores(predictions: Sequence[str], examples: Sequence[VQAExample]) -> dict[str, float]:
    """VQA accuracy overall and per question type of the embedded data (``vqa_colour``, ...;
    real VQAv2 has these question types too)."""
    types = [QUESTION_TYPES.get(e.question_type, "") for e in examples]
    return vqa_accuracy_by_type(predictions, [e.answers for e in examples], types)


class GenerationMetrics:
    """``metric_fn``: decode generated ids and score them against the split's references."""

    def __init__(self, backbone: Backbone, datasets: dict[str, Dataset], task: str) -> None:
        self.backbone, self.datasets, self.task = backbone, datasets, task
        self.last_predictions: list[str] = []

    def decode(self, ids: torch.Tensor) -> list[str]:
        return [
            self.backbone.tokenizer.decode(row, skip_special_tokens=True).strip()
            for row in ids.tolist()
        ]

    def __call__(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        if "generated" not in outputs or not len(outputs["generated"]):
            return {}
        codes = {v: k for k, v in SPLIT_CODES.items()}
        split = codes[int(outputs["split"][0])]
        ds = self.datasets[split]
        preds = self.decode(outputs["generated"])
        self.last_predictions = preds
        index = outputs["index"].tolist()
        if self.task in ("vqa", "vizwiz"):
            return vqa_scores(preds, [ds.examples[i] for i in index])
        if self.task == "snli_ve":
            return {"accuracy": snli_ve_accuracy(preds, [ds.examples[i].label for i in index])}
        return caption_scores(preds, [ds.examples[i].captions for i in index])
