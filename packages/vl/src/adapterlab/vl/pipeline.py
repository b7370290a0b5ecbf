"""The main job: pre-train the tiny BLIP on captions (embedded data only), then transfer it to
VQA and to a new captioning style with every method, and write one comparison table.

Why the pre-training: an adapter on a frozen *random* backbone has nothing to adapt. The tiny
BLIP first learns, with every weight training, to caption the Karpathy ``restval`` scenes
(caption style A), with a text-only language-modelling loss on the training splits' sentences
mixed in (the stand-in for BLIP's BERT initialisation: every word gets a learned embedding),
and true statements about the same scenes, learned text-only (counts as digits, "yes, there is
a ..." / "no, there is no ...") that give the answer words contexts which tell them apart. It
is then frozen and each method adapts it to (a) VQAv2-format questions, with the question
encoder initialised from the caption decoder, and (b) captions in style B. Frozen baselines:
the question prior (the most frequent training answer per question type), a linear answer head
on frozen features, and the frozen captioner itself.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import add_adapter, get_config
from adapterlab.core.engine import (
    TrainConfig,
    Trainer,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    evaluate,
    iter_jsonl,
)

from .baselines import linear_head_baseline, question_prior, question_prior_scores
from .config import CommonConfig, RunConfig, SweepConfig
from .data import (
    LABELS,
    QUESTION_TYPES,
    SynthSpec,
    derive_snli_ve,
    derive_vizwiz,
    load_coco_captions,
    load_vqav2,
    read_json,
    read_scenes,
    scene_statements,
    synthesize,
)
from .images import encode_images
from .models import PRETRAINED_MARKER, tiny_backbone
from .task import (
    CaptionDataset,
    GenerationMetrics,
    LanguageMixDataset,
    collate,
    make_eval_step,
    pretrain_loss_fn,
)
from .train import MAX_NEW, Prepared, eval_step_for, prepare_task, resolve_sources
from .workers import train_runs

__all__ = [
    "answer_word_cosines",
    "grounded_statements",
    "language_corpus",
    "markdown_table",
    "prepare",
    "pretrain_tiny",
    "question_prior",
    "run_sweep",
]

#: answer words whose separation in the frozen LM head the pre-training must give
ANSWER_WORD_GROUPS = {"yes/no": ("yes", "no"), "1/2/3": ("1", "2", "3")}


def _texts(root: Path, statements: dict[Path, dict[str, list[str]]]) -> list[str]:
    """Every sentence the tokenizer's vocabulary is built from (``statements`` first)."""
    texts = [t for kinds in statements.values() for v in kinds.values() for t in v]
    for img in read_json(root / "coco" / "annotations" / "dataset_coco.json")["images"]:
        texts += [s["raw"] for s in img["sentences"]]
    for sub in ("train2014", "val2014"):
        qs = read_json(root / "vqav2" / f"v2_OpenEnded_mscoco_{sub}_questions.json")
        anns = read_json(root / "vqav2" / f"v2_mscoco_{sub}_annotations.json")
        texts += [q["question"] for q in qs["questions"]]
        texts += [a["answer"] for ann in anns["annotations"] for a in ann["answers"]]
    for jsonl in sorted((root / "snli_ve").glob("snli_ve_*.jsonl")):  # derived, when asked for
        texts += [row["sentence2"] for _, row in iter_jsonl(jsonl)] + list(LABELS)
    return texts


def language_corpus(root: Path) -> list[str]:
    """The text-only corpus of the pre-training: every caption, question and answer of the
    training splits (restval and train), as separate sentences (no question is paired with its
    answer, and no validation or test text is used)."""
    texts = [c for e in load_coco_captions(root / "coco", "restval") for c in e.captions]
    texts += [c for e in load_coco_captions(root / "coco", "train") for c in e.captions]
    for ex in load_vqav2(root / "vqav2", "train", coco_root=root / "coco"):
        texts += [ex.question, ex.answer]
    return texts


def grounded_statements(root: Path, split: str = "restval") -> dict[Path, dict[str, list[str]]]:
    """Statements true of each ``split`` image's scene (:func:`scene_statements`), by image path,
    from the generator's scene ground truth (only ``restval`` / ``train`` scenes exist)."""
    out = {}
    for img in read_scenes(root):
        if img["split"] == split:
            path = root / "coco" / img["filepath"] / img["filename"]
            out[path] = scene_statements(img["objects"])
    return out


