"""Toy runs that die at chosen points, for test_run_dir_safety.py (run as a child process).

Usage: python interrupted_run.py ROOT. The imports are paid once; each mode then runs in a forked
process on ``ROOT/<mode>``, and ``ROOT/results.json`` maps each mode to its exit code (-9 for
SIGKILL) and its last printed line. The modes:
- ``kill-best``: SIGKILL just before the first ``<run>/best`` swap (leaves ``.best.tmp*``);
- ``kill-step``: SIGKILL just before checkpoint step 3 is renamed into place (leaves
  ``checkpoints/.tmp_step_00000003``);
- ``fsize``: a 4 KiB file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored) from the start of
  ``fit``: the first checkpoint write fails as on a full disk; prints the error's message last.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from pathlib import Path

from adapterlab.core.engine import DiskFullError, TrainConfig, Trainer
from adapterlab.core.engine import checkpoint as checkpoint_module
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss

KILL_AT = {"kill-best": "best", "kill-step": "step_00000003"}


def make_trainer(out: str, **overrides) -> Trainer:
    """The run every mode uses (the test resumes it in-process with the same settings)."""
    settings = dict(
        output_dir=out,
        max_steps=4,
        batch_size=8,
        lr=1e-2,
        save_every_steps=1,
        eval_every_steps=2,
        keep_last=5,
        log_every=1,
        seed=3,
        progress=False,
        plots=False,
    )
    settings.update(overrides)
    return Trainer(
        build_toy_model(seed=1),
        TrainConfig(**settings),
        train_data=ToyClusters(64, seed=4),
        eval_data=ToyClusters(16, seed=4, split_seed=1),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
    )


def run_mode(out: str, mode: str) -> int:
    """Run one mode in this process; returns its exit code (the kills never return)."""
    trainer = make_trainer(out)
    if mode in KILL_AT:
        real_replace = checkpoint_module.replace_dir

        def dying_replace(src, dst):
            if dst.name == KILL_AT[mode]:
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)

        checkpoint_module.replace_dir = dying_replace
    elif mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    try:
        trainer.fit()
    except DiskFullError as err:
        Path(out + ".message").write_text(f"DiskFullError: {err}")
        return 3
    return 0


def main(root: str) -> None:
    results = {}
    for mode in ("kill-best", "kill-step", "fsize"):
        out = str(Path(root) / mode)
        pid = os.fork()
        if pid == 0:  # the child: one interrupted run
            code = 1
            try:
                code = run_mode(out, mode)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        message = Path(out + ".message")
        results[mode] = {
            "exit_code": os.waitstatus_to_exitcode(status),
            "message": message.read_text() if message.exists() else "",
        }
    (Path(root) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
