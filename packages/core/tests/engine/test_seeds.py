"""Issue #19 item 4: repeated seeds (resolve, aggregate, format, paired difference, JSON)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from adapterlab.core.engine import (
    SeedSpec,
    SeedStats,
    aggregate_seeds,
    format_mean_std,
    paired_difference,
    parse_config,
    resolve_seeds,
    seeds_to_json,
)
from scipy import stats as scipy_stats


@pytest.mark.parametrize(
    ("spec", "seeds"),
    [
        (3, [0, 1, 2]),
        ("3", [0, 1, 2]),
        ("0,1,2", [0, 1, 2]),
        ("5,", [5]),
        ("[4, 9]", [4, 9]),
        ([5, 7], [5, 7]),
        ((1,), [1]),
        (None, [0]),
        ("", [0]),
    ],
)
def test_resolve_seeds(spec, seeds):
    assert resolve_seeds(spec) == seeds


def test_resolve_seeds_start_default_and_errors():
    assert resolve_seeds(2, start=10) == [10, 11]
    assert resolve_seeds(None, default=(3, 4)) == [3, 4]
    for bad in (0, "0", "a,b", "1,1", [], [-1], True, "3 seeds"):
        with pytest.raises(ValueError, match="seeds"):
            resolve_seeds(bad)


@dataclass
class _PipelineConfig:
    seeds: SeedSpec = 1
    """Seeds: a count (3 = seeds 0, 1, 2) or a list (0,1,2)."""


@pytest.mark.parametrize(
    ("argv", "seeds"),
    [
        ([], [0]),
        (["--seeds", "3"], [0, 1, 2]),
        (["--seeds=4,8"], [4, 8]),
        (["seeds=[5,7]"], [5, 7]),
    ],
)
def test_seeds_field_in_a_dataclass_cli(argv, seeds):
    assert resolve_seeds(parse_config(_PipelineConfig, argv).seeds) == seeds


def test_aggregate_mean_and_sample_std():
    per_seed = {
        0: {"accuracy": 0.80, "loss": 1.0, "name": "x"},
        1: {"accuracy": np.float64(0.84), "loss": torch.tensor(2.0)},
        2: {"accuracy": 0.86},
    }
    stats = aggregate_seeds(per_seed)
    assert set(stats) == {"accuracy", "loss"}  # the string is left out
    acc = stats["accuracy"]
    assert acc.n == 3 and acc.values == {0: 0.80, 1: 0.84, 2: 0.86}
    assert acc.mean == pytest.approx(np.mean([0.80, 0.84, 0.86]))
    assert acc.std == pytest.approx(np.std([0.80, 0.84, 0.86], ddof=1))
    assert stats["loss"].n == 2 and stats["loss"].mean == pytest.approx(1.5)
    one = SeedStats.from_values({4: 0.5})
    assert (one.std, one.n) == (0.0, 1)


def test_format_mean_std():
    st = SeedStats.from_values({0: 0.836, 1: 0.842, 2: 0.848})
    assert format_mean_std(st, scale=100) == "84.2 ± 0.6"
    assert st.format(digits=3) == "0.842 ± 0.006"
    assert format_mean_std(SeedStats.from_values({0: 0.842}), scale=100) == "84.2 (1 seed)"


def test_paired_difference_matches_scipy_paired_t_test():
    a = {0: 0.81, 1: 0.85, 2: 0.80, 3: 0.84}
    b = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.80}
    out = paired_difference(a, b)
    ref = scipy_stats.ttest_rel(list(a.values()), list(b.values()))
    assert out["t"] == pytest.approx(ref.statistic)
    assert out["p_value"] == pytest.approx(ref.pvalue)
    assert out["differences"]["1"] == pytest.approx(0.03)
    assert out["mean"] == pytest.approx(0.0175) and out["n"] == 4 and out["wins"] == 3
    single = paired_difference({0: 1.0}, {0: 0.5})
    assert single["t"] is None and single["p_value"] is None and single["wins"] == 1
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference({0: 1.0, 1: 1.0}, {0: 1.0})


def test_seeds_to_json_keeps_every_seed_and_is_json():
    per_seed = {0: {"acc": 0.5, "f1": np.float32(0.25)}, 1: {"acc": 0.7, "f1": 0.75}}
    out = json.loads(json.dumps(seeds_to_json(per_seed)))
    assert out["seeds"] == [0, 1]
    assert out["per_seed"]["1"] == {"acc": 0.7, "f1": 0.75}
    assert out["summary"]["acc"]["mean"] == pytest.approx(0.6)
    assert out["summary"]["f1"]["std"] == pytest.approx(math.sqrt(0.125))
    assert out["summary"]["acc"]["values"] == {"0": 0.5, "1": 0.7}
