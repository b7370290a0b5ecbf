"""Generative Adapter (Chen et al., ICLR 2025, arXiv 2411.05877, "Generative Adapter:
Contextualizing Language Models in Parameters with a Single Forward Pass").

A generator reads the frozen LM's hidden states over a context and emits, for each adapted
linear layer ``W`` (here the attention output projection ``o_proj``, as in the paper's
pre-training script), a low-rank delta:

- per chunk ``j`` of the context, ``S_j = (A2 n(H_j))^T (A3 n(H_j))`` in ``R^{r x r}``, with
  ``H_j`` the layer's inputs over the chunk (padding masked) and ``n`` an RMSNorm;
- the state is the normalised running sum ``S = N(sum_j S_j)`` (Frobenius, spectral or SVD
  normalisation; SVD keeps ``max_rank`` directions, ``U V^T``);
- the adapted layer computes ``W x + (alpha / r) * B (S^T (A1 x))``, i.e.
  ``Delta W = (alpha / r) B S^T A1`` (rank <= r, and <= max_rank with SVD).

``B`` starts at zero, so a fresh generator leaves the LM unchanged. A context of any length is
split into windows of ``chunk`` tokens; each window's states are added to the sum, so nothing is
truncated. Deviation (documented): the context's hidden states come from the *base* LM (the
paper's figure); the released training passes them through already-adapted layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .llm import decoder_layers

__all__ = ["GenerativeAdapter", "LayerGenerator", "normalise_state"]


def normalise_state(s: torch.Tensor, norm: str, max_rank: int) -> torch.Tensor:
    """``N(S)`` for a batch of states ``[B, r, r]``."""
    if norm == "frobenius":
        return s / s.flatten(1).norm(dim=1).clamp_min(1e-6)[:, None, None]
    if norm == "spectral":
        return s / torch.linalg.matrix_norm(s, ord=2).clamp_min(1e-6)[:, None, None]
    if norm == "svd":
        u, _, vh = torch.linalg.svd(s, full_matrices=False)
        k = min(max_rank, s.shape[-1])
        return u[..., :k] @ vh[..., :k, :]
    raise ValueError(f"norm must be frobenius, spectral or svd, got {norm!r}")


class LayerGenerator(nn.Module):
    """The generator of one adapted linear layer (``A1, A2, A3, B`` and the RMSNorm)."""

    def __init__(self, d_in: int, d_out: int, rank: int) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_in, eps=1e-6)
        self.a1 = nn.Linear(d_in, rank, bias=False)
        self.a2 = nn.Linear(d_in, rank, bias=False)
        self.a3 = nn.Linear(d_in, rank, bias=False)
        self.b = nn.Linear(rank, d_out, bias=False)
        nn.init.zeros_(self.b.weight)

    def chunk_state(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``S_j`` for hidden states ``[B, T, D]`` of one chunk (``mask`` ``[B, T]``)."""
        n = self.norm(h.to(self.a2.weight.dtype)) * mask[..., None].to(h.dtype)
        return self.a2(n).transpose(1, 2) @ self.a3(n)

    def delta(self, x: torch.Tensor, state: torch.Tensor, scale: float) -> torch.Tensor:
        """``scale * B(S^T A1 x)`` for inputs ``[B, T, D_in]`` and states ``[B, r, r]``."""
        z = self.a1(x.to(self.a1.weight.dtype)) @ state  # (A1 x)^T S  ==  (S^T A1 x)^T
        return (self.b(z) * scale).to(x.dtype)

    def delta_weight(self, state: torch.Tensor, scale: float) -> torch.Tensor:
        """``Delta W = scale * B S^T A1`` (``[D_out, D_in]``) for one state ``[r, r]``."""
        return scale * self.b.weight @ state.T @ self.a1.weight


class _AdaptedLinear(nn.Module):
    """``o_proj`` plus the generated delta of the current states (none when states are unset)."""

    def __init__(self, base: nn.Linear, gen: LayerGenerator, owner: GenerativeAdapter) -> None:
        super().__init__()
        self.base = base
        self.__dict__["_gen"] = gen  # owned (and saved) by the GenerativeAdapter
        self.__dict__["_owner"] = owner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        state = self._owner.current_states
        if state is None:
            return y
        return y + self._gen.delta(x, state[self._owner.index_of(self)], self._owner.scale)


