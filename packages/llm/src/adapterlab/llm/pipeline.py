"""The main job (``adapterlab-llm run-all``): LLM-Adapters methods on the embedded math and
commonsense tasks, a Trans-LoRA transfer to a second base model with its ablations, and
Generative Adapter against its baselines; writes ``summary.md`` and ``summary.json``."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from adapterlab.core import list_adapters
from adapterlab.core.engine import atomic_write_json, atomic_write_text, seed_everything
from adapterlab.core.engine.seeds import aggregate_seeds, format_mean_std, resolve_seeds

from . import translora as tl
from .config import AdaptConfig, GenAdapterConfig, PipelineConfig, TransLoraConfig
from .data.arith import make_arith
from .data.documents import load_documents, qa_prompt
from .data.wordnet_mc import make_wordnet_mc
from .models.generative_adapter import GenerativeAdapter
from .models.llm import load_llm
from .task import answer_checker, generate, tokenise_texts
from .train import (
    adapter_layers,
    score_generation,
    top_of,
    train_adapter,
    train_genadapter,
    train_lm,
)

__all__ = ["DIRECTIONS", "run_all"]

#: each paper's claim, next to which our table reports whether the run agrees
DIRECTIONS = {
    "llm_adapters": "LLaMA-7B, math average: LoRA 46.9 > parallel 46.4 > series 44.6 > prefix 35.0 (commonsense: LoRA > parallel > series > prefix)",
    "translora": "the transferred LoRA is at least as good as the source LoRA and better than the bare target; filtered synthetic data beats unfiltered and random data",
    "genadapter": "the generated adapter answers questions about a context without it in the prompt, far above the frozen LM and above a LoRA fine-tuned on the contexts, below prompting with the context",
}

KINDS = {"math": "number", "commonsense": "option"}
SOURCE_LORA = "source_lora"  # the math LoRA kept for Trans-LoRA


def _task_data(task: str, n_train: int, n_val: int, n_test: int, seed: int = 0):
    make = make_arith if task == "math" else make_wordnet_mc
    train, test = make(n_train + n_val, n_test, seed)
    return train[:n_train], train[n_train:], test


def _log(msg: str) -> None:
    print(f"[llm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_llm_adapters(
    lm, tok, top, cfg: PipelineConfig, out: Path, seeds: list[int]
) -> dict[str, Any]:
    """Every method (and placement) on every task for every seed, plus the frozen LM."""
    methods = [m.strip() for m in cfg.methods.split(",") if m.strip()]
    if cfg.placement_sweep:
        methods = [
            f"{m.split('@')[0]}@{p}"
            for m in methods
            for p in (("attn",) if m.startswith("prefix") else ("attn", "mlp", "both"))
        ]
    results: dict[str, Any] = {}
    for task in [t.strip() for t in cfg.tasks.split(",") if t.strip()]:
        train, val, test = _task_data(task, cfg.n_train, 32, cfg.n_test)
        kind = KINDS[task]
        tl.activate(top, [])
        base = score_generation(lm, tok, test, kind, max_new_tokens=24 if task == "math" else 10)
        results[task] = {"frozen": {"accuracy": {s: base["accuracy"] for s in seeds}}}
        _log(f"{task}: frozen LM {base['accuracy']:.1f}")
        for method in methods:
            per_seed: dict[int, dict[str, float]] = {}
            for seed in seeds:
                run = AdaptConfig(
                    model=cfg.model, task=task, method=method, steps=cfg.steps, seed=seed,
                    n_train=cfg.n_train, n_test=cfg.n_test, top_layers=cfg.top_layers,
                    max_new_tokens=24 if task == "math" else 10,
                    out=str(out / "llm_adapters" / task / method.replace("@", "_") / f"seed{seed}"),
                )  # fmt: skip
                keep = task == "math" and method == "lora" and seed == seeds[0] and cfg.translora
                r = train_adapter(
                    top,
                    tok,
                    run,
                    train,
                    val,
                    test,
                    kind=kind,
                    keep=keep,
                    name=SOURCE_LORA if keep else None,
                )
                per_seed[seed] = {
                    "accuracy": r.test.get("accuracy", float("nan")),
                    "trainable": r.trainable_params,
                    "seconds": r.seconds,
                }
                _log(
                    f"{task} {method} seed {seed}: {per_seed[seed]['accuracy']:.1f} ({r.seconds:.0f} s)"
                )
            results[task][method] = {
                k: {s: v[k] for s, v in per_seed.items()} for k in per_seed[seeds[0]]
            }
    return results


def run_translora(src_lm, src_tok, src_top, cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    """Source math LoRA (kept from the LLM-Adapters runs) -> the target base model."""
    tcfg = TransLoraConfig(
        source_model=cfg.model, target_model=cfg.target_model, top_layers=cfg.top_layers
    )
    train, _, test = _task_data("math", cfg.n_train, 32, cfg.n_test)
    src_name = SOURCE_LORA
    if src_name not in list_adapters(src_top):
        raise ValueError(
            "Trans-LoRA transfers the math LoRA of the LLM-Adapters runs: keep lora in --methods"
        )
    rows: dict[str, float] = {}
    tl.activate(src_top, [src_name])
    rows["source LoRA on source"] = score_generation(src_lm, src_tok, test, "number")["accuracy"]
    seeds_ex = train[: tcfg.n_seed]
    # 1. discriminator: real inputs vs the source base model's synthetic ones
    tl.activate(src_top, [])
    fake = tl.synthesise_inputs(src_lm, src_tok, seeds_ex, 24, seed=1)
    real = [e.instruction for e in train[tcfg.n_seed : tcfg.n_seed + 24]]
    tl.train_discriminator(
        src_top,
        src_tok,
        real,
        fake,
        run_dir=str(out / "translora" / "discriminator"),
        steps=tcfg.disc_steps,
        lr=tcfg.lr,
        seed=0,
    )
    held_real = [e.instruction for e in train[-16:]]
    _log(f"translora: discriminator trained on {len(real)} real / {len(fake)} synthetic")
    # 2. target model and its synthetic inputs
    tgt_lm, tgt_tok = load_llm(cfg.target_model)
    tgt_top = top_of(tgt_lm, cfg.top_layers)
    rows["bare target"] = score_generation(tgt_lm, tgt_tok, test, "number")["accuracy"]
    candidates = tl.synthesise_inputs(
        tgt_lm, tgt_tok, seeds_ex, tcfg.n_synthetic, rounds=tcfg.max_tries, seed=2
    )
    tl.activate(src_top, ["disc"])
    scores = tl.score_real(src_lm, src_tok, candidates)
    kept = tl.filter_inputs(candidates, scores)
    held_scores = tl.score_real(src_lm, src_tok, held_real)
    _log(f"translora: target wrote {len(candidates)} inputs, discriminator kept {len(kept)}")
    tl.activate(src_top, [src_name])
    info = {
        "candidates": len(candidates), "kept": len(kept),
        "held_out_real_accepted": sum(s > 0 for s in held_scores) / max(1, len(held_scores)),
        "examples_kept": kept[:5], "examples_rejected": [c for c in candidates if c not in kept][:5],
    }  # fmt: skip
    runs = [("filtered -> LoRA", kept, "lora"), ("filtered -> series adapter", kept, "series"),
            ("no filter -> LoRA", candidates, "lora"), ("random synthetic -> LoRA", tl.random_inputs(tgt_tok, len(kept) or len(candidates), seed=3), "lora")]  # fmt: skip
    for label, inputs, method in runs:
        try:
            d = tl.distill(
                src_lm, src_tok, tgt_top, tgt_tok, inputs, method=method, steps=tcfg.steps,
                batch_size=tcfg.batch_size, lr=tcfg.lr, seed=0,
                run_dir=str(out / "translora" / label.replace(" ", "_").replace(">", "").replace("-", "")),
            )  # fmt: skip
        except tl.EmptySyntheticSet as err:
            rows[label] = float("nan")
            info[f"{label} error"] = str(err)
            continue
        rows[label] = score_generation(tgt_lm, tgt_tok, test, "number")["accuracy"]
        tl.remove(tgt_top, d.name)
        _log(f"translora {label}: {rows[label]:.1f}")
    del tgt_lm, tgt_top
    tl.activate(src_top, [])
    return {"accuracy": rows, "info": info}


def run_genadapter(lm, tok, top, cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    """Generative Adapter vs the frozen LM without / with the context and a LoRA on the contexts."""
    gcfg = GenAdapterConfig()
    docs = load_documents(gcfg.n_docs, seed=0)
    texts = [d.text for d in docs]
    qa = [(d, q, a) for d in docs for q, a in d.questions]
    check = answer_checker("contains")
    questions = [qa_prompt(q) for _, q, _ in qa]

    def score(texts_out: list[str]) -> float:
        return 100.0 * sum(check(t, a) for t, (_, _, a) in zip(texts_out, qa)) / len(qa)

    rows: dict[str, float] = {}
    tl.activate(top, [])
    rows["frozen LM, no context"] = score(generate(lm, tok, questions, max_new_tokens=16))
    rows["frozen LM, context in prompt"] = score(
        generate(lm, tok, [qa_prompt(q, d.text) for d, q, _ in qa], max_new_tokens=16)
    )
    # LoRA fine-tuned on the contexts (language modelling), then asked without them
    layers = adapter_layers(lm, cfg.top_layers)
    from .methods import build_config

    items = tokenise_texts(texts, tok)
    train_lm(top, build_config("lora", layers), items, items[:4], run_dir=str(out / "genadapter" / "lora_on_contexts"),
             name="ctx_lora", steps=gcfg.steps, batch_size=8, lr=1e-3, seed=0)  # fmt: skip
    rows["LoRA fine-tuned on the contexts"] = score(generate(lm, tok, questions, max_new_tokens=16))
    tl.remove(top, "ctx_lora")
    # Generative Adapter
    seed_everything(0)
    ga = GenerativeAdapter(
        lm,
        list(layers),
        rank=gcfg.rank,
        max_rank=gcfg.max_rank,
        alpha=gcfg.alpha,
        norm=gcfg.norm,
        chunk=gcfg.chunk,
    )
    train_genadapter(
        ga,
        tok,
        texts,
        texts[:4],
        run_dir=out / "genadapter" / "generator",
        steps=gcfg.steps,
        batch_size=gcfg.batch_size,
        lr=gcfg.lr,
        seed=0,
    )
    outs = []
    for d in docs:  # one encoding per document, its questions answered together
        enc = tok(d.text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            states = ga.encode(enc["input_ids"], enc["attention_mask"])
        prompts = [qa_prompt(q) for q, _ in d.questions]
        with ga.using(states.expand(-1, len(prompts), -1, -1)):
            outs.extend(generate(lm, tok, prompts, max_new_tokens=16))
    rows["Generative Adapter (context -> deltas)"] = score(outs)
    ga.remove()
    _log("genadapter: " + ", ".join(f"{k} {v:.1f}" for k, v in rows.items()))
    return {"accuracy": rows, "n_questions": len(qa)}


def _mean(values: dict[int, float]) -> float:
    return sum(values.values()) / len(values)


def agreement(res: dict[str, Any]) -> dict[str, str]:
    """Our direction for each paper's claim, in words."""
    out: dict[str, str] = {}
    paper_order = ["lora", "parallel", "series", "prefix"]
    for task, rows in res.get("llm_adapters", {}).items():
        means = {m: _mean(v["accuracy"]) for m, v in rows.items() if m in paper_order}
        if len(means) >= 2:
            ours = sorted(means, key=lambda m: -means[m])
            same = ours == [m for m in paper_order if m in means]
            frozen = _mean(rows["frozen"]["accuracy"])
            beat = sum(v > frozen for v in means.values())
            out[f"llm_adapters/{task}"] = (
                f"ours: {' > '.join(f'{m} {means[m]:.1f}' for m in ours)} (frozen {frozen:.1f}); "
                f"order {'agrees' if same else 'differs'}; {beat}/{len(means)} methods beat the frozen LM"
            )
    if "translora" in res:
        a = res["translora"]["accuracy"]
        f = a.get("filtered -> LoRA", float("nan"))
        parts = [
            f"filtered LoRA {f:.1f} vs source LoRA {a['source LoRA on source']:.1f} "
            f"({'>=' if f >= a['source LoRA on source'] else '<'}) and bare target {a['bare target']:.1f} "
            f"({'>' if f > a['bare target'] else '<='})",
            f"filter vs none {f:.1f} / {a.get('no filter -> LoRA', float('nan')):.1f}, "
            f"random {a.get('random synthetic -> LoRA', float('nan')):.1f}",
        ]
        out["translora"] = "ours: " + "; ".join(parts)
    if "genadapter" in res:
        a = res["genadapter"]["accuracy"]
        ga = a["Generative Adapter (context -> deltas)"]
        out["genadapter"] = (
            f"ours: GA {ga:.1f} vs frozen without context {a['frozen LM, no context']:.1f}, "
            f"LoRA on contexts {a['LoRA fine-tuned on the contexts']:.1f}, prompting "
            f"{a['frozen LM, context in prompt']:.1f}"
        )
    return out


