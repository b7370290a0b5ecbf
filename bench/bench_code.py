"""Code benchmark (adapterlab.code), side by side in one run.

1. TTC preprocessing (tree-sitter parse + fast-tokenizer + alignment) over standard-library files
   through ``datasets.map``: 1 process against all cores, in files/s and subword tokens/s (no
   cache, so both really work).
2. One TTC training step (forward, backward, AdamW) with the NER adapter on a frozen encoder
   against full fine-tuning of the same model: median step time and peak memory. Each setting
   runs in its own fresh process; memory is the process's peak RSS growth during the steps on
   CPU (``torch.cuda.max_memory_allocated`` on GPU). Rounds alternate between the settings.
3. Trainable parameters (% of the model).

Results also go to ``bench/results/code.json``.

    uv run --all-packages python bench/bench_code.py [--model minilm] [--files 60] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from pathlib import Path


def preprocessing(model: str, n_files: int, procs: list[int]) -> list[dict]:
    from adapterlab.code.data.embedded import stdlib_files
    from adapterlab.code.data.ttc import TTCSettings, build_ttc_dataset
    from adapterlab.code.models.backbone import load_backbone

    _, tokenizer = load_backbone(model)
    files = stdlib_files()
    step = max(1, len(files) // n_files)
    chosen = [(str(p), "python") for p in files[::step][:n_files]]
    rows = []
    for num_proc in procs:
        start = time.perf_counter()
        data, stats = build_ttc_dataset(
            chosen, tokenizer, TTCSettings(max_length=512), num_proc=num_proc
        )
        seconds = time.perf_counter() - start
        tokens = sum(sum(1 for x in row if x != -100) for row in data["labels"])
        rows.append(
            {
                "processes": num_proc,
                "files": stats.files,
                "seconds": round(seconds, 2),
                "files_per_s": round(stats.files / seconds, 1),
                "tokens_per_s": round(tokens / seconds),
                "tokens": tokens,
            }
        )
    return rows


def _step_worker(model_name: str, setting: str, steps: int, batch: int, length: int, queue) -> None:
    import torch
    from adapterlab.code.data.token_types import TOKEN_TYPES
    from adapterlab.code.methods import add_ner_adapter
    from adapterlab.code.models.backbone import load_backbone
    from adapterlab.code.models.ner import TokenTypeModel
    from adapterlab.code.task import ttc_loss_fn
    from adapterlab.core import FullFinetuneConfig, add_adapter, trainable_summary

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder, tokenizer = load_backbone(model_name)
    model = TokenTypeModel(encoder, len(TOKEN_TYPES))
    if setting == "ner_adapter":
        add_ner_adapter(model, "pfeiffer", 16.0, head="ttc_head")
    else:
        add_adapter(model, FullFinetuneConfig(), name="full")
    model.to(device).train()
    summary = trainable_summary(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = len(tokenizer)
    batch_data = {
        "input_ids": torch.randint(5, vocab, (batch, length), device=device),
        "attention_mask": torch.ones(batch, length, dtype=torch.long, device=device),
        "labels": torch.randint(0, len(TOKEN_TYPES), (batch, length), device=device),
    }
    loss_fn = ttc_loss_fn()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = loss_fn(model, batch_data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base_gpu) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    queue.put(
        {
            "setting": setting,
            "step_s": statistics.median(times[1:]),
            "peak_mb": peak_mb,
            "trainable": summary.trainable,
            "total": summary.total,
            "percent": summary.percent,
            "device": device.type,
        }
    )


def step_benchmark(model: str, steps: int, batch: int, length: int, rounds: int) -> dict:
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict]] = {"ner_adapter": [], "full_ft": []}
    for _ in range(rounds):
        for setting in results:
            queue = ctx.Queue()
            proc = ctx.Process(
                target=_step_worker, args=(model, setting, steps, batch, length, queue)
            )
            proc.start()
            results[setting].append(queue.get())
            proc.join()
    out = {}
    for setting, runs in results.items():
        out[setting] = {
            **runs[0],
            "step_s": statistics.median(r["step_s"] for r in runs),
            "peak_mb": statistics.median(r["peak_mb"] for r in runs),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="encoder (minilm, tiny, codebert, path)")
    parser.add_argument("--files", type=int, default=60, help="stdlib files to preprocess")
    parser.add_argument("--steps", type=int, default=5, help="timed TTC steps per process")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per setting")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cores = os.cpu_count() or 1
    pre = preprocessing(args.model, args.files, [1, cores] if cores > 1 else [1])
    steps = step_benchmark(args.model, args.steps, args.batch, args.length, args.rounds)
    load = os.getloadavg()
    print(
        f"\n## adapterlab.code benchmark ({args.model}; {platform.processor() or platform.machine()}, "
        f"{cores} cores, load {load[0]:.1f})\n"
    )
    print("| preprocessing | files | s | files/s | tokens/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in pre:
        speed = row["files_per_s"] / pre[0]["files_per_s"]
        print(
            f"| {row['processes']} process(es) | {row['files']} | {row['seconds']:.1f} | "
            f"{row['files_per_s']:.1f} | {row['tokens_per_s']:,} | {speed:.2f}x |"
        )
    full, ner = steps["full_ft"], steps["ner_adapter"]
    print(
        f"\n| TTC step (batch {args.batch} x {args.length}, {ner['device']}) | step s | "
        "peak memory MB | trainable params | trainable % |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, row in (("NER adapter (frozen backbone)", ner), ("full fine-tuning", full)):
        print(
            f"| {name} | {row['step_s']:.3f} | {row['peak_mb']:.0f} | {row['trainable']:,} | "
            f"{row['percent']:.2f} |"
        )
    print(
        f"\nNER adapter vs full FT: step time x{ner['step_s'] / full['step_s']:.2f}, "
        f"peak memory x{ner['peak_mb'] / max(full['peak_mb'], 1e-9):.2f}"
    )
    out = Path(__file__).parent / "results" / "code.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"args": vars(args), "load": load, "preprocessing": pre, "ttc_step": steps}, indent=2
        )
    )


if __name__ == "__main__":
    main()
