"""Nested training state (optimiser, scheduler, RNG) as JSON + safetensors: no pickle anywhere.

Tensors and NumPy arrays go into ``<stem>.safetensors``; the structure (dicts, lists, tuples,
numbers, strings) into ``<stem>.json`` with placeholders that point at the tensors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import explain_disk_full

__all__ = ["load_state", "save_state"]

_T, _A, _TUP, _MAP = "__tensor__", "__ndarray__", "__tuple__", "__items__"


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {_T: key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        wide = np.int64 if obj.dtype.kind in "uib" else np.float64
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj.astype(wide)))
        return {_A: key, "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUP: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {
            _MAP: [
                [_encode(k, tensors, where), _encode(v, tensors, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ]
        }
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {where} in a training state file")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if _T in obj:
            return tensors[obj[_T]]
        if _A in obj:
            return tensors[obj[_A]].numpy().astype(np.dtype(obj["dtype"]))
        if _TUP in obj:
            return tuple(_decode(v, tensors) for v in obj[_TUP])
        if _MAP in obj:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in obj[_MAP]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


def save_state(obj: Any, stem: str | Path) -> None:
    """Write ``obj`` to ``<stem>.json`` and ``<stem>.safetensors`` (each via temp file + rename)."""
    stem = Path(stem)
    tensors: dict[str, torch.Tensor] = {}
    body = _encode(obj, tensors, stem.name)
    pid = os.getpid()
    tmp_t = stem.with_name(f".{stem.name}.safetensors.tmp{pid}")
    tmp_j = stem.with_name(f".{stem.name}.json.tmp{pid}")
    try:
        with explain_disk_full(stem.with_name(stem.name + ".safetensors")):
            save_file(tensors, str(tmp_t))
        with explain_disk_full(stem.with_name(stem.name + ".json")):
            tmp_j.write_text(json.dumps(body))
        os.replace(tmp_t, stem.with_name(stem.name + ".safetensors"))
        os.replace(tmp_j, stem.with_name(stem.name + ".json"))
    except BaseException:
        tmp_t.unlink(missing_ok=True)
        tmp_j.unlink(missing_ok=True)
        raise


def load_state(stem: str | Path) -> Any:
    """Read what :func:`save_state` wrote; ``ValueError`` naming the file when it is unreadable."""
    stem = Path(stem)
    jpath = stem.with_name(stem.name + ".json")
    tpath = stem.with_name(stem.name + ".safetensors")
    try:
        body = json.loads(jpath.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read training state {jpath}: {err}") from err
    try:
        tensors = load_file(str(tpath))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot read training state {tpath}: {err}") from err
    try:
        return _decode(body, tensors)
    except KeyError as err:
        raise ValueError(f"{jpath} refers to tensor {err} missing from {tpath}") from err
