"""AdapterHub Compacter / Compacter++ and invertible adapters (``seq_bn_inv``,
``double_seq_bn_inv``, GLOW) <-> adapterlab ``compacter`` and ``bottleneck_inv`` adapters.

Called by :func:`load_adapterhub_adapter` / :func:`export_adapterhub` for AdapterHub configs with
``phm_layer=True`` or an ``inv_adapter``. AdapterHub's keys (``adapters`` 1.3):

- PHM projections: ``<block>.adapters.<name>.adapter_down.0.{W_left,W_right,W,b,phm_rule*}`` and
  ``...adapter_up.*``; the shared rule ``<base>.shared_parameters.<name>.phm_rule`` (or
  ``phm_rule_left`` / ``phm_rule_right``);
- couplings: ``<base>.invertible_adapters.<name>.{F,G}.{0,2}.{weight,bias}`` (GLOW: ``s1``,
  ``s2``), ``<base>`` being the base model (``roberta.``, ``model.``, ... or nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import check_loaded_tensors, write_safetensors
from ..model import add_adapter, delete_adapter
from ..tuners.compacter import CompacterAdapter, CompacterConfig
from ..tuners.invertible import InvertibleBottleneckConfig
from ..tuners.state import adapter_state
from . import adapterhub as hub

__all__ = ["export_methods", "handles_methods", "load_methods"]

_PHM_LEAVES = ("W_left", "W_right", "W", "b", "phm_rule", "phm_rule_left", "phm_rule_right")
_PHM_FIELDS = (
    "phm_dim",
    "phm_rank",
    "factorized_phm_W",
    "shared_phm_rule",
    "factorized_phm_rule",
    "phm_bias",
    "phm_c_init",
    "phm_init_range",
    "learn_phm",
)
_W_INITS = {"phm": "glorot-normal"}  # AdapterHub treats every non-empty name as glorot-normal


def handles_methods(cfg: dict[str, Any]) -> bool:
    """Whether an AdapterHub ``BnConfig`` dict is one of the methods this module maps."""
    return bool(cfg.get("phm_layer")) or cfg.get("inv_adapter") not in (None, False)


def _base_prefix(model: nn.Module) -> str:
    prefix = getattr(model, "base_model_prefix", "")
    return f"{prefix}." if prefix and isinstance(getattr(model, prefix, None), nn.Module) else ""


def load_methods(
    model: nn.Module, directory: Path, name: str, raw: dict[str, Any], tensors: dict
) -> nn.Module:
    """Load a Compacter or invertible AdapterHub adapter (see the module docstring)."""
    cfg = raw["config"]
    config_path = directory / hub.CONFIG_NAME
    weights = directory / hub.WEIGHTS_NAME
    phm, inv = bool(cfg.get("phm_layer")), cfg.get("inv_adapter")
    if phm and inv:
        raise ValueError(f"{config_path}: PHM layers with an invertible adapter are not supported")
    if cfg.get("shared_W_phm"):
        raise ValueError(f"{config_path}: AdapterHub option shared_W_phm=True is not supported")
    plain = {**cfg, "phm_layer": False, "inv_adapter": None}
    kind = hub._kind_of(plain, config_path)
    if kind == "par_bn":
        raise ValueError(
            f"{config_path}: parallel {'PHM' if phm else 'invertible'} adapters are not supported"
        )
    act = str(cfg.get("non_linearity", "relu")).lower()
    if act not in hub._ACTIVATIONS:
        raise ValueError(f"{config_path}: non_linearity {act!r} is not supported")
    scaling = cfg.get("scaling", 1.0)
    if not isinstance(scaling, int | float):
        raise ValueError(f"{config_path}: scaling {scaling!r} (learned) is not supported")
    adapter_name = raw.get("name") or ""
    blocks: dict[str, dict[str, torch.Tensor]] = {}
    extra: dict[str, torch.Tensor] = {}  # shared rule / coupling tensors, by their local key
    for key, tensor in tensors.items():
        for marker, kind_of in (("shared_parameters.", "shared"), ("invertible_adapters.", "inv")):
            head, sep, rest = key.partition(marker)
            if sep and (not head or head.endswith(".")):
                owner, _, local = rest.partition(".")
                if adapter_name and owner != adapter_name:
                    raise ValueError(f"{weights}: unexpected tensor {key!r}")
                extra[f"{kind_of}.{local}"] = tensor
                break
        else:
            block, sep, rest = key.partition(".adapters.")
            part = rest.split(".", 1)[1] if "." in rest else ""
            if not sep or (adapter_name and not rest.startswith(adapter_name + ".")):
                raise ValueError(f"{weights}: unexpected tensor {key!r}")
            blocks.setdefault(block, {})[part] = tensor
    if not blocks:
        raise ValueError(f"{weights}: holds no adapter tensors")
    slot = "LayerNorm" if kind == "seq_bn" else "dense"
    targets = {f"{hub._find_block(model, b, weights)}.{slot}": t for b, t in blocks.items()}
    common = dict(
        target_modules=sorted(targets),
        placement="sequential",
        activation=hub._ACTIVATIONS[act],
        scaling=float(scaling),
        dropout=float(cfg.get("dropout", 0.0)),
        residual=True,
        original_ln_before=kind == "seq_bn",
    )
    if phm:
        config, suffix, parts = _compacter_config(cfg, blocks, weights, config_path, common)
    else:
        config, suffix, parts = _inv_config(cfg, blocks, weights, common)
    try:
        add_adapter(model, config, name)
    except ValueError as err:
        raise ValueError(f"cannot load {directory} into {type(model).__name__}: {err}") from err
    try:
        handles = adapter_state(model).handles[name]
        slots = {
            f"{key}.{local}": t
            for key, module in handles.items()
            for local, t in module.state_dict(keep_vars=True).items()
        }
        flat: dict[str, torch.Tensor] = {}
        for target, found in targets.items():
            for part, tensor in found.items():
                if part not in parts:
                    raise ValueError(f"{weights}: unexpected tensor part {part!r} at {target!r}")
                flat[f"{target}.{suffix}.{parts[part]}"] = tensor
        owner = _rule_owner(handles) if phm else "invertible"
        for local, tensor in extra.items():
            kind_of, _, leaf = local.partition(".")
            if (kind_of == "shared") != phm or owner is None:
                raise ValueError(f"{weights}: unexpected tensor {local!r}")
            flat[f"{owner}.shared_rule.{leaf}" if phm else f"invertible.{leaf}"] = tensor
        missing = sorted(set(slots) - set(flat))
        unexpected = sorted(set(flat) - set(slots))
        bad = [k for k in slots if k in flat and flat[k].shape != slots[k].shape]
        if missing or unexpected or bad:
            raise ValueError(
                f"{weights} does not fit the model: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}, shapes {bad[:5]}"
            )
        flat = check_loaded_tensors(weights, flat, slots)
        with torch.no_grad():
            for key, tensor in slots.items():
                tensor.copy_(flat[key])
    except BaseException:
        delete_adapter(model, name)
        raise
    return model


def _compacter_config(
    cfg: dict[str, Any], blocks: dict, weights: Path, config_path: Path, common: dict
) -> tuple[CompacterConfig, str, dict[str, str]]:
    fields = {f: cfg[f] for f in _PHM_FIELDS if f in cfg}
    w_init = str(cfg.get("hypercomplex_nonlinearity", "glorot-uniform"))
    fields["hypercomplex_nonlinearity"] = _W_INITS.get(w_init, w_init)
    sizes = {t["adapter_down.0.b"].shape[0] for t in blocks.values() if "adapter_down.0.b" in t}
    if not sizes:  # no bias: the size from W_right / W
        n = int(cfg.get("phm_dim", 4))
        sizes = {
            t[k].shape[-1] * n
            for t in blocks.values()
            for k in ("adapter_down.0.W_right", "adapter_down.0.W")
            if k in t
        }
    if len(sizes) != 1:
        raise ValueError(f"{weights}: inconsistent or missing adapter_down tensors")
    try:
        config = CompacterConfig(**common, bottleneck_dim=sizes.pop(), **fields)
    except ValueError as err:
        raise ValueError(f"{config_path}: {err}") from err
    parts = {f"adapter_down.0.{leaf}": f"down.{leaf}" for leaf in _PHM_LEAVES}
    parts.update({f"adapter_up.{leaf}": f"up.{leaf}" for leaf in _PHM_LEAVES})
    return config, "compacter", parts


def _inv_config(
    cfg: dict[str, Any], blocks: dict, weights: Path, common: dict
) -> tuple[InvertibleBottleneckConfig, str, dict[str, str]]:
    sizes = {
        t["adapter_down.0.weight"].shape[0] for t in blocks.values() if "adapter_down.0.weight" in t
    }
    if len(sizes) != 1:
        raise ValueError(f"{weights}: inconsistent or missing adapter_down weights")
    config = InvertibleBottleneckConfig(
        **common,
        bottleneck_dim=sizes.pop(),
        inv_adapter=str(cfg["inv_adapter"]),
        inv_reduction_factor=float(cfg.get("inv_adapter_reduction_factor") or 2.0),
    )
    return config, "bottleneck", dict(hub._PARTS)


def _rule_owner(handles: dict[str, nn.Module]) -> str | None:
    for key, module in handles.items():
        if isinstance(module, CompacterAdapter) and "shared_rule" in module._modules:
            return key
    return None


def export_methods(
    model: nn.Module, directory: Path, name: str, config: Any, submodule: str | None
) -> Path:
    """Write a ``compacter`` or ``bottleneck_inv`` adapter as an AdapterHub directory."""
    from ..engine.atomic import atomic_write_json  # lazy: the engine imports accelerate

    phm = isinstance(config, CompacterConfig)
    suffix = "compacter" if phm else "bottleneck"
    kind, slot = (
        ("seq_bn", "LayerNorm") if config.original_ln_before else ("double_seq_bn", "dense")
    )
    if config.placement != "sequential" or not config.use_residual():
        raise ValueError(
            f"adapter {name!r}: only sequential adapters with the residual map to AdapterHub"
        )
    base = model.get_submodule(submodule) if submodule else model
    prefix = _base_prefix(base)
    tensors: dict[str, torch.Tensor] = {}
    kinds: set[str] = set()
    dims: set[tuple[int, int]] = set()
    handles = adapter_state(model).handles[name]
    for key, module in handles.items():
        if key == "invertible":
            for local, t in module.state_dict().items():
                tensors[f"{prefix}invertible_adapters.{name}.{local}"] = t
            continue
        target = key.removesuffix(f".{suffix}")
        if not target.endswith(f".{slot}") or "output" not in target:
            raise ValueError(
                f"adapter {name!r} sits at {target!r}; AdapterHub {kind} adapters sit at "
                f"'<layer>.output.{slot}' / '<layer>.attention.output.{slot}'"
            )
        block = hub._relative(target.removesuffix(f".{slot}"), submodule)
        kinds.add("mh" if block.endswith("attention.output") else "out")
        dims.add((module.down.in_features, module.down.out_features))
        for local, t in module.state_dict().items():
            part, _, leaf = local.partition(".")
            if part == "shared_rule":
                tensors[f"{prefix}shared_parameters.{name}.{leaf}"] = t
            elif phm:
                tensors[
                    f"{block}.adapters.{name}.{'adapter_down.0' if part == 'down' else 'adapter_up'}.{leaf}"
                ] = t
            else:
                ours = {v: k for k, v in hub._PARTS.items()}
                tensors[f"{block}.adapters.{name}.{ours[local]}"] = t
    if len(dims) != 1:
        raise ValueError(f"adapter {name!r} has several sizes {sorted(dims)}; AdapterHub has one")
    hidden, size = dims.pop()
    if hidden % size:
        raise ValueError(f"bottleneck size {size} does not divide hidden size {hidden}")
    is_parallel, ln_before, res_before_ln, ln_after = hub._KINDS[kind]
    bn = {
        **hub._COMMON,
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
    if phm:
        bn.update({f: getattr(config, f) for f in _PHM_FIELDS})
        bn["phm_layer"] = True
        bn["hypercomplex_nonlinearity"] = config.hypercomplex_nonlinearity
    else:
        bn["inv_adapter"] = config.inv_adapter
        bn["inv_adapter_reduction_factor"] = config.inv_reduction_factor
    hf_config = getattr(base, "config", None)
    payload = {
        "config": bn,
        "hidden_size": hidden,
        "model_class": type(base).__name__,
        "model_name": getattr(hf_config, "_name_or_path", "") or "",
        "model_type": getattr(hf_config, "model_type", None),
        "name": name,
        "version": hub.ADAPTERHUB_VERSION,
    }
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"cannot export adapter {name!r}: {directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / hub.WEIGHTS_NAME, tensors, {"format": "pt"})
    atomic_write_json(directory / hub.CONFIG_NAME, payload)
    return directory
