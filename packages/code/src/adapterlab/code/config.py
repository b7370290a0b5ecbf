"""Dataclass configs of every ``adapterlab-code`` subcommand (each field documents itself)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from adapterlab.core.engine.seeds import SeedSpec

__all__ = [
    "PAPER_SETTINGS",
    "EvalConfig",
    "PipelineConfig",
    "PrepareConfig",
    "TTCConfig",
    "TaskConfig",
    "apply_preset",
]


@dataclass
class PrepareConfig:
    """Preprocess source files for TTC (parse, tokenise, align; cached) and write the
    summarization set (CodeXGLUE code-to-text layout) plus the small refinement set."""

    source: str | None = None
    """Folder of source files (searched recursively by extension: .py, .java). None: the
    CPython standard library of this interpreter."""
    out: str = "data/code"
    """Output folder: summarization/python/{train,valid,test}.jsonl, refinement/, cache/."""
    model: str = "minilm"
    """Whose tokenizer aligns the TTC labels: tiny, minilm, codebert, a hub id or a local folder."""
    languages: list[str] | None = None
    """Restrict TTC files to these languages (java, python). None: all supported."""
    max_length: int = 128
    """Subword tokens per TTC window."""
    max_files: int | None = None
    """Use at most this many TTC training files (valid/test get an eighth each). None: all."""
    num_proc: int | None = None
    """Processes for datasets.map (None: all CPU cores)."""
    keep_parse_errors: bool = True
    """Keep files with syntax errors (their ERROR/MISSING nodes are counted) or skip them."""
    on_bad_file: str = "skip"
    """Empty, binary, undecodable, too large, too-long-line or unparsable files: 'skip' (count
    and name them) or 'error' (stop, naming the file)."""
    max_file_bytes: int | None = 1_000_000
    """Per-file size limit: larger files are skipped, counted and named (None: no limit)."""
    max_line_chars: int | None = 1_000
    """Per-line length limit: a file with a longer line (minified/generated code) is skipped,
    counted and named (None: no limit)."""
    max_error_rate: float = 0.05
    """Files whose ERROR/MISSING nodes exceed this share of their leaves (random text named
    .java) are skipped as unparsable, counted and named."""
    summaries: bool = True
    """Also write the function -> first docstring line set (Python files only)."""
    max_summaries: int | None = 1500
    """Cap on training summaries (valid/test get 200 each). None: all."""


@dataclass
class TTCConfig:
    """Train NER adapters with token type classification on a frozen encoder (CodeBERTER's
    first stage): a core bottleneck adapter in every layer plus a linear token-type head."""

    model: str = "minilm"
    """Encoder: tiny (random, tests), minilm (offline real BERT), codebert (microsoft/codebert-base),
    a hub id or a local folder of a RoBERTa/BERT encoder."""
    source: str | None = None
    """Folder of source files (recursive, by extension). None: the CPython standard library."""
    languages: list[str] | None = None
    """Restrict to these languages (java, python). None: all supported."""
    out: str = "runs/code/ttc"
    """Run directory (engine files + ner_adapter/ + ttc_report.json)."""
    cache_dir: str | None = "data/code/cache"
    """Where preprocessed TTC windows are cached (None: no cache)."""
    max_length: int = 128
    """Subword tokens per window."""
    max_files: int | None = 200
    """At most this many training files (valid/test an eighth each). None: all."""
    num_proc: int | None = None
    """Processes for preprocessing (None: all CPU cores)."""
    keep_parse_errors: bool = True
    """Keep files with syntax errors (counted) or skip them."""
    on_bad_file: str = "skip"
    """Empty, binary, undecodable, too large, too-long-line or unparsable files: 'skip' (count
    and name them) or 'error'."""
    max_file_bytes: int | None = 1_000_000
    """Per-file size limit: larger files are skipped, counted and named (None: no limit)."""
    max_line_chars: int | None = 1_000
    """Per-line length limit: a file with a longer line (minified/generated code) is skipped,
    counted and named (None: no limit)."""
    max_error_rate: float = 0.05
    """Files whose ERROR/MISSING nodes exceed this share of their leaves (random text named
    .java) are skipped as unparsable, counted and named."""
    adapter: str = "pfeiffer"
    """Core bottleneck preset of the NER adapter: pfeiffer (after the FFN) or houlsby (after
    attention and FFN)."""
    reduction_factor: float = 16.0
    """Bottleneck = hidden size / reduction_factor (16: CodeBERT's 768 -> 48, AdapterHub's default)."""
    class_weighting: str = "none"
    """Cross-entropy class weights: none, or inverse_sqrt (1/sqrt(type frequency), mean 1)."""
    steps: int = 300
    """Optimiser steps."""
    batch_size: int = 16
    """Windows per step."""
    lr: float = 1e-3
    """AdamW learning rate of the adapter and head."""
    eval_every: int = 100
    """Evaluate on the validation files every N steps (the best checkpoint is kept)."""
    seed: int = 0
    """Random seed."""
    overwrite: bool = True
    """Replace an earlier run in `out` (False: refuse)."""


@dataclass
class TaskConfig:
    """Fine-tune one variant on code summarization or code refinement (CodeXGLUE layouts)."""

    task: str = "summarization"
    """summarization (code-to-text jsonl) or refinement (buggy/fixed Java line files)."""
    data: str | None = None
    """Task folder. None: the embedded data (written by `prepare` into data/code)."""
    variant: str = "codeberter"
    """full | codeberter (frozen NER adapters, encoder fine-tuned) | task_adapter | ner_task
    (NER and task adapters stacked)."""
    model: str = "minilm"
    """Encoder (as for ttc); must match the NER adapter's."""
    ner_adapter: str | None = None
    """Folder of a trained NER adapter (`<ttc run>/ner_adapter`); needed by codeberter/ner_task."""
    out: str = "runs/code/task"
    """Run directory."""
    decoder_layers: int = 6
    """Transformer decoder layers (CodeXGLUE: 6)."""
    decoder_ffn: int | None = None
    """Decoder feed-forward size (None: the encoder's intermediate size)."""
    max_source_length: int = 256
    """Source subword tokens (CodeXGLUE summarization: 256)."""
    max_target_length: int = 128
    """Target subword tokens (CodeXGLUE summarization: 128)."""
    beam_size: int = 1
    """Beam size at evaluation (CodeXGLUE: 10; 1 = greedy)."""
    min_length: int = 1
    """Tokens generated before the end token is allowed (ours: a summary is never empty;
    CodeXGLUE: 0)."""
    steps: int = 1000
    """Optimiser steps."""
    batch_size: int = 16
    """Examples per step."""
    lr: float | None = None
    """Learning rate of the encoder side (None: the variant's, see methods.py)."""
    decoder_lr: float = 1e-3
    """Learning rate of the new decoder (every variant)."""
    task_reduction_factor: float = 16.0
    """Task adapter bottleneck = hidden / this."""
    max_train: int | None = None
    """Use at most this many training examples. None: all."""
    max_eval: int | None = None
    """Use at most this many test (and validation) examples. None: all."""
    max_valid: int | None = None
    """Use at most this many validation examples (None: as max_eval)."""
    skip_bad_samples: bool = False
    """Skip and count malformed jsonl lines instead of stopping."""
    seed: int = 0
    """Random seed."""
    overwrite: bool = True
    """Replace an earlier run in `out`."""
    preset: str | None = None
    """paper: the paper's fine-tuning settings for the task (see PAPER_SETTINGS / the README
    table); options you give explicitly (with a value other than their default) win."""
    epochs: float | None = None
    """Train for this many passes over the training examples (sets steps). None: use steps."""
    eval_every: int | None = None
    """Validate (and keep the best checkpoint) every N steps. None: once, at the end."""


