"""PHM layers and the Compacter adapter (Karimi Mahabadi et al., "Compacter: Efficient Low-Rank
Hypercomplex Adapter Layers", NeurIPS 2021), laid out as AdapterHub's ``PHMLayer``."""

from __future__ import annotations

import torch
from torch import nn

from ..base import SublayerAdapter
from ..bottleneck.layer import BottleneckAdapter, make_activation
from .config import CompacterConfig

__all__ = ["CompacterAdapter", "PHMLinear", "PHMRule", "kron_sum"]


def kron_sum(rule: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_i kron(rule[i], weight[i])`` for ``rule [n, a, b]`` and ``weight [n, p, q]``:
    an ``[a*p, b*q]`` matrix."""
    n, a, b = rule.shape
    _, p, q = weight.shape
    return torch.einsum("kab,kpq->apbq", rule, weight).reshape(a * p, b * q)


class PHMRule(nn.Module):
    """The "slow" rule tensor ``[n, n, n]`` (or its rank-1 factors ``left [n, n, 1]``,
    ``right [n, 1, n]``), shared by all PHM layers of an adapter or owned by one."""

    def __init__(self, config: CompacterConfig, shared: bool) -> None:
        super().__init__()
        n = config.phm_dim
        self.factorized = config.factorized_phm_rule
        uniform = config.phm_c_init == "uniform"
        # AdapterHub: shared rules N(0, phm_init_range) or U(-1, 1); a layer's own rules
        # N(0, 0.01) or U(-0.01, 0.01).
        std = config.phm_init_range if shared else 0.01
        bound = 1.0 if shared else 0.01
        shapes = {"phm_rule_left": (n, n, 1), "phm_rule_right": (n, 1, n)}
        if not self.factorized:
            shapes = {"phm_rule": (n, n, n)}
        for key, shape in shapes.items():
            t = torch.empty(shape)
            if uniform:
                nn.init.uniform_(t, -bound, bound)
            else:
                nn.init.normal_(t, 0.0, std)
            self.register_parameter(key, nn.Parameter(t))

    def forward(self) -> torch.Tensor:
        if self.factorized:
            return torch.bmm(self.phm_rule_left, self.phm_rule_right)
        return self.phm_rule


class PHMLinear(nn.Module):
    """``y = x H + b`` with ``H = sum_i kron(rule_i, W_i)`` (``[in, out]``, a right multiply as
    AdapterHub's ``PHMLayer``; ``nn.Linear.weight`` would be ``H.T``).

    ``shared_rule``: the adapter's :class:`PHMRule` (not registered here: the adapter saves it
    once); ``None`` gives the layer its own rule (``phm_rule``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        config: CompacterConfig,
        shared_rule: PHMRule | None,
        zero: bool = False,
    ) -> None:
        super().__init__()
        n = config.phm_dim
        for what, size in (("in_features", in_features), ("out_features", out_features)):
            if size % n:
                raise ValueError(
                    f"Compacter: {what}={size} is not divisible by phm_dim={n} (choose "
                    "reduction_factor/bottleneck_dim and phm_dim so that both sizes divide)"
                )
        self.in_features, self.out_features = in_features, out_features
        self.factorized = config.factorized_phm_W
        p, q, r = in_features // n, out_features // n, config.phm_rank
        if self.factorized:
            self.W_left = nn.Parameter(self._init_w((n, p, r), config))
            self.W_right = nn.Parameter(
                torch.zeros(n, r, q) if zero else self._init_w((n, r, q), config)
            )
        else:
            self.W = nn.Parameter(torch.zeros(n, p, q) if zero else self._init_w((n, p, q), config))
        self.b = nn.Parameter(torch.zeros(out_features)) if config.phm_bias else None
        if shared_rule is None:
            own = PHMRule(config, shared=False)
            for key, param in own.named_parameters():
                self.register_parameter(key, param)
            self.__dict__["_own_factorized"] = own.factorized
        self.__dict__["_shared_rule"] = shared_rule

    @staticmethod
    def _init_w(shape: tuple[int, int, int], config: CompacterConfig) -> torch.Tensor:
        w = torch.empty(shape)
        for i in range(shape[0]):
            if config.hypercomplex_nonlinearity == "glorot-normal":
                nn.init.xavier_normal_(w[i])
            elif config.hypercomplex_nonlinearity == "glorot-uniform":
                nn.init.xavier_uniform_(w[i])
            else:
                nn.init.normal_(w[i], 0.0, config.phm_init_range)
        return w

    def rule(self) -> torch.Tensor:
        """The rule tensor ``[n, n, n]`` this layer uses."""
        shared = self.__dict__["_shared_rule"]
        if shared is not None:
            return shared()
        if self.__dict__["_own_factorized"]:
            return torch.bmm(self.phm_rule_left, self.phm_rule_right)
        return self.phm_rule

    def fast_weight(self) -> torch.Tensor:
        """``W [n, in/n, out/n]``."""
        return torch.bmm(self.W_left, self.W_right) if self.factorized else self.W

    def matrix(self) -> torch.Tensor:
        """``H [in, out]``."""
        return kron_sum(self.rule(), self.fast_weight())

    @property
    def weight(self) -> torch.Tensor:
        """``H.T``, as an ``nn.Linear`` weight (for dtype/device queries and plain merges)."""
        return self.matrix().T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.matrix())
        return y + self.b if self.b is not None else y


