"""The run directory's logs: config.yaml, metrics.jsonl, metrics.json and TensorBoard events.

Only the main process writes; on other processes every method is a no-op.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text, explain_disk_full, to_jsonable

__all__ = ["RunLogger"]


class RunLogger:
    """Appends metric records to ``metrics.jsonl`` and TensorBoard; writes the summaries."""

    def __init__(
        self, run_dir: Path, *, enabled: bool, keep_lines: int | None, purge_step: int | None
    ) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.jsonl = run_dir / "metrics.jsonl"
        self.lines = 0
        self._writer = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if keep_lines is None:
            atomic_write_text(self.jsonl, "")
        else:  # resume: drop records written after the checkpoint
            old = self.jsonl.read_text().splitlines(keepends=True) if self.jsonl.exists() else []
            atomic_write_text(self.jsonl, "".join(old[:keep_lines]))
            self.lines = min(keep_lines, len(old))
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
        self._file = self.jsonl.open("a")

    def write_config(self, config: dict[str, Any]) -> None:
        """``config.yaml``: the resolved configuration."""
        if self.enabled:
            atomic_write_text(
                self.run_dir / "config.yaml", yaml.safe_dump(to_jsonable(config), sort_keys=False)
            )

    def log(self, split: str, step: int, epoch: int, values: dict[str, float]) -> None:
        """One ``metrics.jsonl`` line and one TensorBoard scalar per value."""
        if not self.enabled:
            return
        record = {"split": split, "step": step, "epoch": epoch, **to_jsonable(values)}
        with explain_disk_full(self.jsonl):
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        self.lines += 1
        for key, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(f"{split}/{key}", value, step)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``metrics.json``: final and best values."""
        if self.enabled:
            atomic_write_text(
                self.run_dir / "metrics.json", json.dumps(to_jsonable(summary), indent=2) + "\n"
            )

    def close(self) -> None:
        """Flush and close the files."""
        if self.enabled and self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._file.close()
            self._writer = None
