"""PEFT LoRA directories <-> adapterlab.core LoRA adapters.

adapterlab's LoRA *is* PEFT's LoRA layer (``tuners/lora`` injects it with
``peft.inject_adapter_in_model``), so interoperability is only a matter of file layout:

- :func:`export_peft` writes ``adapter_config.json`` (a ``peft.LoraConfig``) and
  ``adapter_model.safetensors`` with PEFT's keys (``base_model.model.<module>.lora_A.weight``,
  ``...lora_B.weight``, ``...lora_magnitude_vector`` for DoRA, ``base_model.model.<extra module>.
  <tensor>`` for ``modules_to_save``), loadable with ``peft.PeftModel.from_pretrained``.
- :func:`load_peft_adapter` reads such a directory (written by PEFT or by :func:`export_peft`)
  into adapterlab as a named adapter.

``submodule`` maps between a wrapper (``MyClassifier(backbone=RobertaModel, head=...)``) and the
bare model PEFT sees: module paths in the PEFT files are relative to it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..io import check_loaded_tensors, read_safetensors, write_safetensors
from ..model import adapter_state, add_adapter, delete_adapter, list_adapters
from ..targeting import TargetError, clean_name, match_modules
from ..tuners.lora import LoraConfig, peft_layers
from ..tuners.state import extra_modules

if TYPE_CHECKING:
    import peft

__all__ = ["PEFT_CONFIG_NAME", "PEFT_WEIGHTS_NAME", "export_peft", "load_peft_adapter"]

PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
_PREFIX = "base_model.model."


def _relative(path: str, submodule: str | None, what: str) -> str:
    if not submodule:
        return path
    if not path.startswith(submodule + "."):
        raise ValueError(f"{what} {path!r} lies outside submodule {submodule!r}")
    return path[len(submodule) + 1 :]


def _peft_slots(model: nn.Module, name: str, submodule: str | None) -> dict[str, torch.Tensor]:
    """PEFT file key -> live tensor, for LoRA adapter ``name`` and its extra modules."""
    slots: dict[str, torch.Tensor] = {}
    for path, layer in peft_layers(model, name):
        rel = _relative(clean_name(path), submodule, "LoRA layer")
        for attr in layer.adapter_layer_names:
            container = getattr(layer, attr, None)
            if container is None or name not in container:
                continue
            item = container[name]
            if isinstance(item, nn.Parameter):
                slots[f"{_PREFIX}{rel}.{attr}"] = item
                continue
            for local, tensor in item.state_dict(keep_vars=True).items():
                key = f"{_PREFIX}{rel}.{attr}.{local}"
                if attr == "lora_magnitude_vector" and local == "weight":
                    key = f"{_PREFIX}{rel}.{attr}"  # PEFT's DoRA key convention
                slots[key] = tensor
    for key, module in extra_modules(model, name).items():
        rel = _relative(key.removeprefix("extra."), submodule, "modules_to_save entry")
        for local, tensor in module.state_dict(keep_vars=True).items():
            slots[f"{_PREFIX}{rel}.{local}"] = tensor
    return slots


def _lora_config(model: nn.Module, name: str) -> LoraConfig:
    config = list_adapters(model).get(name)
    if config is None:
        raise ValueError(f"no adapter named {name!r}; adapters: {list(list_adapters(model))}")
    if not isinstance(config, LoraConfig):
        raise ValueError(
            f"only LoRA adapters (lora, dora, rslora) map to PEFT; {name!r} is {config.method!r}"
        )
    return config


def export_peft(
    model: nn.Module,
    directory: str | Path,
    name: str = "default",
    *,
    submodule: str | None = None,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write LoRA adapter ``name`` as a PEFT adapter directory.

    ``adapter_config.json`` and ``adapter_model.safetensors`` are each replaced atomically; other
    files in ``directory`` are left alone (as PEFT's ``save_pretrained``). Load it with ``peft.PeftModel.from_pretrained(base, directory)`` where ``base`` is a model
    like ``model`` (or like ``model.get_submodule(submodule)`` when ``submodule`` is given).
    """
    directory = Path(directory)
    config = _lora_config(model, name)
    slots = _peft_slots(model, name, submodule)
    targets = sorted(
        {_relative(clean_name(p), submodule, "LoRA layer") for p, _ in peft_layers(model, name)}
    )
    extras = [
        _relative(clean, submodule, "modules_to_save entry")
        for clean in adapter_state(model).extras[name]
    ]
    base = model.get_submodule(submodule) if submodule else model
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(base, "config", None), "_name_or_path", None)
    peft_config = config.to_peft(targets)
    peft_config.modules_to_save = extras or None
    peft_config.base_model_name_or_path = base_model_name_or_path or None
    peft_config.inference_mode = True
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in slots.items()}
    from ..engine.atomic import atomic_write_json  # lazy: the engine package imports accelerate

    if directory.exists() and not directory.is_dir():
        raise ValueError(f"cannot export adapter {name!r}: {directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / PEFT_WEIGHTS_NAME, tensors, {"format": "pt"})
    payload = {k: sorted(v) if isinstance(v, set) else v for k, v in peft_config.to_dict().items()}
    atomic_write_json(directory / PEFT_CONFIG_NAME, payload)
    return directory


_UNSUPPORTED = {
    "rank_pattern": "per-module ranks",
    "alpha_pattern": "per-module alphas",
    "layers_to_transform": "layer selection",
    "exclude_modules": "excluded modules",
    "target_parameters": "parameter targets",
    "lora_bias": "LoRA bias",
    "layer_replication": "layer replication",
}


def _read_peft(directory: Path) -> tuple[peft.LoraConfig, dict[str, torch.Tensor]]:
    import peft

    config_path = directory / PEFT_CONFIG_NAME
    weights_path = directory / PEFT_WEIGHTS_NAME
    if not config_path.is_file():
        raise ValueError(f"{config_path}: missing (not a PEFT adapter directory)")
    if not weights_path.is_file():
        hint = (
            " (only adapter_model.bin found: pickled weights are not loaded; re-save with "
            "safe_serialization=True)"
            if (directory / "adapter_model.bin").is_file()
            else ""
        )
        raise ValueError(f"{weights_path}: missing{hint}")
    try:
        raw = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_path}: unreadable JSON ({err})") from err
    if not isinstance(raw, dict) or raw.get("peft_type") != "LORA":
        raw = raw if isinstance(raw, dict) else {}
        raise ValueError(
            f"{config_path}: peft_type {raw.get('peft_type')!r} is not supported; only LORA "
            "adapters load into adapterlab"
        )
    cfg = peft.LoraConfig.from_pretrained(str(directory))
    for field, what in _UNSUPPORTED.items():
        if getattr(cfg, field, None):
            raise ValueError(f"{config_path}: {field} ({what}) is not supported by adapterlab")
    if cfg.target_modules == "all-linear":
        raise ValueError(f"{config_path}: 'all-linear' targets are not supported; list modules")
    if cfg.bias != "none":
        raise ValueError(
            f"{config_path}: bias={cfg.bias!r} (PEFT also trains and saves base-layer biases) is "
            "not supported by adapterlab; train the PEFT adapter with bias='none'"
        )
    return cfg, read_safetensors(weights_path)


