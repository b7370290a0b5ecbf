"""Benchmark: CLIP2Point pre-training of a full-size ViT-B/32 depth encoder (the collapse regression).

``run-all --model ViT-B-32`` once collapsed held-out retrieval to chance in its first steps (AdamW at
lr 1e-4 without warm-up: Adam's first update moves every weight by about lr, and at width 768 the
coherent move destroys the depth features). ``tests/test_pretrain_fullscale.py`` checks the fix at
ViT-B/32 *width* with one layer; this benchmark runs the real architecture (open_clip ``ViT-B-32``:
12 layers, width 768, patch 32, 224 px) through ``run_pretraining`` on the embedded procedural
meshes, with the package's preset (AdamW lr 1e-5, 10 % warm-up, warm restarts) and, for contrast,
the pre-fix recipe (lr 1e-4, no warm-up), and prints depth->image retrieval on held-out test meshes
before and after (at the validation-selected step, step 0 included, as ``run_pretraining``
returns it), the selected step, and every validation evaluation along the run (where a collapse
shows even when selection falls back to step 0).

On a GPU it runs a few hundred optimiser steps (batch 64); on a CPU the same at reduced size
(fewer meshes and views, batch 16, about a dozen steps; several minutes on 2 cores). Weights:
``--pretrained`` (default ``none``, random init: no hub is reachable offline; pass a local
``ViT-B-32`` checkpoint, with ``--quick-gelu true`` for OpenAI weights, to run on real CLIP).

    uv run --all-packages --locked python bench/bench_clip2point.py [--steps N] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from adapterlab.core.engine import atomic_write_json, resolve_device
from adapterlab.pointclip import preset_pretrain_config, run_pretraining
from adapterlab.pointclip.data import EMBEDDED_CLASSES, generate_embedded_modelnet
from adapterlab.pointclip.models.clip import load_clip
from adapterlab.pointclip.pairs import ImageDepthPairs, render_pairs


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--pretrained", default="none", help="ViT-B-32 weights (default: random)")
    p.add_argument("--quick-gelu", type=_bool, default=None, help="true/false (local files)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (GPU 300, CPU 12)")
    p.add_argument("--batch", type=int, default=None, help="batch size (GPU 64, CPU 16)")
    p.add_argument("--per-class-train", type=int, default=None, help="GPU 40, CPU 6")
    p.add_argument("--per-class-test", type=int, default=None, help="GPU 10, CPU 2")
    p.add_argument("--views", type=int, choices=(6, 10), default=None, help="GPU 10, CPU 6")
    p.add_argument("--image-size", type=int, default=None, help="smoke runs only (random init)")
    p.add_argument("--recipes", default="preset,old", help="preset and/or old (pre-fix)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--work", default=None, help="folder for meshes/pairs/runs (default: temp)")
    p.add_argument("--out", default="bench/results/clip2point.json", help="results JSON")
    a = p.parse_args()

    device = resolve_device(a.device)
    gpu = device.type == "cuda"
    if a.threads:
        torch.set_num_threads(a.threads)
    steps = a.steps or (300 if gpu else 12)
    batch = a.batch or (64 if gpu else 16)
    n_train = a.per_class_train or (40 if gpu else 6)
    n_test = a.per_class_test or (10 if gpu else 2)
    views = a.views or (10 if gpu else 6)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench-c2p-"))
    t0 = time.perf_counter()
    meshes = generate_embedded_modelnet(
        work / "meshes", per_class_train=n_train, per_class_test=n_test
    )
    torch.manual_seed(0)
    clip = load_clip(
        "ViT-B-32", a.pretrained, device=device, image_size=a.image_size, quick_gelu=a.quick_gelu
    )
    pairs = work / f"pairs_{clip.image_size}px_{views}v"
    render_pairs(
        meshes,
        pairs,
        num_views=views,
        image_size=clip.image_size,
        random_light=True,
        progress=False,
    )
    t_data = time.perf_counter() - t0
    n_fit = len(ImageDepthPairs(pairs, split="train"))
    # epochs x (objects x views_per_object // batch) = steps, one evaluation per epoch
    epochs = max(1, min(10, steps // 10))
    per_epoch = math.ceil(steps / epochs)
    vpo = max(1, math.ceil(per_epoch * batch / n_fit))
    base = preset_pretrain_config(
        "ViT-B-32",
        a.pretrained,
        epochs=epochs,
        batch_size=batch,
        views_per_object=vpo,
        num_views=views,
        eval_batch_size=batch * 2,
    )
    recipes = {
        "preset": base,
        "old": replace(base, lr=1e-4, warmup_steps=0, min_lr=1e-5),  # the pre-fix recipe
    }
    rows = []
    for name in [r.strip() for r in a.recipes.split(",") if r.strip()]:
        cfg = recipes[name]
        torch.manual_seed(0)
        t = time.perf_counter()
        res = run_pretraining(clip, pairs, work / f"run_{name}", cfg, progress=False)
        seconds = time.perf_counter() - t
        records = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
        evals = [round(r["retrieval_top1"], 4) for r in records if r["split"] == "eval"]
        summary = json.loads((res.run_dir / "metrics.json").read_text())
        train = yaml.safe_load((res.run_dir / "config.yaml").read_text())["train"]
        rows.append(
            {
                "recipe": name,
                "lr": cfg.lr,
                "warmup_steps": train["warmup_steps"],
                "min_lr": train["min_lr"],
                "restart_period": train["restart_period"],
                "steps": summary["global_step"],
                "test_before": res.untrained["retrieval_top1"],
                "test_after": res.test.get("retrieval_top1"),
                "val_before": res.untrained_val["retrieval_top1"],
                "val_evals": evals,
                "best_step": res.best_step,
                "chance": res.untrained["retrieval_chance"],
                "seconds": round(seconds, 1),
            }
        )
        shutil.rmtree(work / f"run_{name}", ignore_errors=True)
    result = {
        "device": str(device),
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "model": "ViT-B-32",
        "weights": {k: clip.weights.get(k) for k in ("source", "pretrained", "state_sha256")},
        "image_size": clip.image_size,
        "views": views,
        "batch": batch,
        "train_objects": n_fit,
        "classes": len(EMBEDDED_CLASSES),
        "data_seconds": round(t_data, 1),
        "rows": rows,
    }
    print(
        f"\nCLIP2Point pre-training, ViT-B-32 ({clip.weights['source']}), {device}, "
        f"{clip.image_size} px, {views} views, batch {batch}, {n_fit} training objects"
    )
    head = f"{'recipe':8s} {'lr':>7s} {'warm-up':>7s} {'steps':>5s} {'test before':>11s} "
    head += f"{'test after':>10s} {'best step':>9s} {'min val eval':>12s} {'chance':>7s}"
    print(head + f" {'run s':>6s}")
    for r in rows:
        print(
            f"{r['recipe']:8s} {r['lr']:7.0e} {r['warmup_steps']!s:>7s} {r['steps']:5d} "
            f"{100 * r['test_before']:10.1f}% {100 * r['test_after']:9.1f}% {r['best_step']!s:>9s} "
            f"{100 * min(r['val_evals'] or [float('nan')]):11.1f}% {100 * r['chance']:6.1f}% "
            f"{r['seconds']:7.0f}"
        )
        print(
            f"{'':8s} validation retrieval per epoch: {r['val_evals']} (before {r['val_before']:.4f})"
        )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.out, result)
        print(f"results: {a.out}")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
