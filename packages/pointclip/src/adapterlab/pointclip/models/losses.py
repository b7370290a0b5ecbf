"""CLIP2Point pre-training losses (Huang et al., ICCV 2023, Sec. 3.2).

* :func:`nt_xent` is the normalised temperature-scaled cross entropy of SimCLR, the loss the
  original code takes from ``lightly.loss.NTXentLoss(temperature=0.07)`` (no memory bank): both
  inputs are L2-normalised, every sample of the 2B is an anchor, its counterpart in the other
  tensor is the positive and the other 2B - 2 samples are negatives.
* :class:`Clip2PointLoss` combines the cross-modality loss (mean of two jittered depth features vs
  the image feature) and the intra-modality loss (depth vs depth) as in the original code::

      total = L_image + L_depth / w**2 + log(w + 1),   w learnable, initialised to 1.

  The original keeps w unconstrained. ``log(w + 1)`` is undefined for w <= -1; we keep the
  formula exact and raise a clear error if training ever drives w there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEFAULT_TEMPERATURE", "Clip2PointLoss", "nt_xent"]

#: Temperature of CLIP2Point's NT-Xent losses.
DEFAULT_TEMPERATURE = 0.07


def nt_xent(
    out0: torch.Tensor, out1: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE
) -> torch.Tensor:
    """NT-Xent loss between paired batches ``out0[i] <-> out1[i]`` (shape ``[B, D]``).

    For the 2B normalised vectors z and s_ij = z_i . z_j / t, the loss is the mean over anchors i of
    ``-log(exp(s_i,p(i)) / sum_{k != i} exp(s_ik))`` where p(i) is the paired sample.
    """
    if out0.shape != out1.shape or out0.dim() != 2:
        raise ValueError(f"nt_xent expects two [B, D] tensors, got {out0.shape} and {out1.shape}")
    if out0.shape[0] < 2:
        raise ValueError(
            "nt_xent needs a batch of at least 2 pairs (negatives come from the batch)"
        )
    b = out0.shape[0]
    z = F.normalize(torch.cat([out0, out1]).float(), dim=1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


class Clip2PointLoss(nn.Module):
    """Image-depth pre-training objective with the learnable balance weight ``w`` (init 1)."""

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE) -> None:
        super().__init__()
        self.temperature = temperature
        self.w = nn.Parameter(torch.ones(()))

    def forward(
        self, depth1: torch.Tensor, depth2: torch.Tensor, image: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Losses from the features of two jittered depth renders and the (frozen) image feature.

        Returns a dict with ``loss`` (the total), ``loss_image``, ``loss_depth`` and ``w``.
        """
        if bool(self.w.detach() <= -1):
            raise FloatingPointError(
                f"CLIP2Point loss weight w={float(self.w.detach()):.4f} <= -1 makes log(w + 1) "
                "undefined; lower the learning rate (or w_lr)."
            )
        depth_mean = 0.5 * (depth1 + depth2)
        loss_image = nt_xent(depth_mean, image.detach(), self.temperature)
        loss_depth = nt_xent(depth1, depth2, self.temperature)
        total = loss_image + loss_depth / self.w**2 + torch.log(self.w + 1)
        return {
            "loss": total,
            "loss_image": loss_image.detach(),
            "loss_depth": loss_depth.detach(),
            "w": self.w.detach().clone(),
        }
