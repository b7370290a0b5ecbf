"""Adapter configs: typed dataclasses (field types checked), presets by name and a JSON round trip.

The JSON form (``adapter_config.json``) carries the method name and the library version::

    {"method": "bottleneck", "adapterlab_version": "0.1.0", "config": {...}}

Unknown keys written by a newer version are dropped with a warning (forward compatibility,
as in PEFT's ``_check_and_remove_unused_kwargs``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "AdapterConfig",
    "config_from_dict",
    "load_config",
    "get_config",
    "register_preset",
    "available_presets",
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

    def __post_init__(self) -> None:
        self.check_types()

    def check_types(self) -> None:
        """Raise ``ValueError`` naming the first field whose value has the wrong type."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = hints.get(f.name)
            if hint is not None and not _matches(value, hint):
                raise ValueError(
                    f"{type(self).__name__}.{f.name} must be {_describe(hint)}, "
                    f"got {value!r} ({type(value).__name__})"
                )

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


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the type annotation ``hint`` (the subset configs use)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        inner = [a for a in args if a is not Ellipsis]
        return not inner or all(_matches(v, inner[0]) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_t, val_t = args or (Any, Any)
        return all(_matches(k, key_t) and _matches(v, val_t) for k, v in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not understand: accept


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if origin is not None:
        return f"a {origin.__name__}"
    return f"a {getattr(hint, '__name__', str(hint))}"


_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {}


def _tuplify(cls: type[AdapterConfig], body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for f in dataclasses.fields(cls):
        if f.name in out and isinstance(out[f.name], list) and "tuple" in str(f.type):
            out[f.name] = tuple(out[f.name])
    return out


def _config_class(method: str) -> type[AdapterConfig]:
    from .tuners.registry import config_class  # the registry imports this module

    return config_class(method)


def _known_methods() -> list[str]:
    from .tuners.registry import available_methods

    return available_methods()


def config_from_dict(data: dict[str, Any], source: str | Path | None = None) -> AdapterConfig:
    """Rebuild a config from ``to_dict()`` output; unknown keys are dropped with a warning.

    ``source`` (a file name) is named in error messages.
    """
    where = f"{source}: " if source is not None else ""
    if not isinstance(data, dict) or "method" not in data:
        raise ValueError(
            f"{where}an adapter config must be a JSON object with a 'method' key "
            f"(got {type(data).__name__}); valid methods: {_known_methods()}"
        )
    try:
        cls = _config_class(data["method"])
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None
    body = data.get("config", {})
    if not isinstance(body, dict):
        raise ValueError(f"{where}'config' in an adapter config must be a JSON object")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(body) - known)
    if unknown:
        warnings.warn(
            f"{where}adapter config for {cls.method!r} (written by adapterlab "
            f"{data.get('adapterlab_version', '?')}) has keys this version does not know; "
            f"dropping {unknown}",
            stacklevel=2,
        )
    try:
        cfg = cls(**_tuplify(cls, {k: v for k, v in body.items() if k in known}))
        cfg.validate()
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None
    return cfg


def load_config(path: str | Path) -> AdapterConfig:
    """Read an ``adapter_config.json`` file (errors name the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read adapter config {path}: {err}") from err
    return config_from_dict(data, source=path)


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
    elif name in _known_methods():
        method, defaults = name, {}
    else:
        raise ValueError(
            f"unknown adapter preset or method {name!r}; presets: {available_presets()}"
        )
    cls = _config_class(method)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"preset {name!r} ({cls.__name__}) has no field(s) {unknown}")
    cfg = cls(**{**defaults, **overrides})
    cfg.validate()
    return cfg
