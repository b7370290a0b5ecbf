"""The helpers every domain package shares: evaluate() (the Trainer's own evaluation loop),
resolve_device, progress_enabled, atomic writes, the full-disk message and pickle refusal."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
from adapterlab.core.engine import (
    DiskFullError,
    PickleRefusedError,
    TrainConfig,
    Trainer,
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_temp_leftovers,
    evaluate,
    explain_disk_full,
    load_weights,
    native_bf16,
    progress_enabled,
    refuse_pickle,
    resolve_compute_dtype,
    resolve_device,
)
from adapterlab.core.engine import device as device_module
from adapterlab.core.engine.toy import ToyClusters, build_toy_model, toy_eval_step, toy_loss
from safetensors import SafetensorError
from safetensors.torch import save_file
from torch.utils.data import DataLoader

# --------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A toy model after a few steps (so the metrics are not those of the identity adapter)."""
    out = tmp_path_factory.mktemp("eval") / "run"
    config = TrainConfig(
        output_dir=str(out), max_steps=6, batch_size=8, lr=3e-2, progress=False, plots=False
    )
    trainer = Trainer(
        build_toy_model(seed=2),
        config,
        train_data=ToyClusters(48, seed=3),
        loss_fn=toy_loss,
        eval_step=toy_eval_step,
    )
    trainer.fit()
    return trainer


def test_evaluate_on_a_dataset_equals_trainer_evaluate(trained):
    data = ToyClusters(37, seed=3, split_seed=4)  # 37: a short last batch
    expected = trained.evaluate(data)
    model = trained.unwrapped_model
    model.train()
    got = evaluate(model, data, toy_eval_step, batch_size=8, device="cpu", progress=False)
    assert got == expected
    assert set(got) == {"loss", "accuracy", "num_samples"} and got["num_samples"] == 37
    assert model.training  # the caller's mode is restored


def test_evaluate_on_a_dataloader_equals_trainer_evaluate(trained):
    data = ToyClusters(37, seed=3, split_seed=4)
    expected = trained.evaluate(data)
    loader = DataLoader(data, batch_size=5, shuffle=False)
    got = evaluate(trained.unwrapped_model, loader, toy_eval_step, device="cpu", progress=False)
    assert got["accuracy"] == expected["accuracy"] and got["num_samples"] == 37
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)  # other batch boundaries


def test_evaluate_hands_all_samples_to_metric_fn(trained):
    data = ToyClusters(21, seed=3, split_seed=5)
    seen = {}

    def metric_fn(outputs):
        seen.update(outputs)
        return {"mean_target": outputs["target"].float().mean().item()}

    got = evaluate(
        trained.unwrapped_model, data, toy_eval_step, metric_fn, batch_size=4, progress=False
    )
    assert torch.equal(seen["target"], data.y)
    assert seen["logits"].shape == (21, 4)
    assert got["mean_target"] == pytest.approx(data.y.float().mean().item())


# --------------------------------------------------------------- device and progress


def test_auto_compute_dtype_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not native_bf16("cpu")
    assert resolve_compute_dtype("auto", "cpu") == torch.float32  # emulated bf16 is slow
    assert resolve_compute_dtype("bfloat16", "cpu") == torch.bfloat16  # an explicit choice stays
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16("cpu") and resolve_compute_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_compute_dtype("auto", "cuda") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_compute_dtype("auto", "cuda:0") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown compute dtype 'bf16'"):
        resolve_compute_dtype("bf16", "cpu")


def test_resolve_device_errors_name_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda:0' was requested but CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS is not available"):
        resolve_device("mps")
    assert resolve_device(None) == resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_resolve_device_refuses_a_missing_gpu_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        resolve_device("cuda:3")
    assert resolve_device(None) == torch.device("cuda")


def test_progress_is_quiet_under_ci_and_when_not_asked(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled(True) and progress_enabled(None)
    assert not progress_enabled(False)
    assert not progress_enabled(True, is_main=False)
    monkeypatch.setenv("CI", "1")
    assert not progress_enabled(True)


# --------------------------------------------------------------- atomic writes


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old\n")

    def failing_fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write_bytes(target, b"new and half-written")
    assert target.read_text() == "old\n"
    assert _hidden(tmp_path) == []


def test_atomic_json_is_complete_and_json_safe(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"acc": torch.tensor(0.5), "bad": float("nan"), "p": tmp_path})  # fmt: skip
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "acc": 0.5,
        "bad": "nan",
        "p": str(tmp_path),
    }


def test_atomic_directory_leaves_the_old_folder_when_the_writer_raises(tmp_path):
    folder = tmp_path / "item"
    atomic_directory(folder, lambda d: (d / "a.txt").write_text("first"))

    def half_then_crash(d: Path) -> None:
        (d / "a.txt").write_text("second")
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        atomic_directory(folder, half_then_crash)
    assert [p.name for p in folder.iterdir()] == ["a.txt"]
    assert (folder / "a.txt").read_text() == "first"
    assert _hidden(tmp_path) == []


