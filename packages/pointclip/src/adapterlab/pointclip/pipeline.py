"""The main job (``adapterlab-clip2point run-all``) and the helpers the CLI subcommands share.

run-all, on defaults (no network, 2 CPU cores, a few minutes):

1. generate the embedded ModelNet-format dataset (``./data/embedded_modelnet``, reused);
2. render the image-depth pairs of its meshes (``./data/pairs/...``, resumable);
3. pre-train the depth encoder (CLIP2Point image-depth scheme, core engine, validation selection);
4. evaluate zero-shot (original CLIP encoder and pre-trained depth encoder) and few-shot
   (16-shot Dual-Path Adapter with the pre-trained and with an untrained depth encoder, plus
   PointCLIP's inter-view adapter);
5. write the run directory: ``config.yaml``, ``metrics.json``, ``encoder/``, adapter folders,
   ``curves.png``, ``views.png``; print a summary table.

With ``--data`` (a ModelNet folder and/or ShapeNetCore.v2), ``--model ViT-B-32`` and
``--pretrained openai`` the same steps run on real data and weights.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from adapterlab.core.engine import (
    atomic_write_json,
    atomic_write_text,
    resolve_device,
    to_jsonable,
)

from .config import (
    FewShotCommandConfig,
    FewShotConfig,
    PipelineConfig,
    RunAllOptions,
    ZeroShotConfig,
    preset_pretrain_config,
)
from .data.layout import detect_layout, load_classification_split
from .models.clip import TINY_PRESET, load_clip
from .render.presets import make_depth_renderer, published_views
from .train import run_pretraining, train_fewshot_head

__all__ = [
    "PipelineConfig",
    "RunAllOptions",
    "run_fewshot",
    "run_zeroshot",
    "detect_layout",
    "load_classification_split",
    "make_depth_renderer",
    "published_views",
    "resolve_device",
    "run_all",
]


def set_threads(threads: int | None, model_name: str, device: torch.device) -> None:
    """Pin torch's CPU threads: ``threads`` if given, else 1 for the tiny model on CPU (its
    small matmuls gain nothing from more threads, and on a busy machine oversubscribed
    threads slow the main job about 5x)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif model_name == TINY_PRESET and device.type == "cpu":
        torch.set_num_threads(1)


def _log(msg: str) -> None:
    print(msg, flush=True)


def _encoder_for(clip: Any, ckpt: str | None) -> torch.nn.Module:
    from .models.clip2point import load_depth_encoder

    return load_depth_encoder(clip, ckpt) if ckpt else clip.visual


def _report_skipped(*datasets: Any) -> None:
    """One stderr line per file a ``skip_bad`` loader left out (stdout stays JSON)."""
    for ds in datasets:
        for path, reason in getattr(ds, "skipped", []):
            print(f"skipped bad file {path}: {reason}", file=sys.stderr, flush=True)


def run_zeroshot(c: ZeroShotConfig) -> dict[str, Any]:
    """Zero-shot accuracy of CLIP (or a pre-trained depth encoder) on a classification split."""
    from .models.features import extract_view_features
    from .models.zeroshot import TEMPLATES, build_text_features, zero_shot_logits

    ds = load_classification_split(c.data, c.split, c.num_points, c.variant, skip_bad=c.skip_bad)
    device = resolve_device(c.device)
    clip = load_clip(
        c.model, c.pretrained, device=device, image_size=c.image_size, quick_gelu=c.quick_gelu
    )
    encoder = _encoder_for(clip, c.ckpt)
    views = c.views or published_views(c.projection, "zeroshot")
    renderer = make_depth_renderer(clip.image_size, views, c.projection)
    feats = extract_view_features(ds, renderer, {"enc": encoder}, device=device)
    templates: Any = list(c.templates)
    if len(templates) == 1 and templates[0] in TEMPLATES:
        templates = templates[0]
    text = build_text_features(clip, list(ds.classes), templates, ensemble=not c.no_ensemble)
    weights = [float(w) for w in c.view_weights.split(",")] if c.view_weights else None
    logits = zero_shot_logits(feats.features["enc"], text, weights)
    _report_skipped(ds)
    return {
        "accuracy": float((logits.argmax(1) == feats.labels).float().mean()),
        "num": len(ds),
        "classes": len(ds.classes),
        "skipped": len(getattr(ds, "skipped", [])),
        "encoder": c.ckpt or "clip",
        "templates": c.templates,
        "projection": c.projection,
        "views": views,
        "weights": clip.weights,
    }


