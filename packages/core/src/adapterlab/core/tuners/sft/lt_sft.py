"""Lottery-Ticket Sparse Fine-Tuning (LT-SFT).

Ansell et al. 2022, "Composable Sparse Fine-Tuning for Cross-Lingual Transfer" (ACL), following
the reference ``cambridgeltl/composable-sft`` (``lt_sft.py``, ``trainer.py``):

1. fine-tune all (maskable) parameters;
2. keep the ``k`` entries with the largest ``|theta_1 - theta_0|`` over *all* maskable parameters
   together (one global threshold, as the reference);
3. reset every parameter to ``theta_0``;
4. fine-tune again with gradients masked to the kept entries;
5. the SFT is ``theta_2 - theta_0`` on the kept entries; parameters of ``dense_modules``
   (e.g. a new classification head) train fully in both phases and are stored in full.

With ``n_iterations > 1`` the steps repeat, each adding ``k / n_iterations`` entries to the
mask and starting from the previous iteration's result (the reference's ``n_ft_iterations``).

Framework-agnostic: you supply ``train_fn(model)``, which runs your usual loop (any optimizer);
it is called once per phase. Deliberate deviations: exactly ``k`` entries are kept (``topk``; the
reference keeps ties at the threshold), and after every optimizer step of the sparse phase the
entries outside the mask are put back to their start values, so weight decay or optimizer state
cannot leak outside the mask (the reference only masks gradients).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from .sparse import SparseDiff

__all__ = ["LotteryTicketSFT", "lt_sft"]


def _matches(name: str, entries: str | list[str]) -> bool:
    if isinstance(entries, str):
        return re.fullmatch(entries, name) is not None
    dotted = "." + name + "."
    return any(("." + e + ".") in dotted for e in entries)


class LotteryTicketSFT:
    """The two-phase LT-SFT procedure on ``model`` (see the module docstring).

    Args:
        model: the model; its current parameters are ``theta_0``.
        num_params: ``k``, the number of entries kept. Give this or ``density``.
        density: ``k`` as a fraction of the maskable entries (the reference's
            ``ft_params_proportion``).
        sparse_params: parameters tuned sparsely: a list of names / module prefixes, or a regex
            string matched against full parameter names. ``None``: every parameter not in
            ``dense_modules``.
        dense_modules: module names (exact or ``.suffix``) whose parameters train fully and are
            stored in full (the reference's non-maskable "head" parameters).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_params: int | None = None,
        density: float | None = None,
        sparse_params: str | list[str] | None = None,
        dense_modules: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.model = model
        dense_names = set()
        for mname, module in model.named_modules():
            if mname and any(mname == e or mname.endswith("." + e) for e in dense_modules):
                dense_names.update(f"{mname}.{p}" for p, _ in module.named_parameters())
        found = {
            e
            for e in dense_modules
            if any(n == e or n.endswith("." + e) for n, _ in model.named_modules())
        }
        missing = sorted(set(dense_modules) - found)
        if missing:
            raise ValueError(f"dense_modules {missing} matched no module of the model")
        self.dense = {n: p for n, p in model.named_parameters() if n in dense_names}
        self.sparse = {
            n: p
            for n, p in model.named_parameters()
            if n not in dense_names and (sparse_params is None or _matches(n, sparse_params))
        }
        if not self.sparse:
            raise ValueError(f"sparse_params {sparse_params!r} matched no parameter")
        total = sum(p.numel() for p in self.sparse.values())
        if (num_params is None) == (density is None):
            raise ValueError("give exactly one of num_params and density")
        k = int(num_params) if num_params is not None else int(round(float(density) * total))
        if not 0 < k <= total:
            raise ValueError(f"k={k} must be in [1, {total}] (the number of maskable entries)")
        self.k = k
        self.total = total
        self.theta0 = {n: p.detach().clone() for n, p in self._all().items()}
        self.masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in self.sparse.items()}
        self._start: dict[str, torch.Tensor] = {}
        self._saved_grad_flags: dict[str, bool] = {}

    def _all(self) -> dict[str, nn.Parameter]:
        return {**self.sparse, **self.dense}

    def _set_trainable(self) -> None:
        self._saved_grad_flags = {n: p.requires_grad for n, p in self.model.named_parameters()}
        own = self._all()
        for n, p in self.model.named_parameters():
            p.requires_grad_(n in own)

    def _restore_trainable(self) -> None:
        for n, p in self.model.named_parameters():
            p.requires_grad_(self._saved_grad_flags.get(n, p.requires_grad))

    @contextmanager
    def full_phase(self) -> Iterator[None]:
        """Context for phase 1: all sparse and dense parameters are trainable."""
        self._start = {n: p.detach().clone() for n, p in self._all().items()}
        self._set_trainable()
        try:
            yield
        finally:
            self._restore_trainable()

    @torch.no_grad()
    def select(self, k: int | None = None) -> int:
        """Add the ``k`` largest ``|delta|`` entries (among those not yet masked) to the mask,
        then reset the parameters to their values at the start of the full phase.

        Returns the number of entries now in the mask.
        """
        k = self.k if k is None else k
        if not self._start:
            raise RuntimeError("select() needs a finished full_phase() first")
        scores = []
        for n, p in self.sparse.items():
            delta = (p.detach() - self._start[n]).abs().reshape(-1).float()
            delta[self.masks[n].reshape(-1)] = -1.0  # already chosen
            scores.append(delta)
        flat = torch.cat(scores)
        available = int((flat >= 0).sum())
        if k > available:
            raise ValueError(f"asked for {k} more entries but only {available} are unmasked")
        chosen = torch.topk(flat, k, sorted=False).indices
        hit = torch.zeros_like(flat, dtype=torch.bool)
        hit[chosen] = True
        offset = 0
        for n, p in self.sparse.items():
            m = hit[offset : offset + p.numel()].view_as(p)
            self.masks[n] |= m
            offset += p.numel()
        for n, p in self._all().items():
            p.copy_(self._start[n])
        return sum(int(m.sum()) for m in self.masks.values())

    @torch.no_grad()
    def project_(self) -> None:
        """Put every entry outside the mask back to its value at the start of the sparse phase."""
        for n, p in self.sparse.items():
            p.copy_(torch.where(self.masks[n], p, self._start[n]))

    @contextmanager
    def sparse_phase(self) -> Iterator[None]:
        """Context for phase 2: gradients are masked to the selected entries, and after every
        optimizer step (any ``torch.optim`` optimizer) the unmasked entries are reset."""
        if not any(bool(m.any()) for m in self.masks.values()):
            raise RuntimeError("sparse_phase() needs select() first")
        self._start = {n: p.detach().clone() for n, p in self._all().items()}
        self._set_trainable()
        handles = [
            p.register_hook(lambda g, m=self.masks[n]: g * m) for n, p in self.sparse.items()
        ]
        own = {id(p) for p in self.sparse.values()}

        def post_step(optimizer: torch.optim.Optimizer, *_: object) -> None:
            if any(id(p) in own for g in optimizer.param_groups for p in g["params"]):
                self.project_()

        handles.append(register_optimizer_step_post_hook(post_step))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            self.project_()
            self._restore_trainable()

    @torch.no_grad()
    def result(self, reset: bool = True) -> SparseDiff:
        """The SFT ``theta - theta_0`` on the masked entries (+ dense parameters in full).

        With ``reset`` (default) the model goes back to ``theta_0``; apply the result with
        :func:`~adapterlab.core.tuners.sft.sparse.apply_sft` to get the fine-tuned model.
        """
        diff = SparseDiff()
        for n, p in self.sparse.items():
            idx = torch.nonzero(self.masks[n].reshape(-1), as_tuple=False).view(-1)
            if idx.numel() == 0:
                continue
            diff.indices[n] = idx.cpu()
            diff.values[n] = (p.detach().reshape(-1)[idx] - self.theta0[n].reshape(-1)[idx]).cpu()
            diff.shapes[n] = tuple(p.shape)
        for n, p in self.dense.items():
            diff.dense[n] = p.detach().cpu().clone()
            diff.shapes[n] = tuple(p.shape)
        diff.info = {"method": "lt-sft", "k": self.k, "maskable": self.total}
        if reset:
            for n, p in self._all().items():
                p.copy_(self.theta0[n])
        return diff


def lt_sft(
    model: nn.Module,
    train_fn: Callable[[nn.Module], object],
    *,
    num_params: int | None = None,
    density: float | None = None,
    n_iterations: int = 1,
    sparse_params: str | list[str] | None = None,
    dense_modules: list[str] | tuple[str, ...] = (),
    reset: bool = True,
) -> SparseDiff:
    """Run LT-SFT with ``train_fn(model)`` as the training loop of every phase.

    ``train_fn`` should build its optimizer over ``[p for p in model.parameters() if
    p.requires_grad]`` (the procedure sets the flags per phase). Returns the :class:`SparseDiff`;
    with ``reset`` the model ends at its original parameters.
    """
    if n_iterations < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
    sft = LotteryTicketSFT(
        model,
        num_params=num_params,
        density=density,
        sparse_params=sparse_params,
        dense_modules=dense_modules,
    )
    per_iter = [sft.k // n_iterations] * n_iterations
    per_iter[-1] += sft.k - sum(per_iter)
    for k in per_iter:
        with sft.full_phase():
            train_fn(model)
        sft.select(k)
        with sft.sparse_phase():
            train_fn(model)
    diff = sft.result(reset=reset)
    diff.info["n_iterations"] = n_iterations
    return diff
