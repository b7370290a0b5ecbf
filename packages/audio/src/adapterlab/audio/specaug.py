"""SpecAugment (Park et al., 2019) as PETL-AST applies it to ESC-50 and US8K training clips.

One frequency mask (width uniform in [0, 24) bins) and one time mask (width uniform in [0, 80) frames) per clip,
filled with 0 (the AudioSet-normalised features' value), via ``torchaudio.transforms`` like the original.
"""

from __future__ import annotations

import torch
from torch import nn
from torchaudio import transforms as T


class SpecAugment(nn.Module):
    """Mask one random band of mel bins and one random span of frames of ``[T, F]`` or ``[B, T, F]`` features."""

    def __init__(self, freq_mask: int = 24, time_mask: int = 80, mask_value: float = 0.0):
        super().__init__()
        if freq_mask < 0 or time_mask < 0:
            raise ValueError(
                f"mask widths must be >= 0, got freq_mask={freq_mask}, time_mask={time_mask}"
            )
        self.freq_mask, self.time_mask, self.mask_value = (
            int(freq_mask),
            int(time_mask),
            float(mask_value),
        )
        self.freq = T.FrequencyMasking(self.freq_mask, iid_masks=True)
        self.time = T.TimeMasking(self.time_mask, iid_masks=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        single = features.dim() == 2
        x = features.unsqueeze(0) if single else features
        if x.dim() != 3:
            raise ValueError(
                f"SpecAugment expects [T, F] or [B, T, F], got {tuple(features.shape)}"
            )
        spec = x.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T] as torchaudio expects
        if self.freq_mask > 0:
            spec = self.freq(spec, self.mask_value)
        if self.time_mask > 0:
            spec = self.time(spec, self.mask_value)
        out = spec.squeeze(1).transpose(1, 2).contiguous()
        return out[0] if single else out

    def extra_repr(self) -> str:
        return f"freq_mask={self.freq_mask}, time_mask={self.time_mask}"
