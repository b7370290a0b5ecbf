"""Sparse experts for MoSA: a Linear whose weight entries are split among N disjoint experts.

Zhang et al., "Split & Merge: Unlocking the Potential of Visual Adapters via Sparse Training"
(MoSA, arXiv:2312.02923), code: Theia-4869/MoSA (``vit_mosa.py``, ``utils/pruner.py``,
``engine/trainer.py``).

The authors keep ``N`` dense copies of each split matrix, all starting from the same init ``W0``;
``Pruner.divide`` gives copy ``i`` a random mask ``M_i`` (random scores cut at the ``i/N``
quantiles: disjoint masks covering the matrix) and the trainer multiplies copy ``i``'s gradient by
``M_i``. Copy ``i`` is therefore always ``W0 + Delta_i * M_i``. We store exactly that, without the
copies: one frozen ``W0`` plus, for expert ``i``, a trainable vector holding only its own entries.
The expert's dense weight is ``W0`` with those entries scattered in. An expert that did not run
gets no gradient, so no optimiser (momentum, weight decay) touches it, as with the authors' unused
copies. Biases are dense per expert (the authors' ``BIAS=True`` gives every copy an all-ones bias
mask).

Merging (``merge``):

- ``"add"`` (authors' default ``MERGE="add"``): the mean of the expert copies,
  ``W0 + (1/N) sum_i Delta_i M_i``; bias = mean of expert biases.
- ``"joint"``: every entry taken from the expert that owns it, ``W0 + sum_i Delta_i M_i``
  (the paper's "merge into a complete adapter"). Deviation: the authors' ``joint`` branch also
  divides the result, ``W0`` included, by ``N``, which we do not copy. Bias = mean of expert biases.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["random_partition", "SparseExpertLinear", "MERGE_MODES"]

MERGE_MODES = ("add", "joint")


def random_partition(
    shape: tuple[int, ...], num_experts: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Assign each entry of a ``shape`` matrix to one of ``num_experts`` experts (``uint8``).

    Like the authors' ``Rand`` pruner + ``divide(mode="all")``: entries are ranked by a random
    score and expert ``i`` gets the ranks in ``[i * n / N, (i + 1) * n / N)``, so the experts are
    disjoint, cover the matrix and differ in size by at most one entry.
    """
    if not 1 <= num_experts <= 255:
        raise ValueError(f"num_experts must be in [1, 255], got {num_experts}")
    numel = 1
    for s in shape:
        numel *= s
    if numel < num_experts:
        raise ValueError(f"cannot split {numel} entries among {num_experts} experts")
    order = torch.randperm(numel, generator=generator)
    owner = torch.empty(numel, dtype=torch.uint8)
    owner[order] = (torch.arange(numel) * num_experts // numel).to(torch.uint8)
    return owner.view(shape)


class SparseExpertLinear(nn.Module):
    """``N`` sparse experts of one Linear layer (see the module docstring).

    Attributes:
        assignment: ``uint8`` buffer, the expert owning each weight entry (saved).
        weight_init: ``W0``, the shared initial weight (saved; the non-owned entries of every
            expert and the base of the ``"add"`` merge).
        expert_weights: ``ParameterList``; entry ``i`` holds expert ``i``'s own entries in
            row-major order of the weight.
        expert_biases: ``ParameterList`` of dense per-expert biases (absent if ``bias=False``).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        num_experts: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(
                f"SparseExpertLinear needs a 2-D weight, got shape {tuple(weight.shape)}"
            )
        self.num_experts = num_experts
        self.out_features, self.in_features = weight.shape
        w0 = weight.detach().clone()
        owner = random_partition(tuple(w0.shape), num_experts, generator).to(w0.device)
        self.register_buffer("assignment", owner)
        self.register_buffer("weight_init", w0)
        self._counts = torch.bincount(
            torch.arange(owner.numel()) * num_experts // owner.numel(), minlength=num_experts
        ).tolist()
        self.register_buffer("_order", torch.empty(0, dtype=torch.long), persistent=False)
        self._refresh_index()
        self.register_load_state_dict_post_hook(lambda module, _keys: module._refresh_index())
        flat = w0.reshape(-1)
        self.expert_weights = nn.ParameterList(
            [nn.Parameter(flat[self._index(i)].clone()) for i in range(num_experts)]
        )
        if bias is not None:
            b0 = bias.detach().clone()
            self.expert_biases = nn.ParameterList(
                [nn.Parameter(b0.clone()) for _ in range(num_experts)]
            )
        else:
            self.expert_biases = None

    def _refresh_index(self) -> None:
        """Cache, per expert, the flat positions it owns (ascending); check the assignment."""
        owner = self.assignment.reshape(-1).long()
        counts = torch.bincount(owner, minlength=self.num_experts).tolist()
        if len(counts) != self.num_experts or counts != self._counts:
            raise ValueError(
                f"MoSA expert assignment has per-expert sizes {counts}, expected {self._counts} "
                f"({self.num_experts} experts over {owner.numel()} entries)"
            )
        self._order = torch.argsort(owner, stable=True)
        self._offsets = [0]
        for c in counts:
            self._offsets.append(self._offsets[-1] + c)

    def _index(self, i: int) -> torch.Tensor:
        return self._order[self._offsets[i] : self._offsets[i + 1]]

    def expert_mask(self, i: int) -> torch.Tensor:
        """Boolean mask of the entries expert ``i`` owns."""
        return self.assignment == i

    def expert_weight(self, i: int) -> torch.Tensor:
        """Expert ``i``'s dense weight: ``W0`` with its own entries replaced (differentiable)."""
        flat = self.weight_init.reshape(-1)
        out = flat.scatter(0, self._index(i), self.expert_weights[i].to(flat.dtype))
        return out.view_as(self.weight_init)

    def joint_weight(self) -> torch.Tensor:
        """Every entry from the expert that owns it, ``W0 + sum_i Delta_i M_i``."""
        flat = self.weight_init.reshape(-1).clone()
        for i in range(self.num_experts):
            flat = flat.scatter(0, self._index(i), self.expert_weights[i].to(flat.dtype))
        return flat.view_as(self.weight_init)

    def merged(self, mode: str = "add") -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(weight, bias)`` of the single dense Linear the experts merge into."""
        if mode not in MERGE_MODES:
            raise ValueError(f"MoSA merge mode must be one of {MERGE_MODES}, got {mode!r}")
        joint = self.joint_weight()
        if mode == "add":
            weight = self.weight_init + (joint - self.weight_init) / self.num_experts
        else:
            weight = joint
        bias = None
        if self.expert_biases is not None:
            bias = torch.stack(list(self.expert_biases)).mean(dim=0)
        return weight, bias

    def forward(self, x: torch.Tensor, expert: int | None, merge_mode: str = "add") -> torch.Tensor:
        """Run expert ``expert``, or the merged layer when ``expert`` is ``None``."""
        if expert is None:
            weight, bias = self.merged(merge_mode)
        else:
            weight = self.expert_weight(expert)
            bias = None if self.expert_biases is None else self.expert_biases[expert]
        return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_experts={self.num_experts}, bias={self.expert_biases is not None}"
        )
