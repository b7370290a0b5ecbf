"""The methods table: the paper's method name -> core adapter config and what else trains.

Pre-training (the depth encoder):

* ``full``: CLIP2Point trains the whole depth encoder (``modules_to_save`` of a core
  ``LinearProbeConfig``), plus the loss weight ``w``;
* any core preset name (``lora``, ``dora``, ``pfeiffer``, ``houlsby``, ``bitfit``, ...): that
  adapter on the depth encoder (the only open_clip backbone in the model), plus ``w`` (ours).

Few-shot heads (side networks on frozen view features, trained whole):

* ``dpa``: CLIP2Point's Dual-Path Adapter (both view adapters train);
* ``pointclip``: PointCLIP's inter-view adapter.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FEWSHOT_HEADS", "pretrain_adapter_config"]

#: few-shot head -> the modules the engine trains and saves
FEWSHOT_HEADS: dict[str, list[str]] = {
    "dpa": ["pre_adapter", "ori_adapter"],
    "pointclip": ["adapter"],
}


def pretrain_adapter_config(adapter: str, overrides: dict[str, Any] | None = None) -> Any:
    """Core adapter config that makes exactly the depth encoder's chosen parameters trainable."""
    from adapterlab.core import LinearProbeConfig, get_config

    if adapter == "full":
        return LinearProbeConfig(modules_to_save=["depth_encoder", "criterion"])
    return get_config(adapter, modules_to_save=["criterion"], **(overrides or {}))
