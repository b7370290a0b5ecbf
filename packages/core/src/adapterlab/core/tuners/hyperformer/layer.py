"""Hyperformer's hypernetwork and the adapter layers it feeds (Karimi Mahabadi et al.,
"Parameter-efficient Multi-task Fine-tuning for Transformers via Shared Hypernetworks", ACL 2021;
code: rabeehk/hyperformer ``adapters/adapter_modeling.py`` and ``adapter_utils.py``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..base import SublayerAdapter
from ..bottleneck.layer import make_activation
from ..tasks import resolve_task_ids
from .config import HyperformerConfig

__all__ = ["HyperNetwork", "HyperformerAdapter"]


def _generator(in_dim: int, out_dim: int, std: float) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.zeros_(layer.bias)
    return layer


class HyperNetwork(nn.Module):
    """Task embeddings, layer-id (and block-type) embeddings, the task projector and the weight
    generators, shared by all adapter layers of one adapter.

    ``z = LN(P([task_emb; layer_emb(; block_emb)]))`` with ``P = Linear -> ReLU -> Linear``;
    ``down_w = G_dw(z) [m, d]``, ``down_b``, ``up_w [d, m]``, ``up_b`` and (conditional LN)
    ``gamma``, ``beta`` come from linear generators (as ``F.linear`` weights, not transposed).
    """

    def __init__(
        self, config: HyperformerConfig, dim: int, bottleneck: int, n_layers: int, blocks: int
    ) -> None:
        super().__init__()
        e, std = config.task_embedding_dim, config.generator_std
        self.dim, self.bottleneck = dim, bottleneck
        self.plus_plus = config.plus_plus
        self.task_embeddings = nn.Parameter(torch.randn(config.n_tasks, e))
        self.layer_embeddings = nn.Embedding(n_layers, e)
        if self.plus_plus:
            self.block_embeddings = nn.Embedding(2, e)
        parts = 3 if self.plus_plus else 2
        self.task_projector = nn.Sequential(
            _generator(parts * e, config.task_hidden_dim, std),
            nn.ReLU(),
            _generator(config.task_hidden_dim, config.projected_dim, std),
        )
        self.task_norm = nn.LayerNorm(config.projected_dim)
        p = config.projected_dim
        n_gen = 1 if self.plus_plus else blocks
        self.down_w = nn.ModuleList(_generator(p, bottleneck * dim, std) for _ in range(n_gen))
        self.down_b = nn.ModuleList(_generator(p, bottleneck, std) for _ in range(n_gen))
        self.up_w = nn.ModuleList(_generator(p, dim * bottleneck, std) for _ in range(n_gen))
        self.up_b = nn.ModuleList(_generator(p, dim, std) for _ in range(n_gen))
        if config.conditional_layer_norm:
            self.gamma = nn.ModuleList(_generator(p, dim, std) for _ in range(n_gen))
            self.beta = nn.ModuleList(_generator(p, dim, std) for _ in range(n_gen))
        else:
            self.gamma = self.beta = None

    def embedding(self, tasks: torch.Tensor, layer: int, block: int) -> torch.Tensor:
        """``z [len(tasks), projected_dim]`` for task ids ``tasks`` at ``layer`` / ``block``."""
        n = tasks.shape[0]
        parts = [
            self.task_embeddings[tasks],
            self.layer_embeddings.weight[layer].expand(n, -1),
        ]
        if self.plus_plus:
            parts.append(self.block_embeddings.weight[block].expand(n, -1))
        return self.task_norm(self.task_projector(torch.cat(parts, dim=-1)))

    def generate(self, tasks: torch.Tensor, layer: int, block: int) -> dict[str, torch.Tensor]:
        """The adapter weights for each task in ``tasks`` (leading dim ``len(tasks)``)."""
        z = self.embedding(tasks, layer, block)
        g = 0 if self.plus_plus else block
        n, d, m = z.shape[0], self.dim, self.bottleneck
        out = {
            "down_w": self.down_w[g](z).view(n, m, d),
            "down_b": self.down_b[g](z),
            "up_w": self.up_w[g](z).view(n, d, m),
            "up_b": self.up_b[g](z),
        }
        if self.gamma is not None:
            out["gamma"] = self.gamma[g](z)
            out["beta"] = self.beta[g](z)
        return out


class HyperformerAdapter(SublayerAdapter):
    """One adapter position: ``y + LN_{gamma,beta}(up(act(down(y))))`` with weights generated for
    each sample's task at this ``layer`` and ``block`` (0: attention, 1: FFN). The adapter that
    owns the :class:`HyperNetwork` registers it (``hypernet``); the others reference it."""

    def __init__(
        self,
        hypernet: HyperNetwork,
        owns: bool,
        layer: int,
        block: int,
        config: HyperformerConfig,
        tasks: Any,
    ) -> None:
        super().__init__()
        if owns:
            self.hypernet = hypernet
        self.__dict__["_hypernet"] = hypernet
        self.__dict__["_tasks"] = tasks
        self.layer, self.block, self.n_tasks = layer, block, config.n_tasks
        self.act = make_activation(config.activation)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        net: HyperNetwork = self.__dict__["_hypernet"]
        h = y.to(net.task_embeddings.dtype)
        ids = resolve_task_ids(
            self.__dict__["_tasks"], h.shape[0], self.n_tasks, h.device, "Hyperformer adapter"
        )
        unique, inverse = torch.unique(ids, return_inverse=True)
        w = {k: v[inverse] for k, v in net.generate(unique, self.layer, self.block).items()}
        flat = h.reshape(h.shape[0], -1, h.shape[-1])
        z = torch.baddbmm(w["down_b"].unsqueeze(1), flat, w["down_w"].transpose(1, 2))
        z = torch.baddbmm(w["up_b"].unsqueeze(1), self.act(z), w["up_w"].transpose(1, 2))
        if "gamma" in w:
            z = F.layer_norm(z, (z.shape[-1],)) * w["gamma"].unsqueeze(1) + w["beta"].unsqueeze(1)
        return y + z.reshape(h.shape).to(y.dtype)
