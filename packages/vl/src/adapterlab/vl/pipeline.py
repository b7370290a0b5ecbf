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
    SeedStats,
    TrainConfig,
    Trainer,
    aggregate_seeds,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    evaluate,
    format_mean_std,
    iter_jsonl,
    paired_difference,
)

from .attention_focus import cross_attention_focus
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
        spec = SynthSpec(distractors=cfg.distractors, seed=cfg.seed)
        root = synthesize(Path(cfg.out) / "data", spec)
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
    """Method | trainable % | each task's score (mean ± std over seeds) | learned p | seconds."""
    cols = [
        ("vqa", "vqa_accuracy", "VQA acc %", 100.0),
        ("caption", "cider", "caption CIDEr", 1.0),
        ("caption", "bleu4", "caption BLEU-4", 100.0),
        ("snli_ve", "accuracy", "SNLI-VE acc %", 100.0),
        ("vizwiz", "vqa_accuracy", "VizWiz acc %", 100.0),
    ]
    present = [c for c in cols if any(r.get(ROW_KEY[c[0]] if c[1] != "bleu4" else "bleu4")
                                      is not None for r in rows)]  # fmt: skip
    lines = [
        "| method | trainable % | "
        + " | ".join(c[2] for c in present)
        + " | mean learned p (VQA) | train s |",
        "|---|---:|" + "---:|" * len(present) + "---:|---:|",
    ]
    for r in rows:
        pct = "-" if r.get("percent") is None else f"{r['percent']:.2f}"
        p = r.get("p_mean")
        cells = [_cell(r, task, metric, scale) for task, metric, _, scale in present]
        lines.append(
            f"| {r['method']} | {pct} | "
            + " | ".join(cells)
            + f" | {'-' if p is None else f'{p:.3f}'} | {r.get('seconds', 0):.0f} |"
        )
    return "\n".join(lines)


#: the metric of each task in a sweep row
ROW_METRIC = {
    "vqa": "vqa_accuracy",
    "caption": "cider",
    "snli_ve": "accuracy",
    "vizwiz": "vqa_accuracy",
}
ROW_KEY = {"vqa": "vqa", "caption": "cider", "snli_ve": "snli_ve", "vizwiz": "vizwiz"}


def _method_row(method: str, results: list[tuple[RunConfig, dict[str, Any]]]) -> dict[str, Any]:
    """One table row from a method's runs (tasks x seeds): means, per-seed values and
    :class:`SeedStats` of every task metric, learned p per layer (mean and std over seeds)."""
    row: dict[str, Any] = {"method": method, "seconds": 0.0, "stats": {}, "p_layers": {}}
    per_task: dict[str, dict[int, dict[str, float]]] = {}
    for job, res in results:
        row["seconds"] += res["train_seconds"]
        test = dict(res["test"])
        if job.task == "vqa":
            test["final_train_loss"] = res["final_train_loss"] or float("nan")
        per_task.setdefault(job.task, {})[job.seed] = test
        row.setdefault("percent", res["percent_trainable"])
        if job.task == "vqa":
            row["percent"] = res["percent_trainable"]
        for layer, p in res.get("p_by_layer", {}).items():
            row["p_layers"].setdefault(job.task, {}).setdefault(layer, {})[job.seed] = p
    for task, by_seed in per_task.items():
        stats = aggregate_seeds(by_seed)
        row["stats"][task] = {k: v.to_json() for k, v in stats.items()}
        row[ROW_KEY[task]] = stats[ROW_METRIC[task]].mean
        if task == "caption":
            row["bleu4"] = stats["bleu4"].mean
        if task == "vqa":
            row["types"] = {t: stats[f"vqa_{t}"].mean for t in QUESTION_TYPES.values()
                            if f"vqa_{t}" in stats}  # fmt: skip
            row["vqa_train_loss"] = stats["final_train_loss"].mean
    vqa_p = row["p_layers"].get("vqa", {})
    if vqa_p:
        row["p_mean"] = sum(sum(v.values()) / len(v) for v in vqa_p.values()) / len(vqa_p)
    row["seeds"] = sorted({job.seed for job, _ in results})
    return row


def _cell(row: dict[str, Any], task: str, metric: str, scale: float, digits: int = 2) -> str:
    """``mean ± std`` over the row's seeds, the plain value for a single run or a baseline."""
    st = row.get("stats", {}).get(task, {}).get(metric)
    if st is None:
        return _fmt(row.get("bleu4" if metric == "bleu4" else ROW_KEY[task]), scale)
    stats = SeedStats(st["mean"], st["std"], st["n"])
    return format_mean_std(stats, digits, scale).replace(" (1 seed)", "")


