"""Two processes match one: the same global batches under torchrun (gloo, CPU) give the same
adapter weights (within float tolerance) and the same gathered evaluation metrics."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adapterlab.core.engine import list_checkpoints

SCRIPT = Path(__file__).with_name("ddp_train.py")
TEARDOWN_ABORT = "terminate called without an active exception"


def _load_script():
    spec = importlib.util.spec_from_file_location("engine_ddp_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
def test_two_processes_match_one(tmp_path, read_adapter):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "CI": "1"}
    # `accelerate launch --cpu --num_processes 2` starts a single process on CPU (accelerate's
    # CPU multi-process path needs MPI), so the real two-process launch uses torchrun + gloo.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for attempt in range(2):
        out2 = tmp_path / f"two-{attempt}"
        proc = subprocess.run(
            [*cmd, str(SCRIPT), str(out2), "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
        )
        # gloo on CPU occasionally aborts a rank at process teardown ("terminate called without
        # an active exception", a C++ thread destroyed while joinable): an upstream flake, not a
        # training error. Run once more, in a fresh folder, on that signature only.
        if proc.returncode == 0 or TEARDOWN_ABORT not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    one = _load_script().main(str(tmp_path / "one"), 1)

    two = json.loads((out2 / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["status"] == "completed"
    last1, last2 = list_checkpoints(one.run_dir)[-1], list_checkpoints(out2)[-1]
    assert last1.name == last2.name == "step_00000008"
    w1, w2 = read_adapter(last1 / "adapter"), read_adapter(last2 / "adapter")
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], rtol=1e-4, atol=1e-5, msg=key)
    # training moved the zero-initialised up-projections, so the comparison is not vacuous
    assert all(w1[k].abs().max() > 1e-3 for k in w1 if "up." in k)
    # the eval metrics were gathered from both shards: same samples, same values
    assert two["best_step"] == one.best_step
    assert two["best_metric"] == pytest.approx(one.best_metric, abs=1e-6)
    assert two["final"]["num_samples"] == 30 and two["test"]["num_samples"] == 27
    assert two["test"]["loss"] == pytest.approx(one.test_metrics["loss"], rel=1e-4)
    torch.testing.assert_close(
        read_adapter(out2 / "best"), read_adapter(one.run_dir / "best"), rtol=1e-4, atol=1e-5
    )
