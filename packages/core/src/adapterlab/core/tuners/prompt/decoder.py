"""Prompt tuning on decoder LMs (Lester et al. 2021, "The Power of Scale for Parameter-Efficient
Prompt Tuning"), the way PEFT does it: ``n`` learned embeddings go in front of the input
embeddings, the attention mask gets ``n`` ones in front, and the prompts take positions
``0..n-1`` (the real tokens ``n..n+T-1``).

Deep prompts (``deep=True``; VPT-deep, or P-Tuning v2's deep prompts as embeddings): before every
later layer the prompt positions' hidden states are replaced by that layer's own learned tokens,
during the pass that adds the prompts (later cached steps reuse their keys and values).

The wrapper sits on the transformers base model (``LlamaModel``, ``GPT2Model``, ...), so the
model's own mask, RoPE and KV cache see one longer sequence. Its outputs drop the prompt
positions again, so logits and hidden states keep the caller's length (PEFT returns them with the
prompt positions). With a KV cache, the first call (empty cache) adds the prompts and marks the
cache; later calls (``generate``'s decoding steps) shift ``position_ids``/``cache_position`` by
``n`` and extend the mask, and the prompts live in the cache.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..wrapping import AdapterCarrier

__all__ = ["DecoderPromptWrapper", "DeepPromptTokens", "decoder_layers", "find_decoder_base_models"]

_MARK = "_adapterlab_prompt_tokens"


def find_decoder_base_models(model: nn.Module) -> list[str]:
    """Names of the transformers base models of causal decoders inside ``model``."""
    from transformers import PreTrainedModel

    from ...architectures import is_causal_model

    names = []
    for name, module in model.named_modules():
        base = module.base_layer if isinstance(module, DecoderPromptWrapper) else module
        if (
            isinstance(base, PreTrainedModel)
            and getattr(base, "base_model", None) is base
            and not base.config.is_encoder_decoder
            and is_causal_model(base)
        ):
            names.append(name)
    return names


def decoder_layers(base: nn.Module) -> nn.ModuleList:
    """The decoder's list of layers (``layers`` in Llama/Qwen2, ``h`` in GPT-2)."""
    count = getattr(base.config, "num_hidden_layers", None)
    for child in base.children():
        if isinstance(child, nn.ModuleList) and len(child) == count:
            return child
    raise ValueError(f"cannot find the {count} decoder layers of {type(base).__name__}")


class DeepPromptTokens(nn.Module):
    """``prompts`` for the input and ``deep_prompts[i]`` for decoder layer ``i + 1``."""

    def __init__(self, layers: int, num_tokens: int, dim: int, init_range: float) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.empty(num_tokens, dim).uniform_(-init_range, init_range))
        self.deep_prompts = nn.Parameter(
            torch.empty(layers - 1, num_tokens, dim).uniform_(-init_range, init_range)
        )


class DecoderPromptWrapper(AdapterCarrier):
    """Wraps a decoder base model: learned prompt embeddings in front of the input."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self._signature = inspect.signature(base_layer.forward)
        self._deep: torch.Tensor | None = None  # [layers - 1, n, D] during a prompt-adding pass
        self._hooked = False

    def enable_deep(self) -> None:
        """Hook the decoder layers once, so deep prompts can replace the prompt positions."""
        if self._hooked:
            return
        for index, layer in enumerate(decoder_layers(self.base_layer)):
            if index:
                layer.register_forward_pre_hook(self._deep_hook(index), with_kwargs=True)
        self._hooked = True

    def _deep_hook(self, index: int) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            deep = self._deep
            if deep is None:
                return None
            hidden = args[0] if args else kwargs["hidden_states"]
            tokens = deep[index - 1].to(hidden.dtype).expand(hidden.shape[0], -1, -1)
            hidden = torch.cat([tokens, hidden[:, tokens.shape[1] :]], dim=1)
            if args:
                return (hidden, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": hidden}

        return hook

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        names = self.running()
        if not names:
            return self.base_layer(*args, **kwargs)
        if len(names) > 1:
            raise ValueError(f"only one prompt adapter can run at a time, active: {names}")
        prompts = self.adapters[names[0]].prompts
        n = prompts.shape[0]
        bound = self._signature.bind_partial(*args, **kwargs)
        call = dict(bound.arguments)
        call.update(call.pop("kwargs", {}))
        cache = call.get("past_key_values")
        seen = cache.get_seq_length() if cache is not None else 0
        if seen:
            if getattr(cache, _MARK, None) != n:
                raise ValueError(
                    "prompt tuning: the KV cache passed in was not built with this prompt; "
                    "start generation from an empty cache"
                )
            self._shift(call, n)
            self._extend_mask(call, n, next(iter(_tensors(call))).shape[0])
            return self.base_layer(**call)
        embeds = call.pop("inputs_embeds", None)
        if embeds is None:
            embeds = self.base_layer.get_input_embeddings()(call.pop("input_ids"))
        else:
            call.pop("input_ids", None)
        batch = embeds.shape[0]
        tokens = prompts.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
        call["inputs_embeds"] = torch.cat([tokens, embeds], dim=1)
        self._extend_mask(call, n, batch)
        for key in ("position_ids", "cache_position"):
            if call.get(key) is not None:
                start = torch.arange(n, device=call[key].device, dtype=call[key].dtype)
                start = start.expand(*call[key].shape[:-1], n)
                call[key] = torch.cat([start, call[key] + n], dim=-1)
        if call.get("token_type_ids") is not None:
            ids = call["token_type_ids"]
            call["token_type_ids"] = torch.cat([ids.new_zeros(ids.shape[0], n), ids], dim=1)
        self._deep = getattr(self.adapters[names[0]], "deep_prompts", None)
        try:
            out = self.base_layer(**call)
        finally:
            self._deep = None
        if getattr(out, "past_key_values", None) is not None:
            setattr(out.past_key_values, _MARK, n)
        return _strip(out, n)

    @staticmethod
    def _shift(call: dict[str, Any], n: int) -> None:
        for key in ("position_ids", "cache_position"):
            if call.get(key) is not None:
                call[key] = call[key] + n

    @staticmethod
    def _extend_mask(call: dict[str, Any], n: int, batch: int) -> None:
        mask = call.get("attention_mask")
        if mask is None:
            return
        if mask.dim() != 2:
            raise ValueError(
                "prompt tuning on a decoder needs a 2-D [batch, length] attention_mask"
            )
        call["attention_mask"] = torch.cat([mask.new_ones(batch, n), mask], dim=1)


def _tensors(call: dict[str, Any]) -> list[torch.Tensor]:
    return [
        call[k] for k in ("input_ids", "inputs_embeds") if isinstance(call.get(k), torch.Tensor)
    ]


def _strip(out: Any, n: int) -> Any:
    """Drop the prompt positions from every sequence output."""
    if isinstance(out, torch.Tensor):
        return out[:, n:]
    if isinstance(out, tuple) and not hasattr(out, "keys"):
        return tuple(_strip(o, n) if isinstance(o, torch.Tensor | tuple) else o for o in out)
    if hasattr(out, "last_hidden_state"):
        out.last_hidden_state = out.last_hidden_state[:, n:]
        if getattr(out, "hidden_states", None) is not None:
            out.hidden_states = tuple(h[:, n:] for h in out.hidden_states)
    return out
