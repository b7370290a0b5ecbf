"""``modules_to_save``: each adapter has its own values of a module (as PEFT's
``ModulesToSaveWrapper``), while the model keeps the module itself in place.

The live module in the model holds the values (and trainability) of the one active adapter that has a copy (its
*owner*), or the original values when none does. Switching the owner (``set_active``,
``disable_adapters``) copies the live values back into the old owner's copy and the new owner's
values into the live module, so parameter objects, names and attribute access stay those of the
plain model. ``save_adapter`` reads an adapter's values wherever they are, ``merge_adapter`` makes
them the module's values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["SavedModule"]


def _copy_values(src: nn.Module, dst: nn.Module) -> None:
    """Values and trainability flags of ``src``'s tensors into ``dst``'s."""
    with torch.no_grad():
        dst_state = dst.state_dict(keep_vars=True)
        for key, value in src.state_dict(keep_vars=True).items():
            dst_state[key].copy_(value)
            if isinstance(value, nn.Parameter):
                dst_state[key].requires_grad_(value.requires_grad)


def _snapshot(module: nn.Module) -> nn.Module:
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin


@dataclass
class SavedModule:
    """One ``modules_to_save`` module: the live module, its original values and each adapter's
    values while that adapter is not the owner."""

    live: nn.Module
    original: nn.Module
    copies: dict[str, nn.Module | None] = field(default_factory=dict)  # None: the owner's (live)
    owner: str | None = None

    @classmethod
    def of(cls, live: nn.Module) -> SavedModule:
        return cls(live=live, original=_snapshot(live))

    def adapters(self) -> list[str]:
        """Adapters that have their own values of this module."""
        return list(self.copies)

    def add(self, name: str) -> None:
        """Adapter ``name`` gets its own (trainable) values, starting from the original ones."""
        self.copies[name] = _snapshot(self.original).requires_grad_(True)

    def module_for(self, name: str) -> nn.Module:
        """The module holding adapter ``name``'s values right now."""
        module = self.live if self.owner == name else self.copies[name]
        assert module is not None
        return module

    def show(self, name: str | None) -> None:
        """Put adapter ``name``'s values (the original ones for None) into the live module."""
        if self.owner == name:
            return
        if self.owner is not None:
            self.copies[self.owner] = copy.deepcopy(self.live)  # keep what the owner learned
        source = self.original if name is None else self.copies[name]
        assert source is not None
        _copy_values(source, self.live)
        if name is not None:
            self.copies[name] = None  # its values are the live ones now: no second copy
        self.owner = name

    def remove(self, name: str) -> None:
        """Forget adapter ``name``'s values (the live module falls back to the original)."""
        if self.owner == name:
            self.show(None)
        del self.copies[name]

    def merge(self, name: str) -> None:
        """Adapter ``name``'s values become the module's own (the new original)."""
        self.show(name)
        self.original = _snapshot(self.live)
        del self.copies[name]
        self.owner = None
