"""MixDA: mixture of domain adapters (Diao et al., "Mixture-of-Domain-Adapters: Decoupling and
Injecting Domain Knowledge to Pre-trained Language Models' Memories", ACL 2023; code:
tianyang-x/Mixture-of-Domain-Adapters).

Two-stage training, as the authors:

1. Stage 1 (``set_mixda_stage(model, 1)``): train the domain adapters (and the gate) on domain
   data; the authors add a *preservation* term, the MSE between the mixed and the original layer
   outputs on general-domain text (:func:`mixda_record` + :func:`preservation_loss`). Domains can
   be trained one per adapter and joined with :func:`adapterlab.core.combine_domain_adapters`.
2. Stage 2 (``set_mixda_stage(model, 2)``): freeze the domain adapters, train the gate plus a
   task adapter (any other adapter, e.g. ``get_config("pfeiffer")``, active together with the
   MixDA adapter: ``set_active(model, ["domains", "task"])``).

Deviations: the mixture wraps one module, so the FFN's dropout (BERT's ``output.dropout``) is
applied to the mixed output rather than to the FFN branch alone, and the preservation loss
compares the wrapped module's outputs rather than whole-layer outputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...architectures import is_causal_model, match_targets
from ...targeting import resolve_module
from ..base import OutputAdapterWrapper, replace_submodule
from ..registry import AdapterMethod, register_method
from ..state import adapter_state
from ..sublayer import feature_dim, input_dim
from .config import MixDAConfig
from .layer import DomainAdapter, MixDAAdapter, MixDAGate

__all__ = [
    "MixDAConfig",
    "MixDAAdapter",
    "MixDAGate",
    "DomainAdapter",
    "input_dim",
    "mixda_modules",
    "set_mixda_stage",
    "mixda_record",
    "preservation_loss",
]

_SUFFIX = "mixda"


def _inject(model: nn.Module, config: MixDAConfig, name: str) -> dict[str, nn.Module]:
    if config.gate_pool != "token" and is_causal_model(model):
        raise ValueError(
            f"mixda: gate_pool={config.gate_pool!r} lets every position see later tokens on a "
            "causal decoder; use gate_pool='token' there"
        )
    matches = match_targets(model, config.target_modules, tuple(config.locations), config.method)
    handles: dict[str, nn.Module] = {}
    for clean, _ in matches:
        path, module = resolve_module(model, clean)
        if isinstance(module, OutputAdapterWrapper):
            wrapper = module
        else:
            wrapper = OutputAdapterWrapper(module)
            replace_submodule(model, path, wrapper)
        d_in, d_out = input_dim(wrapper.base_layer), feature_dim(wrapper.base_layer)
        adapter = MixDAAdapter(
            d_in,
            d_out,
            num_domains=config.num_domains,
            bottleneck=config.size(d_in),
            activation=config.activation,
            gate_hidden=config.gate_hidden,
            gate_layers=config.gate_layers,
            gate_dropout=config.gate_dropout,
            gate_pool=config.gate_pool,
        )
        ref = next(iter(wrapper.base_layer.parameters()), None)
        if ref is not None:
            adapter.to(device=ref.device)
        wrapper.adapters[name] = adapter
        handles[f"{clean}.{_SUFFIX}"] = adapter
    return handles


def mixda_modules(model: nn.Module, name: str = "default") -> dict[str, MixDAAdapter]:
    """The :class:`MixDAAdapter` s of adapter ``name`` by saved key prefix."""
    handles = adapter_state(model).handles.get(name)
    if handles is None:
        raise ValueError(f"no adapter named {name!r}")
    found = {k: m for k, m in handles.items() if isinstance(m, MixDAAdapter)}
    if not found:
        raise ValueError(f"adapter {name!r} is not a MixDA adapter")
    return found


def set_mixda_stage(
    model: nn.Module,
    stage: int,
    name: str = "default",
    domains: Sequence[int] | None = None,
    train_gate: bool = True,
) -> None:
    """Set which parts of MixDA adapter ``name`` train.

    - ``stage=1``: the domain adapters listed in ``domains`` (all when None) and, if
      ``train_gate``, the gate (the authors train it in stage one too, at ``moe_lr``);
    - ``stage=2``: the gate only; the domain adapters are frozen.

    Other adapters and modules are left as they are. Call it after the last ``add_adapter``
    (which re-enables every adapter's parameters).
    """
    if stage not in (1, 2):
        raise ValueError(f"MixDA stage must be 1 or 2, got {stage}")
    for module in mixda_modules(model, name).values():
        chosen = set(range(module.num_domains)) if domains is None else set(domains)
        bad = sorted(d for d in chosen if not 0 <= d < module.num_domains)
        if bad:
            raise ValueError(f"domains {bad} out of range [0, {module.num_domains})")
        for k, adapter in enumerate(module.domain_adapters):
            adapter.requires_grad_(stage == 1 and k in chosen)
        module.gate.requires_grad_(stage == 2 or train_gate)


@contextlib.contextmanager
def mixda_record(
    model: nn.Module, name: str = "default"
) -> Iterator[list[dict[str, torch.Tensor]]]:
    """Capture ``{"mixed", "original", "gate"}`` of every MixDA layer of ``name`` for the forward
    passes run inside the block (in layer order per pass)."""
    modules = list(mixda_modules(model, name).values())
    records: list[dict[str, torch.Tensor]] = []
    for module in modules:
        module.record = records
    try:
        yield records
    finally:
        for module in modules:
            module.record = None


def preservation_loss(records: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Stage-1 "sample loss": mean over records of ``MSE(mixed, original)``.

    Run general-domain batches inside :func:`mixda_record` and add this to the domain loss (the
    authors weight the domain loss by ``knowledge_loss_factor=0.5``).
    """
    if not records:
        raise ValueError("no MixDA outputs recorded; run a forward pass inside mixda_record()")
    losses = [F.mse_loss(r["mixed"], r["original"].detach()) for r in records]
    return torch.stack(losses).mean()


register_method(MixDAConfig, AdapterMethod(inject=_inject))
