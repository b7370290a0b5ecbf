"""FSDP2 for adapter training: the frozen backbone is sharded, the adapter stays whole.

``fully_shard`` (torch FSDP2) is applied to the backbone's blocks and to the root module with the
trainable tensors (adapter and ``modules_to_save``) passed as ``ignored_params``: every frozen
weight is split across the processes and gathered block by block in the forward pass, while the
trainable tensors are ordinary, replicated tensors whose gradients the Trainer all-reduces itself.
So a backbone that does not fit one device can be adapted, and adapter-only checkpoints,
optimiser state, ``load_adapter`` and resuming on another number of processes work exactly as
under DDP: nothing trainable is ever sharded.

Switched on by ``accelerate launch --use_fsdp --fsdp_version 2`` (``ACCELERATE_USE_FSDP``) or
``TrainConfig.fsdp=True``; on CPU accelerate reports such a launch as MULTI_CPU, so the engine
reads the flag itself. Blocks to shard: accelerate's ``--fsdp_transformer_layer_cls_to_wrap``
(``FSDP_TRANSFORMER_CLS_TO_WRAP``), else the model's ``_no_split_modules`` (Hugging Face models
name their decoder/encoder layers there), else the root module alone.
"""

from __future__ import annotations

import os

import torch
from accelerate.utils import parse_flag_from_env
from torch import nn

__all__ = ["fsdp_requested", "shard_frozen", "wrap_class_names"]


def fsdp_requested(flag: bool, accelerator_kind: str) -> bool:
    """True when the run asks for FSDP: ``flag`` (``TrainConfig.fsdp``), accelerate's FSDP
    distributed type, or the ``ACCELERATE_USE_FSDP`` variable ``accelerate launch`` sets."""
    return flag or accelerator_kind == "FSDP" or parse_flag_from_env("ACCELERATE_USE_FSDP")


def wrap_class_names(model: nn.Module, plugin_names: list[str] | None = None) -> set[str]:
    """Class names of the modules that become their own FSDP unit."""
    names = list(plugin_names or [])
    env = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "")
    names += [n.strip() for n in env.split(",") if n.strip()]
    if not names:
        for module in model.modules():
            names += list(getattr(module, "_no_split_modules", None) or [])
    return set(names)


def shard_frozen(
    model: nn.Module, device: torch.device, world_size: int, wrap: set[str]
) -> list[str]:
    """``fully_shard`` ``model`` in place (blocks of class ``wrap``, then the root) with every
    trainable tensor ignored (moved to ``device`` and broadcast from process 0 here; frozen
    weights are moved one block at a time by ``fully_shard``, so the whole model never has to
    fit one device). Returns the names of the sharded blocks."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:  # FSDP moves what it shards, block by block; the rest is ours to move
        p.data = p.data.to(device)
        if world_size > 1:  # replicas start equal, as DDP's initial broadcast makes them
            torch.distributed.broadcast(p.data, src=0)
    mesh = init_device_mesh(device.type, (world_size,))
    ignored = set(trainable)
    blocks = []
    for name, module in model.named_modules():
        if not name or type(module).__name__ not in wrap:
            continue
        if any(not p.requires_grad for p in module.parameters()):
            fully_shard(module, mesh=mesh, ignored_params=ignored)
            blocks.append(name)
    fully_shard(model, mesh=mesh, ignored_params=ignored)
    return blocks
