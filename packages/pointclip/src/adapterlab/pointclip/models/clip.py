"""CLIP through open_clip: any model name + pretrained tag, a local checkpoint, or random init.

CLIP2Point (Huang et al., ICCV 2023) and PointCLIP build on OpenAI CLIP ViT-B/32. Here every
open_clip architecture works (``ViT-B-32``, ``ViT-B-16``, ...), with its pretrained tag
(``openai``, ``laion2b_s34b_b79k``, ...), a local checkpoint file (``.safetensors`` or a
``torch.load``-able state dict, read with ``weights_only=True``), or ``none`` (random init).

The ``tiny`` preset is a narrow ViT (64 px input, patch 16, width 128, 3 layers, mean-pooled
tokens, 64-d embedding) registered as an open_clip model config. It runs on a CPU in seconds and
serves the embedded default run and the tests; with random weights its text features are arbitrary
but fixed, so prompts only become meaningful with real weights.

Random initialisation of ``tiny`` (``--pretrained none``) makes the patch-embedding filters
zero-mean ("DC-free"). Renders have a large uniform white background; with open_clip's default
init that background dominates every token, so the random image features of all renders are
almost identical (pairwise cosine > 0.997) and CLIP2Point's NT-Xent losses get no usable signal.
With DC-free filters a uniform patch embeds to zero and the features follow the object's shape
(pairwise cosine ~0.8, like a trained CLIP's spread).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from ..defaults import NO_WEIGHTS, resolve_pretrained
from ..errors import PretrainedWeightsError

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipBundle",
    "PretrainedWeightsError",
    "TINY_PRESET",
    "load_clip",
    "decide_quick_gelu",
    "needs_quick_gelu",
    "register_presets",
    "state_sha256",
]

#: OpenAI CLIP normalisation constants (also used by open_clip for the openai tags).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

#: Name of the small CPU preset.
TINY_PRESET = "tiny"
_CONFIG_DIR = Path(__file__).with_name("configs")
_NO_WEIGHTS = NO_WEIGHTS


@dataclass
class ClipBundle:
    """A loaded CLIP model with what the pipeline needs to use it.

    Attributes:
        model: the open_clip ``CLIP`` module (``.visual`` is the image encoder).
        tokenizer: callable mapping a list of strings to a ``[N, context]`` token tensor.
        model_name: open_clip architecture name.
        pretrained: the pretrained tag or path used ("none" for random init).
        image_size: input resolution of the visual encoder.
        embed_dim: dimension of the joint embedding space.
        weights: what was loaded, for every run's ``metrics.json``: ``source`` (open_clip tag,
            local file or random init), the tag's ``url``/``hf_hub`` or the file's ``file`` and
            ``file_sha256``, ``quick_gelu`` and why, and ``state_sha256`` (hash of the loaded
            state dict, names + dtypes + shapes + bytes).
    """

    model: nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    model_name: str
    pretrained: str
    image_size: int
    embed_dim: int
    weights: dict[str, Any] = field(default_factory=dict)

    @property
    def visual(self) -> nn.Module:
        """The image encoder (``model.visual``)."""
        return self.model.visual

    def copy_visual(self) -> nn.Module:
        """A deep copy of the image encoder: CLIP2Point initialises the depth encoder this way."""
        return copy.deepcopy(self.model.visual)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text features ``[len(texts), embed_dim]`` on the model's device."""
        device = next(self.model.parameters()).device
        feats = []
        was_training = self.model.training
        self.model.eval()
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[i : i + batch_size]).to(device)
            feats.append(self.model.encode_text(tokens, normalize=True))
        self.model.train(was_training)
        return torch.cat(feats).float()


def register_presets() -> None:
    """Register the package's open_clip model configs (``tiny``); idempotent."""
    if TINY_PRESET not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


def _offline_hint(model_name: str, pretrained: str) -> str:
    return (
        f"Could not load CLIP weights for model '{model_name}' with pretrained='{pretrained}'. "
        "Pretrained tags are downloaded from the internet (Hugging Face / OpenAI) on first use; "
        "this machine may be offline or the tag may be wrong. Either pass `--pretrained none` "
        "(random weights: fine for smoke tests, meaningless accuracy) or pass a local checkpoint "
        "file you copied to this machine, e.g. `--pretrained /path/to/open_clip_model.safetensors` "
        "(.safetensors, or a .bin/.pt state dict). Known tags for this model: "
        f"{open_clip.list_pretrained_tags_by_model(model_name) or '(none)'}."
    )


