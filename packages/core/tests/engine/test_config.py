"""Configs: YAML + dotted overrides through jsonargparse, --help with every field, validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import yaml
from adapterlab.core.engine import TrainConfig, build_parser, parse_config


@dataclass
class Run:
    """A domain run config nesting the engine's settings."""

    name: str = "toy"
    """Run name."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Engine settings."""


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"name": "a", "train": {"lr": 0.5, "epochs": 3, "betas": [0.8, 0.9]}})
    )
    cfg = parse_config(
        Run,
        [
            "--config",
            str(path),
            "train.lr=1e-3",
            "--train.scheduler",
            "cosine",
            "--train.max_steps=7",
        ],
    )
    assert cfg.name == "a" and isinstance(cfg.train, TrainConfig)
    assert cfg.train.lr == 1e-3 and cfg.train.epochs == 3 and cfg.train.betas == (0.8, 0.9)
    assert cfg.train.scheduler == "cosine" and cfg.train.max_steps == 7


def test_flat_train_config_round_trips_through_its_yaml(tmp_path):
    original = TrainConfig(lr=0.25, optimizer="sgd", warmup_steps=4, max_grad_norm=1.0)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(original.to_dict()))
    assert parse_config(TrainConfig, ["--config", str(path)]) == original


def test_parser_has_config_flag():
    assert "--config" in build_parser(Run).format_help()


def test_help_lists_every_field_with_default_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        parse_config(Run, ["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainConfig):
        assert f"--train.{f.name}" in text, f.name
    assert "Peak learning rate" in text and "default: 0.001" in text
    assert "Global training batch" in text and "default: 32" in text


@pytest.mark.parametrize("bad", [["train.optimizer=adam"], ["train.nope=1"], ["train.lr=fast"]])
def test_bad_values_are_rejected(bad):
    with pytest.raises(SystemExit):
        parse_config(Run, bad)


@pytest.mark.parametrize(
    ("field_name", "value"), [("grad_accum", 0), ("keep_last", 0), ("scheduler", "step")]
)
def test_validation_names_the_field(field_name, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field_name}"):
        TrainConfig(**{field_name: value})