def _present(model: nn.Module, entries: list[str]) -> list[str]:
    """The ``modules_to_save`` entries the model has. PEFT skips the others: its SEQ_CLS task
    type lists both ``classifier`` (BERT family) and ``score`` (decoder LMs)."""
    out = []
    for entry in entries:
        try:
            match_modules(model, [entry])
        except TargetError:
            continue
        out.append(entry)
    return out


def _to_adapterlab(cfg: peft.LoraConfig, submodule: str | None, model: nn.Module) -> LoraConfig:
    targets = cfg.target_modules
    if isinstance(targets, str):
        if submodule:
            targets = re.escape(submodule + ".") + f"(?:{targets})"
    else:
        targets = sorted(targets)
    extras = list(cfg.modules_to_save or [])
    if submodule:
        extras = [f"{submodule}.{e}" for e in extras]
    extras = _present(model, extras)
    return LoraConfig(
        r=cfg.r,
        alpha=cfg.lora_alpha,
        dropout=cfg.lora_dropout,
        use_dora=bool(cfg.use_dora),
        use_rslora=bool(cfg.use_rslora),
        target_modules=targets,
        modules_to_save=extras,
    )


def _check_shapes(model: nn.Module, tensors: dict[str, torch.Tensor], r: int, path: Path) -> None:
    """Catch an adapter for another architecture before anything is injected."""
    for key, t in tensors.items():
        for attr, dim in ((".lora_A.weight", 1), (".lora_B.weight", 0)):
            if not key.endswith(attr):
                continue
            mod_path = key[len(_PREFIX) : -len(attr)]
            try:
                module = model.get_submodule(mod_path)
            except AttributeError:
                raise ValueError(f"{path}: tensor {key!r} names a module the model lacks") from None
            if isinstance(module, nn.Linear):
                want = module.in_features if dim == 1 else module.out_features
                shape = (r, want) if dim == 1 else (want, r)
                if tuple(t.shape) != shape:
                    raise ValueError(
                        f"{path}: {key!r} has shape {tuple(t.shape)}, {mod_path} needs {shape}"
                    )


def load_peft_adapter(
    model: nn.Module,
    directory: str | Path,
    name: str = "default",
    *,
    submodule: str | None = None,
) -> nn.Module:
    """Load a PEFT LoRA directory into ``model`` as adapterlab adapter ``name`` and return it.

    Raises ``ValueError`` naming the file for another PEFT method, unsupported options,
    pickled-only weights, unreadable files, or tensors that do not fit the model.
    """
    directory = Path(directory)
    peft_cfg, tensors = _read_peft(directory)
    if submodule:
        tensors = {
            (_PREFIX + f"{submodule}." + k[len(_PREFIX) :]) if k.startswith(_PREFIX) else k: v
            for k, v in tensors.items()
        }
    _check_shapes(model, tensors, peft_cfg.r, directory / PEFT_WEIGHTS_NAME)
    weights = directory / PEFT_WEIGHTS_NAME
    try:
        add_adapter(model, _to_adapterlab(peft_cfg, submodule, model), name)
    except ValueError as err:
        raise ValueError(f"cannot load {directory} into {type(model).__name__}: {err}") from err
    try:
        slots = _peft_slots(model, name, None)
        missing = sorted(set(slots) - set(tensors))
        unexpected = sorted(set(tensors) - set(slots))
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not fit {type(model).__name__}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        for key, tensor in slots.items():
            if tuple(tensor.shape) != tuple(tensors[key].shape):
                raise ValueError(
                    f"{weights}: {key!r} has shape {tuple(tensors[key].shape)}, the model needs "
                    f"{tuple(tensor.shape)}"
                )
        tensors = check_loaded_tensors(weights, tensors, slots)
        with torch.no_grad():
            for key, tensor in slots.items():
                tensor.copy_(tensors[key])
    except BaseException:
        delete_adapter(model, name)  # roll back: the model is as before the call
        raise
    return model