def _file_keys(path: Path) -> tuple[set[str], dict[str, str]]:
    """Tensor names and safetensors metadata of a checkpoint file (empty when unreadable)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return set(f.keys()), dict(f.metadata() or {})
        if path.stat().st_size < 2**31:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict):
                return set(state.get("state_dict", state)), {}
    except Exception:  # noqa: BLE001 - unreadable files fail later with the loader's message
        pass
    return set(), {}


def _file_has_openai_layout(path: Path) -> bool:
    """True for OpenAI's own CLIP checkpoints (``input_resolution`` / ``context_length`` keys)."""
    keys, _ = _file_keys(path)
    return bool({"input_resolution", "context_length", "vocab_size"} & keys)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def _file_quick_gelu(path: Path) -> tuple[bool | None, str]:
    """QuickGELU of a local checkpoint from its weights' layout or explicit metadata, or
    ``(None, why not)`` when the file cannot tell."""
    keys, meta = _file_keys(path)
    if {"input_resolution", "context_length", "vocab_size"} & keys:
        return True, "OpenAI's checkpoint layout (input_resolution key)"
    if "quick_gelu" in meta and _as_bool(meta["quick_gelu"]) is not None:
        return _as_bool(meta["quick_gelu"]), "the file's safetensors metadata 'quick_gelu'"
    config = path.with_name("open_clip_config.json")
    if config.is_file():
        try:
            model_cfg = json.loads(config.read_text(encoding="utf-8")).get("model_cfg")
        except (OSError, ValueError, AttributeError):
            model_cfg = None
        if isinstance(model_cfg, dict):
            flag = _as_bool(model_cfg.get("quick_gelu", False))
            if flag is not None:
                return flag, f"model_cfg.quick_gelu of {config}"
    return None, (
        "the file is in open_clip's layout with no metadata naming its activation (safetensors "
        "metadata 'quick_gelu' or an open_clip_config.json beside it)"
    )


def decide_quick_gelu(
    model_name: str, pretrained: str | None, explicit: bool | None = None
) -> tuple[bool, str]:
    """``(quick_gelu, reason)``: whether ``pretrained`` weights need QuickGELU (OpenAI's CLIP
    activation), and how that was decided.

    open_clip 3.x builds ``ViT-B-32`` with ``nn.GELU`` even for the ``openai`` tag and only
    warns; OpenAI weights in a GELU model give wrong features (and GELU weights in a QuickGELU
    model too). Decided from (1) a ``-quickgelu`` architecture, (2) a tag's open_clip config
    (``openai``: yes), (3) a local file's weights (OpenAI's own layout: yes) or explicit metadata
    (safetensors metadata ``quick_gelu``, ``model_cfg.quick_gelu`` of an ``open_clip_config.json``
    beside it). A file name is not evidence. ``explicit`` (``--quick_gelu``) wins, with a warning
    where it contradicts the evidence; a local file that cannot tell needs it
    (:class:`PretrainedWeightsError`, whose message says so). Random weights keep the config's
    choice.
    """
    from open_clip.pretrained import get_pretrained_cfg

    tag = resolve_pretrained(model_name, pretrained)
    if tag == "none":
        detected: bool | None = model_name.endswith("-quickgelu")
        why = "random weights: the architecture's own activation"
    elif model_name.endswith("-quickgelu"):
        detected, why = True, f"the architecture '{model_name}'"
    elif tag in open_clip.list_pretrained_tags_by_model(model_name):
        detected = bool(get_pretrained_cfg(model_name, tag).get("quick_gelu", False))
        why = f"open_clip's config of the tag '{tag}'"
    else:
        detected, why = _file_quick_gelu(Path(tag))
    if explicit is not None:
        if detected is not None and detected != explicit:
            warnings.warn(
                f"--quick_gelu {str(explicit).lower()} contradicts {why} (which says "
                f"{str(detected).lower()}); using --quick_gelu {str(explicit).lower()}",
                stacklevel=2,
            )
        return explicit, "--quick_gelu"
    if detected is None:
        hint = ""
        if any(w in Path(tag).name.lower() for w in ("openai", "quickgelu", "quick_gelu")):
            hint = " (its name suggests OpenAI weights: --quick_gelu true)"
        raise PretrainedWeightsError(
            f"Cannot tell whether '{tag}' was trained with QuickGELU (OpenAI CLIP) or GELU: "
            f"{why}, and the wrong activation gives wrong features. Pass --quick_gelu true for "
            f"OpenAI weights or --quick_gelu false otherwise{hint}."
        )
    return detected, why


def needs_quick_gelu(model_name: str, pretrained: str | None, explicit: bool | None = None) -> bool:
    """Whether ``pretrained`` needs QuickGELU (see :func:`decide_quick_gelu`)."""
    return decide_quick_gelu(model_name, pretrained, explicit)[0]


