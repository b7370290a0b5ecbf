"""Adapter-only save and load: ``adapter_config.json`` + ``adapter.safetensors``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import AdapterConfig, load_config
from .model import adapter_state, add_adapter, list_adapters
from .tuners.registry import get_method

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "adapter_state_dict",
    "load_adapter",
    "save_adapter",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"


def _tensor_slots(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Saved key -> the live tensor (parameter or buffer) it is loaded into."""
    state = adapter_state(model)
    if name not in state.configs:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state.configs)}")
    slots: dict[str, torch.Tensor] = {}
    for group in (state.handles[name], state.extras[name]):
        for key, module in group.items():
            for local, tensor in module.state_dict(keep_vars=True).items():
                slots[f"{key}.{local}"] = tensor
    return slots


def adapter_state_dict(model: nn.Module, name: str = "default") -> dict[str, torch.Tensor]:
    """Adapter ``name``'s tensors (detached), under keys that do not contain the name."""
    return {k: v.detach() for k, v in _tensor_slots(model, name).items()}


def save_adapter(model: nn.Module, directory: str | Path, name: str = "default") -> Path:
    """Write adapter ``name`` to ``directory`` atomically (temp dir, then rename)."""
    directory = Path(directory)
    config = adapter_state(model).configs.get(name)
    if config is None:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(list_adapters(model))}")
    tensors = {
        k: v.detach().to("cpu").contiguous().clone()
        for k, v in adapter_state_dict(model, name).items()
    }
    method = get_method(config)
    if method.pack_state is not None:
        tensors = method.pack_state(tensors, config)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        config.to_json(tmp / CONFIG_NAME)
        save_file(
            tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "method": config.method}
        )
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _read(directory: Path) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
    if not directory.is_dir():
        raise ValueError(f"adapter directory {directory} does not exist")
    missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (directory / f).is_file()]
    if missing:
        raise ValueError(f"adapter directory {directory} lacks {missing}")
    config = load_config(directory / CONFIG_NAME)
    path = directory / WEIGHTS_NAME
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    return config, tensors


def load_adapter(
    model: nn.Module, directory: str | Path, name: str = "default", strict: bool = True
) -> nn.Module:
    """Load the adapter saved in ``directory`` into ``model`` as ``name`` and return the model.

    The adapter is injected first when the model does not have it yet (e.g. a freshly built
    base model). Raises ``ValueError`` naming missing, unexpected or wrongly shaped tensors, a
    config of another method, targets the model lacks, or unreadable files.
    """
    directory = Path(directory)
    config, tensors = _read(directory)
    existing = list_adapters(model).get(name)
    if existing is None:
        try:
            add_adapter(model, config, name)
        except ValueError as err:
            raise ValueError(
                f"cannot load adapter {directory} into {type(model).__name__}: {err}"
            ) from err
    elif existing.method != config.method:
        raise ValueError(
            f"{directory} holds a {config.method!r} adapter but the model's {name!r} is "
            f"{existing.method!r}"
        )
    method = get_method(config)
    if method.unpack_state is not None:
        try:
            tensors = method.unpack_state(tensors, config)
        except ValueError as err:
            raise ValueError(f"{directory / WEIGHTS_NAME}: {err}") from err
    slots = _tensor_slots(model, name)
    missing = sorted(set(slots) - set(tensors))
    unexpected = sorted(set(tensors) - set(slots))
    mismatched = sorted(
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(slots[k].shape)}"
        for k in set(slots) & set(tensors)
        if tensors[k].shape != slots[k].shape
    )
    problems = []
    if mismatched:
        problems.append(f"shape mismatches {mismatched[:10]}")
    if strict and missing:
        problems.append(f"missing keys {missing[:10]}" + (" ..." if len(missing) > 10 else ""))
    if strict and unexpected:
        problems.append(
            f"unexpected keys {unexpected[:10]}" + (" ..." if len(unexpected) > 10 else "")
        )
    if problems:
        raise ValueError(
            f"adapter {directory} does not fit {type(model).__name__}: " + "; ".join(problems)
        )
    with torch.no_grad():
        for key in set(slots) & set(tensors):
            slots[key].copy_(tensors[key])
    if method.after_load is not None:
        method.after_load(model, config, name)
    return model
