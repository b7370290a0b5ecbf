"""Repeated seeds: run each method once per seed, report mean ± std and keep every seed's numbers.

A comparison from one seed cannot tell a method's effect from init and data-order noise. The
pipelines run each method for every seed of :func:`resolve_seeds`, then::

    per_seed = {seed: run(method, seed) for seed in resolve_seeds(cfg.seeds)}  # {seed: {metric: v}}
    stats = aggregate_seeds(per_seed)               # {metric: SeedStats(mean, std, n, values)}
    row = format_mean_std(stats["accuracy"], scale=100)   # "84.2 ± 0.6"  ("84.2 (1 seed)" if n == 1)
    metrics["seeds"] = seeds_to_json(per_seed)      # every seed's numbers for metrics.json
    paired_difference(acc_a, acc_b)                 # same seeds, a - b: mean, std, t, p, wins

``std`` is the sample standard deviation (ddof = 1), 0.0 for a single seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "SeedSpec",
    "SeedStats",
    "aggregate_seeds",
    "format_mean_std",
    "paired_difference",
    "resolve_seeds",
    "seeds_to_json",
]

#: what a config's ``seeds`` field may hold: a count (``3`` or ``"3"`` -> seeds 0, 1, 2), an
#: explicit list (``[5, 7]``, ``"5,7"``; ``"5,"`` is the single seed 5)
SeedSpec: TypeAlias = int | str | list[int]

_LIST = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*,?\s*$")


def resolve_seeds(
    spec: int | str | Sequence[int] | None, default: Sequence[int] = (0,), *, start: int = 0
) -> list[int]:
    """The seeds a spec names.

    ``3`` or ``"3"`` -> ``[start, start + 1, start + 2]`` (a count); ``"0,1,2"`` or ``"5,"`` ->
    those seeds; a list/tuple -> its seeds; ``None`` or ``""`` -> ``default``. Raises
    ``ValueError`` for a count below 1, negative or repeated seeds, or text that is neither.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        seeds = [int(s) for s in default]
    elif isinstance(spec, bool):
        raise ValueError(f"seeds: expected a count or a list of seeds, got {spec!r}")
    elif isinstance(spec, int):
        seeds = _count(spec, start)
    elif isinstance(spec, str):
        text = spec.strip().strip("[]")
        if not _LIST.match(text):
            raise ValueError(
                f"seeds: {spec!r} is neither a count ('3') nor a comma-separated list ('0,1,2')"
            )
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = _count(int(text), start)
    else:
        seeds = [int(s) for s in spec]
        if not seeds:
            raise ValueError("seeds: the list of seeds is empty")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds: must be non-negative, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: repeated seed in {seeds}")
    return seeds


def _count(n: int, start: int) -> list[int]:
    if n < 1:
        raise ValueError(f"seeds: a count must be >= 1, got {n}")
    return list(range(start, start + n))


@dataclass
class SeedStats:
    """One metric over seeds: mean, sample std (ddof = 1; 0.0 for one seed), n and every value."""

    mean: float
    std: float
    n: int
    values: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[int, float]) -> SeedStats:
        """Statistics of ``{seed: value}`` (at least one value)."""
        vals = {int(k): float(v) for k, v in values.items()}
        if not vals:
            raise ValueError("SeedStats needs at least one value")
        xs = list(vals.values())
        mean = math.fsum(xs) / len(xs)
        var = math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0
        return cls(mean=mean, std=math.sqrt(var), n=len(xs), values=vals)

    def format(self, digits: int = 1, scale: float = 1.0) -> str:
        """``"84.2 ± 0.6"``; see :func:`format_mean_std`."""
        return format_mean_std(self, digits=digits, scale=scale)

    def to_json(self) -> dict[str, Any]:
        """``{"mean", "std", "n", "values": {"<seed>": v}}``."""
        return {
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
            "values": {str(k): v for k, v in self.values.items()},
        }


def aggregate_seeds(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, SeedStats]:
    """``{seed: {metric: value}}`` -> ``{metric: SeedStats}`` for every numeric metric.

    A metric missing from some seeds is aggregated over the seeds that have it (its ``n`` says
    how many); non-numeric values (strings, lists) are left out.
    """
    names: list[str] = []
    for metrics in per_seed.values():
        for name, value in metrics.items():
            if _numeric(value) and name not in names:
                names.append(name)
    return {
        name: SeedStats.from_values(
            {
                seed: float(m[name])
                for seed, m in per_seed.items()
                if name in m and _numeric(m[name])
            }
        )
        for name in names
    }


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return hasattr(value, "item") and getattr(value, "ndim", 1) == 0  # numpy / torch scalars


def format_mean_std(stats: SeedStats, digits: int = 1, scale: float = 1.0) -> str:
    """``"84.2 ± 0.6"`` (values times ``scale``, ``digits`` decimals); ``"84.2 (1 seed)"`` when
    only one seed ran, so a table never shows a spread it did not measure."""
    mean = f"{stats.mean * scale:.{digits}f}"
    if stats.n == 1:
        return f"{mean} (1 seed)"
    return f"{mean} ± {stats.std * abs(scale):.{digits}f}"


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> dict[str, Any]:
    """Per-seed ``a - b`` on the same seeds, with mean, sample std, n, the paired t statistic
    (``mean / (std / sqrt(n))``), its two-sided p-value (Student t, n - 1 degrees of freedom;
    None when n < 2 or std == 0) and how many seeds ``a > b``.

    Raises ``ValueError`` when the two do not cover the same seeds (a paired test needs pairs).
    """
    if set(a) != set(b):
        raise ValueError(
            f"paired_difference needs the same seeds on both sides, got {sorted(a)} and {sorted(b)}"
        )
    if not a:
        raise ValueError("paired_difference needs at least one seed")
    diffs = {int(s): float(a[s]) - float(b[s]) for s in sorted(a)}
    stats = SeedStats.from_values(diffs)
    t = p = None
    if stats.n > 1 and stats.std > 0:
        from scipy.stats import t as student_t

        t = stats.mean / (stats.std / math.sqrt(stats.n))
        p = float(2 * student_t.sf(abs(t), stats.n - 1))
    return {
        "differences": {str(k): v for k, v in diffs.items()},
        "mean": stats.mean,
        "std": stats.std,
        "n": stats.n,
        "t": t,
        "p_value": p,
        "wins": sum(1 for s in diffs if float(a[s]) > float(b[s])),
    }


def seeds_to_json(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Every seed's numbers plus their summary, for ``metrics.json``::

    {"seeds": [0, 1, 2], "per_seed": {"0": {...}, ...},
     "summary": {metric: {"mean", "std", "n", "values"}}}
    """
    return {
        "seeds": [int(s) for s in per_seed],
        "per_seed": {
            str(s): {k: float(v) if _numeric(v) else v for k, v in m.items()}
            for s, m in per_seed.items()
        },
        "summary": {name: st.to_json() for name, st in aggregate_seeds(per_seed).items()},
    }
