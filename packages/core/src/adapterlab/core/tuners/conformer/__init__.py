"""Conformer adapter (Cappellazzo et al. 2024, "Parameter-Efficient Transfer Learning of Audio
Spectrogram Transformers"): a convolution module in bottleneck form.

``LN -> 1x1 conv d->2r -> GLU -> depthwise conv (kernel k, same padding) -> BatchNorm -> SiLU ->
1x1 conv r->d``, placed in parallel or sequentially like a bottleneck adapter. On a causal decoder
the depthwise conv pads on the left only (``causal``), as in causal conformers, so no position
sees a later token. Limits there (ours): in training mode BatchNorm normalises with statistics
over the whole batch, later tokens included (eval mode uses running statistics); and the conv has
no state in a KV cache, so ``generate`` needs ``use_cache=False`` to match a full forward pass.

Deviations from the PETL_AST code, both deliberate:
- the LayerNorm output is used (the original computes it and then discards it);
- the last 1x1 conv is zero-initialised so a fresh adapter changes nothing (the original keeps
  PyTorch's default init).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...architectures import is_causal_model
from ...config import register_preset
from ..base import SublayerAdapter
from ..bottleneck.config import BottleneckConfig
from ..registry import AdapterMethod, register_method
from ..sublayer import inject_bottleneck_like

__all__ = ["ConformerConfig", "ConformerAdapter"]


@dataclass
class ConformerConfig(BottleneckConfig):
    """Conformer adapter config; placement fields as :class:`BottleneckConfig`.

    Attributes:
        kernel_size: depthwise conv kernel (the study: 31 for speech, 8 for sound).
        batch_first: token tensors are ``[B, T, D]`` (else ``[T, B, D]``).
        causal: pad the depthwise conv on the left only (``k - 1`` past steps), so position
            ``t`` never sees a later token. ``None`` = on when the model is a causal decoder.
    """

    method = "conformer"

    reduction_factor: float = 8.0
    kernel_size: int = 31
    batch_first: bool = True
    causal: bool | None = None
    activation: str = "silu"

    def validate(self) -> None:
        super().validate()
        if self.kernel_size < 1:
            raise ValueError("kernel_size must be >= 1")


class ConformerAdapter(SublayerAdapter):
    """The conformer convolution module as an adapter branch (see module docstring)."""

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        *,
        kernel_size: int = 31,
        placement: str = "parallel",
        scaling: float = 1.0,
        dropout: float = 0.0,
        residual: bool = False,
        batch_first: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.placement = placement
        self.scaling = scaling
        self.residual = residual
        self.batch_first = batch_first
        self.causal = causal
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * bottleneck, kernel_size=1)
        self.glu = nn.GLU(dim=1)
        self.depthwise = nn.Conv1d(
            bottleneck,
            bottleneck,
            kernel_size,
            padding=0 if causal else "same",
            groups=bottleneck,
        )
        self.batch_norm = nn.BatchNorm1d(bottleneck)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)
        self.pointwise_out = nn.Conv1d(bottleneck, dim, kernel_size=1)
        nn.init.zeros_(self.pointwise_out.weight)
        nn.init.zeros_(self.pointwise_out.bias)

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        """The conformer branch on a ``[B, T, D]`` (or ``[T, B, D]``, or ``[B, D]``) tensor."""
        dtype, h = h.dtype, h.to(self.pointwise_in.weight.dtype)
        squeeze = h.dim() == 2
        if squeeze:
            h = h.unsqueeze(1)
        elif not self.batch_first:
            h = h.transpose(0, 1)
        z = self.norm(h).transpose(1, 2)  # [B, D, T]; the LN output is used
        z = self.glu(self.pointwise_in(z))
        if self.causal:  # left padding only: step t sees steps t-k+1..t
            z = F.pad(z, (self.depthwise.kernel_size[0] - 1, 0))
        z = self.act(self.batch_norm(self.depthwise(z)))
        z = (self.pointwise_out(self.dropout(z)).transpose(1, 2) * self.scaling).to(dtype)
        if squeeze:
            return z.squeeze(1)
        return z if self.batch_first else z.transpose(0, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.placement == "sequential":
            a = self.adapt(y)
            return y + a if self.residual else a
        out = y + self.adapt(x)
        return out + x if self.residual else out


def _inject(model: nn.Module, config: ConformerConfig, name: str) -> dict[str, nn.Module]:
    causal = is_causal_model(model) if config.causal is None else config.causal
    return inject_bottleneck_like(
        model,
        config,
        name,
        ConformerAdapter,
        "conformer",
        kernel_size=config.kernel_size,
        batch_first=config.batch_first,
        causal=causal,
    )


register_method(ConformerConfig, AdapterMethod(inject=_inject))
register_preset("conformer", "conformer", placement="parallel", locations=("ffn",))
register_preset("conformer_houlsby", "conformer", placement="parallel", locations=("attn", "ffn"))
register_preset("conformer_sequential", "conformer", placement="sequential", locations=("ffn",))
