"""p-adapter (Wu et al., "p-Laplacian Adaptation for Generative Pre-trained Vision-Language
Models", AAAI 2024): p-Laplacian re-weighting of each attention graph followed by a bottleneck,
after self- and cross-attention, plus a plain bottleneck adapter after every FFN.

Works on any BERT-layout attention (HF BERT, RoBERTa, BLIP's text model); see ``layer``.
"""

from __future__ import annotations

from torch import nn

from ...targeting import TargetError, match_modules, resolve_module
from ..base import OutputAdapterWrapper, replace_submodule
from ..bottleneck.layer import BottleneckAdapter
from ..registry import AdapterMethod, register_method
from .config import PAdapterConfig
from .layer import (
    PAdapterBranch,
    code_reference,
    dense_reference,
    is_bert_attention,
    pool_assignment,
)

__all__ = [
    "PAdapterBranch",
    "PAdapterConfig",
    "code_reference",
    "dense_reference",
    "find_attention_modules",
    "is_bert_attention",
    "p_adapter_modules",
    "pool_assignment",
]


def find_attention_modules(model: nn.Module) -> list[str]:
    """Names of every BERT-layout attention module (self- and cross-attention)."""
    return [n for n, m in match_modules(model, r".*") if is_bert_attention(m)]


def _wrap(model: nn.Module, clean: str) -> OutputAdapterWrapper:
    path, module = resolve_module(model, clean)
    if isinstance(module, OutputAdapterWrapper):
        return module
    wrapper = OutputAdapterWrapper(module)
    replace_submodule(model, path, wrapper)
    return wrapper


def _ffn_targets(model: nn.Module, config: PAdapterConfig, attentions: list[str]) -> list[str]:
    if config.ffn_modules is not None:
        return [n for n, _ in match_modules(model, config.ffn_modules)]
    out: list[str] = []
    for name in attentions:
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        layer = model.get_submodule(parent) if parent else model
        if hasattr(layer, "intermediate") and hasattr(getattr(layer, "output", None), "dense"):
            target = f"{parent}.output.dense" if parent else "output.dense"
            if target not in out:
                out.append(target)
    return out


def _inject(model: nn.Module, config: PAdapterConfig, name: str) -> dict[str, nn.Module]:
    if config.target_modules is None:
        attentions = find_attention_modules(model)
        if not attentions:
            raise TargetError(
                f"p_adapter: {type(model).__name__} has no BERT-layout attention module "
                "(self.query/key/value + output.dense); pass target_modules"
            )
    else:
        attentions = []
        for clean, module in match_modules(model, config.target_modules):
            if not is_bert_attention(module):
                raise TargetError(
                    f"p_adapter: {clean!r} ({type(module).__name__}) is not a BERT-layout "
                    "attention module (needs self.query/key/value and output.dense)"
                )
            attentions.append(clean)
    ffn = _ffn_targets(model, config, attentions) if config.ffn_adapter else []
    handles: dict[str, nn.Module] = {}
    for clean in attentions:
        attention = resolve_module(model, clean)[1]
        attn_self = attention.self
        wrapper = _wrap(model, f"{clean}.output.dense")
        dense = wrapper.base_layer
        heads = (
            getattr(attn_self, "num_attention_heads", None) or attn_self.config.num_attention_heads
        )
        branch = PAdapterBranch(
            dense.out_features,
            heads,
            config.size(dense.out_features),
            variant=config.variant,
            activation=config.activation,
            p_init=config.p_init,
            p_range=tuple(config.p_range),
            mu_init=config.mu_init,
            mu0=config.mu0,
            eps=config.eps,
            value_degree=config.value_degree,
            cross_pool_nodes=config.cross_pool_nodes,
            p_param=config.p_param,
            init=config.init,
            init_std=config.init_std,
        )
        branch.attach(attn_self, dense)
        wrapper.adapters[name] = branch
        handles[f"{clean}.output.dense.p_adapter"] = branch
    for clean in ffn:
        wrapper = _wrap(model, clean)
        dim = wrapper.base_layer.out_features
        parallel = config.ffn_placement == "parallel"
        adapter = BottleneckAdapter(
            dim,
            config.size(dim),
            activation=config.ffn_activation or config.activation,
            placement=config.ffn_placement,
            residual=not parallel,  # parallel: the host layer adds x itself
        )
        if config.init == "normal":
            for lin in (adapter.down, adapter.up):
                nn.init.normal_(lin.weight, std=config.init_std)
                nn.init.zeros_(lin.bias)
        if parallel:  # the adapter reads the FFN's input: what <layer>.intermediate receives
            parent = clean.rsplit(".output.dense", 1)[0]
            source = resolve_module(model, f"{parent}.intermediate")[1]
            source.register_forward_pre_hook(wrapper.capture_source, with_kwargs=True)
            wrapper._uses_source = True
        wrapper.adapters[name] = adapter
        handles[f"{clean}.bottleneck"] = adapter
    return handles


def p_adapter_modules(model: nn.Module, name: str = "default") -> dict[str, PAdapterBranch]:
    """The p-adapter branches of adapter ``name`` by attention module (for inspecting p, mu)."""
    out = {}
    for module_name, module in model.named_modules():
        adapters = getattr(module, "adapters", None)
        if (
            isinstance(adapters, nn.ModuleDict)
            and name in adapters
            and isinstance(adapters[name], PAdapterBranch)
        ):
            out[module_name.replace(".base_layer", "")] = adapters[name]
    return out


register_method(PAdapterConfig, AdapterMethod(inject=_inject))