def test_atomic_directory_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):
    folder = tmp_path / "item"
    atomic_directory(folder, lambda d: (d / "a.txt").write_text("first"))
    real_replace, calls = os.replace, []

    def replace_failing_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # old folder moved away, new one not yet in place
            raise OSError(errno.EIO, "rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_second)
    with pytest.raises(OSError, match="rename failed"):
        atomic_directory(folder, lambda d: (d / "a.txt").write_text("second"))
    monkeypatch.undo()
    assert (folder / "a.txt").read_text() == "first"
    assert _hidden(tmp_path) == []


def test_clean_temp_leftovers_removes_temporaries_and_restores_a_lost_target(tmp_path):
    (tmp_path / ".out.json.tmp123").write_text("half")
    (tmp_path / ".render.tmp-abc").mkdir()
    (tmp_path / ".kept.old-9").mkdir()  # killed between the renames: "kept" itself is gone
    (tmp_path / ".kept.old-9" / "x").write_text("previous version")
    (tmp_path / "done").mkdir()
    (tmp_path / ".done.old-9").mkdir()  # killed after the swap: the old copy is garbage
    removed = clean_temp_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == [".done.old-9", ".out.json.tmp123", ".render.tmp-abc"]
    assert (tmp_path / "kept" / "x").read_text() == "previous version"
    assert _hidden(tmp_path) == []


# --------------------------------------------------------------- full disk


def test_full_disk_errors_name_the_file_and_the_cause(tmp_path):
    rust = SafetensorError("Error while serializing: I/O error: File too large (os error 27)")
    with pytest.raises(DiskFullError) as info, explain_disk_full(tmp_path / "w.safetensors"):
        raise rust
    message = str(info.value)
    assert message.startswith(f"cannot write {tmp_path / 'w.safetensors'}: disk full or file-size")
    assert "File too large" in message and "\n" not in message
    assert info.value.errno == errno.EFBIG and info.value.__cause__ is rust

    jsonl = tmp_path / "metrics.jsonl"
    with pytest.raises(DiskFullError, match="No space left") as info, explain_disk_full(jsonl):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(
        tmp_path / "metrics.jsonl"
    )

    with pytest.raises(PermissionError), explain_disk_full(tmp_path):  # other errors pass through
        raise PermissionError(errno.EACCES, "Permission denied")


# --------------------------------------------------------------- pickles


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_pickled_checkpoints_are_refused_in_one_line(tmp_path, zipfile):
    path = tmp_path / "ViT-B-16.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=zipfile)
    for load in (load_weights, refuse_pickle):
        with pytest.raises(PickleRefusedError) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(f"{path} is a pickled checkpoint: pickles are not loaded")
        assert "safetensors" in message and "weights_only=True" in message


def test_load_weights_reads_safetensors_and_names_bad_files(tmp_path):
    good = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(6.0).reshape(2, 3)}, str(good))
    refuse_pickle(good)  # not a pickle: no error
    assert torch.equal(load_weights(good)["w"], torch.arange(6.0).reshape(2, 3))
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"torn\.safetensors is not a readable safetensors file"):
        load_weights(torn)
    with pytest.raises(FileNotFoundError, match="missing.safetensors does not exist"):
        load_weights(tmp_path / "missing.safetensors")


def test_run_subcommands_exit_codes_and_json(capsys) -> None:
    """Usage errors exit 2, expected errors one line + exit 1, results print as JSON."""
    import dataclasses
    import json

    from adapterlab.core.engine import Subcommand, run_subcommands

    @dataclasses.dataclass
    class Cfg:
        """Double a number."""

        x: int = 1
        """The number."""

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("x must be >= 0")

    def double(cfg: Cfg) -> dict:
        if cfg.x == 13:
            raise FileNotFoundError("no such thing: 13")
        return {"y": 2 * cfg.x}

    commands = {"double": Subcommand(Cfg, double)}
    assert run_subcommands("prog", "usage text", commands, []) == 2
    assert run_subcommands("prog", "usage text", commands, ["--help"]) == 0
    assert "usage text" in capsys.readouterr().out
    assert run_subcommands("prog", "usage text", commands, ["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert run_subcommands("prog", "usage text", commands, ["double", "--x", "4"]) == 0
    assert json.loads(capsys.readouterr().out) == {"y": 8}
    assert run_subcommands("prog", "usage text", commands, ["double", "--x", "-1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "prog double: error: x must be >= 0"
    assert run_subcommands("prog", "usage text", commands, ["double", "x=13"]) == 1
    assert "no such thing: 13" in capsys.readouterr().err


def test_run_subcommands_reports_an_interruption_in_one_line(capsys) -> None:
    """TrainingInterrupted from a handler: one line on stderr, exit 128 + signal, no traceback."""
    import dataclasses

    from adapterlab.core.engine import Subcommand, TrainingInterrupted, run_subcommands

    @dataclasses.dataclass
    class Cfg:
        """Train."""

        signum: int = 15
        """The signal that arrives."""

    def train(cfg: Cfg) -> None:
        raise TrainingInterrupted("stopped", signum=cfg.signum, checkpoint="run/step_3")

    commands = {"train": Subcommand(Cfg, train)}
    assert run_subcommands("prog", "usage", commands, ["train"]) == 143
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "prog train: interrupted by signal 15 (last checkpoint: run/step_3)"
    ]
    assert "Traceback" not in err
    hint = "a rerun starts over"
    assert (
        run_subcommands("prog", "usage", commands, ["train", "--signum", "2"], interrupt_hint=hint)
        == 130
    )
    assert capsys.readouterr().err.strip() == (
        "prog train: interrupted by signal 2 (last checkpoint: run/step_3); a rerun starts over"
    )