def run_fewshot(c: FewShotCommandConfig) -> dict[str, Any]:
    """K-shot head accuracy (mean and std over seeds) for every K; writes
    ``OUT/fewshot_results.json`` and one engine run per K and seed."""
    from .models.features import extract_view_features
    from .models.zeroshot import build_text_features

    train = load_classification_split(c.data, "train", c.num_points, c.variant, skip_bad=c.skip_bad)
    test = load_classification_split(c.data, "test", c.num_points, c.variant, skip_bad=c.skip_bad)
    device = resolve_device(c.device)
    clip = load_clip(
        c.model, c.pretrained, device=device, image_size=c.image_size, quick_gelu=c.quick_gelu
    )
    renderer = make_depth_renderer(
        clip.image_size, c.views or published_views(c.projection, "fewshot"), c.projection
    )
    pre = _encoder_for(clip, c.ckpt)
    encoders = {"pre": pre, "ori": clip.visual if c.head == "dpa" else pre}
    train_f = extract_view_features(train, renderer, encoders, device=device, desc="train views")
    test_f = extract_view_features(test, renderer, encoders, device=device, desc="test views")
    text = build_text_features(clip, list(train.classes), c.templates)
    results: dict[str, dict[str, Any]] = {}
    for k in c.shots:
        accs = []
        for seed in c.seeds:
            given = {"epochs": c.epochs, "lr": c.lr, "batch_size": c.batch_size}
            cfg = FewShotConfig(
                head=c.head, shots=k, seed=seed, **{n: v for n, v in given.items() if v is not None}
            )
            res = train_fewshot_head(
                train_f,
                test_f,
                text,
                Path(c.out) / f"{k}shot_seed{seed}",
                cfg,
                device=device,
                overwrite=c.overwrite,
                weights=clip.weights,
            )
            accs.append(res.test_accuracy)
            _log(
                f"{k:>2}-shot seed {seed}: val {res.val_accuracy:.4f} test {res.test_accuracy:.4f}"
            )
        results[f"{k}"] = {
            "test_accuracy": accs,
            "mean": statistics.fmean(accs),
            "std": statistics.pstdev(accs),
        }
    _report_skipped(train, test)
    summary = {
        "head": c.head,
        "encoder": c.ckpt or "clip",
        "shots": results,
        "weights": clip.weights,
    }
    Path(c.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(c.out) / "fewshot_results.json", summary)
    return summary


def _mix_seed(*parts: int) -> int:
    """One 32-bit seed from several integers (numpy's SeedSequence)."""
    import numpy as np

    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _pointclip_published_job(
    o: PipelineConfig,
    clip: Any,
    classes: list[str],
    train_ds: Any,
    test_ds: Any,
    size: int,
    device: torch.device,
) -> tuple[str, str, Any, Any, torch.Tensor, dict[str, Any], Any]:
    """PointCLIP's few-shot recipe (Zhang et al., CVPR 2022; ``trainers/fewshot.py``): its V1
    few-shot projection (10 views, TRANS -1.4) encoded by the original CLIP encoder, the prompt
    "point cloud of a big {}.", SGD lr 0.01 with a cosine schedule after one warm-up epoch, label
    smoothing 0.2, and random scale [2/3, 3/2] / shift +-0.2 of the training clouds. The original
    draws a fresh augmentation every epoch; here ``pointclip_augment_copies`` augmented copies of
    each shot are rendered once and join the training set (the encoder is frozen)."""
    from torch.utils.data import Subset

    from .data.training import AugmentedClouds
    from .models.features import extract_view_features
    from .models.zeroshot import build_text_features

    renderer = make_depth_renderer(size, published_views("pointclip", "fewshot"), "pointclip")
    enc = {"pre": clip.visual}
    kw = {"device": device, "progress": o.progress}
    train_v1 = extract_view_features(train_ds, renderer, enc, desc="train views (V1)", **kw)
    test_v1 = extract_view_features(test_ds, renderer, enc, desc="test views (V1)", **kw)
    for f in (train_v1, test_v1):
        f.features["ori"] = f.features["pre"]  # one path

    def augmented(shot_idx: list[int]) -> list[Any]:
        shots = Subset(train_ds, shot_idx)
        copies = []
        for copy in range(o.pointclip_augment_copies):
            f = extract_view_features(
                AugmentedClouds(shots, seed=_mix_seed(o.seed, copy, *shot_idx)),
                renderer,
                enc,
                desc=f"augmented shots (V1) {copy + 1}/{o.pointclip_augment_copies}",
                **kw,
            )
            f.features["ori"] = f.features["pre"]  # one path
            copies.append(f)
        return copies

    text = build_text_features(clip, classes, "pointclip_fewshot", ensemble=False)
    recipe = {
        "epochs": o.pointclip_epochs,
        "lr": 0.01,
        "optimizer": "sgd",
        "scheduler": "cosine",
        "warmup_epochs": 1,
        "weight_decay": 5e-4,
    }
    return ("pointclip_published", "pointclip", train_v1, test_v1, text, recipe, augmented)


