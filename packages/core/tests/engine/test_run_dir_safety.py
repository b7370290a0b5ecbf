"""Run directories never lose data: resume refuses (deleting nothing) when no checkpoint can be
resumed, falls back past a corrupt newest checkpoint to the newest intact one (and says so),
cleans the leftovers of a killed write at the next start, and a full disk names the file."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adapterlab.core.engine import CheckpointError, list_checkpoints
from safetensors.torch import load, load_file

SCRIPT = Path(__file__).with_name("interrupted_run.py")
LOGGER = "adapterlab.core.engine"


def _script():
    spec = importlib.util.spec_from_file_location("engine_interrupted_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_script = _script()


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory with its bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 4-step run: checkpoints at steps 1-4, best/ from the evaluations at 2 and 4."""
    out = tmp_path_factory.mktemp("finished") / "run"
    run_script.make_trainer(str(out)).fit()
    assert [p.name for p in list_checkpoints(out)] == [f"step_0000000{i}" for i in (1, 2, 3, 4)]
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


def _resume(out: Path, **kw):
    return run_script.make_trainer(str(out), resume=True, **kw)


# --------------------------------------------------------------- nothing to resume from


def test_resume_with_only_incomplete_checkpoints_refuses_and_deletes_nothing(run_copy):
    for checkpoint in list_checkpoints(run_copy):  # killed before each trainer state was written
        (checkpoint / "trainer_state.json").unlink()
    before = _snapshot(run_copy)
    assert any(k.startswith("best/") for k in before) and before["metrics.jsonl"]
    with pytest.raises(CheckpointError) as info:
        _resume(run_copy).fit()
    message = str(info.value)
    assert "no checkpoint" in message and "is intact" in message
    assert "step_00000004: " in message and "trainer_state.json is missing" in message
    assert "nothing was deleted" in message and "overwrite=True" in message
    assert _snapshot(run_copy) == before


def test_resume_without_checkpoints_but_with_history_refuses(run_copy):
    shutil.rmtree(run_copy / "checkpoints")
    before = _snapshot(run_copy)
    with pytest.raises(FileExistsError, match=r"metrics\.jsonl with \d+ records, best/"):
        _resume(run_copy).fit()
    assert _snapshot(run_copy) == before


def test_resume_of_a_run_that_logged_nothing_starts_fresh(tmp_path, caplog):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("train: {}\n")
    (out / "metrics.jsonl").write_text("")
    with caplog.at_level(logging.WARNING, LOGGER):
        result = _resume(out, max_steps=1).fit()
    assert result.global_step == 1
    assert "has no checkpoint: starting a fresh run" in caplog.text


def test_overwrite_still_replaces_a_run_with_no_intact_checkpoint(run_copy):
    for checkpoint in list_checkpoints(run_copy):
        (checkpoint / "trainer_state.json").write_text("{")
    result = _resume(run_copy, overwrite=True, max_steps=1).fit()
    assert result.global_step == 1
    assert [p.name for p in (run_copy / "checkpoints").iterdir()] == ["step_00000001"]


