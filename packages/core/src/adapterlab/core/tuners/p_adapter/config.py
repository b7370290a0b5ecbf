"""p-adapter config (Wu et al., AAAI 2024): p-Laplacian re-weighted attention + bottleneck."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import AdapterConfig, register_preset
from ..bottleneck.config import ACTIVATIONS

__all__ = ["RELEASE", "PAdapterConfig"]


@dataclass
class PAdapterConfig(AdapterConfig):
    """p-adapter: after every attention sublayer, the attention graph is re-weighted with
    p-Laplacian message passing and a bottleneck adapter reads the result; a plain bottleneck
    adapter follows every feed-forward sublayer.

    ``target_modules`` names *attention modules* in the BERT layout (a module with ``self``
    holding ``query``/``key``/``value`` Linears and ``output`` holding the ``dense`` output
    projection: HF BERT, RoBERTa, BLIP's text model, self- and cross-attention). ``None`` finds
    every such module.

    Attributes:
        variant: ``"paper"`` (the equations of the paper, see ``layer``) or ``"code"`` (the
            released code's choices: re-weighting after the down-projection, no D^-1/2, a GELU
            gate, mu = mu0 * (2 + tanh(m)), beta = 0 in cross-attention).
        reduction_factor: bottleneck size = hidden size // reduction_factor (paper: 768 -> 96).
        bottleneck_dim: explicit bottleneck size (overrides ``reduction_factor``).
        activation: the bottleneck nonlinearity sigma.
        p_init: initial p of every adapted attention (learned per layer). The paper variant is
            the identity at init only for ``p_init=2`` and ``mu_init=0`` (the defaults); the
            released configs start at 1.25 (VQA), 1.5 (SNLI-VE), 1.75 (captioning).
        p_range: p is kept in this open interval through ``p = lo + (hi - lo) * sigmoid(raw)``
            (smooth, so gradients stay finite; the default [1, 3] holds pGNN's useful range).
        mu_init: initial mu (paper variant; learned, kept >= 0 by clamping).
        mu0: the code variant's mu0 (mu = mu0 * (2 + tanh(m)), m learned from 0; VQA 0.1,
            SNLI-VE 10, captioning 0.1).
        eps: paper variant: added inside the norm, ``(||.||^2 + eps) ^ ((p - 2) / 2)``, and to
            the normaliser of alpha; code variant: the release's e (1e-8 in its preset), placed
            as there: ``|| sqrt(M + e) (F_j - F_i) + e || ^ (p - 2)``.
        value_degree: paper variant: ``"unit"`` (our default: every value node has the degree 1
            its token has as a softmax query row; causal-safe) or ``"column"`` (the literal
            bipartite degree, the column sum over all queries: it lets a causal decoder's
            earlier tokens see later ones, so only use it on encoders).
        cross_pool_nodes: average-pool the key/value tokens of *cross*-attention to this many
            nodes before the re-weighting (the code: 16 for VQA, 24 otherwise); None keeps all.
            Paper variant: contiguous groups (ours); code variant: torch's adaptive average
            (overlapping windows), probabilities and values, as released.
        ffn_adapter: add the plain bottleneck adapter after every feed-forward sublayer.
        ffn_modules: FFN output projections for those adapters; None: ``<layer>.output.dense``
            of every layer holding an adapted attention.
        ffn_placement: ``"sequential"`` (ours: y + A(y) on the FFN output) or ``"parallel"``
            (the release: A reads the FFN's input, the attention output, and is added to the
            FFN output before the residual and LayerNorm: LN(FFN(x) + A(x) + x)).
        ffn_activation: the FFN adapter's nonlinearity; None: ``activation`` (release: relu).
        p_param: ``"sigmoid"`` (ours: p kept in ``p_range``) or ``"direct"`` (the release: p is
            the learned parameter itself, unconstrained).
        init: ``"identity"`` (ours: up-projections zero, so a fresh adapter is the identity) or
            ``"normal"`` (the release, BLIP's ``init_weights``: every adapter Linear
            N(0, ``init_std``), biases zero; not the identity at init).
    """

    method = "p_adapter"

    variant: Literal["paper", "code"] = "paper"
    reduction_factor: float = 8.0
    bottleneck_dim: int | None = None
    activation: str = "gelu"
    p_init: float = 2.0
    p_range: tuple[float, float] = (1.0, 3.0)
    mu_init: float = 0.0
    mu0: float = 0.1
    eps: float = 1e-6
    value_degree: Literal["unit", "column"] = "unit"
    cross_pool_nodes: int | None = None
    ffn_adapter: bool = True
    ffn_modules: list[str] | str | None = None
    ffn_placement: Literal["sequential", "parallel"] = "sequential"
    ffn_activation: str | None = None
    p_param: Literal["sigmoid", "direct"] = "sigmoid"
    init: Literal["identity", "normal"] = "identity"
    init_std: float = 0.02

    def validate(self) -> None:
        if self.variant not in ("paper", "code"):
            raise ValueError(f"variant must be 'paper' or 'code', got {self.variant!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.bottleneck_dim is None and self.reduction_factor <= 0:
            raise ValueError("reduction_factor must be positive")
        lo, hi = self.p_range
        if not (1.0 <= lo < hi):
            raise ValueError(f"p_range must satisfy 1 <= lo < hi, got {self.p_range}")
        if self.p_param not in ("sigmoid", "direct"):
            raise ValueError(f"p_param must be 'sigmoid' or 'direct', got {self.p_param!r}")
        if self.p_param == "sigmoid" and not (lo < self.p_init < hi):
            raise ValueError(f"p_init={self.p_init} must lie inside p_range {self.p_range}")
        if self.p_param == "direct" and self.p_init <= 1:
            raise ValueError(f"p_init={self.p_init} must be > 1")
        if self.init not in ("identity", "normal"):
            raise ValueError(f"init must be 'identity' or 'normal', got {self.init!r}")
        if self.ffn_placement not in ("sequential", "parallel"):
            raise ValueError(
                f"ffn_placement must be 'sequential' or 'parallel', got {self.ffn_placement!r}"
            )
        if self.ffn_activation is not None and self.ffn_activation not in ACTIVATIONS:
            raise ValueError(f"ffn_activation must be one of {ACTIVATIONS}")
        if self.mu_init < 0 or self.mu0 < 0:
            raise ValueError("mu_init and mu0 must be >= 0")
        if self.eps <= 0:
            raise ValueError("eps must be > 0")
        if self.value_degree not in ("unit", "column"):
            raise ValueError(f"value_degree must be 'unit' or 'column', got {self.value_degree!r}")
        if self.cross_pool_nodes is not None and self.cross_pool_nodes < 1:
            raise ValueError("cross_pool_nodes must be >= 1 or None")

    def size(self, dim: int) -> int:
        """Bottleneck size for hidden size ``dim``."""
        if self.bottleneck_dim is not None:
            return self.bottleneck_dim
        return max(1, int(dim // self.reduction_factor))


register_preset("p_adapter", "p_adapter")
CODE = {"variant": "code", "p_init": 1.25, "cross_pool_nodes": 16, "eps": 1e-8}
register_preset("p_adapter_code", "p_adapter", **CODE)
#: everything as released (wuhy68/p-Adapter): the code variant, p learned directly, BLIP's
#: N(0, 0.02) init, and the parallel ReLU adapter on every FFN
RELEASE = {
    "p_param": "direct",
    "init": "normal",
    "ffn_placement": "parallel",
    "ffn_activation": "relu",
}
register_preset("p_adapter_release", "p_adapter", **CODE, **RELEASE)
