"""The dataclass configs of ``adapterlab-vl`` (every field's docstring is its ``--help``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .methods import METHODS, spec

__all__ = [
    "TASKS",
    "CommonConfig",
    "ConvertConfig",
    "EvalConfig",
    "RunConfig",
    "SweepConfig",
    "SynthConfig",
]

TASKS = ("vqa", "caption", "snli_ve", "vizwiz")
DEFAULT_METHODS = ",".join(METHODS)


@dataclass
class CommonConfig:
    """Data, model and recipe settings shared by ``train`` and ``sweep``."""

    preset: str | None = None
    """paper: every setting of the released configs per task (learning rate, epochs, batch, no
    warm-up, reduction 8, p initialised per task, the release's p-adapter, ranking with k_test,
    caption prompt and beam search), starting from --pretrained. None: the defaults below."""
    pretrained: str | None = None
    """Folder written by `adapterlab-vl convert` (<dir>/vqa, <dir>/caption): the pre-trained BLIP
    that --preset paper adapts (required there with --data)."""
    data: str | None = None
    """Root holding vqav2/ (VQAv2 json files), coco/ (COCO images + annotations/dataset_coco.json),
    snli_ve/ (snli_ve_*.jsonl + flickr30k_images/) and vizwiz/ (annotations/*.json + images).
    None: write the embedded synthetic scenes to <out>/data and use a tiny BLIP pre-trained on them."""
    vqa_model: str | None = None
    """VQA checkpoint (hub id or folder). None: Salesforce/blip-vqa-base with --data, else the tiny BLIP."""
    caption_model: str | None = None
    """Captioning checkpoint. None: Salesforce/blip-image-captioning-base with --data, else the tiny BLIP."""
    out: str = "runs/vl"
    """Output folder: run directories, the pre-trained tiny BLIP, the embedded data."""
    epochs: int | None = None
    """Training epochs per run. None: the embedded default (VQA / VizWiz 20, captioning 5, SNLI-VE 10), else the release's (VQA 5, captioning 2, SNLI-VE 5)."""
    batch_size: int | None = None
    """Batch size. None: 32 embedded, the paper's 8 (VQA) / 16 (captioning) otherwise."""
    lr: float | None = None
    """Learning rate. None: the method's (see methods.py)."""
    weight_decay: float = 0.05
    """AdamW weight decay (the released configs: 0.05); linear decay schedule."""
    warmup_ratio: float = 0.06
    """Share of the optimiser steps with a linear learning-rate warm-up (BERT / PEFT practice)."""
    max_grad_norm: float | None = 1.0
    """Clip the global gradient norm (HF Trainer's default, 1.0); None: no clipping."""
    reduction: float | None = None
    """Bottleneck reduction of adapters and p-adapters. None: the paper's 8 (768 -> 96) on real
    checkpoints, 2 on the embedded tiny BLIP (width 64 -> 32; 64 -> 8 is too narrow to learn VQA)."""
    lora_r: int = 8
    """LoRA rank (alpha = 2r)."""
    prefix_tokens: int = 8
    """Prefix vectors per self-attention layer."""
    max_train: int | None = None
    """Use at most this many training examples (seeded; for quick runs)."""
    vqa_targets: str = "soft"
    """VQA training targets: soft (BLIP / the release: every distinct human answer, weighted by the
    share of humans who gave it) or majority (the single most frequent answer)."""
    vqa_inference: str = "rank"
    """VQA answers at test time: rank (BLIP / the release: top-k of the answer list by first-token
    probability, then by full log-likelihood) or generate (greedy decoding)."""
    k_test: int | None = None
    """Candidates re-scored by ranking inference. None: the release's (VQA / VizWiz 32, SNLI-VE 3;
    BLIP's own VQA uses 128)."""
    answer_list: str | None = None
    """JSON list of candidate answers for ranking (BLIP's answer_list.json). None: the
    max_answers most frequent human answers of the training split."""
    max_answers: int = 3128
    """Size of the answer list built from the training split (BLIP's list has 3,128 answers)."""
    pretrain_epochs: int = 30
    """Embedded data only: epochs of full captioning pre-training of the tiny BLIP."""
    distractors: int = 12
    """Embedded data only: at most this many small distractor shapes in every downstream (train,
    val, test) image, in colours no question names (the pre-training images stay clean); 0: the
    clean scenes."""
    seed: int = 0
    """Seed of data order and initialisation."""
    num_workers: int = 0
    """DataLoader workers that decode images (once, into the on-disk cache <out>/image-cache)
    and load batches; 0: in the main process (the embedded data's tiny images)."""
    skip_bad_samples: bool = False
    """Skip and count unreadable images instead of stopping."""
    threads: int | None = None
    """torch CPU threads. None: 1 on the embedded data (the tiny model's small matrices only lose time
    to thread synchronisation, badly on a busy machine), torch's default otherwise."""
    progress: bool = True
    """Progress bars (never off a TTY or under CI)."""

    @property
    def embedded(self) -> bool:
        return self.data is None

    def __post_init__(self) -> None:
        if self.preset not in (None, "paper"):
            raise ValueError(f"--preset must be paper (or unset), got {self.preset!r}")
        if self.vqa_targets not in ("soft", "majority"):
            raise ValueError(f"--vqa_targets must be soft or majority, got {self.vqa_targets!r}")
        if self.vqa_inference not in ("rank", "generate"):
            raise ValueError(
                f"--vqa_inference must be rank or generate, got {self.vqa_inference!r}"
            )
        if (self.k_test is not None and self.k_test < 1) or self.max_answers < 1:
            raise ValueError("--k_test and --max_answers must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunConfig(CommonConfig):
    """Train one method on one task (adapterlab-vl train)."""

    method: str = "p_adapter"
    """Method: full, adapter, lora, prefix, p_adapter, p_adapter_code."""
    task: str = "vqa"
    """Task: vqa (VQAv2), caption (COCO Karpathy), snli_ve (SNLI-VE) or vizwiz (VizWiz-VQA)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        spec(self.method)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")


@dataclass
class SweepConfig(CommonConfig):
    """Compare methods on VQA and captioning with the same data (adapterlab-vl sweep)."""

    methods: str = DEFAULT_METHODS
    """Comma-separated methods."""
    tasks: str = "vqa,caption"
    """Comma-separated tasks."""
    out: str = "runs/vl-sweep"
    """Output folder: one run directory per task and method, sweep.md, sweep.json."""
    seeds: str | None = "3"
    """Repeat runs over seeds: a count ("3" -> 0, 1, 2) or a list ("0,1,2"); table cells are then
    mean ± std (sample std) and p-adapter vs adapter gets a paired t-test. None: --seed only."""
    seed_methods: str | None = "adapter,p_adapter"
    """Comma-separated methods that run on every seed (the others on the first seed only: the
    2-core budget of the embedded job). None: every method."""
    seed_tasks: str | None = "vqa"
    """Comma-separated tasks whose runs repeat over the seeds (the others: first seed only).
    None: every task."""
    workers: int | None = None
    """Runs trained at a time, each in its own spawned process with ``threads`` torch threads.
    None: 2 on the embedded data without a GPU (same scores as 1, about half the wall time on
    2 cores), 1 otherwise. With 1, runs train in this process with progress bars."""

    def resolved_workers(self) -> int:
        if self.workers is not None:
            if self.workers < 1:
                raise ValueError(f"--workers must be >= 1, got {self.workers}")
            return self.workers
        import torch  # lazily: --help stays instant

        return 2 if self.embedded and not torch.cuda.is_available() else 1

    def seed_list(self) -> list[int]:
        from adapterlab.core.engine import resolve_seeds

        return resolve_seeds(self.seeds, default=(self.seed,), start=self.seed)

    def seeded(self, methods: list[str], tasks: list[str]) -> set[tuple[str, str]]:
        """The (method, task) pairs that run on every seed."""
        ms = set(methods) if self.seed_methods is None else set(self.seed_methods.split(","))
        ts = set(tasks) if self.seed_tasks is None else set(self.seed_tasks.split(","))
        return {(m, t) for m in methods for t in tasks if m in ms and t in ts}

    def method_list(self) -> list[str]:
        names = [m.strip() for m in self.methods.split(",") if m.strip()]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"--methods must list distinct methods, got {self.methods!r}")
        for m in names:
            spec(m)
        return names

    def task_list(self) -> list[str]:
        names = [t.strip() for t in self.tasks.split(",") if t.strip()]
        bad = [t for t in names if t not in TASKS]
        if bad or not names:
            raise ValueError(f"--tasks must be a subset of {TASKS}, got {self.tasks!r}")
        return names


@dataclass
class EvalConfig:
    """Evaluate a finished run's best checkpoint on a split (adapterlab-vl eval)."""

    run: str = "runs/vl/vqa-p_adapter"
    """Run directory written by adapterlab-vl train or sweep."""
    split: str = "test"
    """Split: val or test."""
    batch_size: int = 32
    """Evaluation batch size."""


@dataclass
class SynthConfig:
    """Write the embedded synthetic scenes in the VQAv2 and COCO Karpathy layouts."""

    out: str = "data/vl-synth"
    """Destination folder (coco/ and vqav2/ are written inside)."""
    restval: int = 800
    """Images for the captioning pre-training (Karpathy restval, caption style A)."""
    train: int = 500
    """Karpathy train images (3 questions and style-B captions each)."""
    val: int = 100
    """Karpathy val images."""
    test: int = 150
    """Karpathy test images."""
    distractors: int = 12
    """At most this many small distractor shapes per train / val / test image; 0: clean scenes."""
    seed: int = 0
    """Random seed."""


@dataclass
class ConvertConfig:
    """Convert a released BLIP pre-training checkpoint (.pth) to transformers folders."""

    checkpoint: str = "model_base_capfilt_large.pth"
    """The BLIP pre-training checkpoint (salesforce/BLIP); read with torch.load(weights_only=True)."""
    out: str = "models/blip-pretrained"
    """Destination: <out>/caption and <out>/vqa (config.json + model.safetensors)."""
    tokenizer: str | None = None
    """Folder with bert-base-uncased's vocab.txt (BLIP's tokenizer; [DEC] / [ENC] are added)."""
    heads: int | None = None
    """Attention heads (not stored in the weights). None: width // 64 (12 for BLIP-base)."""
