"""Find the modules an adapter goes into: exact name, ``.suffix`` or regular expression."""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

__all__ = ["match_modules", "TargetError", "clean_name", "resolve_module"]


class TargetError(ValueError):
    """Raised when target module names do not match the model."""


def _entry_matches(name: str, entry: str) -> bool:
    return name == entry or name.endswith("." + entry)


def clean_name(name: str) -> str:
    """A module name as the user knows it: wrapper ``base_layer`` segments removed."""
    return name.replace(".base_layer", "")


def _visible_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(clean name, module)`` for user-visible modules: adapter internals are skipped and a
    wrapper stands for the module it wraps (first occurrence of a clean name wins)."""
    hidden: set[int] = set()
    for module in model.modules():
        for attr in ("adapters", "lora_A", "lora_B", "lora_magnitude_vector", "lora_dropout"):
            inner = module._modules.get(attr)
            if isinstance(inner, nn.ModuleDict):
                hidden.update(id(m) for m in inner.modules())
        if type(module).__name__ == "ParametrizationList":
            hidden.update(id(m) for m in module.modules())
    seen: set[str] = set()
    out = []
    for name, module in model.named_modules():
        if not name or id(module) in hidden or ".parametrizations." in name + ".":
            continue
        clean = clean_name(name)
        if clean in seen:
            continue
        seen.add(clean)
        out.append((clean, module))
    return out


def _candidates(model: nn.Module, limit: int = 40) -> str:
    names = [n for n, m in _visible_modules(model) if len(list(m.children())) == 0]
    shown = names[:limit]
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more


def match_modules(
    model: nn.Module,
    targets: str | Iterable[str],
    *,
    exclude: Iterable[str] = (),
) -> list[tuple[str, nn.Module]]:
    """Return ``(name, module)`` for every module named by ``targets``, in model order.

    A string is a regex matched with ``re.fullmatch`` against full module names; a list entry
    matches a full name exactly or as a dotted suffix. Raises :class:`TargetError` naming the
    candidates when nothing matches, and naming the unmatched entries when a list only partly
    matches (a silent partial match is a common PEFT complaint, peft#1959).
    """
    named = _visible_modules(model)
    skip = set(exclude)
    named = [(n, m) for n, m in named if not any(_entry_matches(n, e) for e in skip)]
    if isinstance(targets, str):
        try:
            pattern = re.compile(targets)
        except re.error as err:
            raise TargetError(f"target_modules regex {targets!r} is invalid: {err}") from err
        found = [(n, m) for n, m in named if pattern.fullmatch(n)]
        if not found:
            raise TargetError(
                f"target_modules regex {targets!r} matched no module. Candidates: "
                f"{_candidates(model)}"
            )
        return found
    entries = list(targets)
    if not entries:
        raise TargetError("target_modules is empty")
    found, hit = [], set()
    for n, m in named:
        matched = [e for e in entries if _entry_matches(n, e)]
        if matched:
            found.append((n, m))
            hit.update(matched)
    if not found:
        raise TargetError(
            f"target_modules {entries} matched no module. Candidates: {_candidates(model)}"
        )
    missing = [e for e in entries if e not in hit]
    if missing:
        raise TargetError(
            f"target_modules entries {missing} matched no module (the others matched "
            f"{len(found)} modules). Candidates: {_candidates(model)}"
        )
    return found


def resolve_module(model: nn.Module, clean: str) -> tuple[str, nn.Module]:
    """The real dotted path and module for a clean (user-visible) name."""
    for name, module in model.named_modules():
        if clean_name(name) == clean:
            return name, module
    raise TargetError(f"no module named {clean!r}")
