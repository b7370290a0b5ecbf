"""MoSA adapter layer: a bottleneck adapter whose projections are split into sparse experts.

Zhang et al., "Split & Merge: Unlocking the Potential of Visual Adapters via Sparse Training"
(MoSA, arXiv:2312.02923), code: Theia-4869/MoSA ``src/models/vit_adapter/vit_mosa.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..bottleneck.layer import BottleneckAdapter
from .experts import SparseExpertLinear

__all__ = ["MoSAAdapter"]


class MoSAAdapter(BottleneckAdapter):
    """Bottleneck adapter with ``num_experts`` sparse experts in ``down`` and/or ``up``.

    - Training mode: each forward pass draws one expert for ``down`` and one for ``up``
      independently and uniformly (the authors' ``A, B = randint(...)`` per block), unless
      :attr:`forced_expert` is set. Only the drawn experts receive gradients.
    - Eval mode: the merged layer (``merge_mode``) runs, i.e. exactly what the plain bottleneck
      adapter produced by :meth:`to_bottleneck` computes.

    ``share="down"`` (or ``"up"``) keeps that projection a single dense Linear trained at every
    step (the authors' ``SHARE``). Initialisation as the plain adapter: Kaiming-uniform ``down``,
    zero ``up``, zero biases, identical for every expert.
    """

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        *,
        num_experts: int = 4,
        share: str | None = None,
        merge_mode: str = "add",
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dim, bottleneck, **kwargs)
        self.num_experts = num_experts
        self.share = share
        self.merge_mode = merge_mode
        #: run this expert index in training instead of drawing one (``None`` = draw).
        self.forced_expert: int | None = None
        #: the experts the last training forward used, ``(down, up)`` (``None`` where shared).
        self.last_experts: tuple[int | None, int | None] = (None, None)
        if share != "down":
            self.down = SparseExpertLinear(
                self.down.weight, self.down.bias, num_experts, generator=generator
            )
        if share != "up":
            self.up = SparseExpertLinear(
                self.up.weight, self.up.bias, num_experts, generator=generator
            )

    def _draw(self) -> int:
        if self.forced_expert is not None:
            if not 0 <= self.forced_expert < self.num_experts:
                raise ValueError(
                    f"forced_expert {self.forced_expert} out of range [0, {self.num_experts})"
                )
            return self.forced_expert
        return int(torch.randint(self.num_experts, ()).item())

    def _project(self, layer: nn.Module, h: torch.Tensor, expert: int | None) -> torch.Tensor:
        if isinstance(layer, SparseExpertLinear):
            return layer(h, expert, self.merge_mode)
        return layer(h)

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        if self.training:
            e_down = self._draw() if isinstance(self.down, SparseExpertLinear) else None
            e_up = self._draw() if isinstance(self.up, SparseExpertLinear) else None
            self.last_experts = (e_down, e_up)
        else:
            e_down = e_up = None
        z = self.dropout(self.act(self._project(self.down, h, e_down)))
        return self._project(self.up, z, e_up) * self.scaling

    @torch.no_grad()
    def merged_linears(self) -> tuple[nn.Linear, nn.Linear]:
        """Plain ``(down, up)`` Linears holding the merged weights."""
        out = []
        for layer in (self.down, self.up):
            if isinstance(layer, SparseExpertLinear):
                weight, bias = layer.merged(self.merge_mode)
                lin = nn.Linear(layer.in_features, layer.out_features, bias=bias is not None)
                lin = lin.to(device=weight.device, dtype=weight.dtype)
                lin.weight.copy_(weight)
                if bias is not None:
                    lin.bias.copy_(bias)
            else:
                lin = nn.Linear(layer.in_features, layer.out_features).to(
                    device=layer.weight.device, dtype=layer.weight.dtype
                )
                lin.load_state_dict(layer.state_dict())
            out.append(lin)
        return out[0], out[1]

    def to_bottleneck(self) -> BottleneckAdapter:
        """A plain :class:`BottleneckAdapter` computing exactly this adapter's eval forward."""
        down, up = self.merged_linears()
        plain = BottleneckAdapter(
            down.in_features,
            down.out_features,
            placement=self.placement,
            scaling=self.scaling,
            residual=self.residual,
        )
        plain.act = self.act
        plain.dropout = nn.Dropout(self.dropout.p)
        plain.down, plain.up = down, up
        return plain.train(self.training)
