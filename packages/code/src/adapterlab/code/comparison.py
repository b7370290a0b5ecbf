"""The variants over seeds: mean ± std per variant, paired with/without-NER comparisons on the
same seeds, and the plain-words verdict of the main job (``run-all``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapterlab.core.engine.seeds import aggregate_seeds, paired_difference, seeds_to_json

from .methods import variant

__all__ = ["PAIRS", "PAPER_DIRECTION", "aggregate_variants", "paired_comparisons", "verdict"]

PAIRS: tuple[tuple[str, str, str], ...] = (
    ("ner_task", "task_adapter", "frozen NER adapter under the task adapter vs the task adapter"),
    ("codeberter", "task_adapter", "TTC-initialised adapter vs a fresh one (same adapter)"),
    ("codeberter", "full", "CodeBERTER vs full fine-tuning"),
)
"""(with NER, without, what the pair isolates): the comparisons the table reports."""

METRICS: dict[str, bool] = {"loss": False, "bleu": True}
"""Test metrics compared, and whether higher is better (loss: teacher-forced cross-entropy)."""

PAPER_DIRECTION = (
    "the paper reports that NER adapters help: CodeBERTER improves refinement accuracy "
    "16.4 -> 17.8 and summarization BLEU-4 14.75 -> 15.90 over fine-tuned CodeBERT (one run "
    "each, no spread reported)"
)


def _numbers(report: dict[str, Any]) -> dict[str, float]:
    test, valid = report["test"], report.get("valid", {})
    out = {k: float(test[k]) for k in ("bleu", "loss", "exact_match") if k in test}
    if "bleu" in valid:
        out["valid_bleu"] = float(valid["bleu"])
    return out


def aggregate_variants(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant (in first-seen order): its seeds' test numbers, their summary (mean, sample
    std, n), the trainable share, and the time spent (train seconds per seed, CPU-s summed)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["variant"], []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for name, reports in grouped.items():
        per_seed = {int(r["seed"]): _numbers(r) for r in reports}
        if len(per_seed) != len(reports):
            raise ValueError(f"variant {name!r} ran a seed twice: {[r['seed'] for r in reports]}")
        out[name] = {
            "description": reports[0]["description"],
            "trainable_percent": reports[0]["trainable_percent"],
            "trainable_params": reports[0]["trainable_params"],
            "paper_trainable": variant(name).paper_trainable,
            "stats": aggregate_seeds(per_seed),
            "seeds": seeds_to_json(per_seed),
            "train_seconds": sum(r["train_seconds"] for r in reports) / len(reports),
            "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in reports),
        }
    return out


def paired_comparisons(variants: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every :data:`PAIRS` entry whose two variants both ran: per metric, the per-seed
    differences (with minus without) on the same seeds, mean, std, paired t and p, and on how
    many seeds the NER side was better."""
    out = []
    for with_ner, without, what in PAIRS:
        if with_ner not in variants or without not in variants:
            continue
        for metric, higher_better in METRICS.items():
            a = variants[with_ner]["stats"].get(metric)
            b = variants[without]["stats"].get(metric)
            if a is None or b is None:
                continue
            diff = paired_difference(a.values, b.values)
            better = sum(
                1 for s, d in diff["differences"].items() if (d > 0) == higher_better and d != 0
            )
            out.append(
                {
                    "with": with_ner,
                    "without": without,
                    "what": what,
                    "metric": metric,
                    "higher_is_better": higher_better,
                    **diff,
                    "ner_better_seeds": better,
                }
            )
    return out


def verdict(pair: dict[str, Any], alpha: float = 0.05) -> str:
    """One line: did the NER side help on this metric beyond seed noise? "Beyond noise" means
    a paired t-test p < ``alpha`` with every seed pointing the same way (n >= 3)."""
    n, mean = pair["n"], pair["mean"]
    better = pair["ner_better_seeds"]
    if mean == 0 and pair["std"] == 0:
        return f"no difference (identical on all {n} seeds)"
    good = (mean > 0) == pair["higher_is_better"]
    p = pair.get("p_value")
    same_way = better == (n if good else 0)
    if n >= 3 and p is not None and p < alpha and same_way:
        word = "helped" if good else "hurt"
        return f"{word} beyond seed noise (p = {p:.3f}, better on {better}/{n} seeds)"
    p_text = f"p = {p:.2f}" if p is not None else "no test"
    direction = "better" if good else "worse"
    return (
        f"no difference beyond seed noise ({direction} on average, {p_text}, "
        f"better on {better}/{n} seeds)"
    )
