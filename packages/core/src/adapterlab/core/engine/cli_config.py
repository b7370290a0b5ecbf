"""Dataclass configs from YAML plus command-line overrides, through ``jsonargparse``.

``parse_config(MyConfig)`` accepts ``--config run.yaml``, ``--train.lr 1e-3``, ``--train.lr=1e-3``
and the short form ``train.lr=1e-3``; ``--help`` lists every field with its type, default and the
help text taken from the attribute docstrings.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

__all__ = ["build_parser", "parse_config"]

T = TypeVar("T")

_OVERRIDE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*=")


def _normalise(argv: Sequence[str]) -> list[str]:
    """``a.b=value`` -> ``--a.b=value`` (the dotted override style of OmegaConf/Hydra)."""
    return [f"--{a}" if _OVERRIDE.match(a) else a for a in argv]


def build_parser(
    cls: type, description: str | None = None, prog: str | None = None
) -> ArgumentParser:
    """A ``jsonargparse`` parser for dataclass ``cls`` (nested dataclasses become ``a.b`` groups)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"parse_config needs a dataclass, got {cls!r}")
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    doc = (cls.__doc__ or "").strip().splitlines()
    parser = ArgumentParser(
        prog=prog,
        description=description or (doc[0] if doc else None),
        epilog="Overrides: --a.b VALUE, --a.b=VALUE or a.b=VALUE; later ones win over --config.",
    )
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML file with any of the fields below (e.g. a run's config.yaml).",
    )
    parser.add_class_arguments(cls, fail_untyped=True, sub_configs=True)
    return parser


def parse_config(
    cls: type[T],
    argv: Sequence[str] | None = None,
    description: str | None = None,
    prog: str | None = None,
) -> T:
    """Build an instance of dataclass ``cls`` from ``--config x.yaml`` and overrides in ``argv``
    (default ``sys.argv[1:]``). Unknown fields and bad values exit with a message naming them."""
    parser = build_parser(cls, description, prog)
    args = _normalise(sys.argv[1:] if argv is None else argv)
    namespace = parser.parse_args(args)
    built = parser.instantiate(namespace)
    values: dict[str, Any] = {f.name: built[f.name] for f in dataclasses.fields(cls) if f.init}
    return cls(**values)
