"""Sparse fine-tunings (SFTs) as sparse parameter differences: save, load, apply and revert.

Ansell et al. 2022, "Composable Sparse Fine-Tuning for Cross-Lingual Transfer" (ACL). An SFT is
``phi = theta_ft - theta_0`` restricted to a few entries; SFTs compose by addition
(``theta_0 + phi_lang + phi_task``) and are removed by subtraction.

On disk (a directory, written atomically):

- ``sft.safetensors``: for every sparsely tuned parameter ``P``, ``diff.P.indices`` (int64
  indices into the flattened tensor, sorted) and ``diff.P.values``; for every densely tuned
  parameter (a new head), ``dense.P`` holds its full value. The safetensors metadata holds
  ``{"format": "adapterlab-sft", "shapes": json}``.
- ``sft_config.json``: the shapes, counts and training settings (informational).

Deliberate deviations from the reference (``cambridgeltl/composable-sft``):

- safetensors (indices + values) instead of a pickled COO tensor in ``pytorch_diff.bin``;
- :func:`revert_sft` is *exact*. Plain float subtraction is not (``(w + d) - d != w`` when
  ``|d| >> |w|``), so the model records the pre-SFT values of every entry an SFT touches and a
  revert recomputes those entries as ``original + remaining diffs`` in application order. The
  result is bit-identical to never having applied the reverted SFT. If the entries were changed
  since (e.g. by training), it falls back to plain subtraction with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

__all__ = [
    "SparseDiff",
    "save_sft",
    "load_sft",
    "apply_sft",
    "revert_sft",
    "applied_sfts",
]

SFT_WEIGHTS = "sft.safetensors"
SFT_CONFIG = "sft_config.json"
_FORMAT = "adapterlab-sft"


@dataclass
class SparseDiff:
    """A sparse fine-tuning: sparse differences plus parameters stored in full.

    Attributes:
        indices: parameter name -> sorted int64 indices into the flattened parameter.
        values: parameter name -> the differences at those indices (same dtype as the parameter).
        shapes: parameter name -> the parameter's shape (sparse and dense entries).
        dense: parameter name -> full value of a densely tuned parameter (e.g. a new head); applying
            copies it in, reverting restores the previous value.
        info: free-form settings saved in ``sft_config.json`` (density, iterations, ...).
    """

    indices: dict[str, torch.Tensor] = field(default_factory=dict)
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dense: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def nnz(self) -> int:
        """Number of sparsely stored entries."""
        return sum(int(v.numel()) for v in self.values.values())

    def to_dense(self, name: str) -> torch.Tensor:
        """The full difference tensor of parameter ``name`` (zeros outside the support)."""
        out = torch.zeros(int(torch.Size(self.shapes[name]).numel()), dtype=self.values[name].dtype)
        out[self.indices[name]] = self.values[name]
        return out.view(self.shapes[name])

    @classmethod
    def from_dense(
        cls, diffs: dict[str, torch.Tensor], dense: dict[str, torch.Tensor] | None = None
    ) -> SparseDiff:
        """Build from dense difference tensors, keeping their nonzero entries."""
        out = cls()
        for name, d in diffs.items():
            flat = d.detach().reshape(-1)
            idx = torch.nonzero(flat, as_tuple=False).view(-1)
            out.indices[name] = idx.cpu()
            out.values[name] = flat[idx].cpu().clone()
            out.shapes[name] = tuple(d.shape)
        for name, t in (dense or {}).items():
            out.dense[name] = t.detach().cpu().clone()
            out.shapes[name] = tuple(t.shape)
        return out

    def validate(self, source: str = "SparseDiff") -> None:
        """Raise ``ValueError`` if indices/values are inconsistent."""
        for name in self.indices:
            idx, val = self.indices[name], self.values.get(name)
            if val is None:
                raise ValueError(f"{source}: parameter {name!r} has indices but no values")
            if idx.dtype != torch.int64 or idx.dim() != 1 or val.shape != idx.shape:
                raise ValueError(
                    f"{source}: parameter {name!r} needs 1-D int64 indices and values of the same "
                    f"length (got {tuple(idx.shape)} {idx.dtype} and {tuple(val.shape)})"
                )
            size = int(torch.Size(self.shapes[name]).numel())
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= size):
                raise ValueError(f"{source}: indices of {name!r} fall outside its {size} entries")
            if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
                raise ValueError(f"{source}: indices of {name!r} are not sorted and unique")
        missing = sorted(set(self.values) - set(self.indices))
        if missing:
            raise ValueError(f"{source}: values without indices for {missing}")


def save_sft(diff: SparseDiff, directory: str | Path) -> None:
    """Write ``diff`` to ``directory`` (``sft.safetensors`` + ``sft_config.json``) atomically."""
    directory = Path(directory)
    diff.validate()
    tensors: dict[str, torch.Tensor] = {}
    for name in diff.indices:
        tensors[f"diff.{name}.indices"] = diff.indices[name].contiguous()
        tensors[f"diff.{name}.values"] = diff.values[name].contiguous()
    for name, t in diff.dense.items():
        tensors[f"dense.{name}"] = t.contiguous()
    shapes = {k: list(v) for k, v in diff.shapes.items()}
    meta = {"format": _FORMAT, "shapes": json.dumps(shapes, sort_keys=True)}
    config = {
        "format": _FORMAT,
        "nnz": diff.nnz(),
        "sparse_params": sorted(diff.indices),
        "dense_params": sorted(diff.dense),
        "shapes": shapes,
        "info": diff.info,
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp", dir=directory.parent))
    try:
        save_file(tensors, str(tmp / SFT_WEIGHTS), metadata=meta)
        (tmp / SFT_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old{os.getpid()}")
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_sft(directory: str | Path) -> SparseDiff:
    """Read an SFT written by :func:`save_sft` (no pickle; safetensors only)."""
    path = Path(directory) / SFT_WEIGHTS
    if not path.is_file():
        raise ValueError(f"{path}: no such SFT file (expected a directory written by save_sft)")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (OSError, ValueError, SafetensorError) as err:
        raise ValueError(f"{path}: corrupt or unreadable safetensors file ({err})") from err
    if meta.get("format") != _FORMAT:
        raise ValueError(
            f"{path}: not an adapterlab SFT file (metadata format={meta.get('format')})"
        )
    shapes = {k: tuple(v) for k, v in json.loads(meta["shapes"]).items()}
    diff = SparseDiff(shapes=shapes)
    for key, t in tensors.items():
        if key.startswith("diff.") and key.endswith(".indices"):
            diff.indices[key[5:-8]] = t
        elif key.startswith("diff.") and key.endswith(".values"):
            diff.values[key[5:-7]] = t
        elif key.startswith("dense."):
            diff.dense[key[6:]] = t
        else:
            raise ValueError(f"{path}: unexpected tensor {key!r}")
    unknown = sorted((set(diff.indices) | set(diff.dense)) - set(shapes))
    if unknown:
        raise ValueError(f"{path}: tensors without a recorded shape: {unknown}")
    config_path = Path(directory) / SFT_CONFIG
    if config_path.is_file():
        try:
            diff.info = json.loads(config_path.read_text()).get("info", {})
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_path}: invalid JSON ({err})") from err
    diff.validate(str(path))
    return diff


@dataclass
class _Record:
    """Bookkeeping for one parameter touched by applied SFTs."""

    indices: torch.Tensor  # sorted union of touched indices
    original: torch.Tensor  # values before any SFT, at ``indices``
    expected: torch.Tensor  # values right after the last apply/revert, at ``indices``
    dense_original: torch.Tensor | None = None


class _SftState:
    """Per-model record of the applied SFTs (kept in ``model.__dict__``, not a module)."""

    def __init__(self) -> None:
        self.applied: dict[str, SparseDiff] = {}
        self.records: dict[str, _Record] = {}


def _state(model: nn.Module) -> _SftState:
    state = model.__dict__.get("_adapterlab_sft")
    if state is None:
        state = _SftState()
        model.__dict__["_adapterlab_sft"] = state
    return state


def applied_sfts(model: nn.Module) -> list[str]:
    """Names of the SFTs currently applied to ``model``, in application order."""
    return list(_state(model).applied)


def _param(model: nn.Module, name: str, shape: tuple[int, ...], what: str) -> nn.Parameter:
    try:
        p = model.get_parameter(name)
    except AttributeError:
        raise ValueError(f"{what}: the model has no parameter {name!r}") from None
    if tuple(p.shape) != tuple(shape):
        raise ValueError(
            f"{what}: parameter {name!r} has shape {tuple(p.shape)}, the SFT expects {shape}"
        )
    return p


@torch.no_grad()
def apply_sft(model: nn.Module, diff: SparseDiff, name: str = "default") -> nn.Module:
    """Add ``diff`` to ``model``'s parameters in place (dense entries are copied in).

    Several SFTs compose by addition in application order. Returns ``model``.
    """
    state = _state(model)
    if name in state.applied:
        raise ValueError(f"an SFT named {name!r} is already applied; revert it first")
    diff.validate(f"SFT {name!r}")
    params = {
        p: _param(model, p, diff.shapes[p], f"apply_sft({name!r})")
        for p in [*diff.indices, *diff.dense]
    }
    for pname in diff.indices:
        p = params[pname]
        flat = p.data.view(-1)
        idx = diff.indices[pname].to(p.device)
        rec = state.records.get(pname)
        if rec is None:
            rec = _Record(idx.clone(), flat[idx].clone(), flat[idx].clone())
            state.records[pname] = rec
        else:
            union = torch.unique(torch.cat([rec.indices, idx]))  # sorted
            new = union[~torch.isin(union, rec.indices)]
            merged_orig = torch.empty(union.numel(), dtype=flat.dtype, device=flat.device)
            pos_old = torch.searchsorted(union, rec.indices)
            pos_new = torch.searchsorted(union, new)
            merged_orig[pos_old] = rec.original
            merged_orig[pos_new] = flat[new]
            rec.indices, rec.original = union, merged_orig
        flat.index_add_(0, idx, diff.values[pname].to(device=p.device, dtype=p.dtype))
        rec.expected = flat[rec.indices].clone()
    for pname, value in diff.dense.items():
        p = params[pname]
        rec = state.records.get(pname)
        if rec is None:
            empty = torch.empty(0, dtype=torch.int64)
            rec = _Record(empty, empty.to(p.dtype), empty.to(p.dtype))
            state.records[pname] = rec
        if rec.dense_original is None:
            rec.dense_original = p.data.detach().clone()
        p.data.copy_(value.to(device=p.device, dtype=p.dtype))
    state.applied[name] = diff
    return model


@torch.no_grad()
def revert_sft(model: nn.Module, name: str = "default") -> nn.Module:
    """Remove the SFT ``name`` (the inverse of :func:`apply_sft`, exact; see module doc)."""
    state = _state(model)
    if name not in state.applied:
        raise ValueError(f"no SFT named {name!r} is applied; applied: {list(state.applied)}")
    diff = state.applied.pop(name)
    remaining = list(state.applied.values())
    for pname in diff.indices:
        p = model.get_parameter(pname)
        flat = p.data.view(-1)
        rec = state.records[pname]
        current = flat[rec.indices]
        if torch.equal(current, rec.expected):
            flat[rec.indices] = rec.original
            for other in remaining:
                if pname in other.indices:
                    flat.index_add_(
                        0,
                        other.indices[pname].to(p.device),
                        other.values[pname].to(device=p.device, dtype=p.dtype),
                    )
        else:
            warnings.warn(
                f"revert_sft({name!r}): {pname!r} changed since the SFT was applied; "
                "reverting by plain subtraction (not bit-exact)",
                stacklevel=2,
            )
            flat.index_add_(
                0,
                diff.indices[pname].to(p.device),
                -diff.values[pname].to(device=p.device, dtype=p.dtype),
            )
            rec.original = flat[rec.indices].clone()
            for other in remaining:
                if pname in other.indices:
                    pos = torch.searchsorted(rec.indices, other.indices[pname].to(p.device))
                    rec.original[pos] -= other.values[pname].to(device=p.device, dtype=p.dtype)
        rec.expected = flat[rec.indices].clone()
    for pname in diff.dense:
        p = model.get_parameter(pname)
        rec = state.records[pname]
        later = [o.dense[pname] for o in remaining if pname in o.dense]
        source = later[-1] if later else rec.dense_original
        p.data.copy_(source.to(device=p.device, dtype=p.dtype))
        if not later:
            rec.dense_original = None
    for pname in [*diff.indices, *diff.dense]:
        in_use = any(pname in o.indices or pname in o.dense for o in remaining)
        if not in_use:
            state.records.pop(pname, None)
    return model
