"""Low-bit bottleneck adapter: bias-free quantised down/up projections (Bi-Adapter's ``QLinear``).

Jie, Wang & Deng, "Revisiting the Parameter Efficiency of Adapters from the Perspective of
Precision Redundancy" (ICCV 2023), code: JieShibo/PETL-ViT ``binary_adapter/{utils,adaptformer}.py``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..bottleneck.layer import BottleneckAdapter
from .quant import STD_EPS, dequantise, fake_quantise, normal_codebook, quantise_indices

__all__ = ["QuantLinear", "LowBitAdapter"]


class QuantLinear(nn.Module):
    """Bias-free Linear whose weight is quantised to ``bits`` on the fly (straight-through).

    ``weight`` is the latent full-precision weight that training updates. The persistent buffer
    ``qstats = [mean, std]`` holds the standardisation statistics; it is refreshed whenever the
    state dict is taken, so a saved adapter (codes + ``qstats``) stands for exactly the weight
    the forward pass used.

    After ``load_state_dict`` the layer is *frozen*: it runs on the stored codes and statistics
    (``levels[idx] * std + mean``, bit-identical to the model that was saved). The first forward
    in training mode with gradients enabled unfreezes it and training resumes on the latent weight.
    ``bits=32`` is a plain full-precision layer (the paper's baseline).
    """

    def __init__(self, in_features: int, out_features: int, bits: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bits = bits
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default
        self.register_buffer("qstats", torch.zeros(2))
        if bits != 32:
            levels, thresholds = normal_codebook(bits)
            self.register_buffer("levels", levels, persistent=False)
            self.register_buffer("thresholds", thresholds, persistent=False)
        self.frozen = False
        self._frozen_index: torch.Tensor | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module._freeze())

    @property
    def quantised(self) -> bool:
        return self.bits != 32

    def current_stats(self) -> torch.Tensor:
        """``[mean, std]`` the layer quantises with right now (float32)."""
        if self.frozen:
            return self.qstats.detach().clone()
        w = self.weight.detach()
        return torch.stack([w.mean(), w.std()]).float()

    def codes(self) -> torch.Tensor:
        """Codebook index of every weight entry (``int64``, weight-shaped)."""
        if not self.quantised:
            raise ValueError("a 32-bit QuantLinear has no codes")
        if self.frozen and self._frozen_index is not None:
            return self._frozen_index
        stats = self.current_stats()
        w = (self.weight.detach() - stats[0]) / (stats[1] + STD_EPS)
        return quantise_indices(w, self.thresholds)

    def _freeze(self) -> None:
        if not self.quantised:
            return
        self.frozen = True
        self._frozen_index = None
        self._frozen_index = self.codes()

    def unfreeze(self) -> None:
        """Resume fake quantisation of the latent weight."""
        self.frozen = False
        self._frozen_index = None

    def quantised_weight(self) -> torch.Tensor:
        """The weight this layer applies (quantised unless ``bits=32``)."""
        if not self.quantised:
            return self.weight
        if self.frozen and self.training and torch.is_grad_enabled() and self.weight.requires_grad:
            self.unfreeze()
        if self.frozen:
            return dequantise(self.codes(), self.levels, self.qstats[0], self.qstats[1])
        return fake_quantise(self.weight, self.levels, self.thresholds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantised_weight().to(x.dtype))

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        if self.quantised:
            self.qstats.copy_(self.current_stats())
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


class LowBitAdapter(BottleneckAdapter):
    """Bottleneck adapter with bias-free :class:`QuantLinear` projections.

    As the authors' AdaptFormer adapter: ``up(dropout(act(down(h)))) * scaling``, no biases, the
    up-projection initialised from a truncated normal (std 1e-3, cut at +-2e-3) because an all-zero
    matrix has no spread to standardise (zeros at 32 bits).
    """

    def __init__(self, dim: int, bottleneck: int, *, bits: int, **kwargs: Any) -> None:
        super().__init__(dim, bottleneck, **kwargs)
        self.bits = bits
        self.down = QuantLinear(dim, bottleneck, bits)
        self.up = QuantLinear(bottleneck, dim, bits)
        if bits == 32:
            nn.init.zeros_(self.up.weight)
        else:
            nn.init.trunc_normal_(self.up.weight, mean=0.0, std=1e-3, a=-2e-3, b=2e-3)

    @torch.no_grad()
    def to_bottleneck(self) -> BottleneckAdapter:
        """A plain :class:`BottleneckAdapter` with the applied (dequantised) weights, zero biases."""
        down_w = self.down.quantised_weight().detach().clone()
        up_w = self.up.quantised_weight().detach().clone()
        plain = BottleneckAdapter(
            self.down.in_features,
            self.down.out_features,
            placement=self.placement,
            scaling=self.scaling,
            residual=self.residual,
        ).to(device=down_w.device, dtype=down_w.dtype)
        plain.act = self.act
        plain.dropout = nn.Dropout(self.dropout.p)
        plain.down.weight.copy_(down_w)
        plain.up.weight.copy_(up_w)
        plain.down.bias.zero_()
        plain.up.bias.zero_()
        return plain.train(self.training)
