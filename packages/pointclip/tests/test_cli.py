"""The adapterlab-clip2point CLI: --help of every command, errors, and a tiny end-to-end run."""

import json
import subprocess
import sys

import pytest
from adapterlab.pointclip.cli import classic_argv, main
from adapterlab.pointclip.errors import PretrainedWeightsError

COMMANDS = ["render-pairs", "pretrain", "zeroshot", "fewshot", "run-all"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"adapterlab-clip2point {command}" in out and "--" in out
    if command == "run-all":
        assert "--data" in out and "--model" in out and "--pretrained" in out and "--out" in out


def test_top_level_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS) and "examples:" in out


def test_usage_errors_exit_2_and_bad_values_exit_1(tmp_path, capsys):
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["run-all", "--no-such-flag", "1"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["zeroshot", "--data", str(tmp_path), "--projection", "nope"])
    assert info.value.code == 2
    capsys.readouterr()
    assert main(["zeroshot"]) == 1  # --data is required: one clear line
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data is required" in err


def test_classic_spellings_are_rewritten_for_parse_config():
    from adapterlab.pointclip.config import FewShotCommandConfig, PipelineConfig, RenderPairsConfig

    assert classic_argv(
        "run-all", PipelineConfig, ["--data-dir", "d", "--overwrite", "--no-progress"]
    ) == ["--data_dir", "d", "--overwrite", "true", "--progress", "false"]
    assert classic_argv(
        "fewshot", FewShotCommandConfig, ["--shots", "1", "2", "--seeds", "[0,1]", "--out", "o"]
    ) == ["--shots", "[1, 2]", "--seeds", "[0,1]", "--out", "o"]
    assert classic_argv("render-pairs", RenderPairsConfig, ["m", "o", "--views", "6"]) == [
        "--mesh_root=m",
        "--out_root=o",
        "--views",
        "6",
    ]


