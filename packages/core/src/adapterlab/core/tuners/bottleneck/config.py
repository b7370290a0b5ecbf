"""Bottleneck adapter config and presets (Houlsby, Pfeiffer, parallel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ...config import AdapterConfig, register_preset

__all__ = ["BottleneckConfig"]

# methods that offer ``original_ln_before`` (the adapter at the closing LayerNorm)
_LN_METHODS = ("bottleneck", "bottleneck_inv", "compacter", "multitask")
ACTIVATIONS = ("relu", "gelu", "swish", "silu", "tanh", "identity")


@dataclass
class BottleneckConfig(AdapterConfig):
    """Bottleneck adapter: down-projection, nonlinearity, up-projection (zero-initialised).

    Attributes:
        placement: ``sequential`` (Houlsby et al. 2019; Pfeiffer et al. 2021: the adapter reads
            the sublayer output) or ``parallel`` (He et al. 2022: it reads the sublayer input and
            its output is added to the sublayer output).
        locations: slots used when ``target_modules`` is None: ``("ffn",)`` (Pfeiffer) or
            ``("attn", "ffn")`` (Houlsby).
        reduction_factor: bottleneck size = feature size // reduction_factor.
        bottleneck_dim: explicit bottleneck size (overrides ``reduction_factor``).
        activation: one of relu, gelu, swish/silu, tanh, identity.
        scaling: multiplies the adapter output (``s`` in He et al.).
        dropout: dropout on the bottleneck activations.
        original_ln_before: AdapterHub's ``seq_bn`` placement (Pfeiffer et al. 2021): the adapter
            sits at the LayerNorm that closes a post-LN sublayer (``LN(h + r)``, ``h`` the
            sublayer output, ``r`` its residual input), reads ``LN(h + r)`` and feeds
            ``h + A(LN(h + r)) + r`` to that LayerNorm, i.e. AdapterHub's
            ``original_ln_before=True, residual_before_ln=True, original_ln_after=True``. Default
            targets are the families' ``ffn_norm``/``attn_norm`` slots; a family without them
            (pre-LN: AST, open_clip) and targets that are not LayerNorms get the plain sequential
            adapter on the sublayer output (a documented departure from ``seq_bn``).
        residual: sequential: add the sublayer output back (``y + A(y)``; the Houlsby skip).
            parallel: also add the sublayer input on top (PETL-AST's ``apply_residual``).
            ``None`` = True for sequential, False for parallel.
        parallel_sources: regex over target names -> replacement naming the module whose input a
            parallel adapter reads (only for sublayers split over several modules, e.g. BERT's FFN).
    """

    method = "bottleneck"

    placement: Literal["sequential", "parallel"] = "sequential"
    locations: tuple[str, ...] = ("ffn",)
    reduction_factor: float = 16.0
    bottleneck_dim: int | None = None
    activation: str = "relu"
    scaling: float = 1.0
    dropout: float = 0.0
    residual: bool | None = None
    original_ln_before: bool = False
    parallel_sources: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.placement not in ("sequential", "parallel"):
            raise ValueError(
                f"placement must be 'sequential' or 'parallel', got {self.placement!r}"
            )
        bad = [loc for loc in self.locations if loc not in ("ffn", "attn")]
        if bad or not self.locations:
            raise ValueError(
                f"locations must be a non-empty subset of ('attn', 'ffn'), got {self.locations}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.bottleneck_dim is None and self.reduction_factor <= 0:
            raise ValueError("reduction_factor must be positive")
        if self.residual is not None and not isinstance(self.residual, bool):
            raise ValueError(f"residual must be a bool or None, got {self.residual!r}")
        if self.original_ln_before and (
            self.placement != "sequential" or self.method not in _LN_METHODS
        ):
            raise ValueError(
                "original_ln_before (AdapterHub's seq_bn placement) needs a sequential "
                "bottleneck adapter"
            )

    def use_residual(self) -> bool:
        """The effective residual flag."""
        return self.placement == "sequential" if self.residual is None else self.residual

    def size(self, dim: int) -> int:
        """Bottleneck size for feature size ``dim``."""
        if self.bottleneck_dim is not None:
            return self.bottleneck_dim
        return max(1, int(dim // self.reduction_factor))


register_preset(
    "pfeiffer", "bottleneck", placement="sequential", locations=("ffn",), original_ln_before=True
)
register_preset(
    "houlsby", "bottleneck", placement="sequential", locations=("attn", "ffn"), activation="swish"
)
register_preset("parallel", "bottleneck", placement="parallel", locations=("ffn",), scaling=4.0)
register_preset(
    "houlsby_parallel", "bottleneck", placement="parallel", locations=("attn", "ffn"), scaling=4.0
)
