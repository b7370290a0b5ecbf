"""Saving and loading the depth encoder (CLIP visual architecture) as safetensors.

A depth-encoder file holds the state dict of an open_clip ``VisionTransformer`` (merged: adapters
folded in where possible, see :mod:`.pretrain`). Loading also accepts the original CLIP2Point
checkpoints' key layout (``point_model.*`` / ``pre_model.*`` / ``module.*`` prefixes); ``.pt``,
``.pth`` and ``.bin`` files are read with ``torch.load(weights_only=True)`` so no code in them
runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from adapterlab.core.engine import atomic_write_bytes
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

__all__ = ["encoder_metadata", "load_encoder_weights", "save_encoder_weights"]

_PREFIXES = ("module.", "point_model.", "pre_model.", "depth_encoder.", "visual.")


def save_encoder_weights(
    encoder: nn.Module, path: str | Path, clip_weights: dict[str, Any] | None = None
) -> Path:
    """Write ``encoder.state_dict()`` to ``path`` (safetensors, atomic). ``clip_weights`` (the
    CLIP's :attr:`ClipBundle.weights`) goes into the metadata: ``clip_model``,
    ``clip_pretrained``, ``clip_state_sha256`` and ``quick_gelu``, the activation the encoder
    was trained with."""
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    meta = {"format": "pt", "content": "clip-visual-depth-encoder"}
    if clip_weights:
        meta.update(
            {
                "clip_model": str(clip_weights.get("model", "")),
                "clip_pretrained": str(clip_weights.get("pretrained", "")),
                "clip_state_sha256": str(clip_weights.get("state_sha256", "")),
                "quick_gelu": str(bool(clip_weights.get("quick_gelu"))).lower(),
            }
        )
    atomic_write_bytes(path, save(state, metadata=meta))
    return path


def encoder_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of a depth-encoder file ({} for other formats)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - an unreadable file is reported by load_encoder_weights
        return {}


def _strip(state: dict[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        k = key
        changed = True
        while changed and k not in wanted:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p) :], True
        out[k] = value
    return out


def _point_model_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original CLIP2Point checkpoint (``[module.]point_model.*``, ``image_model.*``, the loss
    weight, the view selector's buffers): keep only ``point_model.*``, as its ``read_state_dict``
    does. Other layouts pass through unchanged."""
    marker = "point_model."
    keys = [k for k in state if k.removeprefix("module.").startswith(marker)]
    if not keys:
        return state
    return {k.removeprefix("module.")[len(marker) :]: state[k] for k in keys}


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> nn.Module:
    """Load a depth-encoder checkpoint into ``encoder`` (in place) and return it.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is unreadable or its tensors do not fit the encoder (names the
            missing / unexpected / mis-shaped keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Depth-encoder checkpoint '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"Depth-encoder checkpoint '{path}' holds pickled Python objects; refusing to "
            "unpickle it (torch.load weights_only=True). Save a plain state dict or safetensors."
        ) from err
    except Exception as err:  # noqa: BLE001 - any parse failure is reported with the path
        msg = " ".join(str(err).split())[:300]
        raise ValueError(f"Could not read depth-encoder checkpoint '{path}': {msg}") from err
    if not isinstance(state, dict):
        raise ValueError(f"'{path}' does not hold a state dict")
    own = encoder.state_dict()
    state = _point_model_only(state)
    state = _strip(state, set(own))
    # original CLIP2Point checkpoints hold both encoders: keep only the depth-encoder keys
    state = {k: v for k, v in state.items() if k in own or not k.startswith("image_model.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"Depth-encoder checkpoint '{path}' does not fit the model: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}, "
            f"shape mismatches {shapes[:4]}. Is it for the same --model?"
        )
    encoder.load_state_dict(state)
    return encoder
