"""``adapterlab-ast``: train / eval / sweep PETL methods on the Audio Spectrogram Transformer."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from adapterlab.core.engine import Subcommand, run_subcommands

from .loaders import synthesize_esc50
from .loaders.debian import DebianFetchError
from .methods import METHODS
from .model import ModelLoadError
from .sweep import SweepConfig, run_sweep
from .train import RunConfig, evaluate_run, train

USAGE = """usage: adapterlab-ast {train,eval,sweep,synth} [options]

Parameter-efficient transfer learning for the Audio Spectrogram Transformer (Cappellazzo et al., 2024).

commands:
  train   train one method (linear probe, BitFit, prompts, prefix, LoRA, bottleneck or conformer adapters, full FT)
  eval    evaluate a finished run's best (validation-selected) checkpoint on a split
  sweep   train several methods on the same data and write a comparison table (sweep.md, sweep.json)
  synth   write the embedded synthetic ESC-50-format dataset to a folder

With no --data, train/sweep use the embedded demo (CPU-friendly): real recordings of one voice from
Debian's asterisk-core-sounds-en-wav (fetched once with apt-get download), a tiny AST pre-trained on its
words, and transfer to the ten digits (a Speech Commands v2-layout folder). --demo synth uses
synthetic sounds on a random tiny AST instead (no download; mechanics only).
Real data: --data DIR --dataset esc50|urbansound8k|speech_commands|fluent_speech, with
--model MIT/ast-finetuned-audioset-10-10-0.4593 (the default when --data is given), a local folder,
or --model demo (the demo's pre-trained tiny AST, on any folder; no hub download).
The paper's tables: adapterlab-ast sweep --preset paper --dataset esc50 --data DIR (see the README).

Run `adapterlab-ast <command> --help` for every option. Methods: {methods}
"""


@dataclass
class EvalConfig:
    """Evaluate a finished adapterlab-ast run (its best, validation-selected checkpoint)."""

    run: str = "runs/ast/conformer"
    """Run directory written by `adapterlab-ast train` (holds config.yaml and best/)."""
    split: str = "test"
    """Split to evaluate: train, val or test."""
    data: str | None = None
    """Dataset folder (default: the one the run was trained on)."""
    batch_size: int = 32
    """Evaluation batch size."""
    skip_bad_samples: bool = False
    """Skip and count unreadable audio files."""


@dataclass
class SynthConfig:
    """Write the embedded synthetic ESC-50-format dataset (real wav files + meta/esc50.csv)."""

    out: str = "data/synth-esc50"
    """Destination folder."""
    clips_per_class: int = 20
    """Clips per class (a multiple of 5, the number of folds)."""
    seed: int = 0
    """Random seed."""


def _sweep(cfg: SweepConfig) -> None:
    run_sweep(cfg)  # prints its own table and writes sweep.md / sweep.json


def _synth(s: SynthConfig) -> None:
    root = synthesize_esc50(s.out, clips_per_class=s.clips_per_class, seed=s.seed)
    print(f"wrote the synthetic ESC-50-format dataset to {root}")


COMMANDS = {
    "train": Subcommand(RunConfig, train),
    "sweep": Subcommand(SweepConfig, _sweep),
    "eval": Subcommand(
        EvalConfig,
        lambda e: evaluate_run(e.run, e.split, e.data, e.batch_size, e.skip_bad_samples),
    ),
    "synth": Subcommand(SynthConfig, _synth),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-ast`` and ``python -m adapterlab.audio``."""
    usage = USAGE.replace("{methods}", ", ".join(METHODS))
    return run_subcommands(
        "adapterlab-ast", usage, COMMANDS, argv, errors=(ModelLoadError, DebianFetchError)
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
