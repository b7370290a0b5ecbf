"""``adapterlab-llm``: adapters for decoder LLMs (LLM-Adapters, Trans-LoRA, Generative Adapter)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict

from adapterlab.core.engine import DataFileError, Subcommand, run_subcommands

from .config import AdaptConfig, PipelineConfig, apply_preset
from .data.debian import DebianUnavailable
from .models.llm import LLMLoadError

USAGE = """usage: adapterlab-llm {adapt,run-all} [options]

Adapters for decoder LLMs on a frozen causal LM (default: SmolLM2-135M, offline from PyPI).

commands:
  adapt     train one LLM-Adapters method (series | parallel | lora | prefix, @attn/@mlp/@both)
            on a Math10K / Commonsense170K-format file or the embedded task, score by generation
            (--preset paper: the released hyperparameters)
  run-all   the main job: every method on embedded math + WordNet commonsense, Trans-LoRA
            SmolLM2 -> Gemma 3 270M with its ablations, Generative Adapter vs its baselines

Run `adapterlab-llm <command> --help` for every option.
"""


def _adapt(cfg: AdaptConfig) -> dict:
    from pathlib import Path

    from .data.alpaca import load_examples
    from .methods import parse_method
    from .models.llm import load_llm
    from .pipeline import KINDS, _task_data
    from .train import top_of, train_adapter

    cfg = apply_preset(cfg)
    parse_method(cfg.method)  # fail before loading anything
    if cfg.task not in KINDS:
        raise ValueError(f"task must be math or commonsense, got {cfg.task!r}")
    if cfg.data:
        root = Path(cfg.data)
        file = root / ("math_10k.json" if cfg.task == "math" else "commonsense_170k.json")
        examples = load_examples(file, limit=(cfg.n_train + cfg.n_val) or None)
        train, val = examples[: len(examples) - cfg.n_val], examples[len(examples) - cfg.n_val :]
        if not cfg.test_set:
            raise ValueError("with --data, name the test set (--test_set gsm8k, boolq, ...)")
        test = load_examples(
            root / "dataset" / cfg.test_set / "test.json",
            need_output=False,
            limit=cfg.n_test or None,
        )
    else:
        # the embedded generators have no "all": 0 means 1,000 training and 200 test problems
        train, val, test = _task_data(
            cfg.task, cfg.n_train or 1000, cfg.n_val, cfg.n_test or 200, cfg.seed
        )
    lm, tok = load_llm(cfg.model)
    kind = KINDS[cfg.task] if cfg.test_set.lower() != "aqua" else "letter"
    result = train_adapter(top_of(lm, cfg.top_layers), tok, cfg, train, val, test, kind=kind)
    return {"config": asdict(cfg), **result.to_json()}


def _run_all(cfg: PipelineConfig) -> None:
    from .pipeline import run_all

    run_all(cfg)  # prints its own summary table


COMMANDS = {
    "adapt": Subcommand(AdaptConfig, _adapt),
    "run-all": Subcommand(PipelineConfig, _run_all),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-llm`` and ``python -m adapterlab.llm``."""
    return run_subcommands(
        "adapterlab-llm",
        USAGE,
        COMMANDS,
        argv,
        errors=(LLMLoadError, DataFileError, DebianUnavailable),
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