def state_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (sorted names, dtypes, shapes and raw bytes): the
    identity of the weights actually in use, whatever file or tag they came from."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _weights_record(
    name: str, tag: str, model: nn.Module, quick_gelu: bool, why: str
) -> dict[str, Any]:
    """What :attr:`ClipBundle.weights` holds (see there)."""
    from open_clip.pretrained import get_pretrained_cfg

    record: dict[str, Any] = {"model": name, "pretrained": tag}
    if tag == "none":
        record["source"] = "random init"
    elif tag in open_clip.list_pretrained_tags_by_model(name):
        cfg = get_pretrained_cfg(name, tag)
        record["source"] = "open_clip tag"
        record.update({k: cfg[k] for k in ("url", "hf_hub") if cfg.get(k)})
    else:
        path = Path(tag).resolve()
        record.update(
            {"source": "local file", "file": str(path), "file_sha256": _file_sha256(path)}
        )
    record.update(
        {"quick_gelu": quick_gelu, "quick_gelu_from": why, "state_sha256": state_sha256(model)}
    )
    return record


@torch.no_grad()
def _dc_free_patch_embedding(visual: nn.Module) -> None:
    """Make every patch-embedding filter zero-mean (see the module docstring)."""
    conv = getattr(visual, "conv1", None)
    if isinstance(conv, nn.Conv2d):
        conv.weight -= conv.weight.mean(dim=(1, 2, 3), keepdim=True)


def load_clip(
    model_name: str = TINY_PRESET,
    pretrained: str | None = None,
    device: str | torch.device | None = None,
    image_size: int | None = None,
    quick_gelu: bool | None = None,
) -> ClipBundle:
    """Load a CLIP model through open_clip.

    Args:
        model_name: open_clip architecture (``ViT-B-32``, ...) or ``tiny``.
        pretrained: a pretrained tag (``openai``), a local checkpoint path, or ``"none"`` for
            random initialisation; ``None`` is :func:`~adapterlab.pointclip.config.
            resolve_pretrained`'s default (``"none"`` for tiny, ``"openai"`` otherwise).
        device: target device; default cuda when available, else cpu.
        image_size: override the visual input size (positional embeddings of pretrained weights
            are only valid at the native size, so leave this None with real weights).
        quick_gelu: force QuickGELU (True) or GELU (False); None decides from the weights
            (:func:`decide_quick_gelu`).

    Raises:
        ValueError: unknown model name.
        PretrainedWeightsError: weights could not be loaded (message suggests ``--pretrained none``
            or a local path).
    """
    from adapterlab.core.engine import resolve_device

    register_presets()
    device = resolve_device(device)
    name = model_name.replace("/", "-")
    if name not in open_clip.list_models():
        raise ValueError(
            f"Unknown CLIP model '{model_name}'. Use 'tiny' or an open_clip name, e.g. "
            f"ViT-B-32, ViT-B-16, RN50 (all: open_clip.list_models())."
        )
    tag = resolve_pretrained(name, pretrained)
    use_weights = tag != "none"
    if use_weights:
        is_tag = tag in open_clip.list_pretrained_tags_by_model(name)
        looks_like_path = os.sep in tag or tag.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if not is_tag and looks_like_path and not Path(tag).is_file():
            raise PretrainedWeightsError(
                f"Checkpoint file '{tag}' does not exist. " + _offline_hint(name, tag)
            )
        if not is_tag and not looks_like_path:
            raise PretrainedWeightsError(
                f"'{tag}' is neither a known pretrained tag of '{name}' nor a file. "
                + _offline_hint(name, tag)
            )
    kwargs: dict[str, Any] = {}
    use_quick_gelu, why = decide_quick_gelu(name, tag, quick_gelu)
    if use_quick_gelu:
        kwargs["force_quick_gelu"] = True
    if image_size is not None:
        kwargs["force_image_size"] = image_size
    try:
        model = open_clip.create_model(
            name,
            pretrained=tag if use_weights else None,
            device=device,
            weights_only=True,
            **kwargs,
        )
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        if not use_weights:
            raise
        raise PretrainedWeightsError(_offline_hint(name, tag) + f" (cause: {err})") from err
    if name == TINY_PRESET and not use_weights:
        _dc_free_patch_embedding(model.visual)
    tokenizer = open_clip.get_tokenizer(name)
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, tuple | list) else size)
    embed_dim = int(model.visual.output_dim)
    model.eval()
    return ClipBundle(
        model=model,
        tokenizer=tokenizer,
        model_name=name,
        pretrained=tag if use_weights else "none",
        image_size=size,
        embed_dim=embed_dim,
        weights=_weights_record(name, tag, model, use_quick_gelu, why),
    )
