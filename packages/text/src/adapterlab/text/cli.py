"""``adapterlab-text``: language adaptation with adapters (seq_bn, seq_bn_inv, LoRA) by MLM."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapterlab.core.engine import Subcommand, run_subcommands

from .config import LangAdaptConfig
from .data import WordNetUnavailable
from .models import ModelLoadError

USAGE = """usage: adapterlab-text {run-all} [options]

Language adaptation as in "Small Models, Big Impact" (Gurgurov et al., ACL 2025 SRW): MLM
training of seq_bn, seq_bn_inv (invertible) and LoRA language adapters on WordNet
knowledge-graph sentences and gloss text, then held-out MLM loss and a downstream topic task
(a task adapter stacked on the frozen language adapter), mean ± std over seeds.

commands:
  run-all   the main job (default: all-MiniLM-L6-v2 offline, Debian's wordnet-base)

Run `adapterlab-text run-all --help` for every option.
"""


def _run_all(cfg: LangAdaptConfig) -> None:
    from .pipeline import run_all

    run_all(cfg)


COMMANDS = {"run-all": Subcommand(LangAdaptConfig, _run_all)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-text`` and ``python -m adapterlab.text``."""
    return run_subcommands(
        "adapterlab-text", USAGE, COMMANDS, argv, errors=(ModelLoadError, WordNetUnavailable)
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
