"""The embedded demo: real Debian speech, a tiny AST pre-trained on it, and ``--model demo`` on any folder.

An adapter on a frozen *random* backbone has little to adapt, so the demo first gives the tiny AST real
knowledge (:mod:`.pretrain` on the ``pretrain-words`` recordings), then every method transfers it to the
ten digits (our design; the offline stand-in for "AudioSet pre-training, then Speech Commands"). The
pre-trained backbone lives in one folder (``--demo_dir``, default ``~/.cache/adapterlab/ast-demo``) so
that the demo sweep and ``--model demo`` on a user's own data share it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .loaders import synthesize_esc50
from .loaders.spoken_words import embedded_speech
from .model import TINY
from .pretrain import PretrainSettings, pretrain_backbone

#: ``--model demo``: the tiny AST pre-trained on the embedded real speech
DEMO = "demo"

#: recipe of the demo backbone's pre-training
PRETRAIN = PretrainSettings()

#: recipe of the tiny (pre-trained or random) AST: the study's dims scale to 1 at d = 64, its 5e-5 full-FT
#: rate barely moves a 220K-parameter model, and its LoRA scale 0.125 barely moves a 4-layer one
TINY_MODEL_SETTINGS = {"dim": 8, "lora_scale": 4.0, "full_lr": 1e-3}

#: settings of the embedded speech demo (1 s clips of ten digits, 2 CPU cores)
EMBEDDED_SPEECH = {
    "frames": 100,
    "epochs": 20,
    "batch_size": 16,
    "time_mask": 12,
    **TINY_MODEL_SETTINGS,
}

#: settings of the synthetic demo (tiny random AST on ~1.25 s synthetic clips, 2 CPU cores)
EMBEDDED = {
    "frames": 128,
    "epochs": 30,
    "batch_size": 16,
    "time_mask": 20,  # 80 frames of 500 in the study; scaled to the 128-frame clips
    "dim": 8,
    "lora_scale": 4.0,
}


def demo_home(demo_dir: str | os.PathLike | None = None) -> Path:
    """Folder of the demo's data and pre-trained backbone (``~/.cache/adapterlab/ast-demo`` by default)."""
    if demo_dir is not None:
        return Path(demo_dir).expanduser()
    return Path.home() / ".cache" / "adapterlab" / "ast-demo"


def demo_backbone(demo_dir: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The pre-trained demo backbone's folder (fetching the speech and pre-training on first use)."""
    home = demo_home(demo_dir)
    emb = embedded_speech(home / "data", progress_bar=progress)
    if not (home / "pretrained-ast" / "pretrain.json").is_file():
        print(
            f"[demo] pre-training the tiny AST on {emb.pretrain} (once; reused later)", flush=True
        )
    ckpt = pretrain_backbone(emb.pretrain, home / "pretrained-ast", PRETRAIN, progress=progress)
    report = json.loads((ckpt / "pretrain.json").read_text())
    print(
        f"[demo] pre-trained backbone {ckpt}: {report['task']}, "
        f"test accuracy {100 * report['test_accuracy']:.1f}%",
        flush=True,
    )
    return ckpt


def resolve_model(model: str | None, demo_dir: str | None, progress: bool) -> str | None:
    """``--model``: ``"demo"`` becomes the pre-trained demo backbone's folder; anything else is kept."""
    return str(demo_backbone(demo_dir, progress=progress)) if model == DEMO else model


def embedded_data(
    out: str | os.PathLike,
    demo: str,
    model: str | None,
    demo_dir: str | None,
    progress: bool,
) -> tuple[Path, str, str]:
    """``(root, dataset, model source)`` of the embedded default (written / pre-trained on first use)."""
    if demo == "synth":
        root = synthesize_esc50(Path(out) / "data", progress=progress)
        return root, "esc50", resolve_model(model, demo_dir, progress) or TINY
    print(
        "[demo] real speech from Debian's asterisk-core-sounds-en-wav -> Speech Commands folders",
        flush=True,
    )
    emb = embedded_speech(demo_home(demo_dir) / "data", progress_bar=progress)
    source = resolve_model(model or DEMO, demo_dir, progress)
    assert source is not None
    return emb.transfer, "speech_commands", source