def test_missing_weights_offline_is_one_clear_line(tmp_path, capsys):
    code = main(
        [
            "run-all",
            "--model",
            "ViT-B-32",
            "--pretrained",
            str(tmp_path / "missing.safetensors"),
            "--out",
            str(tmp_path / "run"),
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # errors exit 1, usage errors 2 (as the other packages)
    assert len(err.strip().splitlines()) == 1
    assert "missing.safetensors" in err and "--pretrained none" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_python_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "adapterlab.pointclip", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "run-all" in out


def test_tiny_end_to_end_run(tmp_path, capsys):
    run, data = tmp_path / "run", tmp_path / "data"
    code = main(
        [
            "run-all",
            "--out",
            str(run),
            "--data-dir",
            str(data),
            "--per-class-train",
            "4",
            "--per-class-test",
            "1",
            "--image-size",
            "32",
            "--pretrain-epochs",
            "2",
            "--views-per-object",
            "1",
            "--fewshot-epochs",
            "2",
            "--fewshot-seeds",
            "0",
            "--shots",
            "2",
            "--pointclip-epochs",
            "1",
            "--pointclip-augment-copies",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "CLIP2Point summary" in out and "retrieval top-1" in out
    for name in (
        "config.yaml",
        "metrics.json",
        "curves.png",
        "views.png",
        "encoder/depth_encoder.safetensors",
        "encoder/adapter/adapter.safetensors",
        "fewshot_dpa/seed0/best/adapter.safetensors",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["checks"]) == {
        "retrieval_ge_5x_chance",
        "retrieval_above_untrained",
        "dpa_above_untrained_dpa",
        "dpa_above_chance",
    }
    assert metrics["pretrain"]["retrieval_chance"] == pytest.approx(0.1)  # 10 test meshes
    assert 0.0 <= metrics["fewshot"]["dpa"] <= 1.0 and metrics["fewshot"]["chance"] == 0.1
    assert 0.0 <= metrics["fewshot"]["pointclip_published"] <= 1.0
    assert "PointCLIP adapter (published recipe)" in out
    # every run records the weights it used: source and hashes
    weights = metrics["weights"]
    assert weights["source"] == "random init" and weights["pretrained"] == "none"
    assert len(weights["state_sha256"]) == 64 and weights["quick_gelu"] is False
    for sub in ("pretrain", "fewshot_dpa/seed0", "fewshot_pointclip_published/seed0"):
        assert json.loads((run / sub / "metrics.json").read_text())["weights"] == weights, sub
    # the same data and encoder work with the standalone zero-shot / few-shot commands
    mn = data / "embedded_modelnet_4x1_s0"
    enc = run / "encoder" / "depth_encoder.safetensors"
    assert (
        main(
            [
                "zeroshot",
                "--data",
                str(mn),
                "--ckpt",
                str(enc),
                "--image-size",
                "32",
                "--templates",
                "ensemble",
                "--out",
                str(tmp_path / "zs.json"),
            ]
        )
        == 0
    )
    zs = json.loads((tmp_path / "zs.json").read_text())
    assert zs["num"] == 10 and 0.0 <= zs["accuracy"] <= 1.0
    assert zs["weights"]["source"] == "random init" and len(zs["weights"]["state_sha256"]) == 64
    assert (
        main(
            [
                "fewshot",
                "--data",
                str(mn),
                "--ckpt",
                str(enc),
                "--image-size",
                "32",
                "--shots",
                "1",
                "2",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "fs"),
            ]
        )
        == 0
    )
    fs = json.loads((tmp_path / "fs" / "fewshot_results.json").read_text())
    assert set(fs["shots"]) == {"1", "2"}
    run_weights = json.loads((tmp_path / "fs" / "2shot_seed0" / "metrics.json").read_text())
    assert run_weights["weights"] == fs["weights"] and "state_sha256" in fs["weights"]
    # render-pairs + pretrain as separate commands
    pairs = tmp_path / "pairs"
    assert (
        main(
            [
                "render-pairs",
                str(mn),
                str(pairs),
                "--image-size",
                "32",
                "--points",
                "512",
                "--limit",
                "12",
            ]
        )
        == 0
    )
    assert len(list((pairs / "points").glob("*.npy"))) == 12
    assert (
        main(
            [
                "pretrain",
                "--pairs",
                str(data / "pairs" / "embedded_modelnet_4x1_s0_32px_10v_rl"),
                "--out",
                str(tmp_path / "pt"),
                "--image-size",
                "32",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "pt" / "depth_encoder.safetensors").is_file()
    pt_metrics = json.loads((tmp_path / "pt" / "metrics.json").read_text())
    assert pt_metrics["weights"]["source"] == "random init"


def test_detect_layout(tmp_path):
    from adapterlab.pointclip.pipeline import detect_layout

    (tmp_path / "mn" / "chair" / "train").mkdir(parents=True)
    (tmp_path / "mn" / "chair" / "train" / "a.off").write_text("OFF\n0 0 0\n")
    assert detect_layout(tmp_path / "mn") == "modelnet"
    shape = tmp_path / "sn" / "03001627" / "abc" / "models"
    shape.mkdir(parents=True)
    (shape / "model_normalized.obj").write_text("")
    assert detect_layout(tmp_path / "sn") == "shapenet"
    (tmp_path / "h5").mkdir()
    (tmp_path / "h5" / "ply_data_train0.h5").write_bytes(b"")
    assert detect_layout(tmp_path / "h5") == "modelnet_h5"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no known dataset"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_layout(tmp_path / "nope")


def test_paper_preset_and_one_source_of_defaults(capsys):
    """--preset paper resolves to the published settings; the pretrain subcommand and run-all
    take their defaults from the same preset_pretrain_config."""
    from adapterlab.pointclip import preset_pretrain_config

    assert main(["run-all", "--preset", "paper", "--dry-run"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert (o["model"], o["pretrained"], o["shots"], o["fewshot_epochs"]) == (
        "ViT-B-32",
        "openai",
        16,
        100,
    )
    paper = preset_pretrain_config("ViT-B-32", "openai")
    assert (o["pretrain_batch_size"], o["pretrain_epochs"], o["pretrain_lr"]) == (
        paper.batch_size,
        paper.epochs,
        paper.lr,
    )
    assert paper.scheduler == "cosine_restarts" and paper.mixed_precision == "no"
    assert (paper.batch_size, paper.epochs, paper.restart_epochs) == (256, 100, 2)


def test_explicit_flags_win_over_the_paper_preset(capsys):
    """--preset paper fills only what is not given: --shots 4 stays 4 (it was silently 16) and
    --model tiny stays tiny; each deviation from the paper is named."""
    from adapterlab.pointclip.config import PipelineConfig

    assert main(["run-all", "--preset", "paper", "--shots", "4", "--dry-run"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert (o["shots"], o["model"], o["pretrained"], o["num_views"]) == (
        4,
        "ViT-B-32",
        "openai",
        10,
    )
    assert main(["run-all", "--preset", "paper", "--model", "tiny", "--dry-run"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert (o["model"], o["pretrained"], o["shots"]) == ("tiny", "none", 16)
    cfg = PipelineConfig(preset="paper", shots=4, pretrain_epochs=100)
    assert cfg.preset_deviations() == {"shots": 4}
    assert PipelineConfig(preset="paper", model="tiny").preset_deviations() == {"model": "tiny"}
    assert PipelineConfig(shots=4).preset_deviations() == {}


def test_pretrained_default_is_resolved_for_every_subcommand(tmp_path, monkeypatch, capsys):
    """zeroshot, fewshot and pretrain ran on random ViT-B-32 weights by default (only run-all
    resolved --pretrained); now every subcommand and load_clip ask open_clip for 'openai'."""
    import open_clip
    from adapterlab.pointclip.config import FewShotCommandConfig, ZeroShotConfig
    from adapterlab.pointclip.models.clip import load_clip

    asked = []

    def offline(name, pretrained=None, **kwargs):
        asked.append((name, pretrained))
        raise RuntimeError("no network")

    monkeypatch.setattr(open_clip, "create_model", offline)
    mn = tmp_path / "mn"
    for split in ("train", "test"):
        (mn / "chair" / split).mkdir(parents=True)
        (mn / "chair" / split / "chair_0001.off").write_text(
            "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
        )
    (tmp_path / "pairs").mkdir()
    commands = [
        ["zeroshot", "--data", str(mn)],
        ["fewshot", "--data", str(mn), "--out", str(tmp_path / "fs")],
        ["pretrain", "--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "pt")],
        ["run-all", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "d")],
    ]
    for argv in commands:
        asked.clear()
        assert main([*argv, "--model", "ViT-B-32"]) == 1, argv
        assert asked == [("ViT-B-32", "openai")], argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pretrained='openai'" in err, err
    asked.clear()
    with pytest.raises(PretrainedWeightsError):
        load_clip("ViT-B-32", device="cpu")
    assert asked == [("ViT-B-32", "openai")]
    assert ZeroShotConfig(data="d", model="ViT-B-32").pretrained == "openai"
    assert FewShotCommandConfig(data="d", out="o", model="tiny").pretrained == "none"
    assert ZeroShotConfig(data="d", model="ViT-B-32", pretrained="None").pretrained == "none"


def test_every_readme_command_parses():
    """The README's commands (reproduction and reference) are exact: each parses into its
    subcommand's config with the values written there."""
    import shlex
    from pathlib import Path

    from adapterlab.core.engine import parse_config
    from adapterlab.pointclip.cli import COMMANDS, USAGE

    readme = Path(__file__).parents[1] / "README.md"
    text = readme.read_text().replace("\\\n", " ")
    usage = USAGE.replace("\\\n", " ").replace("  adapterlab-clip2point ", "adapterlab-clip2point ")
    parsed = {}
    for line in [*text.splitlines(), *usage.splitlines()]:
        line = line.split("#")[0].strip().replace("[--adapter lora]", "--adapter lora")
        if not line.startswith("adapterlab-clip2point ") or "--help" in line:
            continue
        argv = shlex.split(line)[1:]
        if "--model" in argv and argv[argv.index("--model") + 1] != "tiny":
            assert "--pretrained" in argv or "--preset" in argv, line  # say which weights
        cls = COMMANDS[argv[0]][0]
        parsed.setdefault(argv[0], []).append(
            parse_config(cls, classic_argv(argv[0], cls, argv[1:]))
        )
    assert set(parsed) == {"render-pairs", "pretrain", "zeroshot", "fewshot", "run-all"}
    assert parsed["render-pairs"][0].mesh_root == "/data/ShapeNetCore.v2"
    assert parsed["render-pairs"][0].random_light and parsed["render-pairs"][0].views == 10
    assert any(c.variant == "OBJ_BG" and c.data == "/data/h5_files" for c in parsed["zeroshot"])
    assert [c.shots for c in parsed["fewshot"]] == [[16], [1, 2, 4, 8, 16], [1, 2, 4, 8, 16]]
    assert all(c.seeds == [0, 1, 2] for c in parsed["fewshot"])


def test_subcommands_leave_defaults_to_the_training_configs():
    """One source of defaults: the subcommand configs leave every training setting unset (None)
    and the handlers fill them from PretrainConfig / preset_pretrain_config / FewShotConfig."""
    from dataclasses import fields

    from adapterlab.pointclip.config import FewShotCommandConfig, PretrainCommandConfig

    pre = PretrainCommandConfig(pairs="p", out="o")
    for name in ("epochs", "batch_size", "lr", "views_per_object", "jitter", "freeze_patch_embed"):
        assert getattr(pre, name) is None, name
    fs = FewShotCommandConfig(data="d", out="o")
    assert (fs.epochs, fs.lr, fs.batch_size) == (None, None, None)
    assert {f.name for f in fields(fs)} >= {"shots", "seeds", "head", "skip_bad"}
