"""``adapterlab-vl``: train / eval / sweep / synth for p-adapter and PETL baselines on BLIP."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapterlab.core.engine import Subcommand, run_subcommands

from .config import ConvertConfig, EvalConfig, RunConfig, SweepConfig, SynthConfig
from .data import DataError, SynthSpec, synthesize
from .methods import METHODS
from .models import ConversionError, ModelLoadError
from .multitask.config import MultiTaskConfig

USAGE = """usage: adapterlab-vl {train,eval,sweep,multitask,synth,convert} [options]

p-Laplacian adaptation (p-adapter, Wu et al. AAAI 2024) and PETL baselines on BLIP.

commands:
  train   train one method on one task (vqa or caption) and test its best checkpoint
  eval    evaluate a finished run's best checkpoint on val or test
  sweep   every method on VQA and captioning with the same data; writes sweep.md and sweep.json
  multitask  VL-Adapter's comparison: VQA + captioning in one BLIP (per-task / shared adapters,
          Hyperformer, Compacter, prompt, full); writes multitask.md and metrics.json
  synth   write the embedded synthetic scenes in the VQAv2 and COCO Karpathy layouts
  convert turn a BLIP pre-training checkpoint (.pth) into transformers folders (safetensors)

With no --data, train/sweep write the synthetic scenes, pre-train a tiny BLIP on their
captions, then adapt it. Real data: --data ROOT (ROOT/vqav2 with the VQAv2 json files,
ROOT/coco with train2014/, val2014/ and annotations/dataset_coco.json), with
--vqa_model / --caption_model (default Salesforce/blip-vqa-base and
Salesforce/blip-image-captioning-base, or local folders).

Run `adapterlab-vl <command> --help` for every option. Methods: {methods}
"""


def _train(cfg: RunConfig) -> dict:
    from .pipeline import prepare
    from .train import train

    return train(cfg, prepare(cfg, (cfg.task,)))


def _sweep(cfg: SweepConfig) -> None:
    from .pipeline import run_sweep

    run_sweep(cfg)


def _multitask(cfg: MultiTaskConfig) -> None:
    from .multitask.pipeline import run_multitask

    run_multitask(cfg)


def _eval(e: EvalConfig) -> dict:
    from .train import evaluate_run

    return evaluate_run(e.run, e.split, e.batch_size)


def _synth(s: SynthConfig) -> None:
    spec = SynthSpec(
        restval=s.restval,
        train=s.train,
        val=s.val,
        test=s.test,
        distractors=s.distractors,
        seed=s.seed,
    )
    print(f"wrote the synthetic VQAv2 / COCO scenes to {synthesize(s.out, spec)}")


def _convert(c: ConvertConfig) -> None:
    from .models import convert_blip_checkpoint

    out = convert_blip_checkpoint(c.checkpoint, c.out, tokenizer=c.tokenizer, heads=c.heads)
    print(f"wrote {out['caption']} and {out['vqa']}")


COMMANDS = {
    "train": Subcommand(RunConfig, _train),
    "eval": Subcommand(EvalConfig, _eval),
    "sweep": Subcommand(SweepConfig, _sweep),
    "multitask": Subcommand(MultiTaskConfig, _multitask),
    "synth": Subcommand(SynthConfig, _synth),
    "convert": Subcommand(ConvertConfig, _convert),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-vl`` and ``python -m adapterlab.vl``."""
    usage = USAGE.replace("{methods}", ", ".join(METHODS))
    return run_subcommands(
        "adapterlab-vl", usage, COMMANDS, argv, errors=(ModelLoadError, DataError, ConversionError)
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
