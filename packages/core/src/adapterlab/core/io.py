"""Adapter-only save and load: ``adapter_config.json`` + ``adapter.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .config import AdapterConfig, load_config
from .model import adapter_state, add_adapter, delete_adapter, list_adapters
from .tuners.registry import get_method
from .tuners.state import extra_modules

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "adapter_state_dict",
    "check_loaded_tensors",
    "load_adapter",
    "read_safetensors",
    "save_adapter",
    "write_safetensors",
]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"


def _tensor_slots(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Saved key -> the live tensor (parameter or buffer) it is loaded into."""
    state = adapter_state(model)
    if name not in state.configs:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(state.configs)}")
    slots: dict[str, torch.Tensor] = {}
    for group in (state.handles[name], extra_modules(model, name)):
        for key, module in group.items():
            for local, tensor in module.state_dict(keep_vars=True).items():
                slots[f"{key}.{local}"] = tensor
    return slots


def adapter_state_dict(model: nn.Module, name: str = "default") -> dict[str, torch.Tensor]:
    """Adapter ``name``'s tensors (detached), under keys that do not contain the name."""
    return {k: v.detach() for k, v in _tensor_slots(model, name).items()}


def write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """Write ``tensors`` to ``path`` atomically (temp file, then rename); other files stay."""
    from .engine.atomic import atomic_write_bytes  # lazy: the engine package imports accelerate

    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(data, metadata=metadata))


def save_adapter(model: nn.Module, directory: str | Path, name: str = "default") -> Path:
    """Write adapter ``name`` to ``directory``: ``adapter_config.json`` and ``adapter.safetensors``.

    Each file is replaced atomically (temp file, then rename); other files in ``directory``
    are left alone, as PEFT's ``save_pretrained`` does.
    """
    from .engine.atomic import atomic_write_text

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
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"cannot save adapter {name!r}: {directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / WEIGHTS_NAME, tensors, {"format": "pt", "method": config.method})
    atomic_write_text(
        directory / CONFIG_NAME, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n"
    )
    return directory


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; ``ValueError`` naming the file when it is missing or unreadable."""
    if not path.is_file():
        raise ValueError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err


def check_loaded_tensors(
    path: Path, tensors: dict[str, torch.Tensor], slots: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Tensors fit to copy into ``slots``: floating slots need finite floating values (float64
    is cast to the slot's dtype on purpose), integer slots need integer values."""
    out = dict(tensors)
    for key in sorted(set(tensors) & set(slots)):
        t, slot = tensors[key], slots[key]
        if slot.dtype.is_floating_point:
            if not t.dtype.is_floating_point:
                raise ValueError(
                    f"{path}: tensor {key!r} has dtype {t.dtype}; adapter weights must be "
                    "floating point"
                )
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{path}: tensor {key!r} holds NaN or infinite values")
            if t.dtype == torch.float64:
                out[key] = t.to(slot.dtype)  # deliberate: float64 files load at the model's dtype
        elif t.dtype.is_floating_point or t.dtype != slot.dtype:
            raise ValueError(f"{path}: tensor {key!r} has dtype {t.dtype}, expected {slot.dtype}")
    return out


def _read(directory: Path) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
    if not directory.is_dir():
        raise ValueError(f"adapter directory {directory} does not exist")
    missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (directory / f).is_file()]
    if missing:
        raise ValueError(f"adapter directory {directory} lacks {missing}")
    config = load_config(directory / CONFIG_NAME)
    return config, read_safetensors(directory / WEIGHTS_NAME)


def load_adapter(
    model: nn.Module, directory: str | Path, name: str = "default", strict: bool = True
) -> nn.Module:
    """Load the adapter saved in ``directory`` into ``model`` as ``name`` and return the model.

    The adapter is injected first when the model does not have it yet (e.g. a freshly built
    base model); if loading then fails, it is removed again. Raises ``ValueError`` naming missing,
    unexpected or wrongly shaped tensors, non-finite or non-floating weights, a config of another
    method, targets the model lacks, or unreadable files.
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
        try:
            return _fill(model, directory, config, tensors, name, strict)
        except BaseException:
            delete_adapter(model, name)  # roll back: the model is as before the call
            raise
    if existing.method != config.method:
        raise ValueError(
            f"{directory} holds a {config.method!r} adapter but the model's {name!r} is "
            f"{existing.method!r}"
        )
    return _fill(model, directory, config, tensors, name, strict)


def _fill(
    model: nn.Module,
    directory: Path,
    config: AdapterConfig,
    tensors: dict[str, torch.Tensor],
    name: str,
    strict: bool,
) -> nn.Module:
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
    tensors = check_loaded_tensors(directory / WEIGHTS_NAME, tensors, slots)
    with torch.no_grad():
        for key in set(slots) & set(tensors):
            slots[key].copy_(tensors[key])
    if method.after_load is not None:
        method.after_load(model, config, name)
    return model
