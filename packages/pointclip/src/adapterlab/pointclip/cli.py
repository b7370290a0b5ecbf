"""``adapterlab-clip2point``: CLIP2Point / PointCLIP from the command line.

One dataclass config per subcommand (``config.py``), parsed by the core's ``parse_config`` through
``run_subcommands``: usage errors exit 2, expected errors print one line and exit 1 (set
ADAPTERLAB_DEBUG=1 for the traceback). :func:`classic_argv` also accepts the familiar spellings
(``--data-dir``, ``--overwrite``, ``--no-progress``, ``--shots 1 2 4``, positionals).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import (
    FewShotCommandConfig,
    PipelineConfig,
    PretrainCommandConfig,
    RenderPairsConfig,
    ZeroShotConfig,
)
from .errors import PretrainedWeightsError

__all__ = ["COMMANDS", "USAGE", "classic_argv", "main"]

PROG = "adapterlab-clip2point"

USAGE = f"""usage: {PROG} {{render-pairs,pretrain,zeroshot,fewshot,run-all}} [options]

CLIP2Point (Huang et al., ICCV 2023) and PointCLIP baselines: render image-depth pairs, pre-train
a depth encoder, classify point clouds zero-shot and few-shot (Dual-Path Adapter).

commands:
  render-pairs  render RGB views + sample points for a folder of meshes
  pretrain      image-depth pre-training of the depth encoder
  zeroshot      zero-shot classification with CLIP or a pre-trained depth encoder
  fewshot       few-shot training of the Dual-Path Adapter (or PointCLIP's adapter)
  run-all       the main job: data -> pairs -> pre-training -> zero-/few-shot -> report

examples:
  {PROG} run-all                        # embedded data, tiny CLIP, a few minutes on CPU
  {PROG} run-all --preset paper --data /data/ShapeNetCore.v2,/data/ModelNet40_Align
  {PROG} render-pairs /data/ShapeNetCore.v2 data/pairs/shapenet
  {PROG} pretrain --pairs data/pairs/shapenet --out runs/pretrain --model ViT-B-32 \\
      --pretrained openai
  {PROG} zeroshot --data /data/ModelNet40_Ply --model ViT-B-32 --pretrained openai \\
      --ckpt runs/pretrain/depth_encoder.safetensors
  {PROG} fewshot --data /data/ModelNet40 --model ViT-B-32 --pretrained openai \\
      --ckpt runs/pretrain/depth_encoder.safetensors --shots 1 2 4 8 16 --seeds 0 1 2 --out runs/fs

--pretrained defaults to 'openai' for every model but 'tiny' (random weights); a local file
(e.g. ViT-B-32-openai.safetensors) works offline, with --quick_gelu true where the file does not
say its activation. Every run records the weights it used (source, sha256) in its metrics.json.

Options are written --name VALUE or name=VALUE (--data-dir and --data_dir both work; a bare
--flag means true, --no-flag false; lists as --shots 1 2 4 or --shots [1,2,4]).
Run `{PROG} <command> --help` for every option.
"""

_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")

#: subcommand -> the config fields its positional arguments fill, in order
POSITIONALS: dict[str, tuple[str, ...]] = {"render-pairs": ("mesh_root", "out_root")}


def _kinds(cls: type) -> dict[str, str]:
    """Field name -> "bool", "list" or "value" of a config dataclass."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        text = str(hints[f.name])
        if hints[f.name] is bool or text in ("bool | None", "typing.Optional[bool]"):
            out[f.name] = "bool"
        elif text.startswith(("list[", "tuple[")):
            out[f.name] = "list"
        else:
            out[f.name] = "value"
    return out


def classic_argv(command: str, cls: type, argv: Sequence[str]) -> list[str]:
    """The argparse-style spellings of ``argv`` rewritten for ``parse_config``: dashes in option
    names become underscores, a bare ``--flag`` is ``--flag true`` and ``--no-flag`` is
    ``--flag false`` (bool fields), ``--k 1 2`` is ``--k [1,2]`` (list fields) and positional
    arguments fill :data:`POSITIONALS`."""
    kinds = _kinds(cls)
    positional = list(POSITIONALS.get(command, ()))
    args, out, i = list(argv), [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or arg == "--help":
            if positional and not arg.startswith("-") and not _OVERRIDE.match(arg):
                arg = f"--{positional.pop(0)}={arg}"
            out.append(arg)
            continue
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        kind = kinds.get(name)
        nxt = args[i] if i < len(args) else None
        if eq:
            out.append(f"--{name}={value}")
        elif name.startswith("no_") and kinds.get(name[3:]) == "bool":
            out += [f"--{name[3:]}", "false"]
        elif kind == "bool":
            if nxt is not None and nxt.lower() in ("true", "false"):
                out += [f"--{name}", nxt]
                i += 1
            else:
                out += [f"--{name}", "true"]
        elif kind == "list" and nxt is not None and not nxt.startswith("["):
            items = []
            while i < len(args) and not args[i].startswith("--"):
                items.append(args[i])
                i += 1
            text = "str" in str(typing.get_type_hints(cls)[name])
            out += [f"--{name}", json.dumps(items if text else [_number(x) for x in items])]
        else:
            out.append(f"--{name}")
            if nxt is not None:
                out.append(nxt)
                i += 1
    return out


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------- handlers


def _render_pairs(c: RenderPairsConfig) -> None:
    from .pairs import render_pairs

    summary = render_pairs(
        c.mesh_root,
        c.out_root,
        num_views=c.views,
        num_points=c.points,
        image_size=c.image_size,
        skip_bad=not c.fail_on_bad,
        random_light=c.random_light,
        camera=c.camera,
        seed=c.seed,
        limit=c.limit,
        overwrite=c.overwrite,
    )
    print(summary)
    for path, reason in summary.bad:
        print(f"  bad: {path}: {reason}")


def _pretrain(c: PretrainCommandConfig) -> dict[str, Any]:
    from adapterlab.core.engine import resolve_device

    from .config import preset_pretrain_config
    from .models.clip import load_clip
    from .train import run_pretraining

    clip = load_clip(
        c.model,
        c.pretrained,
        device=resolve_device(c.device),
        image_size=c.image_size,
        quick_gelu=c.quick_gelu,
    )
    cfg = preset_pretrain_config(
        c.model,
        c.pretrained,
        adapter=c.adapter,
        epochs=c.epochs,
        batch_size=c.batch_size,
        lr=c.lr,
        views_per_object=c.views_per_object,
        jitter=c.jitter,
        seed=c.seed,
        freeze_patch_embed=c.freeze_patch_embed,
    )
    res = run_pretraining(clip, c.pairs, c.out, cfg, overwrite=c.overwrite)
    return {
        "untrained": res.untrained,
        "val": res.val,
        "test": res.test,
        "best_step": res.best_step,
        "encoder": str(res.encoder_path) if res.encoder_path else None,
        "adapter": str(res.adapter_dir) if res.adapter_dir else None,
        "weights": clip.weights,
    }


def _zeroshot(c: ZeroShotConfig) -> dict[str, Any]:
    from adapterlab.core.engine import atomic_write_json

    from .pipeline import run_zeroshot

    result = run_zeroshot(c)
    if c.out:
        Path(c.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(c.out, result)
    return result


def _fewshot(c: FewShotCommandConfig) -> dict[str, Any]:
    from .pipeline import run_fewshot

    return run_fewshot(c)


def _run_all(c: PipelineConfig) -> dict[str, Any] | None:
    from .pipeline import run_all

    if c.dry_run:
        return dataclasses.asdict(c.resolved())
    run_all(c)  # prints its own summary table
    return None


#: subcommand -> (config dataclass, handler)
COMMANDS: dict[str, tuple[type, Any]] = {
    "render-pairs": (RenderPairsConfig, _render_pairs),
    "pretrain": (PretrainCommandConfig, _pretrain),
    "zeroshot": (ZeroShotConfig, _zeroshot),
    "fewshot": (FewShotCommandConfig, _fewshot),
    "run-all": (PipelineConfig, _run_all),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-clip2point`` and ``python -m adapterlab.pointclip``; returns
    the exit status (0 ok, 1 a clear one-line error, 2 a usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(USAGE)  # before importing the engine (torch): the top-level help is instant
        return 0
    if args and args[0] in COMMANDS:
        args = [args[0], *classic_argv(args[0], COMMANDS[args[0]][0], args[1:])]
    from adapterlab.core.engine import Subcommand, run_subcommands

    commands = {name: Subcommand(cfg, handler) for name, (cfg, handler) in COMMANDS.items()}
    return run_subcommands(PROG, USAGE, commands, args, errors=(PretrainedWeightsError,))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
