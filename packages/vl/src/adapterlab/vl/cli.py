"""``adapterlab-vl``: train / eval / sweep / synth for p-adapter and PETL baselines on BLIP."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from adapterlab.core.engine import parse_config

from .config import EvalConfig, RunConfig, SweepConfig, SynthConfig
from .data import DataError, SynthSpec, synthesize
from .methods import METHODS
from .models import ModelLoadError

USAGE = """usage: adapterlab-vl {train,eval,sweep,synth} [options]

p-Laplacian adaptation (p-adapter, Wu et al. AAAI 2024) and PETL baselines on BLIP.

commands:
  train   train one method on one task (vqa or caption) and test its best checkpoint
  eval    evaluate a finished run's best checkpoint on val or test
  sweep   every method on VQA and captioning with the same data; writes sweep.md and sweep.json
  synth   write the embedded synthetic scenes in the VQAv2 and COCO Karpathy layouts

With no --data, train/sweep write the synthetic scenes, pre-train a tiny BLIP on their
captions, then adapt it. Real data: --data ROOT (ROOT/vqav2 with the VQAv2 json files,
ROOT/coco with train2014/, val2014/ and annotations/dataset_coco.json), with
--vqa_model / --caption_model (default Salesforce/blip-vqa-base and
Salesforce/blip-image-captioning-base, or local folders).

Run `adapterlab-vl <command> --help` for every option. Methods: {methods}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapterlab-vl`` and ``python -m adapterlab.vl``."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = USAGE.replace("{methods}", ", ".join(METHODS))
    if not args:
        print(usage, file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(usage)
        return 0
    command, rest = args[0], args[1:]
    prog = f"adapterlab-vl {command}"
    try:
        if command == "train":
            from .pipeline import prepare
            from .train import train

            cfg = parse_config(RunConfig, rest, prog=prog)
            print(json.dumps(train(cfg, prepare(cfg)), indent=2))
        elif command == "sweep":
            from .pipeline import run_sweep

            run_sweep(parse_config(SweepConfig, rest, prog=prog))
        elif command == "eval":
            from .train import evaluate_run

            e = parse_config(EvalConfig, rest, prog=prog)
            print(json.dumps(evaluate_run(e.run, e.split, e.batch_size), indent=2))
        elif command == "synth":
            s = parse_config(SynthConfig, rest, prog=prog)
            spec = SynthSpec(restval=s.restval, train=s.train, val=s.val, test=s.test, seed=s.seed)
            print(f"wrote the synthetic VQAv2 / COCO scenes to {synthesize(s.out, spec)}")
        else:
            print(f"unknown command {command!r}\n\n{usage}", file=sys.stderr)
            return 2
    except (ModelLoadError, DataError, FileNotFoundError, ValueError) as err:
        print(f"adapterlab-vl {command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