def p_layer_table(rows: list[dict[str, Any]]) -> str:
    """Learned p per adapted attention (mean ± std over seeds), per p-adapter row and task."""
    lines = []
    for r in rows:
        for task, layers in r.get("p_layers", {}).items():
            if not lines:
                lines = ["| method | task | layer | learned p |", "|---|---|---|---:|"]
            for layer, by_seed in layers.items():
                st = SeedStats.from_values(by_seed)
                short = layer.replace(".bert.encoder.layer.", ".").replace(".encoder.layer.", ".")
                lines.append(f"| {r['method']} | {task} | {short} | {format_mean_std(st, 3)} |")
    return "\n".join(lines)


def focus_line(focus: dict[str, Any]) -> str:
    """One sentence on where the frozen question encoder's cross-attention goes."""
    m, a = focus["mass_percent"], focus["area_percent"]
    return (
        f"Frozen question encoder's cross-attention ({focus['questions']} train questions, mean "
        f"over layers, heads and tokens): {m['target']:.1f} % of the mass on the patches of the "
        f"shapes asked about ({a['target']:.1f} % of the image tokens), {m['distractor']:.1f} % "
        f"on distractor patches ({a['distractor']:.1f} %), {m['other']:.1f} % on the rest "
        f"({a['other']:.1f} %)."
    )


def paired_on_common_seeds(a: dict[Any, float], b: dict[Any, float]) -> dict[str, Any] | None:
    """:func:`paired_difference` of two per-seed score maps (keys: seeds, as int or str) on the
    seeds both ran, or None when they share fewer than 2."""
    va, vb = ({int(k): v for k, v in x.items()} for x in (a, b))
    common = sorted(set(va) & set(vb))
    if len(common) < 2:
        return None
    return paired_difference({s: va[s] for s in common}, {s: vb[s] for s in common})


def paired_line(rows: list[dict[str, Any]], a: str, b: str, task: str = "vqa") -> str:
    """``a`` against ``b`` on the same seeds (paired t-test), or '' without >= 2 shared seeds."""
    ra = next((r for r in rows if r["method"] == a), None)
    rb = next((r for r in rows if r["method"] == b), None)
    if not ra or not rb or task not in ra.get("stats", {}) or task not in rb.get("stats", {}):
        return ""
    metric = ROW_METRIC[task]
    d = paired_on_common_seeds(
        ra["stats"][task][metric]["values"], rb["stats"][task][metric]["values"]
    )
    if d is None:
        return ""
    p = "n/a" if d["p_value"] is None else f"{d['p_value']:.3f}"
    return (
        f"{a} - {b} on {task} ({metric}, {d['n']} seeds): {100 * d['mean']:+.2f} ± "
        f"{100 * d['std']:.2f} points; paired t = {d['t'] if d['t'] is None else round(d['t'], 2)}, "
        f"p = {p}; {a} ahead on {d['wins']} of {d['n']} seeds."
    )


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
    seeds = cfg.seed_list()
    seeded = cfg.seeded(methods, tasks)
    jobs = [
        (RunConfig(method=m, task=t, **{**common, "seed": seed,
                                        "progress": cfg.progress and workers == 1}),
         str(out / (f"{t}-{m}" if len(seeds) == 1 else f"{t}-{m}-seed{seed}")))
        for m in methods
        for t in tasks
        for seed in (seeds if (m, t) in seeded else seeds[:1])
    ]  # fmt: skip
    runs = train_runs(jobs, prep, workers, torch.get_num_threads())
    for method in methods:
        rows.append(
            _method_row(method, [(j, r) for (j, _), r in zip(jobs, runs) if j.method == method])
        )
    table = markdown_table(rows)
    per_type = types_table(rows)
    if per_type:
        table += "\n\nVQA accuracy % per question type (test; mean over seeds):\n\n" + per_type
    for a, b in (("p_adapter", "adapter"), ("p_adapter_code", "adapter")):
        line = paired_line(rows, a, b)
        if line:
            table += "\n\n" + line
    players = p_layer_table(rows)
    if players:
        table += "\n\nLearned p per adapted attention (mean ± std over seeds):\n\n" + players
    focus = None
    if cfg.embedded and "vqa" in tasks:
        focus = cross_attention_focus(prepare_task(cfg, prep, "vqa").backbone(), prep.root)
        table += "\n\n" + focus_line(focus)
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
        "sizes": {d.task: {s: len(x) for s, x in d.datasets.items()} for d in prep.tasks.values()},
        "config": cfg.to_dict(),
        "rows": rows,
        "pretrain": pretrain,
        "cross_attention_focus": focus,
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
