"""``adapterlab-clip2point``: CLIP2Point / PointCLIP from the command line.

Subcommands: ``render-pairs``, ``pretrain``, ``zeroshot``, ``fewshot`` and ``run-all`` (the main
job behind ``make train-clip2point``). ``adapterlab-clip2point <command> --help`` explains each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

__all__ = ["build_parser", "main"]

_EPILOG = """examples:
  adapterlab-clip2point run-all                        # embedded data, tiny CLIP, ~3 min on CPU
  adapterlab-clip2point run-all --data /data/ModelNet40 --model ViT-B-32 --pretrained openai
  adapterlab-clip2point run-all --data /data/ShapeNetCore.v2,/data/ModelNet40 --model ViT-B-32 \\
      --pretrained /weights/vit_b_32_openai.safetensors
  adapterlab-clip2point render-pairs /data/ShapeNetCore.v2 data/pairs/shapenet
  adapterlab-clip2point pretrain --pairs data/pairs/shapenet --out runs/pretrain --model ViT-B-32
  adapterlab-clip2point zeroshot --data /data/ModelNet40 --model ViT-B-32 \\
      --ckpt runs/pretrain/depth_encoder.safetensors
  adapterlab-clip2point fewshot --data /data/ModelNet40 --model ViT-B-32 \\
      --ckpt runs/pretrain/depth_encoder.safetensors --shots 1 2 4 8 16 --seeds 0 1 2 --out runs/fs