def answer_word_cosines(model: torch.nn.Module, tokenizer: Any) -> dict[str, float]:
    """Cosine similarity of answer words in the decoder's (tied) output embedding: each pair,
    and the mean over each group's pairs (``yes/no``, ``1/2/3``)."""
    weight = model.text_decoder.get_output_embeddings().weight.detach().float()
    out: dict[str, float] = {}
    for group, words in ANSWER_WORD_GROUPS.items():
        ids = tokenizer.convert_tokens_to_ids(list(words))
        rows = torch.nn.functional.normalize(weight[ids], dim=-1)
        pairs = [(i, j) for i in range(len(words)) for j in range(i + 1, len(words))]
        for i, j in pairs:
            out[f"{words[i]}/{words[j]}"] = float(rows[i] @ rows[j])
        if len(pairs) > 1:
            out[group] = sum(out[f"{words[i]}/{words[j]}"] for i, j in pairs) / len(pairs)
    return out


def pretrain_tiny(cfg: CommonConfig, root: Path) -> Path:
    """Fully train the tiny BLIP captioner on the ``restval`` captions; returns its folder
    (reused when it was written by the same settings)."""
    out = Path(cfg.out) / "pretrained-blip"
    key = {
        "data": read_json(root / "synth.json"),
        "epochs": cfg.pretrain_epochs,
        "seed": cfg.seed,
        "language": "captions+questions+answers of restval/train",
        "statements": "count/yes/no statements of restval scenes, text-only",
        "derived": sorted(t for t in DERIVED if (root / t).is_dir()),
    }
    marker = out / "pretrain.json"
    if marker.is_file() and json.loads(marker.read_text()).get("key") == key:
        return out
    start = time.perf_counter()
    statements = grounded_statements(root)
    vocab_texts = _texts(root, statements)
    backbone = tiny_backbone("caption", vocab_texts, Path(cfg.out) / "tokenizer", seed=cfg.seed)
    examples = load_coco_captions(root / "coco", "restval")
    cut = max(1, len(examples) // 10)
    images = encode_images(
        [e.image for e in examples],
        backbone.image_processor,
        cache_dir=Path(cfg.out) / "image-cache",
    )
    captions = CaptionDataset(examples[cut:], backbone, images, "train", expand=True)
    train_ds = LanguageMixDataset(
        captions, language_corpus(root), seed=cfg.seed, statements=statements
    )
    val_ds = CaptionDataset(examples[:cut], backbone, images, "val", expand=False)
    add_adapter(backbone.model, get_config("full"))
    tcfg = TrainConfig(
        output_dir=str(Path(cfg.out) / "pretrain"),
        epochs=cfg.pretrain_epochs,
        batch_size=32,
        lr=1e-3,
        weight_decay=0.05,
        scheduler="cosine",
        warmup_steps=min(20, cfg.pretrain_epochs * len(train_ds) // 32 // 10),
        metric="cider",
        eval_every_epochs=max(1, cfg.pretrain_epochs // 3),
        keep_last=1,
        seed=cfg.seed,
        overwrite=True,
        progress=cfg.progress,
        log_every=max(1, min(50, cfg.pretrain_epochs * len(train_ds) // 32 // 10)),
    )
    result = Trainer(
        backbone.model,
        tcfg,
        train_data=train_ds,
        eval_data=val_ds,
        loss_fn=pretrain_loss_fn,
        eval_step=make_eval_step(backbone, MAX_NEW["caption"]),
        metric_fn=GenerationMetrics(backbone, {"val": val_ds}, "caption"),
        collate_fn=functools.partial(collate, pad_id=backbone.pad_id),
        run_config={"vl_pretrain": {**cfg.to_dict(), "data_root": str(root)}},
    ).fit()
    info = {  # the engine has restored the best checkpoint's weights into backbone.model
        "key": key,
        "val_cider": result.best_metric,
        "answer_word_cosines": answer_word_cosines(backbone.model, backbone.tokenizer),
        "seconds": time.perf_counter() - start,
    }

    def write(tmp: Path) -> None:
        backbone.save(tmp)
        (tmp / "pretrain.json").write_text(json.dumps(info, indent=2) + "\n")
        marker = {"kind": "embedded tiny BLIP pre-training (captions, style A)"}
        (tmp / PRETRAINED_MARKER).write_text(json.dumps(marker) + "\n")

    atomic_directory(out, write)
    cos = ", ".join(f"{k} {v:.3f}" for k, v in info["answer_word_cosines"].items())
    print(f"[vl] pre-trained the tiny BLIP captioner: val CIDEr {result.best_metric:.3f}")
    print(f"[vl] cosine of answer words in the frozen LM head: {cos}")
    return out


#: tasks whose embedded data is derived from the synthetic VQAv2 scenes
DERIVED = {"snli_ve": derive_snli_ve, "vizwiz": derive_vizwiz}


def prepare(cfg: CommonConfig, tasks: Sequence[str] = ()) -> Prepared:
    """Resolve data roots and model sources (embedded: synthesise, derive the SNLI-VE / VizWiz
    layouts when ``tasks`` ask for them, pre-train)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    elif cfg.embedded:
        torch.set_num_threads(1)  # the tiny model's small matrices only lose time to threads
    if cfg.embedded:
        root = synthesize(Path(cfg.out) / "data", SynthSpec(seed=cfg.seed))
        for task in tasks:
            if task in DERIVED and not (root / task).is_dir():
                DERIVED[task](root)
        pretrained = pretrain_tiny(cfg, root)
        return Prepared(root / "vqav2", root / "coco", resolve_sources(cfg, pretrained))
    root = Path(cfg.data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: no such folder")
    return Prepared(root / "vqav2", root / "coco", resolve_sources(cfg, None))


def frozen_captioner(cfg: CommonConfig, prep: Prepared) -> dict[str, float]:
    """Test BLEU-4 / CIDEr of the captioning backbone with no adaptation."""
    data = prepare_task(cfg, prep, "caption")
    backbone = data.backbone()
    metrics = evaluate(
        backbone.model,
        data.datasets["test"],
        eval_step_for(cfg, "caption", data, backbone),
        GenerationMetrics(backbone, data.datasets, "caption"),
        batch_size=64,
        collate_fn=functools.partial(collate, pad_id=backbone.pad_id),
        progress=False,
    )
    return {k: v for k, v in metrics.items() if k != "num_samples"}


def _fmt(x: float | None, scale: float = 100.0) -> str:
    return "-" if x is None else f"{scale * x:.2f}"


def _types(scores: dict[str, float]) -> dict[str, float]:
    return {t: scores[f"vqa_{t}"] for t in QUESTION_TYPES.values() if f"vqa_{t}" in scores}


def types_table(rows: list[dict[str, Any]]) -> str:
    """VQA accuracy per question type (rows that have VQA scores)."""
    names = [t for t in QUESTION_TYPES.values() if any(t in r.get("types", {}) for r in rows)]
    if not names:
        return ""
    lines = [
        "| method | " + " | ".join(names) + " | all | final VQA train loss |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for r in rows:
        if "types" not in r:
            continue
        cells = [_fmt(r["types"].get(t)) for t in names]
        loss = r.get("vqa_train_loss")
        lines.append(
            f"| {r['method']} | " + " | ".join(cells) + f" | {_fmt(r.get('vqa'))} | "
            f"{'-' if loss is None else f'{loss:.3f}'} |"
        )
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Method | trainable % | VQA accuracy | CIDEr | BLEU-4 | learned p | seconds."""
    lines = [
        "| method | trainable % | VQA acc % | caption CIDEr | caption BLEU-4 | mean learned p (VQA) | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        pct = "-" if r.get("percent") is None else f"{r['percent']:.2f}"
        p = r.get("p_mean")
        lines.append(
            f"| {r['method']} | {pct} | {_fmt(r.get('vqa'))} | {_fmt(r.get('cider'), 1.0)} | "
            f"{_fmt(r.get('bleu4'))} | {'-' if p is None else f'{p:.3f}'} | "
            f"{r.get('seconds', 0):.0f} |"
        )
    return "\n".join(lines)


def _pretrain_info(cfg: CommonConfig) -> dict[str, Any] | None:
    marker = Path(cfg.out) / "pretrained-blip" / "pretrain.json"
    if not cfg.embedded or not marker.is_file():
        return None
    return {k: v for k, v in json.loads(marker.read_text()).items() if k != "key"}


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Run every method on every task; write sweep.md / sweep.json under ``cfg.out``."""
    methods, tasks = cfg.method_list(), cfg.task_list()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prep = prepare(cfg, tasks)
    common = {f: getattr(cfg, f) for f in CommonConfig.__dataclass_fields__}
    workers = cfg.resolved_workers()
    rows: list[dict[str, Any]] = []
    if "vqa" in tasks:
        prior = question_prior_scores(prep.vqa_root, prep.coco_root)
        rows.append(
            {
                "method": "frozen: question prior (no image)",
                "percent": 0.0,
                "vqa": prior["vqa_accuracy"],
                "types": _types(prior),
            }
        )
        print("[vl] vqa / frozen backbone + linear answer head", flush=True)
        t0 = time.perf_counter()
        head = linear_head_baseline(cfg, prep, out / "vqa-linear_head")
        rows.append(
            {
                "method": "frozen: linear head on frozen features",
                "percent": 0.0,
                "vqa": head["vqa_accuracy"],
                "types": _types(head["test"]),
                "seconds": time.perf_counter() - t0,
            }
        )
    if "caption" in tasks:
        frozen = frozen_captioner(cfg, prep)
        rows.append({"method": "frozen: captioner as is", "percent": 0.0, **frozen})
    jobs = [
        (RunConfig(method=m, task=t, **{**common, "progress": cfg.progress and workers == 1}),
         str(out / f"{t}-{m}"))
        for m in methods
        for t in tasks
    ]  # fmt: skip
    runs = train_runs(jobs, prep, workers, torch.get_num_threads())
    for method in methods:
        row: dict[str, Any] = {"method": method, "seconds": 0.0}
        for (job, _), res in zip(jobs, runs, strict=True):
            if job.method != method:
                continue
            task = job.task
            row["seconds"] += res["train_seconds"]
            if task == "vqa":
                row["vqa"] = res["test"].get("vqa_accuracy")
                row["types"] = _types(res["test"])
                row["vqa_train_loss"] = res["final_train_loss"]
                row["percent"] = res["percent_trainable"]
                if res["p_values"]:
                    row["p_mean"] = sum(res["p_values"]) / len(res["p_values"])
            elif task == "caption":
                row["cider"], row["bleu4"] = res["test"].get("cider"), res["test"].get("bleu4")
                row.setdefault("percent", res["percent_trainable"])
            else:  # snli_ve: accuracy; vizwiz: VQA accuracy
                row[task] = res["test"].get("accuracy", res["test"].get("vqa_accuracy"))
                row.setdefault("percent", res["percent_trainable"])
        rows.append(row)
    table = markdown_table(rows)
    per_type = types_table(rows)
    if per_type:
        table += "\n\nVQA accuracy % per question type (test):\n\n" + per_type
    pretrain = _pretrain_info(cfg)
    if pretrain:
        cos = ", ".join(f"{k} {v:.3f}" for k, v in pretrain.get("answer_word_cosines", {}).items())
        table += (
            f"\n\nPre-training: val CIDEr-D {pretrain['val_cider']:.2f}; cosine of answer words "
            f"in the frozen (tied) LM head: {cos}."
        )
    total = time.perf_counter() - start
    result = {
        "embedded": cfg.embedded,
        "sources": prep.sources,
        "sizes": {t: {s: len(d) for s, d in prep.tasks[t].datasets.items()} for t in prep.tasks},
        "config": cfg.to_dict(),
        "rows": rows,
        "pretrain": pretrain,
        "runs": runs,
        "total_seconds": total,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    header = (
        "# adapterlab-vl sweep\n\n"
        f"Models: {prep.sources}. Test scores of the best-validation checkpoint; trainable % of "
        "the VQA model (captioning model where only captioning ran). CIDEr is CIDEr-D (x1, as "
        "pycocoevalcap prints it).\n\n"
    )
    atomic_write_text(out / "sweep.md", header + table + "\n")
    atomic_write_json(out / "sweep.json", result)
    print()
    print(table)
    print(f"\nWrote {out / 'sweep.md'} and {out / 'sweep.json'} ({total:.0f}s total).")
    return result