def _resolve_data(o: PipelineConfig) -> tuple[Path, Path, str]:
    """``(eval_root, pretrain_mesh_root, note)`` from ``--data`` / ``--pretrain-data``."""
    from .data import generate_embedded_modelnet

    data = o.data
    pretrain = o.pretrain_data
    if data and "," in data and pretrain is None:
        pretrain, data = (s.strip() for s in data.split(",", 1))
    eval_root: Path | None = Path(data) if data else None
    note = ""
    if eval_root is not None and detect_layout(eval_root) in ("shapenet", "meshes"):
        if pretrain is None:
            pretrain = str(eval_root)
        eval_root = None
        note = "classification data not given: zero-/few-shot run on the embedded dataset"
    if eval_root is None:
        default = (o.per_class_train, o.per_class_test, o.seed) == (30, 10, 0)
        name = (
            "embedded_modelnet"
            if default
            else (f"embedded_modelnet_{o.per_class_train}x{o.per_class_test}_s{o.seed}")
        )
        eval_root = Path(o.data_dir) / name
        _log(f"[data] embedded dataset at {eval_root} (generated if missing)")
        generate_embedded_modelnet(
            eval_root,
            per_class_train=o.per_class_train,
            per_class_test=o.per_class_test,
            seed=o.seed,
        )
    if pretrain == "cgal":
        from .data import MeshFetchError, fetch_cgal_meshes

        try:
            pretrain = str(fetch_cgal_meshes(Path(o.data_dir) / "cgal_meshes"))
            _log(f"[data] real meshes of Debian's libcgal-demo for pre-training: {pretrain}")
        except MeshFetchError as err:
            _log(f"[data] falling back to the procedural meshes for pre-training: {err}")
            pretrain = None
    pretrain_root = Path(pretrain) if pretrain else eval_root
    if detect_layout(pretrain_root) in ("modelnet_h5", "scanobjectnn"):
        raise ValueError(
            f"Pre-training needs meshes (ModelNet .off or ShapeNetCore.v2), not '{pretrain_root}'"
            " (point-only h5); pass --pretrain-data"
        )
    return eval_root, pretrain_root, note


def _default_pairs_dir(o: PipelineConfig, mesh_root: Path, image_size: int) -> Path:
    """``DATA_DIR/pairs/<meshes>_<size>px_<views>v[_rl][_n<max>][_s<seed>]``; where that folder
    holds renders of other settings, a sibling of its own (:func:`~.pairs.own_folder`)."""
    from .pairs import own_folder, render_settings

    name = mesh_root.resolve().name or "data"
    limit = f"_n{o.max_meshes}" if o.max_meshes else ""
    light = "_rl" if o.random_light else ""
    seed = f"_s{o.seed}" if o.seed else ""
    base = Path(o.data_dir) / "pairs" / f"{name}_{image_size}px_{o.num_views}v{light}{limit}{seed}"
    settings = render_settings(
        mesh_root, o.num_views, 8192, image_size, None, o.random_light, "orthographic", o.seed
    )
    return own_folder(base, settings)


def _summary_table(rows: list[tuple[str, str]]) -> str:
    w = max(len(k) for k, _ in rows)
    line = "-" * (w + 14)
    body = "\n".join(f"{k:<{w}}  {v:>10}" for k, v in rows)
    return f"{line}\n{body}\n{line}"