"""


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("CLIP model")
    g.add_argument(
        "--model",
        default="tiny",
        help="open_clip architecture (ViT-B-32, ViT-B-16, RN50, ...) or 'tiny', a narrow random "
        "ViT for CPU smoke runs (default: %(default)s)",
    )
    g.add_argument(
        "--pretrained",
        default=None,
        help="pretrained tag (openai, laion2b_s34b_b79k, ...), a local checkpoint file "
        "(.safetensors / .bin / .pt state dict), or 'none' for random weights. Default: 'none' "
        "for tiny, 'openai' otherwise. Offline machines need a local file or 'none'.",
    )
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)"
    )
    g.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="override the encoder's input size (random weights only; default: the model's)",
    )


def _add_eval_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("classification data")
    g.add_argument(
        "--data",
        required=required,
        help="ModelNet10/40 .off folder (<class>/{train,test}/*.off), modelnet40_ply_hdf5_2048 "
        "folder, or ScanObjectNN h5_files folder",
    )
    g.add_argument(
        "--variant",
        default="OBJ_BG",
        choices=["OBJ_BG", "OBJ_ONLY", "PB_T50_RS"],
        help="ScanObjectNN variant (default: %(default)s)",
    )
    g.add_argument("--num-points", type=int, default=1024, help="points per cloud (default: 1024)")
    g.add_argument(
        "--views",
        type=int,
        default=None,
        choices=[6, 10],
        help="rendered views per cloud (default: the method's published setting: zero-shot 6 "
        "for clip2point and pointclip, few-shot 10, realistic 10). With --projection pointclip, "
        "6 views is V1's zero-shot projection (128 px, TRANS -1.6), 10 its few-shot one (224 px, "
        "TRANS -1.4)",
    )
    g.add_argument(
        "--projection",
        default="clip2point",
        choices=["clip2point", "pointclip", "realistic"],
        help="depth projection: clip2point (orthographic splats), pointclip (PointCLIP "
        "V1 perspective), realistic (PointCLIP V2). Default: %(default)s",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="adapterlab-clip2point",
        description="CLIP2Point (Huang et al., ICCV 2023) and PointCLIP baselines: render "
        "image-depth pairs, pre-train a depth encoder, classify point clouds zero-shot and "
        "few-shot (Dual-Path Adapter).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # render-pairs
    p = sub.add_parser(
        "render-pairs",
        help="render RGB views + sample points for a folder of meshes",
        description="Turn a folder of meshes (ModelNet .off, ShapeNetCore.v2 .obj, or any mesh "
        "files) into OUT/rendering/<id>/<view>.png, OUT/points/<id>.npy and OUT/index.json. "
        "Resumes (finished items are skipped); bad meshes are reported and skipped. Headless "
        "rendering uses PYOPENGL_PLATFORM=egl (osmesa is the fallback).",
    )
    p.add_argument("mesh_root", help="folder of meshes")
    p.add_argument("out_root", help="output folder of the pairs")
    p.add_argument("--views", type=int, default=10, choices=[6, 10], help="views per mesh (10)")
    p.add_argument("--points", type=int, default=8192, help="surface points stored per mesh (8192)")
    p.add_argument("--image-size", type=int, default=224, help="RGB render size in pixels (224)")
    p.add_argument("--random-light", action="store_true", help="random light direction per view")
    p.add_argument(
        "--camera",
        default="perspective",
        choices=["perspective", "orthographic"],
        help="RGB camera (perspective = CLIP2Point's)",
    )
    p.add_argument("--limit", type=int, default=None, help="render at most N meshes")
    p.add_argument("--fail-on-bad", action="store_true", help="stop at the first bad mesh")
    p.add_argument("--seed", type=int, default=0)

    # pretrain
    p = sub.add_parser(
        "pretrain",
        help="image-depth pre-training of the depth encoder",
        description="CLIP2Point pre-training: the CLIP image encoder is frozen, the depth encoder "
        "(initialised from it) learns with NT-Xent losses (temperature 0.07) between two jittered "
        "depth renders and the RGB render of the same view; total = L_img + L_depth/w^2 + "
        "log(w+1). The checkpoint is chosen on validation retrieval (val split of the pairs).",
    )
    p.add_argument("--pairs", required=True, help="folder written by render-pairs")
    p.add_argument("--out", required=True, help="run directory")
    _add_model_args(p)
    p.add_argument(
        "--adapter",
        default="full",
        help="'full' (train the whole depth encoder, as the paper) or a core preset on "
        "the depth encoder: lora, dora, pfeiffer, houlsby, bitfit, ... (default: full)",
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs (tiny: 40, else 100)")
    p.add_argument(
        "--batch-size", type=int, default=None, help="pairs per step (tiny: 32, else 256)"
    )
    p.add_argument(
        "--lr", type=float, default=None, help="learning rate (tiny: 1e-3, else 1e-5 AdamW)"
    )
    p.add_argument(
        "--views-per-object",
        type=int,
        default=None,
        help="random views drawn per object per epoch (tiny: 4, else 1)",
    )
    p.add_argument("--jitter", type=float, default=0.1, help="camera-distance jitter (0.1)")
    p.add_argument(
        "--freeze-patch-embed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the patch projection fixed (MoCo v3); default: on for the random "
        "tiny preset only",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")

    # zeroshot
    p = sub.add_parser(
        "zeroshot",
        help="zero-shot classification with CLIP or a pre-trained depth encoder",
        description="Render each test cloud from several views, encode the views, compare with "
        "the class prompts' text features and sum the view scores (optionally weighted).",
    )
    _add_eval_data_args(p)
    _add_model_args(p)
    p.add_argument(
        "--ckpt",
        default=None,
        help="pre-trained depth encoder (depth_encoder.safetensors, a pre-training "
        "adapter folder, or an original CLIP2Point .pth); default: original CLIP encoder",
    )
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument(
        "--templates",
        nargs="+",
        default=["clip2point"],
        help="template set (clip2point, pointclip, ensemble) or templates with {} "
        "(default: clip2point = 'image of a {}', the original's prompt)",
    )
    p.add_argument("--no-ensemble", action="store_true", help="use only the first template")
    p.add_argument(
        "--view-weights", default=None, help="comma-separated per-view weights (default: equal)"
    )
    p.add_argument("--out", default=None, help="write the result as JSON to this file")

    # fewshot
    p = sub.add_parser(
        "fewshot",
        help="few-shot training of the Dual-Path Adapter (or PointCLIP's adapter)",
        description="Draw K shots per class (seeded) from the training split after carving a "
        "validation split from it, train the head with the core engine, select the checkpoint on "
        "validation accuracy and report test accuracy at that checkpoint.",
    )
    _add_eval_data_args(p)
    _add_model_args(p)
    p.add_argument(
        "--ckpt",
        default=None,
        help="pre-trained depth encoder for the DPA's first path (required for dpa; "
        "without it both paths use the original CLIP encoder)",
    )
    p.add_argument("--head", default="dpa", choices=["dpa", "pointclip"])
    p.add_argument("--shots", type=int, nargs="+", default=[16], help="K values (e.g. 1 2 4 8 16)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the shot draws")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--templates", default="clip2point", help="prompt template set for the text side"
    )
    p.add_argument("--out", required=True, help="output folder (one engine run per K and seed)")
    p.add_argument("--overwrite", action="store_true")

    # run-all
    p = sub.add_parser(
        "run-all",
        help="the main job: data -> pairs -> pre-training -> zero-/few-shot -> report",
        description="End to end CLIP2Point. On defaults it generates the embedded ModelNet-format "
        "dataset into ./data, renders the image-depth pairs, pre-trains a tiny CLIP's depth "
        "encoder, evaluates zero-shot and 16-shot DPA, and writes runs/clip2point/<timestamp>/ "
        "(config.yaml, metrics.json, encoder/, fewshot_*/best, curves.png, views.png).",
        epilog="DATA forms: a ModelNet folder (pre-training on its training meshes + "
        "classification), a ShapeNetCore.v2 folder (pre-training; classification on the embedded "
        "data), or 'SHAPENET,MODELNET' (both).",
    )
    p.add_argument("--data", default=None, help="dataset folder(s), see below (default: embedded)")
    p.add_argument(
        "--pretrain-data",
        default=None,
        help="mesh folder for pre-training (overrides), or 'cgal': the 138 real .off meshes of "
        "Debian's libcgal-demo, fetched with apt-get download into DATA_DIR/cgal_meshes "
        "(falls back to the procedural meshes, with a message, when apt is unavailable)",
    )
    p.add_argument(
        "--pairs", default=None, help="reuse / write the pairs here (default: ./data/pairs/...)"
    )
    p.add_argument(
        "--out", default=None, help="run directory (default: runs/clip2point/<timestamp>)"
    )
    _add_model_args(p)
    p.add_argument(
        "--data-dir", default="data", help="where generated data and pairs live (./data)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--adapter", default="full", help="depth-encoder training: full or a core preset"
    )
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--pretrain-batch-size", type=int, default=None)
    p.add_argument("--pretrain-lr", type=float, default=None)
    p.add_argument(
        "--views-per-object",
        type=int,
        default=None,
        help="random views per object per pre-training epoch (tiny: 4, else 1)",
    )
    p.add_argument(
        "--no-random-light",
        action="store_true",
        help="render the RGB views lit from the camera (default: random light, as "
        "CLIP2Point's training renders)",
    )
    p.add_argument("--fewshot-epochs", type=int, default=None)
    p.add_argument("--shots", type=int, default=16, help="K of the few-shot evaluation (16)")
    p.add_argument(
        "--fewshot-seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="seeds of the K-shot draws; accuracies are averaged (0 1 2)",
    )
    p.add_argument(
        "--per-class-train", type=int, default=30, help="embedded data: train meshes per class"
    )
    p.add_argument(
        "--per-class-test", type=int, default=10, help="embedded data: test meshes per class"
    )
    p.add_argument(
        "--max-meshes", type=int, default=None, help="render/pre-train on at most N meshes"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    p.add_argument(
        "--preset",
        default="default",
        choices=["default", "paper"],
        help="paper: every published setting (ViT-B-32 + openai weights unless --model/"
        "--pretrained say otherwise; pre-training batch 256 x 100 epochs with warm restarts; "
        "16-shot DPA, 100 epochs; 10 views few-shot, 6 zero-shot; fp32)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 for the tiny model on CPU, else torch's default)",
    )
    return parser


def _cmd_render_pairs(a: argparse.Namespace) -> int:
    from .pairs import render_pairs

    summary = render_pairs(
        a.mesh_root,
        a.out_root,
        num_views=a.views,
        num_points=a.points,
        image_size=a.image_size,
        skip_bad=not a.fail_on_bad,
        random_light=a.random_light,
        camera=a.camera,
        seed=a.seed,
        limit=a.limit,
    )
    print(summary)
    for path, reason in summary.bad:
        print(f"  bad: {path}: {reason}")
    return 0


def _cmd_pretrain(a: argparse.Namespace) -> int:
    from .models.clip import load_clip
    from .models.pretrain import preset_pretrain_config, run_pretraining
    from .pipeline import resolve_device

    clip = load_clip(
        a.model, a.pretrained, device=resolve_device(a.device), image_size=a.image_size
    )
    cfg = preset_pretrain_config(
        a.model,
        a.pretrained,
        adapter=a.adapter,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        views_per_object=a.views_per_object,
        jitter=a.jitter,
        seed=a.seed,
        freeze_patch_embed=a.freeze_patch_embed,
    )
    res = run_pretraining(clip, a.pairs, a.out, cfg, overwrite=a.overwrite)
    out = {
        "untrained": res.untrained,
        "val": res.val,
        "test": res.test,
        "encoder": str(res.encoder_path) if res.encoder_path else None,
        "adapter": str(res.run_dir / "best"),
    }
    print(json.dumps(out, indent=2))
    return 0


def _encoder_for(clip, ckpt: str | None):
    from .models.pretrain import load_depth_encoder

    return load_depth_encoder(clip, ckpt) if ckpt else clip.visual


def _cmd_zeroshot(a: argparse.Namespace) -> int:
    from .models.clip import load_clip
    from .models.features import extract_view_features
    from .models.zeroshot import TEMPLATES, build_text_features, zero_shot_logits
    from .pipeline import (
        load_classification_split,
        make_depth_renderer,
        published_views,
        resolve_device,
    )

    device = resolve_device(a.device)
    clip = load_clip(a.model, a.pretrained, device=device, image_size=a.image_size)
    ds = load_classification_split(a.data, a.split, a.num_points, a.variant)
    encoder = _encoder_for(clip, a.ckpt)
    views = a.views or published_views(a.projection, "zeroshot")
    renderer = make_depth_renderer(clip.image_size, views, a.projection)
    feats = extract_view_features(ds, renderer, {"enc": encoder}, device=device)
    templates = a.templates
    if len(templates) == 1 and templates[0] in TEMPLATES:
        templates = templates[0]
    text = build_text_features(clip, list(ds.classes), templates, ensemble=not a.no_ensemble)
    weights = [float(w) for w in a.view_weights.split(",")] if a.view_weights else None
    logits = zero_shot_logits(feats.features["enc"], text, weights)
    acc = float((logits.argmax(1) == feats.labels).float().mean())
    result = {
        "accuracy": acc,
        "num": len(ds),
        "classes": len(ds.classes),
        "encoder": a.ckpt or "clip",
        "templates": a.templates,
        "projection": a.projection,
        "views": views,
    }
    print(json.dumps(result, indent=2))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _cmd_fewshot(a: argparse.Namespace) -> int:
    import statistics

    from .models.clip import load_clip
    from .models.features import extract_view_features
    from .models.fewshot import FewShotConfig, train_fewshot_head
    from .models.zeroshot import build_text_features
    from .pipeline import (
        load_classification_split,
        make_depth_renderer,
        published_views,
        resolve_device,
    )

    device = resolve_device(a.device)
    clip = load_clip(a.model, a.pretrained, device=device, image_size=a.image_size)
    train = load_classification_split(a.data, "train", a.num_points, a.variant)
    test = load_classification_split(a.data, "test", a.num_points, a.variant)
    renderer = make_depth_renderer(
        clip.image_size, a.views or published_views(a.projection, "fewshot"), a.projection
    )
    encoders = {"pre": _encoder_for(clip, a.ckpt), "ori": clip.visual}
    if a.head == "pointclip":
        encoders = {"pre": clip.visual if a.ckpt is None else encoders["pre"]}
        encoders["ori"] = encoders["pre"]
    train_f = extract_view_features(train, renderer, encoders, device=device, desc="train views")
    test_f = extract_view_features(test, renderer, encoders, device=device, desc="test views")
    text = build_text_features(clip, list(train.classes), a.templates)
    results: dict[str, dict] = {}
    for k in a.shots:
        accs = []
        for seed in a.seeds:
            cfg = FewShotConfig(
                head=a.head, shots=k, seed=seed, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size
            )
            res = train_fewshot_head(
                train_f,
                test_f,
                text,
                Path(a.out) / f"{k}shot_seed{seed}",
                cfg,
                device=device,
                overwrite=a.overwrite,
            )
            accs.append(res.test_accuracy)
            print(
                f"{k:>2}-shot seed {seed}: val {res.val_accuracy:.4f} test {res.test_accuracy:.4f}"
            )
        results[f"{k}"] = {
            "test_accuracy": accs,
            "mean": statistics.fmean(accs),
            "std": statistics.pstdev(accs),
        }
    summary = {"head": a.head, "encoder": a.ckpt or "clip", "shots": results}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "fewshot_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_run_all(a: argparse.Namespace) -> int:
    from .pipeline import RunAllOptions, run_all

    if a.preset == "paper":
        from .models.clip import TINY_PRESET

        if a.model == TINY_PRESET:
            a.model = "ViT-B-32"
        a.shots, a.fewshot_epochs = 16, a.fewshot_epochs or 100
    opts = RunAllOptions(
        data=a.data,
        pretrain_data=a.pretrain_data,
        pairs=a.pairs,
        model=a.model,
        pretrained=a.pretrained,
        out=a.out,
        data_dir=a.data_dir,
        overwrite=a.overwrite,
        seed=a.seed,
        device=a.device,
        per_class_train=a.per_class_train,
        per_class_test=a.per_class_test,
        max_meshes=a.max_meshes,
        adapter=a.adapter,
        pretrain_epochs=a.pretrain_epochs,
        pretrain_batch_size=a.pretrain_batch_size,
        pretrain_lr=a.pretrain_lr,
        views_per_object=a.views_per_object,
        fewshot_epochs=a.fewshot_epochs,
        shots=a.shots,
        progress=not a.no_progress,
        random_light=not a.no_random_light,
        image_size=a.image_size,
        fewshot_seeds=tuple(a.fewshot_seeds),
        threads=a.threads,
    )
    if a.dry_run:
        print(json.dumps(asdict(opts.resolved()), indent=2, default=str))
        return 0
    run_all(opts)
    return 0


_COMMANDS = {
    "render-pairs": _cmd_render_pairs,
    "pretrain": _cmd_pretrain,
    "zeroshot": _cmd_zeroshot,
    "fewshot": _cmd_fewshot,
    "run-all": _cmd_run_all,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (errors print one clear line, status 1;
    usage errors exit 2 through argparse; set ADAPTERLAB_DEBUG=1 for the traceback)."""
    args = build_parser().parse_args(argv)  # --help exits here, before torch is imported
    from .models.clip import PretrainedWeightsError

    try:
        return _COMMANDS[args.command](args)
    except (PretrainedWeightsError, FileNotFoundError, FileExistsError, ValueError) as err:
        if os.environ.get("ADAPTERLAB_DEBUG"):
            raise
        line = " ".join(str(err).split())  # one line
        print(f"adapterlab-clip2point {args.command}: error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