class GenerativeAdapter(nn.Module):
    """Generator over a frozen causal LM (``o_proj`` of ``layers``); see the module docstring.

    ``encode(context_ids, mask)`` -> states; ``with adapter.using(states): lm(...)`` runs the LM
    with the generated deltas; ``forward`` is the self-supervised loss helper used by training.
    """

    def __init__(
        self,
        lm: nn.Module,
        layers: Sequence[int],
        *,
        rank: int = 64,
        max_rank: int = 16,
        alpha: float = 16.0,
        norm: str = "frobenius",
        chunk: int = 128,
    ) -> None:
        super().__init__()
        normalise_state(torch.eye(2)[None], norm, max_rank)  # validates ``norm``
        self.__dict__["lm"] = lm  # frozen, not part of this module's state
        self.layer_ids = list(layers)
        self.rank, self.max_rank, self.norm_kind, self.chunk = rank, max_rank, norm, chunk
        self.scale = alpha / rank  # the trap: r, not the SVD rank
        blocks = decoder_layers(lm)
        self.generators = nn.ModuleList()
        self._wrapped: list[_AdaptedLinear] = []
        for i in self.layer_ids:
            attn = blocks[i].self_attn
            base = attn.o_proj.base if isinstance(attn.o_proj, _AdaptedLinear) else attn.o_proj
            gen = LayerGenerator(base.in_features, base.out_features, rank)
            self.generators.append(gen)
            wrapped = _AdaptedLinear(base, gen, self)
            attn.o_proj = wrapped
            self._wrapped.append(wrapped)
        self.current_states: torch.Tensor | None = None
        self.to(next(lm.parameters()).device)

    def index_of(self, wrapped: _AdaptedLinear) -> int:
        return self._wrapped.index(wrapped)

    def _inputs(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The inputs of every adapted ``o_proj`` over ``ids`` (base LM, no delta)."""
        got: list[torch.Tensor | None] = [None] * len(self._wrapped)
        handles = []
        for k, w in enumerate(self._wrapped):

            def hook(module: nn.Module, args: tuple, k: int = k) -> None:
                got[k] = args[0]

            handles.append(w.base.register_forward_pre_hook(hook))
        saved, self.current_states = self.current_states, None
        try:
            with torch.no_grad():
                self.lm.model(input_ids=ids, attention_mask=mask, use_cache=False)
        finally:
            self.current_states = saved
            for h in handles:
                h.remove()
        return [g.detach() for g in got]  # type: ignore[union-attr]

    def encode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """States ``[L, B, r, r]`` for contexts ``ids`` ``[B, T]``; windows of ``chunk`` tokens
        are encoded separately and summed (a context longer than the window is chunked)."""
        if mask is None:
            mask = torch.ones_like(ids)
        total: torch.Tensor | None = None
        for s in range(0, ids.shape[1], self.chunk):
            cid, cm = ids[:, s : s + self.chunk], mask[:, s : s + self.chunk]
            if not bool(cm.any()):
                continue
            inputs = self._inputs(cid, cm)
            states = torch.stack([g.chunk_state(h, cm) for g, h in zip(self.generators, inputs)])
            total = states if total is None else total + states
        if total is None:
            raise ValueError("empty context: nothing to encode")
        layers, batch = total.shape[:2]
        flat = normalise_state(total.flatten(0, 1), self.norm_kind, self.max_rank)
        return flat.view(layers, batch, self.rank, self.rank)

    @contextmanager
    def using(self, states: torch.Tensor | None) -> Iterator[None]:
        """Run the LM with the deltas of ``states`` (``[L, B, r, r]``) inside the block."""
        saved, self.current_states = self.current_states, states
        try:
            yield
        finally:
            self.current_states = saved

    def delta_weights(self, states: torch.Tensor) -> list[torch.Tensor]:
        """``Delta W`` of each adapted layer for the first context in ``states``."""
        return [g.delta_weight(states[k, 0], self.scale) for k, g in enumerate(self.generators)]

    def remove(self) -> None:
        """Put the original ``o_proj`` layers back."""
        blocks = decoder_layers(self.lm)
        for i, w in zip(self.layer_ids, self._wrapped):
            blocks[i].self_attn.o_proj = w.base