@dataclass
class EvalConfig:
    """Evaluate a finished `train` run's best checkpoint on a split."""

    run: str = "runs/code/task"
    """Run directory written by `adapterlab-code train`."""
    split: str = "test"
    """train, valid or test."""
    data: str | None = None
    """Task folder (default: the one the run used)."""
    beam_size: int | None = None
    """Beam size (default: the run's)."""


@dataclass
class PipelineConfig:
    """The main job: prepare the stdlib data, train NER adapters with TTC, then fine-tune every
    variant on summarization and print the comparison table."""

    model: str = "minilm"
    """Encoder for every stage."""
    out: str = "runs/code"
    """Output folder (data/, ttc/, one run per variant, summary.md, summary.json)."""
    variants: str = "full,codeberter,task_adapter,ner_task"
    """Comma-separated variants to compare."""
    ttc_steps: int = 100
    """TTC optimiser steps (batch 16; adapters take a high lr, see ttc_lr)."""
    ttc_files: int = 60
    """TTC training files (standard-library modules; valid/test an eighth each)."""
    ttc_max_length: int = 48
    """Subword tokens per TTC window."""
    ttc_lr: float = 1e-3
    """TTC learning rate (adapter and head)."""
    task_steps: int = 64
    """Summarization optimiser steps per variant and seed (batch 16)."""
    train_examples: int = 1000
    """Summarization training examples."""
    valid_examples: int = 32
    """Summarization validation examples (best-checkpoint selection)."""
    eval_examples: int = 96
    """Summarization test examples (functions of held-out modules)."""
    decoder_layers: int = 2
    """Decoder layers (CodeXGLUE: 6; the CPU demo: 2, so that 3 seeds of 4 variants fit)."""
    decoder_ffn: int | None = 512
    """Decoder feed-forward size (None: the encoder's intermediate size, 1536 for MiniLM; the
    CPU demo uses a narrower one)."""
    decoder_lr: float = 3e-3
    """Learning rate of the new (from-scratch) decoder in every variant."""
    max_source_length: int = 32
    """Source subword tokens (CodeXGLUE: 256; the CPU demo: 32, the signature and first lines)."""
    max_target_length: int = 16
    """Target subword tokens (CodeXGLUE: 128)."""
    threads: int = 1
    """Torch threads per process (1: the fewest CPU-seconds for these small matrices, and no
    spinning threads fighting over shared cores)."""
    workers: int = 2
    """Runs trained at once, each in a worker process (1: one after another in this one)."""
    seeds: SeedSpec = 3
    """Seeds of every variant's fine-tuning: a count (3 -> 0, 1, 2) or a list ("5,7"). TTC
    runs once, with the first."""
    preset: str | None = None
    """paper: every variant's fine-tuning uses the paper's settings (see TaskConfig.preset)."""


PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "summarization": {
        "decoder_layers": 6,
        "decoder_ffn": 2048,
        "lr": 5e-5,
        "decoder_lr": 5e-5,
        "batch_size": 32,
        "max_source_length": 256,
        "max_target_length": 128,
        "beam_size": 10,
        "min_length": 0,
        "epochs": 10,
        "task_reduction_factor": 16.0,
    },
    "refinement": {
        "decoder_layers": 6,
        "decoder_ffn": 2048,
        "lr": 5e-5,
        "decoder_lr": 5e-5,
        "batch_size": 32,
        "max_source_length": 256,
        "max_target_length": 256,
        "beam_size": 5,
        "min_length": 0,
        "steps": 100_000,
        "eval_every": 5_000,
        "task_reduction_factor": 16.0,
    },
}
"""``--preset paper``, per task: CodeXGLUE's CodeBERT fine-tuning settings, which the paper
follows for its baselines (one learning rate for every weight, ``nn.TransformerDecoderLayer``'s
default 2048-wide feed-forward, batch 32; summarization 256/128 tokens, beam 10, 10 epochs;
refinement 256/256 tokens, beam 5, 100k steps validated every 5k). The adapters' reduction
factor is AdapterHub's default (16): the paper's own is not published in what we can read."""


def apply_preset(cfg: TaskConfig) -> TaskConfig:
    """``cfg`` with its preset's settings filled in: every preset field that still holds its
    default takes the preset's value (options given explicitly win). ``preset=None``: as is."""
    if cfg.preset is None:
        return cfg
    if cfg.preset != "paper":
        raise ValueError(f"unknown preset {cfg.preset!r}; choose 'paper' or none")
    if cfg.task not in PAPER_SETTINGS:
        raise ValueError(f"task must be one of {sorted(PAPER_SETTINGS)}, got {cfg.task!r}")
    defaults = TaskConfig()
    changes = {
        key: value
        for key, value in PAPER_SETTINGS[cfg.task].items()
        if getattr(cfg, key) == getattr(defaults, key)
    }
    return dataclasses.replace(cfg, **changes)
