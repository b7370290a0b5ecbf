"""Training only the top of a frozen decoder, with the bottom's hidden states cached.

When every adapter sits in decoder layers ``>= start`` and the layers below are frozen (and run
without dropout), the hidden states entering layer ``start`` do not depend on anything that
trains: they are computed once per example (:func:`hidden_at`) and the training forward runs
only layers ``start..`` (:class:`TopOfModel`). The result equals the full forward exactly
(tested); it is how the main job fits the CPU budget. Loss logits are computed only at the
positions that carry a label.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .llm import decoder_layers

__all__ = ["TopOfModel", "hidden_at", "skip_bottom"]


class _Passthrough(nn.Module):
    """Stands in for a skipped decoder layer: returns its input hidden states."""

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return hidden_states


class _Stop(Exception):
    def __init__(self, hidden: torch.Tensor) -> None:
        self.hidden = hidden


@contextmanager
def skip_bottom(model: nn.Module, start: int) -> Iterator[None]:
    """Within the block, decoder layers ``< start`` pass their input through unchanged."""
    layers = decoder_layers(model)
    saved = [layers[i] for i in range(start)]
    try:
        for i in range(start):
            layers[i] = _Passthrough()
        yield
    finally:
        for i, layer in enumerate(saved):
            layers[i] = layer


@torch.no_grad()
def hidden_at(
    model: nn.Module,
    start: int,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The hidden states entering decoder layer ``start`` (``[B, T, D]``); layers above do not
    run. ``start`` = 0 gives the (scaled) token embeddings."""
    layers = decoder_layers(model)
    if not 0 <= start < len(layers):
        raise ValueError(f"start must be in [0, {len(layers)}), got {start}")

    def stop(module: nn.Module, args: tuple, kwargs: dict) -> None:
        raise _Stop(args[0] if args else kwargs["hidden_states"])

    handle = layers[start].register_forward_pre_hook(stop, with_kwargs=True)
    try:
        model.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _Stop as got:
        return got.hidden.detach()
    finally:
        handle.remove()
    raise RuntimeError("decoder layer did not run")  # pragma: no cover


class TopOfModel(nn.Module):
    """Runs decoder layers ``start..``, the final norm and the LM head of ``lm`` on cached hidden
    states. Adapters added to ``lm`` are found (and trained) through this module."""

    def __init__(self, lm: nn.Module, start: int) -> None:
        super().__init__()
        self.lm = lm
        self.start = start

    def hidden(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final (normed) hidden states ``[B, T, D]`` from the cached input of layer ``start``."""
        with skip_bottom(self.lm, self.start):
            out = self.lm.model(
                inputs_embeds=hidden, attention_mask=attention_mask, use_cache=False
            )
        return out.last_hidden_state

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hidden(hidden, attention_mask)

    def logits_at(self, final: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """LM-head logits only where ``mask`` is True (``[N, V]``), soft-capped as the model's own
        head does when its config says so (Gemma)."""
        logits = self.lm.get_output_embeddings()(final[mask])
        cap = getattr(self.lm.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits
