"""Invertible bottleneck adapters: AdapterHub's ``seq_bn_inv`` and ``double_seq_bn_inv``.

MAD-X (Pfeiffer et al., "MAD-X: An Adapter-Based Framework for Multi-Task Cross-Lingual
Transfer", EMNLP 2020): a bottleneck adapter in every layer plus an invertible adapter (a NICE
coupling, or GLOW) on the token embeddings whose inverse runs on the input of the (tied) output
embedding, so a language adapter adapts both ends of the vocabulary. Used for language
adaptation in Gurgurov et al., "Small Models, Big Impact" (ACL 2025 SRW).

With several active adapters, the coupling of the first one that has one runs (AdapterHub).
"""

from __future__ import annotations

from torch import nn

from ...targeting import TargetError, resolve_module
from ..base import replace_submodule
from ..bottleneck import BottleneckAdapter, inject_bottleneck_adapters
from ..registry import AdapterMethod, register_method
from ..sublayer import adapter_kwargs, feature_dim
from .config import InvertibleBottleneckConfig
from .layer import (
    Coupling,
    EmbeddingCouplingWrapper,
    GLOWCoupling,
    InverseCouplingWrapper,
    NICECoupling,
    make_coupling,
)

__all__ = [
    "Coupling",
    "EmbeddingCouplingWrapper",
    "GLOWCoupling",
    "InverseCouplingWrapper",
    "InvertibleBottleneckConfig",
    "NICECoupling",
    "find_embedding_module",
    "find_output_embedding",
]

COUPLING_KEY = "invertible"


def _dim_of(module: nn.Module) -> int | None:
    if isinstance(module, EmbeddingCouplingWrapper):
        module = module.base_layer
    if isinstance(module, nn.Embedding):
        return module.embedding_dim
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[-1])
    for attr in ("word_embeddings", "wte", "embed_tokens"):
        child = getattr(module, attr, None)
        if isinstance(child, nn.Embedding):
            return child.embedding_dim
    try:
        return feature_dim(module)
    except TargetError:
        return None


def find_embedding_module(model: nn.Module) -> tuple[str, int]:
    """``(path, feature size)`` of the module whose output is the token embedding, as AdapterHub
    hooks it: BERT-family/AST ``embeddings`` (after LayerNorm and dropout), Llama-family
    ``embed_tokens``, GPT-2 ``drop`` (after the position embeddings)."""
    for path, module in model.named_modules():
        leaf = path.rsplit(".", 1)[-1]
        if leaf == "embeddings" and any(
            hasattr(module, a) for a in ("word_embeddings", "patch_embeddings")
        ):
            dim = _dim_of(module)
            if dim is None and hasattr(module, "cls_token"):
                dim = int(module.cls_token.shape[-1])
            if dim is not None:
                return path, dim
        if leaf == "embed_tokens" and isinstance(
            getattr(module, "base_layer", module), nn.Embedding
        ):
            return path, _dim_of(module)
        if isinstance(getattr(module, "wte", None), nn.Embedding) and hasattr(module, "drop"):
            return f"{path}.drop" if path else "drop", module.wte.embedding_dim
    raise TargetError(
        f"{type(model).__name__}: no token embedding module found (BERT-style 'embeddings', "
        "'embed_tokens' or GPT-2's 'wte' + 'drop'); pass embedding_module='<module name>'"
    )


def find_output_embedding(model: nn.Module) -> str | None:
    """Path of the output (vocabulary) embedding from ``get_output_embeddings()`` of the model or
    its outermost submodule that has one, or ``None`` (a model without an LM head)."""
    paths = {id(m): p for p, m in model.named_modules()}
    for _, module in model.named_modules():
        getter = getattr(module, "get_output_embeddings", None)
        if not callable(getter):
            continue
        out = getter()
        if isinstance(out, nn.Module) and id(out) in paths:
            return paths[id(out)]
    return None


def _inject(
    model: nn.Module, config: InvertibleBottleneckConfig, name: str
) -> dict[str, nn.Module]:
    if config.embedding_module:
        path, module = resolve_module(model, config.embedding_module)
        dim = _dim_of(module)
        if dim is None:
            raise TargetError(
                f"cannot infer the feature size of embedding_module {config.embedding_module!r}"
            )
    else:
        path, dim = find_embedding_module(model)
    out_path = config.output_embedding
    if out_path is None:
        out_path = find_output_embedding(model)
    elif out_path:
        out_path, _ = resolve_module(model, out_path)
    coupling = make_coupling(
        config.inv_adapter, dim, config.inv_reduction_factor, config.activation
    )

    def build(features: int) -> BottleneckAdapter:
        return BottleneckAdapter(
            features, config.size(features), activation=config.activation, **adapter_kwargs(config)
        )

    handles = inject_bottleneck_adapters(model, config, name, build, "bottleneck")
    module = model.get_submodule(path) if path else model
    if not isinstance(module, EmbeddingCouplingWrapper):
        module = EmbeddingCouplingWrapper(module)
        replace_submodule(model, path, module)
    module.adapters[name] = coupling
    if out_path:
        out = model.get_submodule(out_path)
        if not isinstance(out, InverseCouplingWrapper):
            out = InverseCouplingWrapper(out)
            replace_submodule(model, out_path, out)
        out.__dict__["adapters"][name] = coupling
    handles[COUPLING_KEY] = coupling
    return handles


def coupling_of(handles: dict[str, nn.Module]) -> Coupling:
    """The coupling among an invertible adapter's handles."""
    return handles[COUPLING_KEY]


register_method(InvertibleBottleneckConfig, AdapterMethod(inject=_inject))
