"""llm benchmark: LLM-Adapters' methods against full fine-tuning on a decoder, and Generative
Adapter's cost of adapting to a long context against prompting with it.

1. One training step at ``batch x seq`` tokens (default 8 x 1024) of a Llama with SmolLM2-135M's
   layer shape (hidden 576, MLP 1536, 9 heads, 3 key/value heads; random init) for series
   (MLP), parallel (MLP), LoRA (q, k, v, up, down; r 32), prefix (10 tokens) and full
   fine-tuning: median step time and peak memory (CUDA: ``max_memory_allocated``; CPU: peak RSS
   of a fresh process per method, next to the RSS of a process that only builds the model).
   On CPU the model is cut to ``--layers`` (default 2) and a 8192-token vocabulary so that the
   run takes minutes; on CUDA it has all 30 layers and the 49152-token vocabulary.
2. Answering a question about a ``--context``-token document (default 4096): prompting (prefill
   of context + question, then greedy decoding with the KV cache) against Generative Adapter
   (encode the context once in 1024-token windows, then answer with the question alone).

    uv run --all-packages python bench/bench_llm.py [--device cpu|cuda] [--layers 2] [--seq 1024]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

METHODS = ["full", "series", "parallel", "lora", "prefix"]


def _model(layers: int, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
        tie_word_embeddings=True, rope_theta=100000.0,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def run_step(
    method: str, device: str, layers: int, vocab: int, batch: int, seq: int, repeats: int
) -> dict:
    from adapterlab.core import FullFinetuneConfig, add_adapter
    from adapterlab.llm.methods import build_config

    dev = torch.device(device)
    model = _model(layers, vocab)
    if method == "full":
        add_adapter(model, FullFinetuneConfig())
    elif method != "none":
        add_adapter(
            model, build_config(method, range(layers), bottleneck=256, lora_r=32, lora_alpha=64.0)
        )
    model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4) if params else None
    ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(0)).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(repeats + 1 if method != "none" else 0):
        _sync(dev)
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(dev)
        if i:
            times.append(time.perf_counter() - start)
    peak = (
        torch.cuda.max_memory_allocated()
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "method": method, "trainable": sum(p.numel() for p in params),
        "step_s": statistics.median(times) if times else None, "peak_mb": peak / 2**20,
    }  # fmt: skip


def run_context(
    device: str,
    layers: int,
    vocab: int,
    context: int,
    labels: tuple[str, ...],
    question: int = 32,
    new: int = 16,
) -> dict:
    from adapterlab.llm.models.generative_adapter import GenerativeAdapter

    dev = torch.device(device)
    model = _model(layers, vocab).to(dev).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, vocab, (1, context), generator=g).to(dev)
    q = torch.randint(0, vocab, (1, question), generator=g).to(dev)
    out = {}
    with torch.no_grad():
        for label in labels:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            _sync(dev)
            start = time.perf_counter()
            if label == "prompting":
                model.generate(
                    torch.cat([ctx, q], 1),
                    max_new_tokens=new,
                    min_new_tokens=new,
                    do_sample=False,
                    pad_token_id=0,
                )
                _sync(dev)
                adapt, answer = 0.0, time.perf_counter() - start
            else:
                ga = GenerativeAdapter(
                    model,
                    list(range(layers)),
                    rank=1024,
                    max_rank=128,
                    alpha=64.0,
                    norm="frobenius",
                    chunk=1024,
                )
                states = ga.encode(ctx)
                _sync(dev)
                adapt = time.perf_counter() - start
                start = time.perf_counter()
                with ga.using(states):
                    model.generate(
                        q, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
                    )
                _sync(dev)
                answer = time.perf_counter() - start
                ga.remove()
            peak = (
                torch.cuda.max_memory_allocated()
                if dev.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            )
            out[label] = {"adapt_s": adapt, "answer_s": answer, "peak_mb": peak / 2**20}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--one-context", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    cuda = a.device.startswith("cuda")
    layers = a.layers or (30 if cuda else 2)
    vocab = a.vocab or (49152 if cuda else 8192)
    repeats = a.repeats or (3 if cuda else 1)
    if a.one:
        print(json.dumps(run_step(a.one, a.device, layers, vocab, a.batch, a.seq, repeats)))
        return
    if a.one_context:
        print(json.dumps(run_context(a.device, layers, vocab, a.context, (a.one_context,))))
        return
    print(f"# bench-llm on {a.device} ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads): Llama {layers} layers x (576 hidden, 1536 MLP, 9/3 heads), "
          f"vocab {vocab}, batch {a.batch} x {a.seq} tokens")  # fmt: skip
    rows = []
    for method in ["none", *METHODS]:
        if cuda:
            rows.append(run_step(method, a.device, layers, vocab, a.batch, a.seq, repeats))
        else:  # a fresh process per method: its peak RSS is that method's alone
            cmd = [sys.executable, __file__, "--device", a.device, "--layers", str(layers), "--vocab", str(vocab),
                   "--batch", str(a.batch), "--seq", str(a.seq), "--repeats", str(repeats), "--one", method]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    full = next(r for r in rows if r["method"] == "full")
    print("\n| method | trainable params | step time (s) | vs full FT | peak memory (MB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        if r["method"] == "none":
            print(f"| (model only, no step) | 0 | - | - | {r['peak_mb']:.0f} |")
            continue
        print(
            f"| {r['method']} | {r['trainable']:,} | {r['step_s']:.2f} | {r['step_s'] / full['step_s']:.2f}x | {r['peak_mb']:.0f} |"
        )
    labels = ("prompting", "generative_adapter")
    if cuda:
        ctx = run_context(a.device, layers, vocab, a.context, labels)
    else:  # peak RSS of a fresh process per approach
        ctx = {}
        for label in labels:
            cmd = [sys.executable, __file__, "--device", a.device, "--layers", str(layers), "--vocab", str(vocab),
                   "--context", str(a.context), "--one-context", label]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            ctx.update(json.loads(res.stdout.strip().splitlines()[-1]))
    print(
        f"\n| {a.context}-token context, 32-token question, 16 new tokens | adapt to the context (s) | answer (s) | peak memory (MB) |"
    )
    print("|---|---|---|---|")
    for label, r in ctx.items():
        print(f"| {label} | {r['adapt_s']:.2f} | {r['answer_s']:.2f} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