def _pct(x: float) -> str:
    return f"{100 * x:6.2f} %"


def run_all(options: PipelineConfig) -> dict[str, Any]:
    """Run the whole CLIP2Point pipeline; returns the metrics dict also written to metrics.json."""
    from .figures import plot_run_curves
    from .models.features import extract_view_features
    from .models.zeroshot import build_text_features, zero_shot_logits
    from .pairs import render_pairs

    o = options.resolved()
    deviations = options.preset_deviations()
    for key, value in deviations.items():
        _log(f"[preset paper] --{key} {value} given explicitly: it overrides the paper's setting")
    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(o.out) if o.out else Path("runs") / "clip2point" / stamp
    if out.exists() and any(out.iterdir()) and not o.overwrite:
        raise FileExistsError(
            f"Run directory '{out}' is not empty; pass --overwrite or a new --out"
        )
    device = resolve_device(o.device)
    set_threads(o.threads, o.model, device)
    torch.manual_seed(o.seed)
    clip = load_clip(
        o.model, o.pretrained, device=device, image_size=o.image_size, quick_gelu=o.quick_gelu
    )
    size = clip.image_size
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _log(f"[1/6] data  (run dir {out}, device {device})")
    t = time.perf_counter()
    eval_root, mesh_root, note = _resolve_data(o)
    if note:
        _log(f"      note: {note}")
    timing["data"] = time.perf_counter() - t

    _log(f"[2/6] image-depth pairs of {mesh_root}")
    t = time.perf_counter()
    pairs_root = Path(o.pairs) if o.pairs else _default_pairs_dir(o, mesh_root, size)
    summary = render_pairs(
        mesh_root,
        pairs_root,
        num_views=o.num_views,
        image_size=size,
        seed=o.seed,
        limit=o.max_meshes,
        random_light=o.random_light,
        progress=None if o.progress else False,
    )
    _log(f"      {summary}")
    timing["pairs"] = time.perf_counter() - t

    _log(f"[3/6] pre-training the depth encoder ({o.adapter}, {o.pretrain_epochs} epochs)")
    t = time.perf_counter()
    pcfg = preset_pretrain_config(
        o.model,
        o.pretrained,
        adapter=o.adapter,
        epochs=o.pretrain_epochs,
        batch_size=o.pretrain_batch_size,
        lr=o.pretrain_lr,
        views_per_object=o.views_per_object,
        seed=o.seed,
        num_points=o.num_points,
        num_views=o.num_views,
        freeze_patch_embed=bool(o.freeze_patch_embed),
    )
    pre = run_pretraining(clip, pairs_root, out / "pretrain", pcfg, progress=o.progress)
    timing["pretrain"] = time.perf_counter() - t
    encoder_dir = out / "encoder"
    encoder_dir.mkdir(exist_ok=True)
    if pre.encoder_path is not None:
        shutil.copy2(pre.encoder_path, encoder_dir / "depth_encoder.safetensors")
    best = pre.adapter_dir
    if best is not None and best.is_dir():
        shutil.copytree(best, encoder_dir / "adapter", dirs_exist_ok=True)
    retrieval = pre.test or pre.val
    ret_split = "test" if pre.test else "val"

    _log("[4/6] rendering + encoding the classification splits")
    t = time.perf_counter()
    train_ds = load_classification_split(
        eval_root, "train", o.num_points, o.scanobjectnn_variant, o.seed
    )
    test_ds = load_classification_split(
        eval_root, "test", o.num_points, o.scanobjectnn_variant, o.seed
    )
    classes = list(train_ds.classes)
    renderer = make_depth_renderer(size, o.num_views)
    depth_encoder = pre.model.depth_encoder.eval()
    encoders = {"pre": depth_encoder, "ori": clip.visual}
    train_f = extract_view_features(
        train_ds, renderer, encoders, device=device, progress=o.progress, desc="train views"
    )
    test_f = extract_view_features(
        test_ds, renderer, encoders, device=device, progress=o.progress, desc="test views"
    )
    zs_views = published_views("clip2point", "zeroshot")
    zs_f = extract_view_features(
        test_ds,
        make_depth_renderer(size, zs_views),
        encoders,
        device=device,
        progress=o.progress,
        desc=f"test views (zero-shot, {zs_views})",
    )
    timing["features"] = time.perf_counter() - t

    _log("[5/6] zero-shot and few-shot")
    t = time.perf_counter()
    zs: dict[str, float] = {}
    for tmpl in dict.fromkeys([o.templates, "ensemble"]):
        text = build_text_features(clip, classes, tmpl, ensemble=True)
        for enc in ("ori", "pre"):
            logits = zero_shot_logits(zs_f.features[enc], text)
            key = f"{'clip_encoder' if enc == 'ori' else 'depth_encoder'}_{tmpl}"
            zs[key] = float((logits.argmax(1) == zs_f.labels).float().mean())
    text = build_text_features(clip, classes, o.templates, ensemble=True)
    fs: dict[str, Any] = {"shots": o.shots, "chance": 1.0 / len(classes)}
    fs_runs = {}
    untrained_train = type(train_f)(
        {"pre": train_f.features["ori"], "ori": train_f.features["ori"]}, train_f.labels
    )
    untrained_test = type(test_f)(
        {"pre": test_f.features["ori"], "ori": test_f.features["ori"]}, test_f.labels
    )
    dpa_recipe = {"epochs": o.fewshot_epochs, "lr": o.fewshot_lr}
    jobs: list[tuple[str, str, Any, Any, torch.Tensor, dict[str, Any], Any]] = [
        ("dpa", "dpa", train_f, test_f, text, dpa_recipe, None),
        ("dpa_untrained", "dpa", untrained_train, untrained_test, text, dpa_recipe, None),
        # PointCLIP's inter-view adapter trained with the DPA recipe on CLIP2Point renders
        ("pointclip_head", "pointclip", untrained_train, untrained_test, text, dpa_recipe, None),
        _pointclip_published_job(o, clip, classes, train_ds, test_ds, size, device),
    ]
    for name, head, tr, te, head_text, recipe, augmented in jobs:
        tests, vals = [], []
        for seed in o.fewshot_seeds:
            fcfg = FewShotConfig(head=head, shots=o.shots, seed=seed, **recipe)
            res = train_fewshot_head(
                tr,
                te,
                head_text,
                out / f"fewshot_{name}" / f"seed{seed}",
                fcfg,
                progress=o.progress,
                device=device,
                augmented=augmented,
                weights=clip.weights,
            )
            tests.append(res.test_accuracy)
            vals.append(res.val_accuracy)
            fs_runs.setdefault(name, res.run_dir)
            if name == "dpa":
                fs["num_train"], fs["num_val"] = res.num_train, res.num_val
        fs[name] = statistics.fmean(tests)
        fs[f"{name}_std"] = statistics.pstdev(tests)
        fs[f"{name}_per_seed"] = tests
        fs[f"{name}_val"] = statistics.fmean(vals)
        _log(
            f"      {name:19s} val {_pct(fs[f'{name}_val'])}  test {_pct(fs[name])}"
            f" (+- {100 * fs[f'{name}_std']:.1f}, seeds {list(o.fewshot_seeds)})"
        )
    fs["seeds"] = list(o.fewshot_seeds)
    timing["eval"] = time.perf_counter() - t

    _log("[6/6] figures and metrics")
    _write_views_png(out / "views.png", pairs_root, size, o.num_views)
    plot_run_curves(
        {"pretrain": pre.run_dir, **{f"fewshot:{k}": v for k, v in fs_runs.items()}},
        [
            ("pretrain", "train", "loss"),
            ("pretrain", "train", "loss_image"),
            ("pretrain", "train", "loss_depth"),
            ("pretrain", "train", "w"),
            ("pretrain", "eval", "retrieval_top1"),
            *[(f"fewshot:{k}", "eval", "accuracy") for k in fs_runs],
            *[(f"fewshot:{k}", "train", "loss") for k in fs_runs],
        ],
        out / "curves.png",
    )
    chance = retrieval.get("retrieval_chance", float("nan"))
    untrained_top1 = pre.untrained.get("retrieval_top1", float("nan"))
    metrics = {
        "pretrain": {
            "split": ret_split,
            "retrieval_top1": retrieval.get("retrieval_top1"),
            "retrieval_top5": retrieval.get("retrieval_top5"),
            "retrieval_top1_untrained": untrained_top1,
            "retrieval_chance": chance,
            "retrieval_top1_same_view": retrieval.get("retrieval_top1_same_view"),
            "retrieval_top1_same_view_untrained": pre.untrained.get("retrieval_top1_same_view"),
            "retrieval_i2d_top1": retrieval.get("retrieval_i2d_top1"),
            "retrieval_i2d_top1_untrained": pre.untrained.get("retrieval_i2d_top1"),
            "val_retrieval_top1": pre.val.get("retrieval_top1"),
            "best_step": pre.best_step,
        },
        "zeroshot": zs,
        "fewshot": fs,
        "checks": {
            "retrieval_ge_5x_chance": bool(retrieval.get("retrieval_top1", 0) >= 5 * chance),
            "retrieval_above_untrained": bool(retrieval.get("retrieval_top1", 0) > untrained_top1),
            "dpa_above_untrained_dpa": bool(fs["dpa"] > fs["dpa_untrained"]),
            "dpa_above_chance": bool(fs["dpa"] > fs["chance"]),
        },
        "data": {
            "eval": str(eval_root),
            "pretrain_meshes": str(mesh_root),
            "pairs": str(pairs_root),
            "classes": classes,
            "num_train": len(train_ds),
            "num_test": len(test_ds),
            "pairs_summary": str(summary),
        },
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
        "weights": clip.weights,
        "preset": o.preset,
        "preset_deviations": deviations,
    }
    metrics["timing_s"]["total"] = round(time.perf_counter() - t_start, 1)
    config = {
        "run_all": asdict(o),
        "clip": {
            "model": clip.model_name,
            "pretrained": clip.pretrained,
            "image_size": size,
            "embed_dim": clip.embed_dim,
            "quick_gelu": clip.weights.get("quick_gelu"),
        },
        "pretrain": pre.config,
        "device": str(device),
    }
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_jsonable(config), sort_keys=False))
    atomic_write_json(out / "metrics.json", metrics)
    rows = [
        (f"retrieval top-1 ({ret_split}) untrained", _pct(untrained_top1)),
        (f"retrieval top-1 ({ret_split}) pre-trained", _pct(metrics["pretrain"]["retrieval_top1"])),
        ("retrieval chance", _pct(chance)),
        (f"zero-shot CLIP encoder ({o.templates})", _pct(zs[f"clip_encoder_{o.templates}"])),
        (f"zero-shot depth encoder ({o.templates})", _pct(zs[f"depth_encoder_{o.templates}"])),
        (f"{o.shots}-shot DPA, pre-trained encoder", _pct(fs["dpa"])),
        (f"{o.shots}-shot DPA, untrained encoder", _pct(fs["dpa_untrained"])),
        (f"{o.shots}-shot PointCLIP inter-view head (DPA recipe)", _pct(fs["pointclip_head"])),
        (f"{o.shots}-shot PointCLIP adapter (published recipe)", _pct(fs["pointclip_published"])),
        ("classification chance", _pct(fs["chance"])),
        ("total time", f"{metrics['timing_s']['total']:.0f} s"),
    ]
    _log("\nCLIP2Point summary (" + clip.model_name + f", pretrained={clip.pretrained})")
    _log(_summary_table(rows))
    failed = [k for k, ok in metrics["checks"].items() if not ok]
    _log("checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    _log(f"run directory: {out}")
    metrics["run_dir"] = str(out)
    return metrics


def _write_views_png(path: Path, pairs_root: Path, size: int, num_views: int) -> None:
    """views.png: depth renders next to the stored RGB renders for a few objects."""
    from .figures import plot_views
    from .pairs import ImageDepthPairs

    ds = ImageDepthPairs(pairs_root, split="all", image_size=size, views="all", seed=0)
    n = min(4, len(ds))
    step = max(1, len(ds) // n)
    items = [ds[i * step] for i in range(n)]
    renderer = make_depth_renderer(size, num_views).to("cpu")
    with torch.no_grad():
        depth = renderer(torch.stack([it["points"] for it in items]))
    rgb = torch.stack([it["images"] for it in items])
    titles = [
        ds.classes[it["label"]] if it["label"] >= 0 and ds.classes else str(it["id"])[:16]
        for it in items
    ]
    plot_views(depth, rgb, path, titles=titles)
