"""``modules_to_save``: one trainable copy of a module per adapter (as PEFT's
``ModulesToSaveWrapper``).

The wrapper keeps the original module as ``base_layer`` (frozen, used when no adapter with a copy
runs) and each adapter's copy in ``modules_to_save[name]``. ``set_active`` switches the copy,
``save_adapter`` saves it with its adapter and ``merge_adapter`` makes it the module.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from .base import AdapterControl

__all__ = ["ModulesToSaveWrapper"]


class ModulesToSaveWrapper(nn.Module, AdapterControl):
    """Runs the copy of the one running adapter that has one, else the original module."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.modules_to_save = nn.ModuleDict()
        self._init_control()

    def adapter_names(self) -> list[str]:
        return list(self.modules_to_save.keys())

    def add_copy(self, name: str) -> nn.Module:
        """A fresh copy of the original module for adapter ``name`` (trainable)."""
        twin = copy.deepcopy(self.base_layer)
        twin.requires_grad_(True)
        self.modules_to_save[name] = twin
        return twin

    def set_active(self, names: list[str], composition: str = "stack") -> None:
        mine = [n for n in names if n in self.modules_to_save]
        if len(mine) > 1:
            raise ValueError(
                f"adapters {mine} each have their own copy of a modules_to_save module; "
                "only one of them can be active at a time"
            )
        super().set_active(names, composition)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base_layer"), name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        running = self.running()
        module = self.modules_to_save[running[0]] if running else self.base_layer
        return module(*args, **kwargs)
