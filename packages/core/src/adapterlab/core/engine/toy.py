"""A tiny embedded task for the engine's example and tests: Gaussian clusters classified by a
frozen random MLP whose only trainable part is a bottleneck adapter (the head stays frozen too,
so anything learned is learned by the adapter)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

__all__ = ["ToyBlock", "ToyClusters", "ToyNet", "build_toy_model", "toy_eval_step", "toy_loss"]


class ToyBlock(nn.Module):
    """A residual MLP block (``mlp`` is where adapters go)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x)


class ToyNet(nn.Module):
    """``inp -> blocks -> head``; adapter targets: ``blocks.0.mlp``, ``blocks.1.mlp``."""

    def __init__(self, features: int = 8, dim: int = 16, classes: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(features, dim)
        self.blocks = nn.ModuleList([ToyBlock(dim) for _ in range(depth)])
        self.head = nn.Linear(dim, classes)

    targets = ["blocks.0.mlp", "blocks.1.mlp"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class ToyClusters(Dataset):
    """``n`` points around ``classes`` random centres; item = ``{"x": [features], "y": label}``.

    ``bad`` indices raise (to exercise bad-sample handling); ``describe(i)`` names a fake source.
    """

    def __init__(
        self,
        n: int = 256,
        *,
        features: int = 8,
        classes: int = 4,
        noise: float = 0.5,
        seed: int = 0,
        split_seed: int = 0,
        bad: tuple[int, ...] = (),
        name: str = "toy",
    ) -> None:
        centres = (
            torch.randn(classes, features, generator=torch.Generator().manual_seed(seed)) * 1.5
        )
        g = torch.Generator().manual_seed(seed * 1000 + split_seed + 1)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.x = centres[self.y] + noise * torch.randn(n, features, generator=g)
        self.bad = set(bad)
        self.name = name

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index in self.bad:
            raise OSError(f"corrupt record {index}")
        return {"x": self.x[index], "y": self.y[index]}

    def describe(self, index: int) -> str:
        """Where item ``index`` comes from."""
        return f"{self.name}/record_{index:05d}.pt"


def toy_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cross-entropy (and batch accuracy, logged)."""
    logits = model(batch["x"])
    loss = F.cross_entropy(logits.float(), batch["y"])
    return {"loss": loss, "batch_accuracy": (logits.argmax(-1) == batch["y"]).float().mean()}


def toy_eval_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-sample logits and targets plus the batch loss."""
    logits = model(batch["x"])
    return {
        "logits": logits,
        "target": batch["y"],
        "loss": F.cross_entropy(logits.float(), batch["y"]),
    }


def build_toy_model(seed: int = 0, *, dropout: float = 0.0, bottleneck_dim: int = 8) -> ToyNet:
    """A seeded ``ToyNet`` with a Pfeiffer bottleneck adapter named ``default`` on both blocks."""
    from adapterlab.core import add_adapter, get_config

    torch.manual_seed(seed)
    model = ToyNet()
    config = get_config(
        "pfeiffer", target_modules=ToyNet.targets, bottleneck_dim=bottleneck_dim, dropout=dropout
    )
    add_adapter(model, config)
    return model
