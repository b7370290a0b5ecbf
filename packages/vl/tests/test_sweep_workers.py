"""Runs trained side by side in spawned processes score exactly as the same runs trained one
after another in this process."""

from __future__ import annotations

import json

from adapterlab.vl.config import RunConfig, SweepConfig
from adapterlab.vl.workers import train_runs


def test_parallel_runs_equal_serial(prepared, tmp_path) -> None:
    out, prep = prepared
    base = RunConfig(out=str(out), pretrain_epochs=8, epochs=1, progress=False)
    pairs = [("vqa", "p_adapter"), ("caption", "adapter")]

    def jobs(folder: str) -> list[tuple[RunConfig, str]]:
        return [
            (
                RunConfig(**{**base.to_dict(), "task": t, "method": m}),
                str(tmp_path / folder / f"{t}-{m}"),
            )
            for t, m in pairs
        ]

    serial = train_runs(jobs("serial"), prep, workers=1, threads=1)
    parallel = train_runs(jobs("parallel"), prep, workers=2, threads=1)
    assert [r["test"] for r in parallel] == [r["test"] for r in serial]
    for t, m in pairs:  # same training curve, not only the same final score
        a = (tmp_path / "serial" / f"{t}-{m}" / "metrics.jsonl").read_text().splitlines()
        b = (tmp_path / "parallel" / f"{t}-{m}" / "metrics.jsonl").read_text().splitlines()
        loss = [[json.loads(x).get("loss") for x in rows] for rows in (a, b)]
        assert loss[0] == loss[1]


def test_workers_default() -> None:
    assert SweepConfig(data="/real", workers=None).resolved_workers() == 1
    assert SweepConfig(workers=3).resolved_workers() == 3
