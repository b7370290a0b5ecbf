"""GraphAdapter benchmark, side by side in one run. Each measurement runs in its own subprocess;
peak memory is the phase's own: the kernel's RSS high-water mark (VmHWM) is reset at the phase
start (``/proc/self/clear_refs``) and read at its end, minus the RSS at the start ("above start").
ru_maxrss/tracemalloc would not do: the first is the process high-water (the model load's peak
hides the phase), the second does not see torch's allocator.

1. LLM-cache preprocessing: nodes/s, peak memory and bytes on disk per 1k nodes at each size of
   ``--nodes`` (default 1k, 5k, 20k; synthetic TAGs) with a random Llama that has SmolLM2-135M's
   width, heads and vocabulary but 2 layers, so that 20k nodes fit a CPU budget: it shows how the
   streamed pipeline's time and memory grow; SmolLM2-135M itself (30 layers, real weights) is
   measured on ``--smollm2-nodes`` nodes, and its time at the larger sizes is extrapolated from
   that rate (labelled so);
2. one pre-training step on the same batch of node texts: GraphAdapter (GNN + fusion on cached
   states, frozen LM head) against LoRA fine-tuning of SmolLM2 (r=8 on every q/v projection,
   next-token loss), with step time, peak memory and trainable parameters. Target: >= 5x;
3. how GraphAdapter's pre-training epoch and fine-tuning step grow with the node count.

    uv run --all-packages python bench/bench_graph.py [--nodes 1000,5000,20000] [--smollm2-nodes 256]

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


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


class PeakRSS:
    """RSS high-water mark of a phase: ``start()`` resets the kernel's VmHWM, ``peak_mb`` reads
    it; ``above_start_mb`` subtracts the RSS at the start. Falls back to ru_maxrss (the process
    high-water, marked ``exact=False``) where /proc/self/clear_refs is unavailable."""

    def __init__(self) -> None:
        self.exact = False
        self.start_mb = 0.0

    def start(self) -> PeakRSS:
        import gc

        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = True
            self.start_mb = _status_mb("VmRSS")
        except OSError:
            self.start_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    @property
    def peak_mb(self) -> float:
        if self.exact:
            return _status_mb("VmHWM")
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    @property
    def above_start_mb(self) -> float:
        return self.peak_mb - self.start_mb


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


def head_bytes(cache) -> int:
    """Size of the LM head file (once per model, not per node)."""
    return (cache.root / "lm_head.safetensors").stat().st_size


def phase_cache(nodes: int, model: str, work: Path) -> dict:
    import torch
    from adapterlab.core.engine import resolve_compute_dtype
    from adapterlab.graph.cache import CacheSpec, build_cache
    from adapterlab.graph.models.llm import load_llm

    data = _data(nodes, work)
    dtype = str(resolve_compute_dtype("auto", "cpu")).removeprefix("torch.")  # as the main job
    if model == "smollm2":
        llm, tok = load_llm("smollm2", dtype=dtype)
    else:
        llm, tok = _shaped_llm()
        llm = llm.to(getattr(torch, dtype))
    spec = CacheSpec(model=model, llm_dtype=dtype, batch_size=64)  # the main job's settings
    peak = PeakRSS().start()
    t, c = time.perf_counter(), _cpu_s()
    with torch.no_grad():
        cache = build_cache(work / f"cache-{model}-{nodes}", data.texts, llm, tok, spec,
                            show_progress=False)  # fmt: skip
    dt, cpu = time.perf_counter() - t, _cpu_s() - c
    return {"nodes": nodes, "model": model, "llm_dtype": dtype, "seconds": dt, "cpu_s": cpu,
            "nodes_per_s": nodes / dt,
            "peak_mb": peak.peak_mb, "peak_above_start_mb": peak.above_start_mb,
            "peak_exact": peak.exact,
            "bytes_per_1k_nodes": (cache.bytes_on_disk() - head_bytes(cache)) * 1000 / nodes,
            "lm_head_bytes": head_bytes(cache),
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
        peak = PeakRSS().start()
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
        peak = PeakRSS().start()
        for _ in range(steps):
            t = time.perf_counter()
            loss = llm(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
        trainable = trainable_summary(llm).trainable
        tokens = int((labels != -100).sum())
    return {"method": method, "step_s": statistics.median(times[1:] or times),
            "peak_mb": peak.peak_mb, "peak_above_setup_mb": peak.above_start_mb,
            "trainable": trainable, "tokens": tokens,
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
    peak = PeakRSS().start()
    step_times = []
    for start in range(0, min(nodes, 32 * 6), 32):  # 6 steps; the epoch is projected
        t = time.perf_counter()
        loss = pretrain_loss(model, collate(list(range(start, start + 32))))["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad()
        step_times.append(time.perf_counter() - t)
    epoch = statistics.median(step_times[1:]) * -(-nodes // 32)
    torch.set_num_threads(1)  # as run-all's fine-tuning (finetune_threads=1)
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
            "peak_above_start_mb": peak.above_start_mb}  # fmt: skip


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
    ap.add_argument(
        "--nodes",
        "--sizes",
        dest="nodes",
        default="1000,5000,20000",
        help="node counts of the preprocessing and growth rows (comma-separated)",
    )
    ap.add_argument(
        "--smollm2-nodes",
        type=int,
        default=256,
        help="nodes read by the real SmolLM2-135M (its rate is extrapolated)",
    )
    ap.add_argument("--batch", type=int, default=32, help="nodes per pre-training step")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--work", default=None)
    ap.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        from adapterlab.graph.allocator import keep_large_allocations

        keep_large_allocations()  # as the CLI does, for every phase alike
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
    sizes = [int(s) for s in args.nodes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-graph-"))
    print(f"bench-graph: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; work dir {work}", flush=True)  # fmt: skip
    cache_rows = []
    for n in sizes:
        cache_rows.append(_child(["cache", str(n), "shaped", str(work)]))
        print(f"  cache {n} nodes: {cache_rows[-1]['seconds']:.0f} s", flush=True)
    real = _child(["cache", str(args.smollm2_nodes), "smollm2", str(work)])
    os.replace(work / f"cache-smollm2-{args.smollm2_nodes}", work / "cache-smollm2-step")
    ga = _child(["step", "graphadapter", str(args.batch), str(args.steps), str(work)])
    lora = _child(["step", "lora", str(args.batch), str(args.steps), str(work)])
    growth = [_child(["growth", str(n), str(work)]) for n in sizes]
    exact = all(r["peak_exact"] for r in [*cache_rows, real])
    peak_note = "VmHWM reset per phase" if exact else "ru_maxrss: process high-water (approximate)"

    dtype = real.get("llm_dtype", "?")
    print(f"\n1. LLM cache preprocessing ({dtype} LLM: the main job's auto choice here, fp16 storage, "
          f"chunks of 128 nodes, batch 64; peak = {peak_note})")  # fmt: skip
    print("| model | nodes | measured? | nodes/s | CPU-s | peak RSS (MB) | peak above start (MB) "
          "| disk per 1k nodes, without the LM head (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in cache_rows:
        print(f"| SmolLM2-shaped, 2 layers (random) | {r['nodes']} | measured | "
              f"{r['nodes_per_s']:.1f} | {r['cpu_s']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['peak_above_start_mb']:.0f} | {r['bytes_per_1k_nodes'] / 1e6:.1f} |")  # fmt: skip
    print(f"| SmolLM2-135M (30 layers, real) | {real['nodes']} | measured | "
          f"{real['nodes_per_s']:.2f} | {real['cpu_s']:.0f} | {real['peak_mb']:.0f} | "
          f"{real['peak_above_start_mb']:.0f} | {real['bytes_per_1k_nodes'] / 1e6:.1f} |")  # fmt: skip
    for n in sizes:
        secs = n / real["nodes_per_s"]
        print(f"| SmolLM2-135M (30 layers, real) | {n} | extrapolated: {secs / 60:.0f} min at "
              f"the measured rate | {real['nodes_per_s']:.2f} | {real['cpu_s'] * n / real['nodes']:.0f} "
              f"| - | - | {real['bytes_per_1k_nodes'] / 1e6:.1f} |")  # fmt: skip
    print(f"\n2. one pre-training step, same {ga['nodes']} node texts ({ga['tokens']} tokens)")
    print("| method | step (s) | peak RSS (MB) | peak above setup (MB) | trainable params |")
    print("|---|---|---|---|---|")
    for r in (ga, lora):
        name = "GraphAdapter (GNN + fusion, cached states)" if r is ga else "LoRA r=8 q/v, SmolLM2"
        print(f"| {name} | {r['step_s']:.3f} | {r['peak_mb']:.0f} | {r['peak_above_setup_mb']:.0f} "
              f"| {r['trainable']:,} |")  # fmt: skip
    print(f"speed-up GraphAdapter vs LoRA: {lora['step_s'] / ga['step_s']:.1f}x (target >= 5x)")
    print("\n3. growth with the node count (SmolLM2-shaped cache)")
    print("| nodes | cache (s) | cache peak above start (MB) | pre-train epoch (s, projected "
          "from 5 steps) | fine-tune full-batch step (s) | training peak above start (MB) "
          "| cache disk (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for c, g in zip(cache_rows, growth, strict=True):
        print(f"| {c['nodes']} | {c['seconds']:.1f} | {c['peak_above_start_mb']:.0f} | "
              f"{g['pretrain_epoch_s']:.1f} | {g['finetune_step_s']:.3f} | "
              f"{g['peak_above_start_mb']:.0f} | "
              f"{c['bytes_per_1k_nodes'] * c['nodes'] / 1e9:.0f} |")  # fmt: skip
    results = {"cache": cache_rows, "smollm2_cache": real, "step": [ga, lora], "growth": growth,
               "load": os.getloadavg()[0], "peak_measure": peak_note}  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "graph.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
