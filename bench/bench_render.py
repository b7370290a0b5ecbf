"""Benchmark: batched depth renderer vs the per-view python-loop reference, and render vs encoder time.

For 1024-point clouds x 10 views at 224 x 224 on the current device (cuda if available), for each projection
setting (clip2point, pointclip few-shot, realistic) it prints side by side:
  * clouds/s of ``DepthRenderer`` (batched over clouds x views) and of ``render_reference`` (python loop over
    clouds, views and splat offsets), and the speed-up (target >= 10x);
  * render time as a fraction of the depth-encoder forward time for the same batch (open_clip ViT-B/32,
    random init, ``pretrained=None``; target <= 10 %).
Results also go to bench/results/render.json.

    uv run --all-packages python bench/bench_render.py [--batch 8] [--repeats 3] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from adapterlab.pointclip.render import DepthRenderConfig, DepthRenderer, render_reference

MODES = (("clip2point", 10), ("pointclip", 10), ("realistic", 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def unit_clouds(b: int, n: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    p = torch.randn(b, n, 3, generator=g)
    p = p / p.norm(dim=-1).amax(dim=1)[:, None, None]
    return p.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="clouds per batch (default 8 on CPU, 64 on GPU)"
    )
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats of the batched renderer"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "render.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch or (64 if device.type == "cuda" else 8)
    pts = unit_clouds(batch, args.points, device)

    import open_clip

    encoder = open_clip.create_model("ViT-B-32", pretrained=None).visual.to(device).eval()
    images = torch.randn(batch * 10, 3, args.image_size, args.image_size, device=device)
    with torch.no_grad():
        t_enc = timeit(lambda: encoder(images), device, max(1, args.repeats // 2))

    rows = []
    for mode, views in MODES:
        cfg = DepthRenderConfig(mode=mode, num_views=views, image_size=args.image_size)
        renderer = DepthRenderer(cfg).to(device)
        with torch.no_grad():
            t_batched = timeit(lambda r=renderer: r(pts), device, args.repeats)
            t_loop = timeit(lambda c=cfg: render_reference(pts, c), device, 1)
        rows.append(
            {
                "mode": mode,
                "views": views,
                "batched_s": t_batched,
                "loop_s": t_loop,
                "batched_clouds_per_s": batch / t_batched,
                "loop_clouds_per_s": batch / t_loop,
                "speedup": t_loop / t_batched,
                "render_over_encoder": t_batched / t_enc,
            }
        )

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"device {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {batch} clouds x {args.points} points x 10 views at {args.image_size}^2"
    )
    print(f"depth encoder ViT-B/32 forward on {batch * 10} images: {t_enc:.3f} s")
    header = f"{'mode':<11}{'batched clouds/s':>18}{'loop clouds/s':>15}{'speed-up':>10}{'render/encoder':>16}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['mode']:<11}{r['batched_clouds_per_s']:>18.1f}{r['loop_clouds_per_s']:>15.2f}"
            f"{r['speedup']:>9.1f}x{100 * r['render_over_encoder']:>15.2f}%"
        )
    print("targets: speed-up >= 10x, render/encoder <= 10 %")

    result = {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "points": args.points,
        "image_size": args.image_size,
        "encoder": "open_clip ViT-B-32 visual, pretrained=None",
        "encoder_s": t_enc,
        "modes": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
