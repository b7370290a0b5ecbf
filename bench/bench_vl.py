"""vl benchmark: p-adapter against the plain adapter and LoRA at BLIP-base size (random init).

One training step of ``BlipForQuestionAnswering`` (ViT-B/16 image encoder frozen, 12-layer
question encoder and answer decoder adapted) per method, side by side in one run: median step
time over the timed steps and peak memory (CUDA: ``max_memory_allocated`` and the activation
part above the loaded model; CPU: peak RSS of a fresh process per method). Also the
cross-attention memory of p-adapter with and without pooling the 577 image tokens to 16 nodes.
Targets for p-adapter over the plain adapter: <= 1.3x step time, <= 1.2x peak memory.
Results also go to ``bench/results/vl.json``.

    uv run --all-packages python bench/bench_vl.py [--device cpu|cuda|all] [--batch 2] [--steps 3]
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
from pathlib import Path

import torch

CONFIGS = ["adapter", "lora", "p_adapter", "p_adapter_pool16", "p_adapter_code"]


def _model(image_size: int):
    from transformers import BlipConfig, BlipForQuestionAnswering

    cfg = BlipConfig()  # BLIP-base sizes: ViT-B/16, BERT-base text modules
    cfg.vision_config.image_size = image_size
    torch.manual_seed(0)
    return BlipForQuestionAnswering(cfg)


def _add(model, name: str) -> None:
    from adapterlab.core import add_adapter, get_config
    from adapterlab.vl.methods import ATTENTION, apply_method

    if name == "p_adapter_pool16":
        add_adapter(model, get_config("p_adapter", target_modules=ATTENTION, cross_pool_nodes=16))
    else:
        apply_method(model, name, "vqa")


def run_one(name: str, device: str, batch: int, steps: int, image_size: int) -> dict:
    dev = torch.device(device)
    model = _model(image_size)
    _add(model, name)
    model.to(dev).train()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        loaded = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    g = torch.Generator().manual_seed(0)
    batch_data = {
        "input_ids": torch.randint(1000, 20000, (batch, 16), generator=g).to(dev),
        "attention_mask": torch.ones(batch, 16, dtype=torch.long).to(dev),
        "pixel_values": torch.randn(batch, 3, image_size, image_size, generator=g).to(dev),
        "decoder_input_ids": torch.randint(1000, 20000, (batch, 6), generator=g).to(dev),
    }
    batch_data["labels"] = batch_data["decoder_input_ids"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for step in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = model(**batch_data).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    out = {
        "method": name,
        "device": device,
        "step_s": statistics.median(times),
        "trainable": sum(p.numel() for p in params),
        "loss_finite": bool(torch.isfinite(loss)),
    }
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
        out["peak_mb"] = peak / 2**20
        out["activation_mb"] = (peak - loaded) / 2**20
    else:
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cuda when present)")
    ap.add_argument("--batch", type=int, default=None, help="batch (CPU 2, CUDA 16)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--image-size", type=int, default=384, help="384 -> 577 image tokens")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        name, device = args.one.split("@")
        batch = args.batch or (2 if device == "cpu" else 16)
        print(json.dumps(run_one(name, device, batch, args.steps, args.image_size)))
        return
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    rows = []
    for device in devices:
        for name in CONFIGS:  # a fresh process per method: peak memory is its own
            cmd = [
                sys.executable,
                __file__,
                "--one",
                f"{name}@{device}",
                "--steps",
                str(args.steps),
            ]
            cmd += ["--image-size", str(args.image_size)]
            if args.batch:
                cmd += ["--batch", str(args.batch)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode:
                print(res.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"bench {name}@{device} failed")
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"[bench-vl] {rows[-1]}", flush=True)
    print(
        "\n| device | method | trainable | step s | x adapter | peak MB | x adapter | activation MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        base = next(r for r in rows if r["device"] == row["device"] and r["method"] == "adapter")
        act = f"{row['activation_mb']:.0f}" if "activation_mb" in row else "-"
        print(
            f"| {row['device']} | {row['method']} | {row['trainable']:,} | {row['step_s']:.3f} | "
            f"{row['step_s'] / base['step_s']:.2f} | {row['peak_mb']:.0f} | "
            f"{row['peak_mb'] / base['peak_mb']:.2f} | {act} |"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "vl.json").write_text(
        json.dumps({"rows": rows, "machine": platform.processor(), "args": vars(args)}, indent=2)
    )


if __name__ == "__main__":
    main()
