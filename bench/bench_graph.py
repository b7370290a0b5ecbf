"""GraphAdapter benchmark, side by side in one run (each measurement in its own subprocess, so
peak memory is that phase's own peak RSS):

1. LLM-cache preprocessing: nodes/s, peak memory and bytes on disk per 1k nodes at 1k, 5k and
   20k nodes (synthetic TAGs; a random Llama with SmolLM2-135M's hidden size and vocabulary but
   2 layers, so the streaming pipeline, not the transformer, is what grows), plus SmolLM2-135M
   itself on a few hundred nodes for the real throughput;
2. one pre-training step on the same batch of node texts: GraphAdapter (GNN + fusion on cached
   states, frozen LM head) against LoRA fine-tuning of SmolLM2 (r=8 on every q/v projection,
   next-token loss), with step time, peak memory and trainable parameters. Target: >= 5x;
3. how GraphAdapter's pre-training epoch and fine-tuning step grow with the node count.

    uv run --all-packages python bench/bench_graph.py [--sizes 1000,5000,20000] [--smollm2-nodes 200]

Results also go to ``bench/results/graph.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _shaped_llm(layers: int = 2):
    """A random Llama with SmolLM2-135M's width, heads and vocabulary (the tokenizer is the
    tiny word-level one: throughput is then the pipeline's, not the tokenizer's)."""
    import torch
    from adapterlab.graph.models.llm import load_llm
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok = load_llm("tiny-llama", vocab_words=_vocab())
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                      num_hidden_layers=layers, num_attention_heads=9, num_key_value_heads=3,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(cfg).eval().requires_grad_(False), tok


def _vocab() -> list[str]:
    from adapterlab.graph.data.synth import _FILLER, _TOPICS

    return sorted({w for t in _TOPICS for w in t} | set(_FILLER))


def _data(nodes: int, root: Path):
    from adapterlab.graph.data import load_dataset, synthesize_tag

    return load_dataset(synthesize_tag(root / f"tag{nodes}", num_nodes=nodes, num_classes=6))


def phase_cache(nodes: int, model: str, work: Path) -> dict:
    import torch
    from adapterlab.graph.cache import CacheSpec, build_cache
    from adapterlab.graph.models.llm import load_llm

    data = _data(nodes, work)
    if model == "smollm2":
        llm, tok = load_llm("smollm2", dtype="bfloat16")  # as the main job
        texts = data.texts
    else:
        llm, tok = _shaped_llm()
        texts = data.texts
    base = _peak_mb()
    t = time.perf_counter()
    with torch.no_grad():
        cache = build_cache(work / f"cache-{model}-{nodes}", texts, llm, tok,
                            CacheSpec(model=model, llm_dtype=str(next(llm.parameters()).dtype)),
                            show_progress=False)  # fmt: skip
    dt = time.perf_counter() - t
    return {"nodes": nodes, "model": model, "seconds": dt, "nodes_per_s": nodes / dt,
            "peak_mb": _peak_mb(), "peak_above_model_mb": _peak_mb() - base,
            "bytes_per_1k_nodes": cache.bytes_on_disk() * 1000 / nodes,
            "tokens": int(cache.token_ptr[-1])}  # fmt: skip


def _batch_nodes(cache, n: int) -> list[int]:
    return list(range(min(n, cache.num_nodes)))


def phase_step(method: str, work: Path, batch: int, steps: int) -> dict:
    """Median step time of GraphAdapter pre-training or LoRA on SmolLM2, same node texts."""
    import torch
    from adapterlab.core import LoraConfig, add_adapter, trainable_summary
    from adapterlab.graph.cache import CacheSpec, LLMCache
    from adapterlab.graph.config import PretrainConfig
    from adapterlab.graph.models.graphadapter import GraphAdapter, GraphAdapterPretrainer
    from adapterlab.graph.task import PretrainBatches, pretrain_loss

    cache = LLMCache(work / "cache-smollm2-step")
    data = _data(cache.num_nodes, work)
    ids = _batch_nodes(cache, batch)
    times = []
    if method == "graphadapter":
        cfg = PretrainConfig()
        model = GraphAdapterPretrainer(GraphAdapter(cache.hidden_size, cfg.hidden), cache.lm_head())
        params = [p for p in model.adapter.parameters()]
        opt = torch.optim.AdamW(params, lr=1e-4)
        b = PretrainBatches(cache, data.edge_index, [10, 10])(ids)
        base = _peak_mb()
        for _ in range(steps):
            t = time.perf_counter()
            loss = pretrain_loss(model, b)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
        trainable = sum(p.numel() for p in params)
        tokens = len(b["labels"])
    else:
        from adapterlab.graph.cache import _sequences
        from adapterlab.graph.models.llm import load_llm

        llm, tok = load_llm("smollm2")
        add_adapter(llm, LoraConfig(r=8, alpha=16, target_modules=r".*\.(q_proj|v_proj)"))
        seqs = _sequences(CacheSpec(model="smollm2"), tok, [data.texts[i] for i in ids])
        width = max(len(s) for s, _, _ in seqs)
        input_ids = torch.full((len(seqs), width), tok.pad_token_id)
        mask = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, -100)
        for i, (s, n_pre, n_text) in enumerate(seqs):
            input_ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
            labels[i, n_pre : n_pre + n_text] = torch.tensor(s[n_pre : n_pre + n_text])
        llm.train()
        opt = torch.optim.AdamW([p for p in llm.parameters() if p.requires_grad], lr=1e-4)
        base = _peak_mb()
        for _ in range(steps):
            t = time.perf_counter()
            loss = llm(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
        trainable = trainable_summary(llm).trainable
        tokens = int((labels != -100).sum())
    return {"method": method, "step_s": statistics.median(times[1:] or times), "peak_mb": _peak_mb(),
            "peak_above_setup_mb": _peak_mb() - base, "trainable": trainable, "tokens": tokens,
            "nodes": len(ids)}  # fmt: skip


def phase_growth(nodes: int, work: Path) -> dict:
    """GraphAdapter pre-training epoch and fine-tuning step on the shaped cache of ``nodes``."""
    import torch
    from adapterlab.graph.cache import LLMCache
    from adapterlab.graph.models.graphadapter import (
        GraphAdapter,
        GraphAdapterClassifier,
        GraphAdapterPretrainer,
    )  # fmt: skip
    from adapterlab.graph.task import (
        ClassificationBatches,
        PretrainBatches,
        classification_loss,
        pretrain_loss,
    )  # fmt: skip

    data = _data(nodes, work)
    cache = LLMCache(work / f"cache-shaped-{nodes}")
    model = GraphAdapterPretrainer(GraphAdapter(cache.hidden_size, 64), cache.lm_head())
    opt = torch.optim.AdamW(model.adapter.parameters(), lr=1e-4)
    collate = PretrainBatches(cache, data.edge_index, [10, 10])
    base = _peak_mb()
    step_times = []
    for start in range(0, min(nodes, 32 * 6), 32):  # 6 steps; the epoch is projected
        t = time.perf_counter()
        loss = pretrain_loss(model, collate(list(range(start, start + 32))))["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad()
        step_times.append(time.perf_counter() - t)
    epoch = statistics.median(step_times[1:]) * -(-nodes // 32)
    clf = GraphAdapterClassifier(model.adapter, 6)
    opt = torch.optim.AdamW(clf.parameters(), lr=1e-4)
    batch = ClassificationBatches(cache, data.edge_index, data.y, [None, None])(
        data.train_mask.nonzero().view(-1).tolist()
    )
    times = []
    for _ in range(4):
        t = time.perf_counter()
        classification_loss(clf, batch).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return {"nodes": nodes, "pretrain_epoch_s": epoch, "finetune_step_s": statistics.median(times[1:]),
            "peak_above_cache_mb": _peak_mb() - base}  # fmt: skip


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"phase {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--smollm2-nodes", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32, help="nodes per pre-training step")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--work", default=None)
    ap.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        work = Path(rest[-1])
        if kind == "cache":
            res = phase_cache(int(rest[0]), rest[1], work)
        elif kind == "step":
            res = phase_step(rest[0], work, int(rest[1]), int(rest[2]))
        else:
            res = phase_growth(int(rest[0]), work)
        print(json.dumps(res))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-graph-"))
    print(f"bench-graph: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; work dir {work}")  # fmt: skip
    cache_rows = [_child(["cache", str(n), "shaped", str(work)]) for n in sizes]
    real = _child(["cache", str(args.smollm2_nodes), "smollm2", str(work)])
    os.replace(work / f"cache-smollm2-{args.smollm2_nodes}", work / "cache-smollm2-step")
    ga = _child(["step", "graphadapter", str(args.batch), str(args.steps), str(work)])
    lora = _child(["step", "lora", str(args.batch), str(args.steps), str(work)])
    growth = [_child(["growth", str(n), str(work)]) for n in sizes]

    print("\n1. LLM cache preprocessing (fp16 storage, chunks of 128 nodes)")
    print(
        "| model | nodes | nodes/s | peak RSS (MB) | peak above model (MB) | disk per 1k nodes (MB) |"
    )
    print("|---|---|---|---|---|---|")
    for r in [*cache_rows, real]:
        name = "SmolLM2-135M (30 layers)" if r["model"] == "smollm2" else "SmolLM2-shaped, 2 layers"
        print(f"| {name} | {r['nodes']} | {r['nodes_per_s']:.1f} | {r['peak_mb']:.0f} | "
              f"{r['peak_above_model_mb']:.0f} | {r['bytes_per_1k_nodes'] / 1e6:.1f} |")  # fmt: skip
    print(f"\n2. one pre-training step, same {ga['nodes']} node texts ({ga['tokens']} tokens)")
    print("| method | step (s) | peak RSS (MB) | trainable params |")
    print("|---|---|---|---|")
    for r in (ga, lora):
        name = "GraphAdapter (GNN + fusion, cached states)" if r is ga else "LoRA r=8 q/v, SmolLM2"
        print(f"| {name} | {r['step_s']:.3f} | {r['peak_mb']:.0f} | {r['trainable']:,} |")
    print(f"speed-up GraphAdapter vs LoRA: {lora['step_s'] / ga['step_s']:.1f}x (target >= 5x)")
    print("\n3. growth with the node count (SmolLM2-shaped cache)")
    print(
        "| nodes | cache (s) | pre-train epoch (s, projected from 5 steps) | fine-tune full-batch step (s) | cache disk (MB) |"
    )
    print("|---|---|---|---|---|")
    for c, g in zip(cache_rows, growth, strict=True):
        print(f"| {c['nodes']} | {c['seconds']:.1f} | {g['pretrain_epoch_s']:.1f} | "
              f"{g['finetune_step_s']:.3f} | {c['bytes_per_1k_nodes'] * c['nodes'] / 1e9 * 1e3:.0f} |")  # fmt: skip
    results = {"cache": cache_rows, "smollm2_cache": real, "step": [ga, lora], "growth": growth,
               "load": os.getloadavg()[0]}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "graph.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