def _summary(res: dict[str, Any], cfg: PipelineConfig, seeds: list[int], seconds: float) -> str:
    lines = [f"# adapterlab-llm run-all ({cfg.model}; seeds {seeds}; {seconds:.0f} s)", ""]
    if "llm_adapters" in res:
        lines += [
            "## LLM-Adapters (accuracy %, mean ± std over seeds)",
            "",
            f"Paper: {DIRECTIONS['llm_adapters']}",
            "",
        ]
        for task, rows in res["llm_adapters"].items():
            lines += [
                f"### {task}",
                "",
                "| method | accuracy | trainable params |",
                "|---|---|---|",
            ]
            for method, vals in rows.items():
                stats = aggregate_seeds({s: {"accuracy": v} for s, v in vals["accuracy"].items()})[
                    "accuracy"
                ]
                trainable = next(iter(vals.get("trainable", {0: 0}).values()))
                lines.append(f"| {method} | {format_mean_std(stats)} | {trainable:,} |")
            lines.append("")
    if "translora" in res:
        lines += [
            "## Trans-LoRA (math accuracy %, one seed)",
            "",
            f"Paper: {DIRECTIONS['translora']}",
            "",
            "| run | accuracy |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.1f} |" for k, v in res["translora"]["accuracy"].items()]
        lines += [
            "",
            "Filter: "
            + json.dumps(
                {k: v for k, v in res["translora"]["info"].items() if not k.startswith("examples")}
            ),
            "",
        ]
    if "genadapter" in res:
        lines += [
            "## Generative Adapter (questions answered %, package documents)",
            "",
            f"Paper: {DIRECTIONS['genadapter']}",
            "",
            "| condition | accuracy |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.1f} |" for k, v in res["genadapter"]["accuracy"].items()]
        lines.append("")
    lines += ["## Direction: the papers' and ours", ""]
    for key, text in res.get("agreement", {}).items():
        lines.append(f"- {key}: {text}")
    lines.append("")
    return "\n".join(lines)


def run_all(cfg: PipelineConfig) -> dict[str, Any]:
    """Run the main job and write ``summary.md`` / ``summary.json`` under ``cfg.out``."""
    start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = resolve_seeds(cfg.seeds)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    _log(f"loading {cfg.model}")
    lm, tok = load_llm(cfg.model)
    top = top_of(lm, cfg.top_layers)
    res: dict[str, Any] = {"config": asdict(cfg), "seeds": seeds, "directions": DIRECTIONS}
    res["llm_adapters"] = run_llm_adapters(lm, tok, top, cfg, out, seeds)
    atomic_write_json(out / "summary.json", res)
    if cfg.translora and "math" in cfg.tasks:
        res["translora"] = run_translora(lm, tok, top, cfg, out)
        atomic_write_json(out / "summary.json", res)
    if cfg.genadapter:
        res["genadapter"] = run_genadapter(lm, tok, top, cfg, out)
    seconds = time.perf_counter() - start
    res["seconds"] = seconds
    res["agreement"] = agreement(res)
    atomic_write_json(out / "summary.json", res)
    text = _summary(res, cfg, seeds, seconds)
    atomic_write_text(out / "summary.md", text + "\n")
    print(text)
    return res
