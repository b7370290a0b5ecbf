"""AdapterHub (`adapters`) side of ``bench/bench_core.py``: a persistent seq_bn training worker.

Runs in its own uv environment because ``adapters`` pins an older ``transformers``::

    uv run --isolated --no-project --with adapters==1.3.0 --with transformers==4.57.6 \
        --with torch==2.13.0 python bench/_adapterhub_worker.py

It imports nothing from adapterlab: only the stdlib-level helpers of ``bench_core`` (same model
config, batch, optimizer and stdin/stdout protocol: ``steps N`` / ``report`` / ``quit``). The
model is the RoBERTa-base-sized classifier with AdapterHub's ``seq_bn`` (Pfeiffer) adapter,
trained with ``train_adapter`` (adapter + classification head, as the adapterlab side with
``modules_to_save=["classifier"]``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import build_roberta, make_batch, serve, train_step_fn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()

    import adapters
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    ids, labels = make_batch(args.batch, args.seq)

    def build():  # noqa: ANN202
        model = build_roberta(args.layers)
        adapters.init(model)
        model.add_adapter("bn", config="seq_bn")
        model.train_adapter("bn")
        step, info = train_step_fn(model, ids, labels)
        return step, {
            **info,
            "impl": "adapterhub_seq_bn",
            "active_adapters": str(model.active_adapters),
            "adapters_version": adapters.__version__,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    serve(build)


if __name__ == "__main__":
    main()
