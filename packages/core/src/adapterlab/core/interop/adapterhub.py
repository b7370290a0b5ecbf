"""AdapterHub (``adapters``) bottleneck adapter directories <-> adapterlab bottleneck adapters.

AdapterHub saves ``adapter_config.json`` (the ``BnConfig`` under ``"config"`` plus model facts)
and ``adapter.safetensors`` (``model.save_adapter(dir, name, use_safetensors=True)``) with keys
``<block>.adapters.<name>.adapter_down.0.{weight,bias}`` and ``...adapter_up.{weight,bias}``,
where ``<block>`` is a BERT-style ``...layer.N.output`` (``output_adapter``) or
``...layer.N.attention.output`` (``mh_adapter``). Pickled ``pytorch_adapter.bin`` files are not
read. Three AdapterHub configs map exactly onto ours:

- ``seq_bn`` (Pfeiffer) -> ``original_ln_before=True`` (the adapter at ``<block>.LayerNorm``);
- ``double_seq_bn`` (Houlsby) -> sequential adapters on ``<block>.dense``;
- ``par_bn`` -> parallel adapters on ``<block>.dense`` (``residual=False``).

Anything else (gating, PHM/Compacter, invertible adapters, adapter LayerNorms, per-layer
reduction factors, ...) is refused with a message naming the file and the option.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import check_loaded_tensors, read_safetensors, write_safetensors
from ..model import add_adapter, delete_adapter, list_adapters
from ..targeting import TargetError, match_modules
from ..tuners.bottleneck import BottleneckConfig
from ..tuners.state import adapter_state

__all__ = ["ADAPTERHUB_VERSION", "export_adapterhub", "load_adapterhub_adapter"]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter.safetensors"
ADAPTERHUB_VERSION = "adapters.1.3.0"  # the version whose format this module writes

# AdapterHub's BnConfig fields for the three configs we map (everything else at its default).
_COMMON = {
    "adapter_residual_before_ln": False,
    "cross_adapter": False,
    "factorized_phm_W": True,
    "factorized_phm_rule": False,
    "hypercomplex_nonlinearity": "glorot-uniform",
    "init_weights": "bert",
    "init_weights_seed": None,
    "inv_adapter": None,
    "inv_adapter_reduction_factor": None,
    "learn_phm": True,
    "leave_out": [],
    "ln_after": False,
    "ln_before": False,
    "phm_bias": True,
    "phm_c_init": "normal",
    "phm_dim": 4,
    "phm_init_range": 0.0001,
    "phm_layer": False,
    "phm_rank": 1,
    "shared_W_phm": False,
    "shared_phm_rule": True,
    "stochastic_depth": 0.0,
    "use_gating": False,
}
_KINDS = {
    # name: (is_parallel, original_ln_before, residual_before_ln, original_ln_after)
    "seq_bn": (False, True, True, True),
    "double_seq_bn": (False, False, True, True),
    "par_bn": (True, False, True, True),
}
_MUST_BE = {
    "adapter_residual_before_ln": False,
    "ln_before": False,
    "ln_after": False,
    "use_gating": False,
    "phm_layer": False,
    "inv_adapter": None,
    "cross_adapter": False,
    "stochastic_depth": 0.0,
}
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "swish": "swish", "silu": "silu", "tanh": "tanh"}
_PARTS = {
    "adapter_down.0.weight": "down.weight",
    "adapter_down.0.bias": "down.bias",
    "adapter_up.weight": "up.weight",
    "adapter_up.bias": "up.bias",
}


def _kind_of(cfg: dict[str, Any], path: Path) -> str:
    for key, want in _MUST_BE.items():
        if cfg.get(key, want) not in (want, None if want is False else want):
            raise ValueError(f"{path}: AdapterHub option {key}={cfg[key]!r} is not supported")
    flags = (
        bool(cfg.get("is_parallel", False)),
        bool(cfg.get("original_ln_before", False)),
        cfg.get("residual_before_ln", True),
        bool(cfg.get("original_ln_after", True)),
    )
    for kind, want in _KINDS.items():
        if flags == want:
            return kind
    raise ValueError(
        f"{path}: AdapterHub bottleneck with is_parallel/original_ln_before/residual_before_ln/"
        f"original_ln_after = {flags} is not supported; supported: seq_bn, double_seq_bn, par_bn"
    )


def _read(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise ValueError(f"{config_path}: missing (not an AdapterHub adapter directory)")
    weights = directory / WEIGHTS_NAME
    if not weights.is_file() and (directory / "pytorch_adapter.bin").is_file():
        raise ValueError(
            f"{weights}: missing (only pytorch_adapter.bin found: pickled weights are not "
            "loaded; save with model.save_adapter(..., use_safetensors=True))"
        )
    try:
        raw = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_path}: unreadable JSON ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise ValueError(f"{config_path}: not an AdapterHub adapter config (no 'config' object)")
    architecture = raw["config"].get("architecture")
    if architecture not in (None, "bottleneck"):
        raise ValueError(
            f"{config_path}: AdapterHub architecture {architecture!r} is not supported; only "
            "bottleneck adapters (seq_bn, double_seq_bn, par_bn) load into adapterlab"
        )
    return raw, read_safetensors(weights)


def _find_block(model: nn.Module, block: str, path: Path) -> str:
    """Our module name for AdapterHub's ``block`` path (leading parts may differ: a wrapper's
    attribute name versus e.g. ``roberta.``)."""
    parts = block.split(".")
    for start in range(len(parts)):
        entry = ".".join(parts[start:])
        try:
            found = match_modules(model, [entry])
        except TargetError:
            continue
        if len(found) == 1:
            return found[0][0]
    raise ValueError(f"{path}: the model has no module matching {block!r}")


def load_adapterhub_adapter(
    model: nn.Module, directory: str | Path, name: str = "default"
) -> nn.Module:
    """Load an AdapterHub bottleneck adapter (``seq_bn``, ``double_seq_bn``, ``par_bn``) into
    ``model`` as adapterlab adapter ``name`` and return it; outputs equal AdapterHub's.

    Raises ``ValueError`` naming the file for other AdapterHub methods or options, pickled-only
    weights, unreadable files or tensors that do not fit; a failed load leaves the model as it was.
    """
    directory = Path(directory)
    raw, tensors = _read(directory)
    cfg = raw["config"]
    config_path = directory / CONFIG_NAME
    from . import adapterhub_methods  # Compacter and invertible adapters

    if adapterhub_methods.handles_methods(cfg):
        return adapterhub_methods.load_methods(model, directory, name, raw, tensors)
    kind = _kind_of(cfg, config_path)
    act = str(cfg.get("non_linearity", "relu")).lower()
    if act not in _ACTIVATIONS:
        raise ValueError(f"{config_path}: non_linearity {act!r} is not supported")
    scaling = cfg.get("scaling", 1.0)
    if not isinstance(scaling, int | float):
        raise ValueError(f"{config_path}: scaling {scaling!r} (learned) is not supported")
    weights = directory / WEIGHTS_NAME
    adapter_name = raw.get("name")
    blocks: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        block, sep, rest = key.partition(".adapters.")
        part = rest.split(".", 1)[1] if "." in rest else ""
        if not sep or part not in _PARTS or (adapter_name and not rest.startswith(adapter_name)):
            raise ValueError(f"{weights}: unexpected tensor {key!r}")
        blocks.setdefault(block, {})[_PARTS[part]] = tensor
    if not blocks:
        raise ValueError(f"{weights}: holds no adapter tensors")
    slot = "LayerNorm" if kind == "seq_bn" else "dense"
    targets = {f"{_find_block(model, b, weights)}.{slot}": t for b, t in blocks.items()}
    sizes = {t["down.weight"].shape[0] for t in blocks.values() if "down.weight" in t}
    if len(sizes) != 1:
        raise ValueError(f"{weights}: inconsistent or missing adapter_down weights")
    config = BottleneckConfig(
        target_modules=sorted(targets),
        placement="parallel" if kind == "par_bn" else "sequential",
        bottleneck_dim=sizes.pop(),
        activation=_ACTIVATIONS[act],
        scaling=float(scaling),
        dropout=float(cfg.get("dropout", 0.0)),
        residual=kind != "par_bn",
        original_ln_before=kind == "seq_bn",
    )
    try:
        add_adapter(model, config, name)
    except ValueError as err:
        raise ValueError(f"cannot load {directory} into {type(model).__name__}: {err}") from err
    try:
        handles = adapter_state(model).handles[name]
        slots = {
            f"{target}.{local}": tensor
            for target in targets
            for local, tensor in handles[f"{target}.bottleneck"].state_dict(keep_vars=True).items()
        }
        flat = {f"{target}.{k}": v for target, parts in targets.items() for k, v in parts.items()}
        missing = sorted(set(slots) - set(flat))
        bad = [k for k in slots if k in flat and flat[k].shape != slots[k].shape]
        if missing or bad:
            raise ValueError(
                f"{weights} does not fit the model: missing {missing[:5]}, shapes {bad[:5]}"
            )
        flat = check_loaded_tensors(weights, flat, slots)
        with torch.no_grad():
            for key, tensor in slots.items():
                tensor.copy_(flat[key])
    except BaseException:
        delete_adapter(model, name)
        raise
    return model


def _relative(path: str, submodule: str | None) -> str:
    if not submodule:
        return path
    if not path.startswith(submodule + "."):
        raise ValueError(f"adapter module {path!r} lies outside submodule {submodule!r}")
    return path[len(submodule) + 1 :]


def export_adapterhub(
    model: nn.Module,
    directory: str | Path,
    name: str = "default",
    *,
    submodule: str | None = None,
) -> Path:
    """Write bottleneck adapter ``name`` as an AdapterHub adapter directory.

    Load it with ``adapters.init(base); base.load_adapter(directory)``, where ``base`` is the
    bare HF model (``model.get_submodule(submodule)`` when ``submodule`` is given). Supported:
    ``pfeiffer`` (-> ``seq_bn``), ``houlsby`` (-> ``double_seq_bn``) and ``parallel`` without
    residual (-> ``par_bn``) on BERT-style blocks. Each file is replaced atomically.
    """
    from ..engine.atomic import atomic_write_json  # lazy: the engine imports accelerate

    directory = Path(directory)
    config = list_adapters(model).get(name)
    if getattr(config, "method", None) in ("compacter", "bottleneck_inv"):
        from .adapterhub_methods import export_methods

        return export_methods(model, directory, name, config, submodule)
    if not isinstance(config, BottleneckConfig) or config.method != "bottleneck":
        raise ValueError(f"only bottleneck adapters map to AdapterHub; {name!r} is {config!r}")
    if config.placement == "parallel":
        kind, slot = "par_bn", "dense"
        if config.use_residual():
            raise ValueError("a parallel adapter with residual=True has no AdapterHub form")
    else:
        kind, slot = (
            ("seq_bn", "LayerNorm") if config.original_ln_before else ("double_seq_bn", "dense")
        )
        if not config.use_residual():
            raise ValueError("a sequential adapter with residual=False has no AdapterHub form")
    tensors: dict[str, torch.Tensor] = {}
    kinds: set[str] = set()
    dims: set[tuple[int, int]] = set()
    for key, module in adapter_state(model).handles[name].items():
        target = key.removesuffix(".bottleneck")
        if not target.endswith(f".{slot}") or "output" not in target:
            raise ValueError(
                f"adapter {name!r} sits at {target!r}; AdapterHub {kind} adapters sit at "
                f"'<layer>.output.{slot}' / '<layer>.attention.output.{slot}'"
            )
        block = _relative(target.removesuffix(f".{slot}"), submodule)
        kinds.add("mh" if block.endswith("attention.output") else "out")
        dims.add((module.down.in_features, module.down.out_features))
        for part, ours in _PARTS.items():
            tensors[f"{block}.adapters.{name}.{part}"] = module.get_parameter(ours)
    if len(dims) != 1:
        raise ValueError(f"adapter {name!r} has several sizes {sorted(dims)}; AdapterHub has one")
    hidden, size = dims.pop()
    if hidden % size:
        raise ValueError(f"bottleneck size {size} does not divide hidden size {hidden}")
    is_parallel, ln_before, res_before_ln, ln_after = _KINDS[kind]
    bn = {
        **_COMMON,
        "dropout": config.dropout,
        "is_parallel": is_parallel,
        "mh_adapter": "mh" in kinds,
        "non_linearity": config.activation,
        "original_ln_after": ln_after,
        "original_ln_before": ln_before,
        "output_adapter": "out" in kinds,
        "reduction_factor": hidden // size,
        "residual_before_ln": res_before_ln,
        "scaling": float(config.scaling),
    }
    if kind == "par_bn":
        bn["init_weights"] = "mam_adapter"
    base = model.get_submodule(submodule) if submodule else model
    hf_config = getattr(base, "config", None)
    payload = {
        "config": bn,
        "hidden_size": hidden,
        "model_class": type(base).__name__,
        "model_name": getattr(hf_config, "_name_or_path", "") or "",
        "model_type": getattr(hf_config, "model_type", None),
        "name": name,
        "version": ADAPTERHUB_VERSION,
    }
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"cannot export adapter {name!r}: {directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / WEIGHTS_NAME, tensors, {"format": "pt"})
    atomic_write_json(directory / CONFIG_NAME, payload)
    return directory
