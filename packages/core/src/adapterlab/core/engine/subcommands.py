"""One entry point shape for every package CLI: ``<prog> <command> [options]``.

Each command is a dataclass config (parsed by :func:`parse_config`, so ``--help`` lists every
field) and a handler. Usage errors exit 2, expected errors print one line on stderr and exit 1,
an interruption (SIGINT/SIGTERM, :class:`TrainingInterrupted`) prints one line and exits
128 + signal, and a handler's non-``None`` result is printed as JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .atomic import to_jsonable
from .cli_config import parse_config
from .errors import DiskFullError, TrainingInterrupted

__all__ = ["Subcommand", "run_subcommands"]

#: Errors a command reports as one line (exit 1) instead of a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    DiskFullError,
    FileExistsError,
    FileNotFoundError,
    ValueError,
)


def interrupted_message(err: TrainingInterrupted, hint: str | None = None) -> str:
    """One line for an interruption: the signal, the last checkpoint and ``hint``."""
    where = f" (last checkpoint: {err.checkpoint})" if err.checkpoint else ""
    return f"interrupted by signal {err.signum}{where}" + (f"; {hint}" if hint else "")


@dataclass(frozen=True)
class Subcommand:
    """A command's config dataclass and the function that runs it (``handler(cfg)``)."""

    config: type
    handler: Callable[[Any], Any]


def run_subcommands(
    prog: str,
    usage: str,
    commands: Mapping[str, Subcommand],
    argv: Sequence[str] | None = None,
    errors: tuple[type[BaseException], ...] = (),
    interrupt_hint: str | None = None,
) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to one of ``commands``; returns the exit code.

    ``errors`` adds the package's own error types to :data:`EXPECTED_ERRORS`. A
    :class:`TrainingInterrupted` is reported in one line on stderr (with ``interrupt_hint``, e.g.
    what a rerun does, appended) and returns its ``exit_code`` (128 + signal).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage, file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(usage)
        return 0
    command, rest = args[0], args[1:]
    if command not in commands:
        print(f"{prog}: unknown command {command!r}\n\n{usage}", file=sys.stderr)
        return 2
    sub = commands[command]
    full = f"{prog} {command}"
    try:  # a config's own validation (__post_init__) raises ValueError too
        cfg = parse_config(sub.config, rest, prog=full, description=sub.config.__doc__)
        result = sub.handler(cfg)
    except TrainingInterrupted as err:  # never swallowed, never a traceback: 128 + signal
        print(f"{full}: {interrupted_message(err, interrupt_hint)}", file=sys.stderr)
        return err.exit_code
    except (*EXPECTED_ERRORS, *errors) as err:
        print(f"{full}: error: {err}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(to_jsonable(result), indent=2))
    return 0
