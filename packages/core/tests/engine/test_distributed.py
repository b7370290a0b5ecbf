"""Two processes match one: the same global batches under torchrun (gloo, CPU) give the same
adapter weights (within float tolerance) and the same gathered evaluation metrics, under DDP and
under FSDP2 (frozen backbone sharded); an FSDP checkpoint resumes on two processes and on one."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adapterlab.core.engine import list_checkpoints

SCRIPT = Path(__file__).with_name("ddp_train.py")
FSDP_SCRIPT = Path(__file__).with_name("fsdp_train.py")
TEARDOWN_ABORT = "terminate called without an active exception"


def _load_script(path: Path = SCRIPT):
    spec = importlib.util.spec_from_file_location(f"engine_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torchrun(script: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``script OUT`` on two processes under torchrun; once more, in a clean ``out``, on gloo's
    teardown abort (see test_two_processes_match_one)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for _ in range(2):
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run(
            [*cmd, str(script), str(out)], env=env, capture_output=True, text=True, timeout=280
        )
        if proc.returncode == 0 or TEARDOWN_ABORT not in proc.stderr:
            break
    return proc


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


@pytest.mark.timeout(600)
def test_fsdp_two_processes_match_one_and_resume_on_one_or_two(tmp_path, read_adapter):
    """FSDP2 on 2 processes (gloo on CPU; NCCL where two GPUs are present): frozen weights sharded per block and at the root,
    adapter replicated. Checkpoints hold the full adapter; 2 processes equal 1 within float
    tolerance; a 2-process checkpoint resumed on 2 equals the uninterrupted run exactly, and
    resumed on 1 process equals it within tolerance."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CI": "1",
        "FSDP_TRANSFORMER_CLS_TO_WRAP": "ToyBlock",
    }
    if torch.cuda.device_count() < 2:  # one GPU per process (NCCL); else CPU processes over gloo
        env["CUDA_VISIBLE_DEVICES"] = ""
    out = tmp_path / "fsdp"
    proc = _torchrun(FSDP_SCRIPT, out, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    script = _load_script(FSDP_SCRIPT)
    one = script.run(tmp_path / "one", 8, fsdp=False)
    shutil.copytree(out / "at4", tmp_path / "one_resumed")
    resumed_on_one = script.run(tmp_path / "one_resumed", 8, fsdp=False, resume=True)

    full = json.loads((out / "full" / "metrics.json").read_text())
    assert full["world_size"] == 2 and full["status"] == "completed"
    final = "checkpoints/step_00000008/adapter"
    w_full = read_adapter(out / "full" / final)
    w_two = read_adapter(out / "resumed" / final)
    w_one = read_adapter(one.run_dir / final)
    w_2to1 = read_adapter(resumed_on_one.run_dir / final)
    assert w_full.keys() == w_one.keys() == w_two.keys() == w_2to1.keys()
    for key, value in w_full.items():
        assert value.shape == w_one[key].shape  # full, unsharded tensors in the checkpoint
        torch.testing.assert_close(w_two[key], value, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(w_one[key], value, rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(w_2to1[key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert all(w_full[k].abs().max() > 1e-3 for k in w_full if "up." in k)
    assert full["best_step"] == one.best_step
    assert full["test"]["num_samples"] == 27 and full["final"]["num_samples"] == 30
    assert full["test"]["loss"] == pytest.approx(one.test_metrics["loss"], rel=1e-4)


def test_deepspeed_stays_refused_with_a_clear_message(monkeypatch):
    from accelerate import DistributedType
    from adapterlab.core.engine import TrainConfig, Trainer
    from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_loss

    monkeypatch.setattr(
        "accelerate.Accelerator.distributed_type", DistributedType.DEEPSPEED, raising=False
    )
    with pytest.raises(NotImplementedError, match=r"DEEPSPEED is not supported.*--use_fsdp"):
        Trainer(build_toy_model(), TrainConfig(), train_data=ToyClusters(8), loss_fn=toy_loss)
