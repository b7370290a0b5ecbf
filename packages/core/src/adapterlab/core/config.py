"""Adapter configs: typed dataclasses, a method registry, presets by name and a JSON round trip.

The JSON form (``adapter_config.json``) carries the method name and the library version::

    {"method": "bottleneck", "adapterlab_version": "0.1.0", "config": {...}}

Unknown keys written by a newer version are dropped with a warning (forward compatibility,
as in PEFT's ``_check_and_remove_unused_kwargs``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "AdapterConfig",
    "register_config",
    "config_class",
    "config_from_dict",
    "load_config",
    "get_config",
    "register_preset",
    "available_presets",
    "available_methods",
    "library_version",
]


def library_version() -> str:
    """The installed ``adapterlab-core`` version (``0+unknown`` when run from a bare source tree)."""
    try:
        return metadata.version("adapterlab-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout without install
        return "0+unknown"


@dataclass
class AdapterConfig:
    """Fields shared by every adapter method.

    Attributes:
        target_modules: modules to adapt. A list entry matches a module's full name exactly or
            as a ``.suffix``; a single string is a regular expression matched with ``re.fullmatch``.
            ``None`` uses the architecture's default for the method (see ``architectures``).
        modules_to_save: extra modules (e.g. a new classification head) that train alongside the
            adapter and are saved with it. Matched like ``target_modules``.
    """

    method: ClassVar[str] = "base"
    mergeable: ClassVar[bool] = False

    target_modules: list[str] | str | None = None
    modules_to_save: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, stamped with the method name and library version."""
        body = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            body[f.name] = list(value) if isinstance(value, tuple) else value
        return {"method": self.method, "adapterlab_version": library_version(), "config": body}

    def to_json(self, path: str | Path) -> None:
        """Write ``to_dict()`` as indented JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def replace(self, **changes: Any) -> AdapterConfig:
        """A copy with ``changes`` applied (unknown field names raise ``ValueError``)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no field(s) {unknown}; fields are {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise ``ValueError`` for inconsistent settings. Subclasses extend this."""


_CONFIGS: dict[str, type[AdapterConfig]] = {}
_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {}


def register_config(cls: type[AdapterConfig]) -> type[AdapterConfig]:
    """Class decorator: make ``cls`` loadable by its ``method`` name (which must be unique)."""
    name = cls.method
    if name in _CONFIGS and _CONFIGS[name] is not cls:
        raise ValueError(f"adapter method {name!r} is already registered by {_CONFIGS[name]}")
    _CONFIGS[name] = cls
    return cls


def available_methods() -> list[str]:
    """Names of all registered adapter methods."""
    return sorted(_CONFIGS)


def config_class(method: str) -> type[AdapterConfig]:
    """The config class registered for ``method``."""
    try:
        return _CONFIGS[method]
    except KeyError:
        raise ValueError(
            f"unknown adapter method {method!r}; known methods: {available_methods()}"
        ) from None


def _tuplify(cls: type[AdapterConfig], body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for f in dataclasses.fields(cls):
        if f.name in out and isinstance(out[f.name], list) and "tuple" in str(f.type):
            out[f.name] = tuple(out[f.name])
    return out


def config_from_dict(data: dict[str, Any]) -> AdapterConfig:
    """Rebuild a config from ``to_dict()`` output; unknown keys are dropped with a warning."""
    if not isinstance(data, dict) or "method" not in data:
        raise ValueError("an adapter config must be a JSON object with a 'method' key")
    cls = config_class(data["method"])
    body = data.get("config", {})
    if not isinstance(body, dict):
        raise ValueError("'config' in an adapter config must be a JSON object")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(body) - known)
    if unknown:
        warnings.warn(
            f"adapter config for {cls.method!r} (written by adapterlab "
            f"{data.get('adapterlab_version', '?')}) has keys this version does not know; "
            f"dropping {unknown}",
            stacklevel=2,
        )
    cfg = cls(**_tuplify(cls, {k: v for k, v in body.items() if k in known}))
    cfg.validate()
    return cfg


def load_config(path: str | Path) -> AdapterConfig:
    """Read an ``adapter_config.json`` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read adapter config {path}: {err}") from err
    return config_from_dict(data)


def register_preset(name: str, method: str, **defaults: Any) -> None:
    """Register a named preset: ``method``'s config with ``defaults`` applied."""
    _PRESETS[name] = (method, defaults)


def available_presets() -> list[str]:
    """Names accepted by :func:`get_config`."""
    return sorted(_PRESETS)


def get_config(name: str, **overrides: Any) -> AdapterConfig:
    """Build a preset config by name (e.g. ``"pfeiffer"``, ``"lora"``) with ``overrides`` applied."""
    if name in _PRESETS:
        method, defaults = _PRESETS[name]
    elif name in _CONFIGS:
        method, defaults = name, {}
    else:
        raise ValueError(
            f"unknown adapter preset or method {name!r}; presets: {available_presets()}"
        )
    cls = config_class(method)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"preset {name!r} ({cls.__name__}) has no field(s) {unknown}")
    cfg = cls(**{**defaults, **overrides})
    cfg.validate()
    return cfg