class CompacterAdapter(BottleneckAdapter):
    """A :class:`BottleneckAdapter` (same placement and residual) whose ``down``/``up`` are
    :class:`PHMLinear` s. The adapter that owns the shared rule registers it as ``shared_rule``
    (saved once per adapter); the others only reference it."""

    def __init__(
        self,
        dim: int,
        bottleneck: int,
        config: CompacterConfig,
        shared_rule: PHMRule | None,
        owns_rule: bool,
        *,
        placement: str = "sequential",
        scaling: float = 1.0,
        dropout: float = 0.0,
        residual: bool = True,
    ) -> None:
        SublayerAdapter.__init__(self)
        self.placement = placement
        self.scaling = scaling
        self.residual = residual
        if shared_rule is not None and owns_rule:
            self.shared_rule = shared_rule
        self.down = PHMLinear(dim, bottleneck, config, shared_rule)
        self.act = make_activation(config.activation)
        self.dropout = nn.Dropout(dropout)
        self.up = PHMLinear(bottleneck, dim, config, shared_rule, zero=config.zero_init_up)

    def adapt(self, h: torch.Tensor) -> torch.Tensor:
        dtype = self.down.W_left.dtype if self.down.factorized else self.down.W.dtype
        z = self.up(self.dropout(self.act(self.down(h.to(dtype)))))
        return (z * self.scaling).to(h.dtype)

    def to_bottleneck(self) -> BottleneckAdapter:
        """The plain :class:`BottleneckAdapter` computing the same function (``H.T`` weights)."""
        dim, size = self.down.in_features, self.down.out_features
        plain = BottleneckAdapter(
            dim,
            size,
            activation="gelu" if isinstance(self.act, nn.GELU) else _act_name(self.act),
            placement=self.placement,
            scaling=self.scaling,
            dropout=self.dropout.p,
            residual=self.residual,
        )
        with torch.no_grad():
            for ours, theirs in ((self.down, plain.down), (self.up, plain.up)):
                theirs.weight.copy_(ours.matrix().T)
                if ours.b is not None:
                    theirs.bias.copy_(ours.b)
                else:
                    theirs.bias.zero_()
        norm = self.__dict__.get("_norm")
        if norm is not None:
            plain.bind_norm(norm)
        return plain.to(device=self.down.weight.device, dtype=self.down.weight.dtype)


def _act_name(act: nn.Module) -> str:
    return {nn.ReLU: "relu", nn.SiLU: "swish", nn.Tanh: "tanh", nn.Identity: "identity"}[type(act)]