# --------------------------------------------------------------- corrupt newest checkpoint


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CORRUPTIONS = {
    "truncated adapter": (
        lambda c: _truncate(c / "adapter" / "adapter.safetensors"),
        "adapter.safetensors is truncated or corrupt",
    ),
    "truncated optimiser": (
        lambda c: _truncate(c / "optim.safetensors"),
        "optim.safetensors is truncated or corrupt",
    ),
    "malformed trainer state": (
        lambda c: (c / "trainer_state.json").write_text('{"global_step": 4, "epo'),
        "trainer_state.json is not valid JSON",
    ),
    "trainer state of the wrong shape": (
        lambda c: (c / "trainer_state.json").write_text('{"global_step": "four"}'),
        "'global_step' is 'four', not a step count",
    ),
    "truncated copy of best/": (
        lambda c: _truncate(c / "best" / "adapter.safetensors"),
        "best/adapter.safetensors is truncated or corrupt",
    ),
    "truncated RNG state": (
        lambda c: _truncate(c / "rank0.safetensors"),
        "rank0.safetensors is truncated or corrupt",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_newest_checkpoint_falls_back_to_newest_intact(run_copy, corruption, caplog):
    newest = run_copy / "checkpoints" / "step_00000004"
    expected = load((newest / "adapter" / "adapter.safetensors").read_bytes())  # no mmap
    corrupt, problem = CORRUPTIONS[corruption]
    corrupt(newest)
    kept = _snapshot(newest)

    with caplog.at_level(logging.WARNING, LOGGER):
        result = _resume(run_copy).fit()

    assert problem in caplog.text
    assert "resuming from the older intact step_00000003" in caplog.text
    # the corrupt checkpoint is kept, renamed out of the way, byte for byte
    assert _snapshot(run_copy / "checkpoints" / "step_00000004.corrupt") == kept
    # resuming from step 3 redoes step 4 exactly as the uninterrupted run did
    assert result.global_step == 4
    final = load_file(str(newest / "adapter" / "adapter.safetensors"))
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    assert list_checkpoints(run_copy)[-1].name == "step_00000004"


def test_no_intact_checkpoint_is_a_clear_error(run_copy):
    for checkpoint in list_checkpoints(run_copy):
        _truncate(checkpoint / "optim.safetensors")
    before = _snapshot(run_copy)
    with pytest.raises(CheckpointError) as info:
        _resume(run_copy).fit()
    for step in (1, 2, 3, 4):
        assert f"step_0000000{step}: " in str(info.value)
    assert "optim.safetensors is truncated or corrupt" in str(info.value)
    assert _snapshot(run_copy) == before


# --------------------------------------------------------------- killed writes, full disk


@pytest.fixture(scope="module")
def children(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """The three interrupted runs (one child process that forks one run per mode)."""
    root = tmp_path_factory.mktemp("children")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "CI": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads((root / "results.json").read_text())
    return {mode: (root / mode, result) for mode, result in results.items()}


@pytest.mark.timeout(300)
def test_sigkill_before_best_swap_leftover_is_cleaned_and_resume_is_exact(
    children, tmp_path, caplog
):
    out, child = children["kill-best"]
    assert child["exit_code"] == -9
    leftovers = list(out.glob(".best.tmp*"))
    assert leftovers and not (out / "best").exists()

    with caplog.at_level(logging.WARNING, LOGGER):
        result = _resume(out).fit()
    assert "leftover(s) of an interrupted write" in caplog.text
    assert not any(p.exists() for p in leftovers)
    assert [p.name for p in out.rglob(".*")] == []

    # the resumed run ends exactly where an uninterrupted one does: best and last checkpoint
    ref = tmp_path / "ref"
    ref_result = run_script.make_trainer(str(ref)).fit()
    assert (result.global_step, result.best_step) == (ref_result.global_step, ref_result.best_step)
    for folder in ("best", "checkpoints/step_00000004/adapter"):
        got = load_file(str(out / folder / "adapter.safetensors"))
        want = load_file(str(ref / folder / "adapter.safetensors"))
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), folder


@pytest.mark.timeout(300)
def test_sigkill_before_checkpoint_rename_leftover_is_cleaned(children, caplog):
    out, child = children["kill-step"]
    assert child["exit_code"] == -9
    leftover = out / "checkpoints" / ".tmp_step_00000003"
    assert leftover.is_dir()
    assert list_checkpoints(out)[-1].name == "step_00000002"

    with caplog.at_level(logging.WARNING, LOGGER):
        result = _resume(out, max_steps=2).fit()  # nothing left to train: only the start runs
    assert result.global_step == 2
    assert not leftover.exists()
    assert "checkpoints/.tmp_step_00000003" in caplog.text
    assert [p.name for p in out.rglob(".*")] == []


@pytest.mark.timeout(300)
def test_file_size_limit_names_the_file_and_leaves_nothing_half_written(children):
    out, child = children["fsize"]
    assert child["exit_code"] == 3
    message = child["message"]
    assert "disk full or file-size limit reached" in message
    assert "File too large" in message
    assert f"cannot write {out / 'checkpoints'}" in message
    assert "SafetensorError" not in message
    assert not list((out / "checkpoints").glob(".tmp_step_*"))
    assert list_checkpoints(out) == []
    assert json.loads((out / "metrics.json").read_text())["status"] == "failed"
