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
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn

from ..errors import PretrainedWeightsError

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipBundle",
    "PretrainedWeightsError",
    "TINY_PRESET",
    "load_clip",
    "needs_quick_gelu",
    "register_presets",
]

#: OpenAI CLIP normalisation constants (also used by open_clip for the openai tags).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

#: Name of the small CPU preset.
TINY_PRESET = "tiny"
_CONFIG_DIR = Path(__file__).with_name("configs")
_NO_WEIGHTS = {"", "none", "null", "random"}


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
    """

    model: nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    model_name: str
    pretrained: str
    image_size: int
    embed_dim: int

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


def _file_has_openai_layout(path: Path) -> bool:
    """True for OpenAI's own CLIP checkpoints (``input_resolution`` / ``context_length`` keys)."""
    keys: set[str] = set()
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                keys = set(f.keys())
        elif path.stat().st_size < 2**31:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict):
                keys = set(state.get("state_dict", state))
    except Exception:  # noqa: BLE001 - unreadable files fail later with the loader's message
        return False
    return bool({"input_resolution", "context_length", "vocab_size"} & keys)


def needs_quick_gelu(model_name: str, pretrained: str | None) -> bool:
    """Whether ``pretrained`` weights were trained with QuickGELU (OpenAI's CLIP activation).

    open_clip 3.x builds ``ViT-B-32`` with ``nn.GELU`` even for the ``openai`` tag and only
    warns; OpenAI weights in a GELU model give wrong features. QuickGELU is chosen for
    (1) a tag whose open_clip config says ``quick_gelu`` (``openai`` and the ``*-quickgelu``
    models), (2) a local file whose name contains ``openai`` or ``quickgelu``, (3) a local file
    in OpenAI's own layout (``input_resolution`` key). Random weights keep the config's choice.
    """
    from open_clip.pretrained import get_pretrained_cfg

    tag = (pretrained or "none").strip()
    if tag.lower() in _NO_WEIGHTS:
        return False
    if model_name.endswith("-quickgelu"):
        return True
    if tag in open_clip.list_pretrained_tags_by_model(model_name):
        return bool(get_pretrained_cfg(model_name, tag).get("quick_gelu", False))
    path = Path(tag)
    if any(word in path.name.lower() for word in ("openai", "quickgelu", "quick_gelu")):
        return True
    return path.is_file() and _file_has_openai_layout(path)


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
) -> ClipBundle:
    """Load a CLIP model through open_clip.

    Args:
        model_name: open_clip architecture (``ViT-B-32``, ...) or ``tiny``.
        pretrained: a pretrained tag (``openai``), a local checkpoint path, or ``None``/``"none"``
            for random initialisation.
        device: target device; default cuda when available, else cpu.
        image_size: override the visual input size (positional embeddings of pretrained weights
            are only valid at the native size, so leave this None with real weights).

    Raises:
        ValueError: unknown model name.
        PretrainedWeightsError: weights could not be loaded (message suggests ``--pretrained none``
            or a local path).
    """
    register_presets()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = model_name.replace("/", "-")
    if name not in open_clip.list_models():
        raise ValueError(
            f"Unknown CLIP model '{model_name}'. Use 'tiny' or an open_clip name, e.g. "
            f"ViT-B-32, ViT-B-16, RN50 (all: open_clip.list_models())."
        )
    tag = (pretrained or "none").strip()
    use_weights = tag.lower() not in _NO_WEIGHTS
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
    kwargs = {}
    if needs_quick_gelu(name, tag if use_weights else None):
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
    )
