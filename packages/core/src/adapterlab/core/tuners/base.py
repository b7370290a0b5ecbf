"""Building blocks shared by the hand-written tuners.

- :class:`AdapterControl`: the switches every adapter-carrying module obeys (active names,
  composition, disabled). ``set_active``/``disable_adapters`` walk the model and flip them.
- :class:`OutputAdapterWrapper`: wraps a sublayer and rewrites its output with one or more adapters
  (sequential: the adapter reads the sublayer output; parallel: it reads the sublayer input).
- helpers to replace a submodule by name and to split a sublayer's tuple output.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "AdapterControl",
    "OutputAdapterWrapper",
    "SublayerAdapter",
    "get_submodule_parent",
    "replace_submodule",
]


class AdapterControl:
    """Mixin: the runtime switches of a module that carries adapters (keyed by adapter name)."""

    def _init_control(self) -> None:
        self.active_adapters: list[str] = []
        self.composition: str = "stack"
        self.adapters_disabled: bool = False

    def adapter_names(self) -> list[str]:
        """Adapters this module carries."""
        raise NotImplementedError

    def set_active(self, names: list[str], composition: str = "stack") -> None:
        """Run exactly ``names`` (those this module carries), composed as given."""
        self.active_adapters = [n for n in names if n in self.adapter_names()]
        self.composition = composition

    def set_disabled(self, disabled: bool) -> None:
        """Bypass every adapter (the base computation runs unchanged)."""
        self.adapters_disabled = disabled

    def running(self) -> list[str]:
        """Adapters to apply in this forward pass."""
        return [] if self.adapters_disabled else self.active_adapters


def get_submodule_parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The parent module of ``name`` and the child's attribute name."""
    if "." in name:
        parent_name, child = name.rsplit(".", 1)
        return model.get_submodule(parent_name), child
    return model, name


def replace_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule ``name`` was."""
    parent, child = get_submodule_parent(model, name)
    setattr(parent, child, new)


class SublayerAdapter(nn.Module):
    """Base for adapters placed on a sublayer output: ``forward(x, y) -> new y``.

    ``x`` is the sublayer input (what a parallel adapter reads), ``y`` its output.
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def stack(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a stack: ``(x, y) -> (x', y')`` for the next adapter. By default the next
        adapter reads the same sublayer input and this adapter's output; an adapter placed at a
        LayerNorm hands on the updated LayerNorm input as well (AdapterHub's ``Stack``)."""
        return x, self(x, y)


class OutputAdapterWrapper(nn.Module, AdapterControl):
    """Wraps ``base_layer`` and applies the active :class:`SublayerAdapter` s to its output.

    A tuple output (e.g. ``nn.MultiheadAttention`` or HF attention returning ``(out, weights)``)
    is adapted on its first element. The sublayer input is the first positional argument, or the
    input captured from a *source* module by a forward pre-hook when the sublayer is split over
    several modules (BERT's FFN: the adapter reads ``intermediate``'s input). Several active
    adapters compose as a stack (each sees the previous output, through
    :meth:`SublayerAdapter.stack`) or a parallel sum of their deltas.
    """

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self._init_control()
        self._source_input: torch.Tensor | None = None
        self._uses_source = False

    def adapter_names(self) -> list[str]:
        return list(self.adapters.keys())

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base_layer"), name)

    def capture_source(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Forward pre-hook for the source module: remember its input for the next forward."""
        self._source_input = args[0] if args else next(iter(kwargs.values()))

    def _input(self, args: tuple, kwargs: dict) -> torch.Tensor:
        if self._uses_source:
            if self._source_input is None:
                raise RuntimeError("parallel adapter: the source module did not run first")
            x, self._source_input = self._source_input, None
            return x
        if args:
            return args[0]
        for value in kwargs.values():
            if isinstance(value, torch.Tensor):
                return value
        raise RuntimeError("adapter wrapper: cannot find the sublayer input tensor")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.base_layer(*args, **kwargs)
        names = self.running()
        if not names:
            self._source_input = None
            return out
        x = self._input(args, kwargs)
        y = out[0] if isinstance(out, tuple) else out
        if self.composition == "parallel" and len(names) > 1:
            y = y + sum(self.adapters[n](x, y) - y for n in names)
        else:
            for n in names:
                x, y = self.adapters[n].stack(x, y)
        return (y, *out[1:]) if isinstance(out, tuple) else y
